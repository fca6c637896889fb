"""Bad data files end in one line naming the file (and line), through `check-data` and `train`.

The image, video and tts plugins are used through the installed registry (the CLI's own).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from polydiff.cli.main import main as cli
from polydiff.data_check import DataReport, check_dataset
from polydiff.errors import DataError

pytest.importorskip("polydiff_image")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, command: str) -> str:
    """The ``polydiff CMD: error: ...`` line of ``err`` (warnings and progress bars aside)."""
    lines = [line for line in err.splitlines() if line.startswith(f"polydiff {command}: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------- images
def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    from polydiff_image.datasets.folder import FolderDataset

    levels = np.arange(16, dtype=np.uint16) * 4369  # 0 .. 65535 in 16 steps
    Image.fromarray(np.tile(levels, (16, 1))).save(tmp_path / "gradient.png")
    assert Image.open(tmp_path / "gradient.png").mode.startswith("I")
    x = FolderDataset(path=tmp_path, size=16, channels=3)[0]["x"]
    assert x.shape == (3, 16, 16)
    assert x[0, 0].tolist() == [17 * k for k in range(16)]  # round(v / 257)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert (x == 255).float().mean() < 0.1  # was 99 % white when Pillow clipped it
    grey = FolderDataset(path=tmp_path, size=16)[0]["x"]  # a grey folder keeps one channel
    assert grey.shape == (1, 16, 16) and torch.equal(grey[0], x[0])


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Image.fromarray(np.array([[0, 32768, 65535, 70000]], np.int32), "I"), [0, 128, 255, 255]),
        (lambda: Image.fromarray(np.array([[0.0, 0.5, 1.0, 2.0]], np.float32), "F"), [0, 128, 255, 255]),
        (lambda: Image.fromarray(np.array([[0, 1, 0, 1]], bool)), [0, 255, 0, 255]),
        (lambda: Image.new("CMYK", (4, 1), (0, 0, 0, 0)), [255, 255, 255, 255]),
    ],
    ids=["I", "F", "1", "CMYK"],
)
def test_grey_and_other_modes(make, expected):
    from polydiff_image.datasets.folder import to_rgb

    rgb = np.asarray(to_rgb(make()))
    assert rgb.shape == (1, 4, 3)
    assert rgb[0, :, 0].tolist() == expected and (rgb[..., 0] == rgb[..., 2]).all()


def test_transparency_is_composited_over_white():
    from polydiff_image.datasets.folder import to_rgb

    rgba = Image.fromarray(np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], np.uint8))
    assert np.asarray(to_rgb(rgba))[0].tolist() == [[255, 0, 0], [255, 255, 255], [127, 127, 255]]
    la = Image.fromarray(np.array([[[0, 255], [0, 0]]], np.uint8), "LA")
    assert np.asarray(to_rgb(la))[0, :, 0].tolist() == [0, 255]
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0  # index 0 (black) is transparent
    assert np.asarray(to_rgb(palette))[0].tolist() == [[255, 255, 255], [0, 255, 0]]
    with pytest.raises(ValueError, match="NaN"):
        to_rgb(Image.fromarray(np.array([[np.nan, 0.0]], np.float32), "F"))


def test_decompression_bomb_honours_on_error(tmp_path, capsys, monkeypatch):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "good.png")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 pixels > 2 * 100: DecompressionBombError
    with pytest.warns(
        UserWarning, match=r"skipped 1 of 2 unreadable image files: bomb\.png \(DecompressionBombError"
    ):
        code, out, _ = run_cli(
            capsys, "check-data", "image", "--dataset", "folder", "--data-path", str(tmp_path)
        )
    assert code == 0
    assert "1 items usable, 2 checked, 1 skipped, 0 errors" in out
    assert "skipped: bomb.png: " in out and "DecompressionBombError" in out
    code, _, err = run_cli(
        capsys,
        "check-data",
        "image",
        "--dataset",
        "folder",
        "--data-path",
        str(tmp_path),
        "--set",
        "dataset.on_error=raise",
    )
    line = one_line_error(err, "check-data")
    assert code == 2 and "bomb.png" in line and "DecompressionBombError" in line and "Fix:" in line


def write_png_folder(root, metadata: bytes) -> None:
    Image.new("RGB", (8, 8), (255, 0, 0)).save(root / "a.png")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(root / "b.png")
    (root / "metadata.jsonl").write_bytes(metadata)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            b'{"file_name": "a.png", "text": "red"}\n{"file_name": "b.png", "text": "gr\xfcn"}\n',
            r"metadata.jsonl, line 2: not UTF-8 text .*Fix: re-save the file as UTF-8",
        ),
        (
            b'{"file_name": "a.png", "text": null}\n{"file_name": "b.png", "text": "green"}\n',
            r"metadata.jsonl:1: the caption 'text' of 'a.png' is null, not a string",
        ),
        (
            b'{"file_name": "a.png", "text": "red"}\n{"file_name": "b.png", "text": 7}\n',
            r"metadata.jsonl:2: the caption 'text' of 'b.png' is 7, not a string",
        ),
        (
            b'{"file_name": "a.png", "text": "red"}\n{"file_name": "b.png", "text": "green"}\n'
            b'{"file_name": "./a.png", "text": "blue"}\n',
            r"metadata.jsonl:3: './a.png' already has a row at line 1. Fix: keep one row per image",
        ),
        (
            b'{"file_name": "a.png", "text": "red"}\n{"file_name": "../b.png", "text": "green"}\n',
            r"metadata.jsonl:2: file name '../b.png' leads out of the data folder",
        ),
    ],
    ids=["latin-1", "null-text", "number-text", "duplicate", "dotdot"],
)
def test_image_metadata_errors_name_the_file_and_line(tmp_path, capsys, metadata, message):
    write_png_folder(tmp_path, metadata)
    code, _, err = run_cli(capsys, "check-data", "image", "--dataset", "folder", "--data-path", str(tmp_path))
    assert code == 2
    assert re.search(message, one_line_error(err, "check-data"))


def test_image_csv_metadata_errors_name_the_line(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "metadata.csv").write_text("file_name,text\na.png,red\na.png,again\n")
    code, _, err = run_cli(capsys, "check-data", "image", "--dataset", "folder", "--data-path", str(tmp_path))
    assert code == 2 and "metadata.csv:3: 'a.png' already has a row at line 2" in one_line_error(
        err, "check-data"
    )
    (tmp_path / "metadata.csv").write_text("file_name,text\na.png\n")  # a short row: no caption
    code, _, err = run_cli(capsys, "check-data", "image", "--dataset", "folder", "--data-path", str(tmp_path))
    assert code == 2 and "metadata.csv:2: the caption 'text' of 'a.png' is null" in one_line_error(
        err, "check-data"
    )


def test_image_symlink_out_of_the_folder_is_an_error(tmp_path, capsys):
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir(), outside.mkdir()
    Image.new("RGB", (8, 8)).save(data / "a.png")
    Image.new("RGB", (8, 8)).save(outside / "secret.png")
    os.symlink(outside / "secret.png", data / "link.png")
    code, _, err = run_cli(capsys, "check-data", "image", "--dataset", "folder", "--data-path", str(data))
    line = one_line_error(err, "check-data")
    assert code == 2 and "link.png" in line and "outside the data folder" in line


# ----------------------------------------------------------------------------- video
def write_gif(path, size: int = 16, frames: int = 4) -> None:
    images = [Image.new("RGB", (size, size), (40 * t, 0, 0)) for t in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def video_check(capsys, root, *extra: str) -> tuple[int, str, str]:
    return run_cli(
        capsys, "check-data", "video", "--dataset", "video-folder", "--data-path", str(root), *extra
    )


@pytest.mark.parametrize("name", ["../x.gif", "ABSOLUTE"], ids=["dotdot", "absolute"])
def test_video_metadata_cannot_leave_the_data_path(tmp_path, capsys, name):
    pytest.importorskip("polydiff_video")
    data = tmp_path / "data"
    data.mkdir()
    write_gif(data / "ok.gif")
    write_gif(tmp_path / "x.gif")  # a real clip outside --data-path
    name = str(tmp_path / "x.gif") if name == "ABSOLUTE" else name
    rows = [{"file_name": "ok.gif", "text": "ok"}, {"file_name": name, "text": "outside"}]
    (data / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, _, err = video_check(capsys, data)
    line = one_line_error(err, "check-data")
    assert code == 2 and "metadata.jsonl, line 2" in line and name in line
    assert ("absolute path" if name.startswith("/") else "leads out of the data folder") in line


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # ok.gif: 256 > 150 pixels
def test_video_symlink_duplicate_null_and_bomb(tmp_path, capsys, monkeypatch):
    pytest.importorskip("polydiff_video")
    data = tmp_path / "data"
    data.mkdir()
    write_gif(data / "ok.gif")
    write_gif(tmp_path / "x.gif")
    os.symlink(tmp_path / "x.gif", data / "link.gif")
    meta = data / "metadata.jsonl"

    def rows(*pairs):
        meta.write_text("\n".join(json.dumps({"file_name": f, "text": t}) for f, t in pairs) + "\n")

    rows(("ok.gif", "ok"), ("link.gif", "linked"))
    line = one_line_error(video_check(capsys, data)[2], "check-data")
    assert "line 2" in line and "link.gif" in line and "outside the data folder" in line
    rows(("ok.gif", "ok"), ("ok.gif", "again"))
    line = one_line_error(video_check(capsys, data)[2], "check-data")
    assert "line 2: 'ok.gif' already has a row at line 1" in line
    rows(("ok.gif", None))
    line = one_line_error(video_check(capsys, data)[2], "check-data")
    assert "line 1: missing 'text'" in line

    write_gif(data / "big.gif", size=20)
    rows(("ok.gif", "ok"), ("big.gif", "big"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)  # 400 > 2 * 150: DecompressionBombError
    code, _, err = video_check(capsys, data)
    line = one_line_error(err, "check-data")
    assert code == 2 and "big.gif" in line and "DecompressionBombError" in line
    with pytest.warns(UserWarning, match=r"skipped 1 of 2 unreadable clips: big\.gif"):
        code, out, _ = video_check(capsys, data, "--set", "dataset.on_error=skip")
    assert code == 0 and "1 items usable, 2 checked, 1 skipped" in out and "big.gif" in out


# ----------------------------------------------------------------------------- audio
def write_corpus(root) -> None:
    """Three good utterances and three bad ones (first, so the dataset meets them first)."""
    (root / "wavs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    sf.write(root / "wavs" / "short.wav", 0.1 * rng.standard_normal(50), 16000)
    nan = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    nan[100] = np.nan
    sf.write(root / "wavs" / "nan.wav", nan, 16000, subtype="FLOAT")
    (root / "wavs" / "text.wav").write_text("hello, I am not audio")
    rows += ["short|A short one.", "nan|A broken one.", "text|A text file."]
    for i in range(4):
        sf.write(root / "wavs" / f"ok{i}.wav", 0.1 * rng.standard_normal(4000), 16000)
        rows.append(f"ok{i}|Sentence {i}.")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")


TTS_OPTIONS = ("--set", "dataset.eval_size=1", "--set", "dataset.mel=small", "--no-progress")


def test_bad_audio_is_reported_by_check_data(tmp_path, capsys):
    pytest.importorskip("polydiff_tts")
    write_corpus(tmp_path)
    argv = ("check-data", "tts", "--dataset", "ljspeech", "--data-path", str(tmp_path), *TTS_OPTIONS)
    code, out, _ = run_cli(capsys, *argv)
    assert code == 2
    assert "3 items usable, 6 checked, 0 skipped, 3 errors" in out
    errors = [line for line in out.splitlines() if line.startswith("  error: ")]
    assert len(errors) == 3
    assert "short.wav is too short: 50 samples at 16000 Hz" in errors[0] and "n_fft=1024" in errors[0]
    assert "nan.wav holds 1 NaN or infinite samples" in errors[1]
    assert "cannot read audio file" in errors[2] and "text.wav" in errors[2]

    with pytest.warns(UserWarning, match=r"skipped 3 unusable audio files: .*short\.wav"):
        code, out, _ = run_cli(capsys, *argv, "--set", "dataset.on_error=skip")
    assert code == 0 and "3 items usable, 6 checked, 3 skipped, 0 errors" in out


def test_corpus_metadata_encoding_and_silent_audio(tmp_path, capsys):
    pytest.importorskip("polydiff_tts")
    (tmp_path / "wavs").mkdir()
    rng = np.random.default_rng(0)
    for uid in ("a", "b", "c"):
        sf.write(tmp_path / "wavs" / f"{uid}.wav", 0.1 * rng.standard_normal(4000), 16000)
    sf.write(tmp_path / "wavs" / "quiet.wav", np.zeros(4000), 16000)
    (tmp_path / "metadata.csv").write_bytes("a|One.\nb|Caf\u00e9.\n".encode("latin-1"))
    argv = ("check-data", "tts", "--dataset", "ljspeech", "--data-path", str(tmp_path), *TTS_OPTIONS)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "metadata.csv, line 2: not UTF-8 text" in one_line_error(err, "check-data")
    (tmp_path / "metadata.csv").write_text("quiet|Nothing.\na|One.\nb|Two.\nc|Three.\n")
    with pytest.warns(UserWarning, match=r"1 silent audio file.*quiet\.wav"):
        code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "3 items usable, 3 checked, 0 skipped, 0 errors" in out


def test_train_stops_before_the_first_step_naming_the_files(tmp_path, capsys):
    pytest.importorskip("polydiff_tts")
    write_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys,
        "train",
        "tts",
        "--dataset",
        "ljspeech",
        "--data-path",
        str(tmp_path / "corpus"),
        "--out",
        str(run),
        *TTS_OPTIONS,
    )
    line = one_line_error(err, "train")
    assert code == 2
    assert all(name in line for name in ("short.wav", "nan.wav", "text.wav")) and "3 unusable items" in line
    assert "--lr" not in line and not (run / "checkpoints").exists()


# ----------------------------------------------------------------------------- the core pass
class Items:
    """A plain dataset without validate(): item 2 is NaN, item 3 has another shape."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        if i == 1:
            raise DataError("cannot read 'one.bin'")
        x = torch.full((1, 5 if i == 3 else 4), float("nan") if i == 2 else 0.0)
        return {"x": x, "text": "", "file": f"f{i}.bin"}


