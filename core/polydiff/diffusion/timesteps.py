"""Which of the ``T`` training timesteps a sampler with fewer steps visits.

The three spacings follow diffusers (and Lin et al. 2023, Table 2) for ``T`` training
steps and ``N`` sampling steps:

* ``"leading"``: ``[0, k, 2k, ..., (N-1)k]`` with ``k = T // N`` (DDIM, Stable Diffusion);
  never visits ``T - 1``.
* ``"trailing"``: ``round(T - i T/N) - 1`` for ``i = 0 .. N-1``; always starts at ``T - 1``,
  which zero-terminal-SNR schedules need. (diffusers' ``arange(T, 0, -T/N)`` gives ``N + 1``
  entries for some ``N``, e.g. ``T = 1000, N = 61``, through float round-off.)
* ``"linspace"``: ``round(linspace(0, T - 1, N))``; both ends.

The step that follows timestep ``timesteps[i]`` is always ``timesteps[i + 1]`` (and the
last step goes to ``-1``, i.e. to clean data): see :func:`previous_timesteps`. This is
what diffusers' DDIM gets wrong for ``"linspace"``/``"trailing"`` (it uses ``t - T // N``,
issues 12633 and 11347).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from polydiff.errors import ConfigError, unknown_name

SPACINGS = ("leading", "trailing", "linspace")


def spaced_timesteps(num_train_timesteps: int, num_steps: int, spacing: str = "leading") -> Tensor:
    """The ``num_steps`` timesteps a sampler visits, in the order it visits them.

    Args:
        num_train_timesteps: ``T`` of the diffusion.
        num_steps: ``N``, with ``1 <= N <= T``.
        spacing: ``"leading"``, ``"trailing"`` or ``"linspace"``.

    Returns:
        ``[N]`` int64, strictly decreasing, within ``[0, T - 1]``.
    """
    if spacing not in SPACINGS:
        raise unknown_name("spacing", spacing, SPACINGS, hint="Pass spacing= to the sampler.")
    if not 1 <= num_steps <= num_train_timesteps:
        raise ConfigError(
            f"a sampler needs 1 <= num_steps <= {num_train_timesteps} (the training timesteps), "
            f"got num_steps={num_steps}. Fix the number of sampling steps."
        )
    if spacing == "leading":
        steps = np.arange(num_steps) * (num_train_timesteps // num_steps)
    elif spacing == "trailing":
        # = round(arange(T, 0, -T/N)) - 1, written so float round-off cannot add an entry
        steps = np.round(num_train_timesteps - np.arange(num_steps) * (num_train_timesteps / num_steps)) - 1
        steps = steps[::-1]
    else:
        steps = np.round(np.linspace(0, num_train_timesteps - 1, num_steps))
    return torch.from_numpy(steps[::-1].copy()).to(torch.int64)


def previous_timesteps(timesteps: Tensor) -> Tensor:
    """For each visited timestep, the one the step goes to: the next entry, and -1 after the last.

    Args:
        timesteps: ``[N]`` decreasing timesteps from :func:`spaced_timesteps`.

    Returns:
        ``[N]`` int64; ``-1`` stands for ``t = 0``'s target, the clean data (``abar = 1``).
    """
    return torch.cat([timesteps[1:], timesteps.new_full((1,), -1)])
