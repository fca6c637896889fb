"""Offline checkers of a clip against its prompt: motion direction, colour, area, temporal consistency.

They read only the pixels (through :func:`~polydiff_video.evaluation.tracking.track_object`)
and the words of the prompt, never the generator's state, so they score real clips and
generated ones alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from polydiff.shapes_world import FOREGROUND
from polydiff_video.attributes import COLOURS, parse_caption
from polydiff_video.evaluation.tracking import ObjectTrack, as_numpy_clip, track_object


@dataclass(frozen=True)
class CheckerConfig:
    """Thresholds of the checkers.

    Attributes:
        threshold: Foreground = brightest channel at least this (of 255); by default the
            shared world's :data:`polydiff.shapes_world.FOREGROUND`.
        min_area: Fewer foreground pixels than this = object not visible in that frame.
        min_step: A centroid step shorter than this (pixels) casts no direction vote.
        agreement: Fraction of the first-half steps that must vote for one direction.
        max_area_cv: Area is stable when its coefficient of variation is at most this.
        max_jerk: Motion is smooth when the median |second difference| of the centroid
            track is at most this (pixels per frame^2); a bounce is one outlier.
    """

    threshold: float = FOREGROUND
    min_area: int = 2
    min_step: float = 0.5
    agreement: float = 0.75
    max_area_cv: float = 0.2
    max_jerk: float = 1.0


#: The default thresholds.
DEFAULT_CHECKS = CheckerConfig()


def motion_direction(centroids: np.ndarray, *, min_step: float = 0.5, agreement: float = 0.75) -> str | None:
    """The direction (``"left"``, ``"right"``, ``"up"``, ``"down"``) of the start of a track.

    Each step of the first half of the clip (``T // 2`` steps, before any bounce in a
    moving-shapes clip) votes for the direction of its larger component when it moves at
    least ``min_step`` pixels. Returns the direction with at least ``agreement`` of the
    votes of all those steps, or None (no object, no motion, or no consistent direction).

    Args:
        centroids: ``[T, 2]`` ``(y, x)`` per frame (NaN where the object is missing).
    """
    steps = np.diff(centroids[: len(centroids) // 2 + 1], axis=0)  # [T // 2, 2]
    if len(steps) == 0 or not np.isfinite(steps).all():
        return None
    votes: dict[str, int] = {}
    for dy, dx in steps:
        if max(abs(dy), abs(dx)) < min_step:
            continue
        name = ("down" if dy > 0 else "up") if abs(dy) >= abs(dx) else ("right" if dx > 0 else "left")
        votes[name] = votes.get(name, 0) + 1
    if not votes:
        return None
    best = max(votes, key=votes.__getitem__)
    return best if votes[best] >= agreement * len(steps) else None


def nearest_colour(
    rgb: np.ndarray | None, palette: Mapping[str, tuple[int, int, int]] = COLOURS
) -> str | None:
    """The palette name closest (Euclidean RGB) to ``rgb``, or None when there is no object."""
    if rgb is None:
        return None
    names = list(palette)
    distances = [float(np.linalg.norm(np.asarray(rgb, float) - np.asarray(palette[n], float))) for n in names]
    return names[int(np.argmin(distances))]


def area_cv(areas: np.ndarray) -> float:
    """Coefficient of variation (std / mean) of the object's area over frames; inf if it vanishes."""
    areas = np.asarray(areas, dtype=float)
    if len(areas) == 0 or (areas <= 0).any():
        return float("inf")
    return float(areas.std() / areas.mean())


def track_jerk(centroids: np.ndarray) -> float:
    """Median length of the centroid's second differences (pixels / frame^2); inf if it vanishes.

    Constant-velocity motion gives 0 and a bounce changes one or two of the ``T - 2`` values;
    frames in the wrong order give large values.
    """
    if len(centroids) < 3 or not np.isfinite(centroids).all():
        return float("inf")
    accel = centroids[2:] - 2 * centroids[1:-1] + centroids[:-2]
    return float(np.median(np.linalg.norm(accel, axis=1)))


def frame_change(clip: torch.Tensor | np.ndarray) -> float:
    """Mean absolute change between consecutive frames of ``[3, T, H, W]``, as a fraction of 255."""
    array = as_numpy_clip(clip)
    return float(np.abs(np.diff(array, axis=1)).mean() / 255.0)


@dataclass
class ClipScore:
    """What the checkers say about one clip (``None`` fields: the prompt does not say)."""

    prompt: str
    direction: str | None
    colour: str | None
    area_cv: float
    jerk: float
    frame_change: float
    direction_ok: bool | None
    colour_ok: bool | None
    area_stable: bool
    temporally_consistent: bool

    def to_dict(self) -> dict[str, object]:
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()
        }


def score_clip(
    clip: torch.Tensor | np.ndarray, prompt: str, config: CheckerConfig = DEFAULT_CHECKS
) -> ClipScore:
    """Run every checker on ``clip: [3, T, H, W]`` in [0, 255] against ``prompt``."""
    track: ObjectTrack = track_object(clip, threshold=config.threshold, min_area=config.min_area)
    wanted = parse_caption(prompt)
    direction = motion_direction(track.centroids, min_step=config.min_step, agreement=config.agreement)
    colour = nearest_colour(track.mean_rgb)
    cv, jerk = area_cv(track.areas), track_jerk(track.centroids)
    return ClipScore(
        prompt=prompt,
        direction=direction,
        colour=colour,
        area_cv=cv,
        jerk=jerk,
        frame_change=frame_change(clip),
        direction_ok=None if wanted is None else direction == wanted.direction,
        colour_ok=None if wanted is None else colour == wanted.colour,
        area_stable=cv <= config.max_area_cv,
        temporally_consistent=jerk <= config.max_jerk,
    )


def summarise(scores: list[ClipScore]) -> dict[str, float | int | None]:
    """Aggregate clip scores: accuracies and rates in [0, 1], mean area CV, median jerk, mean frame change."""

    def rate(values: list[bool | None]) -> float | None:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known else None

    def finite_mean(values: list[float]) -> float | None:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else None

    jerks = [s.jerk for s in scores if np.isfinite(s.jerk)]
    return {
        "clips": len(scores),
        "direction_accuracy": rate([s.direction_ok for s in scores]),
        "colour_accuracy": rate([s.colour_ok for s in scores]),
        "area_stable_rate": rate([s.area_stable for s in scores]),
        "area_cv_mean": finite_mean([s.area_cv for s in scores]),
        "object_visible_rate": rate([np.isfinite(s.area_cv) for s in scores]),
        "temporal_consistency": rate([s.temporally_consistent for s in scores]),
        "jerk_median": float(np.median(jerks)) if jerks else None,
        "frame_change_mean": finite_mean([s.frame_change for s in scores]),
    }
