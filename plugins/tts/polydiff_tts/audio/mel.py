"""Log-mel spectrograms (torchaudio transforms) in the settings of a :class:`MelConfig`."""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from polydiff_tts.audio.config import MelConfig


def mel_filterbank(config: MelConfig) -> Tensor:
    """The mel filterbank of ``config``: ``[n_fft // 2 + 1, n_mels]`` (Slaney scale and norm)."""
    return torchaudio.functional.melscale_fbanks(
        n_freqs=config.n_fft // 2 + 1,
        f_min=config.fmin,
        f_max=config.fmax,
        n_mels=config.n_mels,
        sample_rate=config.sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )


class LogMelSpectrogram(nn.Module):
    """Waveform -> ``log(clamp(mel, log_floor))``.

    ``forward(wav: [..., samples]) -> [..., n_mels, frames]`` with
    ``frames = samples // hop_length + 1`` (centred STFT, reflect padding).
    """

    def __init__(self, config: MelConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.fmin,
            f_max=config.fmax,
            n_mels=config.n_mels,
            power=config.power,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, wav: Tensor) -> Tensor:
        return torch.log(self.mel(wav).clamp(min=self.config.log_floor))
