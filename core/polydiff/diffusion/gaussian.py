"""The Gaussian diffusion process, blind to what ``x`` holds.

Notation (Ho et al. 2020; Salimans & Ho 2022 for ``v``): ``abar_t`` is the cumulative
product of ``1 - beta``; ``alpha_t = sqrt(abar_t)`` and ``sigma_t = sqrt(1 - abar_t)`` so that

    x_t = alpha_t * x0 + sigma_t * eps,        eps ~ N(0, I)
    v   = alpha_t * eps - sigma_t * x0

Every tensor ``x`` is ``[B, C, *spatial]`` with any number of spatial dims; per-timestep
coefficients ``[B]`` are broadcast with :func:`expand_to`. Timesteps ``t`` are ``[B]``
int64 in ``[0, T - 1]``; floating ``t`` (used by the Karras samplers) is interpolated in
``log sigma`` between the integer ones (:meth:`GaussianDiffusion.sigma_to_t`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from polydiff.diffusion.config import DiffusionConfig
from polydiff.diffusion.schedules import make_beta_schedule, rescale_zero_terminal_snr, shift_snr
from polydiff.errors import ConfigError, unknown_name
from polydiff.training.distributed import global_count

ModelFn = Callable[[Tensor, Tensor], Tensor]
PREDICTIONS = ("eps", "x0", "v")
#: Smallest ``abar`` used when a zero-terminal-SNR schedule must be expressed as a finite
#: noise level ``sigma = sqrt((1 - abar) / abar)`` (diffusers' choice for Euler samplers).
MIN_ALPHA_CUMPROD_FOR_SIGMA = 2.0**-24


def expand_to(values: Tensor, x: Tensor) -> Tensor:
    """``values: [B]`` -> ``[B, 1, ..., 1]`` with ``x``'s rank, dtype and device."""
    return values.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


