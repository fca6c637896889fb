"""The Grad-TTS text encoder: token ids -> prior mean ``mu`` per token and log-durations.

Layout follows Glow-TTS/Grad-TTS at a smaller default size: embedding, a convolutional
pre-net, post-norm transformer layers whose feed-forward blocks are convolutions (they
also carry the position information, so no positional embedding is needed), a 1x1
projection to ``n_mels`` channels, and a duration predictor on the detached encoder
output. Tensors are channels-first, ``[B, C, L]``, with a ``[B, 1, L]`` mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def sequence_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """``[B]`` lengths -> ``[B, 1, L]`` float mask (1 on valid positions)."""
    max_length = int(lengths.max()) if max_length is None else max_length
    positions = torch.arange(max_length, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).unsqueeze(1).float()


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of ``[B, C, L]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvStack(nn.Module):
    """Conv1d -> ChannelNorm -> ReLU -> Dropout, ``layers`` times, with a residual connection."""

    def __init__(self, channels: int, layers: int = 3, kernel_size: int = 5, dropout: float = 0.1):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
                ChannelNorm(channels),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            for _ in range(layers)
        )
        self.out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = x
        for block in self.blocks:
            h = block(h * mask)
        return (x + self.out(h)) * mask


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``[B, C, L]`` with a key padding mask."""

    def __init__(self, channels: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"hidden={channels} is not divisible by heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b (three h d) l -> three b h l d", three=3, h=self.heads)
        keep = mask.bool()[:, None, :, :]  # [B, 1, 1, L]: attend to real tokens only
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(rearrange(out, "b h l d -> b (h d) l"))


class EncoderLayer(nn.Module):
    """Post-norm transformer layer with a convolutional feed-forward block."""

    def __init__(self, channels: int, heads: int, ffn_channels: int, kernel_size: int, dropout: float):
        super().__init__()
        self.attention = SelfAttention(channels, heads)
        self.norm1, self.norm2 = ChannelNorm(channels), ChannelNorm(channels)
        self.ffn = nn.Sequential(
            nn.Conv1d(channels, ffn_channels, kernel_size, padding=kernel_size // 2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(ffn_channels, channels, kernel_size, padding=kernel_size // 2),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.norm1(x + self.drop(self.attention(x, mask)))
        conv1, relu, drop, conv2 = self.ffn
        # mask before each convolution: padding must not reach a real token, however long it is
        h = conv2(drop(relu(conv1(x * mask))) * mask)
        x = self.norm2(x + self.drop(h * mask))
        return x * mask


class DurationPredictor(nn.Module):
    """``[B, C, L]`` -> ``[B, L]`` log-durations (log of frames per token)."""

    def __init__(self, channels: int, hidden: int, kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        pad = kernel_size // 2
        self.net = nn.ModuleList(
            [
                nn.Conv1d(channels, hidden, kernel_size, padding=pad),
                ChannelNorm(hidden),
                nn.Conv1d(hidden, hidden, kernel_size, padding=pad),
                ChannelNorm(hidden),
            ]
        )
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Conv1d(hidden, 1, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in zip(self.net[::2], self.net[1::2]):
            x = self.drop(norm(torch.relu(conv(x * mask))))
        return (self.proj(x * mask) * mask).squeeze(1)


class TextEncoder(nn.Module):
    """Token ids -> ``(mu [B, n_mels, L], log_durations [B, L], mask [B, 1, L])``.

    Args:
        vocab_size: Embedding rows (padding id 0).
        out_channels: Channels of ``mu`` (the mel bands of the diffusion space).
        hidden, layers, heads: Transformer size.
        ffn_mult: Width of the feed-forward blocks in multiples of ``hidden``.
        kernel_size: Feed-forward convolution width.
        dropout: Dropout in the pre-net, transformer and duration predictor.
        duration_hidden: Width of the duration predictor.
    """

    def __init__(
        self,
        vocab_size: int,
        out_channels: int,
        hidden: int = 128,
        layers: int = 3,
        heads: int = 2,
        ffn_mult: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.1,
        duration_hidden: int = 128,
    ):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(vocab_size, hidden, padding_idx=0)
        nn.init.normal_(self.embed.weight, 0.0, hidden**-0.5)
        self.prenet = ConvStack(hidden, layers=3, kernel_size=5, dropout=dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(hidden, heads, ffn_mult * hidden, kernel_size, dropout) for _ in range(layers)
        )
        self.proj_mu = nn.Conv1d(hidden, out_channels, 1)
        self.duration = DurationPredictor(hidden, duration_hidden, dropout=dropout)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``ids: [B, L]`` long, ``lengths: [B]``."""
        mask = sequence_mask(lengths, ids.shape[1]).to(self.embed.weight.dtype)
        x = rearrange(self.embed(ids) * math.sqrt(self.hidden), "b l c -> b c l") * mask
        x = self.prenet(x, mask)
        for layer in self.layers:
            x = layer(x, mask)
        mu = self.proj_mu(x) * mask
        log_durations = self.duration(x.detach(), mask)
        return mu, log_durations, mask
