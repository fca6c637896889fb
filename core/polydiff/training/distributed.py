"""torch.distributed set-up for runs launched by ``torchrun`` (DDP), and no-ops otherwise."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group that torchrun describes in the environment (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    dev = (
        torch.device(f"cuda:{local}" if use_cuda else "cpu")
        if device in (None, "cuda")
        else torch.device(device)
    )
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``values`` over processes (identity when not distributed)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world_size
    return values


#: The processes whose counts :func:`global_count` sums; None outside :func:`global_loss_counts`.
_LOSS_COUNT_GROUP: ContextVar[DistInfo | None] = ContextVar("polydiff_loss_count_group", default=None)


@contextlib.contextmanager
def global_loss_counts(info: DistInfo) -> Iterator[None]:
    """Within this block, masked means divide by the count of valid elements over all processes.

    The trainer wraps each DDP forward in it (every rank runs the same forwards, so the
    all-reduce in :func:`global_count` is matched on every rank). A no-op for one process.
    Outside it (single-process training, evaluation on one rank) counts stay local.
    """
    token = _LOSS_COUNT_GROUP.set(info if info.enabled else None)
    try:
        yield
    finally:
        _LOSS_COUNT_GROUP.reset(token)


def global_count(count: torch.Tensor) -> torch.Tensor:
    """Divisor for a masked mean ``local_sum / global_count(local_count)`` on one rank's share.

    Inside :func:`global_loss_counts` with ``W > 1`` processes: ``sum_r count_r / W``, all-reduced
    and detached. DDP averages gradients over ranks, so the gradient it applies is
    ``(1/W) sum_r grad(S_r) W / N = grad(sum_r S_r) / N`` with ``N = sum_r count_r``: exactly the
    single-process gradient of the masked mean over the global batch (likewise the loss values
    the trainer averages over ranks). Dividing by each rank's own count instead weighs the
    elements of a rank with few valid ones (short utterances) more. Elsewhere: ``count``.

    Args:
        count: 0-d (or any shape) count of valid elements on this rank.

    Returns:
        Tensor like ``count``; the same object when counts are local.
    """
    info = _LOSS_COUNT_GROUP.get()
    if info is None or not dist.is_available() or not dist.is_initialized():
        return count
    total = count.detach().to(torch.float64 if count.device.type != "mps" else torch.float32).clone()
    dist.all_reduce(total)
    return (total / info.world_size).to(count.dtype)


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every process when ``flag`` is true on any of them (all-reduce max)."""
    if not info.enabled:
        return flag
    value = torch.tensor([float(flag)], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
