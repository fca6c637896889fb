"""Reading and writing audio files with soundfile (torchaudio here has no I/O backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor

from polydiff.errors import DataError


def read_audio(path: str | Path, sample_rate: int) -> Tensor:
    """Read a WAV/FLAC file as mono float32 at ``sample_rate``.

    Stereo (or more channels) is mixed down to mono; another rate is resampled.

    Returns:
        ``[samples]`` in ``[-1, 1]``.

    Raises:
        DataError: the file is missing, unreadable (whatever soundfile raises), empty, or holds
            NaN or infinite samples (a float WAV can); the message names it.
    """
    path = Path(path)
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError, ...
        if not path.exists():
            raise DataError(f"audio file {path} does not exist") from exc
        why = str(exc).rstrip(".")
        raise DataError(f"cannot read audio file {path}: {why}. Fix: re-export it as WAV or FLAC") from exc
    if audio.shape[0] == 0:
        raise DataError(f"audio file {path} is empty. Fix: re-export or remove it")
    finite = np.isfinite(audio)
    if not finite.all():
        raise DataError(
            f"audio file {path} holds {int((~finite).sum())} NaN or infinite samples of {audio.size}. "
            "Fix: re-export it (as 16-bit PCM, say) or remove it"
        )
    wav = torch.from_numpy(np.ascontiguousarray(audio.mean(axis=1)))
    if rate != sample_rate:
        wav = AF.resample(wav, rate, sample_rate)
    return wav


def write_wav(path: str | Path, audio: Tensor, sample_rate: int) -> Path:
    """Write ``audio: [samples]`` (float, clipped to [-1, 1]) as 16-bit PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = audio.detach().float().cpu().clamp(-1.0, 1.0).numpy()
    sf.write(path, data, sample_rate, subtype="PCM_16")
    return path
