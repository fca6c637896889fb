"""Convolutional blocks of the UNet: residual block and 2x down/upsampling, for any rank."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.nn.layers import conv_nd, group_norm, make_conv


def append_dims(v: Tensor, n: int) -> Tensor:
    """``v: [B, C] -> [B, C, 1, ..., 1]`` with ``n`` trailing singleton axes."""
    return v.reshape(v.shape + (1,) * n)


class ResBlock(nn.Module):
    """Residual block conditioned on the timestep embedding by scale and shift (AdaGN).

    ``x: [B, C_in, *spatial], emb: [B, emb_dim] -> [B, C_out, *spatial]``; for video ``emb``
    may also be ``[B, T, emb_dim]``, one per frame of ``x: [B, C_in, T, H, W]``::

        h = conv(SiLU(GN(x)))
        h = conv(dropout(SiLU(GN(h) * (1 + scale) + shift)))    # zero-initialised conv
        return skip(x) + h                                      # 1x1 conv when C_in != C_out

    Args:
        dims: Spatial rank.
        in_channels, out_channels: Channels of input and output.
        emb_dim: Width of the timestep embedding.
        dropout: Dropout before the last convolution.
        norm_groups: GroupNorm groups (clamped to divide the channels).
        factorized: Video only: :class:`~polydiff.nn.layers.SpaceTimeConv` and, with
            ``frame_norm``, GroupNorm statistics per frame rather than per clip.
        frame_norm: See ``factorized``.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        emb_dim: int,
        *,
        dropout: float = 0.0,
        norm_groups: int = 32,
        factorized: bool = False,
        frame_norm: bool = True,
    ) -> None:
        super().__init__()
        self.dims = dims
        self.norm1 = group_norm(in_channels, norm_groups, per_frame=factorized and frame_norm)
        self.conv1 = make_conv(dims, in_channels, out_channels, factorized=factorized)
        self.emb_proj = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_channels))
        self.norm2 = group_norm(out_channels, norm_groups, per_frame=factorized and frame_norm)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = make_conv(dims, out_channels, out_channels, factorized=factorized, zero_init=True)
        self.skip = (
            nn.Identity() if in_channels == out_channels else conv_nd(dims, in_channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        mod = self.emb_proj(emb)  # [B, 2C] or, per frame, [B, T, 2C]
        if mod.ndim == 3:
            mod = mod.transpose(1, 2)
        scale, shift = append_dims(mod, self.dims + 2 - mod.ndim).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided convolution ``[B, C, *spatial] -> [B, C, *spatial / 2]`` (factorized video: space only)."""

    def __init__(self, dims: int, channels: int, *, factorized: bool = False) -> None:
        super().__init__()
        self.conv = make_conv(dims, channels, channels, factorized=factorized, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest 2x upsampling then a convolution (factorized video: space only)."""

    def __init__(self, dims: int, channels: int, *, factorized: bool = False) -> None:
        super().__init__()
        self.scale: int | tuple[int, ...] = (1, 2, 2) if dims == 3 and factorized else 2
        self.conv = make_conv(dims, channels, channels, factorized=factorized)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode="nearest"))
