"""``polydiff sample CHECKPOINT``: text in, files out (PNG grid, WAV, GIF)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from polydiff.cli.common import (
    add_experts,
    add_progress_argument,
    add_sampling_arguments,
    add_speed_arguments,
    apply_compile,
    check_flag,
    lengths_of,
    print_outputs,
    sampling_options,
    trajectory_timesteps,
)
from polydiff.errors import SamplingError


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
    p.add_argument(
        "--out",
        type=Path,
        help="output file (default: RUN/samples/sample.EXT) or directory; one sample is written to "
        "exactly this file, several in the writer's multi-sample form (a grid, or FILE-00.EXT, ...)",
    )
    p.add_argument(
        "--trajectory",
        action="store_true",
        help="also write the reverse process (x_t and predicted x0 at several steps)",
    )
    p.add_argument(
        "--trajectory-at",
        metavar="T1,T2,...",
        help="with --trajectory: the timesteps to show (default: 8 evenly spaced), e.g. 299,199,99,0 "
        "for the states after 700, 800, 900 and 1000 of 1000 DDPM steps",
    )
    p.add_argument("--length-scale", type=float, help="speech: speaking-rate factor (>1 slower)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")
    add_sampling_arguments(p)
    add_speed_arguments(p, "sampling")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polydiff.outputs import progress_enabled, resolve_output, writer_extensions
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.pretrained import run_dir_of

    check_flag(args, "num", "num_per_prompt")
    check_flag(args, "length_scale", "length_scale")
    options = sampling_options(args)
    pipe = DiffusionPipeline.from_pretrained(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    if pipe.pretrained is not None:  # a name: outputs go to runs/pretrained/NAME, not into the package
        args.checkpoint = run_dir_of(args.checkpoint, pipe.pretrained)
    writer = pipe.writer()  # a bad --out fails before sampling
    path = resolve_output(args.out, _default_path(args.checkpoint, writer), writer_extensions(writer))
    add_experts(pipe, args)
    apply_compile(pipe, args)
    extra = {"length_scale": args.length_scale} if args.length_scale is not None else {}
    steps = _trajectory_steps(args, pipe.config.diffusion.num_timesteps)
    out = pipe(
        args.prompt or None,
        num_per_prompt=args.num,
        seed=args.seed,
        trajectory_steps=steps,
        progress=progress_enabled(args.no_progress),
        **options,
        **extra,
    )
    if out.nonfinite:
        raise SamplingError(
            f"{out.nonfinite} of {len(out.samples)} sample(s) hold NaN or inf, so nothing was written; "
            + _likely_cause(pipe, args)
        )
    written = list(writer.write_samples(out.samples, out.prompts, path, lengths=out.lengths))
    if steps:
        traj = path.with_name(f"{path.stem}-trajectory{path.suffix}")
        written += writer.write_trajectory(
            out.trajectory_steps, out.trajectory_xt, out.trajectory_x0, out.prompts, traj, **lengths_of(out)
        )
    print_outputs(f"wrote {len(out.prompts)} sample(s):", written)
    return 0


def _trajectory_steps(args: argparse.Namespace, num_timesteps: int) -> list[int] | None:
    """The timesteps ``--trajectory`` shows: ``--trajectory-at``'s, or 8 evenly spaced."""
    from polydiff.errors import ConfigError

    if args.trajectory_at is None:
        return trajectory_timesteps(num_timesteps) if args.trajectory else None
    if not args.trajectory:
        raise ConfigError("--trajectory-at chooses the steps of --trajectory; add --trajectory")
    try:
        steps = [int(part) for part in args.trajectory_at.split(",") if part.strip()]
    except ValueError:
        steps = []
    if not steps or any(not 0 <= t < num_timesteps for t in steps):
        raise ConfigError(
            f"--trajectory-at {args.trajectory_at!r}: give comma-separated timesteps in "
            f"0..{num_timesteps - 1}, e.g. 299,199,99,0"
        )
    return steps


def _default_path(checkpoint: Path, writer: object) -> Path:
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint
    return run_dir / "samples" / f"sample{getattr(writer, 'extension', '')}"


def _likely_cause(pipe: Any, args: argparse.Namespace) -> str:
    """Why samples came out non-finite: weights that are (training diverged), else the options."""
    import torch

    if any(not torch.isfinite(p).all() for p in pipe.model.parameters()):
        return (
            f"the weights of {args.checkpoint} are not finite (training diverged); retrain with a lower --lr"
        )
    given = [
        f"--{k.replace('_', '-')} {getattr(args, k)}"
        for k in ("guidance", "temperature", "eta")
        if getattr(args, k)
    ]
    return (
        "the likely cause is an extreme sampling option"
        + (f" ({', '.join(given)})" if given else "")
        + "; retry with the run's defaults (drop --guidance/--temperature/--eta)"
    )
