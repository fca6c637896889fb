"""polydiff-video: the ``video`` modality for polydiff.

Clips are ``[3, T, H, W]`` in [0, 255] (data space); the core UNet runs with ``dims=3``
on ``[B, 3, T, H, W]`` in [-1, 1]. Components (see :mod:`polydiff_video.plugin`):
datasets ``moving-shapes`` and ``video-folder``, encoder ``video-pixels``, writer ``gif``,
evaluator ``video-motion``. Importing this package imports no torch; the names below
are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "MovingShapesDataset": "polydiff_video.data.moving_shapes",
    "FolderVideoDataset": "polydiff_video.data.folder",
    "VideoPixelEncoder": "polydiff_video.encoder",
    "GifWriter": "polydiff_video.writers.gif",
    "VideoMotionEvaluator": "polydiff_video.evaluation.evaluator",
    "evaluate_clips": "polydiff_video.evaluation.evaluator",
    "score_clip": "polydiff_video.evaluation.checks",
    "read_clip": "polydiff_video.data.clip_io",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'polydiff_video' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
