"""The wav writer: trimmed WAVs, mel PNGs, reverse/forward strips, loss curves."""

from __future__ import annotations

import soundfile as sf
import torch
from PIL import Image

from polydiff_tts.writers.wav import WavWriter, slug


def test_write_samples_trims_to_lengths(digits_train, tmp_path):
    writer = WavWriter(mel=digits_train.writer_options()["mel"], vocoder_options={"n_iter": 4})
    batch = digits_train.collate([digits_train[0], digits_train[1]])
    lengths = batch["mel_lengths"].tolist()
    paths = writer.write_samples(batch["x"], batch["text"], tmp_path / "samples.wav", lengths=lengths)
    wavs = [p for p in paths if p.suffix == ".wav"]
    assert [p.name for p in wavs] == [f"samples-{i:02d}-{slug(t)}.wav" for i, t in enumerate(batch["text"])]
    for path, frames in zip(wavs, lengths):
        audio, rate = sf.read(path)
        assert rate == 16000 and len(audio) == (frames - 1) * 256
    image = Image.open(tmp_path / "samples.png")
    assert image.width == 2 * max(lengths) and image.height > 2 * 2 * 40


def test_trajectory_and_forward_strips(digits_train, tmp_path):
    writer = WavWriter(mel="small", vocoder_options={"n_iter": 2})
    x = digits_train.collate([digits_train[0], digits_train[1]])["x"]  # [2, 40, T]
    steps = [999, 500, 0]
    xt = torch.stack([x + s / 100 * torch.randn_like(x) for s in steps])  # [3, 2, 40, T]
    paths = writer.write_trajectory(steps, xt, xt, ["a", "b"], tmp_path / "reverse.wav")
    assert [p.name for p in paths] == [
        "reverse.png",
        "reverse-t0999.wav",
        "reverse-t0500.wav",
        "reverse-t0000.wav",
    ]
    strip = Image.open(paths[0])
    assert strip.width > 3 * 2 * x.shape[-1] and strip.height > 4 * 2 * 40  # 3 steps x (2 samples x 2 rows)
    forward = writer.write_forward(steps, xt, ["a", "b"], tmp_path / "forward.wav", lengths=[5, 9])
    assert forward[0].name == "forward.png" and len(forward) == 4
    assert sf.info(forward[1]).frames == (5 - 1) * 256  # trimmed to the first sample's length
    repeated = writer.write_forward([900, 900, 0], xt, ["a", "b"], tmp_path / "repeat.wav")
    assert [p.name for p in repeated] == ["repeat.png", "repeat-t0900.wav", "repeat-t0000.wav"]


def test_loss_curve(tmp_path):
    history = [
        {"step": s, "loss": 5 / s, "diffusion": 1 / s, "duration": 0.5, "prior": 2 / s} for s in range(1, 30)
    ]
    (path,) = WavWriter(mel="small").write_loss_curve(history, tmp_path / "loss.png")
    assert Image.open(path).size == (480, 300)


def test_one_sample_is_written_to_exactly_the_path_given(digits_train, tmp_path):
    """The rule of ``polydiff.outputs``: one sample -> exactly ``path`` (no mel PNG beside it)."""
    writer = WavWriter(mel=digits_train.writer_options()["mel"], vocoder_options={"n_iter": 2})
    item = digits_train.collate([digits_train[0]])
    length = int(item["mel_lengths"][0])
    paths = writer.write_samples(item["x"], item["text"], tmp_path / "one.wav", lengths=[length])
    assert paths == [tmp_path / "one.wav"] and [p.name for p in tmp_path.iterdir()] == ["one.wav"]
    assert sf.info(paths[0]).frames == (length - 1) * 256
    (tmp_path / "d").mkdir()
    assert writer.write_samples(item["x"], item["text"], tmp_path / "d") == [tmp_path / "d" / "samples.wav"]
    mel = writer.write_samples(item["x"], item["text"], tmp_path / "mel.png", lengths=[length])
    assert mel == [tmp_path / "mel.png"] and Image.open(mel[0]).width == 2 * length  # the spectrogram alone
    assert writer.extensions == (".wav", ".png")
