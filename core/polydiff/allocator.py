"""The CPU memory allocator's settings for the commands that run a model (``POLYDIFF_CPU_ALLOCATOR``).

PyTorch takes CPU tensors from the C library's ``malloc``. glibc hands freed memory back to
the system whenever more than a few MiB lie free at the top of its heap (and serves the
largest blocks with ``mmap``, unmapped on free), so every training step frees its
activations, gets fresh pages at the next step, and the kernel zeroes each page at its first
touch: on this project's 2-core machine the image plugin's ``full`` training step made 61
thousand page faults and spent 91 ms of system time per step, and ran 1.13x faster without
them (docs/research/speed.md, "Training step overheads"). ``keep`` (the default) tells glibc
to keep what it has:

* no trimming of the heap (``M_TRIM_THRESHOLD``: off), and
* ``mmap`` only for blocks over 32 MiB, glibc's upper limit (``M_MMAP_THRESHOLD``).

A process then holds on to its peak memory until it exits, as PyTorch's CUDA caching
allocator does on a GPU; a training or sampling command reaches that peak in its first step
anyway. ``system`` leaves glibc's defaults. Other C libraries (musl, macOS, Windows) are left
alone. The setting is process-wide and lasts until exit, so the CLI applies it to its model
commands, not on import; library users call :func:`configure_cpu_allocator`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from polydiff.errors import ConfigError

#: Environment variable read when :func:`configure_cpu_allocator` is given no mode.
ENV = "POLYDIFF_CPU_ALLOCATOR"
MODES = ("keep", "system")
#: ``mallopt`` parameters (glibc's ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks above this size are still mapped (glibc's ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit).
MMAP_THRESHOLD = 32 << 20
_applied: dict[str, str] = {}


def parse(value: str | None) -> str:
    """``"keep"`` or ``"system"`` from ``value`` (None: ``POLYDIFF_CPU_ALLOCATOR``, else ``keep``)."""
    text = (os.environ.get(ENV, "") if value is None else value).strip().lower() or "keep"
    if text not in MODES:
        source = ENV if value is None else "the CPU allocator mode"
        raise ConfigError(f"{source}={text!r} is not a mode; use one of {', '.join(MODES)}.")
    return text


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def configure_cpu_allocator(value: str | None = None) -> str:
    """Apply ``keep`` or ``system`` (None: ``POLYDIFF_CPU_ALLOCATOR``, default ``keep``).

    Returns what holds afterwards: ``"keep"``, ``"system"``, or ``"unsupported"`` where the
    C library is not glibc. ``keep`` is applied at most once per process; ``system`` after
    ``keep`` cannot restore glibc's adaptive defaults and leaves ``keep`` in place.
    """
    mode = parse(value)
    if mode == "system":
        return _applied.get("mode", "system")
    if "mode" in _applied:
        return _applied["mode"]
    libc = _glibc()
    if libc is None:
        _applied["mode"] = "unsupported"
        return "unsupported"
    # mallopt returns 1 on success. -1 as the trim threshold is "never trim" (mallopt(3)).
    ok = libc.mallopt(M_TRIM_THRESHOLD, -1) == 1 and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    _applied["mode"] = "keep" if ok else "unsupported"
    return _applied["mode"]
