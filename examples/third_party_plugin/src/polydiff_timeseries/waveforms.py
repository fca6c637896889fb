"""The synthetic signals of the ``sines`` dataset: six captioned waveform classes.

Pure numpy (no torch), shared by the dataset (to make signals) and the evaluator (to know
what a prompt asks for). A signal is a ``[length]`` float array in ``[-1, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Cycles per window of the periodic waveforms, by speed: drawn uniformly in this range.
CYCLES: dict[str, tuple[float, float]] = {"slow": (1.5, 2.5), "fast": (5.0, 7.0)}
#: Peak amplitude range; the phase is uniform in ``[0, 2 pi)``.
AMPLITUDE = (0.5, 1.0)


@dataclass(frozen=True)
class Waveform:
    """A class of signals.

    Attributes:
        shape: ``"sine"``, ``"square"`` or ``"ramp"``.
        variant: ``"slow"`` / ``"fast"`` for periodic shapes, ``"rising"`` / ``"falling"`` for ramps.
    """

    shape: str
    variant: str

    @property
    def periodic(self) -> bool:
        return self.shape != "ramp"

    @property
    def caption(self) -> str:
        """``"a slow sine wave"``, ``"a rising ramp"``."""
        return f"a {self.variant} {self.shape} wave" if self.periodic else f"a {self.variant} ramp"

    def synthesize(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """One random signal of this class: ``[length]`` float32, random amplitude and phase."""
        amplitude = rng.uniform(*AMPLITUDE)
        u = np.arange(length) / length
        if self.shape == "ramp":
            base = np.linspace(-1.0, 1.0, length) * (1.0 if self.variant == "rising" else -1.0)
        else:
            cycles = rng.uniform(*CYCLES[self.variant])
            phase = 2 * np.pi * cycles * u + rng.uniform(0.0, 2 * np.pi)
            base = np.sin(phase) if self.shape == "sine" else np.where(np.sin(phase) >= 0, 1.0, -1.0)
        return (amplitude * base).astype(np.float32)


#: Every class, in label order (``label`` of a dataset item indexes this).
WAVEFORMS: tuple[Waveform, ...] = (
    Waveform("sine", "slow"),
    Waveform("sine", "fast"),
    Waveform("square", "slow"),
    Waveform("square", "fast"),
    Waveform("ramp", "rising"),
    Waveform("ramp", "falling"),
)
CAPTIONS: tuple[str, ...] = tuple(w.caption for w in WAVEFORMS)


def waveform_for(caption: str) -> Waveform:
    """The :class:`Waveform` a caption names; ValueError listing the captions otherwise."""
    for waveform in WAVEFORMS:
        if waveform.caption == caption.strip().lower():
            return waveform
    raise ValueError(f"unknown time-series caption {caption!r}; known captions: {', '.join(CAPTIONS)}")
