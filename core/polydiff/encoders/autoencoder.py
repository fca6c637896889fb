"""A small KL-regularised convolutional autoencoder of any rank (the first stage of latent diffusion).

The layout follows the CompVis ``AutoencoderKL``: ResBlocks per level, stride-2
convolutions between levels, the encoder predicts the mean and log-variance of a diagonal
Gaussian over ``z_channels`` latent maps, the decoder mirrors it with nearest-neighbour
upsampling. ``dims`` (1, 2 or 3) picks Conv1d/2d/3d; ``downsample`` says which spatial axes
the stride-2 convolutions halve, so a video autoencoder can compress ``H, W`` and keep ``T``.
Without attention, LPIPS or a GAN, which need downloaded weights or more compute than a CPU
run affords. For ``dims=2`` and every axis downsampled, the modules (and so the state-dict
keys) are those of the image plugin's autoencoder before it moved here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.errors import ConfigError
from polydiff.nn.layers import GroupNorm

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _norm(channels: int) -> GroupNorm:
    return GroupNorm(8 if channels % 8 == 0 else 1, channels)


def conv(dims: int, *args, **kwargs) -> nn.Module:
    """``nn.Conv{dims}d(*args, **kwargs)``."""
    return _CONV[dims](*args, **kwargs)


class ResBlock(nn.Module):
    """``x [B, Cin, *S] -> [B, Cout, *S]``: two (norm, SiLU, 3-wide conv) plus a skip."""

    def __init__(self, in_channels: int, out_channels: int, dims: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            _norm(in_channels),
            nn.SiLU(),
            conv(dims, in_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.SiLU(),
            conv(dims, out_channels, out_channels, 3, padding=1),
        )
        self.skip = conv(dims, in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class DiagonalGaussian:
    """``N(mean, exp(logvar))`` over latents ``[B, Z, *s]`` (log-variance clamped to [-30, 20])."""

    def __init__(self, moments: Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Reparameterised sample; ``generator`` (a CPU one) makes it reproducible on any device."""
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype)
        return self.mean + (0.5 * self.logvar).exp() * noise.to(self.mean.device)

    def kl(self) -> Tensor:
        """KL to ``N(0, I)`` per element, ``[B, Z, *s]``."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)


def axis_factors(dims: int, levels: int, downsample: Sequence[bool] | None) -> tuple[int, ...]:
    """Downsampling factor per spatial axis: ``2 ** (levels - 1)`` where ``downsample`` is true, else 1."""
    flags = [True] * dims if downsample is None else [bool(d) for d in downsample]
    if len(flags) != dims:
        raise ConfigError(
            f"autoencoder option 'downsample' has {len(flags)} entries {list(downsample or [])} for "
            f"data of {dims} spatial axes; fix: give one true/false per spatial axis"
        )
    return tuple(2 ** (levels - 1) if d else 1 for d in flags)


class AutoencoderKL(nn.Module):
    """``encode: x [B, C, *S] in [-1, 1] -> DiagonalGaussian over [B, Z, *S / f]``;
    ``decode: z -> [B, C, *S]``, with ``f`` = :attr:`factors` per spatial axis.

    Args:
        in_channels: Data channels ``C``.
        z_channels: Latent channels ``Z``.
        channels: Width of the first level.
        channel_mult: Width multiplier per level; each level but the last halves the
            downsampled axes.
        num_res_blocks: ResBlocks per level.
        dims: Spatial axes (1, 2 or 3).
        downsample: Per spatial axis, whether it is halved between levels (default: all).
    """

    def __init__(
        self,
        in_channels: int = 3,
        z_channels: int = 4,
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 1,
        dims: int = 2,
        downsample: Sequence[bool] | None = None,
    ):
        super().__init__()
        if dims not in _CONV:
            raise ConfigError(f"the autoencoder takes 1, 2 or 3 spatial axes; got {dims}")
        widths = [channels * m for m in channel_mult]
        self.factors = axis_factors(dims, len(widths), downsample)
        self.downsample_factor = max(self.factors)
        halved = tuple(2 if f > 1 else 1 for f in self.factors)
        every = all(h == 2 for h in halved)
        stride = 2 if every else halved
        scale = 2.0 if every else tuple(float(h) for h in halved)

        enc: list[nn.Module] = [conv(dims, in_channels, widths[0], 3, padding=1)]
        prev = widths[0]
        for level, width in enumerate(widths):
            for _ in range(num_res_blocks):
                enc.append(ResBlock(prev, width, dims))
                prev = width
            if level < len(widths) - 1:
                enc.append(conv(dims, prev, prev, 3, stride=stride, padding=1))
        enc += [
            ResBlock(prev, prev, dims),
            _norm(prev),
            nn.SiLU(),
            conv(dims, prev, 2 * z_channels, 3, padding=1),
        ]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [
            conv(dims, z_channels, widths[-1], 3, padding=1),
            ResBlock(widths[-1], widths[-1], dims),
        ]
        prev = widths[-1]
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(num_res_blocks):
                dec.append(ResBlock(prev, width, dims))
                prev = width
            if level > 0:
                dec += [nn.Upsample(scale_factor=scale, mode="nearest"), conv(dims, prev, prev, 3, padding=1)]
        dec += [_norm(prev), nn.SiLU(), conv(dims, prev, in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def loss(
        self, x: Tensor, kl_weight: float, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Reconstruction (L1 + MSE, per-element means) plus ``kl_weight`` * mean KL, for ``x`` in [-1, 1]."""
        posterior = self.encode(x)
        recon = self.decode(posterior.sample(generator))
        l1 = (recon - x).abs().mean()
        mse = F.mse_loss(recon, x)
        kl = posterior.kl().mean()
        total = l1 + mse + kl_weight * kl
        return total, {"loss": total.item(), "l1": l1.item(), "mse": mse.item(), "kl": kl.item()}
