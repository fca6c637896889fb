"""A rank-generic diffusion transformer: DiT (Peebles & Xie 2023) with cross-attention, 1D to 3D.

``x: [B, C, *spatial]`` is cut into non-overlapping patches (``patch_size`` per axis), each
patch becomes a token of width ``hidden_size`` plus a per-axis sinusoidal position embedding
computed from the actual grid (so any size that is a multiple of the patch works, lengths that
vary included); ``depth`` blocks of adaLN-zero self-attention, cross-attention to the context
tokens (key padding mask) and feed-forward follow; a zero-initialised adaLN linear layer maps
every token back to its patch. The conditioning contract is the UNet's:
``forward(x, t, context, context_mask, concat)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from polydiff.errors import ConfigError
from polydiff.nn.attention import Attention, ContextCache, prepare_context
from polydiff.nn.dit_config import DiTConfig
from polydiff.nn.embeddings import TimestepEmbedding, timestep_embedding
from polydiff.nn.linear import Linear
from polydiff.nn.unet import pooled

_AXES = ("a", "b", "c")  # einops names of the patch-grid axes
_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("frames", "height", "width")}


def _patch_patterns(dims: int) -> tuple[str, str]:
    """einops patterns ``[B, C, *spatial] <-> [B, N, C * prod(patch)]`` for ``dims`` axes."""
    grid = _AXES[:dims]
    within = [f"p{i}" for i in range(dims)]
    spatial = " ".join(f"({g} {p})" for g, p in zip(grid, within))
    return f"n ch {spatial}", f"n ({' '.join(grid)}) ({' '.join(within)} ch)"


def axis_position_embedding(grid: Sequence[int], dim: int, device: torch.device) -> Tensor:
    """Sinusoidal position of every patch along every axis: ``grid`` (patches per axis) -> ``[N, dim]``.

    ``dim`` is split into one even-width chunk per axis (the rest is zeros); chunk ``a`` holds the
    sinusoidal embedding of the patch's index along axis ``a`` (max period 10000, as timesteps).
    Computed from the grid each call, so it fits any size without a learned table.
    """
    chunk = dim // len(grid) // 2 * 2
    parts = []
    for axis, size in enumerate(grid):
        emb = timestep_embedding(torch.arange(size, device=device), chunk)  # [size, chunk]
        shape = [1] * len(grid)
        shape[axis] = size
        parts.append(emb.reshape(*shape, chunk).expand(*grid, chunk))
    pe = torch.cat(parts, dim=-1).reshape(-1, chunk * len(grid))
    return nn.functional.pad(pe, (0, dim - pe.shape[-1]))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``x [B, N, D] * (1 + scale [B, D]) + shift [B, D]``."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    """adaLN-zero self-attention, cross-attention (plain pre-norm residual) and MLP over ``[B, N, D]``.

    ``cond: [B, D]`` gives shift, scale and gate of the attention and the MLP through one linear
    layer that starts at zero, so a fresh block is the identity (DiT's adaLN-zero).
    """

    def __init__(self, dim: int, head_dim: int, mlp_ratio: float, context_dim: int | None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, head_dim=head_dim)
        self.cross_attn = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim, eps=1e-6)
            self.cross_attn = Attention(dim, context_dim, head_dim=head_dim)
            nn.init.zeros_(self.cross_attn.to_out.weight)
            nn.init.zeros_(self.cross_attn.to_out.bias)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(Linear(dim, hidden), nn.GELU(approximate="tanh"), Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: Tensor, cond: Tensor, context: Tensor | None, mask: Tensor | None) -> Tensor:
        """``x: [B, N, D]``, ``cond: [B, D]``, ``context: [B, L, C]``, ``mask: [B, 1, 1, L]`` bool."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norm_cross(x), context, attn_mask=mask)
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    """Diffusion transformer over ``x: [B, C, *spatial]`` with 1, 2 or 3 spatial axes.

    Same call as :class:`polydiff.nn.unet.UNet`; the prediction starts at zero (zero-initialised
    final layer and adaLN-zero blocks).
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = c = config
        self.dims = c.dims
        self.patches = c.patches
        self.out_channels = c.out_channels or c.in_channels
        d = c.hidden_size
        patch_volume = math.prod(self.patches)
        self.to_tokens, self.to_spatial = _patch_patterns(c.dims)
        self.patch_embed = Linear((c.in_channels + c.cond_channels) * patch_volume, d)
        self.time_embed = TimestepEmbedding(d, d)
        self.context_embed = None
        if c.pooled_context and c.context_dim is not None:
            self.context_embed = nn.Sequential(
                nn.LayerNorm(c.context_dim), Linear(c.context_dim, d), nn.SiLU(), Linear(d, d)
            )
            nn.init.zeros_(self.context_embed[-1].weight)
            nn.init.zeros_(self.context_embed[-1].bias)
        self.blocks = nn.ModuleList(
            DiTBlock(d, c.head_dim, c.mlp_ratio, c.context_dim) for _ in range(c.depth)
        )
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), Linear(d, 2 * d))
        self.proj_out = Linear(d, self.out_channels * patch_volume)
        for layer in (self.ada_out[1], self.proj_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def downsample_factor(self) -> int:
        """The largest patch extent: spatial sizes must be multiples of the patch along each axis."""
        return max(self.patches)

    def check_input_shape(self, spatial: Sequence[int]) -> None:
        """Raise ConfigError unless every spatial size is a positive multiple of its patch extent."""
        spatial = tuple(int(s) for s in spatial)
        names = _AXIS_NAMES[self.dims]
        if len(spatial) != self.dims:
            raise ConfigError(
                f"DiT(dims={self.dims}) expects {self.dims} spatial axes ({', '.join(names)}); got {spatial}."
            )
        problems = []
        for name, size, p in zip(names, spatial, self.patches):
            if size % p or size == 0:
                lower, upper = size // p * p, (size // p + 1) * p
                problems.append(f"{name} {size} is not a multiple of patch {p}; use {lower or upper}")
        if problems:
            raise ConfigError(
                f"input size {spatial} does not fit the DiT: {'; '.join(problems)} "
                "(or set backbone.patch_size)."
            )

    def prepare_context(self, context: Tensor) -> ContextCache:
        """Every block's cross-attention keys and values of ``context``, made once.

        As :meth:`polydiff.nn.unet.UNet.prepare_context`: pass the result as ``context=``.
        """
        return prepare_context(self, context, self.config.context_dim)

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        context: Tensor | ContextCache | None = None,
        context_mask: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        """Predict the diffusion target for ``x_t``; arguments and result as :meth:`UNet.forward`.

        ``x: [B, in_channels, *spatial]``, ``t: [B]`` or scalar, ``context: [B, L, context_dim]``,
        ``context_mask: [B, L]`` bool (True = real token), ``concat: [B, cond_channels, *spatial]``
        -> ``[B, out_channels, *spatial]``.
        """
        c = self.config
        t = torch.as_tensor(t, device=x.device)
        tokens = context.context if isinstance(context, ContextCache) else context  # [B, L, D]
        self._check_inputs(x, t, tokens, context_mask, concat)
        if concat is not None:
            x = torch.cat([x, concat.to(x.dtype)], dim=1)
        spatial = x.shape[2:]
        grid = [s // p for s, p in zip(spatial, self.patches)]
        sizes = {f"p{i}": p for i, p in enumerate(self.patches)}
        h = self.patch_embed(rearrange(x, f"{self.to_tokens} -> {self.to_spatial}", **sizes))
        h = h + axis_position_embedding(grid, h.shape[-1], x.device).to(h.dtype)
        cond = self.time_embed(t.expand(x.shape[0]) if t.ndim == 0 else t)
        mask = None
        if context is not None:
            context_mask = None if context_mask is None else context_mask.bool()
            if self.context_embed is not None:
                cond = cond + self.context_embed(pooled(tokens, context_mask))
            mask = None if context_mask is None else rearrange(context_mask, "b l -> b 1 1 l")
        for block in self.blocks:
            if c.gradient_checkpointing and self.training and torch.is_grad_enabled():
                h = checkpoint(block, h, cond, context, mask, use_reentrant=False)
            else:
                h = block(h, cond, context, mask)
        shift, scale = self.ada_out(cond).chunk(2, dim=-1)
        h = self.proj_out(modulate(self.norm_out(h), shift, scale))
        axes = {g: n for g, n in zip(_AXES, grid)}
        return rearrange(h, f"{self.to_spatial} -> {self.to_tokens}", **sizes, **axes)

    def _check_inputs(
        self, x: Tensor, t: Tensor, context: Tensor | None, context_mask: Tensor | None, concat: Tensor | None
    ) -> None:
        c = self.config
        if x.ndim != self.dims + 2 or x.shape[1] != c.in_channels:
            raise ConfigError(
                f"DiT expects x of shape [B, {c.in_channels}, {', '.join(_AXIS_NAMES[self.dims])}] "
                f"(in_channels={c.in_channels}, dims={self.dims}); got {tuple(x.shape)}."
            )
        self.check_input_shape(x.shape[2:])
        if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != x.shape[0]):
            raise ConfigError(f"t must have shape [B] = [{x.shape[0]}] or be a scalar; got {tuple(t.shape)}.")
        expected = (x.shape[0], c.cond_channels, *x.shape[2:])
        if (concat is None) != (c.cond_channels == 0) or (
            concat is not None and tuple(concat.shape) != expected
        ):
            got = None if concat is None else tuple(concat.shape)
            raise ConfigError(
                f"concat must be {expected if c.cond_channels else None} (cond_channels); got {got}."
            )
        if (context is None) != (c.context_dim is None):
            raise ConfigError(
                f"DiT built with context_dim={c.context_dim} got "
                f"{'no context' if context is None else 'a context'}; pass [B, L, context_dim] tokens iff "
                "context_dim is set."
            )
        if context is not None and (context.ndim != 3 or context.shape[::2] != (x.shape[0], c.context_dim)):
            raise ConfigError(
                f"context must have shape [{x.shape[0]}, L, {c.context_dim}]; got {tuple(context.shape)}."
            )
        if context_mask is not None and context is not None and context_mask.shape != context.shape[:2]:
            raise ConfigError(
                f"context_mask must have shape {tuple(context.shape[:2])}; got {tuple(context_mask.shape)}."
            )

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def build_dit(**options: Any) -> DiT:
    """The ``dit`` backbone component: ``DiT(DiTConfig(**options))``."""
    known = {f.name for f in dataclasses.fields(DiTConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown backbone option(s) {unknown} of 'dit'; known: {', '.join(sorted(known))}")
    return DiT(DiTConfig(**options))
