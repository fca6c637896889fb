"""Embeddings of diffusion timesteps."""

from __future__ import annotations

import math

import torch
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
