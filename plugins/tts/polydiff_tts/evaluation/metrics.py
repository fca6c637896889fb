"""Scores of the intelligibility evaluator: word errors and MCD-mel."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from polydiff_tts.evaluation.dtw import dtw_path, pairwise_distances

#: ``10 / ln(10) * sqrt(2)``: MCD in dB from a Euclidean cepstral distance (natural-log units).
MCD_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1]


def word_accuracy(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float:
    """``1 - WER`` over a corpus (errors summed, divided by the reference words), floored at 0."""
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return max(0.0, 1.0 - errors / max(1, sum(len(r) for r in references)))


def mcd_mel(cepstra: np.ndarray, reference: np.ndarray) -> float:
    """MCD-mel in dB: mean over the DTW path of ``10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2)``.

    Args:
        cepstra, reference: ``[T, D]`` DCT-of-log-mel frames (see ``mel_cepstra``). Not
            comparable with published MCD, which uses mel-cepstra from a vocoder analysis.
    """
    cost = pairwise_distances(cepstra, reference)
    path = dtw_path(cost)
    return float(MCD_CONSTANT * np.mean([cost[i, j] for i, j in path]))
