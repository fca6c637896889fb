"""CPU thread settings of the commands that run a model (``--threads``, ``POLYDIFF_THREADS``).

PyTorch's defaults (one OpenMP thread per core, idle threads spinning before they sleep)
collapse when other processes share the cores: on the shared 2-core machine a training at 4.9
steps/s with one thread ran at 0.14 steps/s with torch's two spinning threads
(docs/research/speed.md, "Throughput under contention (CPU)"). Every thread of a parallel
region must finish before the next starts, so one thread that waits for a core stalls the
others, which burn that core's time spinning. ``auto`` (the default) therefore

* makes idle OpenMP threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``; set before torch is
  imported, unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set already), and
* uses one thread per CPU that other processes leave free (their CPU use over a fifth of a
  second, from ``/proc/stat``), at least one; under ``torchrun`` each of the node's
  ``LOCAL_WORLD_SIZE`` processes takes its share.

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
_decided: dict[str, int] = {}


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


def auto_threads(cpus: int | None = None, busy: float | None = None, processes: int | None = None) -> int:
    """One thread per usable CPU that the other processes leave free, shared by the node's
    ``processes`` (default ``LOCAL_WORLD_SIZE``, 1 outside torchrun); at least one."""
    cpus = usable_cpus() if cpus is None else cpus
    busy = busy_cpus() if busy is None else busy
    if processes is None:
        text = os.environ.get("LOCAL_WORLD_SIZE", "1")
        processes = int(text) if text.isdigit() and int(text) > 0 else 1
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
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        applied["OMP_WAIT_POLICY"] = "PASSIVE"
    if setting == "auto":
        if "auto" not in _decided:  # once per process (in-process callers such as tests call it often)
            _decided["auto"] = auto_threads()
        n = _decided["auto"]
    else:
        n = int(setting)
    import torch

    torch.set_num_threads(n)
    applied["threads"] = n
    return applied
