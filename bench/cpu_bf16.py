"""``--precision bf16`` on the CPU: float32 against bfloat16 as PyTorch runs it and as polydiff does.

Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` PyTorch runs GroupNorm and attention in
bfloat16 too, and on the CPU both kernels are slower in bfloat16 than in float32 at the UNets'
sizes: channels-last GroupNorm 3-5x, short attention 1.2-4.6x forward + backward. polydiff
computes them in float32 there (:class:`polydiff.nn.layers.GroupNorm`,
:func:`polydiff.nn.attention.scaled_dot_product_attention`; ``polydiff.nn.layers.CPU_FLOAT32_FOR``
empty turns it off). This measures, in one process and alternately (ABC, BCA, ...), three
variants: *fp32*, *bf16 (PyTorch)* (autocast, every kernel in bfloat16) and *bf16* (polydiff's
default):

* *UNets*: polydiff's UNet of ``bench/peer_models.py``'s CPU settings, a training step (forward,
  MSE, backward, fused AdamW) and a sampling forward;
* *trainers*: ``polydiff train MODALITY --preset quick``'s own step (image, video, tts), steps/s
  (one trainer per precision in the process, the bf16 one run in both bf16 variants);
* *the command* (``--cli-rounds N``): ``polydiff train image --preset quick`` in each variant, in turn,
  as steps/s of the whole command; the first round's fp32 and bf16 runs (same seed) then scored by
  ``polydiff evaluate`` (the shapes checkers).

Usage::

    python bench/cpu_bf16.py --rounds 7 --cli-rounds 2     # writes bench/results/cpu_bf16.json
    python bench/cpu_bf16.py --from-json --write-docs      # the section in docs/research/speed.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ROOT,
    SPEED_PAGE,
    MachineState,
    alternate,
    markdown_table,
    median,
    replace_section,
    without_out,
)
from peer_models import DEFAULT_SETTINGS, SETTINGS, Setting, build_polydiff  # noqa: E402

import polydiff.nn.layers as layers  # noqa: E402
from polydiff.allocator import configure_cpu_allocator  # noqa: E402
from polydiff.threads import SPINCOUNT  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cpu_bf16.json"
SECTION = "## bfloat16 on the CPU (`--precision bf16`)"
VARIANTS = ("fp32", "bf16-pytorch", "bf16")
LABELS = {"fp32": "fp32", "bf16-pytorch": "bf16 (PyTorch)", "bf16": "bf16 (polydiff)"}
MODALITIES = ("image", "video", "tts")
DEFAULT_FLOAT32_FOR = layers.CPU_FLOAT32_FOR


@contextlib.contextmanager
def islands(variant: str) -> Iterator[None]:
    """polydiff's float32 GroupNorm and attention on, except for ``bf16-pytorch``; restored after."""
    layers.CPU_FLOAT32_FOR = () if variant == "bf16-pytorch" else DEFAULT_FLOAT32_FOR
    try:
        yield
    finally:
        layers.CPU_FLOAT32_FOR = DEFAULT_FLOAT32_FOR


@contextlib.contextmanager
def running(variant: str) -> Iterator[None]:
    """The variant's precision: autocast for both bf16 variants, float32 islands for polydiff's."""
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16) if variant != "fp32" else contextlib.nullcontext()
    with islands(variant), bf16:
        yield


