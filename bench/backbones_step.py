"""One training step and one sampling step of a backbone, in isolation (docs/backbones.md).

Usage: python bench/backbones_step.py MODALITY BACKBONE [--set SECTION.FIELD=VALUE ...]
Builds the modality's quick preset with the given backbone (as ``polydiff train`` does), then on
one thread: CPU seconds per training step (forward + backward + AdamW, the preset's batch),
CPU seconds per network evaluation while sampling (batch 8, no grad), and the peak RSS that the
training steps add over the built model (``ru_maxrss`` after minus before). Prints one JSON line.
Run each measurement in a fresh process: ``ru_maxrss`` is the process's high-water mark.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from polydiff.builder import build_dataset, build_model, collate_fn
from polydiff.plugins import get_registry
from polydiff.run_config import RunConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("modality")
    parser.add_argument("backbone")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    registry = get_registry()
    config = RunConfig.for_modality(args.modality, backbone=args.backbone, registry=registry)
    config.apply_overrides(args.sets, registry)
    dataset = build_dataset(config, registry)
    model = build_model(config, registry, dataset)
    model.freeze_encoder()
    batch_size = config.train.batch_size
    batch = collate_fn(dataset)([dataset[i % len(dataset)] for i in range(batch_size)])
    x0 = model.encoder.encode(batch["x"]).detach()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    T = config.diffusion.num_timesteps

    def train_step() -> None:
        t = torch.randint(0, T, (batch_size,))
        loss = model(batch, x0, t, torch.randn_like(x0))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    train_step()  # warm-up (allocations, lazy init), counted in the peak
    start = time.process_time()
    for _ in range(args.steps):
        train_step()
    train_s = (time.process_time() - start) / args.steps
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024

    model.eval()
    prompts = ["seven three"] * 8 if args.modality == "tts" else ["a red circle at the top left"] * 8
    plan = model.conditioner.plan(prompts, tuple(config.latent_shape))
    kwargs = plan.cond.unet_kwargs()
    x = torch.randn(8, *plan.shape)
    with torch.no_grad():
        model.unet(x, torch.full((8,), 500), **kwargs)
        start = time.process_time()
        for _ in range(args.steps):
            model.unet(x, torch.full((8,), 500), **kwargs)
    sample_s = (time.process_time() - start) / args.steps
    print(
        json.dumps(
            {
                "modality": args.modality,
                "backbone": args.backbone,
                "parameters": sum(p.numel() for p in model.unet.parameters()),
                "latent_shape": config.latent_shape,
                "batch": batch_size,
                "train_step_cpu_s": round(train_s, 4),
                "train_steps_per_cpu_s": round(1 / train_s, 2),
                "eval_batch8_cpu_s": round(sample_s, 4),
                "train_peak_rss_added_mb": round(peak_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
