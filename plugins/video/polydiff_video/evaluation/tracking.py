"""Find the moving object in a clip: per-frame foreground mask, centroid, area and colour.

The object is whatever is bright or saturated against the dark background: pixels whose
brightest channel reaches ``threshold`` (by default the shared world's one threshold,
:data:`polydiff.shapes_world.FOREGROUND`). This knows nothing about how clips are made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from polydiff.shapes_world import FOREGROUND, centroid, foreground


@dataclass
class ObjectTrack:
    """The object found in one clip of ``T`` frames.

    Attributes:
        masks: ``[T, H, W]`` bool foreground.
        centroids: ``[T, 2]`` float ``(y, x)`` in pixels; NaN where a frame has fewer than
            ``min_area`` foreground pixels.
        areas: ``[T]`` foreground pixels per frame.
        mean_rgb: ``[3]`` mean colour of all foreground pixels, or None when there are none.
    """

    masks: np.ndarray
    centroids: np.ndarray
    areas: np.ndarray
    mean_rgb: np.ndarray | None

    @property
    def visible_in_every_frame(self) -> bool:
        return bool(np.isfinite(self.centroids).all())


def as_numpy_clip(clip: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[3, T, H, W]`` tensor or array in [0, 255] -> float64 numpy array."""
    array = (
        clip.detach().cpu().double().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip, float)
    )
    if array.ndim != 4 or array.shape[0] != 3:
        raise ValueError(f"expected a clip shaped [3, T, H, W], got {list(array.shape)}")
    return array


def track_object(
    clip: torch.Tensor | np.ndarray, *, threshold: float = FOREGROUND, min_area: int = 2
) -> ObjectTrack:
    """Segment and track the object of ``clip: [3, T, H, W]`` in [0, 255]."""
    array = as_numpy_clip(clip)
    mask = foreground(torch.from_numpy(array), channel_dim=0, threshold=threshold)  # [T, H, W]
    y, x, _ = centroid(mask.double())
    masks, areas = mask.numpy(), mask.sum((1, 2)).numpy()
    centroids = torch.stack([y, x], dim=1).numpy()
    centroids[areas < min_area] = np.nan
    mean_rgb = array[:, masks].mean(axis=1) if masks.any() else None
    return ObjectTrack(masks=masks, centroids=centroids, areas=areas, mean_rgb=mean_rgb)
