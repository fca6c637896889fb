"""Retrain shipped pretrained models from scratch and write their model cards (`make pretrained`).

For each pretrained model (default: every one the installed plugins register)::

    1. polydiff train COMMAND --out WORK/NAME/run --no-progress   (COMMAND from --command or its card)
    2. export the EMA weights as float32 and as float16; `polydiff evaluate` both (same seed)
    3. keep float16 when it scores at least what float32 scores, else float32
    4. refuse (exit 1, package untouched) when the kept weights miss the target
    5. copy config.json + model.safetensors into the plugin's package directory, evaluate the
       shipped files by name (`polydiff evaluate NAME`), write metrics.json and README.md

A model whose record names denoiser experts (``Pretrained.experts``) is built together with
them: each expert is trained with the command of its own card (or ``--expert-command``), the
pair is exported and evaluated together (``polydiff evaluate MAIN --expert EXPERT``) in each
dtype, both are shipped in the dtype chosen, and each gets a card (the expert's names the
model it serves, ``expert_of``; both record the pair's score). An expert's name alone is built
through its main model.

Usage::

    python scripts/make_pretrained.py                        # every registered model, from its card
    python scripts/make_pretrained.py timeseries-sines \\
        --command "polydiff train timeseries --preset quick --steps 600 --seed 0" \\
        --metric caption_accuracy --target 0.95              # a new one (its record must exist)
    python scripts/make_pretrained.py video-motion \
        --command "polydiff train video --preset pretrained --seed 0" \
        --expert-command "polydiff train video --preset pretrained-expert --seed 0" \
        --metric held_out.direction_accuracy --target 0.9    # a model with its expert

``--reuse`` takes a finished run in ``WORK/NAME/run`` whose ``build.json`` (written after
training: the command, wall time, load) records the same command, instead of retraining.

Run it with ``OMP_NUM_THREADS=1 nice -n 5`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from polydiff.pretrained import (
    CARD,
    CONFIG,
    METRICS,
    MODEL,
    check_card,
    export_checkpoint,
    metric_value,
    read_card,
    records,
    render_card,
)

#: The largest file a plugin should ship, and all shipped models together.
MAX_FILE_BYTES, MAX_TOTAL_BYTES = 4 * 2**20, 16 * 2**20
#: Flags the script sets itself; a recorded command must not carry them.
OWN_FLAGS = ("--out", "--no-progress", "--resume")

#: The card's opening for a model used on its own (with its experts, if any).
USE = """\
# {name}

A pretrained **{modality}** model shipped with `{plugin}`. Generate with it by name:

```bash
polydiff sample {name} --prompt "{prompt}" --num 4      # -> runs/pretrained/{name}/samples/
polydiff evaluate {name} --num-per-prompt {num_per_prompt}       # -> runs/pretrained/{name}/eval/
```

```python
from polydiff import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("{name}")
out = pipe(["{prompt}"], num_per_prompt=4)
```
"""

#: The section a model with denoiser experts adds: they come with it by name.
EXPERTS = """\
## Its denoiser experts

Every name above loads these with it (`pipe.experts`); each predicts in place of this model at
the timesteps it was trained on, this model below them. Scores on this card are the pair's.

| expert | timesteps | command | steps | training wall time | weights |
|---|---|---|---|---|---|
{rows}
"""

#: The card's opening for an expert: not a model to sample on its own.
EXPERT_USE = """\
# {name}

A denoiser **expert** for timesteps {lo}..{hi_1} of [`{expert_of}`](../{expert_of}/README.md),
shipped with `{plugin}`. It is loaded with `{expert_of}` by name and predicts in place of it at
those timesteps; alone it is not a model to sample from. The scores below are the pair's:

```bash
polydiff sample {expert_of} --prompt "{prompt}" --num 4    # samples with this expert
polydiff evaluate {expert_of} --num-per-prompt {num_per_prompt}
```
"""

#: How it was made and what was measured (every card).
MADE = """\
## How it was made

| | |
|---|---|
| command | `{command}` |
| run as | `{argv}` |
| steps | {steps} (batch {batch_size}, lr {lr}, seed {seed}) |
| parameters | {num_params:,} |
| training wall time | {train_wall_s} s |
| machine | {machine} |
| load average (1 min) before / after | {load_before} / {load_after} |
| weights | {dtype}, {model_bytes:,} bytes (EMA; loads into the fp32 model) |
| date | {date} |

Rebuild it from scratch (retrains, re-evaluates, rewrites this card):
`python scripts/make_pretrained.py {rebuild}` (or `make pretrained` for every shipped model).

## What its evaluator measured

`{evaluate_command}` on the shipped files ({evaluator}, {num_samples} samples, seed {eval_seed}{sampling}):

