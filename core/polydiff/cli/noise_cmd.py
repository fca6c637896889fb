"""``polydiff noise MODALITY``: the forward process q(x_t | x_0) on real data, as the writer shows it."""

from __future__ import annotations

import argparse
from pathlib import Path

from polydiff.cli.common import add_progress_argument, check_flag, print_outputs, trajectory_timesteps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "noise",
        help="show the forward (noising) process on real data",
        description="Noise a few dataset items at increasing timesteps and write them.",
    )
    p.add_argument("modality", help="a modality from `polydiff plugins`")
    p.add_argument("--dataset", help="dataset name (default: the modality's)")
    p.add_argument("--data-path", help="path option of folder/corpus datasets")
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="take encoder and schedule from this run (needed for learned encoders such as vae)",
    )
    p.add_argument("--num", type=int, default=4, help="items to noise")
    p.add_argument("--steps", help="comma-separated timesteps (default: 8 from 0 to T-1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, help="output file or directory (default: runs/noise-MODALITY/forward.EXT)"
    )
    add_progress_argument(p)  # nothing to draw today; accepted like every long command
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from polydiff.builder import build_dataset, build_model
    from polydiff.diffusion.gaussian import GaussianDiffusion
    from polydiff.errors import ConfigError
    from polydiff.interfaces import default_collate
    from polydiff.outputs import resolve_output, writer_extensions
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.plugins import get_registry
    from polydiff.run_config import RunConfig

    check_flag(args, "num", "num_per_prompt")
    registry = get_registry()
    if args.checkpoint:
        pipe = DiffusionPipeline.from_checkpoint(args.checkpoint, device="cpu")
        config, encoder = pipe.config, pipe.model.encoder
        if args.dataset:
            config.dataset.name, config.dataset.options = args.dataset, {}
            config.validate(registry)  # a dataset of another modality is refused
        dataset = build_dataset(config, registry, "train")
    else:
        config = RunConfig.for_modality(args.modality, dataset=args.dataset)
        if args.data_path:
            config.dataset.options["path"] = args.data_path
        dataset = build_dataset(config, registry, "train")
        encoder = build_model(config, registry).encoder
        if encoder.trainable and not encoder.is_fitted:
            raise ConfigError(
                f"encoder '{config.encoder.name}' is learned; pass --checkpoint RUN_DIR "
                "of a run that trained it"
            )
    diffusion = GaussianDiffusion(config.diffusion)
    T = config.diffusion.num_timesteps
    try:
        steps = [int(s) for s in args.steps.split(",")] if args.steps else sorted(trajectory_timesteps(T))
    except ValueError:
        raise ConfigError(
            f"--steps takes comma-separated timesteps (e.g. 0,50,99), got '{args.steps}'"
        ) from None
    if any(not 0 <= s < T for s in steps):
        raise ConfigError(f"--steps must lie in [0, {T - 1}], got {steps}")
    n = min(args.num, len(dataset))
    items = [dataset[i] for i in range(n)]
    batch = getattr(dataset, "collate", default_collate)(items)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        x0 = encoder.encode(batch["x"])
        noise = torch.randn(x0.shape, generator=gen)
        frames = [encoder.decode(diffusion.q_sample(x0, torch.full((n,), s), noise)) for s in steps]
    writer_options = {
        **getattr(dataset, "writer_options", dict)(),
        **(config.writer.options if config.writer else {}),
    }
    if config.writer is None:
        raise ConfigError(f"modality '{config.modality}' has no writer")
    writer = registry.build("writer", config.writer.name, **writer_options)
    default = Path("runs") / f"noise-{config.modality}" / f"forward{getattr(writer, 'extension', '')}"
    out = resolve_output(args.out, default, writer_extensions(writer))
    prompts = [str(it.get("text", "")) for it in items]
    written = writer.write_forward(steps, torch.stack(frames), prompts, out)
    print_outputs(f"forward process of {n} {config.dataset.name} item(s) at t = {steps}:", list(written))
    return 0
