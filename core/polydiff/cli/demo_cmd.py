"""``polydiff demo [MODALITY|all]``: train a small model on embedded data, sample, show the process.

Where a plugin ships a pretrained model for the modality (``polydiff_pretrained``), the demo
shows three things: the forward process on real data, a short live training run (its loss curve
and what that model makes after so few steps), and the pretrained model's samples and reverse
process with the scores its card records. Other modalities train their demo preset and sample it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.cli.common import (
    add_progress_argument,
    add_threads_argument,
    lengths_of,
    print_outputs,
    trajectory_timesteps,
)

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.plugins import Registry
    from polydiff.records import Pretrained

#: Built-in modalities first, in this order; any other installed modality follows.
ORDER = ("image", "tts", "video")
#: What an evaluator's metrics.json records about how it sampled (not scores).
SAMPLING_KEYS = {
    "seed",
    "steps",
    "guidance",
    "sampler",
    "temperature",
    "length_scale",
    "num_per_prompt",
    "seconds",
}
#: Sections of an evaluator's metrics.json that hold its settings, not scores.
NOT_SCORES = {"settings", "checks"}
#: Optimizer steps of the live run when a pretrained model shows the trained result (a
#: modality's ``demo["live_steps"]`` overrides it; ``--steps`` overrides both).
LIVE_STEPS = 150


@dataclass
class Part:
    """One section of the demo page: a title, the files under it, its scores and a note."""

    title: str
    files: list[Path]
    scores: dict[str, float | str] = field(default_factory=dict)
    note: str = ""
    #: Show the live run's step count and final loss (from its ``metrics.jsonl``) here.
    losses: bool = False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train a small model on embedded data and show what it makes",
        description="For each modality: quick training, samples for its demo prompts "
        "(held-out ones included), the reverse and forward process. A modality with a "
        "pretrained model trains only briefly and shows the pretrained model's samples.",
    )
    p.add_argument("modality", nargs="?", default="all", help="a modality, or all (default)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="where runs and pictures go")
    p.add_argument("--steps", type=int, help="override the training steps (smoke runs)")
    p.add_argument("--device", help="cpu, cuda ... (default: cuda if available)")
    add_threads_argument(p)
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
        parts = demo_modality(name, args.out / name, steps=args.steps, device=args.device, progress=progress)
        summary.append((name, time.perf_counter() - start, parts))
    page = write_page(args.out / "index.html", summary)
    print("\ndemo finished")
    for name, seconds, parts in summary:
        print_outputs(f"{name} ({seconds:.0f} s):", [f for part in parts for f in part.files])
    print(f"open {page} in a browser: every picture, clip and sound on one page")
    return 0


def write_page(path: Path, summary: list[tuple[str, float, list[Part]]]) -> Path:
    """``index.html`` beside the modalities' folders: each one's parts, with losses and scores."""
    from polydiff.report_page import ReportPage

    page = ReportPage(
        "polydiff demo",
        "Per modality: the forward process q(x_t | x_0) on real items, the training loss, samples for "
        "the demo prompts (held-out combinations included) and the reverse process (x_t and the "
        "predicted x0 at several steps). Where a pretrained model is installed, the live run is "
        "short and the samples, reverse process and scores are the pretrained model's.",
    )
    for name, seconds, parts in summary:
        for i, part in enumerate(parts):
            scores: dict[str, float | str] = {}
            if i == 0:
                scores["wall time (s)"] = round(seconds, 1)
            if part.losses:
                scores.update(final_loss(path.parent / name / "metrics.jsonl"))
            scores.update(part.scores)
            page.section(part.title, part.files, scores=scores, note=part.note)
    return page.write(path)


def final_loss(log: Path) -> dict[str, float | str]:
    """``{"steps": ..., "final loss": ...}`` from a run's ``metrics.jsonl`` (empty without one)."""
    if not log.is_file():
        return {}
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
    lines = [ln for ln in lines if "loss" in ln and "step" in ln]
    if not lines:
        return {}
    return {"steps": int(lines[-1]["step"]), "final loss": float(lines[-1]["loss"])}


def pretrained_for(name: str, registry: Registry, dataset: str) -> tuple[Pretrained, Path] | None:
    """The installed pretrained model the demo of ``name`` shows, and its directory, or None.

    The modality's ``demo["pretrained"]`` names it; otherwise the first main model (not another
    model's expert) of the modality trained on ``dataset``. A record whose files are not
    installed is passed over.
    """
    from polydiff.errors import PluginError
    from polydiff.pretrained import CONFIG, records

    known = records(registry)
    wanted = registry.modality(name).demo.get("pretrained")
    experts = {e for r in known.values() for e in r.experts}
    if wanted is not None:
        candidates = [known[wanted]] if wanted in known else []
    else:
        candidates = [r for n, r in sorted(known.items()) if r.modality == name and n not in experts]
    for record in candidates:
        try:
            directory = record.directory()
            config = json.loads((directory / CONFIG).read_text())
        except (PluginError, OSError, json.JSONDecodeError):
            continue
        if wanted is not None or config.get("dataset", {}).get("name") == dataset:
            return record, directory
    return None


