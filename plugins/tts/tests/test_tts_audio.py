"""Mel settings, audio reading (resampling, stereo), mel shapes, Griffin-Lim round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from polydiff.errors import ConfigError, DataError
from polydiff_tts.audio.config import MEL_PRESETS, MelConfig
from polydiff_tts.audio.io import read_audio, write_wav
from polydiff_tts.audio.mel import LogMelSpectrogram, mel_filterbank
from polydiff_tts.vocoders.griffin_lim import GriffinLimVocoder


def test_presets_hold_the_grad_tts_and_small_settings():
    g = MEL_PRESETS["grad-tts"]
    assert (g.sample_rate, g.n_fft, g.hop_length, g.n_mels, g.fmin, g.fmax) == (
        22050,
        1024,
        256,
        80,
        0.0,
        8000.0,
    )
    s = MEL_PRESETS["small"]
    assert (s.sample_rate, s.n_mels) == (16000, 40)


def test_from_options_accepts_names_dicts_and_rejects_unknown_fields():
    assert MelConfig.from_options("small") == MEL_PRESETS["small"]
    cfg = MelConfig.from_options({"preset": "small", "n_mels": 64})
    assert (cfg.sample_rate, cfg.n_mels) == (16000, 64)
    assert MelConfig.from_options(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown mel field"):
        MelConfig.from_options({"nmels": 64})
    with pytest.raises(ConfigError, match="unknown mel preset 'tiny'"):
        MelConfig.from_options("tiny")
    with pytest.raises(ConfigError, match="fmax"):
        MelConfig(sample_rate=16000, fmax=9000.0)


@pytest.mark.parametrize("samples", [4000, 4096, 16000])
def test_log_mel_shape_and_floor(samples):
    cfg = MEL_PRESETS["small"]
    mel = LogMelSpectrogram(cfg)(torch.zeros(2, samples))
    assert mel.shape == (2, cfg.n_mels, cfg.num_frames(samples))
    assert torch.allclose(mel, torch.full_like(mel, math.log(cfg.log_floor)))


def test_filterbank_peaks_follow_frequency():
    cfg = MEL_PRESETS["small"]
    fb = mel_filterbank(cfg)
    assert fb.shape == (cfg.n_fft // 2 + 1, cfg.n_mels)
    peaks = fb.argmax(0)
    assert torch.all(peaks[1:] >= peaks[:-1])


def test_read_audio_mixes_stereo_and_resamples(tmp_path):
    t = np.arange(8000) / 8000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.1 * np.ones_like(t)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], 1), 8000)
    same_rate = read_audio(tmp_path / "stereo.wav", 8000)
    assert same_rate.shape == (8000,)
    np.testing.assert_allclose(same_rate.numpy(), (left + right) / 2, atol=1e-4)
    upsampled = read_audio(tmp_path / "stereo.wav", 16000)
    assert upsampled.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(upsampled.numpy() - upsampled.numpy().mean()))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 1  # the tone keeps its pitch


def test_read_audio_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.wav does not exist"):
        read_audio(tmp_path / "missing.wav", 16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(DataError, match="cannot read audio file .*bad.wav"):
        read_audio(tmp_path / "bad.wav", 16000)


def test_write_wav_round_trip(tmp_path):
    audio = torch.linspace(-0.5, 0.5, 1600)
    write_wav(tmp_path / "a.wav", audio, 16000)
    back = read_audio(tmp_path / "a.wav", 16000)
    assert torch.allclose(back, audio, atol=1e-4)


def test_griffin_lim_reconstructs_speech_mels(digits_train):
    """Vocoding a real utterance's mel and re-analysing it gives nearly the same mel."""
    cfg = digits_train.mel_config
    vocoder = GriffinLimVocoder(cfg, n_iter=32)
    to_mel = LogMelSpectrogram(cfg)
    for i in range(2):
        mel = digits_train[i]["x"]
        audio = vocoder(mel)
        assert audio.shape == ((mel.shape[-1] - 1) * cfg.hop_length,)
        assert audio.abs().max() <= 1.0
        again = to_mel(audio)
        assert again.shape == mel.shape
        target, rebuilt = mel.exp(), again.exp()
        convergence = torch.linalg.norm(target - rebuilt) / torch.linalg.norm(target)
        assert convergence < 0.15, f"spectral convergence {convergence:.3f}"
    assert torch.equal(vocoder(mel), audio), "the initial phase is seeded"


def test_read_audio_downmixes_any_channel_count_and_filters_before_downsampling(tmp_path):
    rate = 44100
    t = np.arange(rate // 2) / rate  # half a second
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 12000 * t)  # 12 kHz > 8 kHz Nyquist
    channels = np.stack([0.4 * low, 0.4 * low, 0.4 * low + 0.5 * high], 1)  # three channels, 16-bit PCM
    sf.write(tmp_path / "three.wav", channels, rate, subtype="PCM_16")
    wav = read_audio(tmp_path / "three.wav", 16000)
    assert wav.shape == (8000,)  # ceil(22050 * 16000 / 44100)
    middle = wav.numpy()[1000:7000]  # away from the resampler's edges
    tt = (np.arange(1000, 7000) / 16000)[:, None]

    def amplitude(freq: float) -> float:
        basis = np.concatenate([np.sin(2 * np.pi * freq * tt), np.cos(2 * np.pi * freq * tt)], 1)
        return float(np.hypot(*np.linalg.lstsq(basis, middle, rcond=None)[0]))

    assert abs(amplitude(1000) - 0.4) < 0.01  # the mean of the three channels
    assert amplitude(16000 - 12000) < 0.01  # their 0.17 of 12 kHz is filtered out, not folded to 4 kHz
