"""Helpers shared by the benchmarks: machine state, timing, peak memory, Markdown output.

Nothing here imports a peer library, so these helpers (and their tests) run without the
``bench`` extra.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

#: Repository root (``bench/..``).
ROOT = Path(__file__).resolve().parent.parent
#: The headline page (written by hand from the research pages below).
BENCHMARKS_PAGE = ROOT / "docs" / "benchmarks.md"
#: The research pages whose sections the benchmarks rewrite (linked from the headline page).
SPEED_PAGE = ROOT / "docs" / "research" / "speed.md"
SAMPLERS_PAGE = ROOT / "docs" / "research" / "samplers.md"
BENCHMARKS_HEADER = (
    "# Benchmarks\n\n"
    "Measured on the development machine; every section says how to reproduce its numbers "
    "(see also `bench/README.md`).\n"
)


@dataclass
class MachineState:
    """What a timing depends on besides the code: threads, load, versions."""

    threads: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] | None = None
    cpu: str = ""
    cores: int = 0
    torch_version: str = ""

    @classmethod
    def capture(cls) -> MachineState:
        return cls(
            threads=torch.get_num_threads(),
            load_before=os.getloadavg(),
            cpu=cpu_model(),
            cores=os.cpu_count() or 0,
            torch_version=torch.__version__,
        )

    def finish(self) -> None:
        self.load_after = os.getloadavg()

    def describe(self) -> str:
        """One line: CPU, cores, torch, threads and the 1/5/15-minute load averages."""

        def fmt(load: tuple[float, float, float]) -> str:
            return "/".join(f"{v:.1f}" for v in load)

        after = f", after {fmt(self.load_after)}" if self.load_after else ""
        return (
            f"{self.cpu or platform.machine()}, {self.cores} cores, torch {self.torch_version}, "
            f"torch.set_num_threads({self.threads}); load average (1/5/15 min) before "
            f"{fmt(self.load_before)}{after}"
        )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('' where unavailable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def wait_for_low_load(
    max_load: float, *, poll_s: float = 120.0, timeout_s: float = 0.0, log: Callable[[str], None] = print
) -> float:
    """Block until the 1-minute load average is at most ``max_load`` (or ``timeout_s`` passed).

    Returns the last load seen. ``timeout_s = 0`` returns at once.
    """
    start = time.monotonic()
    while True:
        load = os.getloadavg()[0]
        if load <= max_load or time.monotonic() - start >= timeout_s:
            return load
        log(f"load average {load:.1f} > {max_load}: waiting {poll_s:.0f} s")
        time.sleep(poll_s)


#: Clocks :func:`time_call` can read: wall time, or this process's CPU time (all threads). CPU time
#: barely depends on other processes' load, but with several threads it also counts threads
#: spinning at barriers; it measures cost, not latency, and suits ``torch.set_num_threads(1)``.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def time_call(fn: Callable[[], object], repeats: int, clock: str = "wall") -> list[float]:
    """Seconds (on ``clock``, see :data:`CLOCKS`) of each of ``repeats`` calls of ``fn``."""
    now = CLOCKS[clock]
    times = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append(now() - start)
    return times


def time_block(
    fn: Callable[[], object], repeats: int, clock: str = "wall", sync: Callable[[], object] | None = None
) -> float:
    """Mean seconds per call of ``repeats`` back-to-back calls of ``fn``, timed as one block.

    For asynchronous devices: ``sync`` (e.g. ``torch.cuda.synchronize``) runs before the clock starts
    and before it stops, so queued work is counted, while the calls inside the block overlap their
    launches with the device's work as in a training loop.
    """
    if repeats < 1:
        raise ValueError(f"time_block needs repeats >= 1; got {repeats}")
    now = CLOCKS[clock]
    if sync is not None:
        sync()
    start = now()
    for _ in range(repeats):
        fn()
    if sync is not None:
        sync()
    return (now() - start) / repeats


def alternate(fns: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each of ``fns`` once per round, in turn (ABCABC...), rotating who goes first.

    Each function returns one measurement; the result maps each name to its ``rounds`` values.
    Rotating the order spreads slow phases of a busy machine over every contender.
    """
    names = list(fns)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            out[name].append(fns[name]())
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """Relative spread of ``values``: (max - min) / median."""
    m = median(values)
    return (max(values) - min(values)) / m if m else 0.0


def peak_cpu_memory(fn: Callable[[], object]) -> int:
    """Peak bytes held by tensors allocated while ``fn`` runs, measured with ``torch.profiler``.

    The profiler's CPU memory events carry the running total of bytes allocated since profiling
    started (freed ones subtracted), so its maximum is the peak above what was already allocated
    before ``fn``: for a training step, activations, gradients and temporaries (not the parameters
    or optimizer state that exist already). Only tensor memory counts, not Python objects.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    totals = [
        e["args"]["Total Allocated"]
        for e in events
        if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type", 0) == 0
    ]
    return max([0, *totals])


def peak_cuda_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated by tensors on the CUDA ``device`` while ``fn`` runs, above what was allocated
    before it (same meaning as :func:`peak_cpu_memory`), from the caching allocator's statistics."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - before)


def gpu_description(device: torch.device) -> str:
    """One line: GPU name and memory, CUDA and cuDNN versions."""
    props = torch.cuda.get_device_properties(device)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return (
        f"{props.name} ({props.total_memory / 2**30:.0f} GiB, "
        f"compute capability {props.major}.{props.minor}), "
        f"CUDA {torch.version.cuda}, cuDNN {cudnn}"
    )


def without_out(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--out PATH``: the arguments that reproduce a run, wherever it wrote."""
    return [a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out")]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; floats are written as given (format them first)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(page: Path, heading: str, body: str, *, header: str = BENCHMARKS_HEADER) -> None:
    """Write ``heading`` + ``body`` into the Markdown ``page``, leaving its other sections alone.

    ``heading`` is a whole line such as ``"## Speed against peers (CPU)"``. The section runs up to
    the next heading of the same or a higher level (outside code fences); it is replaced where it
    exists, else appended. A missing page is created with ``header``.
    """
    level = len(heading) - len(heading.lstrip("#"))
    text = page.read_text() if page.exists() else header
    lines = text.splitlines()
    section = [heading, "", *body.strip("\n").splitlines(), ""]
    start = next((i for i, line in enumerate(lines) if line.strip() == heading.strip()), None)
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *section]
    else:
        end, fenced = start + 1, False
        while end < len(lines) and (fenced or not _is_heading_at_most(lines[end], level)):
            fenced ^= lines[end].lstrip().startswith("```")
            end += 1
        lines[start:end] = section
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines).rstrip("\n") + "\n")


def _is_heading_at_most(line: str, level: int) -> bool:
    hashes = len(line) - len(line.lstrip("#"))
    return 0 < hashes <= level and line[hashes : hashes + 1] == " "
