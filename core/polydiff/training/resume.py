"""What ``--resume`` may change between the legs of a run, and what it must refuse."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

from polydiff.errors import ConfigError
from polydiff.run_config import RunConfig
from polydiff.training.config import RESUMABLE_FIELDS

#: UNet fields the builder fills in from the encoder and conditioner (never the user's choice).
DERIVED_UNET = ("in_channels", "cond_channels", "context_dim")
_UNSET = "unset"


def _plain(value: Any) -> Any:
    """Tuples as lists, as config.json stores them, so both sides compare alike."""
    return json.loads(json.dumps(value, default=_asdict))


def _asdict(value: Any) -> Any:
    """Nested config sections (``unet.spacetime``) as dicts; anything else as its text."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else str(value)


def reconcile(run: RunConfig, asked: RunConfig, run_dir: Path, step: int) -> tuple[RunConfig, list[str]]:
    """The config of the resumed leg: ``run`` (the checkpoint's) with ``asked``'s resumable changes.

    Returns the config and the changes as ``"train.lr 0.0002 -> 0.0001"``. Raises ConfigError
    naming every field that would change what was trained (or ``train.steps`` below ``step``).
    Fields filled in at fit time (``data_shape``, ``latent_shape``, the UNet's channel and context
    sizes, encoder/conditioner options the user did not set, writer options) do not count.
    """
    refused: list[str] = []
    changes: list[str] = []

    def differs(name: str, old: Any, new: Any) -> bool:
        if _plain(old) != _plain(new):
            refused.append(f"{name} {old!r} -> {new!r}")
            return True
        return False

    differs("modality", run.modality, asked.modality)
    for kind in ("dataset", "encoder", "conditioner", "backbone"):
        mine, theirs = getattr(run, kind), getattr(asked, kind)
        if differs(kind, mine.name, theirs.name):
            continue
        # encoder/conditioner options are completed at fit time: only those the user gives count
        keys = set(theirs.options) | (set(mine.options) if kind == "dataset" else set())
        for key in sorted(keys):
            differs(f"{kind}.{key}", mine.options.get(key, _UNSET), theirs.options.get(key, _UNSET))
    for section in ("unet", "diffusion"):
        for f in dataclasses.fields(getattr(run, section)):
            if section == "unet" and f.name in DERIVED_UNET:
                continue
            differs(
                f"{section}.{f.name}",
                getattr(run, section).__dict__[f.name],
                getattr(asked, section).__dict__[f.name],
            )
    out = copy.deepcopy(run)
    for f in dataclasses.fields(run.train):
        old, new = getattr(run.train, f.name), getattr(asked.train, f.name)
        if f.name not in RESUMABLE_FIELDS:
            differs(f"train.{f.name}", old, new)
        elif _plain(old) != _plain(new):
            setattr(out.train, f.name, new)
            changes.append(f"train.{f.name} {old} -> {new}")
    for key in sorted(set(run.sample) | set(asked.sample)):
        old, new = run.sample.get(key, _UNSET), asked.sample.get(key, _UNSET)
        if _plain(old) != _plain(new):
            changes.append(f"sample.{key} {old} -> {new}")
    out.sample = copy.deepcopy(asked.sample)
    if refused:
        raise ConfigError(
            f"cannot resume {run_dir}: {'; '.join(refused)} (the run's value -> the one asked for) would "
            "change what was trained; drop the change to continue the run, or start a new run with "
            "another --out"
        )
    if out.train.steps < step:
        raise ConfigError(
            f"cannot resume {run_dir} to train.steps={out.train.steps}: the run is at step {step} "
            f"already; pass --steps {step} or more (or sample the run as it is)"
        )
    return out, changes
