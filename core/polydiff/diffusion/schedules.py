"""Noise schedules: ``beta_t`` for ``t = 0 .. T-1``.

Every function returns a float64 tensor ``[T]``; :class:`~polydiff.diffusion.GaussianDiffusion`
derives ``alpha_t = 1 - beta_t`` and ``abar_t = prod_{s<=t} alpha_s`` from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from polydiff.errors import ConfigError, unknown_name

#: Largest beta of the cosine schedule (Nichol & Dhariwal 2021 clip at 0.999 to avoid
#: a singularity at ``t = T``).
COSINE_MAX_BETA = 0.999
#: Offset ``s`` of the cosine schedule, so that ``beta_0`` is not vanishingly small.
COSINE_OFFSET = 0.008


def _linear(num_timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """DDPM (Ho et al. 2020): betas evenly spaced from ``beta_start`` to ``beta_end``."""
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def _scaled_linear(num_timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """Latent/Stable Diffusion: ``sqrt(beta)`` evenly spaced, then squared.

    With the default ends (0.00085, 0.012) at ``T = 1000`` these are Stable Diffusion's betas
    (diffusers' ``beta_schedule="scaled_linear"``): ``linspace(sqrt(0.00085), sqrt(0.012), T) ** 2``.
    """
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float64) ** 2


def _cosine(num_timesteps: int, beta_start: float | None, beta_end: float | None) -> Tensor:
    """Nichol & Dhariwal 2021: ``abar(t) = f(t) / f(0)``, ``f(t) = cos^2((t/T + s) / (1 + s) * pi/2)``.

    ``beta_t = min(1 - abar(t+1) / abar(t), 0.999)``; ``beta_start``/``beta_end`` are unused.
    """
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=COSINE_MAX_BETA)


#: Ends ``(start, end)`` and temperature ``tau`` of the continuous sigmoid schedule (Jabri et al.
#: 2023; the defaults of ``sigmoid_beta_schedule`` in lucidrains' denoising-diffusion-pytorch).
SIGMOID_START, SIGMOID_END, SIGMOID_TAU = -3.0, 3.0, 1.0


def _sigmoid(num_timesteps: int, beta_start: float | None, beta_end: float | None) -> Tensor:
    """Sigmoid schedule; which one depends on whether ``beta_start``/``beta_end`` are set.

    Unset (the default): Jabri et al. 2023 ("Scalable adaptive computation", the schedule of
    lucidrains' ``sigmoid_beta_schedule``), defined on continuous ``t in [0, 1]`` so every ``T``
    samples the same ``abar`` curve::

        abar(t) = (sigmoid(e / tau) - sigmoid((t (e - s) + s) / tau)) / (sigmoid(e / tau) - sigmoid(s / tau))
        beta_t  = min(1 - abar((t+1)/T) / abar(t/T), 0.999)

    with ``s, e, tau = -3, 3, 1``; ``abar(1) = 0``, so the last beta is the cap (as cosine).

    Set: GeoDiff (Xu et al. 2022), the former ``sigmoid``, kept unchanged for checkpoints that
    store ``beta_start``/``beta_end``: ``beta_t = beta_start + (beta_end - beta_start) *
    sigmoid(u_t)``, ``u`` evenly spaced on ``[-6, 6]``. Its ends are *not* scaled with ``T``
    (at ``T = 100`` with 1e-4..0.02 it ends at ``abar_T = 0.36``); leave them unset for new runs.
    """
    if beta_start is not None and beta_end is not None:
        u = torch.linspace(-6, 6, num_timesteps, dtype=torch.float64)
        return torch.sigmoid(u) * (beta_end - beta_start) + beta_start
    t = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    s, e, tau = SIGMOID_START, SIGMOID_END, SIGMOID_TAU
    v_start, v_end = 1 / (1 + math.exp(-s / tau)), 1 / (1 + math.exp(-e / tau))
    abar = (v_end - torch.sigmoid((t * (e - s) + s) / tau)) / (v_end - v_start)
    abar = abar / abar[0]
    return (1 - abar[1:] / abar[:-1]).clamp(min=0, max=COSINE_MAX_BETA)


SCHEDULES: dict[str, Callable[..., Tensor]] = {
    "linear": _linear,
    "scaled_linear": _scaled_linear,
    "cosine": _cosine,
    "sigmoid": _sigmoid,
}


#: Schedules whose ``beta_start``/``beta_end`` are quoted for T = 1000 and scaled by 1000 / T.
BETAS_QUOTED_FOR_1000 = ("linear", "scaled_linear")

#: ``(beta_start, beta_end)`` a schedule uses when they are left unset (None), quoted for
#: T = 1000: DDPM's for ``linear``, Stable Diffusion's for ``scaled_linear``. ``sigmoid``
#: without them is the continuous schedule of Jabri et al.; with only one of them set, the
#: other takes ``linear``'s value (the former defaults of every schedule).
DEFAULT_BETAS: dict[str, tuple[float, float]] = {
    "linear": (1e-4, 0.02),
    "scaled_linear": (0.00085, 0.012),
}


def make_beta_schedule(
    name: str, num_timesteps: int, beta_start: float | None = None, beta_end: float | None = None
) -> Tensor:
    """Betas of the schedule ``name``.

    Args:
        name: ``"linear"``, ``"scaled_linear"``, ``"cosine"`` or ``"sigmoid"``.
        num_timesteps: ``T``.
        beta_start, beta_end: Ends of the linear-type schedules (ignored by ``"cosine"``); None
            means the schedule's own (:data:`DEFAULT_BETAS`; for ``"sigmoid"``: its continuous
            form, see :func:`_sigmoid`). For ``"linear"`` and ``"scaled_linear"`` they are
            quoted for ``T = 1000`` and scaled by ``1000 / T`` (improved-diffusion's convention),
            so a shorter chain still ends in noise; ``"sigmoid"``'s set ends are GeoDiff's,
            unscaled, as before.

    Returns:
        ``[T]`` float64 betas in ``(0, 1)``.
    """
    if name not in SCHEDULES:
        raise unknown_name("schedule", name, SCHEDULES, hint="Set DiffusionConfig.schedule to one of them.")
    if num_timesteps < 1:
        raise ConfigError(f"DiffusionConfig.num_timesteps must be >= 1, got {num_timesteps}.")
    if name == "cosine" or (name == "sigmoid" and beta_start is None and beta_end is None):
        return SCHEDULES[name](num_timesteps, None, None)
    default_start, default_end = DEFAULT_BETAS.get(name, DEFAULT_BETAS["linear"])
    beta_start = default_start if beta_start is None else float(beta_start)
    beta_end = default_end if beta_end is None else float(beta_end)
    if not 0 < beta_start <= beta_end < 1:
        raise ConfigError(
            f"schedule '{name}' needs 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, "
            f"beta_end={beta_end}. Fix DiffusionConfig.beta_start / beta_end (or leave both unset)."
        )
    if name in BETAS_QUOTED_FOR_1000:
        # Betas are quoted for T = 1000; scale them so that any T noises as far (abar_T ~ 4e-5
        # for linear), as improved-diffusion does. Without this, T = 100 would end at abar_T =
        # 0.37 and sampling from N(0, I) would start far from anything seen in training.
        scale = 1000 / num_timesteps
        beta_start, beta_end = (
            min(beta_start * scale, COSINE_MAX_BETA),
            min(beta_end * scale, COSINE_MAX_BETA),
        )
    return SCHEDULES[name](num_timesteps, beta_start, beta_end)


def shift_snr(betas: Tensor, shift: float) -> Tensor:
    """Divide every step's SNR by ``shift ** 2``: more noise at each t for larger data.

    The shifted schedule of simple diffusion (Hoogeboom et al. 2023: ``logSNR - 2 log(shift)``)
    and Stable Diffusion 3's timestep shift. The larger (or more redundant: many frames of one
    scene) the data, the more of its layout survives a given noise level, so the steps where the
    prompt decides the layout become rarer; shifting puts them back into the training and
    sampling steps. ``shift = 1`` is the identity.

    Args:
        betas: ``[T]`` betas.
        shift: Positive factor on the noise standard deviation relative to the signal's.

    Returns:
        ``[T]`` float64 betas with ``abar' = abar / (abar + shift^2 (1 - abar))``.
    """
    if shift <= 0:
        raise ConfigError(f"DiffusionConfig.snr_shift must be > 0 (1 = no shift), got {shift}.")
    abar = torch.cumprod(1 - betas.to(torch.float64), dim=0)
    abar = abar / (abar + shift**2 * (1 - abar))
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1 - alphas


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Rescale ``betas`` so that the last step has zero SNR (Lin et al. 2023, Algorithm 1).

    ``sqrt(abar)`` is shifted so its last value is 0 and scaled so its first value is
    unchanged; betas are recomputed from the result (the last beta becomes 1). Pair this
    with ``prediction="v"`` (or ``"x0"``) and ``"trailing"`` spacing, as the paper advises.

    Args:
        betas: ``[T]`` betas.

    Returns:
        ``[T]`` float64 betas with ``abar_{T-1} = 0`` and the same ``abar_0``.
    """
    betas = betas.to(torch.float64)
    sqrt_abar = torch.cumprod(1 - betas, dim=0).sqrt()
    first, last = sqrt_abar[0].clone(), sqrt_abar[-1].clone()
    sqrt_abar = (sqrt_abar - last) * first / (first - last)
    abar = sqrt_abar**2
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1 - alphas
