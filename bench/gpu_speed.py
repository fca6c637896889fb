"""Training speed of one preset on a GPU: eager against torch.compile (default mode and
reduce-overhead = CUDA graphs), fp32 against bf16 autocast, DataLoader workers with pinned
memory, and model FLOP utilisation (MFU).

Each mode builds the trainer afresh (``polydiff train``'s set-up: data, model, AdamW, compile,
the DataLoader, pinned on CUDA) and times its own training step (:mod:`step_timer`): the first
step alone (compilation happens there), a few warm-up steps, then ``--seconds`` of steps. The
FLOPs of one training step (forward + backward; AdamW's elementwise work is not counted) come
from ``torch.utils.flop_counter.FlopCounterMode`` on the eager network; MFU = FLOPs per step x
steps/s / the device's peak for the mode's precision (:data:`PEAK_TFLOPS`, or
``--peak-tflops``). The DataLoader alone is timed with 0 and ``--workers`` workers to show
whether data loading keeps up with the steps.

    python bench/gpu_speed.py                      # video `full`, every mode, on cuda
    python bench/gpu_speed.py --smoke              # the CPU path, tiny: checks the script

``--smoke`` runs the video `quick` preset on the CPU for a fraction of a second per mode and
compiles with the ``aot_eager`` backend (inductor's C++ build takes minutes on a small CPU), so
it checks the plumbing, not the speed. Results: ``--out`` (JSON) and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Dense peak TFLOP/s by GPU name (substring, first match) and precision: bf16 tensor cores,
#: tf32 (what fp32 training uses: the trainer sets matmul precision "high"), plain fp32.
#: Vendor datasheet figures without sparsity; SXM parts (PCIe ones are lower: pass --peak-tflops).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "tf32": 183.0, "fp32": 91.6},
    "L4": {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "A10": {"bf16": 125.0, "tf32": 62.5, "fp32": 31.2},
}
#: name -> (train.precision, compile mode or None)
MODES: dict[str, tuple[str, str | None]] = {
    "eager": ("fp32", None),
    "bf16": ("bf16", None),
    "compile": ("fp32", "default"),
    "compile-ro": ("fp32", "reduce-overhead"),
    "bf16-compile-ro": ("bf16", "reduce-overhead"),
}
DEFAULT_MODES = ("eager", "bf16", "compile-ro", "bf16-compile-ro", "compile")


def peak_tflops(device_name: str, precision: str, override: float | None = None) -> float | None:
    """The peak TFLOP/s of ``device_name`` for ``precision`` (fp32 -> tf32), or None if unknown."""
    if override:
        return override
    key = {"fp32": "tf32", "bf16": "bf16", "fp16": "bf16"}[precision]
    for name, peaks in PEAK_TFLOPS.items():
        if name.lower() in device_name.lower():
            return peaks[key]
    return None


def step_flops(trainer) -> int:  # noqa: ANN001
    """FLOPs of one training step (forward + backward) of ``trainer``'s network, counted eagerly."""
    from torch.utils.flop_counter import FlopCounterMode

    from polydiff.compiling import uncompile

    unet = trainer.model.unet
    impl = unet._compiled_call_impl
    uncompile(unet)
    batch = next(iter(trainer.loader))
    try:
        with FlopCounterMode(display=False) as counter:
            trainer._train_step(0, batch)
    finally:
        unet._compiled_call_impl = impl
    return int(counter.get_total_flops())


def loader_rate(trainer, workers: int, seconds: float) -> float:  # noqa: ANN001
    """Batches/s the trainer's DataLoader delivers with ``workers`` workers (pinned on CUDA)."""
    from polydiff.builder import collate_fn
    from polydiff.training.batching import step_loader

    loader = step_loader(
        trainer.dataset,
        trainer.loader.batch_sampler,
        collate_fn(trainer.dataset),
        workers,
        pin_memory=trainer.dist.device.type == "cuda",
    )
    it = iter(loader)
    next(it)  # workers start
    start, n = time.perf_counter(), 0
    while n == 0 or time.perf_counter() - start < seconds:
        next(it)
        n += 1
    rate = n / (time.perf_counter() - start)
    del it
    return rate


