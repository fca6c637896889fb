"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling")."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from polydiff.diffusion.gaussian import GaussianDiffusion
from polydiff.diffusion.timesteps import previous_timesteps
from polydiff.samplers.base import Sampler, SamplingContext


def half_log_snr(abar: float) -> float:
    """``lambda = log(alpha / sigma) = 0.5 log(abar / (1 - abar))``, infinite at ``abar`` 0 or 1."""
    if abar <= 0.0:
        return -math.inf
    if abar >= 1.0:
        return math.inf
    return 0.5 * math.log(abar / (1.0 - abar))


class DPMSolverPP2MSampler(Sampler):
    """DPM-Solver++(2M): second-order multistep solver of the probability-flow ODE, data prediction.

    Lu et al. 2022, Algorithm 2. With ``lambda = log(alpha / sigma)`` and ``h_i = lambda_s - lambda_t``
    for the step from ``t = t_{i-1}`` to ``s = t_i`` (``s = -1`` after the last visited timestep:
    ``alpha = 1``, ``sigma = 0``)::

        x0_i = denoise(x_t, t)
        D_i  = x0_i                                   (first step, and steps to s = 0 or s = -1)
        D_i  = (1 + 1/(2 r_i)) x0_i - 1/(2 r_i) x0_{i-1},  r_i = h_{i-1} / h_i   (otherwise)
        x_s  = (sigma_s / sigma_t) x_t + alpha_s (1 - exp(-h_i)) D_i

    The first-order update (``D_i = x0_i``) is exactly DDIM with ``eta = 0``. The step to clean
    data is first order because it goes to ``sigma = 0`` (``h = inf``), where the correction is
    undefined; so is the step to ``t = 0`` (visited by "leading" and "linspace" spacing), whose
    log-SNR interval dwarfs the previous one (``r << 1``), where the multistep extrapolation
    overshoots. One network evaluation per step.

    Args:
        diffusion, num_steps, spacing: See :class:`~polydiff.samplers.Sampler`.
    """

    name = "dpmpp-2m"

    def __init__(
        self,
        diffusion: GaussianDiffusion,
        num_steps: int | None = None,
        *,
        spacing: str = "leading",
        **options: Any,
    ) -> None:
        super().__init__(diffusion, num_steps, spacing=spacing, **options)

    def _sample(self, x_T: Tensor, ctx: SamplingContext) -> Tensor:
        x = x_T
        prev_t = previous_timesteps(self.timesteps).tolist()
        x0_prev: Tensor | None = None
        h_prev = math.nan
        for i, (t, (abar_t, abar_s)) in enumerate(zip(self.timesteps, self.step_alphas_cumprod())):
            t_batch = self.batch_timestep(t, x)
            x0, _ = ctx.denoise(x, t_batch)
            alpha_s, sigma_s, sigma_t = math.sqrt(abar_s), math.sqrt(1.0 - abar_s), math.sqrt(1.0 - abar_t)
            h = half_log_snr(abar_s) - half_log_snr(abar_t)
            phi = -math.expm1(-h)  # 1 - exp(-h)
            if x0_prev is None or prev_t[i] <= 0:
                denoised = x0
            else:
                half_inv_r = h / (2.0 * h_prev)  # 1 / (2 r), 0 when the previous step started at SNR 0
                denoised = (1.0 + half_inv_r) * x0 - half_inv_r * x0_prev
            x_next = (sigma_s / sigma_t) * x + (alpha_s * phi) * denoised
            ctx.report(i, t_batch, x, x0)
            x, x0_prev, h_prev = x_next, x0, h
        return x
