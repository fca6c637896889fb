"""Features of the offline checks, computed independently of the model's mel settings."""

from __future__ import annotations

import numpy as np
import torch
import torchaudio
from torch import Tensor

#: Analysis rate of the recogniser (all audio is resampled to it).
FEATURE_RATE = 16000


class CepstralFeatures:
    """MFCC-like frames for template matching: 25 ms windows every 10 ms, 26 mel bands,
    cepstra 1..12 plus their deltas, mean-normalised per utterance, silence trimmed.

    ``__call__(audio: [samples], sample_rate) -> [T, 24]`` float64 numpy.
    """

    def __init__(self, n_mfcc: int = 13, n_mels: int = 26, trim_db: float = 35.0):
        self.trim_db = trim_db
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=FEATURE_RATE,
            n_mfcc=n_mfcc,
            log_mels=True,
            melkwargs={
                "n_fft": 512,
                "win_length": 400,
                "hop_length": 160,
                "n_mels": n_mels,
                "f_min": 60.0,
                "f_max": 7600.0,
                "center": True,
            },
        )
        self.hop = 160

    def trim(self, audio: Tensor) -> Tensor:
        """Cut leading and trailing frames more than ``trim_db`` below the loudest frame."""
        frames = audio[: len(audio) // self.hop * self.hop].reshape(-1, self.hop)
        energy = 10 * torch.log10(frames.pow(2).mean(1) + 1e-10)
        loud = (energy > energy.max() - self.trim_db).nonzero().flatten()
        if len(loud) == 0:
            return audio
        return audio[int(loud[0]) * self.hop : (int(loud[-1]) + 1) * self.hop]

    def __call__(self, audio: Tensor, sample_rate: int) -> np.ndarray:
        audio = audio.float().cpu()
        if sample_rate != FEATURE_RATE:
            audio = torchaudio.functional.resample(audio, sample_rate, FEATURE_RATE)
        audio = self.trim(audio)
        with torch.no_grad():
            cepstra = self.mfcc(audio)[1:]  # [12, T]: drop c0 (loudness)
            deltas = torchaudio.functional.compute_deltas(cepstra[None])[0]
        feats = torch.cat([cepstra, deltas]).T.double().numpy()
        return feats - feats.mean(0, keepdims=True)


def mel_cepstra(log_mel: Tensor, n_coeffs: int = 13) -> np.ndarray:
    """DCT-II (orthonormal) of log-mels over the mel axis: ``[n_mels, T] -> [T, n_coeffs - 1]``
    (coefficients 1..n_coeffs-1; c0, the loudness, is dropped as MCD does)."""
    n_mels = log_mel.shape[0]
    k = np.arange(n_mels)
    basis = np.cos(np.pi / n_mels * (k[None, :] + 0.5) * np.arange(n_coeffs)[:, None])  # [K, n_mels]
    basis *= np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    cepstra = basis @ log_mel.detach().double().cpu().numpy()  # [K, T]
    return cepstra[1:].T
