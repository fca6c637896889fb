"""Dynamic time warping: pairwise alignment (for MCD) and one-pass connected-word
recognition against word templates (for the intelligibility check)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[N, M]`` between the rows of ``a: [N, D]`` and ``b: [M, D]``."""
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost monotonic path through ``cost: [N, M]`` from ``(0, 0)`` to ``(N-1, M-1)``
    with steps (1, 0), (0, 1), (1, 1)."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        row, prev = acc[i], acc[i - 1]
        best = np.minimum(prev[1:], prev[:-1])  # from (i-1, j) or (i-1, j-1)
        for j in range(1, m + 1):  # (i, j-1) depends on this row: sequential in j
            row[j] = cost[i - 1, j - 1] + min(best[j - 1], row[j - 1])
    path = [(n - 1, m - 1)]
    i, j = n, m
    while (i, j) != (1, 1):
        moves = ((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
        _, i, j = min(moves, key=lambda move: move[0])
        path.append((i - 1, j - 1))
    return path[::-1]


def recognize_words(
    features: np.ndarray, templates: Sequence[np.ndarray], labels: Sequence[str], word_penalty: float = 0.0
) -> list[str]:
    """One-pass (one-stage) connected-word DTW: the label sequence whose concatenated
    templates best match ``features``.

    Within a template a step of the input advances the template by 0, 1 or 2 frames; a new
    word can start after the last frame of any template, paying ``word_penalty`` (higher
    means fewer, longer words).

    Args:
        features: ``[T, D]`` frames of the utterance.
        templates: ``[L_k, D]`` frames of each template (several per label are fine).
        labels: The word of each template.
    """
    frames = np.concatenate(templates)  # [F, D]
    sizes = np.array([len(t) for t in templates])
    ends = np.cumsum(sizes) - 1
    starts = ends - sizes + 1
    first = np.zeros(len(frames), dtype=bool)
    first[starts] = True
    second = np.zeros(len(frames), dtype=bool)
    second[starts[sizes > 1] + 1] = True
    local = pairwise_distances(features, frames)  # [T, F]
    t_total = len(features)
    value = np.where(first, local[0], np.inf)
    word_start = np.zeros(len(frames), dtype=np.int64)
    end_template = np.zeros(t_total, dtype=np.int64)  # best word ending at each input frame
    end_start = np.zeros(t_total, dtype=np.int64)  # ... and where that word started

    def record_end(i: int) -> float:
        k = int(np.argmin(value[ends]))
        end_template[i], end_start[i] = k, word_start[ends[k]]
        return float(value[ends[k]])

    best_end = record_end(0)
    for i in range(1, t_total):
        diag = np.where(first, np.inf, np.roll(value, 1))
        skip = np.where(first | second, np.inf, np.roll(value, 2))
        candidates = np.stack([value, diag, skip])
        choice = np.argmin(candidates, axis=0)
        best = candidates[choice, np.arange(len(frames))]
        origin = np.choose(choice, [word_start, np.roll(word_start, 1), np.roll(word_start, 2)])
        enter = best_end + word_penalty
        new_word = first & (enter < best)
        value = np.where(new_word, enter, best) + local[i]
        word_start = np.where(new_word, i, origin)
        best_end = record_end(i)

    words: list[str] = []
    i = t_total - 1
    while i >= 0:
        words.append(labels[end_template[i]])
        i = end_start[i] - 1
    return words[::-1]
