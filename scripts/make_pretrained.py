"""Retrain shipped pretrained models from scratch and write their model cards (`make pretrained`).

For each pretrained model (default: every one the installed plugins register)::

    1. polydiff train COMMAND --out WORK/NAME/run --no-progress   (COMMAND from --command or its card)
    2. export the EMA weights as float32 and as float16; `polydiff evaluate` both (same seed)
    3. keep float16 when it scores at least what float32 scores, else float32
    4. refuse (exit 1, package untouched) when the kept weights miss the target
    5. copy config.json + model.safetensors into the plugin's package directory, evaluate the
       shipped files by name (`polydiff evaluate NAME`), write metrics.json and README.md

Usage::

    python scripts/make_pretrained.py                        # every registered model, from its card
    python scripts/make_pretrained.py timeseries-sines \\
        --command "polydiff train timeseries --preset quick --steps 600 --seed 0" \\
        --metric caption_accuracy --target 0.95              # a new one (its record must exist)

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

BODY = """\
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
`python scripts/make_pretrained.py {name}` (or `make pretrained` for every shipped model).

## What its evaluator measured

`{evaluate_command}` on the shipped files ({evaluator}, {num_samples} samples, seed {eval_seed}):

| metric | value |
|---|---|
{metric_rows}

Target: `{metric}` >= {target}. Weights in float32 scored {score_fp32:.4f}, in float16
{score_fp16:.4f}, so {dtype} is shipped ({dtype_reason}).
"""


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


def evaluate(target: str, out: Path, num_per_prompt: int, seed: int) -> tuple[list[str], dict[str, Any]]:
    argv = ["evaluate", target, "--out", str(out), "--num-per-prompt", str(num_per_prompt)]
    argv += ["--seed", str(seed), "--device", "cpu"]
    run(polydiff(*argv))
    return argv, json.loads((out / METRICS).read_text())


def make(name: str, args: argparse.Namespace) -> None:
    from polydiff.training.checkpoint import load_checkpoint

    record = records()[name]
    dest = record.directory(missing_ok=True)
    card = read_card(dest) if (dest / CARD).is_file() else {}
    command = args.command or card.get("command")
    metric = args.metric or card.get("metric")
    target = args.target if args.target is not None else float(card.get("target", "nan"))
    prompt = args.prompt or card.get("prompt")
    num_per_prompt = args.num_per_prompt or int(card.get("eval_num_per_prompt", 16))
    if not command or not metric or target != target:
        sys.exit(f"{name}: no card at {dest / CARD}; pass --command, --metric and --target")
    words = shlex.split(command)
    if words[:2] != ["polydiff", "train"] or any(w in OWN_FLAGS for w in words):
        sys.exit(f"{name}: --command must be `polydiff train MODALITY ...` without {', '.join(OWN_FLAGS)}")

    work = args.work / name
    shutil.rmtree(work, ignore_errors=True)
    train_argv = [*words[1:], "--out", str(work / "run"), "--no-progress"]
    load_before, start = load1(), time.time()
    run(polydiff(*train_argv))
    wall, load_after = time.time() - start, load1()

    scores, exported = {}, {}
    for dtype in ("float32", "float16"):
        exported[dtype] = export_checkpoint(work / "run", work / dtype, dtype=dtype)
        _, metrics = evaluate(str(exported[dtype]), work / f"eval-{dtype}", num_per_prompt, args.seed)
        scores[dtype] = float(metric_value(metrics, metric))
    dtype = "float16" if scores["float16"] >= scores["float32"] else "float32"
    reason = (
        "it scores no lower than float32"
        if dtype == "float16"
        else "float16 scored lower, so the weights stay in float32"
    )
    if scores[dtype] < target:
        sys.exit(f"{name}: {metric} {scores[dtype]:.4f} < target {target}; the package is left as it was")
    size = (exported[dtype] / MODEL).stat().st_size
    if size > MAX_FILE_BYTES:
        sys.exit(f"{name}: {MODEL} is {size:,} bytes, over {MAX_FILE_BYTES:,}; ship a smaller model")

    staging = dest.with_name(f".{dest.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(exported[dtype], staging)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    eval_argv, metrics = evaluate(name, work / "eval-shipped", num_per_prompt, args.seed)
    (dest / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")

    config = json.loads((dest / CONFIG).read_text())
    train = config["train"]
    ckpt = load_checkpoint(dest)
    fields = {
        "name": name,
        "modality": config["modality"],
        "plugin": record.plugin,
        "command": command,
        "steps": train["steps"],
        "seed": train["seed"],
        "train_wall_s": f"{wall:.0f}",
        "machine": machine(),
        "dtype": dtype,
        "metric": metric,
        "score": f"{float(metric_value(metrics, metric)):.4f}",
        "target": target,
        "evaluate_command": "polydiff " + shlex.join(eval_argv[:2] + eval_argv[4:]),
        "eval_num_per_prompt": num_per_prompt,
        "eval_seed": args.seed,
    }
    flat = {f"{k}.{kk}": vv for k, v in metrics.items() if isinstance(v, dict) for kk, vv in v.items()}
    scalar = {
        k: v
        for k, v in {**metrics, **flat}.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("per_")
    }
    samples = [s.get("prompt") for s in metrics.get("samples", []) if isinstance(s, dict)]
    prompts = [prompt] if prompt else list(metrics.get("per_prompt", {})) or [p for p in samples if p] or [""]
    if prompts[0]:
        fields["prompt"] = prompts[0]
    body = BODY.format(
        **{**fields, "prompt": prompts[0]},
        num_per_prompt=num_per_prompt,
        argv="polydiff " + shlex.join(train_argv),
        batch_size=train["batch_size"],
        lr=train["lr"],
        num_params=sum(t.numel() for t in ckpt.model.values()),
        load_before=load_before,
        load_after=load_after,
        model_bytes=(dest / MODEL).stat().st_size,
        date=time.strftime("%Y-%m-%d"),
        evaluator=config["evaluator"]["name"] if config.get("evaluator") else "-",
        num_samples=metrics.get("num_samples", "?"),
        metric_rows="\n".join(
            f"| {k} | {v:.4f} |"
            for k, v in scalar.items()
            if k not in ("seed", "steps", "guidance", "num_samples")
        ),
        score_fp32=scores["float32"],
        score_fp16=scores["float16"],
        dtype_reason=reason,
    )
    (dest / CARD).write_text(render_card(fields, body))
    problems = check_card(dest)
    if problems:
        sys.exit(f"{name}: the card disagrees with its files: {'; '.join(problems)}")
    score = float(metric_value(metrics, metric))
    print(f"{name}: {metric} {score:.4f} ({dtype}, trained in {wall:.0f} s) -> {dest}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="pretrained names (default: every registered one)")
    parser.add_argument("--command", help="the `polydiff train ...` command (default: the card's)")
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
    args = parser.parse_args(argv)
    names = args.names or sorted(records())
    if args.command and len(names) != 1:
        parser.error("--command needs exactly one name")
    for name in names:
        make(name, args)
    total = sum(f.stat().st_size for r in records().values() for f in r.directory(missing_ok=True).glob("*"))
    if total > MAX_TOTAL_BYTES:
        print(f"warning: shipped pretrained files total {total:,} bytes, over {MAX_TOTAL_BYTES:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
