"""``Linear``: ``nn.Linear`` whose large CPU products run on oneDNN where the BLAS is slow.

PyTorch's CPU ``F.linear`` calls MKL's sgemm, which on x86 CPUs not made by Intel takes a
slower path than its AVX-512 kernels (about 85 GFLOP/s on one core of this project's AMD EPYC
machine, where oneDNN's convolutions reach 150-180). A linear layer over many tokens is the
same product as a 1x1 convolution: rows ``[M, C]`` viewed without a copy as a channels-last
image ``[M / k, C, 1, k]``. oneDNN runs that 1.4-2.3x faster forward + backward and 2-2.5x
faster forward alone, with the same parameters and results equal to float32 rounding
(docs/research/speed.md, ``python bench/cpu_speedups.py``).

Which route runs is decided once per process by ``POLYDIFF_CPU_MATMUL``:

* ``auto`` (default): oneDNN on x86-64 CPUs whose vendor is not ``GenuineIntel`` (where MKL's
  sgemm is the slow one), the BLAS elsewhere;
* ``onednn`` / ``blas``: that route on every CPU.

Only float32 inputs on the CPU outside autocast and outside ``torch.compile`` (which lowers
``F.linear`` itself) with at least :data:`MIN_ROWS` rows take the oneDNN route; everything else
(CUDA, half precision, a time embedding's few rows) is ``F.linear``.
"""

from __future__ import annotations

import functools
import os
import platform

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.errors import ConfigError

#: Environment variable choosing the CPU route (``auto``, ``onednn`` or ``blas``).
ENV_VAR = "POLYDIFF_CPU_MATMUL"
ROUTES = ("auto", "onednn", "blas")
#: Fewer rows than this run on the BLAS: the convolution's set-up outweighs its speed.
MIN_ROWS = 1024
#: Row-block sizes tried in order; rows are viewed as ``[M / k, C, 1, k]`` for the first ``k``
#: dividing ``M`` (64-128 was fastest on [8192, 96] -> 384 and [2048, 96] -> 288; one block of
#: all rows takes oneDNN's slow single-image path).
ROW_BLOCKS = (128, 64, 32, 16)


def _cpu_vendor() -> str:
    """``vendor_id`` of ``/proc/cpuinfo`` (``""`` where there is none, e.g. macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def cpu_matmul_route() -> str:
    """``"onednn"`` or ``"blas"``: the route of large float32 CPU products in this process.

    Raises :class:`~polydiff.errors.ConfigError` when ``POLYDIFF_CPU_MATMUL`` is not one of
    :data:`ROUTES`.
    """
    choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice not in ROUTES:
        raise ConfigError(f"{ENV_VAR}={choice!r} is not a route; use one of {', '.join(ROUTES)}.")
    if not torch.backends.mkldnn.is_available():
        return "blas"
    if choice != "auto":
        return choice
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    vendor = _cpu_vendor()
    return "onednn" if x86 and vendor and vendor != "GenuineIntel" else "blas"


def _row_block(rows: int) -> int | None:
    if rows < MIN_ROWS:
        return None
    return next((k for k in ROW_BLOCKS if rows % k == 0), None)


def onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None, block: int) -> Tensor:
    """``F.linear(x, weight, bias)`` as a 1x1 convolution; ``x: [..., C]``, rows divisible by ``block``.

    The rows ``[M, C]`` are viewed (no copy when ``x`` is contiguous) as a channels-last
    ``[M / block, C, 1, block]`` image; the output ``[M / block, O, 1, block]`` comes back
    channels-last, i.e. contiguous ``[M, O]``.
    """
    channels = x.shape[-1]
    rows = x.reshape(-1, channels)
    image = rows.view(-1, block, channels).transpose(1, 2).unsqueeze(2)
    out = F.conv2d(image, weight[:, :, None, None], bias)
    return out.squeeze(2).transpose(1, 2).reshape(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) with the CPU route of :func:`cpu_matmul_route`.

    ``x: [..., in_features] -> [..., out_features]``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (
            not torch.compiler.is_compiling()  # torch.compile lowers F.linear itself
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and cpu_matmul_route() == "onednn"
        ):
            block = _row_block(x.numel() // max(1, x.shape[-1]))
            if block is not None:
                return onednn_linear(x, self.weight, self.bias, block)
        return F.linear(x, self.weight, self.bias)
