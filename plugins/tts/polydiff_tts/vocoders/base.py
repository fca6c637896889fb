"""The vocoder interface: log-mel -> waveform, in the mel settings of the checkpoint."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polydiff_tts.audio.config import MelConfig


class Vocoder:
    """Turns log-mels into audio.

    A vocoder plugin returns a :class:`polydiff.Component` from the ``polydiff_tts_vocoders``
    hook whose target is called as ``target(mel=MelConfig, **options)`` and returns a
    subclass of this. It must accept the checkpoint's mel settings or raise
    :class:`polydiff.ConfigError` naming the settings it supports.

    Attributes:
        mel: The mel settings it inverts (``mel.sample_rate`` is the output rate).
    """

    def __init__(self, mel: MelConfig | dict[str, Any] | str | None = None):
        self.mel = MelConfig.from_options(mel)

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    def vocode(self, log_mel: Tensor) -> Tensor:
        """``log_mel: [n_mels, T]`` -> ``[samples]`` float audio in ``[-1, 1]``."""
        raise NotImplementedError

    def __call__(self, log_mel: Tensor) -> Tensor:
        """``[n_mels, T] -> [samples]`` or ``[B, n_mels, T] -> [B, samples]``."""
        if log_mel.dim() == 2:
            return self.vocode(log_mel)
        return torch.stack([self.vocode(m) for m in log_mel])
