"""What a CPU training step spends outside the network: the optimizer, the EMA and the allocator.

Three measurements, each alternating its variants (AB, BA, ...):

* *optimizer*: AdamW's step over the parameters of ``bench/peer_models.py``'s CPU UNets, as
  PyTorch's per-tensor loop (its CPU default, what the trainer used before), ``foreach`` and
  ``fused`` (the trainer's, :mod:`polydiff.training.optimizer`);
* *EMA*: the weights' moving average as a lerp per tensor (before) and as one multi-tensor lerp
  (:class:`polydiff.training.ema.EMA`);
* *trainer*: ``polydiff train``'s own step (``--modality`` and ``--presets``, default image
  ``quick`` and ``full``), each variant in a child process of its own because the allocator setting is
  process-wide: *before* (glibc's allocator defaults, the looping AdamW and EMA), *allocator*
  (``POLYDIFF_CPU_ALLOCATOR=keep`` alone) and *all* (the default now), as steps/s with the minor
  page faults and system time per step.

Usage::

    python bench/train_overheads.py --threads 1 --clock cpu     # writes bench/results/train_overheads.json
    python bench/train_overheads.py --from-json --write-docs    # the section in docs/research/speed.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CLOCKS,
    ROOT,
    SPEED_PAGE,
    MachineState,
    alternate,
    markdown_table,
    median,
    replace_section,
    time_call,
    without_out,
)
from peer_models import DEFAULT_SETTINGS, SETTINGS, build_polydiff  # noqa: E402

from polydiff.allocator import ENV as ALLOCATOR_ENV  # noqa: E402
from polydiff.allocator import configure_cpu_allocator  # noqa: E402
from polydiff.training.ema import EMA  # noqa: E402
from polydiff.training.optimizer import make_adamw  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "train_overheads.json"
SECTION = "## Training step overheads: optimizer, EMA, allocator (CPU)"
CLOCK_WORDS = {"wall": "wall time", "cpu": "process CPU time"}
OPTIMIZERS = ("loop", "foreach", "fused")
EMAS = ("loop", "multi-tensor")
#: Trainer variants: (allocator mode, fused AdamW + multi-tensor EMA).
TRAINER_VARIANTS: dict[str, tuple[str, bool]] = {
    "before": ("system", False),
    "allocator": ("keep", False),
    "all": ("keep", True),
}


def loop_ema_update(ema: EMA, model: torch.nn.Module) -> None:
    """The EMA update as it was: one ``lerp_`` per tensor."""
    ema.num_updates += 1
    d = min(ema.decay, (1 + ema.num_updates) / (10 + ema.num_updates))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in ema.shadow:
                ema.shadow[name].lerp_(p.detach(), 1.0 - d)


def measure_parts(setting_name: str, rounds: int, clock: str, repeats: int = 20) -> dict[str, Any]:
    """Milliseconds per AdamW step (each of :data:`OPTIMIZERS`) and per EMA update (:data:`EMAS`)."""
    torch.manual_seed(0)
    model = build_polydiff(SETTINGS[setting_name]).model
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizers = {
        "loop": torch.optim.AdamW(params, lr=1e-4, foreach=False),
        "foreach": torch.optim.AdamW(params, lr=1e-4, foreach=True),
        "fused": make_adamw(params, lr=1e-4, weight_decay=0.01),
    }
    ema = EMA(model, 0.999)
    emas: dict[str, Callable[[], None]] = {
        "loop": lambda: loop_ema_update(ema, model),
        "multi-tensor": lambda: ema.update(model),
    }
    entry: dict[str, Any] = {"setting": setting_name, "parameters": sum(p.numel() for p in params)}
    entry["tensors"] = len(params)
    for key, fns in (("optimizer_ms", {k: o.step for k, o in optimizers.items()}), ("ema_ms", emas)):
        for fn in fns.values():
            time_call(fn, 3)
        timers = {k: (lambda f=f: 1e3 * median(time_call(f, repeats, clock))) for k, f in fns.items()}
        entry[key] = {k: median(v) for k, v in alternate(timers, rounds).items()}
    print(
        f"{setting_name}: AdamW "
        + " / ".join(f"{k} {v:.2f}" for k, v in entry["optimizer_ms"].items())
        + " ms; EMA "
        + " / ".join(f"{k} {v:.2f}" for k, v in entry["ema_ms"].items())
        + " ms",
        flush=True,
    )
    return entry


def child(
    variant: str, modality: str, preset: str, seconds: float, threads: int, clock: str
) -> dict[str, Any]:
    """One trainer variant in this process (its allocator mode comes from the environment)."""
    from step_timer import close, time_steps, trainer_for

    torch.set_num_threads(threads)
    mode = configure_cpu_allocator()
    _, fused = TRAINER_VARIANTS[variant]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_for(modality, Path(tmp) / "run", preset=preset)
        try:
            if not fused:
                cfg = trainer.config.train
                trainer.optimizer = torch.optim.AdamW(
                    trainer.params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False
                )
                if trainer.ema is not None:
                    ema = trainer.ema
                    ema.update = lambda model: loop_ema_update(ema, model)  # type: ignore[method-assign]
            time_steps(trainer, warmup=3, seconds=1.0)  # settle the allocator and the kernels
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = CLOCKS[clock]()
            timing = time_steps(trainer, warmup=0, seconds=seconds)
            used = CLOCKS[clock]() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            close(trainer)
    steps = timing.steps + 1  # time_steps' first step is timed apart
    return {
        "allocator": mode,
        "steps": steps,
        "steps_per_s": steps / used,
        "faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
        "system_ms_per_step": 1e3 * (after.ru_stime - before.ru_stime) / steps,
    }


def measure_trainer(
    modality: str, preset: str, rounds: int, seconds: float, threads: int, clock: str
) -> dict[str, Any]:
    """Each of :data:`TRAINER_VARIANTS` in a fresh child process per round, alternating."""
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in TRAINER_VARIANTS}

    def launch(variant: str) -> float:
        allocator, _ = TRAINER_VARIANTS[variant]
        env = dict(os.environ, **{ALLOCATOR_ENV: allocator, "OMP_NUM_THREADS": str(threads)})
        command = [sys.executable, __file__, "--child", variant, "--modality", modality, "--preset", preset]
        command += ["--seconds", str(seconds), "--threads", str(threads), "--clock", clock]
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"trainer variant {variant} failed:\n{out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        runs[variant].append(result)
        return result["steps_per_s"]

    steps_per_s = alternate({v: (lambda v=v: launch(v)) for v in TRAINER_VARIANTS}, rounds)
    entry: dict[str, Any] = {"modality": modality, "preset": preset, "seconds": seconds, "variants": {}}
    for v, values in steps_per_s.items():
        entry["variants"][v] = {
            "steps_per_s": median(values),
            "faults_per_step": median([r["faults_per_step"] for r in runs[v]]),
            "system_ms_per_step": median([r["system_ms_per_step"] for r in runs[v]]),
            "allocator": runs[v][0]["allocator"],
        }
    print(
        f"trainer {modality} {preset}: "
        + ", ".join(f"{v} {e['steps_per_s']:.2f} steps/s" for v, e in entry["variants"].items()),
        flush=True,
    )
    return entry


def _command(argv: list[str]) -> str:
    """The arguments that reproduce a run, without ``--out PATH``."""
    return " ".join(without_out(argv))


def render(data: dict[str, Any]) -> str:
    part_rows = []
    for e in data["parts"]:
        o, m = e["optimizer_ms"], e["ema_ms"]
        part_rows.append(
            [
                f"`{e['setting']}` ({e['parameters']:,} parameters, {e['tensors']} tensors)",
                f"{o['loop']:.2f}",
                f"{o['foreach']:.2f} ({o['loop'] / o['foreach']:.1f}x)",
                f"{o['fused']:.2f} ({o['loop'] / o['fused']:.1f}x)",
                f"{m['loop']:.2f}",
                f"{m['multi-tensor']:.2f} ({m['loop'] / m['multi-tensor']:.1f}x)",
            ]
        )
    words = {
        "before": "before: glibc's allocator defaults, AdamW and EMA a loop per tensor",
        "allocator": "`POLYDIFF_CPU_ALLOCATOR=keep` alone",
        "all": "keep + fused AdamW + multi-tensor EMA (the default)",
    }
    trainer_rows = []
    for t in data["trainers"]:
        base = t["variants"]["before"]["steps_per_s"]
        trainer_rows += [
            [
                f"`{t['preset']}`",
                words[v],
                f"{e['steps_per_s']:.2f}" + ("" if v == "before" else f" ({e['steps_per_s'] / base:.2f}x)"),
                f"{e['faults_per_step']:,.0f}",
                f"{e['system_ms_per_step']:.1f}",
            ]
            for v, e in t["variants"].items()
        ]
    t = data["trainers"][0]
    return (
        "What a training step spends outside the network on the CPU. PyTorch's AdamW loops over the "
        "parameters in Python on the CPU (a dozen small operations per tensor) unless asked for its "
        "`fused` kernel, which the trainer now uses (`polydiff.training.optimizer`; the same update to "
        "float rounding, the same state, `tests/core/test_optimizer_and_ema.py`). The EMA of the "
        "weights is one multi-tensor lerp. glibc hands the memory a step frees back to the system and "
        "the next step faults it in again, page by page; `polydiff`'s model commands set "
        "`POLYDIFF_CPU_ALLOCATOR=keep` (no heap trimming, `mmap` only above 32 MiB: "
        "`polydiff.allocator`).\n\n"
        f"Machine: {data['machine']}. Clock: {CLOCK_WORDS[data['clock']]}, {data['threads']} thread(s); "
        f"variants alternate for {data['rounds']} rounds, medians reported.\n\n"
        f"Reproduce: `python bench/train_overheads.py {data['command']}`.\n\n"
        "Milliseconds per optimizer step and per EMA update (gain over the loop):\n\n"
        + markdown_table(
            ["UNet", "AdamW: loop", "foreach", "fused", "EMA: loop", "multi-tensor"],
            part_rows,
        )
        + f"\n\n`polydiff train {t['modality']} --preset PRESET`'s own step, each variant in a "
        f"process of its own for {t['seconds']:g} s per round:\n\n"
        + markdown_table(
            ["preset", "variant", "steps/s", "minor page faults / step", "system ms / step"], trainer_rows
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument(
        "--settings", nargs="+", choices=list(SETTINGS), default=list(DEFAULT_SETTINGS["cpu"])
    )
    parser.add_argument("--modality", default="image")
    parser.add_argument("--presets", nargs="+", default=["quick", "full"])
    parser.add_argument("--preset", default="quick", help=argparse.SUPPRESS)  # a child's
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per trainer run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--from-json", action="store_true", help="render --out into the docs")
    parser.add_argument("--child", choices=list(TRAINER_VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.modality, args.preset, args.seconds, args.threads, args.clock)
        print(json.dumps(result))
        return
    if args.from_json:
        data = json.loads(args.out.read_text())
    else:
        torch.set_num_threads(args.threads)
        state = MachineState.capture()
        data: dict[str, Any] = {
            "threads": args.threads,
            "clock": args.clock,
            "rounds": args.rounds,
            "command": _command(argv if argv is not None else sys.argv[1:]),
        }
        data["trainers"] = [
            measure_trainer(args.modality, preset, args.rounds, args.seconds, args.threads, args.clock)
            for preset in args.presets
        ]
        data["parts"] = [measure_parts(s, args.rounds, args.clock) for s in args.settings]
        state.finish()
        data["machine"] = state.describe()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        print(f"results in {args.out}")
    text = render(data)
    if args.write_docs:
        replace_section(SPEED_PAGE, SECTION, text)
        print(f"wrote '{SECTION}' in {SPEED_PAGE}")
    else:
        print(text)


if __name__ == "__main__":
    main()
