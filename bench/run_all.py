"""``make bench``: the peer comparison and the sampler-quality curves, short by default.

Default (a few minutes on 2 cores): both peer settings with 3 alternating rounds, and the
sampler curves redrawn from ``bench/results/sampler_quality-*.json`` (measuring them needs trained
checkpoints and takes much longer). ``--full`` runs the published configuration: 7 rounds, and
the sampler measurement itself (training the ``quick`` checkpoints first where missing).

Usage::

    python bench/run_all.py                 # quick look; prints the tables
    python bench/run_all.py --full --write-docs
    python bench/run_all.py --skip-samplers --threads 1 --clock cpu
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
import sampler_quality  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="published configuration (long: about an hour)")
    p.add_argument("--write-docs", action="store_true", help="rewrite this benchmark's docs sections")
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--skip-samplers", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = p.parse_args(argv)
    docs = ["--write-docs"] if args.write_docs else []
    status = 0
    if not args.skip_peers:
        missing = [
            m for m in ("diffusers", "denoising_diffusion_pytorch") if importlib.util.find_spec(m) is None
        ]
        if missing:
            print(
                f"skipping the peer comparison: {', '.join(missing)} not installed "
                f"(pip install -e '.[bench]')"
            )
            status = 1
        else:
            rounds = (
                ["--rounds", "7"] if args.full else ["--rounds", "3", "--out", str(_scratch("peers.json"))]
            )
            status |= peers.main([*rounds, "--threads", str(args.threads), "--clock", args.clock, *docs])
    if not args.skip_samplers:
        if args.full:
            status |= sampler_quality.main(["--train", "--threads", str(args.threads), *docs])
        elif sampler_quality.load_results():
            status |= sampler_quality.main(["--from-json", *docs])
        else:
            print("no sampler results yet: run `python bench/run_all.py --full` (trains and measures)")
    return status


def _scratch(name: str) -> Path:
    """Where quick runs write, so that they never overwrite the published results."""
    path = sampler_quality.ROOT / "runs" / "bench" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