| metric | value |
|---|---|
{metric_rows}

Target: `{metric}` >= {target}. Weights in float32 scored {score_fp32:.4f}, in float16
{score_fp16:.4f}, so {dtype} is shipped ({dtype_reason}).
"""
#: metrics.json sections that record how it sampled, not what it scored.
NOT_SCORES = ("settings.", "checks.")


def machine() -> str:
    """CPU model, cores, and accelerator, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    return (
        f"{cpu}, {os.cpu_count()} cores (OMP_NUM_THREADS={threads}), {gpu}, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def load1() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def polydiff(*args: str) -> list[str]:
    """argv of a `polydiff` command run with this interpreter."""
    return [sys.executable, "-m", "polydiff", *args]


def run(argv: list[str]) -> None:
    print("+", shlex.join(argv), flush=True)
    subprocess.run(argv, check=True)


def evaluate(
    target: str, out: Path, num_per_prompt: int, seed: int, experts: list[str] = ()
) -> tuple[list[str], dict[str, Any]]:
    """`polydiff evaluate TARGET [--expert E ...]` into ``out``; its argv and metrics."""
    argv = ["evaluate", target, "--out", str(out), "--num-per-prompt", str(num_per_prompt)]
    argv += ["--seed", str(seed), "--device", "cpu"]
    for expert in experts:
        argv += ["--expert", expert]
    run(polydiff(*argv))
    return argv, json.loads((out / METRICS).read_text())


def check_command(name: str, command: str) -> list[str]:
    """``command``'s words; exits when it is not `polydiff train ...` or sets the script's own flags."""
    words = shlex.split(command)
    if words[:2] != ["polydiff", "train"] or any(w in OWN_FLAGS for w in words):
        sys.exit(f"{name}: --command must be `polydiff train MODALITY ...` without {', '.join(OWN_FLAGS)}")
    return words


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir``'s latest checkpoint is its last step."""
    try:
        config = json.loads(
            (run_dir / "checkpoints" / (run_dir / "latest").read_text().strip() / CONFIG).read_text()
        )
        step = int((run_dir / "latest").read_text().strip().removeprefix("step-"))
    except (OSError, ValueError, json.JSONDecodeError):
        return False
    return step == int(config["train"]["steps"])


def train(name: str, command: str, work: Path, reuse: bool) -> dict[str, Any]:
    """Train ``command`` into ``work/run`` (or, with ``reuse``, take the finished run there whose
    ``build.json`` records the same command). Returns build.json's content: command, argv,
    train_wall_s, load_before, load_after."""
    words = check_command(name, command)
    build = work / "build.json"
    argv = [*words[1:], "--out", str(work / "run"), "--no-progress"]
    if reuse and build.is_file() and finished(work / "run"):
        info = json.loads(build.read_text())
        if info.get("command") == command:
            print(
                f"{name}: reusing the finished run {work / 'run'} ({info['train_wall_s']:.0f} s of training)"
            )
            return info
        print(f"{name}: {build} records another command ({info.get('command')!r}); retraining")
    shutil.rmtree(work, ignore_errors=True)
    load_before, start = load1(), time.time()
    run(polydiff(*argv))
    info = {
        "command": command,
        "argv": "polydiff " + shlex.join(argv),
        "train_wall_s": time.time() - start,
        "load_before": load_before,
        "load_after": load1(),
    }
    build.write_text(json.dumps(info, indent=2) + "\n")
    return info


def ship(source: Path, dest: Path) -> None:
    """Replace ``dest`` by a copy of ``source`` (staged beside it, then renamed)."""
    staging = dest.with_name(f".{dest.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


def metric_rows(metrics: dict[str, Any]) -> str:
    """The card's table rows: every number in ``metrics`` (one level of sections flattened),
    without per-prompt rows and the sampling settings."""
    flat = {f"{k}.{kk}": vv for k, v in metrics.items() if isinstance(v, dict) for kk, vv in v.items()}
    scalar = {
        k: v
        for k, v in {**metrics, **flat}.items()
        if isinstance(v, (int, float))
        and not isinstance(v, bool)
        and not k.startswith("per_")
        and not k.startswith(NOT_SCORES)
        and k not in ("seed", "steps", "guidance", "num_samples")
    }
    return "\n".join(f"| {k} | {v:.4f} |" for k, v in scalar.items())


def relabel(value: Any, names: dict[str, str]) -> Any:
    """``value`` (metrics) with every string that is a key of ``names`` (a shipped directory's
    path) replaced by its value (the model's name): the card's files name no build machine's paths."""
    if isinstance(value, dict):
        return {k: relabel(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [relabel(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


def sampling_of(metrics: dict[str, Any]) -> str:
    """``", ddim 25 steps, guidance 3.0"``: how the evaluator sampled (top level or ``settings``)."""
    where = {**metrics, **(metrics.get("settings") or {})}
    sampler, steps, guidance = where.get("sampler"), where.get("steps"), where.get("guidance")
    text = f", {sampler} {steps} steps" if sampler and steps else ""
    return text + (f", guidance {guidance}" if guidance is not None else "")


def first_prompt(metrics: dict[str, Any]) -> str:
    """The evaluator's first prompt (``per_prompt`` as a mapping or as rows), else ``samples``'."""
    per_prompt = metrics.get("per_prompt", {})
    rows = (
        list(per_prompt)
        if isinstance(per_prompt, dict)
        else [r.get("prompt") for r in per_prompt if isinstance(r, dict)]
    )
    rows += [s.get("prompt") for s in metrics.get("samples", []) if isinstance(s, dict)]
    return next((p for p in rows if isinstance(p, str) and p), "")


def make(name: str, args: argparse.Namespace) -> None:
    from polydiff.training.checkpoint import load_checkpoint

    known = records()
    record = known[name]
    served = [r.name for r in known.values() if name in r.experts]
    if served:
        sys.exit(
            f"{name} is an expert of {served[0]}: build them together with "
            f"`python scripts/make_pretrained.py {served[0]}`"
        )
    dest = record.directory(missing_ok=True)
    card = read_card(dest) if (dest / CARD).is_file() else {}
    command = args.command or card.get("command")
    metric = args.metric or card.get("metric")
    target = args.target if args.target is not None else float(card.get("target", "nan"))
    prompt = args.prompt or card.get("prompt")
    num_per_prompt = args.num_per_prompt or int(card.get("eval_num_per_prompt", 16))
    if not command or not metric or target != target:
        sys.exit(f"{name}: no card at {dest / CARD}; pass --command, --metric and --target")
    check_command(name, command)
    experts = list(record.experts)
    given = args.expert_command or []
    if given and len(given) != len(experts):
        sys.exit(
            f"{name}: {len(given)} --expert-command for {len(experts)} experts "
            f"({', '.join(experts) or 'none'})"
        )
    expert_commands = {}
    for i, expert in enumerate(experts):
        edest = known[expert].directory(missing_ok=True)
        expert_commands[expert] = (
            given[i] if given else read_card(edest).get("command") if (edest / CARD).is_file() else None
        )
        if not expert_commands[expert]:
            sys.exit(f"{name}: its expert {expert} has no card at {edest / CARD}; pass --expert-command")

    # 1. train the model and its experts
    members = [name, *experts]
    commands = {name: command, **expert_commands}
    builds = {n: train(n, commands[n], args.work / n, args.reuse) for n in members}

    # 2-4. export all of them in each dtype, evaluate them together, keep the better dtype
    scores, exported = {}, {}
    for dtype in ("float32", "float16"):
        exported[dtype] = {
            n: export_checkpoint(args.work / n / "run", args.work / n / dtype, dtype=dtype) for n in members
        }
        _, metrics = evaluate(
            str(exported[dtype][name]),
            args.work / name / f"eval-{dtype}",
            num_per_prompt,
            args.seed,
            [str(exported[dtype][e]) for e in experts],
        )
        scores[dtype] = float(metric_value(metrics, metric))
    dtype = "float16" if scores["float16"] >= scores["float32"] else "float32"
    reason = (
        "it scores no lower than float32"
        if dtype == "float16"
        else "float16 scored lower, so the weights stay in float32"
    )
    if scores[dtype] < target:
        sys.exit(f"{name}: {metric} {scores[dtype]:.4f} < target {target}; the package is left as it was")
    for n in members:
        size = (exported[dtype][n] / MODEL).stat().st_size
        if size > MAX_FILE_BYTES:
            sys.exit(f"{n}: {MODEL} is {size:,} bytes, over {MAX_FILE_BYTES:,}; ship a smaller model")

    # 5. ship, evaluate the shipped files by name (the experts come with it), write the cards
    dests = {n: known[n].directory(missing_ok=True) for n in members}
    for n in members:
        ship(exported[dtype][n], dests[n])
    eval_argv, metrics = evaluate(name, args.work / name / "eval-shipped", num_per_prompt, args.seed)
    metrics = relabel(metrics, {str(dests[n]): n for n in members})
    score = float(metric_value(metrics, metric))
    prompt = prompt or first_prompt(metrics)
    shared = {
        "machine": machine(),
        "dtype": dtype,
        "metric": metric,
        "score": f"{score:.4f}",
        "target": target,
        "evaluate_command": "polydiff " + shlex.join(eval_argv[:2] + eval_argv[4:]),
        "eval_num_per_prompt": num_per_prompt,
        "eval_seed": args.seed,
    }
    configs = {n: json.loads((dests[n] / CONFIG).read_text()) for n in members}
    rows = []
    for e in experts:
        lo, hi = configs[e]["train"]["timestep_range"]
        rows.append(
            f"| [`{e}`](../{e}/README.md) | {lo}..{hi - 1} | `{commands[e]}` | "
            f"{configs[e]['train']['steps']} (batch {configs[e]['train']['batch_size']}) | "
            f"{builds[e]['train_wall_s']:.0f} s | "
            f"{dtype}, {(dests[e] / MODEL).stat().st_size:,} bytes |"
        )
    for n in members:
        config, directory = configs[n], dests[n]
        (directory / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        train_cfg = config["train"]
        fields: dict[str, Any] = {
            "name": n,
            "modality": config["modality"],
            "plugin": known[n].plugin,
            "command": commands[n],
            "steps": train_cfg["steps"],
            "seed": train_cfg["seed"],
            "train_wall_s": f"{builds[n]['train_wall_s']:.0f}",
            **shared,
        }
        if n == name and experts:
            fields["experts"] = ", ".join(experts)
        if n != name:
            lo, hi = train_cfg["timestep_range"]
            fields["expert_of"] = name
            fields["timesteps"] = f"{lo}..{hi - 1}"
        if prompt:
            fields["prompt"] = prompt
        values = {
            **fields,
            "prompt": prompt,
            "num_per_prompt": num_per_prompt,
            "argv": builds[n]["argv"],
            "batch_size": train_cfg["batch_size"],
            "lr": train_cfg["lr"],
            "num_params": sum(t.numel() for t in load_checkpoint(directory).model.values()),
            "load_before": builds[n]["load_before"],
            "load_after": builds[n]["load_after"],
            "model_bytes": (directory / MODEL).stat().st_size,
            "date": time.strftime("%Y-%m-%d"),
            "rebuild": name,
            "evaluator": config["evaluator"]["name"] if config.get("evaluator") else "-",
            "num_samples": metrics.get("num_samples") or (metrics.get("all") or {}).get("clips", "?"),
            "sampling": sampling_of(metrics),
            "metric_rows": metric_rows(metrics),
            "score_fp32": scores["float32"],
            "score_fp16": scores["float16"],
            "dtype_reason": reason,
        }
        if n == name:
            body = USE.format(**values)
            if experts:
                body += "\n" + EXPERTS.format(rows="\n".join(rows))
        else:
            lo, hi = train_cfg["timestep_range"]
            body = EXPERT_USE.format(**values, lo=lo, hi_1=hi - 1)
        body += "\n" + MADE.format(**values)
        (directory / CARD).write_text(render_card(fields, body))
        problems = check_card(directory)
        if problems:
            sys.exit(f"{n}: the card disagrees with its files: {'; '.join(problems)}")
    wall = builds[name]["train_wall_s"]
    with_experts = f" with {', '.join(experts)}" if experts else ""
    print(f"{name}{with_experts}: {metric} {score:.4f} ({dtype}, trained in {wall:.0f} s) -> {dest}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="pretrained names (default: every registered one)")
    parser.add_argument("--command", help="the `polydiff train ...` command (default: the card's)")
    parser.add_argument(
        "--expert-command",
        action="append",
        help="the `polydiff train ...` command of the model's expert, one per expert in the record's "
        "order (default: each expert's card's)",
    )
    parser.add_argument("--metric", help="the evaluator's metric that decides (default: the card's)")
    parser.add_argument("--target", type=float, help="the least score to ship (default: the card's)")
    parser.add_argument(
        "--prompt", help="the card's example prompt (default: the card's, or the evaluator's first)"
    )
    parser.add_argument(
        "--num-per-prompt", type=int, help="evaluation samples per prompt (default: the card's, else 16)"
    )
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument("--work", type=Path, default=Path("runs/pretrained-build"), help="scratch directory")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="take a finished run in WORK/NAME/run trained with the same command instead of retraining",
    )
    args = parser.parse_args(argv)
    known = records()
    experts = {e for r in known.values() for e in r.experts}
    # an expert is built with the model it serves
    names = args.names or sorted(n for n in known if n not in experts)
    if (args.command or args.expert_command) and len(names) != 1:
        parser.error("--command and --expert-command need exactly one name")
    for name in names:
        make(name, args)
    total = sum(f.stat().st_size for r in known.values() for f in r.directory(missing_ok=True).glob("*"))
    if total > MAX_TOTAL_BYTES:
        print(f"warning: shipped pretrained files total {total:,} bytes, over {MAX_TOTAL_BYTES:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
