"""The ``sines`` dataset: shapes, captions and signals that match their captions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from polydiff_timeseries.analysis import classify, signal_stats
from polydiff_timeseries.dataset import SinesDataset
from polydiff_timeseries.waveforms import CAPTIONS, CYCLES, waveform_for

from polydiff import DataError


@pytest.fixture(scope="module")
def dataset() -> SinesDataset:
    return SinesDataset("eval", num_samples=240)


def test_items_have_the_documented_shape_type_and_range(dataset):
    assert len(dataset) == 240 and dataset.data_shape == (1, 64)
    item = dataset[7]
    assert set(item) == {"x", "text", "label"}
    assert item["x"].shape == (1, 64) and item["x"].dtype == torch.float32
    x = torch.stack([dataset[i]["x"] for i in range(len(dataset))])
    assert x.abs().max() <= 1.0
    peaks = x.abs().amax(dim=(1, 2))
    assert peaks.min() >= 0.45  # amplitudes are drawn in [0.5, 1]


def test_captions_are_balanced_and_match_the_labels(dataset):
    counts = Counter(dataset[i]["text"] for i in range(len(dataset)))
    assert counts == {caption: 40 for caption in CAPTIONS}
    assert all(CAPTIONS[dataset[i]["label"]] == dataset[i]["text"] for i in range(len(dataset)))
    assert dataset.captions == list(CAPTIONS) and dataset.eval_prompts == list(CAPTIONS)


def test_every_signal_looks_like_its_caption(dataset):
    for i in range(len(dataset)):
        item = dataset[i]
        wanted = waveform_for(item["text"])
        x = item["x"][0].numpy()
        assert classify(x) == wanted, item["text"]
        if wanted.periodic:
            low, high = CYCLES[wanted.variant]
            assert low - 0.25 <= signal_stats(x).dominant_cycles <= high + 0.25
        else:
            steps = np.diff(x)
            assert np.all(steps > 0) if wanted.variant == "rising" else np.all(steps < 0)


def test_the_same_seed_gives_the_same_data_and_splits_differ():
    a, b = SinesDataset("train", num_samples=12), SinesDataset("train", num_samples=12)
    assert torch.equal(a.signals, b.signals)
    assert not torch.equal(a.signals, SinesDataset("eval", num_samples=12).signals)
    assert not torch.equal(a.signals, SinesDataset("train", num_samples=12, seed=1).signals)


def test_length_and_channels_options():
    ds = SinesDataset("train", num_samples=6, length=32, channels=2)
    x = ds[1]["x"]
    assert x.shape == (2, 32) and torch.equal(x[0], x[1])


@pytest.mark.parametrize(("kwargs", "match"), [({"split": "test"}, "split"), ({"length": 8}, "length")])
def test_bad_options_raise_a_data_error(kwargs, match):
    with pytest.raises(DataError, match=match):
        SinesDataset(**kwargs)
