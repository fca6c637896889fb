"""``polydiff sample CHECKPOINT``: text in, files out (PNG grid, WAV, GIF)."""

from __future__ import annotations

import argparse
from pathlib import Path

from polydiff.cli.common import (
    add_experts,
    add_sampling_arguments,
    lengths_of,
    print_outputs,
    sampling_options,
    trajectory_timesteps,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="generate from a trained checkpoint",
        description="Generate samples from a run directory or a checkpoint directory.",
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        help="run directory (its latest checkpoint), checkpoints/step-*, or a pretrained model's name "
        "(`polydiff plugins` lists them)",
    )
    p.add_argument("--prompt", action="append", default=[], help="prompt text (repeat for several)")
    p.add_argument("--num", type=int, default=1, help="samples per prompt")
    p.add_argument("--out", type=Path, help="output file (default: RUN/samples/sample.EXT)")
    p.add_argument(
        "--trajectory",
        action="store_true",
        help="also write the reverse process (x_t and predicted x0 at several steps)",
    )
    p.add_argument("--length-scale", type=float, help="speech: speaking-rate factor (>1 slower)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    add_sampling_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.pretrained import run_dir_of

    pipe = DiffusionPipeline.from_pretrained(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    if pipe.pretrained is not None:  # a name: outputs go to runs/pretrained/NAME, not into the package
        args.checkpoint = run_dir_of(args.checkpoint, pipe.pretrained)
    add_experts(pipe, args)
    extra = {"length_scale": args.length_scale} if args.length_scale is not None else {}
    steps = trajectory_timesteps(pipe.config.diffusion.num_timesteps) if args.trajectory else None
    out = pipe(
        args.prompt or None,
        num_per_prompt=args.num,
        seed=args.seed,
        trajectory_steps=steps,
        progress=True,
        **sampling_options(args),
        **extra,
    )
    writer = pipe.writer()
    path = args.out or _default_path(args.checkpoint, writer)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = list(writer.write_samples(out.samples, out.prompts, path, lengths=out.lengths))
    if steps:
        traj = path.with_name(f"{path.stem}-trajectory{path.suffix}")
        written += writer.write_trajectory(
            out.trajectory_steps, out.trajectory_xt, out.trajectory_x0, out.prompts, traj, **lengths_of(out)
        )
    print_outputs(f"wrote {len(out.prompts)} sample(s):", written)
    return 0


def _default_path(checkpoint: Path, writer: object) -> Path:
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint
    return run_dir / "samples" / f"sample{getattr(writer, 'extension', '')}"
