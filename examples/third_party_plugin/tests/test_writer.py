"""The ``timeseries-png`` writer: decodable PNGs of the documented size that show the signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from polydiff_timeseries.writer import TimeseriesPngWriter

from polydiff.pictures.plots import COLORS, TITLE_HEIGHT

W, H, LABEL = 192, 96, 140  # default panel size and row-label width


def _open(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _line_pixels(pixels: np.ndarray, channel: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels drawn in a channel's line colour."""
    return np.nonzero(np.all(pixels == COLORS[channel], axis=-1))


def test_samples_grid_has_one_titled_panel_per_sample(tmp_path):
    x = torch.linspace(-1, 1, 64).expand(5, 1, 64)
    [path] = TimeseriesPngWriter(columns=4).write_samples(x, ["a rising ramp"] * 5, tmp_path / "grid.png")

    pixels = _open(path)
    assert pixels.shape == (2 * H, 4 * W, 3)
    for r, c in [(0, 0), (0, 3), (1, 0)]:  # filled panels have a line, the empty sixth has none
        rows, _ = _line_pixels(pixels[r * H : (r + 1) * H, c * W : (c + 1) * W])
        assert rows.size > 64
    assert _line_pixels(pixels[H:, W:])[0].size == 0


def test_a_constant_signal_is_drawn_at_its_height(tmp_path):
    writer = TimeseriesPngWriter(y_range=(-1.5, 1.5))
    [path] = writer.write_samples(torch.ones(1, 1, 64), ["one"], tmp_path / "one.png")

    rows, _ = _line_pixels(_open(path))
    plot_top, plot_height = TITLE_HEIGHT + 3, H - TITLE_HEIGHT - 6
    expected = plot_top + (1.5 - 1.0) / 3.0 * plot_height
    assert abs(rows.mean() - expected) <= 1.0 and rows.std() < 1.0


def test_lengths_cut_each_signal(tmp_path):
    [path] = TimeseriesPngWriter().write_samples(
        torch.zeros(1, 1, 64), ["half"], tmp_path / "h.png", lengths=[32]
    )

    _, cols = _line_pixels(_open(path))
    assert cols.max() < W // 2 + 3


def test_trajectory_and_forward_strips_have_a_row_per_sample_and_a_column_per_step(tmp_path):
    writer = TimeseriesPngWriter()
    steps, xt = [999, 500, 0], torch.randn(3, 2, 1, 64)

    [trajectory] = writer.write_trajectory(steps, xt, xt.clamp(-1, 1), ["a", "b"], tmp_path / "traj.png")
    [forward] = writer.write_forward(steps, xt, ["a", "b"], tmp_path)  # a directory: default file name

    assert _open(trajectory).shape == (TITLE_HEIGHT + 4 * H, LABEL + 3 * W, 3)  # x_t and x0 rows per sample
    assert forward == tmp_path / "forward.png"
    assert _open(forward).shape == (TITLE_HEIGHT + 2 * H, LABEL + 3 * W, 3)


def test_two_channels_get_two_colours(tmp_path):
    x = torch.stack([torch.full((64,), 0.5), torch.full((64,), -0.5)])[None]
    [path] = TimeseriesPngWriter().write_samples(x, ["two"], tmp_path / "two.png")
    pixels = _open(path)
    assert _line_pixels(pixels, 0)[0].mean() < _line_pixels(pixels, 1)[0].mean()  # channel 0 is higher


def test_loss_curve(tmp_path):
    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 20)]
    [path] = TimeseriesPngWriter().write_loss_curve(history, tmp_path / "loss.png")
    assert _open(path).shape == (2 * H, 2 * W, 3)
    assert TimeseriesPngWriter().write_loss_curve(history[:1], tmp_path / "none.png") == []


def test_wrong_rank_is_an_error_naming_the_shape(tmp_path):
    with pytest.raises(ValueError, match=r"3 dims, got shape \(1, 64\)"):
        TimeseriesPngWriter().write_samples(torch.zeros(1, 64), ["x"], tmp_path / "x.png")


def test_one_sample_is_written_to_exactly_the_path_given(tmp_path):
    """The rule of ``polydiff.outputs``: one sample -> exactly ``path``, nothing else."""
    writer = TimeseriesPngWriter()
    assert writer.write_samples(torch.zeros(1, 1, 64), ["flat"], tmp_path / "one.png") == [
        tmp_path / "one.png"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["one.png"]
    assert _open(tmp_path / "one.png").shape[:2] == (H, W)
    assert writer.extensions == (".png",)
