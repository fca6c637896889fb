"""Monotonic alignment search (Glow-TTS) vectorised in torch, and durations -> alignment paths.

No Cython: the dynamic programme loops over mel frames in Python and is vectorised (numpy)
over the batch and the text tokens, so there is no build step and it works whatever the
device of the model (the scores are moved to the CPU, the path back).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from polydiff.errors import DataError

_UNREACHABLE = -1e9


def monotonic_alignment_search(log_p: Tensor, x_lengths: Tensor, y_lengths: Tensor) -> Tensor:
    """The most likely monotonic alignment of tokens to frames.

    Each frame ``y < y_lengths[b]`` is assigned to exactly one token; the path starts at
    ``(0, 0)``, ends at ``(x_len - 1, y_len - 1)``, and at each frame either stays on its
    token or moves to the next one, so every token gets at least one frame. It maximises
    ``sum(log_p[b, x, y] over the path)``.

    Args:
        log_p: ``[B, Tx, Ty]`` score of token ``x`` emitting frame ``y``.
        x_lengths: ``[B]`` tokens per sample; y_lengths: ``[B]`` frames per sample.

    Returns:
        ``[B, Tx, Ty]`` 0/1 path (dtype of ``log_p``), zero outside the valid lengths.

    Raises:
        DataError: a sample has fewer frames than tokens (no monotonic path exists).
    """
    batch, tx, ty = log_p.shape
    if bool((y_lengths < x_lengths).any()):
        b = int((y_lengths < x_lengths).nonzero()[0])
        raise DataError(
            f"sample {b} of the batch has {int(y_lengths[b])} mel frames but {int(x_lengths[b])} "
            "tokens; an alignment needs at least one frame per token (drop such clips or "
            "use add_blank=False)"
        )
    path = _mas_numpy(log_p.detach().float().cpu().numpy(), x_lengths.cpu().numpy(), y_lengths.cpu().numpy())
    return torch.from_numpy(path).to(device=log_p.device, dtype=log_p.dtype)


def _mas_numpy(log_p: np.ndarray, x_lengths: np.ndarray, y_lengths: np.ndarray) -> np.ndarray:
    """The dynamic programme of :func:`monotonic_alignment_search` (numpy: ~10x faster than
    per-frame torch ops on small tensors). ``log_p: [B, Tx, Ty]`` float32."""
    batch, tx, ty = log_p.shape
    scores = np.where(np.arange(tx)[None, :, None] < x_lengths[:, None, None], log_p, _UNREACHABLE)
    scores = np.ascontiguousarray(scores.transpose(2, 0, 1), dtype=np.float32)  # [Ty, B, Tx]
    moved = np.zeros((ty, batch, tx), dtype=bool)  # moved[y, b, x]: (x, y) was entered from x - 1
    value = np.full((batch, tx), _UNREACHABLE, dtype=np.float32)  # best score ending at (x, y)
    value[:, 0] = 0.0
    move = np.empty_like(value)
    for y in range(ty):
        if y > 0:
            move[:, 0] = _UNREACHABLE
            move[:, 1:] = value[:, :-1]
            np.greater(move, value, out=moved[y])
            np.maximum(value, move, out=value)
        value += scores[y]

    path = np.zeros((batch, tx, ty), dtype=np.float32)
    index = np.maximum(x_lengths - 1, 0)
    rows = np.arange(batch)
    for y in range(ty - 1, -1, -1):
        active = y < y_lengths
        path[rows, index, y] = active
        index = index - (active & moved[y, rows, index] & (index > 0))
    return path


def durations_to_path(durations: Tensor, max_frames: int | None = None) -> Tensor:
    """Hard alignment from integer durations (length regulation as a matrix).

    Args:
        durations: ``[B, Tx]`` frames per token (0 for padding tokens).
        max_frames: ``Ty``; default ``durations.sum(1).max()``.

    Returns:
        ``[B, Tx, Ty]`` float path: ``path[b, x, y] = 1`` when frame ``y`` belongs to token ``x``.
    """
    durations = durations.long()
    end = durations.cumsum(dim=1)  # [B, Tx]
    start = end - durations
    ty = int(end[:, -1].max()) if max_frames is None else max_frames
    frames = torch.arange(ty, device=durations.device)[None, None, :]
    return ((frames >= start[:, :, None]) & (frames < end[:, :, None])).float()
