"""``tts-intelligibility`` on a run trained on your own corpus (``ljspeech`` layout): judged by
that corpus. A small corpus of four "words" (tone shapes) by three "speakers" (pitch offsets) is
generated; a stand-in pipeline returns new recordings of its prompts (at the ceiling), noise or
recordings of another word (near chance)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from polydiff_tts.audio.config import MelConfig
from polydiff_tts.audio.io import write_wav
from polydiff_tts.audio.mel import LogMelSpectrogram
from polydiff_tts.data.ljspeech import LJSpeechDataset
from polydiff_tts.evaluation.evaluator import IntelligibilityEvaluator
from polydiff_tts.evaluation.words import dtw_cost, is_word_list, speaker_of
from polydiff_tts.writers.wav import WavWriter

RATE = 16000
WORDS = {"low": (300, 300), "high": (900, 900), "rise": (300, 900), "fall": (900, 300)}
OTHER = dict(zip(WORDS, list(WORDS)[1:] + list(WORDS)[:1]))
SPEAKERS = {"ann": 0.9, "bob": 1.0, "cat": 1.12}


def say(word: str, speaker: str, rng: np.random.Generator) -> torch.Tensor:
    """A 0.35-0.45 s harmonic tone gliding between the word's two pitches, in silence."""
    start, end = (f * SPEAKERS[speaker] for f in WORDS[word])
    n = int(RATE * rng.uniform(0.35, 0.45))
    f = np.linspace(start, end, n)
    phase = 2 * np.pi * np.cumsum(f) / RATE
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * np.hanning(n) * 0.3
    audio = np.concatenate([np.zeros(1600), tone, np.zeros(1600)]) + 0.002 * rng.standard_normal(n + 3200)
    return torch.from_numpy(audio).float()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("corpus")
    (root / "wavs").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for take in range(5):  # the last take (12 rows) is the eval split
        for speaker in SPEAKERS:
            for word in WORDS:
                uid = f"{word}_{speaker}_{take}"
                write_wav(root / "wavs" / f"{uid}.wav", say(word, speaker, rng), RATE)
                rows.append(f"{uid}|{word}|{word}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return str(root)


class Pipeline:
    """Stands in for a trained pipeline: ``make(prompts) -> list of audio``, returned as log-mels."""

    device = "cpu"

    def __init__(self, corpus: str, make):
        options = {"path": corpus, "mel": "small", "eval_size": 12}
        self.config = SimpleNamespace(dataset=SimpleNamespace(name="ljspeech", options=options), sample={})
        self.registry = SimpleNamespace(build=lambda kind, name, **o: LJSpeechDataset(**o))
        self.make = make
        self.to_mel = LogMelSpectrogram(MelConfig.from_options("small"))

    def writer(self) -> WavWriter:
        return WavWriter(mel="small")

    def __call__(self, prompts, *, num_per_prompt, sampler, steps, guidance, seed, temperature, length_scale):
        wanted = [p for p in prompts for _ in range(num_per_prompt)]
        with torch.no_grad():
            mels = [self.to_mel(a) for a in self.make(wanted)]
        lengths = [m.shape[-1] for m in mels]
        batch = torch.full((len(mels), mels[0].shape[0], max(lengths)), mels[0].min().item())
        for i, m in enumerate(mels):
            batch[i, :, : m.shape[-1]] = m
        return SimpleNamespace(samples=batch, prompts=wanted, lengths=lengths)


def real(prompts, seed=1):
    rng = np.random.default_rng(seed)
    return [say(p, list(SPEAKERS)[i % 3], rng) for i, p in enumerate(prompts)]


def evaluate(corpus, make, out, **options):
    evaluator = IntelligibilityEvaluator(
        speaker_pattern="^[a-z]+_([a-z]+)_", classifier_steps=120, classifier_width=12, keep_wavs=2, **options
    )
    return evaluator.evaluate(Pipeline(corpus, make), out, num_per_prompt=2, steps=3)


@pytest.fixture(scope="module")
def real_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    return evaluate(corpus, real, out), out


def test_new_real_recordings_score_at_the_ceiling(real_run):
    m, tmp_path = real_run
    intel = m["intelligibility"]
    assert m["evaluator"] == "tts-intelligibility (own corpus)" and m["num_samples"] == 24
    assert intel["real_held_out"] >= 0.9 and intel["samples"] >= 0.9 and intel["chance"] == 0.25
    assert m["caption_accuracy"]["real_held_out"] >= 0.9 and m["caption_accuracy"]["samples"] >= 0.85
    assert m["duration"]["error_s"] < 0.1
    assert abs(m["prosody"]["samples"]["f0_mean_hz"] - m["prosody"]["real_vocoded"]["f0_mean_hz"]) < 60
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert {"mcd_mel_db", "prosody", "intelligibility", "frechet", "memorisation"} <= set(
        written["explanations"]
    )
    assert (tmp_path / "closest_pairs.png").is_file() and "notes" not in written


def noise(prompts):
    g = torch.Generator().manual_seed(0)
    return [0.1 * torch.randn(7000, generator=g) for _ in prompts]


def shuffled(prompts):  # every recording's samples in a random order
    g = torch.Generator().manual_seed(0)
    return [a[torch.randperm(len(a), generator=g)] for a in real(prompts)]


def wrong(prompts):
    return real([OTHER[p] for p in prompts])


@pytest.mark.parametrize("make", [noise, shuffled, wrong], ids=["noise", "shuffled", "wrong"])
def test_noise_shuffled_and_wrong_words_score_near_chance(corpus, real_run, tmp_path, make):
    m, good = evaluate(corpus, make, tmp_path), real_run[0]
    assert m["intelligibility"]["samples"] <= 0.4 and m["caption_accuracy"]["samples"] <= 0.4
    assert m["mcd_mel_db"]["samples"] > good["mcd_mel_db"]["samples"] + 1
    if make is noise:
        assert m["mcd_mel_db"]["samples"] > good["mcd_mel_db"]["samples"] + 5
        assert m["memorisation"]["ratio"] > 1.5 * good["memorisation"]["ratio"]


def test_open_vocabulary_says_what_it_cannot_judge(tmp_path):
    root = tmp_path / "sentences"
    (root / "wavs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        words = [list(WORDS)[(i + k) % 4] for k in range(2)]
        audio = torch.cat([say(w, "bob", rng) for w in words])
        write_wav(root / "wavs" / f"s{i}.wav", audio, RATE)
        rows.append(f"s{i}|{' '.join(words)} number {i}|{' '.join(words)} number {i}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")

    def sentences(prompts):
        return [torch.cat([say(w, "bob", rng) for w in p.split()[:2]]) for p in prompts]

    pipe = Pipeline(str(root), sentences)
    pipe.config.dataset.options["eval_size"] = 4
    m = IntelligibilityEvaluator(classifier_steps=30, keep_wavs=0).evaluate(
        pipe, tmp_path / "out", num_per_prompt=1
    )
    assert "intelligibility" not in m
    assert any("intelligibility not measured" in n and "recogniser" in n for n in m["notes"])
    assert m["labels"] == "words" and "mcd_mel_db" in m


def test_word_helpers():
    a = np.random.default_rng(0).standard_normal((20, 4))
    assert dtw_cost(a, a) == pytest.approx(0.0, abs=1e-6)
    assert dtw_cost(a, np.repeat(a, 2, axis=0)) == pytest.approx(0.0, abs=1e-6)
    assert dtw_cost(a, a[::-1]) > 0.5
    assert is_word_list(["one", "two", "one"]) and not is_word_list(["one two"])
    assert speaker_of("3_jackson_12", "^[0-9]+_([a-z]+)_") == "jackson" and speaker_of("x", None) is None


def test_own_corpus_options_on_a_spoken_digits_run_are_an_error(tmp_path):
    from polydiff.errors import ConfigError

    digits_run = SimpleNamespace(config=SimpleNamespace(dataset=SimpleNamespace(name="spoken-digits")))
    with pytest.raises(ConfigError, match=r"\['speaker_pattern'\] apply to runs on your own corpus"):
        IntelligibilityEvaluator(speaker_pattern="(x)").evaluate(digits_run, tmp_path)
