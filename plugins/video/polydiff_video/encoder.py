"""``video-pixels``: the identity up to scale, between [0, 255] frames and [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.interfaces import Encoder


class VideoPixelEncoder(Encoder):
    """Maps clips ``[B, 3, T, H, W]`` in [0, 255] to [-1, 1] and back (decode clamps).

    Args:
        data_shape: ``(C, T, H, W)`` of one clip; checked to be rank 3.
    """

    def __init__(self, data_shape: Sequence[int] = (3, 8, 32, 32)) -> None:
        super().__init__()
        if len(data_shape) != 4:
            raise ConfigError(
                f"video-pixels encodes clips shaped (C, T, H, W); got data_shape {tuple(data_shape)}. "
                f"Fix: use a video dataset or another encoder."
            )
        self.data_shape = tuple(int(d) for d in data_shape)

    def encode(self, x: Tensor) -> Tensor:
        """``x: [B, C, T, H, W]`` in [0, 255] -> same shape in [-1, 1]."""
        return x / 127.5 - 1.0

    def decode(self, z: Tensor) -> Tensor:
        """``z: [B, C, T, H, W]`` -> [0, 255], clamped."""
        return ((z + 1.0) * 127.5).clamp(0.0, 255.0)

    def config(self) -> dict[str, Any]:
        return {}
