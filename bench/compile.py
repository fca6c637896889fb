"""``--compile`` on the CPU: compile time and steady-state speed against eager, training and sampling.

One process trains a preset (default: the image `quick` preset on `shapes`, the trainer's own
step, :mod:`step_timer`) with ``train.compile``: the first step compiles (its seconds are the
compile time); then eager and compiled steps alternate in rounds of ``--seconds`` each (the
compiled call is switched off and on, so both run the same weights and batches), and likewise
for sampling (``DiffusionPipeline.compile``: first call, then seconds per call). By default the
inductor cache starts empty (``--warm-cache`` keeps ``TORCHINDUCTOR_CACHE_DIR``'s).

    flock /work/wt/bench.lock python bench/compile.py --write-docs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RESULTS = HERE / "results" / "compile-cpu.json"
HEADING = "## torch.compile (CPU)"


def measure(args: argparse.Namespace) -> dict:
    import torch
    from common import MachineState, median
    from step_timer import close, time_steps, trainer_for

    from polydiff import compiling
    from polydiff.pipeline import DiffusionPipeline

    machine = MachineState.capture()
    out: dict = {"preset": args.preset, "modality": args.modality, "dataset": args.dataset}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_for(
            args.modality,
            Path(tmp) / "run",
            preset=args.preset,
            dataset=args.dataset,
            train={"compile": True, "num_workers": 0},
            assignments=args.set,
        )
        try:
            unet = trainer.model.unet
            first = time_steps(trainer, warmup=1, seconds=0.0, max_steps=1)
            out["train_first_step_s"] = first.first_step_s
            out["compiled"] = first.compiled
            compiled_impl = unet._compiled_call_impl
            rates: dict[str, list[float]] = {"eager": [], "compiled": []}
            for r in range(args.rounds):
                for mode in ("eager", "compiled") if r % 2 == 0 else ("compiled", "eager"):
                    unet._compiled_call_impl = compiled_impl if mode == "compiled" else None
                    t = time_steps(trainer, warmup=1, seconds=args.seconds)
                    rates[mode].append(t.steps_per_s)
                    print(f"train {mode}: {t.steps_per_s:.2f} steps/s", flush=True)
            out["train_steps_per_s"] = {k: median(v) for k, v in rates.items()}
            out["train_rounds"] = rates
            # sampling: the same network in eval mode under no_grad (a graph of its own)
            unet._compiled_call_impl = None
            pipe = DiffusionPipeline(trainer.model, trainer.config, trainer.registry, "cpu")
            kw = {"num_per_prompt": args.sample_batch, "steps": args.sample_steps, "sampler": "ddim"}
            eager_first = time.perf_counter()
            pipe(["a red circle"], **kw)
            out["sample_eager_first_s"] = time.perf_counter() - eager_first
            pipe.compile()
            start = time.perf_counter()
            pipe(["a red circle"], **kw)
            out["sample_first_call_s"] = time.perf_counter() - start
            out["sample_compiled"] = compiling.is_compiled(unet)
            sample_impl = unet._compiled_call_impl
            calls: dict[str, list[float]] = {"eager": [], "compiled": []}
            for r in range(args.rounds):
                for mode in ("eager", "compiled") if r % 2 == 0 else ("compiled", "eager"):
                    unet._compiled_call_impl = sample_impl if mode == "compiled" else None
                    start = time.perf_counter()
                    pipe(["a red circle"], **kw)
                    calls[mode].append(time.perf_counter() - start)
                    print(f"sample {mode}: {calls[mode][-1]:.2f} s/call", flush=True)
            out["sample_s_per_call"] = {k: median(v) for k, v in calls.items()}
            out["sample_rounds"] = calls
        finally:
            close(trainer)
    machine.finish()
    out["machine"] = machine.describe()
    out["threads"] = torch.get_num_threads()
    return out


def render(data: dict) -> str:
    from common import markdown_table

    tr, sa = data["train_steps_per_s"], data["sample_s_per_call"]
    rows = [
        [
            "training step",
            f"{data['train_first_step_s']:.1f} s",
            f"{tr['eager']:.2f} steps/s",
            f"{tr['compiled']:.2f} steps/s",
            f"{tr['compiled'] / tr['eager']:.2f}x",
        ],
        [
            f"sampling (DDIM {data['sample_steps']} steps, batch {data['sample_batch']})",
            f"{data['sample_first_call_s']:.1f} s (eager first call {data['sample_eager_first_s']:.1f} s)",
            f"{sa['eager']:.2f} s/call",
            f"{sa['compiled']:.2f} s/call",
            f"{sa['eager'] / sa['compiled']:.2f}x",
        ],
    ]
    cache = "warm inductor cache" if data.get("warm_cache") else "empty inductor cache (a first compile)"
    return (
        f"Command: `{data['command']}`: the `{data['preset']}` preset of {data['modality']} on "
        f"`{data['dataset']}`, {data['threads']} thread(s), {cache}; eager and compiled alternate in "
        f"{data['rounds']} rounds of {data['seconds']:g} s (medians). Machine: {data['machine']}.\n\n"
        + markdown_table(
            ["what", "first call (compiles)", "eager", "compiled", "compiled / eager"],
            rows,
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modality", default="image")
    p.add_argument("--dataset", default="shapes")
    p.add_argument("--preset", default="quick")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per round and mode")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sample-steps", type=int, default=10)
    p.add_argument("--sample-batch", type=int, default=8)
    p.add_argument("--threads", default="auto", help="as polydiff's --threads")
    p.add_argument("--warm-cache", action="store_true", help="keep the inductor cache (default: empty)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--write-docs", action="store_true", help="rewrite the section of docs/research/speed.md")
    p.add_argument("--from-json", action="store_true", help="render --out without measuring")
    args = p.parse_args(argv)
    if args.from_json:
        data = json.loads(args.out.read_text())
    else:
        tmp = None
        if not args.warm_cache:
            tmp = tempfile.TemporaryDirectory()
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = tmp.name
        from polydiff.threads import configure

        configure(args.threads)
        data = measure(args)
        data.update(
            command="python bench/compile.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            rounds=args.rounds,
            seconds=args.seconds,
            sample_steps=args.sample_steps,
            sample_batch=args.sample_batch,
            warm_cache=args.warm_cache,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        if tmp is not None:
            tmp.cleanup()
    print(render(data))
    if args.write_docs:
        from common import SPEED_PAGE, replace_section

        replace_section(SPEED_PAGE, HEADING, render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
