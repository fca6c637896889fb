"""``video-vae``: latent video through the core's 2-D KL autoencoder, applied frame by frame.

The autoencoder (:class:`polydiff.encoders.vae.VAEEncoder` on frames) is trained as a first
stage on single frames of the training clips, then frozen; the diffusion runs on
``[B, Z, T, H / f, W / f]`` latents, so the factorised UNet sees ``f^2`` times fewer
positions per frame. The core's own ``vae`` with ``downsample: [false, true, true]`` (the video
presets set it) is the 3-D alternative: its convolutions see neighbouring frames too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from einops import rearrange
from torch import Tensor

from polydiff.encoders.vae import VAEEncoder
from polydiff.errors import ConfigError
from polydiff.interfaces import DiffusionDataset, Encoder


class FramesOf:
    """A video dataset seen as a dataset of its frames: item ``i`` is frame ``i % T`` of clip
    ``i // T``, as ``{"x": [C, H, W]}``."""

    def __init__(self, clips: DiffusionDataset, frames: int) -> None:
        self.clips, self.frames = clips, frames

    def __len__(self) -> int:
        return len(self.clips) * self.frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip, frame = divmod(index, self.frames)
        return {"x": self.clips[clip]["x"][:, frame]}


class FrameVAEEncoder(Encoder):
    """Encodes clips ``[B, 3, T, H, W]`` in [0, 255] frame by frame to ``[B, Z, T, H/f, W/f]``.

    Args:
        data_shape: ``(C, T, H, W)`` of one clip.
        **vae_options: Options of :class:`~polydiff.encoders.vae.VAEEncoder`
            (``latent_channels``, ``channels``, ``channel_mult``, ``kl_weight``, ``lr``, ...).
    """

    trainable = True

    def __init__(self, data_shape: Sequence[int] = (3, 8, 32, 32), **vae_options: Any) -> None:
        super().__init__()
        if len(data_shape) != 4:
            raise ConfigError(
                f"video-vae encodes clips shaped (C, T, H, W); got data_shape {tuple(data_shape)}. "
                f"Fix: use a video dataset, or the encoder 'vae' for other data."
            )
        channels, self.frames, height, width = (int(d) for d in data_shape)
        self.vae = VAEEncoder(data_shape=(channels, height, width), **vae_options)

    @property
    def is_fitted(self) -> bool:
        return self.vae.is_fitted

    def config(self) -> dict[str, Any]:
        return self.vae.config()

    def latent_shape(self, data_shape: Sequence[int]) -> tuple[int, ...]:
        channels, frames, *spatial = data_shape
        latent_channels, *latent_spatial = self.vae.latent_shape((channels, *spatial))
        return (latent_channels, frames, *latent_spatial)

    def encode(self, x: Tensor) -> Tensor:
        """``x: [B, C, T, H, W]`` in [0, 255] -> ``[B, Z, T, H/f, W/f]`` (std about 1)."""
        z = self.vae.encode(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(z, "(b t) c h w -> b c t h w", b=x.shape[0])

    def decode(self, z: Tensor) -> Tensor:
        """``z: [B, Z, T, h, w]`` -> ``[B, C, T, h*f, w*f]`` in [0, 255]."""
        x = self.vae.decode(rearrange(z, "b c t h w -> (b t) c h w"))
        return rearrange(x, "(b t) c h w -> b c t h w", b=z.shape[0])

    def fit(
        self,
        dataset: DiffusionDataset,
        *,
        steps: int,
        batch_size: int,
        seed: int,
        out_dir: Path | None = None,
    ) -> dict[str, float]:
        """Train the autoencoder on single frames of ``dataset``'s clips (see ``VAEEncoder.fit``)."""
        return self.vae.fit(
            FramesOf(dataset, self.frames), steps=steps, batch_size=batch_size, seed=seed, out_dir=out_dir
        )
