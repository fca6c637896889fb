"""``shapes``: procedurally drawn coloured shapes at grid positions, with captions.

Every image shows one shape of one colour at one cell of a ``grid x grid`` layout on a
black background, e.g. ``"a red circle at the top left"``. Size, position within the
cell and the exact hue/brightness are jittered. A fixed set of (colour, shape, position)
combinations is held out of the training split (see :func:`held_out_combos`): every
colour, shape and position, and every *pair* of them, is still seen in training, so a
model that generalises compositionally can draw the held-out triples.

Nothing is downloaded: item ``i`` is drawn on the fly from a seeded RNG, so the dataset
is deterministic and costs no memory.
"""

from __future__ import annotations

import colorsys
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from polydiff.errors import ConfigError
from polydiff.shapes_world import PALETTE, held_out_by_sum
from polydiff.shapes_world import SHAPES as WORLD_SHAPES

#: Colour names and their hue in degrees (six hues 60 degrees apart): the core's shared palette.
COLOUR_HUES: dict[str, float] = {name: colour.hue for name, colour in PALETTE.items()}
SHAPES: tuple[str, ...] = WORLD_SHAPES
#: Position names of the 3x3 and 2x2 grids, row by row, and the phrase used in captions.
POSITIONS: dict[int, tuple[str, ...]] = {
    3: ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"),
    2: ("top left", "top right", "bottom left", "bottom right"),
}
_PHRASE = {"left": "on the left", "right": "on the right", "center": "in the center"}
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Combo:
    """Indices of one (colour, shape, position) combination."""

    colour: int
    shape: int
    position: int


def position_phrase(position: str) -> str:
    """``"top left"`` -> ``"at the top left"``, ``"left"`` -> ``"on the left"``."""
    return _PHRASE.get(position, f"at the {position}")


def held_out_combos(num_colours: int, num_shapes: int, num_positions: int, modulus: int) -> list[Combo]:
    """The combinations kept out of training: ``(colour + shape + position) % modulus == 0``.

    For a fixed pair of attributes the third one is held out for at most
    ``ceil(n / modulus)`` of its ``n`` values, so with ``modulus`` larger than the smallest
    attribute count every pair stays in training. ``modulus = 0`` holds nothing out.
    """
    return [Combo(*combo) for combo in held_out_by_sum((num_colours, num_shapes, num_positions), modulus)]


