"""The vocabulary of moving-shapes clips: colours, shapes, directions and the caption grammar.

This module is the shared *specification* of the synthetic world. The generator
(:mod:`polydiff_video.data.moving_shapes`) renders it and the checkers
(:mod:`polydiff_video.evaluation`) measure against it; neither imports the other.
No torch import here: :mod:`polydiff_video.plugin` reads it while listing plugins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from polydiff.shapes_world import PALETTE, held_out_cycling
from polydiff.shapes_world import SHAPES as WORLD_SHAPES

#: Reference RGB of each colour name (what "a red square" is drawn with): four colours of the
#: core's shared palette (:data:`polydiff.shapes_world.PALETTE`).
COLOURS: dict[str, tuple[int, int, int]] = {
    name: PALETTE[name].rgb for name in ("red", "green", "blue", "yellow")
}

#: Three of the shared world's shapes, in this world's order (the held-out rule cycles through it).
SHAPES: tuple[str, ...] = ("square", "circle", "triangle")

#: Unit displacement ``(dy, dx)`` per frame of each direction, in image coordinates (y down).
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (0, -1),
    "right": (0, 1),
    "up": (-1, 0),
    "down": (1, 0),
}

_CAPTION = re.compile(r"^\s*an?\s+(?P<colour>\w+)\s+(?P<shape>\w+)\s+moving\s+(?P<direction>\w+)\s*\.?\s*$")


@dataclass(frozen=True, order=True)
class Combo:
    """One (colour, shape, direction) combination; its caption is ``"a red square moving left"``."""

    colour: str
    shape: str
    direction: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} moving {self.direction}"


assert set(SHAPES) <= set(WORLD_SHAPES)


def all_combos() -> list[Combo]:
    """Every combination, in a fixed order (colour, then shape, then direction)."""
    return [Combo(c, s, d) for c in COLOURS for s in SHAPES for d in DIRECTIONS]


def parse_caption(text: str) -> Combo | None:
    """The combination a caption names, or None if it does not follow the grammar
    ``"a <colour> <shape> moving <direction>"`` with known words."""
    match = _CAPTION.match(text.lower())
    if match is None:
        return None
    combo = Combo(match["colour"], match["shape"], match["direction"])
    if combo.colour not in COLOURS or combo.shape not in SHAPES or combo.direction not in DIRECTIONS:
        return None
    return combo


def default_held_out() -> list[Combo]:
    """The combinations held out of training by default (8 of 48).

    Chosen so that every colour, shape and direction, and every pair of them, still
    occurs in training: the held-out prompts test composition, not new words.
    """
    colours, directions = list(COLOURS), list(DIRECTIONS)
    # one shape per (colour, direction) pair in half of the pairs, cycling shapes
    return [
        Combo(colours[ci], SHAPES[si], directions[di])
        for ci, di, si in held_out_cycling(len(colours), len(directions), len(SHAPES))
    ]
