"""A small MLP trained with ``GaussianDiffusion.training_loss`` learns a 2-D Gaussian mixture."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from polydiff.diffusion import DiffusionConfig, GaussianDiffusion
from polydiff.samplers import DDIMSampler, DPMSolverPP2MSampler

MODES = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
MODE_STD = 0.1


def sample_mixture(n: int, generator: torch.Generator) -> Tensor:
    """``[n, 2, 1]``: 2 channels, one spatial position."""
    modes = MODES[torch.randint(0, len(MODES), (n,), generator=generator)]
    return (modes + MODE_STD * torch.randn(n, 2, generator=generator)).unsqueeze(-1)


class TinyDenoiser(nn.Module):
    """MLP over ``(x_t, sinusoidal features of t)``; ``x_t: [B, 2, 1]``, ``t: [B]``."""

    def __init__(self, num_timesteps: int, width: int = 64, num_freqs: int = 8) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(100.0), num_freqs)))
        self.net = nn.Sequential(
            nn.Linear(2 + 2 * num_freqs, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, 2),
        )

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        phase = (t.float() / self.num_timesteps)[:, None] * self.freqs
        features = torch.cat([x_t.squeeze(-1), phase.sin(), phase.cos()], dim=1)
        return self.net(features).unsqueeze(-1)


def mixture_scores(samples: Tensor) -> tuple[float, float]:
    """(mean distance to the nearest mode, smallest share of samples that any mode gets)."""
    dist = torch.cdist(samples.squeeze(-1), MODES)
    nearest = dist.min(dim=1)
    shares = torch.bincount(nearest.indices, minlength=len(MODES)).float() / len(samples)
    return nearest.values.mean().item(), shares.min().item()


def test_tiny_model_learns_a_gaussian_mixture() -> None:
    torch.manual_seed(0)
    config = DiffusionConfig(num_timesteps=200, schedule="cosine", prediction="x0", min_snr_gamma=5.0)
    diffusion = GaussianDiffusion(config)
    model = TinyDenoiser(diffusion.num_timesteps)
    data_gen = torch.Generator().manual_seed(1)
    samplers = [DPMSolverPP2MSampler(diffusion, 20), DDIMSampler(diffusion, 50)]

    def draw() -> list[Tensor]:
        with torch.no_grad():
            return [
                s.sample(model, (1000, 2, 1), generator=torch.Generator().manual_seed(2)) for s in samplers
            ]

    untrained = [mixture_scores(x) for x in draw()]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(1000):
        loss = diffusion.training_loss(model, sample_mixture(128, data_gen), generator=data_gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-100:]) < 0.5 * sum(losses[:100])

    # a perfect model gives ~ MODE_STD * sqrt(pi / 2) = 0.125 and a share of 0.25 per mode
    for (dist, min_share), (untrained_dist, _) in zip(map(mixture_scores, draw()), untrained):
        assert dist < 0.2 and dist < untrained_dist / 3, (dist, untrained_dist)
        assert min_share > 0.15, "every one of the 4 modes gets samples"