class GaussianDiffusion:
    """Forward process, parametrisation conversions, posterior and training loss.

    Buffers (float64 ``[T]``, on the CPU; cast to ``x``'s dtype and device on use):
    ``betas``, ``alphas``, ``alphas_cumprod``, ``alphas_cumprod_prev``,
    ``sqrt_alphas_cumprod``, ``sqrt_one_minus_alphas_cumprod``, ``posterior_variance``,
    ``posterior_log_variance_clipped``, ``posterior_mean_coef1``, ``posterior_mean_coef2``.

    Args:
        config: Schedule, prediction target and loss weighting.
    """

    def __init__(self, config: DiffusionConfig | None = None) -> None:
        self.config = config = config if config is not None else DiffusionConfig()
        if config.prediction not in PREDICTIONS:
            raise unknown_name(
                "prediction", config.prediction, PREDICTIONS, hint="Set DiffusionConfig.prediction."
            )
        if config.min_snr_gamma is not None and config.min_snr_gamma <= 0:
            raise ConfigError(
                f"DiffusionConfig.min_snr_gamma must be > 0 (5 is the paper's value) or None, "
                f"got {config.min_snr_gamma}."
            )
        betas = make_beta_schedule(config.schedule, config.num_timesteps, config.beta_start, config.beta_end)
        if config.snr_shift != 1.0:
            betas = shift_snr(betas, config.snr_shift)
        if config.rescale_zero_terminal_snr:
            if config.prediction == "eps":
                raise ConfigError(
                    "DiffusionConfig.rescale_zero_terminal_snr=True makes the last step pure noise, where "
                    "an eps-prediction says nothing about x0. Fix: set prediction='v' (Lin et al. 2023) "
                    "or 'x0'."
                )
            betas = rescale_zero_terminal_snr(betas)
        self._set_buffers(betas)
        self._device_cache: dict[tuple[str, torch.device], Tensor] = {}

    def _set_buffers(self, betas: Tensor) -> None:
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([betas.new_ones(1), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        # q(x_{t-1} | x_t, x0) = N(coef1 x0 + coef2 x_t, posterior_variance), Ho et al. eq. (6)-(7)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # the variance is 0 at t = 0: clip its log with the value at t = 1 (improved-diffusion)
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
            if len(betas) > 1
            else self.posterior_variance.clamp(min=1e-20)
        )
        self.posterior_mean_coef1 = betas * self.alphas_cumprod_prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (
            (1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1.0 - self.alphas_cumprod)
        )
        # log of the VE noise level sqrt((1 - abar) / abar), for fractional timesteps
        abar = self.alphas_cumprod.clamp(min=MIN_ALPHA_CUMPROD_FOR_SIGMA)
        self.log_sigmas = 0.5 * torch.log((1.0 - abar) / abar)

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    @property
    def prediction(self) -> str:
        return self.config.prediction

    def __repr__(self) -> str:
        c = self.config
        return (
            f"GaussianDiffusion(T={c.num_timesteps}, schedule={c.schedule!r}, prediction={c.prediction!r}, "
            f"zero_terminal_snr={c.rescale_zero_terminal_snr}, min_snr_gamma={c.min_snr_gamma})"
        )

    # ------------------------------------------------------------------ coefficients
    def _buffer(self, name: str, device: torch.device) -> Tensor:
        """Buffer ``name`` on ``device`` (float32 on MPS, which has no float64), cached."""
        key = (name, torch.device(device))
        if key not in self._device_cache:
            dtype = torch.float32 if key[1].type == "mps" else torch.float64
            self._device_cache[key] = getattr(self, name).to(device=key[1], dtype=dtype)
        return self._device_cache[key]

    def _timesteps(self, t: Tensor | int | float, x: Tensor) -> Tensor:
        """``t`` as a ``[B]`` tensor on ``x``'s device (ints and 0-d tensors are broadcast)."""
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ConfigError(f"timesteps must be a scalar or [B]={x.shape[0]}, got shape {tuple(t.shape)}.")
        return t

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(alpha_t, sigma_t) = (sqrt(abar_t), sqrt(1 - abar_t))``, each ``[B]`` float64.

        Integer ``t`` indexes the buffers exactly; floating ``t`` interpolates
        ``log sigma_VE`` linearly between neighbouring integers (the inverse of
        :meth:`sigma_to_t`), then ``alpha = 1 / sqrt(1 + sigma_VE^2)``.
        """
        if not t.is_floating_point():
            return self._buffer("sqrt_alphas_cumprod", t.device)[t], self._buffer(
                "sqrt_one_minus_alphas_cumprod", t.device
            )[t]
        sigma_ve = self.t_to_sigma(t)
        alpha = torch.rsqrt(1.0 + sigma_ve**2)
        return alpha, sigma_ve * alpha

    def t_to_sigma(self, t: Tensor) -> Tensor:
        """VE noise level ``sqrt((1 - abar_t) / abar_t)`` at (fractional) ``t``, interpolated in log."""
        log_sigmas = self._buffer("log_sigmas", t.device)
        t = t.to(log_sigmas.dtype).clamp(0, self.num_timesteps - 1)
        low = t.floor().long().clamp(max=self.num_timesteps - 2) if self.num_timesteps > 1 else t.long()
        high = (low + 1).clamp(max=self.num_timesteps - 1)
        w = t - low
        return torch.exp((1 - w) * log_sigmas[low] + w * log_sigmas[high])

    def sigma_to_t(self, sigma: Tensor) -> Tensor:
        """Fractional timestep whose VE noise level is ``sigma`` (k-diffusion's ``sigma_to_t``).

        Args:
            sigma: ``[K]`` positive noise levels within the schedule's range.

        Returns:
            ``[K]`` float64 timesteps in ``[0, T - 1]``.
        """
        log_sigmas = self._buffer("log_sigmas", sigma.device)
        log_sigma = sigma.to(log_sigmas.dtype).log().clamp(log_sigmas[0], log_sigmas[-1])
        high = torch.searchsorted(log_sigmas, log_sigma).clamp(1, max(self.num_timesteps - 1, 1))
        low = high - 1
        span = (log_sigmas[high] - log_sigmas[low]).clamp(min=1e-20)
        w = ((log_sigma - log_sigmas[low]) / span).clamp(0, 1)
        return (low + w).to(log_sigmas.dtype)

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio ``abar_t / (1 - abar_t)``, ``[B]`` float64."""
        alpha, sigma = self.alpha_sigma(t)
        return alpha**2 / sigma**2

    # ------------------------------------------------------------------ forward process
    def q_sample(self, x0: Tensor, t: Tensor | int, noise: Tensor) -> Tensor:
        """Sample ``x_t ~ q(x_t | x0)``: ``alpha_t x0 + sigma_t noise``. Shapes ``[B, C, *spatial]``."""
        alpha, sigma = self.alpha_sigma(self._timesteps(t, x0))
        return expand_to(alpha, x0) * x0 + expand_to(sigma, x0) * noise

    def target(self, x0: Tensor, noise: Tensor, t: Tensor | int) -> Tensor:
        """What the network is trained to output at ``x_t = q_sample(x0, t, noise)``.

        ``eps``: ``noise``; ``x0``: ``x0``; ``v``: ``alpha_t noise - sigma_t x0``.
        """
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x0
        return self.v_from(x0, noise, t)

    def v_from(self, x0: Tensor, eps: Tensor, t: Tensor | int) -> Tensor:
        """Velocity ``v = alpha_t eps - sigma_t x0`` (Salimans & Ho 2022)."""
        alpha, sigma = self.alpha_sigma(self._timesteps(t, x0))
        return expand_to(alpha, x0) * eps - expand_to(sigma, x0) * x0

    def x0_from_eps(self, x_t: Tensor, t: Tensor | int, eps: Tensor) -> Tensor:
        """``x0 = (x_t - sigma_t eps) / alpha_t``."""
        alpha, sigma = self.alpha_sigma(self._timesteps(t, x_t))
        return (x_t - expand_to(sigma, x_t) * eps) / expand_to(alpha, x_t)

    def eps_from_x0(self, x_t: Tensor, t: Tensor | int, x0: Tensor) -> Tensor:
        """``eps = (x_t - alpha_t x0) / sigma_t``."""
        alpha, sigma = self.alpha_sigma(self._timesteps(t, x_t))
        return (x_t - expand_to(alpha, x_t) * x0) / expand_to(sigma, x_t)

    def predict_x0_eps(self, x_t: Tensor, t: Tensor | int, model_out: Tensor) -> tuple[Tensor, Tensor]:
        """Turn the raw network output into ``(x0, eps)``, whatever the prediction target.

        Args:
            x_t: ``[B, C, *spatial]`` the network input.
            t: ``[B]`` timesteps (integer, or fractional for Karras samplers).
            model_out: ``[B, C, *spatial]`` the network output (eps, x0 or v).
        """
        alpha, sigma = self.alpha_sigma(self._timesteps(t, x_t))
        alpha, sigma = expand_to(alpha, x_t), expand_to(sigma, x_t)
        if self.prediction == "eps":
            return (x_t - sigma * model_out) / alpha, model_out
        if self.prediction == "x0":
            return model_out, (x_t - alpha * model_out) / sigma
        return alpha * x_t - sigma * model_out, sigma * x_t + alpha * model_out

    # ------------------------------------------------------------------ reverse process
    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor, Tensor]:
        """``q(x_{t-1} | x_t, x0)`` (Ho et al. 2020, eq. 6-7).

        Returns:
            ``(mean [B, C, *spatial], variance [B, 1, ..], log_variance_clipped [B, 1, ..])``
            with ``mean = coef1_t x0 + coef2_t x_t`` and
            ``variance = beta_t (1 - abar_{t-1}) / (1 - abar_t)``.
        """
        t = self._timesteps(t, x_t)
        coef1 = expand_to(self._buffer("posterior_mean_coef1", t.device)[t], x_t)
        coef2 = expand_to(self._buffer("posterior_mean_coef2", t.device)[t], x_t)
        variance = expand_to(self._buffer("posterior_variance", t.device)[t], x_t)
        log_variance = expand_to(self._buffer("posterior_log_variance_clipped", t.device)[t], x_t)
        return coef1 * x0 + coef2 * x_t, variance, log_variance

    # ------------------------------------------------------------------ training
    def loss_weight(self, t: Tensor) -> Tensor:
        """Per-sample weight ``[B]`` of the squared error (all ones without min-SNR).

        Min-SNR-gamma (Hang et al. 2023) weights the x0-error by ``min(SNR, gamma)``; expressed
        for the network's own target that is ``min(SNR, gamma) / SNR`` for eps,
        ``min(SNR, gamma)`` for x0 and ``min(SNR, gamma) / (SNR + 1)`` for v.
        """
        gamma = self.config.min_snr_gamma
        if gamma is None:
            return torch.ones(t.shape, dtype=torch.float64, device=t.device)
        snr = self.snr(t)
        clipped = snr.clamp(max=gamma)
        if self.prediction == "eps":
            return clipped / snr.clamp(min=1e-20)
        if self.prediction == "x0":
            return clipped
        return clipped / (snr + 1)

    def training_loss(
        self,
        model_fn: ModelFn,
        x0: Tensor,
        *,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        """Denoising loss: MSE between ``model_fn(x_t, t)`` and :meth:`target`.

        Args:
            model_fn: ``(x_t [B, C, *spatial], t [B] int64) -> [B, C, *spatial]`` raw output.
            x0: ``[B, C, *spatial]`` clean data in diffusion space.
            t: ``[B]`` timesteps; default uniform over ``[0, T - 1]``.
            noise: ``[B, C, *spatial]``; default standard normal.
            mask: ``[B, 1 or C, *spatial]`` weights (1 = real, 0 = padding); the loss is the
                mean over masked elements. Under DDP the mean is over the masked elements of
                the *global* batch: the divisor is
                :func:`polydiff.training.distributed.global_count` of this rank's count (this
                rank's own count outside :func:`~polydiff.training.distributed.global_loss_counts`).
            generator: Draws ``t`` and ``noise`` (on the generator's device, then moved).
            reduction: ``"mean"`` (scalar) or ``"none"`` (``[B]``, one loss per sample).

        Returns:
            A scalar float32 loss, or ``[B]`` with ``reduction="none"``.
        """
        if reduction not in ("mean", "none"):
            raise unknown_name("reduction", reduction, ("mean", "none"))
        batch = x0.shape[0]
        draw_device = generator.device if generator is not None else x0.device
        if t is None:
            t = torch.randint(0, self.num_timesteps, (batch,), generator=generator, device=draw_device)
        t = self._timesteps(t, x0)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=draw_device, dtype=x0.dtype)
        noise = noise.to(x0.device)
        x_t = self.q_sample(x0, t, noise)
        out = model_fn(x_t, t)
        target = self.target(x0, noise, t)
        if out.shape != target.shape:
            raise ConfigError(
                f"the model output has shape {tuple(out.shape)} but the diffusion target has "
                f"{tuple(target.shape)}. Fix: make the network's out_channels equal the data channels."
            )
        sq_err = (out.float() - target.float()) ** 2
        weight = expand_to(self.loss_weight(t), sq_err)
        dims = tuple(range(1, sq_err.ndim))
        if mask is None:
            per_sample_sum = (sq_err * weight).sum(dims)
            count = torch.full((batch,), float(sq_err[0].numel()), device=sq_err.device)
        else:
            if mask.ndim != x0.ndim or mask.shape[0] != batch or mask.shape[2:] != x0.shape[2:]:
                expected = (batch, 1, *x0.shape[2:])
                raise ConfigError(
                    f"loss mask must be [B, 1 or C, *spatial] = {expected}, got {tuple(mask.shape)}. "
                    "Fix the conditioner's loss_mask."
                )
            mask = mask.to(device=sq_err.device, dtype=sq_err.dtype).expand_as(sq_err)
            per_sample_sum = (sq_err * weight * mask).sum(dims)
            count = mask.sum(dims)
        if reduction == "none":
            return per_sample_sum / count.clamp(min=1e-8)
        # every rank reduces its count, masked or not, so the collectives always match
        return per_sample_sum.sum() / global_count(count.sum()).clamp(min=1e-8)
