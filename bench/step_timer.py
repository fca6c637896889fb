"""Time the trainer's own training step in-process (the benchmarks of compile, contention, GPU).

:func:`trainer_for` builds a :class:`~polydiff.training.trainer.Trainer` as ``polydiff train``
does and runs its set-up (data, model, optimizer, compile, DataLoader); :func:`time_steps`
then runs its ``_train_step`` on the DataLoader's batches: the first step alone (compilation
happens there), a few warm-up steps, then as many steps as fit in a time budget.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from polydiff.compiling import eager_on_failure, is_compiled
from polydiff.run_config import RunConfig
from polydiff.training import distributed as D
from polydiff.training.trainer import Trainer


@dataclass
class StepTiming:
    """What :func:`time_steps` measured."""

    first_step_s: float
    steps: int  # timed steps after the warm-up
    seconds: float
    steps_per_s: float
    compiled: bool


def trainer_for(
    modality: str,
    run_dir: Path,
    *,
    preset: str = "quick",
    dataset: str | None = None,
    device: str = "cpu",
    train: dict[str, Any] | None = None,
    assignments: list[str] | None = None,
    registry: Any = None,
) -> Trainer:
    """A set-up Trainer (``_setup`` done, ``run_dir`` locked: call :func:`close` after)."""
    config = RunConfig.for_modality(
        modality, preset=preset, dataset=dataset, registry=registry, overrides={"train": train or {}}
    )
    config.apply_overrides(assignments or [])
    trainer = Trainer(config, run_dir, registry=registry, device=device, progress=False, overwrite=True)
    trainer.last_checkpoint = None
    trainer._take_run_dir()
    trainer._setup()
    trainer.model.train()
    return trainer


def close(trainer: Trainer) -> None:
    trainer._release()
    D.cleanup(trainer.dist)


def time_steps(
    trainer: Trainer,
    *,
    warmup: int = 2,
    seconds: float = 10.0,
    max_steps: int = 10_000,
    step_hook: Callable[[int], None] | None = None,
) -> StepTiming:
    """The first step's seconds, then steps/s over ``seconds`` (at most ``max_steps``) after
    ``warmup`` untimed steps; CUDA work is synchronised before each clock reading."""
    device = trainer.dist.device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    batches = iter(trainer.loader)
    step = 0

    def run() -> None:
        nonlocal step
        batch = next(batches)
        if step_hook is not None:
            step_hook(step)
        if step == 0:
            eager_on_failure([trainer.model.unet], functools.partial(trainer._train_step, 0, batch), "step")
        else:
            trainer._train_step(step, batch)
        step += 1

    sync()
    start = time.perf_counter()
    run()
    sync()
    first = time.perf_counter() - start
    for _ in range(warmup):
        run()
    sync()
    start = time.perf_counter()
    timed = 0
    while timed < max_steps and (timed == 0 or time.perf_counter() - start < seconds):
        run()
        timed += 1
        if device.type == "cuda" and timed % 10 == 0:
            sync()
    sync()
    elapsed = time.perf_counter() - start
    return StepTiming(first, timed, elapsed, timed / elapsed, is_compiled(trainer.model.unet))


def as_dict(timing: StepTiming) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(timing).items()}
