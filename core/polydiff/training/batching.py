"""Deterministic, resumable, distributed batching."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from polydiff.errors import DataError


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's share of the global batch of each step, forever.

    Global batch ``s`` is slice ``k`` of a permutation seeded by ``(seed, epoch)`` with
    ``epoch, k = divmod(s, len(dataset) // batch_size)``; rank ``r`` of ``W`` takes the
    ``r``-th contiguous ``batch_size / W`` of it (DistributedSampler's role). Because the
    batch is a function of the step alone, ``--resume`` needs no loader state, and W
    processes see exactly the samples one process would.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if num_items < batch_size:
            raise DataError(
                f"the dataset has {num_items} items, fewer than the batch size {batch_size}; "
                "lower --batch-size or add data"
            )
        if batch_size % world_size:
            raise DataError(
                f"batch size {batch_size} is not divisible by the {world_size} processes; choose a multiple"
            )
        self.n, self.batch, self.seed, self.start = num_items, batch_size, seed, start_step
        self.rank, self.world = rank, world_size
        self.per_epoch = num_items // batch_size

    def global_batch(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.per_epoch)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
        return perm[k * self.batch : (k + 1) * self.batch]

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch // self.world
        step = self.start
        while True:
            yield self.global_batch(step)[self.rank * share : (self.rank + 1) * share].tolist()
            step += 1

    def __len__(self) -> int:  # infinite; DataLoader only needs a number
        return 2**62


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(setting: int | str, dataset: Any, processes_per_node: int = 1) -> int:
    """``train.num_workers`` as a number of DataLoader workers.

    An integer is used as it is. ``"auto"`` takes the dataset's ``loader_workers`` attribute
    (how many workers its ``__getitem__`` can keep busy: 0 or missing for data held in
    memory), at most ``usable_cpus() // processes_per_node - 1`` (each training process keeps
    a CPU for itself).
    """
    if setting != "auto":
        return int(setting)
    wanted = int(getattr(dataset, "loader_workers", 0) or 0)
    return max(0, min(wanted, usable_cpus() // max(1, processes_per_node) - 1))


def step_loader(
    dataset: Any,
    sampler: StepBatchSampler,
    collate: Callable[[list[Any]], Any],
    workers: int,
    pin_memory: bool = False,
) -> DataLoader:
    """The trainer's DataLoader: ``sampler``'s batches in order, decoded by ``workers`` processes.

    ``pin_memory`` (the trainer sets it when it trains on CUDA) puts each batch in page-locked
    memory, so that the trainer's ``non_blocking`` copies to the GPU overlap with its work.

    The DataLoader hands batches back in the sampler's order whatever the number of workers,
    and the items of a batch are a function of the step alone, so workers change no batch: a
    run (and ``--resume``) sees the same data with 0 or 8 workers.
    """
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
    )
