"""The two Grad-TTS losses besides the diffusion loss."""

from __future__ import annotations

import math

from torch import Tensor

from polydiff.training.distributed import global_count


def prior_loss(y: Tensor, mu_y: Tensor, mask: Tensor) -> Tensor:
    """Mean negative log-likelihood of ``y`` under ``N(mu_y, I)`` per mel value.

    Args:
        y, mu_y: ``[B, C, T]`` target mels and the aligned prior mean.
        mask: ``[B, 1, T]`` valid frames.
    """
    nll = 0.5 * ((y - mu_y) ** 2 + math.log(2 * math.pi)) * mask
    # under DDP, over the valid frames of the global batch (see polydiff's global_count)
    return nll.sum() / global_count(mask.sum() * y.shape[1])


def duration_loss(log_pred: Tensor, log_target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error of log-durations over real tokens.

    Args:
        log_pred, log_target: ``[B, L]``.
        mask: ``[B, L]`` (or ``[B, 1, L]``) real tokens.
    """
    mask = mask.reshape(log_pred.shape)
    return (((log_pred - log_target) ** 2) * mask).sum() / global_count(mask.sum())
