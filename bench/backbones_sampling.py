"""Time sampling of a trained run and count its network's parameters (docs/backbones.md).

Usage: python bench/backbones_sampling.py RUN_DIR [--num 8] [--steps 25]
Prints one JSON line: backbone, parameters, training steps/s (from metrics.jsonl), sampling
seconds for ``num`` samples and network evaluations per second.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from polydiff.pipeline import DiffusionPipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--num", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = DiffusionPipeline.from_pretrained(args.run, device="cpu")
    metrics = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines() if line]
    timed = [m for m in metrics if "time" in m and "step" in m]
    train_rate = (timed[-1]["step"] - timed[0]["step"]) / max(timed[-1]["time"] - timed[0]["time"], 1e-9)
    prompts = [""] if pipe.config.conditioner.name == "none" else ["seven three"] * args.num
    if pipe.config.modality != "tts":
        prompts = ["a red circle at the top left"] * args.num
    start = time.perf_counter()
    pipe(prompts, steps=args.steps, sampler="ddim")
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "run": str(args.run),
                "backbone": pipe.config.backbone.name,
                "parameters": sum(p.numel() for p in pipe.model.unet.parameters()),
                "train_steps_per_s": round(train_rate, 3),
                "sampling_s": round(seconds, 2),
                "samples": len(prompts),
                "steps": args.steps,
            }
        )
    )


if __name__ == "__main__":
    main()
