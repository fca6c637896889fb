"""The gif writer: GIF round trip (frame count, size, order), contact sheets, process strips."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from polydiff_video.data.clip_io import read_gif
from polydiff_video.writers.gif import GifWriter


def marker_clips(batch: int = 2, frames: int = 6, size: int = 12) -> torch.Tensor:
    """[B, 3, T, H, W]: a white pixel in column t of frame t; frames 2 and 3 are identical."""
    x = torch.zeros(batch, 3, frames, size, size)
    for b in range(batch):
        x[b, b % 3] = 60.0  # a coloured background per clip
        for t in range(frames):
            x[b, :, t, 1 + b, min(t, 2) if t in (2, 3) else t] = 255.0
    return x


def test_gif_round_trip_keeps_frame_count_size_and_order(tmp_path):
    x = marker_clips()
    paths = GifWriter(fps=10, scale=1).write_samples(x, ["first", "second"], tmp_path / "samples.gif")
    gifs = [p for p in paths if p.suffix == ".gif"]
    assert [p.name for p in gifs] == ["samples-00.gif", "samples-01.gif"]
    for b, path in enumerate(gifs):
        frames = read_gif(path)  # [T, H, W, 3]
        assert frames.shape == (6, 12, 12, 3)  # identical frames 2 and 3 come back as two frames
        marker_columns = [int(np.argmax(f[1 + b].min(axis=-1))) for f in frames]
        assert marker_columns == [0, 1, 2, 2, 4, 5]
        assert np.abs(frames.astype(float) - x[b].permute(1, 2, 3, 0).numpy()).max() <= 8


def test_gif_scale_and_fps(tmp_path):
    # one clip is written to exactly its path (was s-00.gif plus a contact sheet s.png)
    assert GifWriter(fps=5, scale=3).write_samples(marker_clips(1), ["a"], tmp_path / "s") == [
        tmp_path / "s.gif"
    ]
    with Image.open(tmp_path / "s.gif") as image:
        assert image.size == (36, 36) and image.n_frames == 5  # 2 and 3 merged on disk
        assert image.info["duration"] == 200


def test_contact_sheet_has_a_row_per_clip(tmp_path):
    writer = GifWriter(scale=1, sheet_scale=2)
    one = writer.write_sheet(marker_clips(1), ["a"], tmp_path / "one.png")
    three = writer.write_sheet(marker_clips(3), ["a", "b", "c"], tmp_path / "three.png")
    with Image.open(one) as a, Image.open(three) as b:
        assert a.width >= 6 * 24 and b.width == a.width
        row = a.height
        assert b.height > 2.5 * row
        sheet = np.asarray(b)
    # every frame's marker is drawn: 3 clips x 6 frames of upscaled white pixels
    assert (sheet.min(axis=-1) == 255).sum() >= 3 * 6 * 4


def test_trajectory_and_forward_strips(tmp_path):
    writer = GifWriter(scale=1, sheet_scale=1, max_trajectory_samples=1)
    xt, x0 = marker_clips(2).expand(3, -1, -1, -1, -1, -1), marker_clips(2).expand(3, -1, -1, -1, -1, -1)
    paths = writer.write_trajectory([900, 500, 0], xt, x0, ["a", "b"], tmp_path / "trajectory.png")
    assert [p.name for p in paths] == ["trajectory-00.png"]  # max_trajectory_samples=1
    forward = writer.write_forward([0, 500], xt[:2], ["a", "b"], tmp_path / "forward")
    with Image.open(paths[0]) as traj, Image.open(forward[0]) as fwd:
        assert traj.width > 2 * 6 * 12 > fwd.width >= 6 * 12  # x_t and x0 side by side
        assert traj.height > fwd.height  # three steps vs two
    assert len(forward) == 1


def test_one_clip_is_written_to_exactly_the_path_given(tmp_path):
    """The rule of ``polydiff.outputs``: one clip -> exactly ``clip.gif`` (was ``clip-00.gif`` plus
    ``clip.png``); several -> ``STEM-00.gif, ...`` plus the sheet ``STEM.png``; ``.png`` -> the sheet."""
    writer = GifWriter(scale=1, sheet_scale=1)
    assert writer.write_samples(marker_clips(1), ["a"], tmp_path / "clip.gif") == [tmp_path / "clip.gif"]
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]
    assert read_gif(tmp_path / "clip.gif").shape == (6, 12, 12, 3)
    many = writer.write_samples(marker_clips(2), ["a", "b"], tmp_path / "many" / "v1.2.gif")
    assert [p.name for p in many] == ["v1.2-00.gif", "v1.2-01.gif", "v1.2.png"]
    assert writer.write_samples(marker_clips(2), ["a", "b"], tmp_path / "sheet.png") == [
        tmp_path / "sheet.png"
    ]
    assert writer.write_samples(marker_clips(1), ["a"], tmp_path / "many") == [
        tmp_path / "many" / "samples.gif"
    ]
    assert writer.extensions == (".gif", ".png")


def test_one_sample_strip_is_one_png_at_the_path(tmp_path):
    writer = GifWriter(scale=1, sheet_scale=1)
    xt = marker_clips(1).expand(2, -1, -1, -1, -1, -1)
    assert writer.write_trajectory([500, 0], xt, xt, ["a"], tmp_path / "rev.gif") == [tmp_path / "rev.png"]
    assert writer.write_forward([0, 500], xt, ["a"], tmp_path / "fwd.png") == [tmp_path / "fwd.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fwd.png", "rev.png"]