def test_check_dataset_loads_every_item_of_a_plain_dataset():
    report = check_dataset(Items())
    assert report.items == 1 and report.checked == 3
    assert [file for file, _ in report.errors] == ["item 1", "f2.bin", "f3.bin"]
    assert "NaN or infinite" in report.errors[1][1] and "differs from f0.bin" in report.errors[2][1]
    with pytest.raises(DataError, match=r"^Items: 3 unusable items: item 1: cannot read 'one.bin'; f2.bin"):
        check_dataset(Items(), raise_errors=True)


def test_synthetic_datasets_are_not_loaded_unless_full():
    class Generated(Items):
        synthetic = True

    assert check_dataset(Generated()).synthetic and check_dataset(Generated()).ok
    assert not check_dataset(Generated(), full=True).ok
    assert DataReport("x", 3).raise_for_errors().ok


def test_on_error_takes_skip_or_raise_only(tmp_path):
    from polydiff.errors import ConfigError

    pytest.importorskip("polydiff_video")
    pytest.importorskip("polydiff_tts")
    from polydiff_image.datasets.folder import FolderDataset
    from polydiff_tts.data.ljspeech import LJSpeechDataset
    from polydiff_video.data.folder import FolderVideoDataset

    write_corpus(tmp_path)
    for make in (FolderDataset, FolderVideoDataset, LJSpeechDataset):
        with pytest.raises(ConfigError, match="'on_error' must be 'skip' or 'raise', not 'ignore'"):
            make(path=tmp_path, on_error="ignore")
