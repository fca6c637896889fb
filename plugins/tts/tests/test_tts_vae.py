"""``--encoder vae`` for speech: the core's 1-D autoencoder over mels, every frame kept, the
Grad-TTS prior in its latent space, decoded to mels (and a WAV) when sampling."""

from __future__ import annotations

import math

import pytest
import soundfile as sf
import torch

from polydiff.builder import build_dataset, build_model
from polydiff.errors import ConfigError
from polydiff.pipeline import DiffusionPipeline
from polydiff.training.trainer import Trainer

LOG_MIN = math.log(1e-5)


def test_the_presets_vae_compresses_mel_bands_and_keeps_every_frame(make_tiny_config, tts_registry):
    config = make_tiny_config(encoder="vae")
    assert config.encoder.options["downsample"] == [False]
    vae = tts_registry.build("encoder", "vae", data_shape=(40, 24), **config.encoder.options)
    assert vae.latent_shape((40, 24)) == (16, 24)
    vae.fitted.fill_(True)
    x = torch.rand(2, 40, 24) * 12.0 + LOG_MIN
    with torch.no_grad():
        z = vae.encode(x)
        y = vae.decode(z)
    assert z.shape == (2, 16, 24) and y.shape == (2, 40, 24)
    assert float(y.min()) >= LOG_MIN  # decoded log-mels never fall below the floor (silence)


def test_short_vae_training_checkpoint_loads_and_samples_a_wav(make_tiny_config, tts_registry, tmp_path):
    config = make_tiny_config(steps=6, encoder="vae")
    config.train.encoder_steps = 10
    config.dataset.options["max_items"] = 16
    config.encoder.options.update(channels=8, channel_mult=[1, 2])  # a smaller autoencoder
    run = Trainer(config, tmp_path / "run", registry=tts_registry, device="cpu", progress=False).fit()
    pipe = DiffusionPipeline.from_checkpoint(run.run_dir, registry=tts_registry, device="cpu")
    assert pipe.config.encoder.name == "vae" and pipe.model.encoder.is_fitted
    # the prior mean lives in the latent space: 16 channels, as many frames as the mels
    assert pipe.config.conditioner.options["n_mels"] == 16
    assert pipe.config.latent_shape == [16, pipe.config.data_shape[1]]
    out = pipe(["seven two nine", "one"], steps=2, temperature=1.5)
    assert out.samples.shape == (2, 40, -(-max(out.lengths) // 4) * 4)  # decoded to log-mels, padded
    assert float(out.samples.min()) >= LOG_MIN
    written = pipe.writer().write_samples(out.samples, out.prompts, tmp_path / "s.wav", lengths=out.lengths)
    for path, frames in zip(written[:2], out.lengths):
        audio, rate = sf.read(path)
        assert rate == 16000 and len(audio) == (frames - 1) * 256
    evaluator = tts_registry.build("evaluator", "tts-intelligibility", max_prompts=1, keep_wavs=0)
    metrics = evaluator.evaluate(pipe, tmp_path / "eval", num_per_prompt=1, steps=1, seed=0)
    # the autoencoder's ceiling: the held-out recordings' mels through it, vocoded and heard
    assert 0.0 <= metrics["first_stage_word_accuracy"] <= 1.0 and metrics["first_stage_mcd_mel_db"] > 0


def test_a_vae_that_shortens_time_is_refused_in_one_line(tts_registry, monkeypatch, tmp_path, capsys):
    from polydiff.cli.main import main

    monkeypatch.setattr("polydiff.plugins.get_registry", lambda: tts_registry)
    argv = ["train", "tts", "--encoder", "vae", "--out", str(tmp_path / "run"), "--no-progress"]
    argv += ["--set", "dataset.max_items=8", "--set", "train.steps=1"]
    assert main([*argv, "--set", "encoder.downsample=[true]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("polydiff train: error: grad-tts aligns text to mel frames, but the encoder maps")
    assert "keep every frame: --set encoder.downsample=[false]" in err and "\n" not in err


def test_a_conditioner_sized_for_mels_is_refused_with_the_vae(make_tiny_config, tts_registry):
    config = make_tiny_config(encoder="vae")
    config.apply_overrides(["conditioner.n_mels=40"], tts_registry)
    build_dataset(config, tts_registry)
    with pytest.raises(ConfigError, match=r"n_mels=40 but the diffusion space .* has 16 channels; drop"):
        build_model(config, tts_registry)
