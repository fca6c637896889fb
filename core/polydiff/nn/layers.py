"""Rank-generic building bricks: convolutions, normalisation and zero initialisation.

``dims`` is the number of spatial axes of ``x: [B, C, *spatial]`` (1, 2 or 3). For video
(the space-time UNet, ``UNetConfig.spacetime``; ``x: [B, C, T, H, W]``) a *factorized* layer
treats frames as independent images, except for the explicitly temporal layers; without it
the three axes are spatial alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_CONVS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv_nd(
    dims: int, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...], **kwargs
) -> nn.Module:
    """``nn.Conv{dims}d(in_channels, out_channels, kernel_size, **kwargs)``."""
    return _CONVS[dims](in_channels, out_channels, kernel_size, **kwargs)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module`` in place and return it."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class SpaceTimeConv(nn.Module):
    """A 1xkxk convolution within each frame, then a kx1x1 convolution across frames.

    ``x: [B, C_in, T, H, W] -> [B, C_out, T, H / stride, W / stride]``. The temporal
    convolution starts as the identity (Dirac kernel), so a fresh layer treats every frame as
    an independent image and learns how to mix frames.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        k, pad = kernel_size, kernel_size // 2
        self.spatial = nn.Conv3d(
            in_channels, out_channels, (1, k, k), stride=(1, stride, stride), padding=(0, pad, pad)
        )
        self.temporal = nn.Conv3d(out_channels, out_channels, (k, 1, 1), padding=(pad, 0, 0))
        nn.init.dirac_(self.temporal.weight)
        nn.init.zeros_(self.temporal.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.spatial(x)
        # The kx1x1 convolution as a kx1 Conv2d over [B, C, T, H*W]: the same weights and result,
        # 3x faster than Conv3d's (k, 1, 1) path on the CPU (forward + backward of [8, 32, 8, 16, 16]
        # on one thread: 9.6 ms against 29.6 ms).
        conv = self.temporal
        out = F.conv2d(h.flatten(3), conv.weight.squeeze(-1), conv.bias, padding=(conv.padding[0], 0))
        return out.view(*out.shape[:3], *h.shape[3:])


def make_conv(
    dims: int,
    in_channels: int,
    out_channels: int,
    *,
    factorized: bool = False,
    stride: int = 1,
    zero_init: bool = False,
) -> nn.Module:
    """The 3-wide convolution of the UNet: ``3^dims`` or, for factorized video, :class:`SpaceTimeConv`.

    ``stride`` applies to every axis, or to space only when factorized. ``zero_init`` makes the
    layer output zeros at first (for a :class:`SpaceTimeConv`, its spatial half is zeroed, so the
    identity temporal half still passes gradients).
    """
    if dims == 3 and factorized:
        conv = SpaceTimeConv(in_channels, out_channels, stride=stride)
        if zero_init:
            zero_module(conv.spatial)
        return conv
    conv = conv_nd(dims, in_channels, out_channels, 3, stride=stride, padding=1)
    return zero_module(conv) if zero_init else conv


def num_groups(channels: int, max_groups: int) -> int:
    """The largest number of GroupNorm groups ``<= max_groups`` that divides ``channels``."""
    groups = max(1, min(max_groups, channels))
    while channels % groups:
        groups -= 1
    return groups


#: Low-precision dtypes that :class:`GroupNorm` and the attention compute in float32 on the CPU
#: (empty: as PyTorch does; the benchmark ``bench/cpu_bf16.py`` compares both).
CPU_FLOAT32_FOR: tuple[torch.dtype, ...] = (torch.bfloat16, torch.float16)


def float32_on_cpu(x: Tensor) -> bool:
    """Whether ``x`` is a CPU tensor in one of :data:`CPU_FLOAT32_FOR` (computed in float32)."""
    return x.device.type == "cpu" and x.dtype in CPU_FLOAT32_FOR


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters) that normalises channels-last bfloat16 / float16 CPU inputs
    in float32.

    ``x: [B, C, *spatial] -> like x``, in ``x``'s dtype and memory format. PyTorch's CPU GroupNorm
    of a channels-last bfloat16 tensor (what ``--precision bf16`` runs the 2-D UNet's in: autocast
    leaves GroupNorm alone) takes 3-5x the time of casting to float32, normalising and casting
    back, forward + backward; on contiguous inputs its bfloat16 kernel is the faster one and runs
    as is, as on CUDA (``python bench/cpu_bf16.py``).
    """

    def forward(self, x: Tensor) -> Tensor:
        if float32_on_cpu(x) and not x.is_contiguous():
            return super().forward(x.float()).to(x.dtype)
        return super().forward(x)


class FrameGroupNorm(GroupNorm):
    """GroupNorm of ``x: [B, C, T, H, W]`` with statistics computed per frame."""

    def forward(self, x: Tensor) -> Tensor:
        # Frames folded into the batch: [B, C, T, H, W] -> [B * T, C, H, W] and back. (Plain torch
        # ops rather than einops here: this runs in every ResBlock and einops slows torch.compile's tracing.)
        frames = x.transpose(1, 2).flatten(0, 1)
        return super().forward(frames).unflatten(0, (x.shape[0], x.shape[2])).transpose(1, 2)


def group_norm(channels: int, max_groups: int, *, per_frame: bool = False) -> GroupNorm:
    """:class:`GroupNorm`, ``max_groups`` clamped to divide ``channels``; ``per_frame``: factorized video."""
    norm = FrameGroupNorm if per_frame else GroupNorm
    return norm(num_groups(channels, max_groups), channels, eps=1e-6)
