"""Reads colour, shape and position off a ``shapes`` image, independently of any generator.

* foreground: pixels whose brightest channel reaches the world's one threshold
  (:data:`polydiff.shapes_world.FOREGROUND`, 100 of 255; the background is black);
* colour: circular mean of the foreground hues, weighted by chroma, snapped to the nearest
  palette hue;
* position: the brightness-weighted centroid of the foreground, snapped to the grid cell;
* shape: a :class:`SmallConvNet` trained on real ``shapes`` images, looking at a
  grey crop around the foreground's bounding box (so it sees neither colour nor position).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from polydiff.shapes_world import FOREGROUND, centroid
from polydiff.shapes_world import foreground as world_foreground
from polydiff_image.datasets.shapes import COLOUR_HUES, Combo, ShapesDataset
from polydiff_image.evaluate.classifier import SmallConvNet, predict, train_classifier

__all__ = [
    "CROP",
    "FOREGROUND",
    "ShapesChecker",
    "rgb_to_hue",
    "foreground",
    "read_colour",
    "read_position",
    "shape_crops",
]
#: Side of the normalised crops the shape classifier sees.
CROP = 16


def rgb_to_hue(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x [B, 3, H, W]`` in [0, 255] -> ``(hue in degrees [B, H, W], chroma [B, H, W])``."""
    r, g, b = x.float().unbind(dim=1)
    maxc, minc = torch.maximum(torch.maximum(r, g), b), torch.minimum(torch.minimum(r, g), b)
    chroma = maxc - minc
    safe = chroma.clamp_min(1e-6)
    hue = (
        torch.where(
            maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4)
        )
        * 60.0
    )
    return hue, chroma


def foreground(x: Tensor) -> Tensor:
    """``x [B, 3, H, W]`` -> bool mask ``[B, H, W]`` of the shape's pixels."""
    return world_foreground(x.float(), channel_dim=1)


def read_colour(x: Tensor, palette: Sequence[float]) -> Tensor:
    """Index into ``palette`` (hues in degrees) of each image's colour; -1 for an empty image."""
    hue, chroma = rgb_to_hue(x)
    weight = chroma * foreground(x)
    angle = torch.deg2rad(hue)
    vec = torch.stack([(weight * angle.cos()).sum((-2, -1)), (weight * angle.sin()).sum((-2, -1))], -1)
    mean = torch.rad2deg(torch.atan2(vec[:, 1], vec[:, 0]))
    ref = torch.tensor(palette, dtype=mean.dtype)
    diff = (mean[:, None] - ref[None, :] + 180) % 360 - 180
    out = diff.abs().argmin(dim=1)
    return torch.where(weight.sum((-2, -1)) > 0, out, torch.full_like(out, -1))


def read_position(x: Tensor, grid: int) -> Tensor:
    """Grid cell (row-major) of each image's foreground centroid; -1 for an empty image."""
    h, w = x.shape[-2:]
    y, x_, total = centroid(x.float().amax(dim=1) * foreground(x))  # brightness-weighted
    cy, cx = (y + 0.5).nan_to_num(0.0), (x_ + 0.5).nan_to_num(0.0)  # pixel centres at +0.5
    row = (cy / h * grid).floor().long().clamp(0, grid - 1)
    col = (cx / w * grid).floor().long().clamp(0, grid - 1)
    return torch.where(total > 0, row * grid + col, torch.full_like(row, -1))


def shape_crops(x: Tensor, size: int = CROP) -> Tensor:
    """Grey crops ``[B, 1, size, size]`` in [0, 1] around each foreground's bounding box (a square
    with a 25% margin); an empty image gives a black crop."""
    grey = x.float().amax(dim=1, keepdim=True) / 255.0
    mask = foreground(x)
    b, _, h, w = grey.shape
    has_col, has_row = mask.any(dim=1), mask.any(dim=2)  # [B, W], [B, H]
    idx_w, idx_h = torch.arange(w), torch.arange(h)
    big = torch.tensor(10**6)
    x0 = torch.where(has_col, idx_w, big).amin(1).float()
    x1 = torch.where(has_col, idx_w, -big).amax(1).float() + 1
    y0 = torch.where(has_row, idx_h, big).amin(1).float()
    y1 = torch.where(has_row, idx_h, -big).amax(1).float() + 1
    empty = ~mask.flatten(1).any(1)
    side = torch.maximum(x1 - x0, y1 - y0) * 1.25 + 1.0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side, cx, cy = (
        torch.where(empty, torch.ones_like(v) * d, v) for v, d in ((side, 1.0), (cx, w / 2), (cy, h / 2))
    )
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = side / w, side / h
    theta[:, 0, 2], theta[:, 1, 2] = cx / w * 2 - 1, cy / h * 2 - 1
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    crops = F.grid_sample(grey, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops * (~empty).float()[:, None, None, None]


class ShapesChecker:
    """Attribute reader for images like ``reference``'s (same size, palette, shapes and grid).

    The shape classifier is trained at construction on ``train_samples`` freshly drawn real
    images (all combinations, a random stream no split uses), then validated on half as many
    more: :attr:`real_accuracy` holds every attribute's accuracy on those real images.
    """

    def __init__(
        self,
        reference: ShapesDataset,
        *,
        train_samples: int = 2000,
        epochs: int = 6,
        width: int = 16,
        seed: int = 0,
    ):
        self.colours, self.shapes, self.grid = reference.colours, reference.shapes, reference.grid
        self.palette = [COLOUR_HUES[c] for c in self.colours]

        def real(n: int, stream: int) -> tuple[Tensor, list[Combo]]:
            ds = ShapesDataset(
                "eval",
                size=reference.size,
                colours=self.colours,
                shapes=self.shapes,
                grid=self.grid,
                holdout_modulus=0,
                num_samples=n,
                seed=10_000 + 2 * seed + stream,
            )
            items = [ds[i] for i in range(n)]
            return (
                torch.stack([it["x"] for it in items]),
                [Combo(it["colour"], it["shape"], it["position"]) for it in items],
            )

        images, combos = real(train_samples, 0)
        labels = torch.tensor([c.shape for c in combos])
        self.net: SmallConvNet = train_classifier(
            shape_crops(images), labels, len(self.shapes), epochs=epochs, width=width, seed=seed
        )
        val_images, val_combos = real(train_samples // 2, 1)
        self.real_accuracy = self.score(val_images, val_combos)

    def read(self, x: Tensor) -> dict[str, Tensor]:
        """``x [N, 3, H, W]`` in [0, 255] -> ``{"colour", "shape", "position"}``, each ``[N]`` long
        (-1 where the image has no foreground)."""
        x = x.detach().float().cpu()
        empty = ~foreground(x).flatten(1).any(1)
        shape, _ = predict(self.net, shape_crops(x))
        return {
            "colour": read_colour(x, self.palette),
            "position": read_position(x, self.grid),
            "shape": torch.where(empty, torch.full_like(shape, -1), shape),
        }

    def score(self, x: Tensor, combos: Sequence[Combo]) -> dict[str, float]:
        """Accuracy of each attribute, ``all`` three at once, and their ``mean``, against ``combos``."""
        read = self.read(x)
        hits = {
            k: read[k] == torch.tensor([getattr(c, k) for c in combos])
            for k in ("colour", "shape", "position")
        }
        out = {k: v.float().mean().item() for k, v in hits.items()}
        out["all"] = (hits["colour"] & hits["shape"] & hits["position"]).float().mean().item()
        out["mean"] = (out["colour"] + out["shape"] + out["position"]) / 3
        out["num_samples"] = len(combos)
        return out
