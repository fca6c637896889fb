"""The offline checks: edit distance, DTW, MCD-mel, the template recogniser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dct

from polydiff_tts.audio.io import read_audio
from polydiff_tts.data.digits import digit_references, heldout_utterances
from polydiff_tts.evaluation.dtw import dtw_path
from polydiff_tts.evaluation.features import mel_cepstra
from polydiff_tts.evaluation.metrics import edit_distance, mcd_mel, word_accuracy
from polydiff_tts.evaluation.recognizer import TemplateRecognizer


def test_edit_distance_and_word_accuracy():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert edit_distance([], ["a"]) == 1
    assert word_accuracy([["a", "b"], ["c"]], [["a", "b"], ["d"]]) == pytest.approx(2 / 3)
    assert word_accuracy([["a"]], [["b", "c", "d"]]) == 0.0


def test_dtw_path_is_monotonic_and_finds_the_cheap_diagonal():
    cost = np.ones((4, 6))
    for i, j in [(0, 0), (1, 1), (1, 2), (2, 3), (2, 4), (3, 5)]:
        cost[i, j] = 0.0
    path = dtw_path(cost)
    assert path == [(0, 0), (1, 1), (1, 2), (2, 3), (2, 4), (3, 5)]


def test_mel_cepstra_is_the_orthonormal_dct():
    log_mel = torch.randn(40, 7, dtype=torch.float64)
    expected = dct(log_mel.numpy(), type=2, norm="ortho", axis=0)[1:13].T
    np.testing.assert_allclose(mel_cepstra(log_mel, n_coeffs=13), expected, atol=1e-10)


def test_mcd_mel_is_zero_for_identical_and_time_warped_copies():
    cepstra = np.random.default_rng(0).standard_normal((20, 12))
    assert mcd_mel(cepstra, cepstra) == pytest.approx(0.0, abs=1e-5)
    assert mcd_mel(np.repeat(cepstra, 2, axis=0), cepstra) == pytest.approx(0.0, abs=1e-5)
    assert mcd_mel(cepstra + 0.1, cepstra) == pytest.approx(10 / np.log(10) * np.sqrt(2 * 12 * 0.01))


@pytest.fixture(scope="module")
def recognizer():
    return TemplateRecognizer(digit_references())


def test_recognizer_hears_held_out_recordings(recognizer):
    for utt in heldout_utterances()[:4]:
        assert recognizer(read_audio(utt.audio_path, 16000), 16000) == utt.normalized_text.split()


def test_recognizer_follows_concatenated_words_and_rejects_noise(recognizer):
    refs = {u.id: u for u in digit_references()}
    words = ["nine", "two", "five"]
    audio = torch.cat([read_audio(refs[f"ref_{w}_{i}"].audio_path, 16000) for i, w in enumerate(words)])
    assert recognizer(audio, 16000) == words
    noise = 0.3 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    heard = recognizer(noise, 16000)
    assert word_accuracy([words], [heard]) < 0.5
