"""Signal checks that recognise a waveform without looking at how it was made.

The evaluator judges generated samples with these: the strongest frequency (FFT), the
linear trend, how much of the power sits at that frequency, and how "full" the wave is
(RMS over peak: about 0.71 for a sine, 1 for a square wave).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polydiff_timeseries.waveforms import Waveform

#: Decision thresholds, set between the ranges measured on the ``sines`` dataset.
TREND_THRESHOLD = 0.85  # |corr(x, time)| above this: a ramp (periodic waves stay below ~0.5)
TONALITY_THRESHOLD = 0.5  # power share near the peak frequency below this: not a clean wave
FULLNESS_THRESHOLD = 0.85  # RMS / peak above this: square (sine ~0.71, square ~1.0)
SPEED_THRESHOLD = 3.75  # cycles per window: slow waves have 1.5-2.5, fast ones 5-7
MIN_AMPLITUDE = 0.1  # quieter than this: silence, no waveform


@dataclass(frozen=True)
class SignalStats:
    """Measurements of one signal ``[L]``.

    Attributes:
        dominant_cycles: Strongest non-DC frequency, in cycles per window (zero-padded FFT).
        trend: Pearson correlation with time, in ``[-1, 1]``.
        tonality: Share of the (mean-removed) power within two FFT bins of the peak (noise ~0.15).
        fullness: RMS over the 95th percentile of ``|x|``.
        amplitude: 95th percentile of ``|x - mean|``.
    """

    dominant_cycles: float
    trend: float
    tonality: float
    fullness: float
    amplitude: float


def signal_stats(x: np.ndarray) -> SignalStats:
    """Measure a signal ``x: [L]`` (or ``[C, L]``, averaged over channels)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    length = x.shape[-1]
    centred = x - x.mean()
    power = np.abs(np.fft.rfft(centred)) ** 2
    peak = int(np.argmax(power[1:]) + 1)
    tonality = float(power[max(peak - 2, 1) : peak + 3].sum() / max(power[1:].sum(), 1e-12))
    padding = 8
    fine = np.abs(np.fft.rfft(centred, n=padding * length))
    dominant = float((np.argmax(fine[padding // 2 :]) + padding // 2) / padding)
    time = np.arange(length) - (length - 1) / 2
    denom = np.sqrt((centred**2).sum() * (time**2).sum())
    trend = float((centred * time).sum() / denom) if denom > 0 else 0.0
    peak_abs = float(np.percentile(np.abs(x), 95))
    fullness = float(np.sqrt((x**2).mean()) / peak_abs) if peak_abs > 0 else 0.0
    return SignalStats(dominant, trend, tonality, fullness, float(np.percentile(np.abs(centred), 95)))


def classify(x: np.ndarray) -> Waveform | None:
    """The waveform class of ``x: [L]`` or ``[C, L]``, or None when it looks like no class."""
    stats = signal_stats(x)
    if stats.amplitude < MIN_AMPLITUDE:
        return None
    if abs(stats.trend) > TREND_THRESHOLD:
        return Waveform("ramp", "rising" if stats.trend > 0 else "falling")
    if stats.tonality < TONALITY_THRESHOLD:
        return None
    shape = "square" if stats.fullness > FULLNESS_THRESHOLD else "sine"
    return Waveform(shape, "slow" if stats.dominant_cycles < SPEED_THRESHOLD else "fast")
