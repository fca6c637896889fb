"""The PNG writer: decodable files of the right size, pictures where they belong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from polydiff.errors import ConfigError
from polydiff.pictures.curves import SMOOTH, smooth
from polydiff.pictures.grids import PAD, to_pictures
from polydiff_image.writer import PNGWriter


def _solid(colours: list[tuple[int, int, int]], size: int = 16) -> torch.Tensor:
    """``[B, 3, size, size]`` images of one colour each."""
    return torch.tensor(colours, dtype=torch.float32)[:, :, None, None].expand(-1, -1, size, size).clone()


def _read(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_to_pictures_upscales_by_an_integer_factor() -> None:
    pics = to_pictures(torch.zeros(2, 1, 16, 8), min_side=64)
    assert [p.size for p in pics] == [(64, 128), (64, 128)]  # 8 px wide -> x8
    assert to_pictures(torch.zeros(1, 3, 100, 100), min_side=64)[0].size == (100, 100)
    with pytest.raises(ConfigError, match="1 or 3"):
        to_pictures(torch.zeros(1, 4, 8, 8))


def test_sample_grid_has_one_row_per_prompt_and_the_images_in_place(tmp_path) -> None:
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    x = _solid([red, red, green, green, blue, blue])
    prompts = ["a red one"] * 2 + ["a green one"] * 2 + ["a blue one"] * 2
    (path,) = PNGWriter(min_side=64).write_samples(x, prompts, tmp_path / "grid.png")
    image = _read(path)
    cell = 64 + PAD
    assert image.shape[0] == 3 * cell + PAD
    label_w = image.shape[1] - (2 * cell + PAD)
    assert label_w > 30  # room for the prompts on the left
    for row, colour in enumerate((red, green, blue)):
        for col in range(2):
            y, x0 = PAD + row * cell + 32, label_w + PAD + col * cell + 32
            assert tuple(image[y, x0]) == colour


def test_single_samples_get_captions_underneath(tmp_path) -> None:
    x = _solid([(255, 255, 0)] * 5)
    (path,) = PNGWriter(min_side=32, columns=3).write_samples(x, [f"prompt {i}" for i in range(5)], tmp_path)
    assert path == tmp_path / "samples.png"
    image = _read(path)
    assert image.shape[1] == 3 * (32 + PAD) + PAD  # three columns
    assert tuple(image[PAD + 5, PAD + 5]) == (255, 255, 0)


def test_grey_images_and_unconditional_grid(tmp_path) -> None:
    x = torch.full((4, 1, 8, 8), 128.0)
    (path,) = PNGWriter(min_side=16, columns=4).write_samples(x, ["", "", "", ""], tmp_path / "g.png")
    image = _read(path)
    assert image.shape == (16 + 2 * PAD, 4 * (16 + PAD) + PAD, 3)
    assert tuple(image[PAD, PAD]) == (128, 128, 128)


def test_trajectory_and_forward_strips_grow_with_samples(tmp_path) -> None:
    writer = PNGWriter(min_side=32)
    steps = [999, 666, 333, 0]

    def sizes(b: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        xt = torch.rand(len(steps), b, 3, 16, 16) * 255
        (traj,) = writer.write_trajectory(steps, xt, xt, ["a prompt"] * b, tmp_path / f"t{b}.png")
        (fwd,) = writer.write_forward(steps, xt, ["a prompt"] * b, tmp_path / f"f{b}.png")
        return _read(traj).shape, _read(fwd).shape

    (t1, f1), (t2, f2) = sizes(1), sizes(2)
    cell = 32 + PAD
    assert t2[0] - t1[0] == 2 * cell and t1[1] == t2[1]  # x_t and x0 rows per sample
    assert f2[0] - f1[0] == cell and f1[1] == f2[1]
    assert t1[1] >= len(steps) * cell  # one column per step


def test_trajectory_shows_at_most_max_samples(tmp_path) -> None:
    xt = torch.zeros(2, 5, 3, 8, 8)
    a = _read(
        PNGWriter(min_side=8, max_trajectory_samples=2).write_trajectory(
            [9, 0], xt, xt, [], tmp_path / "a.png"
        )[0]
    )
    b = _read(
        PNGWriter(min_side=8, max_trajectory_samples=3).write_trajectory(
            [9, 0], xt, xt, [], tmp_path / "b.png"
        )[0]
    )
    assert b.shape[0] - a.shape[0] == 2 * (8 + PAD)


def test_trajectory_shows_one_sample_of_each_prompt_first(tmp_path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    xt = _solid(colours, size=8)[None]  # [S=1, B=4, 3, 8, 8], sample b in colours[b]
    (path,) = PNGWriter(min_side=8, max_trajectory_samples=2).write_trajectory(
        [0], xt, xt, ["a", "a", "b", "b"], tmp_path / "t.png"
    )
    pixels = {tuple(p) for p in _read(path).reshape(-1, 3)}
    assert [c in pixels for c in colours] == [True, False, True, False]  # samples 0 ("a") and 2 ("b")


def test_loss_curve_png(tmp_path) -> None:
    history = [{"step": s, "loss": 1.0 / (1 + s / 10), "lr": 1e-3} for s in range(0, 500, 10)]
    (path,) = PNGWriter().write_loss_curve(history, tmp_path)
    assert path.name == "loss.png"
    image = _read(path)
    assert image.shape == (400, 640, 3)
    assert (image == np.array(SMOOTH, dtype=np.uint8)).all(-1).sum() > 200  # the smoothed line is drawn
    (empty,) = PNGWriter().write_loss_curve([], tmp_path / "empty.png")
    assert _read(empty).shape == (400, 640, 3)


def test_smoothing_is_a_bias_corrected_moving_average() -> None:
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    out = smooth([0.0, 1.0], weight=0.5)
    assert out == pytest.approx([0.0, 0.5 / (1 - 0.25)])


def test_one_sample_is_written_to_exactly_the_path_given(tmp_path) -> None:
    """The rule of ``polydiff.outputs``: one sample -> exactly ``path``; a directory -> samples.png."""
    writer = PNGWriter(min_side=16)
    assert writer.write_samples(_solid([(255, 0, 0)]), ["red"], tmp_path / "one.png") == [
        tmp_path / "one.png"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png"]
    assert _read(tmp_path / "one.png").shape[1] >= 16
    (tmp_path / "d").mkdir()
    assert writer.write_samples(_solid([(0, 0, 255)]), ["blue"], tmp_path / "d") == [
        tmp_path / "d" / "samples.png"
    ]
    assert writer.extensions == (".png",)
