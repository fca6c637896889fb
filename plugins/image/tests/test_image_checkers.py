"""Checkers trained on real data read real data (almost) perfectly; the evaluator reports per group."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from polydiff.errors import ConfigError
from polydiff_image.datasets.digits import DIGIT_NAMES, load_digit_images
from polydiff_image.datasets.shapes import Combo, ShapesDataset
from polydiff_image.evaluate.digits_checker import DigitsChecker
from polydiff_image.evaluate.evaluator import ImageEvaluator
from polydiff_image.evaluate.frechet import frechet_distance, gaussian_frechet
from polydiff_image.evaluate.shapes_checker import (
    ShapesChecker,
    read_colour,
    read_position,
    rgb_to_hue,
)

# ----------------------------------------------------------------------------- hand-made reads


def test_hue_of_primary_and_secondary_colours() -> None:
    rgb = torch.tensor([[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255]])
    hue, chroma = rgb_to_hue(rgb.float()[:, :, None, None])
    assert hue.flatten().tolist() == [0, 60, 120, 180, 240, 300]
    assert chroma.flatten().tolist() == [255] * 6


def test_colour_and_position_of_a_square_patch() -> None:
    x = torch.zeros(2, 3, 12, 12)
    x[0, :, 1:3, 9:11] = torch.tensor([250.0, 20, 10])[:, None, None]  # red-ish, top right
    x[1, :, 5:7, 5:7] = torch.tensor([30.0, 40, 240])[:, None, None]  # blue, centre
    palette = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    assert read_colour(x, palette).tolist() == [0, 4]
    assert read_position(x, grid=3).tolist() == [2, 4]
    assert read_position(x, grid=2).tolist() == [1, 3]  # centre (6, 6) rounds to the bottom right cell
    empty = torch.zeros(1, 3, 12, 12)
    assert read_colour(empty, palette).tolist() == [-1] and read_position(empty, 3).tolist() == [-1]


def test_red_hue_wraps_around_360() -> None:
    x = torch.zeros(1, 3, 4, 4)
    x[0, :, :2] = torch.tensor([255.0, 0, 40])[:, None, None]  # hue ~351
    x[0, :, 2:] = torch.tensor([255.0, 40, 0])[:, None, None]  # hue ~9
    assert read_colour(x, [0.0, 180.0]).tolist() == [0]


# ----------------------------------------------------------------------------- trained checkers


@pytest.fixture(scope="module")
def shapes_checker() -> tuple[ShapesChecker, ShapesDataset]:
    reference = ShapesDataset("eval", size=32, grid=3)
    return ShapesChecker(reference, train_samples=1000, epochs=6), reference


def test_shapes_checker_reads_real_images(shapes_checker) -> None:
    checker, reference = shapes_checker
    assert checker.real_accuracy["all"] >= 0.95
    for key in ("colour", "shape", "position"):
        assert checker.real_accuracy[key] >= 0.97, key


def test_shapes_checker_reads_blank_images_as_wrong(shapes_checker) -> None:
    checker, _ = shapes_checker
    read = checker.read(torch.zeros(3, 3, 32, 32))
    assert all(v.tolist() == [-1] * 3 for v in read.values())
    score = checker.score(torch.zeros(2, 3, 32, 32), [Combo(0, 0, 0), Combo(1, 1, 1)])
    assert score["all"] == score["mean"] == 0.0


def test_digits_checker_reads_real_digits() -> None:
    checker = DigitsChecker(16, epochs=6, width=16)
    assert checker.real_accuracy >= 0.9
    images, labels = load_digit_images("eval", 16)
    score = checker.score(images[:200], labels[:200].tolist())
    assert score["accuracy"] >= 0.9
    # real images sit as close to the real eval set as the real reference does; noise does not
    noise = checker.score(torch.rand(200, 1, 16, 16) * 255, labels[:200].tolist())
    assert score["frechet"] < 2 * score["frechet_real_reference"] + 1e-6 < noise["frechet"]
    assert noise["accuracy"] < 0.5


# ----------------------------------------------------------------------------- Frechet distance


def test_frechet_closed_form_for_diagonal_gaussians() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert gaussian_frechet(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)


def test_frechet_of_a_set_with_itself_is_zero_and_a_shift_adds_its_square() -> None:
    a = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([3.0, 0, 0, 0, 0, 4.0])
    assert frechet_distance(a, a + shift) == pytest.approx(25.0, rel=1e-6)
    with pytest.raises(ConfigError):
        frechet_distance(a[:1], a)


# ----------------------------------------------------------------------------- evaluator


@dataclass
class _FakePipeline:
    """Answers prompts with real images (a perfect generator), as DiffusionPipeline would."""

    dataset_name: str
    options: dict
    calls: list = field(default_factory=list)

    @property
    def config(self) -> SimpleNamespace:
        return SimpleNamespace(dataset=SimpleNamespace(name=self.dataset_name, options=self.options))

    def __call__(self, prompts, *, num_per_prompt=1, sampler="ddim", steps=50, guidance=3.0, seed=0):
        self.calls.append(
            dict(num_per_prompt=num_per_prompt, sampler=sampler, steps=steps, guidance=guidance)
        )
        gen = torch.Generator().manual_seed(seed)
        all_prompts = [p for p in prompts for _ in range(num_per_prompt)]
        if self.dataset_name == "shapes":
            ds = ShapesDataset("eval", **self.options)
            samples = [ds.render(ds.attributes(p), random.Random(i)) for i, p in enumerate(all_prompts)]
        else:
            images, labels = load_digit_images("eval", self.options.get("size", 16))
            samples = []
            for p in all_prompts:
                pool = (labels == DIGIT_NAMES.index(p.split()[-1])).nonzero().flatten()
                samples.append(images[pool[torch.randint(len(pool), (1,), generator=gen)]][0])
        return SimpleNamespace(samples=torch.stack(samples).float(), prompts=all_prompts)


def test_evaluator_scores_a_perfect_shapes_generator(tmp_path) -> None:
    pipe = _FakePipeline("shapes", {"size": 16, "grid": 2})
    evaluator = ImageEvaluator(shapes_train_samples=1000, shapes_epochs=6, grid_prompts=4)
    metrics = evaluator.evaluate(pipe, tmp_path, num_per_prompt=2, steps=7, guidance=2.0)
    assert pipe.calls == [dict(num_per_prompt=2, sampler="ddim", steps=7, guidance=2.0)]
    ds = ShapesDataset(size=16, grid=2)
    assert metrics["held_out"]["num_samples"] == 2 * len(ds.held_out)
    assert metrics["seen"]["num_samples"] == 2 * (len(ds.eval_prompts) - len(ds.held_out))
    for group in ("held_out", "seen"):
        assert metrics[group]["all"] >= 0.95
    assert json.loads((tmp_path / "metrics.json").read_text())["held_out"] == metrics["held_out"]
    assert (tmp_path / "samples.png").stat().st_size > 0


def test_evaluator_scores_a_perfect_digits_generator(tmp_path) -> None:
    pipe = _FakePipeline("digits", {"size": 16})
    metrics = ImageEvaluator(digits_epochs=6).evaluate(pipe, tmp_path, num_per_prompt=6)
    assert metrics["accuracy"] >= 0.9 and metrics["num_samples"] == 60
    assert set(metrics["per_digit_accuracy"]) == set(DIGIT_NAMES)
    assert metrics["frechet"] >= 0 and (tmp_path / "metrics.json").exists()
