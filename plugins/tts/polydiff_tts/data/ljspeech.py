"""``ljspeech``: any corpus in the LJSpeech layout, as log-mel items."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.errors import ConfigError, DataError
from polydiff_tts.audio.config import MelConfig
from polydiff_tts.audio.io import read_audio
from polydiff_tts.audio.mel import LogMelSpectrogram
from polydiff_tts.data.collate import collate_mels, pad_to_multiple
from polydiff_tts.data.metadata import Utterance, read_metadata

SPLITS = ("train", "eval")


class LJSpeechDataset:
    """Utterances of an LJSpeech-layout corpus as ``{"x": log-mel [n_mels, T], "text", "id", "wav_path"}``.

    Point it at the real LJSpeech with ``polydiff train tts --dataset ljspeech
    --data-path /data/LJSpeech-1.1 --set dataset.mel=grad-tts``.

    Args:
        split: ``"train"`` or ``"eval"``.
        path: Corpus directory (holds ``metadata.csv`` and ``wavs/``).
        metadata: Training metadata file name, relative to ``path``.
        eval_metadata: Metadata of the evaluation split; when None, the last ``eval_size``
            rows of ``metadata`` are held out instead.
        eval_size: Rows held out when there is no ``eval_metadata``.
        mel: Mel settings: a preset name (``"grad-tts"``, ``"small"``) or a dict of fields.
        pad_multiple: Batches are padded to a multiple of this many frames.
        max_items: Use only the first rows of the split (quick experiments).
        cache: Keep computed mels in memory.
    """

    def __init__(
        self,
        split: str = "train",
        path: str | Path | None = None,
        metadata: str = "metadata.csv",
        eval_metadata: str | None = None,
        eval_size: int = 100,
        mel: str | dict[str, Any] = "grad-tts",
        pad_multiple: int = 16,
        max_items: int | None = None,
        cache: bool = True,
    ):
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}'; use one of {SPLITS}")
        if path is None:
            raise ConfigError(
                "dataset 'ljspeech' needs the path of an LJSpeech-layout corpus "
                "(metadata.csv + wavs/): --data-path /data/LJSpeech-1.1"
            )
        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"corpus directory {self.root} does not exist; download LJSpeech "
                "(https://keithito.com/LJ-Speech-Dataset/) or pass --data-path to your corpus"
            )
        self.split, self.pad_multiple, self.cache = split, pad_multiple, cache
        self.mel_config = MelConfig.from_options(mel)
        splits = self._split(metadata, eval_metadata, eval_size)
        self.utterances = splits[split]
        self._eval_texts = [utt.normalized_text for utt in splits["eval"]]
        if max_items is not None:
            self.utterances = self.utterances[:max_items]
        self._mel = LogMelSpectrogram(self.mel_config)
        self._cache: dict[int, Tensor] = {}
        self.collate = partial(collate_mels, pad_multiple=pad_multiple, pad_value=self.mel_config.log_min)

    def _split(self, metadata: str, eval_metadata: str | None, eval_size: int) -> dict[str, list[Utterance]]:
        wavs = self.root / "wavs"
        if eval_metadata is not None:
            return {
                "train": read_metadata(self.root / metadata, wavs),
                "eval": read_metadata(self.root / eval_metadata, wavs),
            }
        rows = read_metadata(self.root / metadata, wavs)
        if eval_size >= len(rows):
            raise ConfigError(
                f"eval_size={eval_size} leaves no training rows in {self.root / metadata} "
                f"({len(rows)} rows); lower eval_size"
            )
        return {"train": rows[: len(rows) - eval_size], "eval": rows[len(rows) - eval_size :]}

    def __len__(self) -> int:
        return len(self.utterances)

    def mel(self, index: int) -> Tensor:
        """Log-mel ``[n_mels, T]`` of utterance ``index``."""
        if index in self._cache:
            return self._cache[index]
        utt = self.utterances[index]
        with torch.no_grad():
            mel = self._mel(read_audio(utt.audio_path, self.mel_config.sample_rate))
        if self.cache:
            self._cache[index] = mel
        return mel

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt = self.utterances[index]
        return {
            "x": self.mel(index),
            "text": utt.normalized_text,
            "id": utt.id,
            "wav_path": str(utt.audio_path),
        }

    @property
    def data_shape(self) -> tuple[int, int]:
        """``(n_mels, frames)`` of the first utterance, padded (lengths vary per item)."""
        return (self.mel_config.n_mels, pad_to_multiple(self.mel(0).shape[-1], self.pad_multiple))

    @property
    def captions(self) -> list[str]:
        return [utt.normalized_text for utt in self.utterances]

    @property
    def eval_prompts(self) -> list[str]:
        """Texts of the evaluation split (held-out sentences), whatever this dataset's split."""
        return list(self._eval_texts)

    def writer_options(self) -> dict[str, Any]:
        """The mel settings, so the writer and vocoder use exactly the checkpoint's."""
        return {"mel": self.mel_config.to_dict()}