class ShapesDataset:
    """Coloured shapes with captions; items ``{"x": uint8 [3, size, size], "text", "colour",
    "shape", "position"}`` (the last three are indices into :attr:`colours`, :attr:`shapes`,
    :attr:`positions`).

    Args:
        split: ``"train"`` (held-out combinations excluded) or ``"eval"`` (all combinations,
            drawn from a different random stream).
        size: Image side in pixels.
        colours: Colour names, a subset of :data:`COLOUR_HUES`.
        shapes: Shape names, a subset of :data:`SHAPES`.
        grid: 3 (nine positions) or 2 (four corners).
        holdout_modulus: See :func:`held_out_combos`; 0 keeps every combination in training.
        num_samples: Length of the dataset (items are drawn on the fly).
        seed: Seeds the drawing; the same seed gives the same images.
    """

    synthetic = True  # generated in code (or shipped with the plugin): no validation pass

    def __init__(
        self,
        split: str = "train",
        size: int = 32,
        colours: Sequence[str] | None = None,
        shapes: Sequence[str] | None = None,
        grid: int = 3,
        holdout_modulus: int = 7,
        num_samples: int | None = None,
        seed: int = 0,
    ):
        if split not in ("train", "eval"):
            raise ConfigError(f"shapes dataset: split must be 'train' or 'eval', not '{split}'")
        if grid not in POSITIONS:
            raise ConfigError(f"shapes dataset option 'grid' must be 2 or 3, not {grid}")
        if size < 8:
            raise ConfigError(f"shapes dataset option 'size' must be at least 8 pixels, not {size}")
        self.colours = _check_names("colours", colours or list(COLOUR_HUES), COLOUR_HUES)
        self.shapes = _check_names("shapes", shapes or list(SHAPES), SHAPES)
        self.positions = list(POSITIONS[grid])
        self.split, self.size, self.grid, self.seed = split, size, grid, seed
        self.data_shape = (3, size, size)
        self.combos = [
            Combo(c, s, p)
            for c in range(len(self.colours))
            for s in range(len(self.shapes))
            for p in range(len(self.positions))
        ]
        self.held_out = held_out_combos(
            len(self.colours), len(self.shapes), len(self.positions), holdout_modulus
        )
        held = set(self.held_out)
        self.seen = [c for c in self.combos if c not in held]
        self._pool = self.seen if split == "train" else self.combos
        self.num_samples = num_samples if num_samples is not None else (20000 if split == "train" else 2000)
        self._by_caption = {self.caption(c): c for c in self.combos}

    # -- captions ---------------------------------------------------------------------
    def caption(self, combo: Combo) -> str:
        """``Combo`` -> ``"a red circle at the top left"``."""
        return (
            f"a {self.colours[combo.colour]} {self.shapes[combo.shape]} "
            f"{position_phrase(self.positions[combo.position])}"
        )

    @property
    def captions(self) -> list[str]:
        """Captions of the training combinations (what a text conditioner may learn from)."""
        return [self.caption(c) for c in self.seen]

    @property
    def held_out_prompts(self) -> list[str]:
        return [self.caption(c) for c in self.held_out]

    @property
    def eval_prompts(self) -> list[str]:
        """Every held-out prompt, then as many seen prompts (a fixed, spread-out choice)."""
        stride = max(1, len(self.seen) // max(1, len(self.held_out)))
        seen = self.seen[::stride][: max(1, len(self.held_out))]
        return self.held_out_prompts + [self.caption(c) for c in seen]

    def attributes(self, prompt: str) -> Combo | None:
        """The combination a caption describes, or None if it is not one of ours."""
        return self._by_caption.get(prompt)

    # -- items ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"shapes dataset index {index} out of range [0, {self.num_samples})")
        stream = 0 if self.split == "train" else 1
        rng = random.Random((self.seed * 2 + stream) * 1_000_003 + index)
        combo = rng.choice(self._pool)
        return {
            "x": self.render(combo, rng),
            "text": self.caption(combo),
            "colour": combo.colour,
            "shape": combo.shape,
            "position": combo.position,
        }

    def render(self, combo: Combo, rng: random.Random) -> torch.Tensor:
        """Draw ``combo`` with jittered size, offset and colour -> uint8 ``[3, size, size]``."""
        big = self.size * _SUPERSAMPLE
        cell = big / self.grid
        row, col = divmod(combo.position, self.grid)
        cx = (col + 0.5 + rng.uniform(-0.12, 0.12)) * cell
        cy = (row + 0.5 + rng.uniform(-0.12, 0.12)) * cell
        radius = cell * rng.uniform(0.32, 0.42)
        hue = (COLOUR_HUES[self.colours[combo.colour]] + rng.uniform(-8.0, 8.0)) / 360.0
        rgb = colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0))
        fill = tuple(round(255 * v) for v in rgb)
        image = Image.new("RGB", (big, big), (0, 0, 0))
        _draw_shape(ImageDraw.Draw(image), self.shapes[combo.shape], cx, cy, radius, fill)
        image = image.resize((self.size, self.size), Image.Resampling.BOX)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: tuple[int, ...]
) -> None:
    """Draw a shape of "radius" ``r`` centred at ``(cx, cy)``; areas are roughly comparable."""
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        h = r * 0.85
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif shape == "triangle":
        # equilateral, pointing up, centroid at (cx, cy), circumradius 1.15 r
        rr = r * 1.15
        pts = [
            (cx + rr * math.cos(a), cy - rr * math.sin(a))
            for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)
        ]
        draw.polygon(pts, fill=fill)
    elif shape == "cross":
        w = r * 0.38
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
    else:  # pragma: no cover - names are checked in __init__
        raise ConfigError(f"unknown shape '{shape}'")


def _check_names(option: str, names: Sequence[str], known: Sequence[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"shapes dataset option '{option}' must be distinct names from {', '.join(known)}; got {names}"
        )
    return names
