"""A small convolutional classifier of any rank (1-D signals, 2-D images or mels, 3-D clips),
trained on real items only; its penultimate layer is the feature space of the Frechet distance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
ADAPTIVE = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


class CaptionNet(nn.Module):
    """``x [B, C, *S]`` (``len(S) == rank``) -> logits ``[B, K]``; :meth:`features` gives ``[B, dim]``.

    Four 3-wide convolutions (one max-pool halving every axis), then the activations averaged over
    two cells per axis (so coarse positions survive) and a linear layer to ``dim`` features.
    """

    def __init__(self, rank: int, in_channels: int, num_outputs: int, width: int = 24, dim: int = 64):
        super().__init__()
        if rank not in CONV:
            raise ValueError(f"CaptionNet supports ranks 1, 2 and 3, not {rank}")
        conv = CONV[rank]
        self.rank = rank
        self.body = nn.Sequential(
            conv(in_channels, width, 3, padding=1),
            nn.ReLU(),
            conv(width, width, 3, padding=1),
            nn.ReLU(),
            POOL[rank](2, ceil_mode=True),
            conv(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            conv(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
        )
        self.project = nn.Sequential(nn.Linear(2 * width * 2**rank, dim), nn.ReLU())
        self.head = nn.Linear(dim, num_outputs)

    def features(self, x: Tensor) -> Tensor:
        h = ADAPTIVE[self.rank](self.body(x), 2)
        return self.project(h.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def random_shift(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Roll every item of ``x [B, C, *S]`` by up to ``shift`` steps along each axis of ``S``
    (one offset per batch: cheap augmentation against exact-position memorisation)."""
    if shift <= 0:
        return x
    offsets = torch.randint(-shift, shift + 1, (x.ndim - 2,), generator=generator).tolist()
    return torch.roll(x, offsets, dims=tuple(range(2, x.ndim)))


def train_caption_net(
    x: Tensor,
    target: Tensor,
    *,
    multi_label: bool,
    num_outputs: int,
    steps: int = 400,
    batch_size: int = 32,
    lr: float = 2e-3,
    width: int = 24,
    shift: int = 1,
    seed: int = 0,
) -> CaptionNet:
    """Fit a :class:`CaptionNet` on normalised ``x [N, C, *S]`` with ``target`` (long ``[N]`` or
    float ``[N, K]`` when ``multi_label``) for ``steps`` Adam steps (one-cycle learning rate).
    Seeded: the same data and seed give the same network. Runs on ``x``'s device."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CaptionNet(x.ndim - 2, x.shape[1], num_outputs, width).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=gen).to(x.device)
        logits = net(random_shift(x[idx], shift, gen))
        if multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, target[idx])
        else:
            loss = F.cross_entropy(logits, target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def logits_and_features(net: CaptionNet, x: Tensor, batch_size: int = 128) -> tuple[Tensor, Tensor]:
    """``x [N, C, *S]`` -> ``(logits [N, K], features [N, dim])`` on the CPU."""
    logits, feats = [], []
    for start in range(0, len(x), batch_size):
        f = net.features(x[start : start + batch_size])
        feats.append(f.cpu())
        logits.append(net.head(f).cpu())
    return torch.cat(logits), torch.cat(feats)
