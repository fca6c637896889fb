"""``polydiff evaluate CHECKPOINT``: score a model with the modality's offline checkers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from polydiff.cli.common import (
    add_experts,
    add_progress_argument,
    add_sampling_arguments,
    add_speed_arguments,
    apply_compile,
    check_flag,
    print_outputs,
    sampling_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a trained model with its modality's evaluator",
        description="Generate for the evaluation prompts and score the samples.",
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        help="run directory, checkpoints/step-*, or a pretrained model's name "
        "(`polydiff plugins` lists them)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="directory for metrics.json and pictures "
        "(default: RUN/eval; runs/pretrained/NAME/eval for a pretrained name)",
    )
    p.add_argument("--num-per-prompt", type=int, default=4, help="samples per evaluation prompt")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the evaluator (JSON or text value; repeat for several), "
        "e.g. --option max_prompts=8",
    )
    add_sampling_arguments(p)
    add_speed_arguments(p, "sampling")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polydiff.errors import ConfigError
    from polydiff.outputs import files_under, progress_enabled, resolve_directory, written_since
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.pretrained import run_dir_of

    check_flag(args, "num_per_prompt", "num_per_prompt")
    given = {k: v for k, v in sampling_options(args).items() if v is not None}
    pipe = DiffusionPipeline.from_pretrained(args.checkpoint, device=args.device)
    add_experts(pipe, args)
    apply_compile(pipe, args)
    pipe.progress = progress_enabled(args.no_progress)  # the evaluator's sampling shows its steps
    cfg = pipe.config
    if cfg.backbone.name == "diffusers-unet2d":
        raise ConfigError(
            f"{args.checkpoint} is a diffusers model: polydiff has no data it was trained on to judge it "
            f"by; sample it with `polydiff sample {args.checkpoint}`"
        )
    # a modality without an evaluator of its own is judged by its data (the core's own-data judges)
    name = cfg.evaluator.name if cfg.evaluator is not None else "own-data"
    options = {**(cfg.evaluator.options if cfg.evaluator is not None else {}), **_options(args.option)}
    try:
        evaluator = pipe.registry.build("evaluator", name, **options)
    except TypeError as exc:
        raise ConfigError(f"evaluator '{name}': {exc}; check the --option names") from exc
    run_dir = run_dir_of(args.checkpoint, pipe.pretrained)
    out = resolve_directory(args.out or run_dir / "eval")
    before = files_under(out)
    # options evaluators don't take as arguments reach the pipeline as the run's sampling defaults
    cfg.sample.update({k: v for k, v in given.items() if k in ("eta", "temperature")})
    opts = {k: v for k, v in given.items() if k in ("sampler", "steps", "guidance")}
    opts.setdefault("sampler", cfg.sample.get("sampler", "ddim"))
    opts.setdefault("steps", cfg.sample.get("steps", 50))
    opts.setdefault("guidance", cfg.sample.get("guidance", 3.0))
    metrics = evaluator.evaluate(pipe, out, num_per_prompt=args.num_per_prompt, seed=args.seed, **opts)
    if pipe.experts:  # what sampled is part of the result
        metrics["experts"] = [
            {"checkpoint": str(e.checkpoint_path), "timesteps": [lo, hi]} for lo, hi, e in pipe.experts
        ]
        if (out / "metrics.json").is_file():
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    print(json.dumps(metrics, indent=2, default=str))
    print_outputs(f"wrote in {out}:", written_since(out, before))
    return 0


def _options(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` strings -> options (values parsed as JSON, else kept as text)."""
    from polydiff.errors import ConfigError

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option expects KEY=VALUE (e.g. max_prompts=8), got '{item}'")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
