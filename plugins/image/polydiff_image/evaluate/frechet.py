"""Frechet distance between two sets of features (now in the core: :mod:`polydiff.evaluation.frechet`)."""

from __future__ import annotations

from polydiff.evaluation.frechet import frechet_distance, gaussian_frechet

__all__ = ["frechet_distance", "gaussian_frechet"]
