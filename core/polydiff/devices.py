"""One place that turns a ``--device`` value into a :class:`torch.device` that exists here."""

from __future__ import annotations

import re

import torch

from polydiff.errors import ConfigError


def resolve_device(device: str | torch.device | None, option: str = "--device") -> torch.device:
    """``None`` -> CUDA when a GPU is visible, else the CPU; ``"cpu"``, ``"cuda"`` and ``"cuda:N"``
    are checked against the GPUs visible to this process.

    Raises:
        ConfigError: an unknown device name, or a CUDA device that is not visible (one line
            naming ``option`` and the fix).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(device).strip()
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ConfigError(f"unknown device '{text}'; use cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"{option} {text}: no CUDA GPU is visible; use {option} cpu")
    index = match.group(1)
    if index is not None and int(index) >= count:
        raise ConfigError(
            f"{option} {text}: only {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1}); "
            f"use one of them or {option} cpu"
        )
    return torch.device(text)
