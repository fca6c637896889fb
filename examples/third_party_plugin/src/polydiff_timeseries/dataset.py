"""The ``sines`` dataset: synthetic captioned time series (``polydiff_datasets``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from polydiff import DataError
from polydiff_timeseries.waveforms import CAPTIONS, WAVEFORMS

_SPLIT_SEED = {"train": 0, "eval": 1}


class SinesDataset(Dataset):
    """Six classes of 1-channel signals with captions such as ``"a slow sine wave"``.

    Sines and square waves at two speeds (1.5-2.5 or 5-7 cycles per window) and rising or
    falling ramps, each with a random amplitude in [0.5, 1] and a random phase. Classes
    alternate (item ``i`` has class ``i % 6``), so every split is balanced. The signals are
    drawn once, from ``seed`` and the split, so a dataset is the same on every machine.

    Items: ``{"x": Tensor[channels, length] in [-1, 1], "text": caption, "label": class index}``.

    Args:
        split: ``"train"`` or ``"eval"`` (different signals, same classes).
        num_samples: Number of items (default 4096 for train, 384 for eval).
        length: Samples per signal.
        channels: Copies of the signal on the channel axis (1 in the presets).
        seed: Base seed of the random amplitudes and phases.
    """

    synthetic = True  # generated in code (or shipped with the plugin): no validation pass

    def __init__(
        self,
        split: str = "train",
        *,
        num_samples: int | None = None,
        length: int = 64,
        channels: int = 1,
        seed: int = 0,
    ) -> None:
        if split not in _SPLIT_SEED:
            raise DataError(f"sines: split must be 'train' or 'eval', not {split!r}")
        if length < 16:
            raise DataError(f"sines: length must be at least 16 samples to hold a fast wave, not {length}")
        num_samples = num_samples if num_samples is not None else (4096 if split == "train" else 384)
        rng = np.random.default_rng([seed, _SPLIT_SEED[split]])
        self.labels = [i % len(WAVEFORMS) for i in range(num_samples)]
        signals = np.stack([WAVEFORMS[label].synthesize(length, rng) for label in self.labels])
        self.signals = torch.from_numpy(signals)[:, None, :].expand(-1, channels, -1).contiguous()
        self.data_shape: tuple[int, ...] = (channels, length)
        #: Every caption of the dataset (a text conditioner builds its vocabulary from these).
        self.captions: list[str] = list(CAPTIONS)
        #: Prompts that the evaluator and ``polydiff demo`` use: one per class.
        self.eval_prompts: list[str] = list(CAPTIONS)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        label = self.labels[index]
        return {"x": self.signals[index], "text": CAPTIONS[label], "label": label}
