"""A small KL-regularised convolutional autoencoder (the first stage of latent diffusion).

The layout follows the CompVis ``AutoencoderKL``: ResBlocks per level, stride-2
convolutions between levels (``f = 2 ** (len(channel_mult) - 1)``), the encoder predicts
the mean and log-variance of a diagonal Gaussian over ``z_channels`` latent maps, the
decoder mirrors it with nearest-neighbour upsampling. Without attention, LPIPS or a GAN,
which need downloaded weights or more compute than a CPU run affords.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8 if channels % 8 == 0 else 1, channels)


class ResBlock(nn.Module):
    """``x [B, Cin, H, W] -> [B, Cout, H, W]``: two (norm, SiLU, 3x3 conv) plus a skip."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            _norm(in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class DiagonalGaussian:
    """``N(mean, exp(logvar))`` over latents ``[B, Z, h, w]`` (log-variance clamped to [-30, 20])."""

    def __init__(self, moments: Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Reparameterised sample; ``generator`` (a CPU one) makes it reproducible on any device."""
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype)
        return self.mean + (0.5 * self.logvar).exp() * noise.to(self.mean.device)

    def kl(self) -> Tensor:
        """KL to ``N(0, I)`` per element, ``[B, Z, h, w]``."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)


class AutoencoderKL(nn.Module):
    """``encode: x [B, C, H, W] in [-1, 1] -> DiagonalGaussian over [B, Z, H/f, W/f]``;
    ``decode: z -> [B, C, H, W]``.

    Args:
        in_channels: Image channels ``C``.
        z_channels: Latent channels ``Z``.
        channels: Width of the first level.
        channel_mult: Width multiplier per level; each level but the last halves H and W.
        num_res_blocks: ResBlocks per level.
    """

    def __init__(
        self,
        in_channels: int = 3,
        z_channels: int = 4,
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 1,
    ):
        super().__init__()
        widths = [channels * m for m in channel_mult]
        self.downsample_factor = 2 ** (len(widths) - 1)

        enc: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1)]
        prev = widths[0]
        for level, width in enumerate(widths):
            for _ in range(num_res_blocks):
                enc.append(ResBlock(prev, width))
                prev = width
            if level < len(widths) - 1:
                enc.append(nn.Conv2d(prev, prev, 3, stride=2, padding=1))
        enc += [ResBlock(prev, prev), _norm(prev), nn.SiLU(), nn.Conv2d(prev, 2 * z_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [
            nn.Conv2d(z_channels, widths[-1], 3, padding=1),
            ResBlock(widths[-1], widths[-1]),
        ]
        prev = widths[-1]
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(num_res_blocks):
                dec.append(ResBlock(prev, width))
                prev = width
            if level > 0:
                dec += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(prev, prev, 3, padding=1)]
        dec += [_norm(prev), nn.SiLU(), nn.Conv2d(prev, in_channels, 3, padding=1)]
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
