"""``mel-norm``: per-channel standardisation of log-mels (statistics from the training set)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.interfaces import DiffusionDataset, Encoder


class MelNormEncoder(Encoder):
    """``encode(x) = (x - mean_c) / std_c`` per mel channel ``c``; ``decode`` inverts it.

    The statistics are "fitted" (computed, no gradient steps) from the training set by
    :meth:`fit`, stored as buffers and in the checkpoint's config.

    Args:
        data_shape: ``(n_mels, frames)``.
        mean, std: Fitted statistics per channel (None until :meth:`fit`).
        max_items: Items read to compute them.
    """

    trainable = True  # fitted on the data once, before diffusion training; frozen after

    def __init__(
        self,
        data_shape: Sequence[int],
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        max_items: int = 2000,
    ):
        super().__init__()
        self.channels, self.max_items = int(data_shape[0]), max_items
        for name, values, default in (("mean", mean, 0.0), ("std", std, 1.0)):
            if values is not None and len(values) != self.channels:
                raise ConfigError(
                    f"mel-norm: {name} has {len(values)} values but the data has {self.channels} mel channels"
                )
            tensor = torch.tensor(
                values if values is not None else [default] * self.channels, dtype=torch.float32
            )
            self.register_buffer(name, tensor[:, None])
        self._fitted = mean is not None and std is not None

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def fit(
        self,
        dataset: DiffusionDataset,
        *,
        steps: int = 0,
        batch_size: int = 0,
        seed: int = 0,
        out_dir: Path | None = None,
    ) -> dict[str, float]:
        """Mean and standard deviation of every mel channel over the frames of the training set."""
        count = min(len(dataset), self.max_items)
        frames = torch.cat([dataset[i]["x"].float() for i in range(count)], dim=-1)  # [C, sum T]
        self.mean.copy_(frames.mean(dim=-1, keepdim=True))
        self.std.copy_(frames.std(dim=-1, keepdim=True).clamp(min=1e-3))
        self._fitted = True
        return {"mel_mean": float(self.mean.mean()), "mel_std": float(self.std.mean())}

    def encode(self, x: Tensor) -> Tensor:
        """``x: [B, n_mels, T]`` log-mel -> standardised."""
        return (x.float() - self.mean) / self.std

    def decode(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean

    def config(self) -> dict[str, Any]:
        if not self._fitted:
            return {"max_items": self.max_items}
        return {
            "mean": self.mean.squeeze(1).tolist(),
            "std": self.std.squeeze(1).tolist(),
            "max_items": self.max_items,
        }
