"""Video models trained on your clips (``video-folder``, or any dataset without motion checkers),
judged by the core's own-data judges: clips ``[3, T, H, W]`` in [0, 255]."""

from __future__ import annotations

import torch
from torch import Tensor

from polydiff.evaluation.evaluator import OwnDataEvaluator

#: Datasets the motion checkers understand (their captions name a colour, shape and direction).
MOTION_DATASETS = ("moving-shapes",)


class VideoOwnDataEvaluator(OwnDataEvaluator):
    """:class:`~polydiff.evaluation.evaluator.OwnDataEvaluator` for clips: a 3-D classifier over
    (time, height, width) learns the captions; pictures show every frame of a clip side by side."""

    name = "video-motion (own data)"

    def to_image(self, x: Tensor) -> Tensor:
        frames = x.detach().float().cpu().clamp(0, 255)  # [3, T, H, W]
        return torch.cat(list(frames.unbind(1)), dim=-1).round().to(torch.uint8)
