"""``polydiff check-data MODALITY``: the trainer's validation pass over a dataset, alone."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-data",
        help="check a dataset's files before training (exit status 2 when some are unusable)",
        description="Build MODALITY's dataset and check every item (unreadable files, NaN, "
        "too-short audio, ...): the pass `polydiff train` runs before its first step.",
    )
    p.add_argument("modality", help="a modality from `polydiff plugins` (image, tts, video, ...)")
    p.add_argument("--dataset", help="dataset name (default: the modality's)")
    p.add_argument("--data-path", help="path option of folder/corpus datasets (sets dataset.path)")
    p.add_argument("--split", default="train", choices=("train", "eval"), help="split to check")
    p.add_argument(
        "--preset", default="quick", help="preset whose dataset options are the defaults (default: quick)"
    )
    p.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="dataset.FIELD=VALUE",
        help="override a dataset option, e.g. --set dataset.on_error=raise",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polydiff import plugins
    from polydiff.builder import build_dataset
    from polydiff.data_check import check_dataset
    from polydiff.outputs import progress_enabled
    from polydiff.run_config import RunConfig

    registry = plugins.get_registry()
    config = RunConfig.for_modality(
        args.modality, preset=args.preset, dataset=args.dataset, registry=registry
    )
    if args.data_path:
        config.dataset.options["path"] = args.data_path
    config.apply_overrides(args.assignments)
    dataset = build_dataset(config, registry, args.split)
    report = check_dataset(dataset, progress=progress_enabled(args.no_progress), full=True)
    report.name = f"{config.dataset.name} ({args.split} split)"
    print(report.summary())
    for label, problems in (("skipped", report.skipped), ("error", report.errors)):
        for file, why in problems:
            print(f"  {label}: {why}" if file in why else f"  {label}: {file}: {why}")
    if not report.ok:
        print(
            "fix or remove the files listed as errors (or --set dataset.on_error=skip where the dataset "
            "has that option), then run again"
        )
        return 2
    return 0
