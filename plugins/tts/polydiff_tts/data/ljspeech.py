"""``ljspeech``: any corpus in the LJSpeech layout, as log-mel items.

Audio is read lazily (and cached); :meth:`LJSpeechDataset.validate` (run by the trainer
before the first step, and by ``polydiff check-data``) reads every file of the split first
and reports the unusable ones by name: unreadable files, NaN or infinite samples, and clips
shorter than the mel's ``n_fft`` samples (after resampling; 1024 samples = 46 ms at
22.05 kHz for ``grad-tts``, 64 ms at 16 kHz for ``small``). Silent files (every sample 0)
are kept, with one warning naming them.
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.data_check import DataReport, progress_bar
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
        on_error: What :meth:`validate` does with unusable audio: ``"raise"`` (report them as
            errors: training stops before its first step) or ``"skip"`` (leave them out,
            with one warning naming them).
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
        on_error: str = "raise",
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
        if on_error not in ("skip", "raise"):
            raise ConfigError(f"dataset option 'on_error' must be 'skip' or 'raise', not '{on_error}'")
        self.split, self.pad_multiple, self.cache, self.on_error = split, pad_multiple, cache, on_error
        self.mel_config = MelConfig.from_options(mel)
        splits = self._split(metadata, eval_metadata, eval_size)
        self.utterances = splits[split]
        self._eval_texts = [utt.normalized_text for utt in splits["eval"]]
        if max_items is not None:
            self.utterances = self.utterances[:max_items]
        self._mel = LogMelSpectrogram(self.mel_config)
        self._cache: dict[str, Tensor] = {}  # by utterance id (validate() may drop utterances)
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
        """Log-mel ``[n_mels, T]`` of utterance ``index``.

        Raises:
            DataError: its audio is unreadable, not finite, or shorter than ``n_fft`` samples.
        """
        utt = self.utterances[index]
        if utt.id in self._cache:
            return self._cache[utt.id]
        with torch.no_grad():
            mel = self._mel(self._read(utt))
        if self.cache:
            self._cache[utt.id] = mel
        return mel

    def _read(self, utt: Utterance) -> Tensor:
        wav = read_audio(utt.audio_path, self.mel_config.sample_rate)
        need, rate = self.mel_config.n_fft, self.mel_config.sample_rate
        if wav.numel() < need:
            raise DataError(
                f"audio file {utt.audio_path} is too short: {wav.numel()} samples at {rate} Hz, the "
                f"dataset needs at least n_fft={need} ({need / rate * 1000:.0f} ms). Fix: remove it "
                "(and its metadata row) or skip it with --set dataset.on_error=skip"
            )
        return wav

    def validate(self, progress: bool = False) -> DataReport:
        """Read every utterance of the split (caching its mel when ``cache``) and report the
        unusable ones; with ``on_error="skip"`` they are dropped from the dataset."""
        report = DataReport(f"ljspeech corpus '{self.root}' ({self.split} split)", len(self.utterances))
        keep, silent = [], []
        for index in progress_bar(range(len(self.utterances)), progress, f"checking {self.root.name}"):
            utt = self.utterances[index]
            report.checked += 1
            try:
                mel = self.mel(index)
            except DataError as exc:
                (report.skipped if self.on_error == "skip" else report.errors).append(
                    (str(utt.audio_path), str(exc))
                )
                continue
            keep.append(utt)
            if bool((mel <= self.mel_config.log_min).all()):
                silent.append(str(utt.audio_path))
        if report.skipped:
            self.utterances = keep
            listed = "; ".join(why.split(". Fix:")[0] for _, why in report.skipped)
            warnings.warn(
                f"{report.name}: skipped {len(report.skipped)} unusable audio files: {listed}", stacklevel=2
            )
            if not keep:
                raise DataError(
                    f"{report.name}: no usable audio is left after skipping {len(report.skipped)} files"
                )
        if silent:
            warnings.warn(
                f"{report.name}: {len(silent)} silent audio file(s) (every mel bin at the floor; "
                f"kept): {'; '.join(silent[:5])}",
                stacklevel=2,
            )
        report.items = len(keep)
        return report

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
        """``(n_mels, frames)`` of the first usable utterance, padded (lengths vary per item).

        Unusable utterances before it are left to :meth:`validate` to report (all of them);
        when none is usable the first one's error is raised."""
        first: DataError | None = None
        for index in range(len(self.utterances)):
            try:
                frames = self.mel(index).shape[-1]
            except DataError as exc:
                first = first or exc
                continue
            return (self.mel_config.n_mels, pad_to_multiple(frames, self.pad_multiple))
        if first is not None:
            raise first
        raise DataError(f"corpus '{self.root}' has no utterances in the {self.split} split")

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
