"""Euler and Heun samplers on the Karras et al. (2022) noise levels ("EDM")."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from polydiff.diffusion.gaussian import GaussianDiffusion
from polydiff.errors import ConfigError
from polydiff.samplers.base import Sampler, SamplingContext
from polydiff.validation import Rule, check_value

Denoiser = Callable[[Tensor, float], Tensor]


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. 2022, eq. 5: ``sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho``.

    Returns:
        ``[N + 1]`` float64, decreasing from ``sigma_max`` to ``sigma_min``, then a final 0.
    """
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    inv_max, inv_min = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sigmas = (inv_max + ramp * (inv_min - inv_max)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


#: Default largest noise level of the Karras samplers (Karras et al. 2022's EDM value, also
#: k-diffusion's): where the schedule reaches higher, sampling starts at this sigma instead.
DEFAULT_SIGMA_MAX = 80.0


class KarrasSampler(Sampler):
    """Shared set-up of the Karras samplers.

    They solve the probability-flow ODE in the variance-exploding parametrisation
    ``x_VE = x0 + sigma eps`` with ``sigma = sqrt((1 - abar) / abar)``, i.e.
    ``x_VE = x_VP / alpha = x_VP * sqrt(1 + sigma^2)``. The network sees
    ``x_VP = x_VE / sqrt(1 + sigma^2)`` at the fractional timestep ``t(sigma)`` found by
    interpolating ``log sigma`` over the training timesteps
    (:meth:`~polydiff.diffusion.GaussianDiffusion.sigma_to_t`, whose inverse
    ``t_to_sigma`` gives the ``alpha_t, sigma_t`` the prediction is converted with, so the
    two agree at every fractional ``t``). Noise levels follow :func:`karras_sigmas` from
    ``sigma_max`` down to the schedule's smallest sigma, then 0 (Heun stops one level short of
    ``sigma_min``, see :class:`HeunKarrasSampler`).

    Why ``sigma_max`` defaults to ``min(80, schedule's largest sigma)``: a cosine schedule
    ends at ``abar_T`` about 2e-9, below the cap
    :data:`polydiff.diffusion.gaussian.MIN_ALPHA_CUMPROD_FOR_SIGMA` (``2^-24``), so its largest
    sigma is 4096 (a zero-terminal-SNR schedule's infinite one too). The first step's x0
    estimate ``x_VE - sigma eps_hat`` then carries the network's eps error times 4096, and a
    deterministic solver never washes it out. At ``sigma = 80`` the data are already buried
    (signal-to-noise ratio ``1 / 6400``), so starting there loses nothing measurable and keeps
    the error ``50x`` smaller; this is EDM's and k-diffusion's default. Pass ``sigma_max``
    to start elsewhere (e.g. the schedule's largest sigma).

    The chain starts at the first sigma actually used: ``x_T`` is given in the VP
    parametrisation like every sampler's, read as the state at ``sigmas[0]``, so
    ``x_VE = x_T sqrt(1 + sigma_max^2)`` and the first network call is at ``t(sigma_max)``.

    Args:
        diffusion, num_steps: See :class:`~polydiff.samplers.Sampler`.
        rho: Karras' ``rho`` (7 in the paper); larger spends more steps at low noise.
        sigma_min: Smallest nonzero noise level (default: the schedule's smallest sigma).
        sigma_max: Largest noise level, where sampling starts (default None:
            ``min(DEFAULT_SIGMA_MAX, schedule's largest sigma)``). Both must lie within the
            schedule's range.
        spacing: Not applicable (the noise levels are Karras'); must be left unset.

    Attributes:
        sigmas: ``[N + 1]`` float64 VE noise levels, the last one 0.
        timesteps: ``[N]`` float64 fractional timesteps of ``sigmas[:-1]``.
    """

    def __init__(
        self,
        diffusion: GaussianDiffusion,
        num_steps: int | None = None,
        *,
        rho: float = 7.0,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        spacing: str | None = None,
        **options: Any,
    ) -> None:
        if spacing is not None:
            raise ConfigError(
                f"sampler '{self.name}' places its noise levels with Karras' rho schedule; spacing="
                f"{spacing!r} does not apply. Fix: drop spacing (or use ddim / dpmpp-2m)."
            )
        super().__init__(diffusion, num_steps, **options)
        self.spacing = "karras"
        check_value(f"sampler '{self.name}' rho", rho, float, Rule(lo=0, lo_open=True), "e.g. 7 (Karras')")
        for option, value in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
            check_value(f"sampler '{self.name}' {option}", value, float | None, Rule(lo=0, lo_open=True))
        lowest, highest = float(diffusion.log_sigmas[0].exp()), float(diffusion.log_sigmas[-1].exp())
        self.sigma_min = lowest if sigma_min is None else float(sigma_min)
        self.sigma_max = min(DEFAULT_SIGMA_MAX, highest) if sigma_max is None else float(sigma_max)
        if not lowest * (1 - 1e-6) <= self.sigma_min < self.sigma_max <= highest * (1 + 1e-6):
            raise ConfigError(
                f"sampler '{self.name}' needs {lowest:.4g} <= sigma_min < sigma_max <= {highest:.4g} "
                f"(the schedule's noise levels), got sigma_min={self.sigma_min:.4g}, "
                f"sigma_max={self.sigma_max:.4g}."
            )
        self.rho = float(rho)
        self.sigmas = self.noise_levels()
        self.timesteps = diffusion.sigma_to_t(self.sigmas[:-1])

    def noise_levels(self) -> Tensor:
        """``[N + 1]`` float64 noise levels the ``N`` steps go through, the last one 0."""
        return karras_sigmas(self.num_steps, self.sigma_min, self.sigma_max, self.rho)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_steps={self.num_steps}, rho={self.rho}, "
            f"sigma_min={self.sigma_min:.4g}, sigma_max={self.sigma_max:.4g})"
        )

    def _sample(self, x_T: Tensor, ctx: SamplingContext) -> Tensor:
        x = x_T * math.sqrt(1.0 + float(self.sigmas[0]) ** 2)  # VP -> VE at the first sigma used

        def denoise(x_ve: Tensor, sigma: float) -> Tensor:
            t = self.diffusion.sigma_to_t(torch.tensor([sigma], dtype=torch.float64))
            x0, _ = ctx.denoise(x_ve / math.sqrt(1.0 + sigma**2), self.batch_timestep(t, x_ve))
            return x0

        for i in range(self.num_steps):
            sigma, sigma_next = float(self.sigmas[i]), float(self.sigmas[i + 1])
            x_next, x0 = self.step(denoise, x, sigma, sigma_next)
            ctx.report(i, self.batch_timestep(self.timesteps[i], x), x / math.sqrt(1.0 + sigma**2), x0)
            x = x_next
        return x

    @abstractmethod
    def step(self, denoise: Denoiser, x: Tensor, sigma: float, sigma_next: float) -> tuple[Tensor, Tensor]:
        """One step from ``sigma`` to ``sigma_next`` in VE space; returns ``(x_next, x0_pred)``."""


