"""Training throughput alone and beside busy processes, for several CPU thread settings.

Each (load, setting) pair runs a fresh worker process (thread settings such as
``OMP_WAIT_POLICY`` take effect only before torch is imported) that trains the image `quick`
preset on `shapes` in-process (:mod:`step_timer`) and reports steady steps/s. Loads:

* ``none``: nothing started by the benchmark;
* ``py``: one ``python -c 'while True: pass'`` at nice 0;
* ``py-nice19x2``: two of them at nice 19 (the case seen on the shared machine);
* ``torch2``: a 2-thread torch matmul loop at nice 0 (another training, in effect);
* ``py-late``: the ``py`` load, started ``LATE_S`` seconds after the worker (in its timed
  window): the thread count chosen at start-up no longer fits, only ``auto``'s
  :class:`~polydiff.threads.ThreadGovernor` adapts.

Settings are ``THREADS[+ENV=VALUE...]``: THREADS is a ``--threads`` value (``torch`` = torch's
own default, untouched; ``auto``; a number), each ``+ENV=VALUE`` an environment variable, e.g.
``2+OMP_WAIT_POLICY=PASSIVE``.

    flock /work/wt/bench.lock python bench/contention.py --write-docs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Seconds after a worker starts at which a ``-late`` load starts (the worker needs ~3 s to start).
LATE_S = 5.0

LOADS = {
    "none": [],
    "py": [(0, [sys.executable, "-c", "while True: pass"])],
    "py-nice19x2": [(19, [sys.executable, "-c", "while True: pass"])] * 2,
    "torch2": [
        (
            0,
            [
                sys.executable,
                "-c",
                "import torch\ntorch.set_num_threads(2)\na = torch.randn(512, 512)\n"
                "while True: a = torch.tanh(a @ a)",
            ],
        )
    ],
}
DEFAULT_SETTINGS = ("torch", "auto")
RESULTS = HERE / "results" / "contention.json"
HEADING = "## Throughput under contention (CPU)"


def parse_setting(spec: str) -> tuple[str, dict[str, str]]:
    """``"2+OMP_WAIT_POLICY=PASSIVE"`` -> ``("2", {"OMP_WAIT_POLICY": "PASSIVE"})``."""
    threads, *pairs = spec.split("+")
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"setting '{spec}': '{pair}' is not ENV=VALUE")
        env[key] = value
    return threads, env


def worker(spec: str, seconds: float, out: Path) -> None:
    """Apply ``spec`` as ``polydiff train`` would, train, print one JSON line."""
    threads, _ = parse_setting(spec)
    from polydiff import threads as T

    applied = T.configure(threads)  # before torch is imported (the CLI does the same)
    import torch
    from step_timer import as_dict, close, time_steps, trainer_for

    trainer = trainer_for("image", out, dataset="shapes", train={"num_workers": 0})
    gov = T.governor(period_s=1.0)  # the trainer ticks it every step, as here
    try:
        timing = time_steps(trainer, warmup=2, seconds=seconds, step_hook=gov and (lambda _: gov.tick()))
    finally:
        close(trainer)
    print(
        json.dumps(
            {
                **as_dict(timing),
                "setting": spec,
                "applied": applied,
                "torch_threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "governor_changes": gov.changes if gov else None,
            }
        )
    )


def start_load(name: str) -> list[subprocess.Popen]:
    procs = []
    for nice, cmd in LOADS[name]:
        procs.append(
            subprocess.Popen(
                cmd,
                preexec_fn=(lambda n=nice: os.nice(n)) if nice else None,
                env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"},
            )
        )
    return procs


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def run_one(spec: str, seconds: float) -> dict:
    threads, extra = parse_setting(spec)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "POLYDIFF_THREADS")}
    env.update(extra)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", spec, "--seconds", str(seconds), "--run-dir", tmp],
            env=env,
            capture_output=True,
            text=True,
        )
    if proc.returncode:
        raise SystemExit(f"worker {spec} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(loads: list[str], settings: list[str], seconds: float, rounds: int) -> list[dict]:
    rows = []
    for load in loads:
        late, base = load.endswith("-late"), load.removesuffix("-late")
        procs = [] if late else start_load(load)
        try:
            time.sleep(1.0)
            for r in range(rounds):
                order = settings[r % len(settings) :] + settings[: r % len(settings)]
                for spec in order:
                    before = os.getloadavg()
                    timer = threading.Timer(LATE_S, lambda p=procs, name=base: p.extend(start_load(name)))
                    if late:
                        timer.start()
                    row = run_one(spec, seconds)
                    if late:
                        timer.cancel()
                        stop_load(procs)
                        procs.clear()
                    row.update(load=load, round=r, load_before=before, load_after=os.getloadavg())
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        finally:
            stop_load(procs)
    return rows


def render(data: dict) -> str:
    from common import markdown_table, median

    rows, settings, loads = data["rows"], data["settings"], data["loads"]
    table = []
    for spec in settings:
        cells = [f"`{spec}`"]
        for load in loads:
            rates = [r["steps_per_s"] for r in rows if r["setting"] == spec and r["load"] == load]
            cells.append(f"{median(rates):.2f}" if rates else "")
        alone = [r["steps_per_s"] for r in rows if r["setting"] == spec and r["load"] == "none"]
        for load in loads[1:]:
            busy = [r["steps_per_s"] for r in rows if r["setting"] == spec and r["load"] == load]
            if alone and busy:
                cells.append(f"{median(busy) / median(alone):.2f}")
        threads = sorted({r["torch_threads"] for r in rows if r["setting"] == spec})
        cells.append(", ".join(map(str, threads)))
        table.append(cells)
    headers = ["setting", *(f"{x} steps/s" for x in loads), *(f"{x} / none" for x in loads[1:]), "threads"]
    loads_seen = [r["load_before"][0] for r in rows] + [r["load_after"][0] for r in rows]
    return (
        f"Command: `{data['command']}` ({data['rounds']} round(s) of {data['seconds']:g} s per "
        f"setting and load, settings alternating). {data['machine']}; 1-minute load average "
        f"during the runs {min(loads_seen):.1f}-{max(loads_seen):.1f} (the loads started here "
        "count in it).\n\n" + markdown_table(headers, table)
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS))
    p.add_argument(
        "--loads",
        nargs="+",
        default=list(LOADS),
        choices=[*LOADS, *(f"{name}-late" for name in LOADS if name != "none")],
    )
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per worker")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--write-docs", action="store_true", help="rewrite the section of docs/research/speed.md")
    p.add_argument("--from-json", action="store_true", help="render --out without measuring")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.seconds, args.run_dir)
        return 0
    from common import SPEED_PAGE, MachineState, replace_section

    if args.from_json:
        data = json.loads(args.out.read_text())
    else:
        machine = MachineState.capture()
        rows = measure(args.loads, args.settings, args.seconds, args.rounds)
        machine.finish()
        data = {
            "command": "python bench/contention.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{machine.cpu}, {machine.cores} cores, torch {machine.torch_version}",
            "settings": args.settings,
            "loads": args.loads,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(render(data))
    if args.write_docs:
        replace_section(SPEED_PAGE, HEADING, render(data) + "\n\n" + data.get("notes", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
