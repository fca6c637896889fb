"""Video containers read through PyAV (the ``mp4`` extra): codecs of real clip collections,
NTSC frame rates, ``clip_fps`` on MP4, and decoding that stops at the frames a clip uses.

Skipped where PyAV is not installed (``make`` installs it: ``plugins/video[mp4]``).
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from polydiff_video.data.clip_io import fit_clip, frames_needed, read_clip_timed, retime
from polydiff_video.data.folder import FolderVideoDataset

av = pytest.importorskip("av")

NTSC = Fraction(30000, 1001)  # 29.97 frames per second, the rate of most UCF-101 clips


def grey_frames(count: int, size: int = 16, step: int = 8) -> np.ndarray:
    """uint8 [count, H, W, 3]; frame t is grey level ``step * t`` (so the order is visible)."""
    return np.stack([np.full((size, size, 3), step * t, np.uint8) for t in range(count)])


def write_video(path, frames: np.ndarray, rate, codec: str) -> None:
    """Encode ``frames`` losslessly (or nearly: MPEG-4 part 2 at its finest quantiser)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "0"} if codec == "libx264" else {"qscale": "1"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def levels(clip: np.ndarray) -> np.ndarray:
    """Grey level of each frame of uint8 ``[T, H, W, 3]`` (or float ``[3, T, H, W]``)."""
    axes = (1, 2, 3) if clip.shape[-1] == 3 else (0, 2, 3)
    return np.asarray(clip, np.float64).mean(axis=axes)


@pytest.mark.parametrize(
    ("name", "codec"),
    [("clip.mp4", "libx264"), ("clip.avi", "mpeg4")],  # Kinetics's H.264 MP4, UCF-101 / HMDB51's AVI
)
def test_containers_of_real_collections_read_in_order_with_their_rate(tmp_path, name, codec):
    write_video(tmp_path / name, grey_frames(20), NTSC, codec)
    frames, rate = read_clip_timed(tmp_path / name)
    assert frames.shape == (20, 16, 16, 3) and frames.dtype == np.uint8
    assert rate == pytest.approx(30000 / 1001)
    assert np.abs(levels(frames) - 8 * np.arange(20)).max() < 3  # MPEG-4 part 2 is lossy: < 3 of 8


def test_clip_fps_retimes_an_ntsc_mp4(tmp_path):
    write_video(tmp_path / "a.mp4", grey_frames(30), NTSC, "libx264")
    rows = [{"file_name": "a.mp4", "text": "a clip"}]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = FolderVideoDataset(path=tmp_path, frames=4, size=8, clip_fps=10)
    # frame k at 10 fps is the one on screen at k / 10 s: source frame floor(k * 2.997) = 0, 2, 5, 8
    assert np.abs(levels(ds[0]["x"].numpy()) - 8 * np.array([0, 2, 5, 8])).max() < 2
    assert ds.data_shape == (3, 4, 8, 8)


def test_decoding_stops_at_the_frames_the_cut_uses_and_gives_the_same_clip(tmp_path):
    write_video(tmp_path / "long.mp4", grey_frames(30), 25, "libx264")
    assert len(read_clip_timed(tmp_path / "long.mp4", lambda rate: 5)[0]) == 5
    full, rate = read_clip_timed(tmp_path / "long.mp4")
    assert len(full) == 30 and rate == 25.0
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "long.mp4", "text": "x"}) + "\n")
    for stride, clip_fps, expected in [(2, None, 7), (1, 10, 11), (1, 40, 4)]:
        assert frames_needed(4, stride, clip_fps, rate) == expected
        ds = FolderVideoDataset(path=tmp_path, frames=4, size=16, frame_stride=stride, clip_fps=clip_fps)
        whole = fit_clip(retime(full, rate, clip_fps), 4, (16, 16), stride)  # decoded whole, as before
        assert np.array_equal(ds[0]["x"].numpy(), whole.transpose(3, 0, 1, 2).astype(np.float32))
    # a clip shorter than the cut is still read whole and spread over the frames
    short = FolderVideoDataset(path=tmp_path, frames=4, size=16, frame_stride=15)
    assert np.abs(levels(short[0]["x"].numpy()) - 8 * np.array([0, 10, 19, 29])).max() < 2
