"""The ``polydiff`` command: plugins, train, sample, noise, evaluate, demo, check-data."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from polydiff import __version__
from polydiff.errors import PolydiffError

#: Subcommand modules; each exposes ``register(subparsers)`` that sets ``func``.
COMMANDS = (
    "plugins_cmd",
    "train_cmd",
    "sample_cmd",
    "noise_cmd",
    "evaluate_cmd",
    "demo_cmd",
    "check_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polydiff", description="Multi-modality diffusion: train, sample and inspect models."
    )
    parser.add_argument("--version", action="version", version=f"polydiff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"polydiff.cli.{name}").register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Warnings as ``polydiff: warning: MESSAGE``, without the source line that raised them."""
    return f"polydiff: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not os.environ.get("POLYDIFF_DEBUG"):
        warnings.formatwarning = _one_line_warning
    try:
        if hasattr(args, "threads"):  # a command that runs a model; before torch is imported
            from polydiff import allocator, threads

            threads.configure(args.threads)
            allocator.configure_cpu_allocator()  # POLYDIFF_CPU_ALLOCATOR: no page faults per step
        return int(args.func(args) or 0)
    except PolydiffError as exc:
        if os.environ.get("POLYDIFF_DEBUG"):
            raise
        print(f"polydiff {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