class EulerKarrasSampler(KarrasSampler):
    """Euler solver of the probability-flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma``.

    Karras et al. 2022 (Algorithm 1 without the Heun correction); one network evaluation per step::

        d      = (x - D(x; sigma_i)) / sigma_i
        x_next = x + (sigma_{i+1} - sigma_i) d
    """

    name = "euler"

    def step(self, denoise: Denoiser, x: Tensor, sigma: float, sigma_next: float) -> tuple[Tensor, Tensor]:
        x0 = denoise(x, sigma)
        d = (x - x0) / sigma
        return x + (sigma_next - sigma) * d, x0


class HeunKarrasSampler(KarrasSampler):
    """Heun's second-order solver (Karras et al. 2022, Algorithm 1; k-diffusion's ``sample_heun``).

    Two network evaluations per step except the last, an Euler step to ``sigma = 0``
    (``2N - 1`` in all)::

        d      = (x - D(x; sigma_i)) / sigma_i
        x_e    = x + (sigma_{i+1} - sigma_i) d                         (Euler)
        d'     = (x_e - D(x_e; sigma_{i+1})) / sigma_{i+1}             (if sigma_{i+1} > 0)
        x_next = x + (sigma_{i+1} - sigma_i) (d + d') / 2

    Noise levels: the first ``N`` of the ``N + 1`` Karras levels from ``sigma_max`` to
    ``sigma_min``, then 0. So the last step goes to 0 from the level *before* ``sigma_min``,
    and no correction lands on ``sigma_min`` itself. Why: with Algorithm 1's grid (``N`` levels
    ending at ``sigma_min``, then 0) and few steps, the last Heun step spans hundreds of times
    its end noise level (3.1 -> 0.006 on a cosine schedule at ``N = 3``), where the derivative
    ``(x - D) / sigma`` changes by orders of magnitude and the trapezoid average overshoots:
    even with the exact denoiser of Gaussian data the samples' std came out 80x too large at
    ``N = 2`` and 4x at ``N = 3``, and the final Euler step from ``sigma_min`` (a wasted
    evaluation) could not undo it. Same ``2N - 1`` evaluations; as ``N`` grows the last level
    visited tends to ``sigma_min`` and the grid to Algorithm 1's.
    """

    name = "heun"

    def noise_levels(self) -> Tensor:
        grid = karras_sigmas(self.num_steps + 1, self.sigma_min, self.sigma_max, self.rho)
        return torch.cat([grid[:-2], grid[-1:]])

    def step(self, denoise: Denoiser, x: Tensor, sigma: float, sigma_next: float) -> tuple[Tensor, Tensor]:
        x0 = denoise(x, sigma)
        d = (x - x0) / sigma
        x_euler = x + (sigma_next - sigma) * d
        if sigma_next == 0:
            return x_euler, x0
        d_next = (x_euler - denoise(x_euler, sigma_next)) / sigma_next
        return x + (sigma_next - sigma) * (d + d_next) / 2, x0
