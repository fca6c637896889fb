"""The synthetic "shapes" world the image and video plugins share, and the readers of its pictures.

One palette, one list of shape names, the held-out rules and the foreground / centroid readers
live here once (importing this module imports no torch: datasets' records read it while
plugins are listed); the image plugin's ``shapes`` dataset and checker and the video plugin's
``moving-shapes`` clips and checkers import them (no plugin imports another). Plain data and
torch only: nothing here knows how a picture was made, so real and generated pictures are
read alike.

* :data:`PALETTE`: colour name -> :class:`Colour` (a hue, what ``shapes`` images jitter around,
  and a reference RGB, what ``moving-shapes`` objects are drawn with);
* :data:`SHAPES`: the shape names; :func:`held_out_by_sum` and :func:`held_out_cycling`: the
  combinations kept out of training (every single attribute and every pair stays in training);
* :data:`FOREGROUND`: THE threshold of both worlds: a pixel is foreground when its brightest
  channel is at least 100 of 255 (objects are drawn with a brightest channel of 200 or more on
  black, so anti-aliased edges under 40% count as background); :func:`foreground`, :func:`centroid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Colour:
    """A colour of the world: ``hue`` in degrees and a reference ``rgb`` in [0, 255]."""

    hue: float
    rgb: tuple[int, int, int]


#: Every colour name of the world (six hues 60 degrees apart).
PALETTE: dict[str, Colour] = {
    "red": Colour(0.0, (225, 45, 45)),
    "yellow": Colour(60.0, (235, 215, 40)),
    "green": Colour(120.0, (40, 200, 70)),
    "cyan": Colour(180.0, (40, 205, 215)),
    "blue": Colour(240.0, (55, 90, 240)),
    "magenta": Colour(300.0, (215, 50, 215)),
}

#: Every shape name of the world (the video world draws the first three).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

#: Foreground = brightest channel at least this (of 255), in images and clips alike.
FOREGROUND = 100.0


def held_out_by_sum(sizes: Sequence[int], modulus: int) -> list[tuple[int, ...]]:
    """Index tuples over attributes of ``sizes`` values with ``sum % modulus == 0`` (row-major order).

    For fixed values of all attributes but one, the last is held out for at most
    ``ceil(n / modulus)`` of its ``n`` values, so with ``modulus`` larger than the smallest
    attribute count every pair stays in training. ``modulus = 0`` holds nothing out.
    """
    if modulus <= 0:
        return []
    return [combo for combo in product(*(range(n) for n in sizes)) if sum(combo) % modulus == 0]


def held_out_cycling(first: int, second: int, third: int) -> list[tuple[int, int, int]]:
    """``(i, j, k)``: for half of the ``(i, j)`` pairs (``i + j`` even), one value
    ``k = (i + 2 j) % third`` of the third attribute, cycling through its values.

    With 4 x 4 pairs and 3 values this holds 8 of 48 combinations out, and every value and every
    pair still occurs in training.
    """
    return [(i, j, (i + 2 * j) % third) for i in range(first) for j in range(second) if (i + j) % 2 == 0]


def foreground(x: Tensor, channel_dim: int = -3, threshold: float = FOREGROUND) -> Tensor:
    """Bool mask of the object's pixels: brightest channel (along ``channel_dim``) >= ``threshold``.

    ``x``: pictures ``[B, C, H, W]`` (``channel_dim=1`` or -3) or a clip ``[C, T, H, W]``
    (``channel_dim=0``), in [0, 255]; the mask drops the channel axis.
    """
    return x.amax(dim=channel_dim) >= threshold


def centroid(weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, x, total)`` of ``weight [..., H, W]`` (a mask or brightness): the weighted mean row
    and column, in pixel indices (the top-left pixel's centre is ``(0, 0)``), and the total
    weight; ``y`` and ``x`` are NaN where the total is 0. Computed in ``weight``'s dtype."""
    import torch

    height, width = weight.shape[-2:]
    ys = torch.arange(height, dtype=weight.dtype)
    xs = torch.arange(width, dtype=weight.dtype)
    total = weight.sum((-2, -1))
    nan = torch.full_like(total, float("nan"))
    y = torch.where(total > 0, (weight.sum(-1) * ys).sum(-1) / total.clamp_min(1e-12), nan)
    x = torch.where(total > 0, (weight.sum(-2) * xs).sum(-1) / total.clamp_min(1e-12), nan)
    return y, x, total
