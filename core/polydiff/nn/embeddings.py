"""Embeddings of diffusion timesteps and, for video, of each frame."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps.

    Args:
        t: ``[B]`` timesteps, int or float.
        dim: Width of the embedding.
        max_period: Longest wavelength, in timesteps.

    Returns:
        ``[B, dim]`` float32: ``cos(t * f_i)`` then ``sin(t * f_i)`` for geometrically spaced
        frequencies ``f_i`` from 1 down to ``1 / max_period`` (zero-padded when ``dim`` is odd).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """``t: [B] -> [B, emb_dim]``: sinusoidal features of width ``channels``, then a 2-layer MLP."""

    def __init__(self, channels: int, emb_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: Tensor) -> Tensor:
        features = timestep_embedding(t, self.channels)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class FrameModulation(nn.Module):
    """A per-frame addition to the timestep embedding: ``(frames, pooled [B, D]) -> [B, T, emb_dim]``.

    ``out(SiLU(frame(sinusoid(index)) + prompt(pooled)))``: the frame index and the pooled
    prompt meet before a nonlinearity, so what a frame is told can depend on both ("moving
    left" puts the object further left in each later frame). ``out`` starts at zero, so a
    fresh module adds nothing.

    Args:
        channels: Width of the sinusoidal features of the frame index.
        emb_dim: Width of the timestep embedding it is added to.
        context_dim: Width of the pooled prompt; None = the frame index alone.
    """

    def __init__(self, channels: int, emb_dim: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.frame = nn.Linear(channels, emb_dim)
        self.prompt = (
            nn.Sequential(nn.LayerNorm(context_dim), nn.Linear(context_dim, emb_dim, bias=False))
            if context_dim is not None
            else None
        )
        self.out = nn.Linear(emb_dim, emb_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, frames: int, pooled: Tensor | None = None) -> Tensor:
        """``pooled: [B, context_dim]`` (needed iff ``context_dim`` was set) -> ``[B or 1, T, emb_dim]``."""
        index = torch.arange(frames, device=self.frame.weight.device)
        h = self.frame(timestep_embedding(index, self.channels).to(self.frame.weight.dtype)).unsqueeze(0)
        if self.prompt is not None:
            if pooled is None:
                raise ValueError("FrameModulation built with context_dim needs the pooled prompt")
            h = h + self.prompt(pooled).unsqueeze(1)
        return self.out(F.silu(h))
