"""How much a video checkpoint's output depends on each word of its prompt.

Two probes of a ``moving-shapes`` run (docs/research/video.md):

1. **x0 sensitivity.** From one batch of pure noise ``x_T`` presented at timestep ``t``, the
   UNet's x0 estimate for ``"a green square moving left"`` against the same prompt with another
   direction (``right``) and with another colour (``red``): the mean absolute difference (on the
   [-1, 1] scale) and, for left - right, the first moment of the green channel's difference along x
   per frame. The data's conditional means differ by a moment that goes from positive (a "left"
   clip starts on the right) to negative over the clip; a model that ignores the direction word
   gives ~0 at every frame.
2. **Confusion under shared noise.** One sample per seed for each direction word, the same
   initial noise for all four; the motion direction each clip shows (the evaluator's tracker).
   A model that ignores the word shows the same direction in a seed's four clips.

Usage::

    python bench/video_prompt_probe.py RUN_OR_CHECKPOINT [--samples 6] [--steps 20] [--no-ema] [--out F.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import torch

from polydiff.pipeline import DiffusionPipeline
from polydiff_video.attributes import DIRECTIONS
from polydiff_video.evaluation.checks import motion_direction
from polydiff_video.evaluation.tracking import track_object


def prompt(direction: str, colour: str = "green") -> str:
    return f"a {colour} square moving {direction}"


@torch.no_grad()
def x0_sensitivity(
    pipe: DiffusionPipeline, timesteps: list[int], batch: int = 8, seed: int = 0
) -> list[dict]:
    """Probe 1 (see the module docstring): one row per timestep."""
    model, diffusion = pipe.model, pipe.model.diffusion
    shape = (batch, *pipe.config.latent_shape)  # [B, 3, T, H, W]
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    width = shape[-1]
    xs = torch.arange(float(width)) - (width - 1) / 2

    def x0(text: str, t: int) -> torch.Tensor:
        cond = model.conditioner.encode([text] * batch)
        tt = torch.full((batch,), t)
        out = model.unet(noise, tt, **cond.unet_kwargs())
        return diffusion.predict_x0_eps(noise, tt, out)[0]

    rows = []
    for t in timesteps:
        left, right, red = x0(prompt("left"), t), x0(prompt("right"), t), x0(prompt("left", "red"), t)
        diff = (left - right)[:, 1]  # green channel, [B, T, H, W]
        moment = (diff.sum(2) * xs).sum(-1).mean(0)  # [T]
        rows.append(
            {
                "t": t,
                "direction_change": float((left - right).abs().mean()),
                "colour_change": float((left - red).abs().mean()),
                "left_minus_right_x_moment": [round(v, 3) for v in moment.tolist()],
            }
        )
    return rows


def confusion(pipe: DiffusionPipeline, samples: int, steps: int) -> dict[str, dict[str, int]]:
    """Probe 2: ``{asked: {shown (or "none"): count}}`` with the same noise for every direction."""
    table = {}
    for direction in DIRECTIONS:
        out = pipe([prompt(direction)], num_per_prompt=samples, steps=steps, seed=0)
        shown = [motion_direction(track_object(clip).centroids) or "none" for clip in out.samples]
        table[direction] = dict(collections.Counter(shown))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="video run directory or checkpoints/step-*")
    parser.add_argument("--samples", type=int, default=6, help="clips per direction in probe 2 (0 = skip)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps of probe 2")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[999, 950, 850, 700])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-ema", action="store_true", help="probe the raw weights, not the EMA")
    parser.add_argument("--out", type=Path, help="JSON file for the results (default: print only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pipe = DiffusionPipeline.from_checkpoint(args.checkpoint, device="cpu", use_ema=not args.no_ema)
    if pipe.config.dataset.name != "moving-shapes":
        parser.error(f"{args.checkpoint} was trained on '{pipe.config.dataset.name}', not moving-shapes")
    result = {
        "checkpoint": str(pipe.checkpoint_path),
        "x0_sensitivity": x0_sensitivity(pipe, args.timesteps),
    }
    for row in result["x0_sensitivity"]:
        moment = " ".join(f"{v:+.1f}" for v in row["left_minus_right_x_moment"])
        print(
            f"t={row['t']:4d}  |x0(left) - x0(right)| {row['direction_change']:.4f}   "
            f"|x0(green) - x0(red)| {row['colour_change']:.4f}   left-right x-moment per frame: {moment}"
        )
    if args.samples:
        result["confusion"] = confusion(pipe, args.samples, args.steps)
        for asked, shown in result["confusion"].items():
            print(f"asked {asked:5s} -> shown {shown}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
