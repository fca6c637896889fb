"""``video-motion`` on a run trained on your clips (``video-folder``): judged by the folder's own
real clips. A stand-in pipeline returns new real clips (at the ceiling), shuffled pixels, noise, or
clips of another caption (near chance)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from polydiff_video.data.folder import FolderVideoDataset
from polydiff_video.evaluation.evaluator import VideoMotionEvaluator
from polydiff_video.writers.gif import GifWriter

CAPTIONS = ("a dot moving right", "a dot moving left", "a dot moving down", "a dot moving up")
OTHER = dict(zip(CAPTIONS, CAPTIONS[1:] + CAPTIONS[:1]))
SIZE, FRAMES = 12, 4


def draw(caption: str, rng: np.random.Generator) -> np.ndarray:
    """A bright 2x2 dot moving 2 pixels a frame in the caption's direction: ``[T, H, W, 3]`` uint8."""
    clip = rng.integers(0, 30, (FRAMES, SIZE, SIZE, 3))
    y, x = rng.integers(4, SIZE - 5, 2)
    dy, dx = {"right": (0, 2), "left": (0, -2), "down": (2, 0), "up": (-2, 0)}[caption.split()[-1]]
    y, x = y - dy * FRAMES // 2 + 1, x - dx * FRAMES // 2 + 1
    for t in range(FRAMES):
        yy, xx = np.clip(y + dy * t, 0, SIZE - 2), np.clip(x + dx * t, 0, SIZE - 2)
        clip[t, yy : yy + 2, xx : xx + 2] = 255
    return clip.astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(100):
        caption = CAPTIONS[i % 4]
        frames = [Image.fromarray(f) for f in draw(caption, rng)]
        frames[0].save(root / f"{i:03d}.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
        # the last 20 clips are the eval split: held out of training
        rows.append(
            json.dumps(
                {"file_name": f"{i:03d}.gif", "text": caption, "split": "eval" if i >= 80 else "train"}
            )
        )
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return str(root)


class Pipeline:
    device = "cpu"

    def __init__(self, folder: str, make):
        options = {"path": folder, "size": SIZE, "frames": FRAMES}
        self.config = SimpleNamespace(dataset=SimpleNamespace(name="video-folder", options=options))
        self.registry = SimpleNamespace(build=lambda kind, name, **o: FolderVideoDataset(**o))
        self.make = make

    def writer(self) -> GifWriter:
        return GifWriter()

    def __call__(self, prompts, *, num_per_prompt, sampler, steps, guidance, seed):
        wanted = [p for p in prompts for _ in range(num_per_prompt)]
        return SimpleNamespace(samples=self.make(wanted), prompts=wanted, lengths=None)


def real(prompts, seed=1):
    rng = np.random.default_rng(seed)
    return torch.stack([torch.from_numpy(draw(p, rng)).permute(3, 0, 1, 2) for p in prompts]).float()


def evaluate(folder, make, out):
    evaluator = VideoMotionEvaluator(
        own_data={"classifier_steps": 120, "classifier_width": 8, "write_samples": 0}
    )
    return evaluator.evaluate(Pipeline(folder, make), out, num_per_prompt=5, steps=3)


def test_new_real_clips_score_at_the_ceiling(folder, tmp_path):
    m = evaluate(folder, real, tmp_path)
    acc = m["caption_accuracy"]
    assert m["evaluator"] == "video-motion (own data)" and m["held_out"] == "the dataset's eval split"
    assert m["num_train_items"] == 80 and m["num_held_out_items"] == 20 and m["num_samples"] == 20
    assert acc["real_held_out"] >= 0.9 and acc["samples"] >= 0.85 and acc["chance"] == 0.25
    assert m["frechet"]["samples"] < 3 * m["frechet"]["real_held_out"]
    assert (tmp_path / "closest_pairs.png").is_file()


def shuffled(prompts):  # the same pixels in a random order in every frame
    x = real(prompts)
    order = torch.randperm(SIZE * SIZE, generator=torch.Generator().manual_seed(0))
    return x.flatten(3)[..., order].reshape(x.shape)


def noise(prompts):
    return 255 * torch.rand(len(prompts), 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def wrong(prompts):
    return real([OTHER[p] for p in prompts])


@pytest.mark.parametrize("make", [shuffled, noise, wrong], ids=["shuffled", "noise", "wrong"])
def test_shuffled_noise_and_wrong_captions_score_near_chance(folder, tmp_path, make):
    assert evaluate(folder, make, tmp_path)["caption_accuracy"]["samples"] <= 0.45


def test_clips_in_both_splits_are_not_held_out(folder, tmp_path):
    """Rows without a split belong to both: the judges hold out only the eval rows."""
    from pathlib import Path

    root = Path(folder)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    rows = []
    for line in (root / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        (mixed / row["file_name"]).write_bytes((root / row["file_name"]).read_bytes())
        if row["split"] == "train" and int(row["file_name"][:3]) % 2:
            del row["split"]  # odd training clips: in both splits
        rows.append(json.dumps(row))
    (mixed / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    m = evaluate(str(mixed), real, tmp_path / "out")
    assert m["held_out"] == "the 20 items of the eval split that are not in train"
    assert m["num_train_items"] == 80 and m["num_held_out_items"] == 20
