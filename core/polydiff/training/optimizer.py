"""The trainer's optimizer: AdamW, fused into one kernel where PyTorch has one for the device.

PyTorch's default AdamW on the CPU loops over the parameters in Python, a dozen small ops per
tensor: 3.97 ms per step for the 176 tensors of the peers benchmark's 922k-parameter UNet on one
core, against 0.83 ms fused (``python bench/train_overheads.py``, "Training step overheads" in
docs/research/speed.md). The fused kernel (CPU and CUDA) computes the same update up to float
rounding and keeps the same state (``exp_avg``, ``exp_avg_sq``, ``step``), so checkpoints resume
either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

#: Devices with a fused AdamW kernel in PyTorch that polydiff runs on.
FUSED_DEVICES = ("cpu", "cuda")
FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def can_fuse(params: Sequence[Tensor]) -> bool:
    """True when every parameter is a float tensor on one device of :data:`FUSED_DEVICES`."""
    devices = {p.device.type for p in params}
    return (
        len(devices) == 1 and devices <= set(FUSED_DEVICES) and all(p.dtype in FUSED_DTYPES for p in params)
    )


def make_adamw(params: Sequence[Tensor], *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``params``, fused where :func:`can_fuse` says so."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=can_fuse(params) or None)


def load_adamw_state(optimizer: torch.optim.AdamW, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this optimizer's kernel choice: a checkpoint's
    param groups carry the ``fused``/``foreach`` flags of the run that wrote it (another device,
    or a polydiff before fusing), which ``load_state_dict`` would otherwise restore."""
    kernels = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, flags in zip(optimizer.param_groups, kernels):
        group.update(flags)
