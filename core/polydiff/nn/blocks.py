"""Convolutional blocks of the UNet: residual block and 2x down/upsampling, for any rank."""

from __future__ import annotations

import torch
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
        # Without autograd (sampling) the activations are overwritten in place: no new buffers.
        inplace = not torch.is_grad_enabled()
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        mod = self.emb_proj(emb)  # [B, 2C] or, per frame, [B, T, 2C]
        if mod.ndim == 3:
            mod = mod.transpose(1, 2)
        scale, shift = append_dims(mod, self.dims + 2 - mod.ndim).chunk(2, dim=1)
        # GN(h) * (1 + scale) + shift, as two ops: faster than torch.addcmul on the CPU
        h = self.norm2(h)
        if inplace and torch.promote_types(h.dtype, mod.dtype) == h.dtype:
            h = h.mul_(1 + scale).add_(shift)
        else:
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h, inplace=inplace)))
        # conv2's output is not needed by its backward, so the residual is added in place (unless the
        # sum needs a wider dtype than h's, e.g. under autocast).
        skip = self.skip(x)
        return h.add_(skip) if torch.promote_types(h.dtype, skip.dtype) == h.dtype else h + skip


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
        return self.conv(upsample_nearest(x, self.scale))


class _NearestUpsample(torch.autograd.Function):
    """Nearest-neighbour upsampling by integer factors: ``repeat_interleave`` forward (several times
    faster on the CPU than ``F.interpolate``'s nearest kernel for NCHW), ``F.interpolate``'s backward."""

    @staticmethod
    def forward(x: Tensor, factors: tuple[int, ...]) -> Tensor:
        out = x
        for axis, factor in enumerate(factors, start=2):
            if factor != 1:
                out = out.repeat_interleave(factor, dim=axis)
        return out

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        x, factors = inputs
        ctx.factors, ctx.input_size = factors, tuple(x.shape)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[no-untyped-def]
        backward = _NEAREST_BACKWARD[len(ctx.factors)]
        scales = [float(f) for f in ctx.factors]
        return backward(grad.contiguous(), list(grad.shape[2:]), list(ctx.input_size), *scales), None


_NEAREST_BACKWARD = {
    1: torch.ops.aten.upsample_nearest1d_backward,
    2: torch.ops.aten.upsample_nearest2d_backward,
    3: torch.ops.aten.upsample_nearest3d_backward,
}


def upsample_nearest(x: Tensor, scale: int | tuple[int, ...]) -> Tensor:
    """``F.interpolate(x, scale_factor=scale, mode="nearest")`` for integer factors, faster on the CPU.

    ``x: [B, C, *spatial]`` -> ``[B, C, *(spatial * scale)]``, the same values (each input element
    repeated), the same gradient.
    """
    factors = (scale,) * (x.ndim - 2) if isinstance(scale, int) else tuple(scale)
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return F.interpolate(x, scale_factor=factors, mode="nearest")  # its NHWC kernel is the fast one
    return _NearestUpsample.apply(x, factors)
