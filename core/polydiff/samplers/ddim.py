"""Denoising diffusion implicit models (Song et al. 2021)."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from polydiff.diffusion.gaussian import GaussianDiffusion
from polydiff.errors import ConfigError
from polydiff.samplers.base import Sampler, SamplingContext


class DDIMSampler(Sampler):
    """DDIM sampler (Song et al. 2021, eq. 12).

    From timestep ``t`` to the next visited one ``s`` (``abar_{-1} = 1`` after the last step)::

        x0, eps = denoise(x_t, t)
        sigma   = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)
        x_s     = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma z,   z ~ N(0, I)

    ``eta = 0`` is deterministic (the probability-flow ODE's first-order solver);
    ``eta = 1`` is DDPM's ancestral sampler with the posterior variance.

    Args:
        diffusion, num_steps, spacing: See :class:`~polydiff.samplers.Sampler`.
        eta: Amount of fresh noise per step, ``>= 0``.
    """

    name = "ddim"
    stochastic = False  # with the default eta = 0; an instance with eta > 0 says True

    def __init__(
        self,
        diffusion: GaussianDiffusion,
        num_steps: int | None = None,
        *,
        spacing: str = "leading",
        eta: float = 0.0,
        **options: Any,
    ) -> None:
        super().__init__(diffusion, num_steps, spacing=spacing, **options)
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0):
            raise ConfigError(
                f"DDIM eta must be finite and >= 0 (0 = deterministic, 1 = DDPM-like), got {eta}."
            )
        self.eta = float(eta)
        self.stochastic = self.eta > 0

    def __repr__(self) -> str:
        return f"DDIMSampler(num_steps={self.num_steps}, spacing={self.spacing!r}, eta={self.eta})"

    def step_coefficients(self, abar_t: float, abar_s: float) -> tuple[float, float, float]:
        """``(coef_x0, coef_eps, sigma)`` of the step from ``abar_t`` to ``abar_s``."""
        sigma = self.eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
        return math.sqrt(abar_s), math.sqrt(max(1 - abar_s - sigma**2, 0.0)), sigma

    def _sample(self, x_T: Tensor, ctx: SamplingContext) -> Tensor:
        x = x_T
        for i, (t, abars) in enumerate(zip(self.timesteps, self.step_alphas_cumprod())):
            t_batch = self.batch_timestep(t, x)
            x0, eps = ctx.denoise(x, t_batch)
            coef_x0, coef_eps, sigma = self.step_coefficients(*abars)
            x_next = coef_x0 * x0 + coef_eps * eps
            if sigma > 0:
                x_next = x_next + sigma * ctx.noise(x)
            ctx.report(i, t_batch, x, x0)
            x = x_next
        return x
