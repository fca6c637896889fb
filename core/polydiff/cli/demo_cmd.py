"""``polydiff demo [MODALITY|all]``: train a small model on embedded data, sample, show the process."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from polydiff.cli.common import add_progress_argument, lengths_of, print_outputs, trajectory_timesteps

#: Built-in modalities first, in this order; any other installed modality follows.
ORDER = ("image", "tts", "video")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train a small model on embedded data and show what it makes",
        description="For each modality: quick training, samples for its demo prompts "
        "(held-out ones included), the reverse and forward process.",
    )
    p.add_argument("modality", nargs="?", default="all", help="a modality, or all (default)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where runs and pictures go")
    p.add_argument("--steps", type=int, help="override the training steps (smoke runs)")
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polydiff.outputs import progress_enabled, resolve_directory
    from polydiff.plugins import get_registry

    registry = get_registry()
    resolve_directory(args.out)
    progress = progress_enabled(args.no_progress)
    names = [m.name for m in registry.modalities() if m.demo]
    if args.modality != "all":
        registry.modality(args.modality)  # unknown names list the known ones
        names = [args.modality]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    summary = []
    for name in names:
        start = time.perf_counter()
        paths = demo_modality(name, args.out / name, steps=args.steps, device=args.device, progress=progress)
        summary.append((name, time.perf_counter() - start, paths))
    page = write_page(args.out / "index.html", summary)
    print("\ndemo finished")
    for name, seconds, paths in summary:
        print_outputs(f"{name} ({seconds:.0f} s):", paths)
    print(f"open {page} in a browser: every picture, clip and sound on one page")
    return 0


def write_page(path: Path, summary: list[tuple[str, float, list[Path]]]) -> Path:
    """``index.html`` beside the modalities' folders: each one's files, with its final losses."""
    import json

    from polydiff.report_page import ReportPage

    page = ReportPage(
        "polydiff demo",
        "Per modality: the forward process q(x_t | x_0) on real items, the training loss, samples for "
        "the demo prompts (held-out combinations included) and the reverse process (x_t and the "
        "predicted x_0 at several steps).",
    )
    for name, seconds, paths in summary:
        scores: dict[str, float | str] = {"wall time (s)": round(seconds, 1)}
        log = path.parent / name / "metrics.jsonl"
        if log.is_file():
            lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
            if lines:
                scores.update({"steps": int(lines[-1]["step"]), "final loss": float(lines[-1]["loss"])})
        page.section(name, paths, scores=scores)
    return page.write(path)


def demo_modality(
    name: str, out: Path, *, steps: int | None = None, device: str | None = None, progress: bool | None = None
) -> list[Path]:
    """Train ``name``'s demo preset, then write samples, the reverse and the forward process.

    ``progress``: draw the training and sampling bars (default: on a terminal). Returns the files
    written that exist."""
    import torch

    from polydiff.interfaces import default_collate
    from polydiff.outputs import existing, progress_enabled
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.plugins import get_registry
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer

    registry = get_registry()
    progress = progress_enabled() if progress is None else progress
    demo = registry.modality(name).demo
    overrides = {"train": {"steps": steps}} if steps else {}
    config = RunConfig.for_modality(
        name,
        preset=demo.get("preset", "quick"),
        dataset=demo.get("dataset"),
        encoder=demo.get("encoder"),
        overrides=overrides,
    )
    print(f"== demo {name}: training on {config.dataset.name} ({config.train.steps} steps) -> {out}")
    # a demo owns its directory: running it again replaces the previous demo's run
    result = Trainer(config, out, registry=registry, device=device, overwrite=True, progress=progress).fit()
    pipe = DiffusionPipeline.from_checkpoint(out, registry=registry, device=device)
    prompts = list(demo.get("prompts", [""]))
    T = pipe.config.diffusion.num_timesteps
    sample_opts = dict(demo.get("sample", {}))
    gen = pipe(
        prompts,
        num_per_prompt=int(demo.get("num_per_prompt", 1)),
        seed=0,
        trajectory_steps=trajectory_timesteps(T),
        progress=progress,
        **sample_opts,
    )
    writer = pipe.writer()
    ext = getattr(writer, "extension", "")
    paths = list(result.outputs)
    paths += writer.write_samples(gen.samples, gen.prompts, out / f"samples{ext}", lengths=gen.lengths)
    paths += writer.write_trajectory(
        gen.trajectory_steps,
        gen.trajectory_xt,
        gen.trajectory_x0,
        gen.prompts,
        out / f"reverse{ext}",
        **lengths_of(gen),
    )
    # the forward process on real training items, for comparison
    from polydiff.builder import build_dataset

    dataset = build_dataset(pipe.config, registry, "train")
    items = [dataset[i] for i in range(min(4, len(dataset)))]
    batch = getattr(dataset, "collate", default_collate)(items)
    steps_fw = sorted(trajectory_timesteps(T))
    with torch.no_grad():
        enc = pipe.model.encoder.cpu()
        x0 = enc.encode(batch["x"])
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
        xt = torch.stack(
            [
                enc.decode(pipe.model.diffusion.q_sample(x0, torch.full((len(items),), s), noise))
                for s in steps_fw
            ]
        )
    paths += writer.write_forward(
        steps_fw, xt, [str(it.get("text", "")) for it in items], out / f"forward{ext}"
    )
    return existing(paths)
