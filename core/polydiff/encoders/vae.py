"""``vae``: diffusion on the latents of a small KL autoencoder trained here as a first stage.

Any modality of rank 1, 2 or 3 can use it (registered by the core). ``encode(x) =
scale_factor * mean(q(z | x))`` and ``decode(z) = D(z / scale_factor)``, where data in
``data_range`` (default ``[0, 255]``, pixels) is mapped to [-1, 1] around the autoencoder.
The scale factor is ``1 / std`` of the latents of the training items, computed after
:meth:`VAEEncoder.fit` as latent diffusion does (never SD's 0.18215, which belongs to SD's
autoencoder), so the diffusion sees latents of unit variance. Scale factor and a "fitted"
flag are buffers, so they are saved in and restored from the checkpoint's safetensors.

Checkpoints of the image plugin's former ``vae`` (same name, same options) load unchanged:
with its defaults (``dims`` from the data, every axis downsampled, ``data_range=[0, 255]``)
this is the same network with the same state-dict keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.encoders.autoencoder import AutoencoderKL
from polydiff.errors import CheckpointError, ConfigError
from polydiff.interfaces import DiffusionDataset, Encoder, default_collate

#: Items used to measure the latent standard deviation after fitting.
SCALE_SAMPLES = 512


class VAEEncoder(Encoder):
    """KL autoencoder with downsampling factor ``f = 2 ** (len(channel_mult) - 1)`` on the
    axes ``downsample`` names (all by default).

    ``encode: x [B, C, *S]`` in ``data_range`` -> ``[B, latent_channels, *S / f]`` (std ~1);
    ``decode`` is its inverse up to reconstruction error, back in ``data_range`` (clamped).

    Args:
        data_shape: ``(C, *S)`` with 1 to 3 spatial axes ``S``; each downsampled axis must be
            divisible by ``f``.
        latent_channels: Latent maps ``Z`` (4, as latent diffusion).
        channels, channel_mult, num_res_blocks: Autoencoder width and depth (f=4 by default).
        kl_weight: Weight of the KL term (small: the latent is nearly deterministic).
        lr: Adam learning rate of :meth:`fit`.
        downsample: One true/false per spatial axis: which axes are compressed (default all;
            video uses ``[false, true, true]`` to compress space and not time).
        data_range: ``[lo, hi]`` of the data, mapped to [-1, 1] (default pixels ``[0, 255]``);
            ``null`` for data already about unit scale (e.g. standardised log-mels), no clamping.
    """

    trainable = True

    def __init__(
        self,
        data_shape: Sequence[int] = (3, 32, 32),
        latent_channels: int = 4,
        channels: int = 16,
        channel_mult: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 1,
        kl_weight: float = 1e-4,
        lr: float = 1e-3,
        downsample: Sequence[bool] | None = None,
        data_range: Sequence[float] | None = (0.0, 255.0),
    ):
        super().__init__()
        self.data_shape = tuple(int(d) for d in data_shape)
        if not 2 <= len(self.data_shape) <= 4:
            raise ConfigError(
                f"the vae encoder takes data shaped (C, *S) with 1 to 3 spatial axes; got data_shape "
                f"{self.data_shape}. Fix: use a dataset of rank 1, 2 or 3"
            )
        if data_range is not None and (
            len(data_range) != 2 or not float(data_range[0]) < float(data_range[1])
        ):
            raise ConfigError(
                f"vae option 'data_range' must be [lo, hi] with lo < hi (or null); got {data_range!r}"
            )
        self.options: dict[str, Any] = {
            "latent_channels": latent_channels,
            "channels": channels,
            "channel_mult": list(channel_mult),
            "num_res_blocks": num_res_blocks,
            "kl_weight": kl_weight,
            "lr": lr,
        }
        if downsample is not None:  # old configs have neither: keep them byte for byte
            self.options["downsample"] = [bool(d) for d in downsample]
        if data_range is None or tuple(map(float, data_range)) != (0.0, 255.0):
            self.options["data_range"] = None if data_range is None else [float(v) for v in data_range]
        self.data_range = None if data_range is None else (float(data_range[0]), float(data_range[1]))
        self.autoencoder = AutoencoderKL(
            self.data_shape[0],
            latent_channels,
            channels,
            channel_mult,
            num_res_blocks,
            dims=len(self.data_shape) - 1,
            downsample=downsample,
        )
        self.factors = self.autoencoder.factors
        self.factor = self.autoencoder.downsample_factor
        self.latent_shape(self.data_shape)  # validate early
        self.register_buffer("scale_factor", torch.tensor(1.0))
        self.register_buffer("fitted", torch.tensor(False))
        self.requires_grad_(False)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def config(self) -> dict[str, Any]:
        return dict(self.options)

    def latent_shape(self, data_shape: Sequence[int]) -> tuple[int, ...]:
        c, *spatial = data_shape
        if len(spatial) != len(self.factors) or any(s % f for s, f in zip(spatial, self.factors)):
            raise ConfigError(
                f"the vae encoder downsamples by {self.factor}: data size {tuple(spatial)} must be "
                f"divisible by {self.factors if len(set(self.factors)) > 1 else self.factor} per axis "
                f"(set the dataset option 'size', or the encoder's 'channel_mult'/'downsample')"
            )
        return (self.options["latent_channels"], *(s // f for s, f in zip(spatial, self.factors)))

    def to_unit(self, x: Tensor) -> Tensor:
        """Data in ``data_range`` -> float [-1, 1] (identity without a range)."""
        if self.data_range is None:
            return x.float()
        lo, hi = self.data_range
        half = (hi - lo) / 2
        return x.float() / half - 1.0 - lo / half

    def from_unit(self, z: Tensor) -> Tensor:
        """Float [-1, 1] -> ``data_range``, clamped (identity without a range)."""
        if self.data_range is None:
            return z.float()
        lo, hi = self.data_range
        return ((z.float() + 1.0) * ((hi - lo) / 2) + lo).clamp(lo, hi)

    def encode(self, x: Tensor) -> Tensor:
        self._require_fitted()
        return self.autoencoder.encode(self.to_unit(x)).mean * self.scale_factor

    def decode(self, z: Tensor) -> Tensor:
        self._require_fitted()
        return self.from_unit(self.autoencoder.decode(z / self.scale_factor))

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise CheckpointError(
                "the vae encoder has not been trained: train it with "
                "`polydiff train MODALITY --encoder vae` or load a checkpoint that has it"
            )

    def fit(
        self,
        dataset: DiffusionDataset,
        *,
        steps: int,
        batch_size: int,
        seed: int,
        out_dir: Path | None = None,
    ) -> dict[str, float]:
        """Train the autoencoder on ``dataset["x"]``, then set the scale factor and freeze.

        Returns the final metrics: ``l1``, ``mse``, ``kl`` (means of the last 10% of the
        steps), ``scale_factor`` and ``latent_std`` (of the scaled latents, ~1). With
        ``out_dir``, writes ``vae_reconstructions.png`` (originals above reconstructions) for
        pictures (1 or 3 channels in ``[0, 255]``; clips show their middle frame).
        """
        from tqdm.auto import tqdm

        device = self.scale_factor.device
        generator = torch.Generator().manual_seed(seed)
        collate = getattr(dataset, "collate", default_collate)
        self.autoencoder.train().requires_grad_(True)
        opt = torch.optim.Adam(self.autoencoder.parameters(), lr=self.options["lr"])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(1, steps)))
        )
        tail: list[dict[str, float]] = []
        for step in tqdm(range(steps), desc="vae", disable=None):
            idx = torch.randint(len(dataset), (batch_size,), generator=generator).tolist()
            x = self.to_unit(collate([dataset[i] for i in idx])["x"].to(device))
            loss, metrics = self.autoencoder.loss(x, self.options["kl_weight"], generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step >= steps - max(1, steps // 10):
                tail.append(metrics)
        self.autoencoder.eval().requires_grad_(False)
        self.fitted.fill_(True)
        latent_std = self.set_scale_factor(dataset, batch_size=max(batch_size, 64))
        result = {k: sum(m[k] for m in tail) / len(tail) for k in ("l1", "mse", "kl")} if tail else {}
        result.update(scale_factor=float(self.scale_factor), latent_std=latent_std)
        if out_dir is not None:
            self._write_reconstructions(dataset, Path(out_dir))
        return result

    @torch.no_grad()
    def set_scale_factor(self, dataset: DiffusionDataset, batch_size: int = 64) -> float:
        """Set ``scale_factor = 1 / std`` of the unscaled latents of up to :data:`SCALE_SAMPLES`
        items (the first ones); returns the std of the scaled latents (1 up to rounding). Batches
        may differ in size along their axes (speech pads each batch to its longest item)."""
        collate = getattr(dataset, "collate", default_collate)
        count = min(len(dataset), SCALE_SAMPLES)
        self.scale_factor.fill_(1.0)
        latents = torch.cat(
            [
                self.encode(
                    collate([dataset[i] for i in range(s, min(s + batch_size, count))])["x"].to(
                        self.scale_factor.device
                    )
                ).flatten()
                for s in range(0, count, batch_size)
            ]
        )
        self.scale_factor.fill_(1.0 / latents.float().std().clamp_min(1e-8).item())
        return float((latents * self.scale_factor).std())

    @torch.no_grad()
    def _write_reconstructions(self, dataset: DiffusionDataset, out_dir: Path, count: int = 8) -> None:
        """``vae_reconstructions.png``: a row of originals above a row of reconstructions."""
        if self.data_range != (0.0, 255.0) or self.data_shape[0] not in (1, 3) or len(self.data_shape) < 3:
            return  # not pictures: nothing to draw
        from polydiff.pictures.grids import labelled_rows, save_png, to_pictures

        collate = getattr(dataset, "collate", default_collate)
        x = collate([dataset[i] for i in range(min(count, len(dataset)))])["x"].to(self.scale_factor.device)
        recon = self.decode(self.encode(x))
        x, recon = x.float().cpu(), recon.cpu()
        if x.ndim == 5:  # clips [B, C, T, H, W]: their middle frames
            x, recon = x[:, :, x.shape[2] // 2], recon[:, :, recon.shape[2] // 2]
        rows = [("original", to_pictures(x)), ("reconstruction", to_pictures(recon))]
        save_png(labelled_rows(rows), out_dir / "vae_reconstructions.png")
