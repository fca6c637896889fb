"""The ``timeseries-stats`` evaluator and the signal checks behind it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from polydiff_timeseries.analysis import signal_stats
from polydiff_timeseries.dataset import SinesDataset
from polydiff_timeseries.evaluator import TimeseriesStatsEvaluator, score_signals
from polydiff_timeseries.waveforms import CAPTIONS


@pytest.fixture(scope="module")
def real() -> tuple[torch.Tensor, list[str]]:
    ds = SinesDataset("eval", num_samples=180, seed=5)
    return ds.signals, [ds[i]["text"] for i in range(len(ds))]


def test_signal_stats_measure_known_signals():
    u = np.arange(128) / 128
    sine = signal_stats(0.8 * np.sin(2 * np.pi * 3 * u + 0.3))
    square = signal_stats(np.sign(np.sin(2 * np.pi * 3 * u + 0.3)))
    ramp = signal_stats(np.linspace(-1, 1, 128))
    assert sine.dominant_cycles == pytest.approx(3.0, abs=0.13)
    assert sine.fullness == pytest.approx(1 / np.sqrt(2), abs=0.02)
    assert sine.tonality > 0.99 and abs(sine.trend) < 0.3
    assert square.fullness == pytest.approx(1.0, abs=1e-6)
    assert ramp.trend == pytest.approx(1.0)


def test_real_data_scores_high(real):
    x, prompts = real
    metrics = score_signals(x, prompts)
    assert metrics["num_samples"] == 180
    assert metrics["caption_accuracy"] >= 0.99
    assert metrics["shape_accuracy"] >= 0.99 and metrics["speed_accuracy"] >= 0.99
    assert set(metrics["per_prompt"]) == set(CAPTIONS)
    slow = metrics["per_prompt"]["a slow sine wave"]["mean_cycles"]
    fast = metrics["per_prompt"]["a fast sine wave"]["mean_cycles"]
    assert 1.5 <= slow <= 2.5 and 5.0 <= fast <= 7.0


def test_shuffled_noise_and_mismatched_data_score_low(real):
    x, prompts = real
    gen = torch.Generator().manual_seed(0)
    shuffled = x[..., torch.randperm(x.shape[-1], generator=gen)]
    noise = 0.7 * torch.randn(x.shape, generator=gen)
    mismatched = prompts[1:] + prompts[:1]  # each signal judged against the next one's caption

    assert score_signals(shuffled, prompts)["caption_accuracy"] <= 0.2
    assert score_signals(noise, prompts)["caption_accuracy"] <= 0.2
    assert score_signals(x, mismatched)["caption_accuracy"] <= 0.2


def test_unknown_prompt_or_wrong_shape_is_an_error(real):
    x, prompts = real
    with pytest.raises(ValueError, match="known captions"):
        score_signals(x[:1], ["a wobbly line"])
    with pytest.raises(ValueError, match=r"\[N, C, L\]"):
        score_signals(x[:2], prompts[:3])
    with pytest.raises(ValueError, match="known captions"):
        TimeseriesStatsEvaluator(prompts=["a wobbly line"])


def test_evaluate_generates_scores_and_writes_metrics_and_a_picture(tmp_path):
    """A stand-in pipeline that returns real signals for each prompt: the score must be perfect."""
    data = SinesDataset("eval", num_samples=60)
    by_caption = {c: [data.signals[i] for i in range(len(data)) if data[i]["text"] == c] for c in CAPTIONS}
    calls = []

    def pipeline(prompts, *, num_per_prompt, **options):
        calls.append(options)
        wanted = [p for p in prompts for _ in range(num_per_prompt)]
        samples = torch.stack([by_caption[p][i % num_per_prompt] for i, p in enumerate(wanted)])
        return SimpleNamespace(samples=samples, prompts=wanted)

    evaluator = TimeseriesStatsEvaluator(prompts=["a slow sine wave", "a falling ramp"])
    metrics = evaluator.evaluate(pipeline, tmp_path, num_per_prompt=3, steps=7, seed=2)

    assert calls == [{"sampler": "ddim", "steps": 7, "guidance": 3.0, "seed": 2}]
    assert metrics["caption_accuracy"] == 1.0 and metrics["num_samples"] == 6
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "samples.png").stat().st_size > 0


def test_other_datasets_are_judged_by_their_own_data(tmp_path):
    """A run on another dataset gets the core's own-data judges: trained on that dataset's real
    items, they read new real signals at the ceiling and noise near chance."""
    data = {
        split: SinesDataset(split, num_samples=120, seed=seed) for split, seed in (("train", 0), ("eval", 7))
    }
    fresh = SinesDataset("eval", num_samples=240, seed=11)
    by_caption = {c: [fresh.signals[i] for i in range(len(fresh)) if fresh[i]["text"] == c] for c in CAPTIONS}

    def pipeline_for(make):
        def pipeline(prompts, *, num_per_prompt, **options):
            wanted = [p for p in prompts for _ in range(num_per_prompt)]
            return SimpleNamespace(samples=make(wanted), prompts=wanted, lengths=None)

        pipeline.config = SimpleNamespace(dataset=SimpleNamespace(name="my-signals", options={}))
        pipeline.registry = SimpleNamespace(build=lambda kind, name, split, **o: data[split])
        pipeline.writer = lambda: SimpleNamespace(write_samples=lambda *a, **k: [])
        return pipeline

    evaluator = TimeseriesStatsEvaluator(own_data={"classifier_steps": 300, "classifier_width": 12})
    real = pipeline_for(lambda ps: torch.stack([by_caption[p][i % 10] for i, p in enumerate(ps)]))
    noise = pipeline_for(lambda ps: torch.randn(len(ps), 1, data["eval"].signals.shape[-1]))
    good = evaluator.evaluate(real, tmp_path / "real", num_per_prompt=4)
    bad = evaluator.evaluate(noise, tmp_path / "noise", num_per_prompt=4)
    assert good["evaluator"] == "own-data" and good["caption_accuracy"]["real_held_out"] >= 0.85
    assert good["caption_accuracy"]["samples"] >= 0.8 and bad["caption_accuracy"]["samples"] <= 0.4
