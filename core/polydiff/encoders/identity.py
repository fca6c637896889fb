"""The identity encoder: data space is diffusion space."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from polydiff.interfaces import Encoder


class IdentityEncoder(Encoder):
    """``encode(x) = x``, optionally affine: ``(x - shift) * scale`` (e.g. to reach [-1, 1])."""

    def __init__(self, data_shape: Sequence[int] | None = None, scale: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.scale, self.shift = float(scale), float(shift)

    def encode(self, x: Tensor) -> Tensor:
        return (x.float() - self.shift) * self.scale

    def decode(self, z: Tensor) -> Tensor:
        return z / self.scale + self.shift

    def config(self) -> dict[str, float]:
        return {"scale": self.scale, "shift": self.shift}
