"""A short training run lowers all three losses; the checkpoint samples, writes and evaluates."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
from PIL import Image

from polydiff.pipeline import DiffusionPipeline
from polydiff.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tts_registry, make_tiny_config):
    config = make_tiny_config(steps=80)
    run_dir = tmp_path_factory.mktemp("tts-run")
    result = Trainer(config, run_dir, registry=tts_registry, device="cpu", progress=False).fit()
    return result


def test_short_training_lowers_diffusion_duration_and_prior_losses(trained):
    history = trained.history
    assert len(history) == 80
    for key in ("diffusion", "duration", "prior"):
        first = sum(h[key] for h in history[:10]) / 10
        last = sum(h[key] for h in history[-10:]) / 10
        assert last < 0.8 * first, f"{key}: {first:.3f} -> {last:.3f}"


def test_checkpoint_samples_wavs_and_is_evaluated(trained, tts_registry, tmp_path):
    pipe = DiffusionPipeline.from_checkpoint(trained.run_dir, registry=tts_registry, device="cpu")
    assert pipe.config.writer.options["mel"]["n_mels"] == 40  # the mel settings travel with the checkpoint
    out = pipe(["seven two nine"], steps=3, temperature=1.5)
    written = pipe.writer().write_samples(out.samples, out.prompts, tmp_path / "out.wav", lengths=out.lengths)
    # one sample: exactly the path given (polydiff.outputs); the mel PNG comes with several samples
    assert [p.name for p in written] == ["out.wav"]
    audio, rate = sf.read(written[0])
    assert rate == 16000 and len(audio) == (out.lengths[0] - 1) * 256
    two = pipe(["seven two nine", "one"], steps=3, temperature=1.5)
    written = pipe.writer().write_samples(two.samples, two.prompts, tmp_path / "two.wav", lengths=two.lengths)
    assert [p.name for p in written] == ["two-00-seven-two-nine.wav", "two-01-one.wav", "two.png"]
    assert Image.open(written[2]).size[0] == 2 * max(two.lengths)

    evaluator = tts_registry.build("evaluator", "tts-intelligibility", max_prompts=2, keep_wavs=1)
    metrics = evaluator.evaluate(pipe, tmp_path / "eval", num_per_prompt=1, steps=2, seed=0)
    assert 0.0 <= metrics["word_accuracy"] <= 1.0 and metrics["num_samples"] == 2
    assert metrics["reference_word_accuracy"] == 1.0  # the recogniser hears the real recordings right
    assert metrics["mcd_mel_db"] > 0 and metrics["rtf"] > 0 and metrics["duration_error_s"] >= 0
    assert "first_stage_word_accuracy" not in metrics  # identity: no first stage to judge
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["word_accuracy"] == metrics["word_accuracy"] and len(saved["samples"]) == 2
