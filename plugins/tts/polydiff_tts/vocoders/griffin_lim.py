"""``griffin-lim``: the built-in vocoder (no training, no download; sounds robotic).

Mel magnitudes are mapped back to linear-frequency magnitudes with the pseudo-inverse
of the mel filterbank, then Griffin-Lim (with momentum, Perraudin et al. 2013) estimates
the phase.
"""

from __future__ import annotations

from typing import Any

import torch
import torchaudio
from torch import Tensor

from polydiff_tts.audio.config import MelConfig
from polydiff_tts.audio.mel import mel_filterbank
from polydiff_tts.vocoders.base import Vocoder


class GriffinLimVocoder(Vocoder):
    """Pseudo-inverse of the mel filterbank, then Griffin-Lim.

    Args:
        mel: The checkpoint's mel settings.
        n_iter: Griffin-Lim iterations.
        momentum: Fast Griffin-Lim momentum (0 = the original algorithm).
        sharpen: Magnitudes are raised to this power before phase estimation (> 1 reduces
            the noise floor that the pseudo-inverse smears across frequencies).
        seed: Seeds the random initial phase, so the same mel gives the same audio.
    """

    def __init__(
        self,
        mel: MelConfig | dict[str, Any] | str | None = None,
        n_iter: int = 32,
        momentum: float = 0.99,
        sharpen: float = 1.0,
        seed: int = 0,
    ):
        super().__init__(mel)
        self.n_iter, self.momentum, self.sharpen, self.seed = n_iter, momentum, sharpen, seed
        fb = mel_filterbank(self.mel)  # [n_freqs, n_mels]: mel = fb.T @ spectrum
        self.inverse = torch.linalg.pinv(fb.T)  # [n_freqs, n_mels]
        self.window = torch.hann_window(self.mel.win_length)

    def linear_magnitude(self, log_mel: Tensor) -> Tensor:
        """``[n_mels, T]`` log-mel -> ``[n_fft // 2 + 1, T]`` non-negative magnitudes."""
        mel = torch.exp(log_mel.float().cpu())
        spectrum = (self.inverse @ mel).clamp(min=0.0)
        if self.mel.power == 2.0:
            spectrum = spectrum.sqrt()
        return spectrum**self.sharpen

    def vocode(self, log_mel: Tensor) -> Tensor:
        spectrum = self.linear_magnitude(log_mel)
        length = (log_mel.shape[-1] - 1) * self.mel.hop_length
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            audio = torchaudio.functional.griffinlim(
                spectrum,
                self.window,
                n_fft=self.mel.n_fft,
                hop_length=self.mel.hop_length,
                win_length=self.mel.win_length,
                power=1.0,
                n_iter=self.n_iter,
                momentum=self.momentum,
                length=length,
                rand_init=True,
            )
        peak = float(audio.abs().max())
        return audio / peak * 0.95 if peak > 0.95 else audio
