"""CPU thread settings of the commands that run a model (``--threads``, ``POLYDIFF_THREADS``).

PyTorch's defaults (one OpenMP thread per core, idle threads spinning before they sleep)
collapse when other processes share the cores: on the shared 2-core machine a training at 4.9
steps/s with one thread ran at 0.14 steps/s with torch's two spinning threads
(docs/research/speed.md, "Throughput under contention (CPU)"). Every thread of a parallel
region must finish before the next starts, so one thread that waits for a core stalls the
others, which burn that core's time spinning. ``auto`` (the default) therefore

* lets idle OpenMP threads spin only briefly before they sleep (``GOMP_SPINCOUNT=10000``, set
  before torch is imported unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set already):
  as fast as PyTorch's default on a quiet machine, where sleeping at once
  (``OMP_WAIT_POLICY=PASSIVE``) halved the speed of small models;
* uses one thread per CPU that other processes leave free (their CPU use over a fifth of a
  second, from ``/proc/stat``), at least one; under ``torchrun`` each of the node's
  ``LOCAL_WORLD_SIZE`` processes takes its share; and
* keeps doing so while it runs: :class:`ThreadGovernor` (the trainer ticks it every step)
  looks again every few seconds and lowers or restores the number of threads as other
  processes come and go, because two threads beside one busy process ran 6x slower than one.

An explicit ``OMP_NUM_THREADS`` is honoured as the number of threads when neither ``--threads``
nor ``POLYDIFF_THREADS`` is given. ``torch`` leaves everything as PyTorch sets it.
"""

from __future__ import annotations

import os
import sys
import time

from polydiff.errors import ConfigError

#: Environment variable read when ``--threads`` is not given.
ENV = "POLYDIFF_THREADS"
#: Seconds over which :func:`busy_cpus` watches the other processes.
SAMPLE_S = 0.2
#: Spins of an idle OpenMP thread before it sleeps (libgomp's default is 300,000).
SPINCOUNT = "10000"
_decided: dict[str, int] = {}
_governed: dict[str, bool] = {"on": False}


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse(value: str | int | None, option: str = "--threads") -> str | int:
    """``"auto"``, ``"torch"`` or a positive number of threads (ConfigError naming ``option``)."""
    text = str(value).strip().lower() if value is not None else "auto"
    if text in ("auto", "torch"):
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(
            f"{option} must be auto, torch or a number of threads >= 1, not '{value}'; e.g. {option} 1"
        )
    return n


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cpus(sample_s: float = SAMPLE_S) -> float:
    """How many CPUs other processes keep busy now: the machine's busy share over ``sample_s``
    (this process sleeps meanwhile) times its CPUs; the 1-minute load average where
    /proc/stat is unavailable."""
    first = _cpu_times()
    if first is None:
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0
    time.sleep(sample_s)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return 0.0
    share = (second[0] - first[0]) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def _processes() -> int:
    """The node's processes under torchrun (``LOCAL_WORLD_SIZE``), else 1."""
    text = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return int(text) if text.isdigit() and int(text) > 0 else 1


def auto_threads(cpus: int | None = None, busy: float | None = None, processes: int | None = None) -> int:
    """One thread per usable CPU that the other processes leave free, shared by the node's
    ``processes`` (default ``LOCAL_WORLD_SIZE``, 1 outside torchrun); at least one."""
    cpus = usable_cpus() if cpus is None else cpus
    busy = busy_cpus() if busy is None else busy
    processes = _processes() if processes is None else processes
    return max(1, min(cpus, cpus - round(busy)) // processes)


def configure(value: str | int | None = None) -> dict[str, object]:
    """Apply a ``--threads`` value (None: ``POLYDIFF_THREADS``, else ``OMP_NUM_THREADS``, else
    ``auto``); returns what was set. Call it before torch is imported: the wait policy acts only
    then (the number of threads at any time)."""
    if value is not None:
        setting = parse(value, "--threads")
    elif os.environ.get(ENV):
        setting = parse(os.environ[ENV], ENV)
    elif os.environ.get("OMP_NUM_THREADS", "").strip().isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        setting = int(os.environ["OMP_NUM_THREADS"])
    else:
        setting = "auto"
    applied: dict[str, object] = {"setting": setting}
    if setting == "torch":
        return applied
    if "torch" not in sys.modules and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ):
        os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
        applied["GOMP_SPINCOUNT"] = SPINCOUNT
    if setting == "auto":
        if "auto" not in _decided:  # once per process (in-process callers such as tests call it often)
            _decided["auto"] = auto_threads()
        n = _decided["auto"]
        _governed["on"] = _processes() == 1
    else:
        n = int(setting)
        _governed["on"] = False
    import torch

    torch.set_num_threads(n)
    applied["threads"] = n
    return applied


class ThreadGovernor:
    """Keeps ``auto``'s choice current while a long loop runs: every ``period_s`` seconds it
    measures how many CPUs other processes use (the machine's busy time from ``/proc/stat``
    minus this process's own CPU time) and sets one thread per CPU they leave free.

    Call :meth:`tick` once per step; it costs a clock reading except once a period.
    """

    def __init__(self, period_s: float = 5.0, cpus: int | None = None) -> None:
        self.period_s = period_s
        self.cpus = usable_cpus() if cpus is None else cpus
        self.changes: list[tuple[float, int]] = []  # (others' busy CPUs, threads set)
        self._mark = self._read()

    @staticmethod
    def _read() -> tuple[float, float, tuple[int, int] | None]:
        return time.monotonic(), time.process_time(), _cpu_times()

    def others_busy(self, before: tuple, after: tuple) -> float | None:
        """CPUs other processes kept busy between two readings (None without /proc/stat)."""
        (w0, own0, m0), (w1, own1, m1) = before, after
        if m0 is None or m1 is None or m1[1] <= m0[1] or w1 <= w0:
            return None
        machine = (m1[0] - m0[0]) / (m1[1] - m0[1]) * (os.cpu_count() or 1)
        return max(0.0, machine - (own1 - own0) / (w1 - w0))

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._mark[0] < self.period_s:
            return
        reading = self._read()
        others = self.others_busy(self._mark, reading)
        self._mark = reading
        if others is None:
            return
        import torch

        want = max(1, min(self.cpus, self.cpus - round(others)))
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
            self.changes.append((round(others, 2), want))


def governor(period_s: float = 5.0) -> ThreadGovernor | None:
    """A :class:`ThreadGovernor` when this process's threads were set by ``auto`` (the CLI's
    default) outside torchrun, else None: an explicit number or ``torch`` is left alone."""
    return ThreadGovernor(period_s) if _governed["on"] else None
