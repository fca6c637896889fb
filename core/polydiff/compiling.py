"""``--compile``: ``torch.compile`` of the denoiser, probed once, eager where it cannot run.

The trainer (``train.compile``) and :meth:`~polydiff.DiffusionPipeline.compile` (``polydiff
sample/evaluate --compile``) compile the backbone alone, in place (``nn.Module.compile``), so its
parameter names, hence checkpoints, are those of an eager run. Inductor needs a C++ compiler to
compile for the CPU and triton for CUDA; where either is missing, or dynamo does not support this
Python, :func:`compile_module` says so in one line and the run continues eagerly. Compilation
itself happens at the first call; :func:`eager_on_failure` turns a failure there into one line
and the same call, eagerly.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

from polydiff.errors import ConfigError, PolydiffError

#: ``--compile-mode`` choices: ``reduce-overhead`` adds CUDA graphs (CUDA only: on the CPU it
#: compiles as ``default``), ``max-autotune`` also benchmarks kernel choices (long compiles).
MODES = ("default", "reduce-overhead", "max-autotune")
#: The backend :func:`compile_module` uses; tests set ``"aot_eager"`` (traces and runs the same
#: graphs through AOTAutograd without generating code, so no C++ build).
BACKEND = "inductor"

T = TypeVar("T")
_checked: dict[str, str | None] = {}  # device type -> why inductor cannot run there (None: it can)
_said: set[str] = set()


def check_mode(mode: str, option: str = "--compile-mode") -> str:
    """``mode`` if it is one of :data:`MODES`, else a ConfigError naming ``option``."""
    if mode not in MODES:
        raise ConfigError(f"{option} must be one of {', '.join(MODES)}, not '{mode}'")
    return mode


def unavailable_reason(device: torch.device) -> str | None:
    """Why :data:`BACKEND` cannot compile for ``device`` here, or None when it can (cached per
    device type: the probe runs once per process)."""
    if BACKEND != "inductor":
        return None
    if device.type in _checked:
        return _checked[device.type]
    reason = None
    try:
        from torch._dynamo.eval_frame import check_if_dynamo_supported

        check_if_dynamo_supported()
    except Exception as exc:  # dynamo refuses this Python (e.g. a too new one)
        reason = f"torch.compile does not support this Python ({exc})"
    if reason is None and device.type == "cpu":
        from torch._inductor import config

        cxx = getattr(config.cpp, "cxx", None)
        cxx = cxx[-1] if isinstance(cxx, tuple) else cxx
        if not cxx or shutil.which(str(cxx)) is None:
            reason = f"inductor compiles for the CPU with a C++ compiler and '{cxx}' is not on PATH"
    elif reason is None and device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            reason = "inductor compiles for CUDA with triton, which is not installed"
    elif reason is None:
        reason = f"inductor does not compile for the device type '{device.type}'"
    _checked[device.type] = reason
    return reason


def _say(line: str) -> None:
    if line not in _said:
        _said.add(line)
        print(f"polydiff: {line}", file=sys.stderr)


def compile_module(module: torch.nn.Module, device: torch.device | str, mode: str = "default") -> bool:
    """Compile ``module`` in place for ``device`` (``module.compile``; names unchanged).

    Returns False, after one line on stderr saying why, where compilation is unavailable.
    """
    device = torch.device(device)
    mode = check_mode(mode)
    reason = unavailable_reason(device)
    if reason is not None:
        _say(f"--compile: {reason}; running eagerly")
        return False
    if device.type == "cpu":  # 'No CUDA runtime is found' on every CPU build: not news
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    module.compile(backend=BACKEND, mode=None if mode == "default" or BACKEND != "inductor" else mode)
    return True


def is_compiled(module: torch.nn.Module) -> bool:
    """Whether ``module`` was compiled in place (``nn.Module.compile``) and is still."""
    return getattr(module, "_compiled_call_impl", None) is not None


def uncompile(module: torch.nn.Module) -> None:
    """Undo ``module.compile()``: its calls run eagerly again."""
    module._compiled_call_impl = None


def eager_on_failure(modules: list[torch.nn.Module], fn: Callable[[], T], what: str) -> T:
    """``fn()``; if it fails while any of ``modules`` is compiled, one line and ``fn()`` again eagerly.

    ``fn`` must be safe to repeat after a failure (the trainer's first step re-seeds itself and
    clears its gradients; sampling re-seeds its generator). Errors of polydiff's own (bad input)
    and a failure that happens eagerly too propagate unchanged.
    """
    compiled = [m for m in modules if is_compiled(m)]
    if not compiled:
        return fn()
    try:
        return fn()
    except PolydiffError:
        raise
    except Exception as exc:
        for m in compiled:
            uncompile(m)
        torch._dynamo.reset()
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        _say(
            f"torch.compile failed at the first {what} ({type(exc).__name__}: {first}); "
            "continuing eagerly (POLYDIFF_DEBUG=1 TORCH_LOGS=+dynamo for details)"
        )
        return fn()
