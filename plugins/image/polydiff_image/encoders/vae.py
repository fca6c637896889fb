"""``vae``: diffusion on the latents of a small KL autoencoder trained here as a first stage.

``encode(x) = scale_factor * mean(q(z | x))`` and ``decode(z) = D(z / scale_factor)``;
the scale factor is ``1 / std`` of the latents of the training images, computed after
:meth:`VAEEncoder.fit` as latent diffusion does (never SD's 0.18215, which belongs to SD's
autoencoder), so the diffusion sees latents of unit variance. Scale factor and a "fitted"
flag are buffers, so they are saved in and restored from the checkpoint's safetensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.errors import CheckpointError, ConfigError
from polydiff.interfaces import DiffusionDataset, Encoder, default_collate
from polydiff_image.encoders.autoencoder import AutoencoderKL
from polydiff_image.encoders.pixels import to_pixel_range, to_unit_range

#: Images used to measure the latent standard deviation after fitting.
SCALE_SAMPLES = 512


class VAEEncoder(Encoder):
    """KL autoencoder with downsampling factor ``f = 2 ** (len(channel_mult) - 1)``.

    ``encode: x [B, C, H, W]`` in [0, 255] -> ``[B, latent_channels, H/f, W/f]`` (std ~1);
    ``decode`` is its inverse up to reconstruction error, back in [0, 255].

    Args:
        data_shape: ``(C, H, W)``; H and W must be divisible by ``f``.
        latent_channels: Latent maps ``Z`` (4, as latent diffusion).
        channels, channel_mult, num_res_blocks: Autoencoder width and depth (f=4 by default).
        kl_weight: Weight of the KL term (small: the latent is nearly deterministic).
        lr: Adam learning rate of :meth:`fit`.
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
    ):
        super().__init__()
        self.options = {
            "latent_channels": latent_channels,
            "channels": channels,
            "channel_mult": list(channel_mult),
            "num_res_blocks": num_res_blocks,
            "kl_weight": kl_weight,
            "lr": lr,
        }
        self.data_shape = tuple(int(d) for d in data_shape)
        self.autoencoder = AutoencoderKL(
            self.data_shape[0], latent_channels, channels, channel_mult, num_res_blocks
        )
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
        if any(s % self.factor for s in spatial):
            raise ConfigError(
                f"the vae encoder downsamples by {self.factor}: image size {tuple(spatial)} must be "
                f"divisible by {self.factor} (set the dataset option 'size')"
            )
        return (self.options["latent_channels"], *(s // self.factor for s in spatial))

    def encode(self, x: Tensor) -> Tensor:
        self._require_fitted()
        return self.autoencoder.encode(to_unit_range(x)).mean * self.scale_factor

    def decode(self, z: Tensor) -> Tensor:
        self._require_fitted()
        return to_pixel_range(self.autoencoder.decode(z / self.scale_factor))

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise CheckpointError(
                "the vae encoder has not been trained: train it with "
                "`polydiff train image --encoder vae` or load a checkpoint that has it"
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
        ``out_dir``, writes ``vae_reconstructions.png`` (originals above reconstructions).
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
            x = to_unit_range(collate([dataset[i] for i in idx])["x"].to(device))
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
        images (the first ones); returns the std of the scaled latents (1 up to rounding)."""
        collate = getattr(dataset, "collate", default_collate)
        count = min(len(dataset), SCALE_SAMPLES)
        self.scale_factor.fill_(1.0)
        latents = torch.cat(
            [
                self.encode(
                    collate([dataset[i] for i in range(s, min(s + batch_size, count))])["x"].to(
                        self.scale_factor.device
                    )
                )
                for s in range(0, count, batch_size)
            ]
        )
        self.scale_factor.fill_(1.0 / latents.float().std().clamp_min(1e-8).item())
        return float((latents * self.scale_factor).std())

    @torch.no_grad()
    def _write_reconstructions(self, dataset: DiffusionDataset, out_dir: Path, count: int = 8) -> None:
        from polydiff_image.writer import PNGWriter

        collate = getattr(dataset, "collate", default_collate)
        x = collate([dataset[i] for i in range(min(count, len(dataset)))])["x"].to(self.scale_factor.device)
        recon = self.decode(self.encode(x))
        both = torch.cat([x.float(), recon]).cpu()
        PNGWriter().write_samples(
            both, ["original"] * len(x) + ["reconstruction"] * len(x), out_dir / "vae_reconstructions.png"
        )
