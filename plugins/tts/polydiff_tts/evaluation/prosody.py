"""F0 and energy statistics of speech, independent of the generator."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def f0_track(
    audio: np.ndarray | Tensor,
    sample_rate: int,
    *,
    fmin: float = 60.0,
    fmax: float = 400.0,
    frame_s: float = 0.04,
    hop_s: float = 0.01,
    voicing: float = 0.5,
) -> np.ndarray:
    """Per-frame F0 in Hz by normalised autocorrelation (``nan`` where unvoiced or silent).

    A frame is voiced when its best normalised autocorrelation in the ``[1/fmax, 1/fmin]`` lag
    range exceeds ``voicing`` and it is within 35 dB of the loudest frame.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    size, hop = int(frame_s * sample_rate), int(hop_s * sample_rate)
    lo, hi = max(1, int(sample_rate / fmax)), min(size - 1, int(sample_rate / fmin))
    if len(x) < size or hi <= lo:
        return np.full(0, np.nan)
    starts = np.arange(0, len(x) - size + 1, hop)
    frames = x[starts[:, None] + np.arange(size)[None]]
    frames = frames - frames.mean(1, keepdims=True)
    energy = (frames**2).sum(1)
    loud = 10 * np.log10(energy + 1e-12) > 10 * np.log10(energy.max() + 1e-12) - 35
    spec = np.fft.rfft(frames * np.hanning(size), n=2 * size)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, : hi + 1]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lag = lo + ac[:, lo : hi + 1].argmax(1)
    best = ac[np.arange(len(ac)), lag]
    f0 = sample_rate / lag.astype(np.float64)
    return np.where(loud & (best > voicing), f0, np.nan)


def f0_stats(tracks: list[np.ndarray]) -> dict[str, float | None]:
    """Mean and standard deviation (Hz) of F0 over all voiced frames, and the voiced share."""
    values = np.concatenate([t[~np.isnan(t)] for t in tracks]) if tracks else np.zeros(0)
    frames = sum(len(t) for t in tracks)
    if len(values) == 0:
        return {"f0_mean_hz": None, "f0_std_hz": None, "voiced_share": 0.0}
    return {
        "f0_mean_hz": float(values.mean()),
        "f0_std_hz": float(values.std()),
        "voiced_share": len(values) / max(1, frames),
    }


def energy_stats(log_mels: list[Tensor]) -> dict[str, float]:
    """Frame energy (dB, from the log-mel power summed over bands) over every frame: mean and
    standard deviation, and the mean per-utterance dynamic range (95th - 5th percentile)."""
    per_frame = [10 * np.log10(np.exp(m.detach().double().cpu().numpy()).sum(0) + 1e-10) for m in log_mels]
    flat = np.concatenate(per_frame)
    ranges = [np.percentile(e, 95) - np.percentile(e, 5) for e in per_frame]
    return {
        "energy_mean_db": float(flat.mean()),
        "energy_std_db": float(flat.std()),
        "energy_range_db": float(np.mean(ranges)),
    }
