"""Monotonic alignment search against a brute-force search, and durations -> paths."""

from __future__ import annotations

import itertools

import pytest
import torch

from polydiff.errors import DataError
from polydiff_tts.model.alignment import durations_to_path, monotonic_alignment_search


def brute_force(log_p: torch.Tensor) -> tuple[float, list[int]]:
    """Best total score over every way to split the frames into one run per token."""
    tx, ty = log_p.shape
    best, best_durations = -float("inf"), []
    for cuts in itertools.combinations(range(1, ty), tx - 1):
        bounds = (0, *cuts, ty)
        score = sum(float(log_p[x, bounds[x] : bounds[x + 1]].sum()) for x in range(tx))
        if score > best:
            best, best_durations = score, [bounds[x + 1] - bounds[x] for x in range(tx)]
    return best, best_durations


def assert_valid_path(path: torch.Tensor, tx: int, ty: int) -> None:
    assert torch.all(path[:tx, :ty].sum(0) == 1), "every frame belongs to exactly one token"
    assert torch.all(path[:tx, :ty].sum(1) >= 1), "every token gets a frame"
    assert path[tx:].sum() == 0 and path[:, ty:].sum() == 0, "nothing outside the lengths"
    token_of_frame = path[:tx, :ty].argmax(0)
    steps = token_of_frame[1:] - token_of_frame[:-1]
    assert torch.all((steps == 0) | (steps == 1)), "monotonic, one token at a time"
    assert token_of_frame[0] == 0 and token_of_frame[-1] == tx - 1


@pytest.mark.parametrize("seed", range(6))
def test_mas_matches_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    x_lengths = torch.tensor([4, 3, 1, 5])
    y_lengths = torch.tensor([8, 3, 6, 7])
    log_p = torch.randn(4, 5, 8, generator=gen) * 3
    path = monotonic_alignment_search(log_p, x_lengths, y_lengths)
    for b in range(4):
        tx, ty = int(x_lengths[b]), int(y_lengths[b])
        assert_valid_path(path[b], tx, ty)
        best, durations = brute_force(log_p[b, :tx, :ty])
        assert float((path[b] * log_p[b]).sum()) == pytest.approx(best, abs=1e-4)
        assert path[b, :tx].sum(1).tolist() == durations


def test_mas_follows_a_planted_alignment():
    durations = torch.tensor([[3, 1, 4, 2]])
    planted = durations_to_path(durations)  # [1, 4, 10]
    log_p = planted * 5.0 - 5.0  # matching cells score 0, the rest -5
    path = monotonic_alignment_search(log_p, torch.tensor([4]), torch.tensor([10]))
    assert torch.equal(path, planted)


def test_mas_rejects_more_tokens_than_frames():
    with pytest.raises(DataError, match="3 mel frames but 4 tokens"):
        monotonic_alignment_search(torch.zeros(1, 4, 3), torch.tensor([4]), torch.tensor([3]))


def test_durations_to_path_expands_tokens_in_order():
    path = durations_to_path(torch.tensor([[2, 0, 3], [1, 1, 0]]), max_frames=6)
    assert path.shape == (2, 3, 6)
    assert path[0].argmax(0)[:5].tolist() == [0, 0, 2, 2, 2]
    assert path[0, :, 5].sum() == 0  # past the end: no token
    assert path[1].sum(1).tolist() == [1, 1, 0]
