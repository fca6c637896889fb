"""``digits``: real handwritten digits (scikit-learn's copy of the UCI set, no download).

1797 grey images of 8x8 pixels with 17 grey levels, upsampled (bilinear) to ``size`` and
captioned ``"the digit seven"``. Every fifth image (index % 5 == 0, 360 images) forms the
``eval`` split, the rest (1437) the ``train`` split.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from polydiff.errors import ConfigError

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
EVAL_EVERY = 5


def digit_caption(label: int) -> str:
    """``7`` -> ``"the digit seven"``."""
    return f"the digit {DIGIT_NAMES[label]}"


def load_digit_images(split: str, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split of the digits -> ``(images uint8 [N, 1, size, size], labels long [N])``.

    Args:
        split: ``"train"``, ``"eval"`` or ``"all"``.
        size: Output side; the 8x8 originals are scaled to [0, 255] and resized bilinearly.
    """
    from sklearn.datasets import load_digits

    if split not in ("train", "eval", "all"):
        raise ConfigError(f"digits dataset: split must be 'train', 'eval' or 'all', not '{split}'")
    if size < 8:
        raise ConfigError(
            f"digits dataset option 'size' must be at least 8 (the originals are 8x8), not {size}"
        )
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    if split != "all":
        is_eval = torch.arange(len(labels)) % EVAL_EVERY == 0
        keep = is_eval if split == "eval" else ~is_eval
        images, labels = images[keep], labels[keep]
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.round().clamp(0, 255).to(torch.uint8), labels


class DigitsDataset:
    """Handwritten digits; items ``{"x": uint8 [channels, size, size], "text": "the digit seven",
    "label": 7}``.

    Args:
        split: ``"train"`` (1437 images) or ``"eval"`` (360 images).
        size: Image side (default 16, twice the originals).
        channels: 1 (grey) or 3 (grey repeated, for models built for RGB).
    """

    synthetic = True  # generated in code (or shipped with the plugin): no validation pass

    def __init__(self, split: str = "train", size: int = 16, channels: int = 1):
        if channels not in (1, 3):
            raise ConfigError(f"digits dataset option 'channels' must be 1 or 3, not {channels}")
        if split not in ("train", "eval"):
            raise ConfigError(f"digits dataset: split must be 'train' or 'eval', not '{split}'")
        self.images, self.labels = load_digit_images(split, size)
        if channels == 3:
            self.images = self.images.expand(-1, 3, -1, -1).contiguous()
        self.split, self.size = split, size
        self.data_shape = (channels, size, size)

    @property
    def captions(self) -> list[str]:
        return [digit_caption(int(label)) for label in self.labels]

    @property
    def eval_prompts(self) -> list[str]:
        return [digit_caption(d) for d in range(10)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        label = int(self.labels[index])
        return {"x": self.images[index], "text": digit_caption(label), "label": label}
