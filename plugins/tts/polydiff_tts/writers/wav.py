"""``wav``: log-mels -> WAV files (through a swappable vocoder) and mel-spectrogram PNGs.

The loss chart is the core's (:func:`polydiff.pictures.curves.loss_plot`); output paths follow
:mod:`polydiff.outputs`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from polydiff.interfaces import Writer
from polydiff.outputs import numbered, output_file
from polydiff.pictures.curves import loss_plot
from polydiff_tts.audio.config import MelConfig
from polydiff_tts.audio.io import write_wav
from polydiff_tts.vocoders.base import Vocoder
from polydiff_tts.vocoders.registry import load_vocoder
from polydiff_tts.writers.spectrogram_png import grid_image, save_png


def slug(text: str, limit: int = 40) -> str:
    """``"seven two nine"`` -> ``"seven-two-nine"`` (safe in file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit] or "sample"


def trim(x: Tensor, lengths: Sequence[int] | None) -> list[Tensor]:
    """``x: [B, C, T]`` -> list of ``[C, T_i]`` cut to ``lengths`` (whole when None)."""
    return [m if lengths is None else m[..., : int(n)] for m, n in zip(x, lengths or [None] * len(x))]


class WavWriter(Writer):
    """Writes speech samples: one WAV per sample plus a PNG of their mel spectrograms.

    Output paths follow :mod:`polydiff.outputs`: one sample is written to exactly ``STEM.wav``;
    several to ``STEM-00-SLUG.wav, ...`` plus ``STEM.png`` with every mel spectrogram; a ``.png``
    path gets the mel spectrograms alone. An existing directory gets ``samples.wav`` inside it.

    Args:
        mel: The checkpoint's mel settings (from the dataset's ``writer_options()``).
        vocoder: Vocoder name (``griffin-lim`` or one from a ``polydiff_tts_vocoders`` plugin).
        vocoder_options: Keyword options of the vocoder (``n_iter``, ...).
        strip_wavs: Also write a WAV per step of a trajectory/forward strip (first sample).
    """

    extension = ".wav"
    #: Suffixes ``polydiff sample/noise --out`` may have: audio, or the spectrograms alone.
    extensions = (".wav", ".png")

    def __init__(
        self,
        mel: MelConfig | dict[str, Any] | str | None = None,
        vocoder: str = "griffin-lim",
        vocoder_options: dict[str, Any] | None = None,
        strip_wavs: bool = True,
    ):
        self.mel = MelConfig.from_options(mel)
        self.vocoder_name, self.vocoder_options = vocoder, dict(vocoder_options or {})
        self.strip_wavs = strip_wavs
        self._vocoder: Vocoder | None = None

    @property
    def vocoder(self) -> Vocoder:
        if self._vocoder is None:
            self._vocoder = load_vocoder(self.vocoder_name, self.mel, **self.vocoder_options)
        return self._vocoder

    def _check(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.mel.n_mels:
            raise ValueError(
                f"the wav writer expects log-mels [B, {self.mel.n_mels}, T], got {tuple(x.shape)}"
            )

    def write_samples(
        self, x: Tensor, prompts: Sequence[str], path: Path, lengths: Sequence[int] | None = None
    ) -> list[Path]:
        """``x: [B, n_mels, T]`` log-mels. One sample: exactly ``path`` (``.wav``); several:
        ``STEM-00-SLUG.wav``, ... next to it and one ``STEM.png`` with every mel. A ``.png``
        ``path``: the mel spectrograms alone, no audio."""
        self._check(x)
        path = Path(path)
        mels = trim(x, lengths)
        if path.suffix.lower() == ".png":
            return [self._mel_png(mels, prompts, path)]
        path = output_file(path, "samples.wav").with_suffix(".wav")
        wav_paths = numbered(path, len(mels), labels=[slug(p) for p in prompts])
        written = [
            write_wav(wav_path, self.vocoder(mel), self.mel.sample_rate)
            for wav_path, mel in zip(wav_paths, mels)
        ]
        if len(mels) == 1:
            return written
        return [*written, self._mel_png(mels, prompts, path.with_suffix(".png"))]

    def _mel_png(self, mels: Sequence[Tensor], prompts: Sequence[str], path: Path) -> Path:
        """One PNG with every mel ``[n_mels, T_i]`` under its prompt, a row each."""
        image = grid_image([[m] for m in mels], [[p] for p in prompts], floor=self.mel.log_min)
        return save_png(image, path)

    def _write_strip(
        self,
        steps: Sequence[int],
        rows: Sequence[tuple[str, Tensor]],
        prompts: Sequence[str],
        path: Path,
        lengths: Sequence[int] | None,
    ) -> list[Path]:
        """``rows``: (name, ``[S, B, C, T]``) -> one PNG (a row per sample and name, a column per
        step) and, with ``strip_wavs``, a WAV per step of the first sample's first row."""
        path = Path(path).with_suffix(".wav")
        keep = [i for i, s in enumerate(steps) if s not in steps[:i]]  # a sampler may visit a step once
        steps = [int(steps[i]) for i in keep]
        grid, labels = [], []
        for b, prompt in enumerate(prompts):
            for name, xs in rows:
                self._check(xs[0])
                grid.append(trim(xs[keep, b], None if lengths is None else [lengths[b]] * len(steps)))
                labels.append(
                    [f"{name}t={s}" + (f" {prompt}" if i == 0 else "") for i, s in enumerate(steps)]
                )
        written = [save_png(grid_image(grid, labels, floor=self.mel.log_min), path.with_suffix(".png"))]
        if self.strip_wavs:
            for s, mel in zip(steps, grid[0]):
                written.append(
                    write_wav(
                        path.with_name(f"{path.stem}-t{int(s):04d}.wav"),
                        self.vocoder(mel),
                        self.mel.sample_rate,
                    )
                )
        return written

    def write_trajectory(
        self,
        steps: Sequence[int],
        xt: Tensor,
        x0: Tensor,
        prompts: Sequence[str],
        path: Path,
        lengths: Sequence[int] | None = None,
    ) -> list[Path]:
        """The reverse process: ``xt``/``x0`` ``[S, B, n_mels, T]`` at ``steps`` as a spectrogram strip
        (rows x_t and predicted x0 per sample) and WAVs of the first sample's x_t."""
        return self._write_strip(steps, [("", xt), ("x0 pred ", x0)], prompts, path, lengths)

    def write_forward(
        self,
        steps: Sequence[int],
        xt: Tensor,
        prompts: Sequence[str],
        path: Path,
        lengths: Sequence[int] | None = None,
    ) -> list[Path]:
        """The forward process on real utterances: ``xt [S, B, n_mels, T]`` as a strip plus WAVs."""
        return self._write_strip(steps, [("", xt)], prompts, path, lengths)

    def write_loss_curve(self, history: Sequence[dict[str, float]], path: Path) -> list[Path]:
        """The diffusion, duration and prior losses over training (log scale)."""
        keys = [k for k in ("loss", "diffusion", "duration", "prior") if any(k in h for h in history)]
        curves = {k: [(h["step"], h[k]) for h in history if k in h] for k in keys}
        return [save_png(loss_plot(curves), path)]
