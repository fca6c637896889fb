"""Which timesteps a training step draws: uniform, or biased towards the early or late ones."""

from __future__ import annotations

import torch
from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.training.config import TrainConfig

#: ``TrainConfig.timestep_bias`` values.
TIMESTEP_BIASES = ("none", "earlier", "later")


def timestep_weights(
    num_timesteps: int,
    bias: str,
    portion: float,
    multiplier: float,
    timestep_range: tuple[int, int] | None = None,
) -> Tensor:
    """Relative draw weights ``[T]`` of the timesteps ``0 .. T - 1`` (diffusers' timestep bias).

    ``"later"`` multiplies the weight of the last ``portion`` of the timesteps (the noisiest)
    by ``multiplier``, ``"earlier"`` that of the first ``portion``; ``"none"`` is uniform.
    The loss of each drawn step is not reweighted: the bias changes what the model trains on
    most, as a loss weight would, at no extra cost. ``timestep_range = (lo, hi)`` keeps only
    ``lo <= t < hi``: a denoiser expert for that interval (eDiff-I), which
    :meth:`polydiff.DiffusionPipeline.with_expert` uses in place of the main model there.
    """
    if bias not in TIMESTEP_BIASES:
        raise ConfigError(f"train.timestep_bias must be one of {', '.join(TIMESTEP_BIASES)}; got '{bias}'.")
    if not 0.0 < portion <= 1.0:
        raise ConfigError(f"train.timestep_bias_portion must be in (0, 1]; got {portion}.")
    if multiplier <= 0.0:
        raise ConfigError(f"train.timestep_bias_multiplier must be > 0; got {multiplier}.")
    if timestep_range is not None:
        lo, hi = (int(v) for v in timestep_range)
        if not 0 <= lo < hi <= num_timesteps:
            raise ConfigError(
                f"train.timestep_range must be [lo, hi] with 0 <= lo < hi <= {num_timesteps} "
                f"(diffusion.num_timesteps); got {list(timestep_range)}."
            )
    weights = torch.ones(num_timesteps, dtype=torch.float64)
    count = max(1, round(portion * num_timesteps))
    if bias == "later":
        weights[num_timesteps - count :] *= multiplier
    elif bias == "earlier":
        weights[:count] *= multiplier
    if timestep_range is not None:
        weights[:lo] = 0.0
        weights[hi:] = 0.0
    return weights


def timestep_weights_of(train: TrainConfig, num_timesteps: int) -> Tensor:
    """:func:`timestep_weights` with the ``timestep_*`` fields of a run's ``train`` section."""
    return timestep_weights(
        num_timesteps,
        train.timestep_bias,
        train.timestep_bias_portion,
        train.timestep_bias_multiplier,
        train.timestep_range,
    )


def draw_timesteps(weights: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` timesteps drawn with ``weights [T]`` -> ``[count]`` int64 (uniform: ``randint``)."""
    if bool((weights == weights[0]).all()):
        return torch.randint(0, len(weights), (count,), generator=generator)
    return torch.multinomial(weights, count, replacement=True, generator=generator)
