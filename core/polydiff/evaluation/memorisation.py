"""Memorisation: how close is each item to its nearest training item?"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def nearest_items(queries: Tensor, references: Tensor, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """RMS distance of each of ``queries [N, ...]`` to its nearest of ``references [M, ...]``
    (same trailing shape, flattened) and that neighbour's index: ``(distance [N], index [N])``."""
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(
            f"nearest_items: queries {tuple(queries.shape)} and references {tuple(references.shape)} "
            "must have the same item shape"
        )
    q, r = queries.flatten(1).double(), references.flatten(1).double()
    r_sq = (r**2).sum(1)
    dist, index = [], []
    for start in range(0, len(q), batch_size):
        part = q[start : start + batch_size]
        sq = (part**2).sum(1, keepdim=True) + r_sq[None] - 2 * part @ r.T
        best, where = sq.clamp(min=0).min(1)
        dist.append((best / q.shape[1]).sqrt())
        index.append(where)
    return torch.cat(dist).float(), torch.cat(index)


def memorisation_summary(sample_distance: Tensor, real_distance: Tensor) -> dict[str, float]:
    """Compare nearest-training-item distances of samples with those of real held-out items.

    Returns the two medians, their ratio (about 1: as far from the training set as new real data;
    well below 1: samples sit on training items), and ``copies``: the share of samples closer to a
    training item than all but 5% of the real held-out items are (about 0.05 when nothing is copied).
    """
    low = torch.quantile(real_distance.double(), 0.05).item()
    sample_median = sample_distance.median().item()
    real_median = real_distance.median().item()
    return {
        "sample_nn_distance_median": sample_median,
        "real_nn_distance_median": real_median,
        "ratio": sample_median / real_median if real_median > 0 else float("inf"),
        "copies": (sample_distance <= low).float().mean().item(),
        "real_nn_distance_p05": low,
    }
