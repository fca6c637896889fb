"""Multi-head attention and the transformer block the UNet inserts between ResBlocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from polydiff.nn.embeddings import timestep_embedding
from polydiff.nn.layers import group_norm, zero_module


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
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: Tensor, context: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        """``x: [B, N, C]``, ``context: [B, L, D]`` (default ``x``) -> ``[B, N, C]``.

        ``attn_mask`` broadcasts to ``[B, heads, N, L]``: bool (True = attend) or an additive bias.
        """
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(
            self.to_kv(x if context is None else context), "b l (kv h d) -> kv b h l d", kv=2, h=self.heads
        )
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


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
        super().__init__(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))


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
            zero_module(nn.Linear(channels, channels)) if self.factorized and frame_embedding else None
        )
        self.norm = group_norm(channels, norm_groups, per_frame=self.factorized and frame_norm)
        self.proj_in = nn.Linear(channels, channels)
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
        self.proj_out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None) -> Tensor:
        """``x: [B, C, *spatial]``, ``context: [B, L, D]``, ``context_mask: [B, L]`` bool -> like ``x``."""
        h = self.norm(x)
        if self.factorized:
            frames = x.shape[2]
            h = self.proj_in(rearrange(h, "b c t h w -> (b t) (h w) c"))
            if self.frame_embed is not None:  # [T, C] -> row b * T + t of the (b t) batch
                index = torch.arange(frames, device=h.device)
                pe = self.frame_embed(timestep_embedding(index, h.shape[-1]).to(h.dtype))
                h = h + pe.repeat(x.shape[0], 1).unsqueeze(1)
            h = h + self.self_attn(self.norm_self(h))
            h = rearrange(h, "(b t) n c -> (b n) t c", t=frames)
            h = h + self.temporal_attn(self.norm_temporal(h), attn_mask=self.temporal_bias(frames))
            h = rearrange(h, "(b n) t c -> b (t n) c", b=x.shape[0])
        else:
            h = self.proj_in(rearrange(h, "b c ... -> b (...) c"))
            h = h + self.self_attn(self.norm_self(h))
        if self.cross_attn is not None:
            mask = None if context_mask is None else rearrange(context_mask, "b l -> b 1 1 l")
            h = h + self.cross_attn(self.norm_cross(h), context, attn_mask=mask)
        h = h + self.ff(self.norm_ff(h))
        return x + rearrange(self.proj_out(h), "b n c -> b c n").reshape(x.shape)
