"""``polydiff train MODALITY``: train a model (first stage too, when the encoder learns)."""

from __future__ import annotations

import argparse
from pathlib import Path

from polydiff.cli.common import print_outputs


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
    p.add_argument("--data-path", help="path option of folder/corpus datasets (sets dataset.path)")
    p.add_argument(
        "--preset",
        default="quick",
        help="quick (demos, tests), full (benchmarks), or another the modality lists in `polydiff plugins`",
    )
    p.add_argument("--steps", type=int, help="optimizer steps")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int, help="seed of everything random")
    p.add_argument("--out", type=Path, help="run directory (default: runs/MODALITY-DATASET[-ENCODER])")
    p.add_argument("--resume", action="store_true", help="continue from --out's latest checkpoint")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="autocast precision")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
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
    from polydiff.outputs import progress_enabled

    args.no_progress = not progress_enabled(args.no_progress)  # no bars off a terminal either
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer

    overrides: dict[str, dict] = {"train": {}}
    for flag, field in (
        ("steps", "steps"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("seed", "seed"),
        ("precision", "precision"),
        ("grad_accum", "grad_accum"),
    ):
        if getattr(args, flag) is not None:
            overrides["train"][field] = getattr(args, flag)
    if args.compile:
        overrides["train"]["compile"] = True
    if args.logger:
        overrides["train"]["loggers"] = tuple(args.logger)
    config = RunConfig.for_modality(
        args.modality,
        preset=args.preset,
        dataset=args.dataset,
        encoder=args.encoder,
        conditioner=args.conditioner,
        overrides=overrides,
    )
    if args.data_path:
        config.dataset.options["path"] = args.data_path
    config.apply_overrides(args.assignments)
    out = args.out or Path("runs") / "-".join(
        [config.modality, config.dataset.name] + ([config.encoder.name] if args.encoder else [])
    )
    result = Trainer(config, out, resume=args.resume, device=args.device, progress=not args.no_progress).fit()
    if result.checkpoint is None:  # not rank 0 under torchrun
        return 0
    last = result.history[-1] if result.history else {}
    summary = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k not in ("step", "time", "lr"))
    print(
        f"{'stopped' if result.interrupted else 'trained'} {config.modality} on {config.dataset.name} "
        f"to step {result.step}" + (f" ({summary})" if summary else "")
    )
    print_outputs("outputs:", [result.checkpoint, out / "metrics.jsonl", *result.outputs])
    print(f"next: polydiff sample {out} --prompt '...'   |   polydiff evaluate {out}")
    return 130 if result.interrupted else 0
