"""``pixels``: diffusion on the pixels themselves, rescaled from [0, 255] to [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from polydiff.interfaces import Encoder


def to_unit_range(x: Tensor) -> Tensor:
    """Pixels ``[0, 255]`` (any dtype) -> float ``[-1, 1]``."""
    return x.float() / 127.5 - 1.0


def to_pixel_range(z: Tensor) -> Tensor:
    """Float ``[-1, 1]`` -> float pixels ``[0, 255]`` (values outside are clamped)."""
    return ((z.float() + 1.0) * 127.5).clamp(0.0, 255.0)


class PixelEncoder(Encoder):
    """``encode: [B, C, H, W]`` in [0, 255] -> the same shape in [-1, 1]; ``decode`` clamps back.

    Args:
        data_shape: ``(C, H, W)`` of one image (any size works; kept for the common factory call).
    """

    def __init__(self, data_shape: Sequence[int] | None = None):
        super().__init__()

    def encode(self, x: Tensor) -> Tensor:
        return to_unit_range(x)

    def decode(self, z: Tensor) -> Tensor:
        return to_pixel_range(z)

    def config(self) -> dict[str, Any]:
        return {}
