"""``spoken-digits``: the embedded corpus of spoken digit sequences (no download).

Generated with espeak-ng by ``plugins/tts/scripts/make_digits_corpus.py`` (three voices,
several rates and pitches, 16 kHz) and shipped in ``polydiff_tts/corpora/digits``:
``metadata.csv`` (training), ``heldout.csv`` (evaluation sequences never seen in training),
``references.csv`` (single digits: templates of the intelligibility evaluator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polydiff_tts.data.ljspeech import LJSpeechDataset
from polydiff_tts.data.metadata import Utterance, read_metadata

DIGITS_ROOT = Path(__file__).resolve().parents[1] / "corpora" / "digits"


class DigitsDataset(LJSpeechDataset):
    """The digits corpus; ``split="eval"`` yields the held-out sequences.

    Args:
        split: ``"train"`` or ``"eval"``.
        mel: Mel settings (default ``"small"``: 16 kHz, 40 mels).
        options: Other :class:`LJSpeechDataset` options (``pad_multiple``, ``max_items``, ...).
    """

    synthetic = True  # generated in code (or shipped with the plugin): no validation pass

    def __init__(self, split: str = "train", mel: str | dict[str, Any] = "small", **options: Any):
        options.setdefault("eval_metadata", "heldout.csv")
        super().__init__(split, path=DIGITS_ROOT, mel=mel, **options)


def digit_references() -> list[Utterance]:
    """Single-digit recordings (several voices and rates per digit)."""
    return read_metadata(DIGITS_ROOT / "references.csv", DIGITS_ROOT / "wavs")


def heldout_utterances() -> list[Utterance]:
    """The held-out sequences and their reference recordings."""
    return read_metadata(DIGITS_ROOT / "heldout.csv", DIGITS_ROOT / "wavs")
