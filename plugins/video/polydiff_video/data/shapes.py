"""Rasterised shape masks for the moving-shapes clips (numpy, no anti-aliasing)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from polydiff.errors import ConfigError
from polydiff_video.attributes import SHAPES


@lru_cache(maxsize=64)
def shape_mask(shape: str, size: int) -> np.ndarray:
    """A ``[size, size]`` bool mask of ``shape`` filling its bounding box (cached, read-only).

    ``"square"`` fills the box, ``"circle"`` is the inscribed disc and ``"triangle"`` an
    upward isosceles triangle with its base on the bottom row.
    """
    mask = _draw_mask(shape, size)
    mask.flags.writeable = False
    return mask


def _draw_mask(shape: str, size: int) -> np.ndarray:
    if size < 2:
        raise ConfigError(f"moving-shapes: object_size must be at least 2 pixels, got {size}.")
    centres = np.arange(size) + 0.5
    yy, xx = np.meshgrid(centres, centres, indexing="ij")
    half = size / 2
    if shape == "square":
        return np.ones((size, size), dtype=bool)
    if shape == "circle":
        return (yy - half) ** 2 + (xx - half) ** 2 <= half**2
    if shape == "triangle":
        # half-width grows linearly from the apex (top) to the full base (bottom)
        return np.abs(xx - half) <= half * yy / size + 1e-6
    raise ConfigError(f"moving-shapes: unknown shape '{shape}'. Known shapes: {', '.join(SHAPES)}.")
