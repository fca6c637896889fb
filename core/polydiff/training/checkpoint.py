"""Checkpoints: a directory of safetensors files plus JSON, written atomically.

Layout of ``RUN_DIR/checkpoints/step-0001000/``::

    config.json            RunConfig (everything needed to rebuild model, encoder, conditioner)
    model.safetensors      unet.*, conditioner.*, encoder.* weights
    ema.safetensors        EMA of the trainable weights (used for sampling when present)
    optimizer.safetensors  AdamW moments, for --resume
    trainer_state.json     step, optimizer hyper-parameters, RNG-free bookkeeping

``RUN_DIR/latest`` names the newest complete checkpoint. Each checkpoint is written to a
temporary directory, fsynced and renamed into place, then ``latest`` is replaced
atomically: a run killed at any moment leaves the previous checkpoint loadable.
A run directory is read through ``latest`` only: it never falls back to another checkpoint.
Nothing is ever unpickled; the fp16 gradient scaler's state is JSON in ``trainer_state.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from polydiff.errors import CheckpointError
from polydiff.run_config import RunConfig

CONFIG, MODEL, EMA, OPTIMIZER, STATE = (
    "config.json",
    "model.safetensors",
    "ema.safetensors",
    "optimizer.safetensors",
    "trainer_state.json",
)


@dataclass
class Checkpoint:
    """A loaded checkpoint (tensors on the CPU)."""

    path: Path
    config: RunConfig
    model: dict[str, Tensor]
    ema: dict[str, Tensor] | None = None
    optimizer: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)


def _plain(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def first_non_finite(tensors: dict[str, Any]) -> str | None:
    """The name of the first floating tensor in ``tensors`` holding NaN or inf, else None."""
    for name, value in tensors.items():
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def check_finite(tensors: dict[str, Tensor], source: Path) -> None:
    """CheckpointError naming ``source`` and a tensor when any weight is NaN or infinite."""
    bad = first_non_finite(tensors)
    if bad is not None:
        raise CheckpointError(
            f"{source} holds non-finite values (e.g. in {bad}): the run had diverged when it was "
            "written; use an earlier checkpoint (checkpoints/step-*)"
        )


def optimizer_to_tensors(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (safetensors) and JSON."""
    tensors, scalars = {}, {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for items in (tensors.items(), meta.get("scalars", {}).items()):
        for key, value in items:
            idx, name = key.split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    config: RunConfig,
    model: dict[str, Tensor],
    ema: dict[str, Tensor] | None = None,
    optimizer: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    keep: int = 2,
    history: list[Path] | None = None,
    scaler: dict[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/checkpoints/step-NNNNNNN`` atomically and point ``run_dir/latest`` at it.

    ``history`` lists the run's earlier checkpoints, oldest first (default: those in
    ``checkpoints/``, by step): of those and the new one, all but the newest ``keep`` are removed
    afterwards (``keep=0`` keeps all); the new checkpoint, which ``latest`` names, never is.
    ``scaler`` is a GradScaler's ``state_dict()``, stored as JSON.
    """
    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:07d}-", dir=root))
    try:
        config.save(tmp / CONFIG)
        save_file(_plain(model), str(tmp / MODEL), metadata={"format": "polydiff"})
        if ema is not None:
            save_file(_plain(ema), str(tmp / EMA), metadata={"format": "polydiff"})
        meta: dict[str, Any] = {"step": step, **(state or {})}
        if scaler:
            meta["grad_scaler"] = scaler
        if optimizer is not None:
            tensors, meta["optimizer"] = optimizer_to_tensors(optimizer)
            save_file(_plain(tensors), str(tmp / OPTIMIZER))
        (tmp / STATE).write_text(json.dumps(meta, indent=2) + "\n")
        for f in tmp.iterdir():
            _fsync(f)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = run_dir / ".latest.tmp"
    pointer.write_text(final.name + "\n")
    os.replace(pointer, run_dir / "latest")
    if history is None:
        history = sorted(p for p in root.glob("step-*") if p.is_dir())
    owned = [p for p in history if p != final] + [final]
    for p in owned[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from itself or from its run directory (via ``latest``)."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return path
    if not path.exists():
        raise CheckpointError(
            f"{path} does not exist; pass a run directory written by `polydiff train` "
            "or one of its checkpoints/step-* directories"
        )
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file, not a run directory or a checkpoint directory")
    pointer = path / "latest"
    present = sorted(p.name for p in (path / "checkpoints").glob("step-*") if p.is_dir())
    if pointer.is_file():
        name = pointer.read_text().strip()
        candidate = path / "checkpoints" / name
        if name and (candidate / CONFIG).is_file() and (candidate / MODEL).is_file():
            return candidate
        raise CheckpointError(
            f"{pointer} names {name or 'nothing'}, which is missing or incomplete; {_listing(path, present)}"
        )
    if present:
        raise CheckpointError(f"{path} has checkpoints but no 'latest' file; {_listing(path, present)}")
    raise CheckpointError(
        f"{path} holds no checkpoint (no config.json, no checkpoints/step-*); "
        "train first with `polydiff train`"
    )


def _listing(run_dir: Path, present: list[str]) -> str:
    there = ", ".join(present) if present else "none"
    return (
        f"checkpoints there: {there}. Pass a {run_dir / 'checkpoints'}/step-* directory explicitly "
        "(polydiff never falls back to another checkpoint)"
    )


def _load_tensors(file: Path, what: str) -> dict[str, Tensor]:
    try:
        return load_file(str(file))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{file} is missing; the checkpoint is incomplete") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{file} cannot be read as safetensors ({exc}); the {what} file is "
            "truncated or not a polydiff checkpoint: use another checkpoint"
        ) from exc


def load_checkpoint(path: str | Path, *, training_state: bool = False) -> Checkpoint:
    """Load a checkpoint (or the latest one of a run directory) without unpickling anything."""
    path = resolve_checkpoint(path)
    config = RunConfig.load(path / CONFIG)
    model = _load_tensors(path / MODEL, "model")
    ema = _load_tensors(path / EMA, "EMA") if (path / EMA).exists() else None
    state: dict[str, Any] = {}
    optimizer = None
    if (path / STATE).exists():
        try:
            state = json.loads((path / STATE).read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path / STATE} is not valid JSON ({exc})") from exc
    if training_state:
        if not (path / STATE).is_file() or "optimizer" not in state or not (path / OPTIMIZER).is_file():
            missing = path / STATE if not (path / STATE).is_file() else path / OPTIMIZER
            raise CheckpointError(
                f"{missing} is missing, so {path} cannot be resumed (no training state); sample it "
                "as it is, or start a new run with another --out"
            )
        optimizer = optimizer_from_tensors(_load_tensors(path / OPTIMIZER, "optimizer"), state["optimizer"])
    return Checkpoint(path=path, config=config, model=model, ema=ema, optimizer=optimizer, state=state)


def load_state_strict(module: torch.nn.Module, tensors: dict[str, Tensor], source: Path) -> None:
    """``load_state_dict`` with an error that names the file and the mismatching keys/shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"shape mismatch for {k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
            )
        raise CheckpointError(
            f"{source} does not match the model its config.json describes: "
            f"{'; '.join(parts)}. Was the file copied from another run?"
        )
    module.load_state_dict(tensors)