def measure_unet(setting: Setting, rounds: int) -> dict[str, Any]:
    """Training step and sampling forward of ``setting``'s polydiff UNet in each of :data:`VARIANTS`."""
    torch.manual_seed(0)
    model = build_polydiff(setting).model
    gen = torch.Generator().manual_seed(0)
    shape = (setting.batch, 3, setting.size, setting.size)
    x, noise = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    t = torch.randint(0, 1000, (setting.batch,), generator=gen)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def train_step(variant: str) -> float:
        model.train()
        start = time.perf_counter()
        with running(variant):
            loss = F.mse_loss(model(x, t).float(), noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def forward(variant: str) -> float:
        model.eval()
        start = time.perf_counter()
        with torch.no_grad(), running(variant):
            model(x, t)
        return time.perf_counter() - start

    for variant in VARIANTS:  # warm-up
        train_step(variant), train_step(variant), forward(variant)
    entry: dict[str, Any] = {
        "setting": setting.name,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    for key, fn in (("train_s", train_step), ("sample_s", forward)):
        timers = {v: (lambda v=v, fn=fn: median([fn(v) for _ in range(3)])) for v in VARIANTS}
        entry[key] = {v: median(times) for v, times in alternate(timers, rounds).items()}
    print(
        f"  {setting.name}: training step "
        + " / ".join(f"{1e3 * entry['train_s'][v]:.1f}" for v in VARIANTS)
        + " ms, sampling forward "
        + " / ".join(f"{1e3 * entry['sample_s'][v]:.1f}" for v in VARIANTS)
        + " ms",
        flush=True,
    )
    return entry


def measure_trainer(modality: str, rounds: int, steps: int = 4, preset: str = "quick") -> dict[str, Any]:
    """``polydiff train MODALITY --preset quick``'s step in each variant: chunks of ``steps`` steps."""
    from step_timer import close, trainer_for

    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            p: trainer_for(modality, Path(tmp) / p, preset=preset, train={"precision": p})
            for p in ("fp32", "bf16")
        }
        try:
            batches = {p: iter(tr.loader) for p, tr in trainers.items()}
            done = dict.fromkeys(trainers, 0)

            def chunk(variant: str, n: int = steps) -> float:
                p = "fp32" if variant == "fp32" else "bf16"
                trainer = trainers[p]
                with islands(variant):  # the trainer applies its own autocast
                    start = time.perf_counter()
                    for _ in range(n):
                        batch = next(batches[p], None)
                        if batch is None:
                            batches[p] = iter(trainer.loader)
                            batch = next(batches[p])
                        trainer._train_step(done[p], batch)  # autocast, loss, backward, AdamW, EMA
                        done[p] += 1
                    return (time.perf_counter() - start) / n

            for variant in VARIANTS:  # warm-up
                chunk(variant, 2)
            seconds = {
                v: median(s)
                for v, s in alternate({v: (lambda v=v: chunk(v)) for v in VARIANTS}, rounds).items()
            }
        finally:
            for trainer in trainers.values():
                close(trainer)
    entry = {"modality": modality, "preset": preset, "steps_per_s": {v: 1 / s for v, s in seconds.items()}}
    print(
        f"  {modality} {preset}: "
        + " / ".join(f"{entry['steps_per_s'][v]:.2f}" for v in VARIANTS)
        + " steps/s",
        flush=True,
    )
    return entry


#: Runs ``polydiff`` in a child process, with PyTorch's bfloat16 GroupNorm and attention when the
#: first argument is ``bf16-pytorch`` (the switch must be set before the command runs).
CLI = (
    "import sys, polydiff.nn.layers as layers\n"
    "if sys.argv[1] == 'bf16-pytorch': layers.CPU_FLOAT32_FOR = ()\n"
    "from polydiff.cli.main import main\n"
    "sys.exit(main(sys.argv[2:]))"
)


def measure_cli(rounds: int, seed: int = 3, threads: int = 2, steps: int = 800) -> dict[str, Any]:
    """``polydiff train image --preset quick`` as a user runs it, each variant in turn for ``rounds``
    rounds: steps/s after the first 100 steps; the first round's fp32 and bf16 runs also evaluated."""
    result: dict[str, Any] = {"seed": seed, "steps": steps, "steps_per_s": {v: [] for v in VARIANTS}}
    # The commands set GOMP_SPINCOUNT before torch loads (polydiff.threads); here torch loads first.
    env = dict(os.environ, GOMP_SPINCOUNT=os.environ.get("GOMP_SPINCOUNT", SPINCOUNT))
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for variant in order:
                run = Path(tmp) / f"{variant}-{r}"
                precision = "fp32" if variant == "fp32" else "bf16"
                train = ["train", "image", "--preset", "quick", "--steps", str(steps), "--seed", str(seed)]
                train += [
                    "--precision",
                    precision,
                    "--out",
                    str(run),
                    "--no-progress",
                    "--threads",
                    str(threads),
                ]
                commands = [train]
                if r == 0 and variant != "bf16-pytorch":
                    commands.append(["evaluate", str(run), "--no-progress", "--threads", str(threads)])
                for command in commands:
                    python = [sys.executable, "-c", CLI, variant, *command]
                    subprocess.run(python, check=True, capture_output=True, env=env)
                log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
                seconds = {e["step"]: e["time"] for e in log if "time" in e}
                result["steps_per_s"][variant].append((steps - 100) / (seconds[steps] - seconds[100]))
                if len(commands) > 1:
                    metrics = json.loads((run / "eval" / "metrics.json").read_text())
                    result[variant] = {
                        "held_out": metrics["held_out"]["mean"],
                        "seen": metrics["seen"]["mean"],
                        "samples": metrics["held_out"]["num_samples"],
                    }
                print(
                    f"  polydiff train image, {variant}: {result['steps_per_s'][variant][-1]:.2f} steps/s",
                    flush=True,
                )
    return result


def _over_fp32(values: dict[str, float], higher_is_faster: bool) -> list[str]:
    base = values["fp32"]
    return [
        f"{(values[v] / base if higher_is_faster else base / values[v]):.2f}x"
        for v in VARIANTS
        if v != "fp32"
    ]


def render(data: dict[str, Any]) -> str:
    unet_rows = []
    for e in data["unets"]:
        tr, sa = e["train_s"], e["sample_s"]
        unet_rows.append(
            [
                f"`{e['setting']}` ({e['parameters']:,} parameters)",
                " / ".join(f"{1e3 * tr[v]:.1f}" for v in VARIANTS),
                *_over_fp32(tr, higher_is_faster=False),
                " / ".join(f"{1e3 * sa[v]:.1f}" for v in VARIANTS),
                *_over_fp32(sa, higher_is_faster=False),
            ]
        )
    trainer_rows = [
        [
            f"`{e['modality']}` `{e['preset']}`",
            " / ".join(f"{e['steps_per_s'][v]:.2f}" for v in VARIANTS),
            *_over_fp32(e["steps_per_s"], higher_is_faster=True),
        ]
        for e in data["trainers"]
    ]
    order = " / ".join(LABELS[v] for v in VARIANTS)
    return (
        "`--precision bf16` runs the forward pass under `torch.autocast` in bfloat16. On the CPU, "
        "PyTorch's bfloat16 GroupNorm of channels-last activations and its bfloat16 attention kernel at "
        "the UNets' lengths are slower than their float32 kernels, so polydiff computes those two in "
        "float32 (casting in and out) and everything else (convolutions, linear layers) in bfloat16. "
        "*bf16 (PyTorch)* is autocast alone (`polydiff.nn.layers.CPU_FLOAT32_FOR = ()`). This machine's "
        "CPU has AVX-512 BF16 instructions; CPUs without bfloat16 instructions were not measured.\n\n"
        f"Machine: {data['machine']}. {data['threads']} thread(s), wall clock; the variants alternate "
        f"for {data['rounds']} rounds, medians reported.\n\n"
        f"Reproduce: `python bench/cpu_bf16.py {data['command']}`.\n\n"
        f"polydiff's UNet, ms per call ({order}) and gain over fp32:\n\n"
        + markdown_table(
            [
                "UNet",
                "training step",
                "bf16 (PyTorch)",
                "bf16 (polydiff)",
                "sampling forward",
                "bf16 (PyTorch)",
                "bf16 (polydiff)",
            ],
            unet_rows,
        )
        + f"\n\nThe trainer's step, steps/s ({order}) and gain over fp32:\n\n"
        + markdown_table(["trainer", "steps/s", "bf16 (PyTorch)", "bf16 (polydiff)"], trainer_rows)
        + "\n"
        + _render_cli(data.get("cli"))
    )


def _render_cli(cli: dict[str, Any] | None) -> str:
    if not cli:
        return ""
    speed = {v: median(values) for v, values in cli["steps_per_s"].items()}
    runs = " / ".join(", ".join(f"{x:.2f}" for x in cli["steps_per_s"][v]) for v in VARIANTS)
    rows = [
        [
            LABELS[v],
            f"{speed[v]:.2f} ({speed[v] / speed['fp32']:.2f}x)",
            f"{cli[v]['held_out']:.3f}" if v in cli else "-",
            f"{cli[v]['seen']:.3f}" if v in cli else "-",
        ]
        for v in VARIANTS
    ]
    samples = cli["fp32"]["samples"]
    rounds = len(cli["steps_per_s"]["fp32"])
    return (
        f"\nThe whole command (`--cli-rounds {rounds}`): `polydiff train image --preset quick --steps "
        f"{cli['steps']} --seed {cli['seed']} --precision P`, the variants in turn for {rounds} rounds, "
        "steps/s after the first 100 steps (median; each run: " + runs + "), then `polydiff evaluate` of "
        "the first round's runs: the shapes checkers' mean of colour, shape and position correct over "
        f"{samples} held-out-prompt and {samples} seen-prompt samples:\n\n"
        + markdown_table(["precision", "steps/s", "held-out prompts", "seen prompts"], rows)
        + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--settings", nargs="+", choices=list(SETTINGS), default=list(DEFAULT_SETTINGS["cpu"])
    )
    parser.add_argument("--modalities", nargs="+", default=list(MODALITIES))
    parser.add_argument(
        "--cli-rounds",
        type=int,
        default=0,
        help="rounds of whole `polydiff train image` runs (and evaluation)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--from-json", action="store_true", help="render --out into the docs")
    args = parser.parse_args(argv)
    if args.from_json:
        data = json.loads(args.out.read_text())
    else:
        configure_cpu_allocator()  # as polydiff's commands run
        torch.set_num_threads(args.threads)
        machine = MachineState.capture()
        unets = [measure_unet(SETTINGS[n], args.rounds) for n in args.settings]
        trainers = [measure_trainer(m, args.rounds) for m in args.modalities]
        cli = measure_cli(args.cli_rounds, threads=args.threads) if args.cli_rounds else None
        machine.finish()
        raw = argv if argv is not None else sys.argv[1:]
        data = {
            "machine": machine.describe(),
            "threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "command": " ".join(a for a in without_out(raw) if a != "--write-docs"),
            "unets": unets,
            "trainers": trainers,
            "cli": cli,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.write_docs:
        replace_section(SPEED_PAGE, SECTION, render(data))
        print(f"wrote the section {SECTION!r} of {SPEED_PAGE}")


if __name__ == "__main__":
    main()
