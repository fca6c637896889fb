"""Audio front end: one mel configuration, file I/O, log-mel spectrograms."""

from polydiff_tts.audio.config import MEL_PRESETS, MelConfig

__all__ = ["MEL_PRESETS", "MelConfig"]
