"""``polydiff train MODALITY``: train a model (first stage too, when the encoder learns)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from polydiff.cli.common import add_speed_arguments, print_outputs

if TYPE_CHECKING:
    from polydiff.run_config import RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a diffusion model for a modality",
        description="Train MODALITY on a dataset; checkpoints go to --out/checkpoints.",
    )
    p.add_argument("modality", help="a modality from `polydiff plugins` (image, tts, video, ...)")
    p.add_argument("--dataset", help="dataset name (default: the modality's)")
    p.add_argument("--encoder", help="encoder name, e.g. pixels or vae for images (default: the modality's)")
    p.add_argument("--conditioner", help="conditioner name (default: the modality's)")
    p.add_argument(
        "--backbone",
        help="denoising network: unet (default), dit, or another from `polydiff plugins`; its options "
        "with --set backbone.FIELD=VALUE (unet: --set unet.FIELD=VALUE)",
    )
    p.add_argument("--data-path", help="path option of folder/corpus datasets (sets dataset.path)")
    p.add_argument(
        "--preset",
        help="quick (default: demos, tests), full (benchmarks), or another the modality lists in "
        "`polydiff plugins`",
    )
    p.add_argument("--steps", type=int, help="optimizer steps")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int, help="seed of everything random")
    p.add_argument("--out", type=Path, help="run directory (default: runs/MODALITY-DATASET[-ENCODER])")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue --out's run from the checkpoint its `latest` names, with the run's config; lr, "
        "steps, grad clipping, precision... given here apply (each change is printed), a change to "
        "what was trained (dataset, model, batch size, seed...) is refused",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that holds an earlier run (its checkpoints, latest and metrics "
        "are deleted)",
    )
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="autocast precision")
    add_speed_arguments(p, "training")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument("--logger", action="append", default=[], help="extra metric sink (polydiff_loggers)")
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    p.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field, e.g. --set unet.model_channels=64 --set train.ema_decay=0.99",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polydiff.errors import ConfigError
    from polydiff.outputs import progress_enabled
    from polydiff.training.run_dir import check_is_directory

    args.no_progress = not progress_enabled(args.no_progress)  # no bars off a terminal either
    from polydiff.training.trainer import Trainer

    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run and --overwrite replaces it: pass one of them")
    if args.out is not None:
        check_is_directory(args.out)
    if args.resume and args.out is not None:
        out, config = args.out, None
    else:
        config = _fresh_config(args)
        out = args.out or Path("runs") / "-".join(
            [config.modality, config.dataset.name] + ([config.encoder.name] if args.encoder else [])
        )
    if args.resume:
        config = _resume_config(args, out)
    trainer = Trainer(
        config,
        out,
        resume=args.resume,
        overwrite=args.overwrite,
        device=args.device,
        progress=not args.no_progress,
    )
    result = trainer.fit()
    if not trainer.dist.is_main or result.checkpoint is None:  # rank 0 alone reports under torchrun
        return 0
    config = trainer.config
    last = result.history[-1] if result.history else {}
    summary = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k not in ("step", "time", "lr"))
    print(
        f"{'stopped' if result.interrupted else 'trained'} {config.modality} on {config.dataset.name} "
        f"to step {result.step}" + (f" ({summary})" if summary else "")
    )
    if result.first_step_s is not None:
        print(
            f"speed: first step {result.first_step_s:.1f} s"
            + (" (torch.compile included)" if result.compiled else "")
            + (f", then {result.steps_per_s:.2f} steps/s" if result.steps_per_s else "")
        )
    print_outputs("outputs:", [result.checkpoint, out / "metrics.jsonl", *result.outputs])
    print(f"next: polydiff sample {out} --prompt '...'   |   polydiff evaluate {out}")
    return 130 if result.interrupted else 0


def _train_overrides(args: argparse.Namespace) -> dict:
    """The ``train`` fields the command line sets explicitly."""
    train: dict = {}
    for flag in ("steps", "batch_size", "lr", "seed", "precision", "grad_accum"):
        if getattr(args, flag) is not None:
            train[flag] = getattr(args, flag)
    if args.compile or args.compile_mode:
        train["compile"] = True
    if args.compile_mode:
        train["compile_mode"] = args.compile_mode
    if args.logger:
        train["loggers"] = tuple(args.logger)
    return train


def _fresh_config(args: argparse.Namespace) -> RunConfig:
    from polydiff.run_config import RunConfig

    config = RunConfig.for_modality(
        args.modality,
        preset=args.preset or "quick",
        dataset=args.dataset,
        encoder=args.encoder,
        conditioner=args.conditioner,
        backbone=args.backbone,
        overrides={"train": _train_overrides(args)},
    )
    if args.data_path:
        config.dataset.options["path"] = args.data_path
    config.apply_overrides(args.assignments)
    return config


def _resume_config(args: argparse.Namespace, out: Path) -> RunConfig:
    """The run's config with what the command line sets explicitly on top (the trainer checks it)."""
    import dataclasses

    from polydiff.errors import ConfigError
    from polydiff.run_config import RunConfig
    from polydiff.training.checkpoint import CONFIG
    from polydiff.training.run_dir import resume_point

    config = RunConfig.load(resume_point(out) / CONFIG)
    for what, asked, theirs in (
        ("modality", args.modality, config.modality),
        ("--dataset", args.dataset, config.dataset.name),
        ("--encoder", args.encoder, config.encoder.name),
        ("--conditioner", args.conditioner, config.conditioner.name),
        ("--backbone", args.backbone, config.backbone.name),
        ("--preset", args.preset, config.preset),
    ):
        if asked is not None and asked != theirs:
            raise ConfigError(
                f"--resume: {out} is a {config.modality} run with {what.lstrip('-')} '{theirs}', not "
                f"'{asked}'; resume it as `polydiff train {config.modality} --resume --out {out}`, "
                "or start a new run with another --out"
            )
    config.train = dataclasses.replace(config.train, **_train_overrides(args))
    if args.data_path:
        config.dataset.options["path"] = args.data_path
    config.apply_overrides(args.assignments)
    return config
