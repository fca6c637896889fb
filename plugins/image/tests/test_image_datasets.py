"""The image datasets: shapes, captions, held-out split, folder reading and its errors."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from itertools import combinations

import numpy as np
import pytest
import torch
from PIL import Image

from polydiff.errors import ConfigError, DataError
from polydiff_image.datasets.digits import DigitsDataset, digit_caption
from polydiff_image.datasets.folder import FolderDataset
from polydiff_image.datasets.shapes import COLOUR_HUES, Combo, ShapesDataset, held_out_combos

# ----------------------------------------------------------------------------- shapes


def test_shapes_items_have_the_right_shape_and_caption() -> None:
    ds = ShapesDataset("train", size=32, num_samples=50)
    for i in range(20):
        item = ds[i]
        assert item["x"].shape == (3, 32, 32) and item["x"].dtype == torch.uint8
        combo = Combo(item["colour"], item["shape"], item["position"])
        assert item["text"] == ds.caption(combo)
        assert ds.attributes(item["text"]) == combo
        assert item["x"].float().amax() > 150  # a bright shape on black
        assert item["x"][:, 0, 0].tolist() == [0, 0, 0] or item["x"][:, -1, -1].tolist() == [0, 0, 0]
    assert ds.data_shape == (3, 32, 32) and len(ds) == 50


def test_shapes_caption_wording() -> None:
    ds = ShapesDataset(grid=3)
    red, circle = ds.colours.index("red"), ds.shapes.index("circle")
    assert ds.caption(Combo(red, circle, ds.positions.index("top left"))) == "a red circle at the top left"
    assert ds.caption(Combo(red, circle, ds.positions.index("center"))) == "a red circle in the center"
    assert ds.caption(Combo(red, circle, ds.positions.index("left"))) == "a red circle on the left"


def test_shapes_are_deterministic_and_splits_differ() -> None:
    a, b = ShapesDataset("train", seed=3), ShapesDataset("train", seed=3)
    assert torch.equal(a[7]["x"], b[7]["x"]) and a[7]["text"] == b[7]["text"]
    ev = ShapesDataset("eval", seed=3)
    assert not all(torch.equal(a[i]["x"], ev[i]["x"]) for i in range(5))


@pytest.mark.parametrize("grid", [2, 3])
def test_train_split_never_shows_held_out_combinations(grid: int) -> None:
    train = ShapesDataset("train", grid=grid, num_samples=2000)
    held = set(train.held_out)
    assert held and len(held) < len(train.combos) // 4
    seen = Counter(
        Combo(it["colour"], it["shape"], it["position"]) for it in map(train.__getitem__, range(2000))
    )
    assert not held & set(seen)
    assert set(seen) == set(train.seen)  # every training combination does occur
    assert all(c not in held for c in map(train.attributes, train.captions))
    held_prompts = set(train.held_out_prompts)
    assert held_prompts <= set(train.eval_prompts) and not held_prompts & set(train.captions)
    ev = ShapesDataset("eval", grid=grid, num_samples=2000)
    assert held & {
        Combo(it["colour"], it["shape"], it["position"]) for it in map(ev.__getitem__, range(2000))
    }


def test_every_attribute_pair_of_a_held_out_combination_is_seen_in_training() -> None:
    ds = ShapesDataset(grid=3)
    seen = set(ds.seen)
    for combo in ds.held_out:
        for keep in combinations(("colour", "shape", "position"), 2):
            assert any(all(getattr(s, k) == getattr(combo, k) for k in keep) for s in seen), (combo, keep)


def test_held_out_rule() -> None:
    assert held_out_combos(2, 2, 2, 0) == []
    assert held_out_combos(2, 2, 2, 3) == [Combo(0, 0, 0), Combo(1, 1, 1)]
    assert len(held_out_combos(6, 4, 9, 7)) == 30


def test_shapes_colour_really_has_the_named_hue() -> None:
    ds = ShapesDataset(size=32, num_samples=60)
    for i in range(60):
        item = ds[i]
        x = item["x"].float()
        fg = x.amax(0) > 120
        r, g, b = (x[c][fg].mean().item() for c in range(3))
        name = ds.colours[item["colour"]]
        hue = COLOUR_HUES[name]
        strongest = {0.0: "r", 60.0: "rg", 120.0: "g", 180.0: "gb", 240.0: "b", 300.0: "rb"}[hue]
        levels = {"r": r, "g": g, "b": b}
        weakest = min(levels.values())
        assert all(levels[c] > weakest + 80 for c in strongest), (name, levels)


def test_shapes_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="colours"):
        ShapesDataset(colours=["red", "purple"])
    with pytest.raises(ConfigError, match="grid"):
        ShapesDataset(grid=4)


# ----------------------------------------------------------------------------- digits


def test_digits_splits_sizes_and_captions() -> None:
    train, ev = DigitsDataset("train"), DigitsDataset("eval")
    assert (len(train), len(ev)) == (1437, 360)
    item = train[5]
    assert item["x"].shape == (1, 16, 16) and item["x"].dtype == torch.uint8
    assert item["text"] == digit_caption(item["label"]) and item["text"].startswith("the digit ")
    assert digit_caption(7) == "the digit seven"
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    assert set(train.eval_prompts) == {digit_caption(d) for d in range(10)}
    assert DigitsDataset("train", size=8, channels=3)[0]["x"].shape == (3, 8, 8)


def test_digits_splits_are_disjoint() -> None:
    train, ev = DigitsDataset("train", size=8), DigitsDataset("eval", size=8)
    train_set = {bytes(x.numpy()) for x in train.images}
    overlap = sum(bytes(x.numpy()) in train_set for x in ev.images)
    assert overlap <= 3  # a handful of exact duplicates exist in the original data


# ----------------------------------------------------------------------------- folder


def _png(path, colour, size=(20, 12)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_folder_with_jsonl_captions(tmp_path) -> None:
    _png(tmp_path / "a.png", (255, 0, 0))
    _png(tmp_path / "sub" / "b.png", (0, 0, 255), size=(10, 30))
    lines = [{"file_name": "a.png", "text": "red"}, {"file_name": "sub/b.png", "text": "blue"}]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ds = FolderDataset(path=tmp_path, size=8)
    assert len(ds) == 2 and ds.data_shape == (3, 8, 8)
    by_file = {ds[i]["file"]: ds[i] for i in range(2)}
    assert by_file["a.png"]["text"] == "red" and by_file["sub/b.png"]["text"] == "blue"
    assert by_file["a.png"]["x"].shape == (3, 8, 8)
    assert by_file["a.png"]["x"][0].float().mean() > 250 and by_file["sub/b.png"]["x"][2].float().mean() > 250
    assert sorted(ds.captions) == ["blue", "red"]


def test_folder_with_csv_captions_and_centre_crop(tmp_path) -> None:
    image = np.zeros((10, 30, 3), dtype=np.uint8)
    image[:, 10:20] = 255  # white middle third of a wide image
    Image.fromarray(image).save(tmp_path / "wide.png")
    (tmp_path / "metadata.csv").write_text("file_name,text\nwide.png,a white bar\n")
    ds = FolderDataset(path=tmp_path, size=10)
    assert ds[0]["text"] == "a white bar"
    assert ds[0]["x"].float().mean() > 200  # the centre crop is the white part


def test_folder_without_metadata_is_unconditional(tmp_path) -> None:
    _png(tmp_path / "x.jpg", (0, 255, 0))
    ds = FolderDataset(path=tmp_path, size=4)
    assert ds[0]["text"] == "" and ds.captions == [] and ds.eval_prompts == [""] * 8


def test_corrupt_files_are_skipped_with_a_count(tmp_path) -> None:
    _png(tmp_path / "good.png", (255, 255, 0))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    with pytest.warns(UserWarning, match=r"skipped 2 of 3 .*broken\.png.*empty\.jpg"):
        ds = FolderDataset(path=tmp_path, size=4)
    assert len(ds) == 1 and ds.files == ["good.png"]
    assert sorted(name for name, _ in ds.skipped) == ["broken.png", "empty.jpg"]


def test_corrupt_files_raise_when_asked(tmp_path) -> None:
    _png(tmp_path / "good.png", (255, 255, 0))
    (tmp_path / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="broken.png"):
        FolderDataset(path=tmp_path, size=4, on_error="raise")


def test_folder_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(ConfigError, match="--data-path"):
        FolderDataset()
    with pytest.raises(DataError, match="no readable images"):
        FolderDataset(path=tmp_path)
    (tmp_path / "only.png").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no readable images"):
            FolderDataset(path=tmp_path)
    _png(tmp_path / "a.png", (1, 2, 3))
    (tmp_path / "metadata.jsonl").write_text(
        '{"file_name": "a.png", "text": "x"}\n{"file_name": "gone.png", "text": "y"}\n'
    )
    with pytest.raises(DataError, match="gone.png"):
        FolderDataset(path=tmp_path)
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "x"}\nnot json\n')
    with pytest.raises(DataError, match=r"metadata.jsonl:2"):
        FolderDataset(path=tmp_path)
    (tmp_path / "metadata.csv").write_text("file_name,text\na.png,x\n")
    with pytest.raises(DataError, match="both"):
        FolderDataset(path=tmp_path)