def run_mode(name: str, args: argparse.Namespace, run_dir: Path) -> dict:
    import torch
    from step_timer import as_dict, close, time_steps, trainer_for

    precision, mode = MODES[name]
    train = {"precision": precision, "num_workers": args.workers, "batch_size": args.batch_size}
    train = {k: v for k, v in train.items() if v is not None}
    if mode is not None:
        train.update(compile=True, compile_mode=mode)
    torch._dynamo.reset()
    trainer = trainer_for(
        args.modality,
        run_dir,
        preset=args.preset,
        dataset=args.dataset,
        device=args.device,
        train=train,
        assignments=args.set,
    )
    try:
        timing = time_steps(trainer, warmup=args.warmup, seconds=args.seconds)
        row = {"mode": name, "precision": precision, "compile_mode": mode, **as_dict(timing)}
        row["batch_size"] = trainer.config.train.batch_size
        row["workers"] = trainer.num_workers
        if name == "eager" or args.flops_every_mode:
            row["step_flops"] = step_flops(trainer)
        if name == "eager" and args.loader_seconds > 0:
            row["loader_batches_per_s"] = {
                str(w): round(loader_rate(trainer, w, args.loader_seconds), 2)
                for w in sorted({0, args.workers or 0})
            }
    finally:
        close(trainer)
    return row


def render(data: dict) -> str:
    from common import markdown_table

    flops = next((r["step_flops"] for r in data["rows"] if "step_flops" in r), None)
    eager = next((r["steps_per_s"] for r in data["rows"] if r["mode"] == "eager"), None)
    rows = []
    for r in data["rows"]:
        if "error" in r:
            rows.append([r["mode"], "", "", "", "", "", f"failed: {r['error']}"])
            continue
        peak = peak_tflops(data["device_name"], r["precision"], data.get("peak_override"))
        achieved = flops * r["steps_per_s"] / 1e12 if flops else None
        rows.append(
            [
                r["mode"],
                f"{r['first_step_s']:.1f}",
                f"{r['steps_per_s']:.2f}",
                f"{r['steps_per_s'] / eager:.2f}x" if eager else "",
                f"{achieved:.2f}" if achieved is not None else "",
                f"{100 * achieved / peak:.1f} %" if achieved is not None and peak else "n/a",
                "compiled" if r["compiled"] else "eager",
            ]
        )
    loader = next((r["loader_batches_per_s"] for r in data["rows"] if "loader_batches_per_s" in r), {})
    text = (
        f"`{data['command']}`: {data['modality']} `{data['preset']}`, "
        f"batch {data['rows'][0].get('batch_size')}, "
        f"{data['device_name']}; {data['seconds']:g} s per mode after {data['warmup']} warm-up steps."
    )
    if flops:
        text += f" One training step = {flops / 1e9:.1f} GFLOP (forward + backward, FlopCounterMode)."
    text += "\n\n" + markdown_table(
        ["mode", "first step s", "steps/s", "vs eager", "achieved TFLOP/s", "MFU", "ran"], rows
    )
    if loader:
        text += "\n\nDataLoader alone: " + ", ".join(
            f"{w} workers {v:.1f} batches/s" for w, v in loader.items()
        )
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modality", default="video")
    p.add_argument("--preset", default="full")
    p.add_argument("--dataset")
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), choices=list(MODES))
    p.add_argument("--batch-size", type=int, help="default: the preset's")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the timed modes")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--loader-seconds", type=float, default=5.0)
    p.add_argument("--max-seconds", type=float, default=480.0, help="skip the modes left after this")
    p.add_argument("--peak-tflops", type=float, help="the device's peak, overriding the table")
    p.add_argument("--flops-every-mode", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--smoke", action="store_true", help="the CPU path, tiny (checks the script)")
    p.add_argument("--threads", default="auto")
    p.add_argument("--out", type=Path, help="JSON results (default: bench/results/gpu_speed-DEVICE.json)")
    args = p.parse_args(argv)
    from polydiff.threads import configure

    configure(args.threads)
    import torch

    from polydiff import compiling

    if args.smoke:
        args.device, args.preset, args.seconds, args.warmup = "cpu", "quick", 0.5, 1
        args.loader_seconds, args.workers = min(args.loader_seconds, 0.5), 1
        args.batch_size = args.batch_size or 4
        compiling.BACKEND = "aot_eager"
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    if args.out is None:
        args.out = HERE / "results" / f"gpu_speed-{'smoke' if args.smoke else args.device.split(':')[0]}.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "command": "python bench/gpu_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "modality": args.modality,
        "preset": args.preset,
        "device_name": device_name,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "peak_override": args.peak_tflops,
        "compile_backend": compiling.BACKEND,
        "rows": [],
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.modes:
            if time.perf_counter() - start > args.max_seconds:
                data["rows"].append(
                    {"mode": name, "error": f"skipped: past --max-seconds {args.max_seconds:g}"}
                )
                continue
            try:
                row = run_mode(name, args, Path(tmp) / name)
            except Exception as exc:  # one mode's failure leaves the others' figures
                row = {"mode": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
            print(json.dumps(row), flush=True)
            data["rows"].append(row)
            args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(render(data))
    return 0 if all("error" not in r for r in data["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
