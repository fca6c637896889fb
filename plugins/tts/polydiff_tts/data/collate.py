"""Batching variable-length mels: pad to a length the UNet can downsample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def pad_to_multiple(length: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is ``>= length``."""
    return -(-length // multiple) * multiple


def collate_mels(
    items: Sequence[dict[str, Any]], pad_multiple: int = 16, pad_value: float = 0.0
) -> dict[str, Any]:
    """Stack items ``{"x": [C, T_i], "text": str, ...}`` into a batch, padding ``x`` with
    ``pad_value`` (the datasets pass the log-mel of silence).

    Returns:
        ``{"x": [B, C, T], "mel_lengths": [B] long, "mask": [B, 1, T] float, ...}`` with ``T`` the
        longest ``T_i`` rounded up to ``pad_multiple``; other keys become lists.
    """
    lengths = torch.tensor([item["x"].shape[-1] for item in items], dtype=torch.long)
    total = pad_to_multiple(int(lengths.max()), pad_multiple)
    x = torch.stack([F.pad(item["x"], (0, total - item["x"].shape[-1]), value=pad_value) for item in items])
    mask = (torch.arange(total)[None, :] < lengths[:, None]).unsqueeze(1).float()
    batch: dict[str, Any] = {"x": x, "mel_lengths": lengths, "mask": mask}
    for key in items[0]:
        if key != "x":
            batch[key] = [item[key] for item in items]
    return batch
