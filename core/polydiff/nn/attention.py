"""Multi-head attention and the transformer block the UNet inserts between ResBlocks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from polydiff.errors import ConfigError
from polydiff.nn.embeddings import timestep_embedding
from polydiff.nn.layers import float32_on_cpu, group_norm, zero_module
from polydiff.nn.linear import Linear


@dataclass(frozen=True)
class _KeyValues:
    """One :class:`Attention`'s keys and values of a context, and the weight they were made with."""

    k: Tensor  # [B, heads, L, head_dim]
    v: Tensor
    weight: Tensor  # the module's to_kv.weight (the same object) ...
    version: int  # ... and its in-place version counter when k and v were made


@dataclass(frozen=True, eq=False)
class ContextCache:
    """Cross-attention keys and values of one fixed context, projected once for many forwards.

    Sampling calls the network tens of times with the same context; every cross-attention
    projects it to the same keys and values each time. Made by ``UNet.prepare_context(context)``
    and passed as ``context=`` instead of the tensor, the projections are made once.

    The cached values are used only where they equal what the layer would compute now: without
    autograd (a training forward recomputes them from :attr:`context`, so gradients reach
    ``to_kv``), by the module that made them (another network, e.g. an EMA copy, recomputes), with
    weights unchanged since (an optimizer step or ``load_state_dict`` bumps the weight's version)
    and in the queries' dtype (autocast).

    Attributes:
        context: ``[B, L, D]`` the context tokens (for everything else that reads them).
        entries: per cross-attention module (keyed by ``id``), its projections.
    """

    context: Tensor
    entries: dict[int, _KeyValues] = field(default_factory=dict)

    def keys_values(self, attention: Attention, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``attention``'s ``(k, v)`` ``[B, heads, L, head_dim]`` of :attr:`context`: cached or computed."""
        entry = self.entries.get(id(attention))
        weight = attention.to_kv.weight
        if (
            entry is None
            or torch.is_grad_enabled()
            or entry.weight is not weight
            or entry.version != weight._version
            or entry.k.dtype != dtype
        ):
            return attention.keys_values(self.context)
        return entry.k, entry.v

    def add(self, attention: Attention) -> None:
        """Project :attr:`context` with ``attention`` (without autograd) and keep the result."""
        with torch.no_grad():
            k, v = attention.keys_values(self.context)
        weight = attention.to_kv.weight
        self.entries[id(attention)] = _KeyValues(k, v, weight, weight._version)


def prepare_context(network: nn.Module, context: Tensor, context_dim: int | None) -> ContextCache:
    """A :class:`ContextCache` of ``context: [B, L, context_dim]`` for every ``cross_attn`` in ``network``.

    Raises :class:`~polydiff.errors.ConfigError` when the network has no cross-attention
    (``context_dim`` None) or the context is not ``[B, L, context_dim]``.
    """
    if context_dim is None:
        raise ConfigError("prepare_context() needs cross-attention; the config's context_dim is None.")
    if context.ndim != 3 or context.shape[2] != context_dim:
        raise ConfigError(
            f"context must have shape [B, L, {context_dim}] (the config's context_dim); "
            f"got {tuple(context.shape)}."
        )
    cache = ContextCache(context)
    for module in network.modules():
        if isinstance(getattr(module, "cross_attn", None), Attention):
            cache.add(module.cross_attn)
    return cache


class Attention(nn.Module):
    """Multi-head attention of ``x: [B, N, C]`` to itself or to ``context: [B, L, D]``.

    Args:
        dim: Channels ``C`` of ``x`` (and of the output).
        context_dim: Width ``D`` of the context tokens; None = self-attention only.
        head_dim: Channels per head; there are ``max(1, dim // head_dim)`` heads.
    """

    def __init__(self, dim: int, context_dim: int | None = None, head_dim: int = 32) -> None:
        super().__init__()
        self.heads = max(1, dim // head_dim)
        inner = self.heads * head_dim
        self.to_q = Linear(dim, inner, bias=False)
        self.to_kv = Linear(context_dim or dim, 2 * inner, bias=False)
        self.to_out = Linear(inner, dim)

    def keys_values(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """``context: [B, L, D] -> (k, v)``, each ``[B, heads, L, head_dim]``."""
        k, v = rearrange(self.to_kv(context), "b l (kv h d) -> kv b h l d", kv=2, h=self.heads)
        return k, v

    def forward(
        self, x: Tensor, context: Tensor | ContextCache | None = None, attn_mask: Tensor | None = None
    ) -> Tensor:
        """``x: [B, N, C]``, ``context: [B, L, D]`` (default ``x``) or its cache -> ``[B, N, C]``.

        ``attn_mask`` broadcasts to ``[B, heads, N, L]``: bool (True = attend) or an additive bias.
        """
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        if isinstance(context, ContextCache):
            k, v = context.keys_values(self, q.dtype)
        else:
            k, v = self.keys_values(x if context is None else context)
        out = scaled_dot_product_attention(q, k, v, attn_mask)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


#: Largest ``N * L`` (queries x keys per head) that low-precision CPU attention computes in float32.
CPU_FLOAT32_MAX_SCORES = 256 * 256


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """``F.scaled_dot_product_attention``; on the CPU in float32 for bfloat16 / float16 inputs up to
    :data:`CPU_FLOAT32_MAX_SCORES` scores per head.

    ``q: [B, H, N, d]``, ``k, v: [B, H, L, d]`` -> ``[B, H, N, d]`` in ``q``'s dtype. PyTorch's
    bfloat16 CPU kernel takes 1.2-4.6x the float32 kernel's time forward + backward at such lengths
    (at 1024 x 1024 it is the faster one); the casts cost little (``python bench/cpu_bf16.py``).
    """
    if float32_on_cpu(q) and q.shape[-2] * k.shape[-2] <= CPU_FLOAT32_MAX_SCORES:
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.float()
        with torch.autocast("cpu", enabled=False):  # autocast would cast the float32 inputs back
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask)
        return out.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


def _residual(h: Tensor, update: Tensor) -> Tensor:
    """``h + update``; in place without autograd (sampling), where nothing else needs ``h``
    (unless the sum needs a wider dtype than ``h``'s, e.g. under autocast)."""
    if torch.is_grad_enabled() or torch.promote_types(h.dtype, update.dtype) != h.dtype:
        return h + update
    return h.add_(update)


class RelativePositionBias(nn.Module):
    """Learned attention bias per head and frame offset (clipped at ``max_distance``).

    ``frames -> [heads, T, T]``, so any number of frames works.
    """

    def __init__(self, heads: int, max_distance: int = 32) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.bias = nn.Embedding(2 * max_distance + 1, heads)
        nn.init.zeros_(self.bias.weight)

    def forward(self, frames: int) -> Tensor:
        pos = torch.arange(frames, device=self.bias.weight.device)
        offset = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance)
        return rearrange(self.bias(offset + self.max_distance), "i j h -> h i j")


class FeedForward(nn.Sequential):
    """``[..., C] -> [..., C]``: Linear, GELU, Linear with a 4x wider hidden layer."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__(Linear(dim, mult * dim), nn.GELU(), Linear(mult * dim, dim))


class AttentionBlock(nn.Module):
    """Transformer block over the positions of ``x: [B, C, *spatial]``, residual around it.

    ``x + proj_out(block(proj_in(GN(x))))`` where ``block`` is, pre-norm and residual each:
    self-attention, (factorized video: temporal attention), cross-attention to the context
    (when ``context_dim`` is set), feed-forward. ``proj_out`` starts at zero, so a fresh block
    is the identity.

    Self-attention spans all positions, or for factorized video ``[B, C, T, H, W]`` the pixels
    of one frame (frames folded into the batch), followed by attention across the frames of
    each pixel with a learned relative position bias. The temporal attention starts at zero,
    so a fresh factorized block treats every frame independently.

    Args:
        dims: Spatial rank.
        channels: Channels of ``x``.
        head_dim: Channels per attention head.
        context_dim: Width of the context tokens; None = no cross-attention.
        norm_groups: Groups of the input GroupNorm.
        factorized: Video only: spatial then temporal attention (see above).
        frame_embedding: Factorized video only: add a sinusoidal embedding of the frame index
            (through a zero-initialised linear layer) to every token before the attention, so
            the spatial and cross-attention of each frame know which frame it is (the temporal
            positional encoding of AnimateDiff's and VideoLDM's temporal layers). Any number
            of frames works.
        frame_norm: Factorized video: input GroupNorm statistics per frame (else per clip).
    """

    def __init__(
        self,
        dims: int,
        channels: int,
        *,
        head_dim: int = 32,
        context_dim: int | None = None,
        norm_groups: int = 32,
        factorized: bool = False,
        frame_embedding: bool = False,
        frame_norm: bool = True,
    ) -> None:
        super().__init__()
        self.factorized = dims == 3 and factorized
        self.frame_embed = (
            zero_module(Linear(channels, channels)) if self.factorized and frame_embedding else None
        )
        self.norm = group_norm(channels, norm_groups, per_frame=self.factorized and frame_norm)
        self.proj_in = Linear(channels, channels)
        self.norm_self = nn.LayerNorm(channels)
        self.self_attn = Attention(channels, head_dim=head_dim)
        if self.factorized:
            self.norm_temporal = nn.LayerNorm(channels)
            self.temporal_attn = Attention(channels, head_dim=head_dim)
            zero_module(self.temporal_attn.to_out)
            self.temporal_bias = RelativePositionBias(self.temporal_attn.heads)
        self.cross_attn = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(channels)
            self.cross_attn = Attention(channels, context_dim, head_dim=head_dim)
        self.norm_ff = nn.LayerNorm(channels)
        self.ff = FeedForward(channels)
        self.proj_out = zero_module(Linear(channels, channels))

    def forward(
        self, x: Tensor, context: Tensor | ContextCache | None = None, context_mask: Tensor | None = None
    ) -> Tensor:
        """``x: [B, C, *spatial]``, ``context: [B, L, D]`` (or its cache), ``context_mask: [B, L]``
        bool -> like ``x``."""
        h = self.norm(x)
        if self.factorized:
            frames = x.shape[2]
            h = self.proj_in(rearrange(h, "b c t h w -> (b t) (h w) c"))
            if self.frame_embed is not None:  # [T, C] -> row b * T + t of the (b t) batch
                index = torch.arange(frames, device=h.device)
                pe = self.frame_embed(timestep_embedding(index, h.shape[-1]).to(h.dtype))
                h = h + pe.repeat(x.shape[0], 1).unsqueeze(1)
            h = _residual(h, self.self_attn(self.norm_self(h)))
            h = rearrange(h, "(b t) n c -> (b n) t c", t=frames)
            h = _residual(h, self.temporal_attn(self.norm_temporal(h), attn_mask=self.temporal_bias(frames)))
            h = rearrange(h, "(b n) t c -> b (t n) c", b=x.shape[0])
        else:
            h = self.proj_in(rearrange(h, "b c ... -> b (...) c"))
            h = _residual(h, self.self_attn(self.norm_self(h)))
        if self.cross_attn is not None:
            mask = None if context_mask is None else rearrange(context_mask, "b l -> b 1 1 l")
            h = _residual(h, self.cross_attn(self.norm_cross(h), context, attn_mask=mask))
        h = _residual(h, self.ff(self.norm_ff(h)))
        return x + rearrange(self.proj_out(h), "b n c -> b c n").reshape(x.shape)
