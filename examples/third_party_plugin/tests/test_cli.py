"""End to end through the ``polydiff`` command: train a tiny model, sample, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from polydiff.testing import run_cli

pytestmark = pytest.mark.slow


def polydiff(*args: str | Path) -> str:
    """Run ``python -m polydiff ARGS`` with only this plugin loaded; return stdout."""
    return run_cli(*args, plugins=["timeseries"]).stdout


def test_train_sample_and_evaluate(tmp_path):
    run = tmp_path / "run"
    polydiff("train", "timeseries", "--dataset", "sines", "--steps", "30", "--batch-size", "16",
             "--out", run, "--no-progress")  # fmt: skip
    config = json.loads(next(run.glob("checkpoints/*/config.json")).read_text())
    assert (config["modality"], config["dataset"]["name"], config["unet"]["dims"]) == (
        "timeseries",
        "sines",
        1,
    )

    out = tmp_path / "X.png"
    polydiff("sample", run, "--prompt", "a slow sine wave", "--out", out, "--steps", "5")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (192, 96)  # one default-sized panel

    polydiff("evaluate", run, "--steps", "5", "--num-per-prompt", "1", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_samples"] == 6 and 0.0 <= metrics["caption_accuracy"] <= 1.0
