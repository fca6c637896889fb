"""``image-checkers`` on a run trained on your folder: judged by the folder's own real images.

A stand-in pipeline returns new real images for its prompts (scores at the ceiling), or shuffled
pixels, noise, or images of another caption (scores near chance)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from polydiff_image.datasets.folder import FolderDataset
from polydiff_image.evaluate.evaluator import ImageEvaluator
from polydiff_image.writer import PNGWriter

CAPTIONS = (
    "a horizontal bar at the top",
    "a horizontal bar at the bottom",
    "a vertical bar at the top",
    "a vertical bar at the bottom",
)
OTHER = {c: CAPTIONS[(i + 1) % 4] for i, c in enumerate(CAPTIONS)}  # each caption's wrong one
SIZE = 12


def draw(caption: str, rng: np.random.Generator) -> np.ndarray:
    """A white bar on dark noise, ``[SIZE, SIZE, 3]`` uint8."""
    img = rng.integers(0, 40, (SIZE, SIZE, 3))
    half = SIZE // 2 if caption.endswith("bottom") else 0
    if "horizontal" in caption:
        img[half + rng.integers(1, SIZE // 2 - 1), 2 : SIZE - 2] = 255
    else:
        img[half + 1 : half + SIZE // 2 - 1, rng.integers(2, SIZE - 2)] = 255
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("bars")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        caption = CAPTIONS[i % 4]
        Image.fromarray(draw(caption, rng)).save(root / f"{i:03d}.png")
        rows.append(json.dumps({"file_name": f"{i:03d}.png", "text": caption}))
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return str(root)


class Pipeline:
    """Stands in for a trained pipeline: ``make(prompts) -> [N, 3, H, W]`` in [0, 255]."""

    device = "cpu"

    def __init__(self, folder: str, make, conditional: bool = True):
        options = {"path": folder, "size": SIZE}
        self.config = SimpleNamespace(dataset=SimpleNamespace(name="folder", options=options))
        self.registry = SimpleNamespace(build=lambda kind, name, **o: FolderDataset(**o))
        self.make = make

    def writer(self) -> PNGWriter:
        return PNGWriter()

    def __call__(self, prompts, *, num_per_prompt, sampler, steps, guidance, seed):
        wanted = [p for p in prompts for _ in range(num_per_prompt)]
        return SimpleNamespace(samples=self.make(wanted), prompts=wanted, lengths=None)


def real(prompts, seed=1):
    rng = np.random.default_rng(seed)
    return torch.stack([torch.from_numpy(draw(p, rng)).permute(2, 0, 1) for p in prompts]).float()


EVALUATOR = ImageEvaluator(own_data={"classifier_steps": 150, "classifier_width": 12, "write_samples": 4})


def evaluate(folder, make, out):
    return EVALUATOR.evaluate(Pipeline(folder, make), out, num_per_prompt=6, steps=3)


def test_new_real_images_score_at_the_ceiling(folder, tmp_path):
    m = evaluate(folder, real, tmp_path)
    acc = m["caption_accuracy"]
    assert m["evaluator"] == "image-checkers (own data)" and m["num_samples"] == 24
    assert m["held_out"].startswith("no separate eval split: 24 of the items")
    assert acc["real_held_out"] >= 0.95 and acc["samples"] >= 0.95 and acc["chance"] == 0.25
    assert m["frechet"]["samples"] < 3 * m["frechet"]["real_held_out"]
    assert 0.7 < m["memorisation"]["ratio"] < 1.4
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert set(written["explanations"]) == {"caption_accuracy", "frechet", "memorisation"}
    assert (tmp_path / "closest_pairs.png").is_file() and (tmp_path / "samples.png").is_file()


def test_shuffled_noise_and_wrong_captions_score_near_chance(folder, tmp_path):
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(SIZE * SIZE, generator=g)

    def shuffled(prompts):
        x = real(prompts)
        return x.flatten(2)[..., order].reshape(x.shape)

    makers = {
        "shuffled": shuffled,
        "noise": lambda prompts: 255 * torch.rand(len(prompts), 3, SIZE, SIZE, generator=g),
        "wrong": lambda prompts: real([OTHER[p] for p in prompts]),
    }
    for name, make in makers.items():
        m = evaluate(folder, make, tmp_path / name)
        assert m["caption_accuracy"]["samples"] <= 0.45, name
    noise = json.loads((tmp_path / "noise" / "metrics.json").read_text())
    assert (
        noise["memorisation"]["ratio"] > 2
        and noise["frechet"]["samples"] > 5 * noise["frechet"]["real_held_out"]
    )


def test_copies_of_the_folder_are_caught(folder, tmp_path):
    images = FolderDataset(path=folder, size=SIZE).images.float()
    m = evaluate(folder, lambda prompts: images[: len(prompts)], tmp_path)
    assert m["memorisation"]["copies"] >= 0.6 and m["memorisation"]["ratio"] < 0.5


def test_unconditional_folder_gets_the_memorisation_check(folder, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in sorted(Path(folder).glob("*.png"))[:20]:
        (plain / path.name).write_bytes(path.read_bytes())
    m = evaluate(
        str(plain), lambda prompts: real(["a vertical bar at the top"] * len(prompts)), tmp_path / "out"
    )
    assert "caption_accuracy" not in m and m["memorisation"]["copies"] <= 0.5 and "frechet" in m
    assert any("unconditional" in n for n in m["notes"])


def test_own_data_options_on_a_shapes_run_are_an_error(tmp_path):
    from polydiff.errors import ConfigError

    shapes_run = SimpleNamespace(config=SimpleNamespace(dataset=SimpleNamespace(name="shapes", options={})))
    with pytest.raises(ConfigError, match=r"\['max_prompts'\] apply to runs on your own images"):
        ImageEvaluator(max_prompts=3).evaluate(shapes_run, tmp_path)
