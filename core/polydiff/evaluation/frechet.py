"""Frechet distance between two sets of features, each modelled as a Gaussian."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from polydiff.errors import ConfigError


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def gaussian_frechet(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``: the squared 2-Wasserstein
    distance between ``N(mu1, S1)`` and ``N(mu2, S2)`` (as FID computes it)."""
    s1 = _sqrtm_psd(cov1)
    cross = np.clip(np.linalg.eigvalsh(s1 @ cov2 @ s1), 0, None)
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.sqrt(cross).sum())
    return max(value, 0.0)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Frechet distance between features ``a [N, F]`` and ``b [M, F]`` (N, M >= 2)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ConfigError(
            f"frechet_distance needs two [N>=2, F] feature sets; got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    x, y = a.double().cpu().numpy(), b.double().cpu().numpy()
    return gaussian_frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
