"""``polydiff plugins``: list installed plugins, what they provide, and those that failed.

Imports no torch, so it answers instantly and works even when torch is broken::

    $ polydiff plugins
    polydiff 0.1.0  (plugin 'polydiff', built in)
      encoders      identity
      ...
    $ polydiff plugins --json | jq '.[] | select(.status == "failed")'

Exits 1 when a plugin failed to load, so CI can check an installation.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from polydiff.errors import PolydiffError

_PLURAL = {"modality": "modalities", "pretrained": "pretrained"}


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``plugins`` subcommand to the ``polydiff`` parser."""
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins and the components they provide",
        description=(
            "List the installed polydiff plugins: distribution, version, modalities and components, "
            "and the plugins that failed to load with the error and the fix. "
            "Environment: POLYDIFF_DISABLE_PLUGINS, POLYDIFF_LOAD_PLUGINS, POLYDIFF_STRICT_PLUGINS. "
            "Exits 1 if a plugin failed to load."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per plugin")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="one component per line with its description and target"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the plugin listing; return the exit status (1 if any plugin failed)."""
    import warnings

    from polydiff.plugins import PluginLoadWarning, get_registry

    with warnings.catch_warnings():
        # The listing shows every failure with its fix; the warnings would say it twice.
        warnings.simplefilter("ignore", PluginLoadWarning)
        try:
            info = get_registry().plugins_info()
        except PolydiffError as exc:  # e.g. POLYDIFF_STRICT_PLUGINS=1 and a plugin failed
            print(f"polydiff plugins: error: {exc}", file=sys.stderr)
            return 1
    if getattr(args, "json", False):
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_plugins(info, sys.stdout, verbose=getattr(args, "verbose", False))
    return 1 if any(entry["status"] == "failed" for entry in info) else 0


def print_plugins(info: list[dict[str, Any]], out: TextIO, *, verbose: bool = False) -> None:
    """Human-readable form of :meth:`polydiff.plugins.Registry.plugins_info`."""
    loaded = [entry for entry in info if entry["status"] == "ok"]
    failed = [entry for entry in info if entry["status"] == "failed"]
    disabled = [entry for entry in info if entry["status"] == "disabled"]
    for entry in loaded:
        where = "built in" if entry["name"] == "polydiff" else entry["module"]
        out.write(f"{_label(entry)}  (plugin '{entry['name']}', {where})\n")
        for modality in entry["modalities"]:
            line = f"{modality['name']} (rank {modality['rank']})"
            if modality["description"]:
                line += f": {modality['description']}"
            out.write(f"  {'modality':<13} {line}\n")
            if modality["presets"]:
                out.write(f"  {'presets':<13} {', '.join(modality['presets'])}\n")
        for kind, components in entry["components"].items():
            heading = _PLURAL.get(kind, kind + "s")
            if not verbose:
                out.write(f"  {heading:<13} {', '.join(_component(c) for c in components)}\n")
                continue
            out.write(f"  {heading}\n")
            for component in components:
                description = component["description"] or "-"
                out.write(f"    {_component(component)}: {description} ({component['target']})\n")
        if not entry["modalities"] and not entry["components"]:
            out.write(f"  hooks         {', '.join(entry['hooks']) or '(none)'}\n")
        out.write("\n")
    if failed:
        out.write(f"Failed to load ({len(failed)}):\n")
        for entry in failed:
            hook = f" [{entry['hook']}]" if entry["hook"] else ""
            out.write(f"  {entry['name']}  {_label(entry)}{hook}\n")
            out.write(f"    error: {entry['error']}\n")
            if entry["fix"]:
                out.write(f"    fix:   {entry['fix']}\n")
        out.write("\n")
    if disabled:
        out.write(f"Not loaded ({len(disabled)}):\n")
        for entry in disabled:
            out.write(f"  {entry['name']}  {_label(entry)}: {entry['reason']}\n")


def _label(entry: dict[str, Any]) -> str:
    return f"{entry['distribution']} {entry['version']}".strip()


def _component(component: dict[str, Any]) -> str:
    text = component["name"]
    if component["modality"]:
        text += f" [{component['modality']}]"
    if component.get("experts"):  # a pretrained model sampled with denoiser experts
        text += f" (+ experts {', '.join(component['experts'])})"
    if component["missing"]:
        fix = (
            f"pip install '{component['extra']}'"
            if component["extra"]
            else "pip install " + " ".join(component["missing"])
        )
        text += f" (needs {', '.join(component['missing'])}: {fix})"
    return text
