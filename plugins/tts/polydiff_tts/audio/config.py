"""The one mel-spectrogram configuration shared by the dataset, the model and the vocoder.

It is stored in every checkpoint (the dataset's ``writer_options()`` and the
conditioner's options), so the acoustic model and the vocoder never disagree on the
mel settings, the classic cause of vocoders that output noise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from polydiff.errors import ConfigError


@dataclass(frozen=True)
class MelConfig:
    """How audio becomes a log-mel spectrogram ``[n_mels, frames]``.

    Attributes:
        sample_rate: Audio rate in Hz; input audio at another rate is resampled.
        n_fft: FFT size.
        win_length: Hann window length (``<= n_fft``).
        hop_length: Samples between frames (frames per second = ``sample_rate / hop_length``).
        n_mels: Mel bands (the channels of the data tensor).
        fmin, fmax: Frequency range of the mel filterbank in Hz.
        power: 1 for magnitude mels (Grad-TTS, HiFi-GAN), 2 for power mels.
        log_floor: Mels are ``log(clamp(mel, log_floor))``.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    power: float = 1.0
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ConfigError(f"mel: win_length={self.win_length} exceeds n_fft={self.n_fft}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(
                f"mel: need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, "
                f"fmax={self.fmax}, sample_rate={self.sample_rate}"
            )
        if self.power not in (1.0, 2.0):
            raise ConfigError(f"mel: power must be 1 (magnitude) or 2 (power), got {self.power}")

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def log_min(self) -> float:
        """The value of silence in log-mel space (``log(log_floor)``)."""
        return math.log(self.log_floor)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT of ``num_samples`` samples."""
        return num_samples // self.hop_length + 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_options(cls, mel: str | dict[str, Any] | MelConfig | None) -> MelConfig:
        """A preset name (``"grad-tts"``, ``"small"``), a dict of fields (optionally with
        ``"preset"`` to start from), or a MelConfig."""
        if isinstance(mel, MelConfig):
            return mel
        if mel is None:
            return MEL_PRESETS["grad-tts"]
        if isinstance(mel, str):
            if mel not in MEL_PRESETS:
                raise ConfigError(f"unknown mel preset '{mel}'; known: {', '.join(MEL_PRESETS)}")
            return MEL_PRESETS[mel]
        values = dict(mel)
        base = cls.from_options(values.pop("preset", "grad-tts"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown mel field(s) {unknown}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(base, **values)


#: Named settings. ``grad-tts`` matches Grad-TTS/HiFi-GAN (use it for LJSpeech and other real
#: corpora); ``small`` is for CPU training on the embedded digits corpus.
MEL_PRESETS: dict[str, MelConfig] = {
    "grad-tts": MelConfig(),
    "small": MelConfig(
        sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=40, fmin=0.0, fmax=8000.0
    ),
}
