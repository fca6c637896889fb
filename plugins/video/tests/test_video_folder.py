"""The video-folder dataset: metadata, cutting/resampling, and clear errors for bad files."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from polydiff.errors import ConfigError, DataError, MissingDependencyError
from polydiff_video.data import clip_io
from polydiff_video.data.clip_io import fit_clip, frame_indices, read_clip
from polydiff_video.data.folder import FolderVideoDataset
from polydiff_video.writers.gif import save_gif


def numbered_frames(count: int, height: int = 16, width: int = 16) -> np.ndarray:
    """uint8 [count, H, W, 3]; frame t is grey level 20 * t (so order is visible)."""
    return np.stack([np.full((height, width, 3), 20 * t, np.uint8) for t in range(count)])


def write_folder(root, clips: dict[str, np.ndarray], metadata: str = "jsonl") -> None:
    for name, frames in clips.items():
        save_gif(frames, root / name, fps=10)
    if metadata == "jsonl":
        lines = [json.dumps({"file_name": n, "text": f"clip {n}"}) for n in clips]
        (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    else:
        rows = ["file_name,text", *[f"{n},clip {n}" for n in clips]]
        (root / "metadata.csv").write_text("\n".join(rows) + "\n")


def test_frame_indices_cut_long_clips_and_resample_short_ones():
    assert frame_indices(20, 8).tolist() == list(range(8))
    assert frame_indices(20, 4, stride=3).tolist() == [0, 3, 6, 9]
    assert frame_indices(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError):
        frame_indices(4, 8, stride=0)


def test_fit_clip_resizes_to_cover_then_centre_crops():
    frames = np.zeros((3, 20, 40, 3), np.uint8)
    frames[:, :, 15:25] = 255  # a bright band in the middle quarter of the width
    out = fit_clip(frames, 3, (16, 16))
    assert out.shape == (3, 16, 16, 3)
    assert out[:, :, 4:12].min() > 200 and out[:, :, :2].max() < 50


@pytest.mark.parametrize("metadata", ["jsonl", "csv"])
def test_folder_yields_fitted_clips_with_captions(tmp_path, metadata):
    write_folder(
        tmp_path, {"long.gif": numbered_frames(12), "short.gif": numbered_frames(4, 24, 32)}, metadata
    )
    ds = FolderVideoDataset(path=tmp_path, frames=8, size=16)
    assert len(ds) == 2 and ds.data_shape == (3, 8, 16, 16)
    long, short = ds[0], ds[1]
    assert long["text"] == "clip long.gif" and short["file"] == "short.gif"
    assert long["x"].shape == short["x"].shape == (3, 8, 16, 16)
    levels = long["x"].mean(dim=(0, 2, 3)).round()
    assert levels.tolist() == [20.0 * t for t in range(8)]  # first 8 frames, in order
    short_levels = short["x"].mean(dim=(0, 2, 3)).round()
    assert short_levels.tolist() == [0, 0, 20, 20, 40, 40, 60, 60]
    assert ds.captions == ["clip long.gif", "clip short.gif"] and ds.writer_options() == {"fps": 8}


def test_split_field_selects_rows(tmp_path):
    save_gif(numbered_frames(8), tmp_path / "a.gif")
    save_gif(numbered_frames(8), tmp_path / "b.gif")
    rows = [
        {"file_name": "a.gif", "text": "a", "split": "train"},
        {"file_name": "b.gif", "text": "b", "split": "eval"},
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert FolderVideoDataset("train", path=tmp_path).captions == ["a"]
    assert FolderVideoDataset("eval", path=tmp_path).captions == ["b"]


def test_corrupt_gif_names_the_file(tmp_path):
    write_folder(tmp_path, {"good.gif": numbered_frames(8), "bad.gif": numbered_frames(8)})
    (tmp_path / "bad.gif").write_bytes(b"GIF89a this is not really a gif")
    with pytest.raises(DataError, match="bad.gif"):
        FolderVideoDataset(path=tmp_path)


def test_missing_clip_metadata_and_folder_errors(tmp_path):
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "gone.gif", "text": "x"}) + "\n")
    with pytest.raises(DataError, match="gone.gif"):
        FolderVideoDataset(path=tmp_path)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "gone.gif"}) + "\n")
    with pytest.raises(DataError, match="line 1: missing 'text'"):
        FolderVideoDataset(path=tmp_path)
    (tmp_path / "metadata.jsonl").unlink()
    with pytest.raises(DataError, match="metadata.jsonl or metadata.csv"):
        FolderVideoDataset(path=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        FolderVideoDataset(path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="--data-path"):
        FolderVideoDataset()
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="notes.txt"):
        read_clip(tmp_path / "notes.txt")


def test_mp4_without_pyav_names_the_extra(tmp_path, monkeypatch):
    real_find_spec = clip_io.importlib.util.find_spec
    fake_util = types.SimpleNamespace(find_spec=lambda name: None if name == "av" else real_find_spec(name))
    monkeypatch.setattr(clip_io.importlib, "util", fake_util)
    (tmp_path / "clip.mp4").write_bytes(b"\x00")
    with pytest.raises(MissingDependencyError, match=r"polydiff-video\[mp4\]"):
        read_clip(tmp_path / "clip.mp4")


def test_mp4_round_trip_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in numbered_frames(10, 32, 32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    frames = read_clip(path)
    assert frames.shape == (10, 32, 32, 3)
    assert np.abs(frames.mean(axis=(1, 2, 3)) - 20 * np.arange(10)).max() < 6
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match="broken.mp4"):
        read_clip(tmp_path / "broken.mp4")


def test_gif_durations_set_the_rate_and_clip_fps_retimes_before_the_cut(tmp_path):
    from PIL import Image

    from polydiff_video.data.clip_io import read_gif_timed, retime

    # 6 frames: 50 ms each except the third, shown 150 ms -> 8 frames at 20 fps
    pictures = [Image.new("RGB", (8, 8), (20 * t, 20 * t, 20 * t)) for t in range(6)]
    pictures[0].save(
        tmp_path / "a.gif", save_all=True, append_images=pictures[1:], duration=[50, 50, 150, 50, 50, 50]
    )
    frames, rate = read_gif_timed(tmp_path / "a.gif")
    assert rate == 20.0 and frames[:, 0, 0, 0].tolist() == [0, 20, 40, 40, 40, 60, 80, 100]
    assert retime(frames, 20.0, 10.0)[:, 0, 0, 0].tolist() == [0, 40, 40, 80]  # every other frame
    assert retime(frames, 20.0, 40.0)[:, 0, 0, 0].tolist() == [0, 0, 20, 20] + [40] * 6 + [
        60,
        60,
        80,
        80,
        100,
        100,
    ]
    assert retime(frames, None, 10.0) is frames and retime(frames, 20.0, None) is frames
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.gif", "text": "steps"}\n')
    kept = FolderVideoDataset(path=tmp_path, frames=4, size=8)  # the first 4 frames at 20 fps
    assert kept[0]["x"][0, :, 0, 0].tolist() == [0, 20, 40, 40]
    halved = FolderVideoDataset(path=tmp_path, frames=4, size=8, clip_fps=10)  # 0.4 s at 10 fps
    assert halved[0]["x"][0, :, 0, 0].tolist() == [0, 40, 40, 80]
    with pytest.raises(ConfigError, match=r"'clip_fps' must be .* not 0; e.g. --set dataset.clip_fps=8"):
        FolderVideoDataset(path=tmp_path, frames=4, size=8, clip_fps=0)
