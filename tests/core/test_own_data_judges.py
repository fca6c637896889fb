"""The core's own-data judges (caption classifier, Frechet distance, memorisation) on small
generated data: real held-out items score near the ceiling, shuffled, noise and wrong-caption
items near chance, copies of training items are caught."""

from __future__ import annotations

import json

import pytest
import torch

from polydiff.evaluation.judge import OwnDataJudge, RealItems, flip_task, split_items
from polydiff.evaluation.memorisation import nearest_items
from polydiff.evaluation.report import pairs_picture, write_report
from polydiff.evaluation.targets import CaptionTargets

ORIENTATIONS = ("horizontal", "vertical")
HALVES = ("top", "bottom")


def bars(n: int, seed: int, spatial: tuple[int, ...] = (12, 12), words: bool = False) -> RealItems:
    """A bright bar (horizontal or vertical) in the top or bottom half of noisy pictures ``[1, *S]``
    in [0, 255] (the last two axes are height and width; a leading one is time)."""
    g = torch.Generator().manual_seed(seed)
    x = 30 * torch.rand(n, 1, *spatial, generator=g)
    captions = []
    h, w = spatial[-2:]
    for i in range(n):
        o, half = torch.randint(0, 2, (2,), generator=g).tolist()
        if o == 0:  # a horizontal bar: its row in the chosen half
            row = torch.randint(1, h // 2 - 1, (1,), generator=g).item() + half * (h // 2)
            x[i, 0, ..., row, 2 : w - 2] = 255
        else:  # a vertical bar, in the chosen half's rows
            col = torch.randint(2, w - 2, (1,), generator=g).item()
            x[i, 0, ..., half * (h // 2) + 1 : (half + 1) * (h // 2) - 1, col] = 255
        text = f"a {ORIENTATIONS[o]} bar at the {HALVES[half]}"
        if words:  # free captions: a filler word the picture does not show, and a unique number
            text += f" {('plain', 'thin', 'bright')[i % 3]} number{seed}x{i}"
        captions.append(text)
    return RealItems(x, captions)


@pytest.fixture(scope="module")
def judge() -> OwnDataJudge:
    return OwnDataJudge(bars(160, 0), bars(80, 1), steps=120, width=12)


def test_targets_are_classes_for_a_finite_caption_set_and_words_for_free_captions():
    assert CaptionTargets.from_captions(["a", "b", "a", "b"]) == CaptionTargets("classes", ("a", "b"))
    free = CaptionTargets.from_captions(bars(60, 0, words=True).captions)
    assert free.kind == "words" and {"horizontal", "vertical", "top", "bottom"} <= set(free.names)
    assert "a" not in free.names and "bar" not in free.names  # in every caption: no information
    assert CaptionTargets.from_captions(["", ""]).kind == "none"
    assert free.encode(["a vertical bar at the top"]).sum().item() == 2.0


def test_real_held_out_scores_at_the_ceiling(judge):
    real = bars(80, 1)
    m = judge.score(real.x, real.captions)
    acc = m["caption_accuracy"]
    assert acc["real_held_out"] >= 0.95 and acc["samples"] == pytest.approx(acc["real_held_out"])
    assert acc["chance"] == 0.25 and acc["num_classes"] == 4
    assert m["frechet"]["samples"] == pytest.approx(
        m["frechet"]["real_held_out"], rel=1e-4
    )  # same items, other batching
    assert m["memorisation"]["ratio"] == pytest.approx(1.0) and m["memorisation"]["copies"] <= 0.1


def test_shuffled_noise_and_wrong_captions_score_near_chance(judge):
    real = bars(80, 1)
    g = torch.Generator().manual_seed(0)
    shuffled = real.x.flatten(2)[..., torch.randperm(144, generator=g)].reshape(real.x.shape)
    noise = 255 * torch.rand(real.x.shape, generator=g)
    wrong = [
        f"a {ORIENTATIONS[c.split()[1] == 'horizontal']} bar at the {c.split()[-1]}" for c in real.captions
    ]
    reference = judge.score(real.x, real.captions)["frechet"]["real_held_out"]
    for x, captions in ((shuffled, real.captions), (noise, real.captions), (real.x, wrong)):
        m = judge.score(x, captions)
        assert m["caption_accuracy"]["samples"] <= 0.45
    assert judge.score(noise, real.captions)["frechet"]["samples"] > 5 * reference
    assert judge.score(noise, real.captions)["memorisation"]["ratio"] > 2


def test_copies_of_training_items_are_caught(judge):
    train = judge.train
    m = judge.score(train.x[:40] + 0.5, train.captions[:40])
    assert m["memorisation"]["ratio"] < 0.1 and m["memorisation"]["copies"] == 1.0
    sample, neighbour, distance = m["_pairs"][0]
    assert neighbour == sample and distance < 0.05


def test_free_captions_clips_and_signals():
    """Multi-label words on 2-D items, and the same judges on 3-D clips and 1-D signals."""
    words = OwnDataJudge(bars(160, 0, words=True), bars(60, 1, words=True), steps=150, width=12)
    real = bars(60, 1, words=True)
    acc = words.score(real.x, real.captions)["caption_accuracy"]
    # the filler words cannot be read from the picture: the ceiling is below 1
    assert 0.75 <= acc["real_held_out"] <= 0.9 and acc["chance"] == 0.5
    noise = 255 * torch.rand(real.x.shape, generator=torch.Generator().manual_seed(1))
    assert words.score(noise, real.captions)["caption_accuracy"]["samples"] <= 0.6

    clips = OwnDataJudge(bars(120, 0, (3, 8, 8)), bars(40, 1, (3, 8, 8)), steps=100, width=8)
    assert clips.ceiling()["accuracy"] >= 0.9
    signals = RealItems(bars(120, 0).x[:, :, :, 6], bars(120, 0).captions)  # one column: [1, 12]
    assert OwnDataJudge(*split_items(signals), steps=20, width=8).targets.kind == "classes"


def test_unconditional_data_gets_frechet_in_flip_features_and_memorisation():
    items = bars(80, 0)
    judge = OwnDataJudge(*split_items(RealItems(items.x, [""] * 80)), steps=80, width=8)
    copies = judge.score(judge.train.x[:16], [""] * 16)
    noise = judge.score(255 * torch.rand(16, *items.x.shape[1:]), [""] * 16)
    assert not judge.conditional and judge.prompts(3) == ["", "", ""]
    assert "caption_accuracy" not in copies and copies["memorisation"]["copies"] == 1.0
    assert copies["frechet"]["features"] == "flip classifier (no captions)"
    assert noise["frechet"]["samples"] > 5 * noise["frechet"]["real_held_out"]
    flipped, which = flip_task(torch.arange(4.0).reshape(1, 1, 2, 2))
    assert which.tolist() == [0, 1, 2, 3] and flipped[3].flatten().tolist() == [3, 2, 1, 0]
    assert flip_task(torch.ones(1, 1, 3))[0][:, 0, 0].tolist() == [1, 1, -1, -1]  # 1-D: negate


def test_report_and_picture(tmp_path, judge):
    real = bars(8, 1)
    m = judge.score(real.x, real.captions, pairs=3)
    pairs = [(real.x[s], judge.train.x[t], f"d={d:.2f}") for s, t, d in m["_pairs"]]
    pairs_picture(pairs, lambda x: x.expand(3, -1, -1).to(torch.uint8), tmp_path / "pairs.png")
    written = write_report(m, tmp_path, ["a note"])
    assert json.loads((tmp_path / "metrics.json").read_text()) == written
    assert "_pairs" not in written and set(written["explanations"]) == {
        "caption_accuracy",
        "frechet",
        "memorisation",
    }
    assert "## memorisation" in (tmp_path / "report.md").read_text()
    from PIL import Image

    assert Image.open(tmp_path / "pairs.png").size[1] > 3 * 12


def test_nearest_items_and_bad_inputs():
    refs = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    dist, index = nearest_items(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), refs)
    assert index.tolist() == [1, 0] and dist.tolist() == pytest.approx([0.0, (1 / 2) ** 0.5])
    with pytest.raises(ValueError, match="same item shape"):
        nearest_items(torch.zeros(1, 3), refs)
    with pytest.raises(Exception, match="at least 4"):
        split_items(RealItems(torch.zeros(3, 1, 2), ["", "", ""]))


def test_evaluate_cli_judges_a_modality_without_an_evaluator_by_its_data(toy_registry, monkeypatch, tmp_path):
    """The toy modality registers no evaluator: ``polydiff evaluate`` uses the core's own-data one."""
    from polydiff import plugins
    from polydiff.cli.main import main

    monkeypatch.setattr(plugins, "get_registry", lambda: toy_registry)
    run = tmp_path / "run"
    assert main(["train", "toy", "--steps", "4", "--out", str(run), "--no-progress"]) == 0
    argv = ["evaluate", str(run), "--num-per-prompt", "2", "--steps", "2", "--option", "classifier_steps=30"]
    assert main(argv) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["evaluator"] == "own-data" and metrics["held_out"] == "the dataset's eval split"
    assert metrics["caption_accuracy"]["real_held_out"] == 1.0 and metrics["num_samples"] == 4
    assert (run / "eval" / "closest_pairs.png").is_file() and (run / "eval" / "samples.json").is_file()
    assert main(["evaluate", str(run), "--option", "nonsense=1"]) == 2


def test_split_keeps_two_training_items_per_caption():
    captions = ["a"] * 3 + ["b"] * 10 + ["c"] * 2
    train, held = split_items(RealItems(torch.arange(15.0).reshape(15, 1, 1), captions), 0.3)
    assert sorted(held.captions) == ["a"] + ["b"] * 3
    assert sorted(train.x.flatten().tolist() + held.x.flatten().tolist()) == list(range(15))
    assert CaptionTargets.from_captions(train.captions).kind == "classes"
