"""A small CNN classifier, trained on real images only, used by the checkers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SmallConvNet(nn.Module):
    """``x [B, C, H, W]`` in [0, 1] -> logits ``[B, num_classes]``; :meth:`features` gives the
    ``[B, 2 * width]`` globally max-pooled activations before the last layer (translation invariant)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x).amax(dim=(-2, -1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def random_shift(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image of ``x [B, C, H, W]`` by up to ``shift`` pixels (zero fill)."""
    if shift <= 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, len(x)), generator=generator).tolist()
    return torch.stack([p[:, y : y + h, xx : xx + w] for p, y, xx in zip(padded, dy, dx)])


def train_classifier(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    width: int = 32,
    shift: int = 0,
    seed: int = 0,
) -> SmallConvNet:
    """Fit a :class:`SmallConvNet` on ``images [N, C, H, W]`` in [0, 1] with integer ``labels [N]``
    (Adam with a one-cycle learning rate, optional random shifts of up to ``shift`` pixels;
    seeded: the same data and seed give the same network)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = SmallConvNet(images.shape[1], num_classes, width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    total = epochs * -(-len(images) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(net(random_shift(images[idx], shift, gen)), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval().requires_grad_(False)


@torch.no_grad()
def predict(net: SmallConvNet, images: Tensor, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """``images [N, C, H, W]`` in [0, 1] -> ``(labels [N], features [N, F])``."""
    labels, feats = [], []
    for start in range(0, len(images), batch_size):
        f = net.features(images[start : start + batch_size])
        feats.append(f)
        labels.append(net.head(f).argmax(dim=1))
    return torch.cat(labels), torch.cat(feats)