def card_scores(directory: Path) -> tuple[dict[str, float | str], str]:
    """The scores a pretrained model's card and ``metrics.json`` record, and a one-line note."""
    from polydiff.pretrained import METRICS, read_card

    card = read_card(directory)
    scores: dict[str, float | str] = {}
    if card.get("metric"):
        scores[f"{card['metric']} (card)"] = card.get("score", "?")
        scores["target"] = card.get("target", "-")
    try:
        metrics = json.loads((directory / METRICS).read_text())
    except (OSError, json.JSONDecodeError):
        metrics = {}
    for key, value in metrics.items():
        if key.startswith("per_") or key == card.get("metric") or key in SAMPLING_KEYS | NOT_SCORES:
            continue
        if isinstance(value, dict):
            scores.update(
                {
                    f"{key} {k}": v
                    for k, v in value.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
            )
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            scores[key] = value
    note = (
        f"Pretrained '{card.get('name', directory.name)}': `{card.get('command', '?')}` "
        f"({card.get('steps', '?')} steps, {card.get('train_wall_s', '?')} s of training, "
        f"{card.get('dtype', '?')}); "
        f"scores measured by `{card.get('evaluate_command', 'polydiff evaluate')}` on the shipped files."
    )
    return scores, note


def demo_modality(
    name: str, out: Path, *, steps: int | None = None, device: str | None = None, progress: bool | None = None
) -> list[Part]:
    """Train ``name``'s demo preset, then write samples, the reverse and the forward process.

    With a pretrained model installed for the modality (:func:`pretrained_for`), the training
    is capped at :data:`LIVE_STEPS` and the samples and reverse process are the pretrained
    model's. ``progress``: draw the training and sampling bars (default: on a terminal).
    Returns the page's parts; their files exist."""
    from polydiff.outputs import existing, progress_enabled
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.plugins import get_registry
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer

    registry = get_registry()
    progress = progress_enabled() if progress is None else progress
    demo = registry.modality(name).demo
    config = RunConfig.for_modality(
        name,
        preset=demo.get("preset", "quick"),
        dataset=demo.get("dataset"),
        encoder=demo.get("encoder"),
        overrides={"train": {"steps": steps}} if steps else {},
    )
    shipped = pretrained_for(name, registry, config.dataset.name)
    if shipped is not None and not steps:
        config.train.steps = min(config.train.steps, int(demo.get("live_steps", LIVE_STEPS)))
    prompts = list(demo.get("prompts", [""]))
    sample_opts = dict(demo.get("sample", {}))
    kind = "a short live run" if shipped is not None else "training"
    print(f"== demo {name}: {kind} on {config.dataset.name} ({config.train.steps} steps) -> {out}")
    # a demo owns its directory: running it again replaces the previous demo's run
    result = Trainer(config, out, registry=registry, device=device, overwrite=True, progress=progress).fit()
    live = DiffusionPipeline.from_checkpoint(out, registry=registry, device=device)
    forward = write_forward(live, registry, out)
    if shipped is None:
        paths = list(result.outputs)
        paths += write_samples(
            live, prompts, int(demo.get("num_per_prompt", 1)), out, "", sample_opts, progress
        )
        return [Part(name, existing(paths + forward), losses=True)]

    record, directory = shipped
    live_files = list(result.outputs)
    live_files += write_samples(live, prompts, 1, out, "live-", sample_opts, progress, trajectory=False)
    pipe = DiffusionPipeline.from_pretrained(record.name, registry=registry, device=device)
    shown = list(demo.get("pretrained_prompts", prompts))
    print(f"== demo {name}: the pretrained model '{record.name}' ({directory})")
    files = write_samples(pipe, shown, int(demo.get("num_per_prompt", 1)), out, "pretrained-", {}, progress)
    scores, note = card_scores(directory)
    shown_scores = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()]
    print(f"   {record.name}: " + ", ".join(shown_scores[:4]))
    held_out = [p for p in shown if p in set(demo.get("held_out", []))]
    if held_out:
        note += f" Prompts held out of its training: {', '.join(held_out)}."
    return [
        Part(f"{name}: forward process on real data", existing(forward)),
        Part(
            f"{name}: live training, {config.train.steps} steps",
            existing(live_files),
            note="What a model makes after this short run (loss curve and one sample per demo prompt).",
            losses=True,
        ),
        Part(f"{name}: pretrained {record.name}", existing(files), scores=scores, note=note),
    ]


def write_samples(
    pipe: DiffusionPipeline,
    prompts: list[str],
    num_per_prompt: int,
    out: Path,
    prefix: str,
    sample_opts: dict[str, Any],
    progress: bool,
    *,
    trajectory: bool = True,
) -> list[Path]:
    """``{prefix}samples`` (and ``{prefix}reverse``, the reverse process) of ``pipe`` for ``prompts``."""
    writer = pipe.writer()
    ext = getattr(writer, "extension", "")
    T = pipe.config.diffusion.num_timesteps
    gen = pipe(
        prompts,
        num_per_prompt=num_per_prompt,
        seed=0,
        trajectory_steps=trajectory_timesteps(T) if trajectory else None,
        progress=progress,
        **sample_opts,
    )
    paths = list(
        writer.write_samples(gen.samples, gen.prompts, out / f"{prefix}samples{ext}", lengths=gen.lengths)
    )
    if trajectory:
        paths += writer.write_trajectory(
            gen.trajectory_steps,
            gen.trajectory_xt,
            gen.trajectory_x0,
            gen.prompts,
            out / f"{prefix}reverse{ext}",
            **lengths_of(gen),
        )
    return paths


def write_forward(pipe: DiffusionPipeline, registry: Registry, out: Path) -> list[Path]:
    """The forward process q(x_t | x_0) on the first real training items of ``pipe``'s dataset."""
    import torch

    from polydiff.builder import build_dataset
    from polydiff.interfaces import default_collate

    writer = pipe.writer()
    ext = getattr(writer, "extension", "")
    T = pipe.config.diffusion.num_timesteps
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
    return list(
        writer.write_forward(steps_fw, xt, [str(it.get("text", "")) for it in items], out / f"forward{ext}")
    )
