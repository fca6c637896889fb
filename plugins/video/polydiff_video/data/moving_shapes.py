"""``moving-shapes``: procedurally generated clips of a coloured shape moving and bouncing.

Each clip shows one shape (square, circle, triangle) of one colour on a black background,
moving at a constant integer speed in one of four directions and reflecting off the
frame's edges. The caption names the direction of the *start* of the motion; the start
position is drawn so that the first half of the clip (``frames // 2`` steps) has no
bounce, so a clip moves in its caption's direction for at least half of its steps.

Some (colour, shape, direction) combinations are held out of the ``train`` split; the
``eval`` split covers all of them, so evaluators can score seen and held-out prompts.
Clips are generated on the fly from ``(seed, split, index)``: the same options give the
same clips, with no files and no downloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from polydiff.errors import ConfigError
from polydiff_video.attributes import COLOURS, DIRECTIONS, SHAPES, Combo, all_combos, default_held_out
from polydiff_video.attributes import parse_caption as _parse_caption
from polydiff_video.data.shapes import shape_mask

_SPLITS = {"train": 0, "eval": 1}
#: Uniform draws per clip: speed, start row, start column.
_DRAWS = 3


@dataclass(frozen=True)
class MotionTruth:
    """Ground truth of one clip's motion.

    Attributes:
        positions: ``[T, 2]`` int top-left corner ``(row, col)`` of the object per frame.
        track: ``[T, 2]`` float centroid ``(y, x)`` of the drawn object per frame, in pixels.
        bounces: How many times the object reflected off an edge.
    """

    positions: np.ndarray
    track: np.ndarray
    bounces: int


def simulate_positions(
    start: Sequence[int], velocity: Sequence[int], frames: int, limit: int
) -> tuple[np.ndarray, int]:
    """Move a point from ``start`` by ``velocity`` per frame, reflecting inside ``[0, limit]``.

    Closed form of stepping and reflecting: the unfolded path ``start + velocity * t`` is
    folded back into ``[0, limit]`` (a triangle wave of period ``2 * limit``), and every
    multiple of ``limit`` the unfolded path passes beyond is one reflection.

    Args:
        start: ``(row, col)`` at frame 0, each in ``[0, limit]``.
        velocity: ``(drow, dcol)`` per frame.
        frames: Number of frames ``T``.
        limit: Largest allowed coordinate (``size - object_size``), at least 1.

    Returns:
        ``positions [T, 2]`` (int64) and the number of reflections.
    """
    start_ = np.asarray(start, dtype=np.int64)
    vel = np.asarray(velocity, dtype=np.int64)
    if limit < 1 or (start_ < 0).any() or (start_ > limit).any():
        raise ValueError(f"start {tuple(start)} must lie in [0, limit] with limit >= 1, got limit {limit}")
    unfolded = start_ + vel * np.arange(frames, dtype=np.int64)[:, None]  # [T, 2]
    phase = unfolded % (2 * limit)
    positions = np.where(phase > limit, 2 * limit - phase, phase)
    end = unfolded[-1]
    # moving up: boundaries k * limit (k >= 1) below the end; moving down: k <= 0 above it
    up = np.where(end > 0, -(-end // limit) - 1, 0)
    down = np.where(end < 0, -(end // limit), 0)
    bounces = int(np.where(vel > 0, up, np.where(vel < 0, down, 0)).sum())
    return positions, bounces


def render_clip(
    colour: str, shape: str, positions: np.ndarray, object_size: int, size: int, dtype: np.dtype = np.uint8
) -> np.ndarray:
    """Draw the object at ``positions [T, 2]`` on black: returns ``[3, T, size, size]`` of ``dtype``."""
    rows, cols = np.nonzero(shape_mask(shape, object_size))  # [P] pixels of the object
    frames = len(positions)
    ys = positions[:, :1] + rows  # [T, P]
    xs = positions[:, 1:] + cols
    flat = (np.arange(frames)[:, None] * size + ys) * size + xs
    occupied = np.zeros(frames * size * size, dtype=dtype)
    occupied[flat.ravel()] = 1
    rgb = np.asarray(COLOURS[colour], dtype=dtype)
    return (rgb[:, None] * occupied).reshape(3, frames, size, size)


@lru_cache(maxsize=64)
def _centroid(shape: str, object_size: int) -> np.ndarray:
    """Centroid ``(y, x)`` of ``shape``'s mask relative to its box's top-left corner (read-only)."""
    centroid = np.argwhere(shape_mask(shape, object_size)).mean(axis=0)
    centroid.flags.writeable = False
    return centroid


class MovingShapesDataset:
    """Map-style dataset of moving-shapes clips.

    ``ds[i]`` is ``{"x": float32 [3, T, H, W] in [0, 255], "text": caption, "colour",
    "shape", "direction": str, "track": float32 [T, 2] centroid (y, x), "bounces": int}``.

    Args:
        split: ``"train"`` (held-out combinations excluded) or ``"eval"`` (all combinations).
        frames: Frames per clip ``T``.
        size: Height and width in pixels.
        num_clips: Clips per epoch (default 4096 for train, 4 per combination for eval).
        object_size: Side of the shape's bounding box (default ``size // 4``).
        speed: Pixels per frame, an int or an inclusive ``(low, high)`` range
            (default ``(size // 16, size // 10)``, at least 1).
        seed: Seeds every clip; clips depend only on ``(seed, split, index)`` (not on
            ``num_clips``).
        held_out: Captions of the combinations kept out of training (default: 8 of 48, see
            :func:`polydiff_video.attributes.default_held_out`).
        fps: Frame rate written into GIFs (see :meth:`writer_options`).
    """

    synthetic = True  # generated in code (or shipped with the plugin): no validation pass

    def __init__(
        self,
        split: str = "train",
        *,
        frames: int = 8,
        size: int = 32,
        num_clips: int | None = None,
        object_size: int | None = None,
        speed: int | Sequence[int] | None = None,
        seed: int = 0,
        held_out: Iterable[str] | None = None,
        fps: int = 8,
    ) -> None:
        if split not in _SPLITS:
            raise ConfigError(f"moving-shapes: split must be 'train' or 'eval', got '{split}'.")
        if frames < 2:
            raise ConfigError(f"moving-shapes: frames must be at least 2, got {frames}.")
        self.split = split
        self.frames = int(frames)
        self.size = int(size)
        self.object_size = int(object_size) if object_size is not None else max(2, self.size // 4)
        if speed is None:
            speed = (max(1, self.size // 16), max(1, self.size // 10))
        low, high = (speed, speed) if isinstance(speed, int) else (int(speed[0]), int(speed[1]))
        if not 1 <= low <= high:
            raise ConfigError(f"moving-shapes: speed must be >= 1 and low <= high, got {speed}.")
        self.speed_range = (low, high)
        self.seed = int(seed)
        self.fps = int(fps)
        self.clean_steps = self.frames // 2
        travel = self.size - self.object_size
        if travel < self.clean_steps * high:
            raise ConfigError(
                f"moving-shapes: a {self.object_size}px object at up to {high}px/frame cannot move "
                f"{self.clean_steps} frames without bouncing in a {self.size}px frame. Fix: raise size, or "
                f"lower object_size, speed or frames."
            )
        self.held_out = self._parse_held_out(held_out)
        held = set(self.held_out)
        self.combos = [c for c in all_combos() if split == "eval" or c not in held]
        self.num_clips = (
            int(num_clips) if num_clips is not None else (4096 if split == "train" else 4 * len(self.combos))
        )
        # the random draws of every clip up front (one row per index, drawn in index order, so a
        # row does not depend on num_clips): a per-item Generator costs more than drawing the clip
        self._draws = np.random.default_rng([self.seed, _SPLITS[split]]).random((self.num_clips, _DRAWS))

    @staticmethod
    def _parse_held_out(held_out: Iterable[str] | None) -> list[Combo]:
        if held_out is None:
            return default_held_out()
        combos = []
        for caption in held_out:
            combo = _parse_caption(caption)
            if combo is None:
                raise ConfigError(
                    f"moving-shapes: held_out entry '{caption}' is not a caption like "
                    f"'a red square moving left' (colours {', '.join(COLOURS)}; shapes {', '.join(SHAPES)}; "
                    f"directions {', '.join(DIRECTIONS)})."
                )
            combos.append(combo)
        return combos

    # ------------------------------------------------------------------ dataset protocol
    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"moving-shapes index {index} out of range [0, {self.num_clips})")
        combo = self.combos[index % len(self.combos)]
        return self._item(combo, self.simulate_from_uniform(combo, self._draws[index]))

    @property
    def data_shape(self) -> tuple[int, int, int, int]:
        return (3, self.frames, self.size, self.size)

    # ------------------------------------------------------------------ generation
    def simulate(self, combo: Combo, rng: np.random.Generator) -> MotionTruth:
        """Draw a speed and a start for ``combo`` with ``rng`` and simulate its motion (no drawing)."""
        return self.simulate_from_uniform(combo, rng.random(_DRAWS))

    def simulate_from_uniform(self, combo: Combo, u: np.ndarray) -> MotionTruth:
        """Simulate ``combo``'s motion with speed and start taken from ``u``: 3 uniforms in [0, 1).

        The speed is uniform over ``speed_range``; along the motion's axis the start leaves
        room for ``clean_steps`` steps before the far edge, across it the start is anywhere.
        """
        low, high = self.speed_range
        speed = low + int(u[0] * (high - low + 1))
        dy, dx = DIRECTIONS[combo.direction]
        limit = self.size - self.object_size
        room = self.clean_steps * speed
        start = []
        for step, draw in zip((dy, dx), u[1:]):
            lo, hi = (0, limit - room) if step > 0 else (room, limit) if step < 0 else (0, limit)
            start.append(lo + int(draw * (hi - lo + 1)))
        positions, bounces = simulate_positions(start, (dy * speed, dx * speed), self.frames, limit)
        return MotionTruth(positions, positions + _centroid(combo.shape, self.object_size), bounces)

    def sample_clip(self, combo: Combo, rng: np.random.Generator) -> dict[str, Any]:
        """A fresh clip of ``combo`` drawn with ``rng``, as a dataset item."""
        return self._item(combo, self.simulate(combo, rng))

    def _item(self, combo: Combo, truth: MotionTruth) -> dict[str, Any]:
        clip = render_clip(
            combo.colour, combo.shape, truth.positions, self.object_size, self.size, dtype=np.float32
        )
        return {
            "x": torch.from_numpy(clip),
            "text": combo.caption,
            "colour": combo.colour,
            "shape": combo.shape,
            "direction": combo.direction,
            "track": torch.from_numpy(truth.track.astype(np.float32)),
            "bounces": truth.bounces,
        }

    # ------------------------------------------------------------------ prompts and writers
    @property
    def captions(self) -> list[str]:
        """The captions of this split's combinations (the vocabulary of the text conditioner)."""
        return [c.caption for c in self.combos]

    @property
    def held_out_prompts(self) -> list[str]:
        return [c.caption for c in self.held_out]

    @property
    def seen_prompts(self) -> list[str]:
        """As many training captions as held-out ones, spread over the combinations."""
        held = set(self.held_out)
        seen = [c for c in all_combos() if c not in held]
        count = max(1, len(self.held_out))
        picks = np.linspace(0, len(seen) - 1, count).round().astype(int)
        return [seen[i].caption for i in dict.fromkeys(picks.tolist())]

    @property
    def eval_prompts(self) -> list[str]:
        """Seen prompts then held-out prompts (what the evaluator and the demo use)."""
        return self.seen_prompts + self.held_out_prompts

    def writer_options(self) -> dict[str, Any]:
        return {"fps": self.fps}
