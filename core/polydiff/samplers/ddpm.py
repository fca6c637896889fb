"""Ancestral sampling of DDPM (Ho et al. 2020), respaced as in improved-diffusion."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from polydiff.diffusion.gaussian import GaussianDiffusion
from polydiff.errors import unknown_name
from polydiff.samplers.base import Sampler, SamplingContext

VARIANCES = ("fixed_small", "fixed_large")


class DDPMSampler(Sampler):
    """DDPM ancestral sampler (Ho et al. 2020, Algorithm 2).

    From timestep ``t`` to the next visited one ``s`` (``s = -1`` after the last step,
    ``abar_{-1} = 1``), with ``beta = 1 - abar_t / abar_s`` (Nichol & Dhariwal 2021's
    respacing: the sub-sequence is a DDPM of its own)::

        x0   = denoise(x_t, t)
        mean = sqrt(abar_s) beta / (1 - abar_t) * x0 + sqrt(1 - beta) (1 - abar_s) / (1 - abar_t) * x_t
        x_s  = mean + sqrt(var) z,   z ~ N(0, I)   (no noise on the last step)

    ``var`` is the posterior variance ``beta (1 - abar_s) / (1 - abar_t)`` ("fixed_small")
    or ``beta`` ("fixed_large"); Ho et al. found both work.

    Args:
        diffusion, num_steps, spacing: See :class:`~polydiff.samplers.Sampler`.
        variance: ``"fixed_small"`` or ``"fixed_large"``.
    """

    name = "ddpm"
    stochastic = True

    def __init__(
        self,
        diffusion: GaussianDiffusion,
        num_steps: int | None = None,
        *,
        spacing: str = "leading",
        variance: str = "fixed_small",
        **options: Any,
    ) -> None:
        super().__init__(diffusion, num_steps, spacing=spacing, **options)
        if variance not in VARIANCES:
            raise unknown_name("DDPM variance", variance, VARIANCES, hint="Pass variance= to the sampler.")
        self.variance = variance

    def step_coefficients(self, abar_t: float, abar_s: float) -> tuple[float, float, float]:
        """``(coef_x0, coef_xt, variance)`` of the step from ``abar_t`` to ``abar_s``."""
        beta = 1.0 - abar_t / abar_s
        coef_x0 = math.sqrt(abar_s) * beta / (1.0 - abar_t)
        coef_xt = math.sqrt(1.0 - beta) * (1.0 - abar_s) / (1.0 - abar_t)
        variance = beta * (1.0 - abar_s) / (1.0 - abar_t) if self.variance == "fixed_small" else beta
        return coef_x0, coef_xt, variance

    def _sample(self, x_T: Tensor, ctx: SamplingContext) -> Tensor:
        x = x_T
        for i, (t, abars) in enumerate(zip(self.timesteps, self.step_alphas_cumprod())):
            t_batch = self.batch_timestep(t, x)
            x0, _ = ctx.denoise(x, t_batch)
            coef_x0, coef_xt, variance = self.step_coefficients(*abars)
            x_next = coef_x0 * x0 + coef_xt * x
            if i < self.num_steps - 1:
                x_next = x_next + math.sqrt(variance) * ctx.noise(x)
            ctx.report(i, t_batch, x, x0)
            x = x_next
        return x
