"""The sampler contract shared by every reverse-process solver.

A sampler turns a denoiser ``model_fn(x_t [B, C, *spatial], t [B]) -> raw output`` into
samples. :meth:`Sampler.sample` does what all samplers share: the seeded initial noise,
device/dtype handling, turning the raw output into ``(x0, eps)`` with optional clipping,
progress and callbacks. Subclasses write only their update rule in :meth:`Sampler._sample`.

Randomness: the initial noise and every per-step noise are drawn on the CPU from the
given ``generator`` and then moved to the device, so a seed gives the same samples on
any device (up to floating-point differences of the network itself).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from polydiff.diffusion.gaussian import GaussianDiffusion, ModelFn
from polydiff.diffusion.timesteps import previous_timesteps, spaced_timesteps
from polydiff.errors import ConfigError
from polydiff.validation import Rule, check_value

#: ``callback(step_index, t, x_t, x0_pred)``: ``x_t`` is the state the step started from
#: (the network input at timestep ``t``) and ``x0_pred`` the network's estimate of x0 from it.
Callback = Callable[[int, Tensor, Tensor, Tensor], None]


@dataclass
class SamplingContext:
    """What a sampler's update rule may call, prepared by :meth:`Sampler.sample`.

    Attributes:
        denoise: ``(x_t [B, C, *s], t [B]) -> (x0, eps)`` from the network, with ``x0``
            clipped/thresholded as requested and ``eps`` made consistent with it.
        noise: ``(like) -> N(0, I)`` shaped like ``like``, drawn from the seeded CPU generator.
        report: ``(step_index, t [B], x_t, x0) -> None``: advance the progress bar and call
            the user's callback.
    """

    denoise: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    noise: Callable[[Tensor], Tensor]
    report: Callable[[int, Tensor, Tensor, Tensor], None]


def dynamic_threshold_x0(x0: Tensor, percentile: float) -> Tensor:
    """Imagen's dynamic thresholding (Saharia et al. 2022).

    ``s`` = the ``percentile`` quantile of ``|x0|`` per sample, at least 1; ``x0`` is clamped
    to ``[-s, s]`` and divided by ``s``. ``x0: [B, C, *spatial]``.
    """
    flat = x0.abs().reshape(x0.shape[0], -1).float()
    s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).to(x0.dtype)
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s


class Sampler(ABC):
    """Base class of samplers.

    Args:
        diffusion: The process the network was trained with.
        num_steps: Sampling steps ``N`` (default: all ``T`` training steps).
        spacing: Which training timesteps are visited: ``"leading"``, ``"trailing"`` or
            ``"linspace"`` (see :mod:`polydiff.diffusion.timesteps`).
        **options: Sampler-specific options (subclasses name theirs; unknown ones raise).

    Attributes:
        name: Registry name (``"ddim"``).
        stochastic: Whether sampling draws fresh noise at each step.
        timesteps: ``[N]`` the timesteps visited, in order (decreasing).
    """

    name: ClassVar[str] = ""
    stochastic: bool = False

    def __init__(
        self,
        diffusion: GaussianDiffusion,
        num_steps: int | None = None,
        *,
        spacing: str = "leading",
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(
                f"sampler '{self.name}' got unknown option(s) {', '.join(sorted(options))}; "
                f"it accepts: {', '.join(self.option_names()) or '(none)'}."
            )
        self.diffusion = diffusion
        if num_steps is not None:
            check_value(f"sampler '{self.name}' num_steps", num_steps, int, Rule(lo=1), "e.g. 50")
        self.num_steps = diffusion.num_timesteps if num_steps is None else int(num_steps)
        self.spacing = spacing
        self.timesteps: Tensor = spaced_timesteps(diffusion.num_timesteps, self.num_steps, spacing)

    @classmethod
    def option_names(cls) -> list[str]:
        """Keyword options of this sampler's constructor, besides ``num_steps``."""
        params = inspect.signature(cls.__init__).parameters
        skip = {"self", "diffusion", "num_steps", "options"}
        return [p for p in params if p not in skip]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_steps={self.num_steps}, spacing={self.spacing!r})"

    def sample(
        self,
        model_fn: ModelFn,
        shape: tuple[int, ...],
        *,
        generator: torch.Generator | None = None,
        x_T: Tensor | None = None,
        noise_scale: float = 1.0,
        callback: Callback | None = None,
        clip_denoised: bool | float = False,
        dynamic_threshold: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        progress: bool = False,
    ) -> Tensor:
        """Draw samples by running the reverse process from noise.

        Args:
            model_fn: ``(x_t [B, C, *spatial], t [B]) -> [B, C, *spatial]`` raw network output
                (eps, x0 or v, as ``diffusion.config.prediction``); ``t`` is int64, or float32
                fractional timesteps for the Karras samplers. Use
                :func:`polydiff.samplers.cfg_model_fn` for classifier-free guidance.
            shape: ``(B, C, *spatial)``.
            generator: Seeded CPU generator for the initial and per-step noise.
            x_T: ``[B, C, *spatial]`` initial noise to use as is (then ``noise_scale`` is not
                applied); default ``noise_scale * N(0, I)``.
            noise_scale: Temperature of the initial noise, ``x_T ~ N(0, noise_scale^2 I)`` (Grad-TTS).
            callback: ``callback(step_index, t, x_t, x0_pred)`` after each step.
            clip_denoised: Clamp predicted x0 to ``[-1, 1]`` (True) or ``[-b, b]`` (a float).
                Advised for eps-prediction when sampling starts near zero SNR (e.g. a cosine
                schedule with "trailing" spacing), where ``x0 = (x_t - sigma eps) / alpha``
                amplifies the network's error by ``1 / alpha``.
            dynamic_threshold: Imagen's percentile (e.g. 0.995) for dynamic thresholding of x0.
            device: Where the network runs (default: ``x_T``'s device, else the CPU).
            dtype: dtype of the sampling state.
            progress: Show a tqdm progress bar.

        Returns:
            ``[B, C, *spatial]`` samples (diffusion space).
        """
        if device is None:
            device = x_T.device if x_T is not None else torch.device("cpu")
        device = torch.device(device)
        if generator is not None and generator.device.type != "cpu":
            raise ConfigError(
                "samplers draw noise on the CPU so that a seed gives the same samples on every device; "
                "pass torch.Generator() (CPU), not a CUDA generator."
            )
        if x_T is None:
            x_T = noise_scale * torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
        elif tuple(x_T.shape) != tuple(shape):
            raise ConfigError(f"x_T has shape {tuple(x_T.shape)} but shape={tuple(shape)} was asked for.")
        x = x_T.to(device=device, dtype=dtype)
        clip = self._clip_fn(clip_denoised, dynamic_threshold)

        def denoise(x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            x0, eps = self.diffusion.predict_x0_eps(x_t, t, model_fn(x_t, t))
            if clip is not None:
                x0 = clip(x0)
                eps = self.diffusion.eps_from_x0(x_t, t, x0)
            return x0, eps

        def noise(like: Tensor) -> Tensor:
            z = torch.randn(like.shape, generator=generator, dtype=torch.float32)
            return z.to(device=like.device, dtype=like.dtype)

        bar = tqdm(total=self.num_steps, desc=self.name, disable=not progress, leave=False)

        def report(step: int, t: Tensor, x_t: Tensor, x0: Tensor) -> None:
            bar.update(1)
            if callback is not None:
                callback(step, t, x_t, x0)

        try:
            return self._sample(x, SamplingContext(denoise=denoise, noise=noise, report=report))
        finally:
            bar.close()

    @staticmethod
    def _clip_fn(
        clip_denoised: bool | float, dynamic_threshold: float | None
    ) -> Callable[[Tensor], Tensor] | None:
        bound = 1.0 if clip_denoised is True else (float(clip_denoised) if clip_denoised else None)
        if dynamic_threshold is not None and not 0 < dynamic_threshold <= 1:
            raise ConfigError(
                f"dynamic_threshold is a percentile in (0, 1] (e.g. 0.995), got {dynamic_threshold}."
            )
        if bound is None and dynamic_threshold is None:
            return None

        def clip(x0: Tensor) -> Tensor:
            if dynamic_threshold is not None:
                x0 = dynamic_threshold_x0(x0, dynamic_threshold)
            return x0 if bound is None else x0.clamp(-bound, bound)

        return clip

    def alphas_cumprod_at(self, t: Tensor) -> Tensor:
        """``abar_t`` (float64) for timesteps ``t``, with ``abar_{-1} = 1`` (clean data)."""
        abar = self.diffusion.alphas_cumprod
        return torch.where(t >= 0, abar[t.clamp(min=0)], torch.ones((), dtype=abar.dtype))

    def step_alphas_cumprod(self) -> list[tuple[float, float]]:
        """``(abar_t, abar_s)`` of each step, from its timestep ``t`` to the next visited one ``s``."""
        prev = previous_timesteps(self.timesteps)
        return list(
            zip(self.alphas_cumprod_at(self.timesteps).tolist(), self.alphas_cumprod_at(prev).tolist())
        )

    @staticmethod
    def batch_timestep(t: Tensor | int | float, x: Tensor) -> Tensor:
        """Timestep ``t`` repeated for the batch: ``[B]`` on ``x``'s device, int64 or float32."""
        t = torch.as_tensor(t)
        t = t.float() if t.is_floating_point() else t.long()
        return t.reshape(1).to(x.device).repeat(x.shape[0])

    @abstractmethod
    def _sample(self, x_T: Tensor, ctx: SamplingContext) -> Tensor:
        """Run the update rule from ``x_T`` (``[B, C, *spatial]``) and return x0."""
