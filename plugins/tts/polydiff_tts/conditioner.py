"""``grad-tts``: text -> aligned prior mean ``mu`` for the decoder UNet (Popov et al. 2021).

Training (:meth:`GradTTSConditioner.forward`): the text encoder gives ``mu`` per token and
log-durations; monotonic alignment search (no gradient) finds the most likely alignment
of the tokens to the frames of ``x0``; ``mu`` is expanded along it to ``mu_y [B, n_mels, T]``.
The UNet sees ``mu_y`` concatenated to ``x_t`` and the diffusion runs on ``x0 - mu_y``, so
sampling starts from ``N(mu_y, I / temperature)`` as in Grad-TTS. The duration loss (log
durations vs. the alignment's) and the prior loss (``-log N(x0; mu_y, I)``) are returned as
auxiliary losses and optimised with the UNet by the core trainer.

Sampling (:meth:`GradTTSConditioner.plan`): predicted durations times ``length_scale``
(> 1 speaks slower), rounded to frames, decide the number of frames of each sample.

All of this happens in diffusion space, whose channels the core tells the conditioner
(:meth:`GradTTSConditioner.set_latent_shape`): the mel bands with the ``identity`` or ``mel-norm``
encoder, the latent channels with the core's ``vae`` (``--encoder vae``). There ``mu`` is a
prior over the VAE latents of the mels: the alignment, the prior loss and the sampling start all
use the latent of each frame, and the pipeline decodes the sample to mels for the vocoder. The
encoder must keep every frame (``encoder.vae.downsample=[false]``, as the presets set), so that
latent frames are mel frames and the durations stay in frames.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from polydiff.errors import ConfigError, DataError
from polydiff.interfaces import Conditioner, Conditioning, DiffusionDataset, SamplingPlan
from polydiff_tts.data.collate import pad_to_multiple
from polydiff_tts.model.alignment import durations_to_path, monotonic_alignment_search
from polydiff_tts.model.losses import duration_loss, prior_loss
from polydiff_tts.model.text_encoder import TextEncoder, sequence_mask
from polydiff_tts.text.tokenizer import Tokenizer


class GradTTSConditioner(Conditioner):
    """Text encoder + duration predictor + alignment search, as a polydiff conditioner.

    Args:
        n_mels: Channels of the diffusion space: the mel bands, or the latent channels of a
            learned encoder (``vae``); taken from :meth:`set_latent_shape` (or the dataset)
            when None. The name stays for the checkpoints that have it.
        tokens: ``"chars"`` or ``"phonemes"``; symbols: the fitted phoneme inventory.
        add_blank: Intersperse a blank token between symbols (helps the alignment).
        hidden, layers, heads, ffn_mult, kernel_size, dropout, duration_hidden: Text encoder size
            (see :class:`~polydiff_tts.model.text_encoder.TextEncoder`).
        pad_multiple: Frames are padded to a multiple of this (``2 ** (UNet levels - 1)`` or more).
        max_frames: Longest sample :meth:`plan` may produce (longer predictions are cut).
    """

    def __init__(
        self,
        n_mels: int | None = None,
        tokens: str = "chars",
        symbols: Sequence[str] | None = None,
        add_blank: bool = True,
        language: str = "en-us",
        hidden: int = 128,
        layers: int = 3,
        heads: int = 2,
        ffn_mult: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.1,
        duration_hidden: int = 128,
        pad_multiple: int = 16,
        max_frames: int = 4000,
    ):
        super().__init__()
        self.tokenizer = Tokenizer(tokens, symbols, add_blank, language)
        self.options: dict[str, Any] = {
            "n_mels": n_mels,
            "tokens": tokens,
            "add_blank": add_blank,
            "language": language,
            "hidden": hidden,
            "layers": layers,
            "heads": heads,
            "ffn_mult": ffn_mult,
            "kernel_size": kernel_size,
            "dropout": dropout,
            "duration_hidden": duration_hidden,
            "pad_multiple": pad_multiple,
            "max_frames": max_frames,
        }
        self.pad_multiple, self.max_frames = pad_multiple, max_frames
        # the diffusion space's channels and (padded) frames, told by the core (set_latent_shape)
        self.latent_channels: int | None = None
        self.latent_frames: int | None = None
        self.encoder: TextEncoder | None = None
        if n_mels is not None:
            self._build(n_mels)

    def _build(self, n_mels: int) -> None:
        o = self.options
        o["n_mels"] = n_mels
        self.concat_channels = n_mels
        self.encoder = TextEncoder(
            self.tokenizer.vocab_size,
            n_mels,
            hidden=o["hidden"],
            layers=o["layers"],
            heads=o["heads"],
            ffn_mult=o["ffn_mult"],
            kernel_size=o["kernel_size"],
            dropout=o["dropout"],
            duration_hidden=o["duration_hidden"],
        )

    # ------------------------------------------------------------------ set-up
    def set_latent_shape(self, shape: tuple[int, ...]) -> None:
        """``(C, T)`` of diffusion space: ``mu`` gets ``C`` channels (mel bands or VAE latents)."""
        channels = int(shape[0])
        if self.options["n_mels"] not in (None, channels):
            raise ConfigError(
                f"grad-tts: n_mels={self.options['n_mels']} but the diffusion space (the encoder's "
                f"output) has {channels} channels; drop the conditioner's n_mels option"
            )
        self.latent_channels = channels
        self.latent_frames = int(shape[-1])

    def fit(self, dataset: DiffusionDataset) -> None:
        """Take ``n_mels`` (the diffusion-space channels) and ``pad_multiple`` from the dataset
        (and fit the phoneme inventory)."""
        shape = getattr(dataset, "data_shape", None) or tuple(dataset[0]["x"].shape)
        n_mels = int(shape[0]) if self.latent_channels is None else self.latent_channels
        frames = self.latent_frames
        if frames is not None and frames != int(shape[-1]):
            raise ConfigError(
                f"grad-tts aligns text to mel frames, but the encoder maps {int(shape[-1])} frames to "
                f"{frames}; keep every frame: --set encoder.downsample=[false] for the vae"
            )
        if self.options["n_mels"] not in (None, n_mels):
            raise ConfigError(
                f"grad-tts: n_mels={self.options['n_mels']} but the dataset's mels have {n_mels} "
                "bands; drop the conditioner's n_mels option or match the dataset's mel settings"
            )
        if self.tokenizer.kind == "phonemes":
            texts = getattr(dataset, "captions", None) or [dataset[i]["text"] for i in range(len(dataset))]
            self.tokenizer.fit(texts)
        # sample lengths are padded like the training batches, which the UNet accepts
        self.pad_multiple = self.options["pad_multiple"] = int(
            getattr(dataset, "pad_multiple", self.pad_multiple)
        )
        self._build(n_mels)

    def config(self) -> dict[str, Any]:
        symbols = list(self.tokenizer.symbols) if self.tokenizer.kind == "phonemes" else None
        return {**self.options, "symbols": symbols}

    def _text_encoder(self) -> TextEncoder:
        if self.encoder is None:
            raise ConfigError("grad-tts: n_mels is unknown; call fit(dataset) or pass n_mels")
        return self.encoder

    def encode_text(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``texts`` -> ``mu_x [B, n_mels, L]``, ``log_durations [B, L]``, ``x_mask [B, 1, L]``,
        ``lengths [B]``."""
        encoder = self._text_encoder()
        ids, lengths = self.tokenizer(texts)
        device = encoder.proj_mu.weight.device
        ids, lengths = ids.to(device), lengths.to(device)
        mu_x, log_durations, x_mask = encoder(ids, lengths)
        return mu_x, log_durations, x_mask, lengths

    # ------------------------------------------------------------------ training
    def forward(
        self, batch: dict[str, Any], x0: Tensor, *, drop: Tensor | None = None, drop_prob: float = 0.0
    ) -> Conditioning:
        """Conditioning of a training batch.

        ``x0: [B, n_mels, T]`` diffusion-space mels (``T`` padded); ``batch["mel_lengths"]``
        gives the real frames. ``drop``/``drop_prob`` are ignored: Grad-TTS has no
        classifier-free guidance (the prior mean already carries the text).
        """
        mu_x, log_durations, x_mask, x_lengths = self.encode_text(list(batch["text"]))
        frames = x0.shape[-1]
        y_lengths = batch.get("mel_lengths")
        y_lengths = (torch.full((x0.shape[0],), frames) if y_lengths is None else y_lengths).to(x0.device)
        y_mask = sequence_mask(y_lengths, frames).to(x0.dtype)
        with torch.no_grad():
            # log N(y_j; mu_i, I) up to a constant, for every token i and frame j: [B, L, T]
            log_p = (
                -0.5 * (mu_x**2).sum(1)[:, :, None]
                + torch.einsum("bci,bcj->bij", mu_x, x0)
                - 0.5 * (x0**2).sum(1)[:, None, :]
            )
            try:
                path = monotonic_alignment_search(log_p, x_lengths, y_lengths)
            except DataError as exc:
                texts = list(batch["text"])
                raise DataError(f"{exc}; texts of the batch: {texts}") from exc
        mu_y = torch.einsum("bci,bij->bcj", mu_x, path)
        log_target = torch.log(1e-8 + path.sum(-1)) * x_mask.squeeze(1)
        # Padding frames take x0 itself as offset, so the diffusion target x0 - offset is 0 there
        # whatever value the collate padded with.
        offset = mu_y * y_mask + x0.detach() * (1 - y_mask)
        return Conditioning(
            concat=mu_y,
            offset=offset,
            loss_mask=y_mask,
            aux_losses={
                "duration": duration_loss(log_durations, log_target, x_mask),
                "prior": prior_loss(x0, mu_y, y_mask),
            },
        )

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def predict_durations(
        self, prompts: Sequence[str], length_scale: float = 1.0
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``mu_x [B, n_mels, L]``, integer ``durations [B, L]`` and ``frames [B]`` of ``prompts``.

        Token boundaries are the *cumulative* predicted durations rounded to frames, so the
        total length is unbiased. (Grad-TTS rounds each token up, which adds half a frame per
        token: +24% length on the digits corpus, whose blank tokens last about a frame.)
        """
        if not (math.isfinite(length_scale) and length_scale > 0):
            raise ConfigError(
                "length_scale must be > 0 and finite (1 = normal rate, 2 = twice as slow), "
                f"got {length_scale}"
            )
        mu_x, log_durations, x_mask, _ = self.encode_text(prompts)
        ends = torch.round((torch.exp(log_durations) * x_mask.squeeze(1) * length_scale).cumsum(1)).long()
        durations = torch.diff(ends, dim=1, prepend=torch.zeros_like(ends[:, :1]))
        frames = ends[:, -1].clamp(min=1)
        if bool((frames > self.max_frames).any()):
            warnings.warn(
                f"grad-tts: predicted {int(frames.max())} frames, more than max_frames={self.max_frames}; "
                "the speech is cut (raise the conditioner's max_frames or lower length_scale)",
                stacklevel=2,
            )
            frames = frames.clamp(max=self.max_frames)
        return mu_x, durations, frames

    @torch.no_grad()
    def plan(self, prompts: Sequence[str], shape: tuple[int, ...], length_scale: float = 1.0) -> SamplingPlan:
        """Durations decide the length: ``shape`` becomes ``(n_mels, T)`` with ``T`` the longest
        sample's frames padded to ``pad_multiple``; ``lengths`` holds each sample's frames."""
        mu_x, durations, frames = self.predict_durations(list(prompts), length_scale)
        total = pad_to_multiple(int(frames.max()), self.pad_multiple)
        path = durations_to_path(durations, max(total, int(durations.sum(1).max())))[:, :, :total]
        mu_y = torch.einsum("bci,bij->bcj", mu_x, path)
        mask = sequence_mask(frames, total).to(mu_y.dtype)
        mu_y = mu_y * mask
        cond = Conditioning(concat=mu_y, offset=mu_y, loss_mask=mask)
        return SamplingPlan(cond=cond, uncond=None, shape=(mu_y.shape[1], total), lengths=frames.tolist())
