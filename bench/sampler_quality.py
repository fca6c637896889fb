"""Quality against network evaluations (NFE) for every sampler, on trained image checkpoints.

For each checkpoint (``digits`` and ``shapes`` runs of the image plugin) and each sampler, the image
plugin's evaluator (``image-checkers``) scores samples made with 5, 10, 20, 50, 100 network
evaluations, and DDPM with 1000 as the reference. Samplers are compared at equal NFE, not equal
steps: Heun evaluates the network twice per step except the last (``2N - 1``), the others once.
The same seed gives every sampler the same initial noise.

Scores: ``digits``: accuracy of a classifier trained on real digits; ``shapes``: the fraction of
images whose colour, shape and position all match the prompt (seen and held-out prompts pooled).

Usage::

    python bench/sampler_quality.py --train               # train missing quick checkpoints, then measure
    python bench/sampler_quality.py --checkpoint digits=RUN_DIR --checkpoint shapes=RUN_DIR
    python bench/sampler_quality.py --from-json --write-docs   # redraw the PNG and the docs from the JSON
    python bench/sampler_quality.py --device cuda --checkpoint digits=RUN_DIR \
        --results-dir OUT/sampler_quality --figure OUT/sampler_quality.png   # on a GPU

Results go to ``bench/results/sampler_quality-DATASET.json`` (one file per dataset, so datasets can
be measured in parallel processes; rewritten after every run, so a run cut short keeps what it
measured), the curve to ``docs/img/sampler_quality.png``. On a GPU the network and the samples'
decoding run there; the noise is still drawn from the seeded CPU generator (same samples as on
the CPU up to floating point), and the checkers are trained and applied on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SAMPLERS_PAGE, MachineState, markdown_table, replace_section  # noqa: E402
from line_chart import Panel, Series, draw_line_chart, nice_ceiling  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
FIGURE = ROOT / "docs" / "img" / "sampler_quality.png"
FINDINGS = ROOT / "bench" / "findings" / "sampler_quality.md"
SECTION = "## Samplers: quality against network evaluations"
SAMPLERS = ("ddpm", "ddim", "dpmpp-2m", "euler", "heun")
NFES = (5, 10, 20, 50, 100)
#: The reference: DDPM with every training step (``--reference-nfe`` changes the steps, for smoke tests).
REFERENCE_SAMPLER, REFERENCE_NFE = "ddpm", 1000
#: Network evaluations per step, and how many fewer the whole run makes (Heun skips its
#: correction on the last step, whose next noise level is 0).
EVALS_PER_STEP: dict[str, tuple[int, int]] = {"heun": (2, 1)}
#: Target of the issue: at 20 NFE the best sampler within this many points of DDPM at 1000 steps.
TARGET_POINTS = 2.0
TARGET_NFE = 20


def nfe_of(sampler: str, steps: int) -> int:
    """Network evaluations of ``steps`` steps of ``sampler`` (CFG's two halves share one batched forward)."""
    per_step, saved = EVALS_PER_STEP.get(sampler, (1, 0))
    return per_step * steps - saved


def steps_for_nfe(sampler: str, nfe: int) -> int:
    """Most steps of ``sampler`` that fit in ``nfe`` network evaluations (at least 1 step)."""
    per_step, saved = EVALS_PER_STEP.get(sampler, (1, 0))
    return max(1, (nfe + saved) // per_step)


def score_of(metrics: dict[str, Any]) -> tuple[float, int]:
    """``(score in [0, 1], number of samples)`` from the image evaluator's metrics."""
    if metrics["dataset"] == "digits":
        return float(metrics["accuracy"]), int(metrics["num_samples"])
    groups = [metrics[g] for g in ("held_out", "seen") if g in metrics]
    n = sum(int(g["num_samples"]) for g in groups)
    return sum(g["all"] * g["num_samples"] for g in groups) / n, n


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of an accuracy ``p`` measured on ``n`` samples."""
    return math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


class SamplingOptions:
    """A pipeline whose calls get extra sampling options (e.g. ``clip_denoised=True``) that the
    evaluator does not pass on; every other attribute is the wrapped pipeline's."""

    def __init__(self, pipeline: Any, **options: Any) -> None:
        self._pipeline, self._options = pipeline, options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._pipeline(*args, **{**self._options, **kwargs})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


@contextmanager
def reuse_checkers() -> Iterator[None]:
    """Build each image checker once per checkpoint instead of once per evaluation.

    The image evaluator trains its checker (a small classifier on real data, seeded) on every
    ``evaluate`` call; across dozens of sampler settings that dominates. Within this block the checker
    classes return the instance built first. The checkers are deterministic given their seed, so the
    scores are the same as without the cache.
    """
    from polydiff_image.evaluate import digits_checker, shapes_checker

    patched = [(digits_checker, "DigitsChecker"), (shapes_checker, "ShapesChecker")]
    originals = {(m, name): getattr(m, name) for m, name in patched}
    built: dict[str, Any] = {}

    def once(cls: type) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            if cls.__name__ not in built:
                built[cls.__name__] = cls(*args, **kwargs)
            return built[cls.__name__]

        return make

    for (module, name), cls in originals.items():
        setattr(module, name, once(cls))
    try:
        yield
    finally:
        for (module, name), cls in originals.items():
            setattr(module, name, cls)


def train_checkpoint(dataset: str, out: Path, preset: str = "quick") -> Path:
    """Train the image plugin's ``preset`` on ``dataset`` into ``out`` (the ``polydiff train`` path)."""
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer

    config = RunConfig.for_modality("image", preset=preset, dataset=dataset)
    start = time.perf_counter()
    result = Trainer(config, out, progress=False, device="cpu").fit()
    print(f"trained {dataset} ({preset}) in {time.perf_counter() - start:.0f} s -> {result.checkpoint_dir}")
    return out


#: Pipeline batch size (prompts x samples per chunk; classifier-free guidance doubles the network's
#: batch) where ``--batch-size`` is not given: the pipeline's default on the CPU, one or two chunks
#: per evaluation on a GPU, where sampling these small UNets is bound by kernel launches.
DEFAULT_BATCH_SIZE = {"cpu": 64, "cuda": 512}


def device_description(device: torch.device) -> str:
    """``"NVIDIA H200 (cuda)"`` for a GPU, ``""`` for the CPU (the machine line says the rest)."""
    if device.type != "cuda":
        return ""
    return f"{torch.cuda.get_device_name(device)} (cuda, torch {torch.__version__})"


def evaluate_checkpoint(
    path: Path,
    *,
    samplers: list[str],
    nfes: list[int],
    num_per_prompt: int,
    guidance: float | None,
    seed: int,
    max_seconds: float,
    out_dir: Path,
    reference_nfe: int | None = REFERENCE_NFE,
    clip_denoised: bool = False,
    clip_reference: bool = False,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    on_run: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Score ``path`` with every sampler at every NFE, then DDPM at ``reference_nfe`` steps (None: no
    reference); JSON-able results.

    ``clip_denoised`` clamps every predicted x0 to [-1, 1]; ``clip_reference`` adds the DDPM
    reference with x0 clamped as one more run. The network runs on ``device`` with ``batch_size``
    samples per pipeline chunk (default :data:`DEFAULT_BATCH_SIZE`). ``on_run(result)`` is called
    with the results so far after every run (to save them as they come).
    """
    from polydiff.pipeline import DiffusionPipeline

    device = torch.device(device)
    batch_size = batch_size or DEFAULT_BATCH_SIZE.get(device.type, 64)
    base = DiffusionPipeline.from_checkpoint(path, device=device)
    pipe = SamplingOptions(base, batch_size=batch_size, clip_denoised=clip_denoised)
    clipped_pipe = SamplingOptions(base, batch_size=batch_size, clip_denoised=True)
    cfg = base.config
    evaluator = base.registry.build("evaluator", cfg.evaluator.name, **cfg.evaluator.options)
    guidance = float(cfg.sample.get("guidance", 3.0) if guidance is None else guidance)
    dataset = cfg.dataset.name
    runs: list[dict[str, Any]] = []
    result = {
        "dataset": dataset,
        "checkpoint": str(path),
        "samplers": samplers,
        "nfe_requested": sorted(nfes),
        "max_seconds": max_seconds,
        "guidance": guidance,
        "spacing": cfg.sample.get("spacing", "leading"),
        "num_per_prompt": num_per_prompt,
        "seed": seed,
        "device": device.type,
        "batch_size": batch_size,
        "unet_parameters": sum(p.numel() for p in base.model.unet.parameters()),
        "runs": runs,
    }
    seconds_per_nfe: dict[str, float] = {}
    # (sampler, steps, x0 clipped, is a reference)
    jobs = [(s, steps_for_nfe(s, n), clip_denoised, False) for n in sorted(nfes) for s in samplers]
    if reference_nfe is not None:
        ref_steps = steps_for_nfe(REFERENCE_SAMPLER, reference_nfe)
        jobs.append((REFERENCE_SAMPLER, ref_steps, clip_denoised, True))
        if clip_reference and not clip_denoised:
            jobs.append((REFERENCE_SAMPLER, ref_steps, True, True))
    with reuse_checkers():
        for sampler, steps, clip, reference in jobs:
            nfe = nfe_of(sampler, steps)
            if seconds_per_nfe and not reference:
                estimate = nfe * max(seconds_per_nfe.values())
                if estimate > max_seconds:
                    print(
                        f"  skip {sampler} at {nfe} NFE: about {estimate:.0f} s "
                        f"> --max-seconds {max_seconds:.0f}"
                    )
                    continue
            start = time.perf_counter()
            metrics = evaluator.evaluate(
                clipped_pipe if clip else pipe,
                out_dir / dataset / f"{sampler}-{nfe}{'-clip' if clip else ''}",
                num_per_prompt=num_per_prompt,
                sampler=sampler,
                steps=steps,
                guidance=guidance,
                seed=seed,
            )
            seconds = time.perf_counter() - start
            if runs and nfe >= 10:  # the first call also trains the checker: do not estimate from it
                seconds_per_nfe[sampler] = seconds / nfe
            score, n = score_of(metrics)
            runs.append(
                {
                    "sampler": sampler,
                    "steps": steps,
                    "nfe": nfe,
                    "score": score,
                    "num_samples": n,
                    "seconds": round(seconds, 1),
                    "reference": reference,
                    "clip_denoised": clip,
                    "metrics": metrics,
                }
            )
            print(
                f"  {dataset:7s} {sampler:9s} {steps:5d} steps {nfe:5d} NFE{' clip' if clip else ''}  "
                f"score {score:6.1%} (n={n})  {seconds:6.1f} s",
                flush=True,
            )
            if on_run is not None:
                on_run(result)
    return result


def clipped(run: dict[str, Any]) -> bool:
    return bool(run.get("clip_denoised", False))


def label(run: dict[str, Any]) -> str:
    """``"ddim"``, ``"ddim, x0 clipped"``, ``"DDPM 1000 steps"``: how a run is named in tables and plots."""
    name = f"DDPM {run['steps']} steps" if run["reference"] else run["sampler"]
    return name + (", x0 clipped" if clipped(run) else "")


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The references, the best sampler at the target NFE and its gap to each reference in points."""
    runs = result["runs"]
    refs = [r for r in runs if r["reference"]]
    at_target = [
        r for r in runs if r["nfe"] <= TARGET_NFE and r["nfe"] >= TARGET_NFE - 1 and not r["reference"]
    ]
    best = max(at_target, key=lambda r: r["score"], default=None)
    gaps = [(ref, 100 * (ref["score"] - best["score"])) for ref in refs] if best else []
    return {"references": refs, "best": best, "gaps": gaps}


@dataclass(frozen=True)
class Metric:
    """One quality measure read off a run: ``value(run) -> float``; percentages are in [0, 1]."""

    name: str
    title: str
    value: Callable[[dict[str, Any]], float]
    percent: bool = True
    higher_is_better: bool = True


def metrics_of(dataset: str) -> list[Metric]:
    """What the docs plot and tabulate for ``dataset``: the primary score (what the target is about)
    first. Digit accuracy saturates on this easy set, so the Frechet distance is shown too."""
    score = Metric(
        "score",
        "digit accuracy" if dataset == "digits" else "colour, shape and position all right",
        lambda r: r["score"],
    )
    if dataset != "digits":
        return [score]
    frechet = Metric(
        "frechet",
        "Frechet distance in classifier features",
        lambda r: r["metrics"]["frechet"],
        percent=False,
        higher_is_better=False,
    )
    return [score, frechet]


def _fmt(metric: Metric, value: float) -> str:
    return f"{100 * value:.1f}" if metric.percent else f"{value:.2f}"


def plot(results: list[dict[str, Any]], path: Path) -> Path:
    """One panel per dataset and metric: a line per sampler, the DDPM reference dashed."""
    panels = []
    for res in results:
        runs = res["runs"]
        for metric in metrics_of(res["dataset"]):
            curves = [r for r in runs if not r["reference"]]
            names = list(
                dict.fromkeys(label(r) for r in sorted(curves, key=lambda r: SAMPLERS.index(r["sampler"])))
            )
            series = [
                Series(n, [(r["nfe"], metric.value(r)) for r in curves if label(r) == n]) for n in names
            ]
            refs = [(label(r), metric.value(r)) for r in runs if r["reference"]]
            if not metric.percent and res["dataset"] == "digits" and runs:
                refs.append(("real digits", runs[0]["metrics"]["frechet_real_reference"]))
            values = [y for s in series for _, y in s.points] + [y for _, y in refs]
            y_range = (0.0, 1.0) if metric.percent else (0.0, nice_ceiling(max(values, default=1.0)))
            panels.append(
                Panel(
                    title=f"{res['dataset']}: {metric.title}",
                    series=[s for s in series if s.points],
                    references=refs,
                    x_label="network evaluations (log scale)",
                    y_range=y_range,
                    percent=metric.percent,
                )
            )
    return draw_line_chart(panels, path, x_range=(4, 1000))


def render(results: list[dict[str, Any]], figure: Path, findings: str = "") -> str:
    """The Markdown body of the docs section; ``findings`` (Markdown) is appended as is."""
    rel = os.path.relpath(figure, SAMPLERS_PAGE.parent)
    parts = [
        "Each sampler at 5, 10, 20, 50 and 100 network evaluations (NFE) and DDPM at 1000 steps (the "
        "reference, also with predicted x0 clipped to [-1, 1], see below), scored by the image plugin's "
        "evaluator (`image-checkers`: checkers trained on real data only). Samplers are compared at "
        "equal NFE: Heun makes `2N - 1` evaluations for `N` steps "
        "(so its points sit at 5, 9, 19, 49, 99 NFE), the others one per step; classifier-free guidance "
        "batches both halves into one forward, so it does not change NFE. Every sampler starts from the "
        "same seeded noise; `ddpm`, `ddim` and `dpmpp-2m` visit the timesteps of the checkpoint's spacing, "
        "`euler` and `heun` Karras' noise levels (rho 7) from `sigma_max = min(80, schedule's largest "
        "sigma)` (EDM's default; 80 for these cosine schedules, whose largest is 4096) down to the "
        "schedule's smallest sigma.",
        "",
        f"![quality against NFE]({rel})",
        "",
        "Reproduce: `python bench/sampler_quality.py --train --write-docs` (trains the `quick` checkpoints "
        "if missing); the commands that measured the parts below in parallel are in `bench/README.md`.",
    ]
    for res in results:
        runs = res["runs"]
        n = max(r["num_samples"] for r in runs)
        parts += [
            "",
            f"### {res['dataset']}",
            "",
            f"{n} samples per cell ({res['num_per_prompt']} per prompt; binomial standard error about "
            f"{100 * standard_error(0.85, n):.1f} points at 85%), guidance {res['guidance']}, spacing "
            f"{res.get('spacing', 'leading')!r}, UNet {res['unet_parameters']:,} parameters, checkpoint "
            f"`{res['checkpoint']}`, sampled on {res.get('device', 'cpu')}. "
            f"Machine: {res.get('machine', '?')}.",
        ]
        curves = sorted((r for r in runs if not r["reference"]), key=lambda r: SAMPLERS.index(r["sampler"]))
        for metric in metrics_of(res["dataset"]):
            rows = []
            for name in dict.fromkeys(label(r) for r in curves):
                by_nfe = {r["nfe"]: r for r in curves if label(r) == name}
                cells = [by_nfe.get(k) or by_nfe.get(k - 1) for k in NFES]
                rows.append([name, *[_fmt(metric, metric.value(r)) if r else "-" for r in cells]])
            header = f"{metric.title} ({'%' if metric.percent else 'lower is better'})"
            reference = "".join(
                f"; {label(r)}: {_fmt(metric, metric.value(r))}" for r in runs if r["reference"]
            )
            parts += [
                "",
                f"{header}{reference}:",
                "",
                markdown_table(["sampler", *[f"{k} NFE" for k in NFES]], rows),
            ]
        summary = summarize(res)
        best = summary["best"]
        if best and summary["gaps"]:
            against = "; ".join(
                f"{label(ref)} {100 * ref['score']:.1f}% (difference {-gap:+.1f} points): "
                f"{'met' if gap <= TARGET_POINTS else 'not met'}"
                for ref, gap in summary["gaps"]
            )
            parts += [
                "",
                f"Target (best sampler at {TARGET_NFE} NFE within {TARGET_POINTS:g} points of DDPM at 1000 "
                f"steps): `{label(best)}` {100 * best['score']:.1f}% against {against}.",
            ]
        skipped = [
            f"{s} at {k}"
            for s in res["samplers"]
            for k in res["nfe_requested"]
            if not any(r["sampler"] == s and nfe_of(s, steps_for_nfe(s, k)) == r["nfe"] for r in runs)
        ]
        if skipped:
            parts += [
                "",
                f"Skipped (estimated over {res['max_seconds']:.0f} s each): {', '.join(skipped)} NFE.",
            ]
    if findings.strip():
        parts += ["", findings.strip()]
    return "\n".join(parts)


def results_path(dataset: str, results_dir: Path = RESULTS_DIR, part: str = "") -> Path:
    return results_dir / f"sampler_quality-{dataset}{'-' + part if part else ''}.json"


def load_results(results_dir: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    """Every dataset's saved results (:func:`evaluate_checkpoint`'s, plus ``machine``), sorted by dataset.

    Parts of one dataset measured by separate processes (``--part``, e.g. the curves and the
    reference) are merged: their runs are concatenated, the first part's settings kept.
    """
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("sampler_quality-*.json")):
        part = json.loads(path.read_text())
        into = merged.setdefault(part["dataset"], {**part, "runs": [], "machines": []})
        into["runs"] += part["runs"]
        into["machines"].append(part.get("machine", "?"))
        into["samplers"] = list(dict.fromkeys(into["samplers"] + part["samplers"]))
        into["nfe_requested"] = sorted(set(into["nfe_requested"]) | set(part["nfe_requested"]))
    for res in merged.values():  # "CPU, cores, torch, threads; load average ..." once, then each part's load
        machines = res.pop("machines")
        head = machines[0].split("; load average")[0]
        loads = [m.split("load average (1/5/15 min) ", 1)[-1] for m in machines]
        res["machine"] = f"{head}; load average (1/5/15 min) of each part: " + "; ".join(loads)
    return [merged[d] for d in sorted(merged)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="DATASET=PATH",
        help="a trained image run (repeatable); default runs/bench/{digits,shapes}-quick",
    )
    p.add_argument(
        "--train", action="store_true", help="train the quick preset where a checkpoint is missing"
    )
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    p.add_argument("--nfe", nargs="+", type=int, default=list(NFES), help="network evaluations to measure")
    p.add_argument("--num-per-prompt", type=int, default=10, help="samples per evaluation prompt")
    p.add_argument("--guidance", type=float, default=None, help="default: the checkpoint's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-seconds",
        type=float,
        default=180.0,
        help="skip a sampler/NFE whose estimated time exceeds this (never the DDPM reference)",
    )
    p.add_argument(
        "--reference",
        choices=["include", "only", "skip"],
        default="include",
        help="measure the DDPM reference after the curves, alone, or not (run parts in parallel with --part)",
    )
    p.add_argument(
        "--clip-denoised", action="store_true", help="clamp predicted x0 to [-1, 1] (not the default)"
    )
    p.add_argument(
        "--clip-reference",
        action="store_true",
        help="also measure the DDPM reference with predicted x0 clamped to [-1, 1]",
    )
    p.add_argument("--device", default="cpu", help="where the network runs: cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"samples per pipeline chunk (default {DEFAULT_BATCH_SIZE['cpu']} on the CPU, "
        f"{DEFAULT_BATCH_SIZE['cuda']} on a GPU; guidance doubles the network's batch)",
    )
    p.add_argument("--part", default="", help="suffix of the results file, for parts measured separately")
    p.add_argument("--reference-nfe", type=int, default=REFERENCE_NFE, help="DDPM steps of the reference")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="one JSON per dataset")
    p.add_argument(
        "--samples-dir",
        type=Path,
        default=ROOT / "runs" / "bench" / "sampler_quality",
        help="where the evaluator's sample grids and metrics.json go",
    )
    p.add_argument("--figure", type=Path, default=FIGURE)
    p.add_argument(
        "--write-docs", action="store_true", help=f"rewrite '{SECTION}' in docs/research/samplers.md"
    )
    p.add_argument("--from-json", action="store_true", help="redraw figure and docs from the saved results")
    args = p.parse_args(argv)

    if args.reference == "only":
        args.nfe = []
    if not args.from_json:
        torch.set_num_threads(args.threads)
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device here.")
        if args.batch_size is not None and args.batch_size < 1:
            raise SystemExit(f"--batch-size must be at least 1, got {args.batch_size}")
        checkpoints = dict(c.split("=", 1) for c in args.checkpoint) or {
            d: str(ROOT / "runs" / "bench" / f"{d}-quick") for d in ("digits", "shapes")
        }
        for dataset, path in checkpoints.items():
            path = Path(path)
            if not path.exists():
                if not args.train:
                    raise SystemExit(
                        f"no checkpoint at {path}; pass --train to train the quick preset there, or "
                        f"--checkpoint {dataset}=RUN_DIR"
                    )
                train_checkpoint(dataset, path)
            print(f"{dataset}: {path}")
            state = MachineState.capture()

            def save(result: dict[str, Any], state: MachineState = state) -> Path:
                state.finish()
                gpu = device_description(device)
                result["machine"] = (gpu + "; " if gpu else "") + state.describe()
                out = results_path(result["dataset"], args.results_dir, args.part)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(result, indent=1) + "\n")
                return out

            result = evaluate_checkpoint(
                path,
                samplers=args.samplers,
                nfes=args.nfe,
                num_per_prompt=args.num_per_prompt,
                guidance=args.guidance,
                seed=args.seed,
                max_seconds=args.max_seconds,
                out_dir=args.samples_dir,
                reference_nfe=None if args.reference == "skip" else args.reference_nfe,
                clip_denoised=args.clip_denoised,
                clip_reference=args.clip_reference,
                device=device,
                batch_size=args.batch_size,
                on_run=save,
            )
            print(f"results in {save(result)}")
    results = load_results(args.results_dir)
    if not results:
        raise SystemExit(f"no results in {args.results_dir}: measure first (see --help)")
    plot(results, args.figure)
    print(f"figure in {args.figure}")
    text = render(results, args.figure, FINDINGS.read_text() if FINDINGS.exists() else "")
    if args.write_docs:
        replace_section(SAMPLERS_PAGE, SECTION, text)
        print(f"wrote '{SECTION}' in {SAMPLERS_PAGE}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
