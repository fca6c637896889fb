"""An offline digit recogniser: DTW template matching, independent of the generator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from polydiff_tts.audio.io import read_audio
from polydiff_tts.data.metadata import Utterance
from polydiff_tts.evaluation.dtw import recognize_words
from polydiff_tts.evaluation.features import FEATURE_RATE, CepstralFeatures


class TemplateRecognizer:
    """Recognises word sequences by one-pass DTW against recordings of single words.

    Args:
        references: Single-word recordings (``normalized_text`` is the word), e.g. the
            digits corpus's ``references.csv`` (10 digits x 3 voices x 2 rates).
        word_penalty: Cost of starting a word (higher = fewer words).
    """

    def __init__(self, references: Sequence[Utterance], word_penalty: float = 0.0):
        self.features = CepstralFeatures()
        self.word_penalty = word_penalty
        self.labels = [u.normalized_text for u in references]
        self.templates = [
            self.features(read_audio(u.audio_path, FEATURE_RATE), FEATURE_RATE) for u in references
        ]

    @property
    def vocabulary(self) -> set[str]:
        return set(self.labels)

    def recognize_features(self, features: np.ndarray) -> list[str]:
        return recognize_words(features, self.templates, self.labels, self.word_penalty)

    def __call__(self, audio: Tensor, sample_rate: int) -> list[str]:
        """``audio: [samples]`` -> the recognised words."""
        return self.recognize_features(self.features(audio, sample_rate))
