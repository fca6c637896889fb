"""Ground truth of the moving-shapes generator: directions, bounces, pixels, held-out splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polydiff.errors import ConfigError
from polydiff_video.attributes import COLOURS, DIRECTIONS, SHAPES, all_combos, default_held_out, parse_caption
from polydiff_video.data.moving_shapes import MovingShapesDataset, simulate_positions
from polydiff_video.data.shapes import shape_mask


def test_simulate_positions_reflects_off_both_edges():
    # x: 20 -> 23 -> 26 reflects to 22 -> 19 -> 16; y stays
    positions, bounces = simulate_positions((5, 20), (0, 3), frames=5, limit=24)
    assert positions.tolist() == [[5, 20], [5, 23], [5, 22], [5, 19], [5, 16]]
    assert bounces == 1
    positions, bounces = simulate_positions((2, 0), (-2, 0), frames=4, limit=10)
    assert positions[:, 0].tolist() == [2, 0, 2, 4]
    assert bounces == 1


def test_simulate_positions_without_bounce_is_linear():
    positions, bounces = simulate_positions((3, 4), (1, 2), frames=4, limit=20)
    assert positions.tolist() == [[3, 4], [4, 6], [5, 8], [6, 10]]
    assert bounces == 0


def _step_and_reflect(start, velocity, frames, limit):
    """Reference: move one frame at a time and reflect off the edges as often as needed."""
    pos, vel = list(start), list(velocity)
    positions, bounces = [tuple(pos)], 0
    for _ in range(frames - 1):
        for axis in range(2):
            pos[axis] += vel[axis]
            while not 0 <= pos[axis] <= limit:
                pos[axis] = -pos[axis] if pos[axis] < 0 else 2 * limit - pos[axis]
                vel[axis], bounces = -vel[axis], bounces + 1
        positions.append(tuple(pos))
    return positions, bounces


def test_closed_form_reflection_matches_stepping_frame_by_frame():
    rng = np.random.default_rng(0)
    for _ in range(500):
        limit = int(rng.integers(1, 12))
        start = rng.integers(0, limit + 1, size=2).tolist()
        velocity = rng.integers(-2 * limit - 1, 2 * limit + 2, size=2).tolist()  # up to 2 bounces a frame
        frames = int(rng.integers(2, 12))
        positions, bounces = simulate_positions(start, velocity, frames, limit)
        expected, expected_bounces = _step_and_reflect(start, velocity, frames, limit)
        assert [tuple(p) for p in positions.tolist()] == expected, (start, velocity, frames, limit)
        assert bounces == expected_bounces, (start, velocity, frames, limit)


def test_shape_masks_are_distinct_and_fill_their_box():
    masks = {s: shape_mask(s, 8) for s in SHAPES}
    assert masks["square"].all()
    assert 0.7 < masks["circle"].mean() < 0.85  # pi / 4 of the box
    assert 0.4 < masks["triangle"].mean() < 0.6
    assert (
        masks["triangle"][-1].all() and masks["triangle"][0].sum() <= 2
    )  # base at the bottom, apex at the top


@pytest.fixture(scope="module")
def eval_items():
    ds = MovingShapesDataset("eval")
    return ds, [ds[i] for i in range(len(ds))]


def test_items_have_the_documented_shape_and_range(eval_items):
    ds, items = eval_items
    item = items[0]
    assert item["x"].shape == (3, 8, 32, 32) == ds.data_shape
    assert item["x"].dtype == torch.float32
    assert item["x"].min() >= 0 and item["x"].max() <= 255
    assert item["track"].shape == (8, 2)
    assert parse_caption(item["text"]) is not None


def test_start_of_motion_follows_the_caption_direction(eval_items):
    ds, items = eval_items
    for item in items:
        steps = np.diff(item["track"].numpy(), axis=0)[: ds.clean_steps]
        unit = np.array(DIRECTIONS[item["direction"]], float)
        speeds = steps @ unit
        assert (speeds >= ds.speed_range[0]).all(), item["text"]
        assert np.allclose(steps - np.outer(speeds, unit), 0), "motion leaves the caption's axis"


def test_bounces_reverse_the_motion_and_keep_the_object_inside(eval_items):
    ds, items = eval_items
    bounced = [it for it in items if it["bounces"] > 0]
    assert 0.2 < len(bounced) / len(items) < 0.9  # both kinds of clips occur
    for item in bounced:
        unit = np.array(DIRECTIONS[item["direction"]], float)
        along = np.diff(item["track"].numpy(), axis=0) @ unit
        # moved along the caption at full speed, then the reflection shortened or reversed the step
        assert along[0] > 0 and along[-1] < along[0]
    for item in items:
        mask = item["x"].amax(dim=0) > 0  # [T, H, W]
        area = mask.sum(dim=(1, 2))
        assert (area == area[0]).all()  # never clipped by an edge: the object stays inside


def test_pixels_agree_with_the_ground_truth_track_and_colour(eval_items):
    _, items = eval_items
    for item in items[:48]:
        x = item["x"]
        mask = x.amax(dim=0) > 0  # [T, H, W]
        ys, xs = torch.arange(32.0), torch.arange(32.0)
        area = mask.sum(dim=(1, 2)).float()
        cy = (mask.sum(dim=2) * ys).sum(dim=1) / area
        cx = (mask.sum(dim=1) * xs).sum(dim=1) / area
        assert torch.allclose(torch.stack([cy, cx], dim=1), item["track"], atol=1e-4)
        assert (area == area[0]).all()  # rigid object
        colour = x[:, mask].T.unique(dim=0)
        assert colour.tolist() == [list(COLOURS[item["colour"]])]


def test_held_out_combinations_are_absent_from_training_only():
    train, evaluation = MovingShapesDataset("train", num_clips=200), MovingShapesDataset("eval")
    held = {c.caption for c in default_held_out()}
    assert len(held) == 8
    assert held.isdisjoint(train.captions)
    assert held.isdisjoint({train[i]["text"] for i in range(len(train))})
    assert held <= set(evaluation.captions)
    assert set(evaluation.held_out_prompts) == held
    assert set(evaluation.eval_prompts) == held | set(evaluation.seen_prompts)
    assert set(evaluation.seen_prompts) <= set(train.captions)
    # composition, not new words: every pair of attributes of a held-out combo is trained on
    seen = [parse_caption(c) for c in train.captions]
    for combo in default_held_out():
        assert any(s.colour == combo.colour and s.direction == combo.direction for s in seen)
        assert any(s.colour == combo.colour and s.shape == combo.shape for s in seen)
        assert any(s.shape == combo.shape and s.direction == combo.direction for s in seen)


def test_custom_held_out_and_bad_captions():
    ds = MovingShapesDataset("train", held_out=["a red circle moving up"], num_clips=10)
    assert "a red circle moving up" not in ds.captions and len(ds.combos) == len(all_combos()) - 1
    with pytest.raises(ConfigError, match="purple"):
        MovingShapesDataset("train", held_out=["a purple circle moving up"])


def test_clips_are_a_function_of_seed_split_and_index():
    a, b = MovingShapesDataset("train", num_clips=8), MovingShapesDataset("train", num_clips=100)
    assert all(torch.equal(a[i]["x"], b[i]["x"]) for i in range(8))  # not a function of num_clips
    other = MovingShapesDataset("train", num_clips=8, seed=1)
    assert not all(torch.equal(a[i]["x"], other[i]["x"]) for i in range(8))


def test_smaller_clips_and_impossible_settings():
    ds = MovingShapesDataset("train", frames=6, size=16, num_clips=4)
    assert ds[0]["x"].shape == (3, 6, 16, 16)
    with pytest.raises(ConfigError, match="cannot move"):
        MovingShapesDataset("train", size=8, speed=4)
    with pytest.raises(IndexError):
        ds[4]


def test_writer_options_and_colours_are_distinct():
    assert MovingShapesDataset("eval", fps=12).writer_options() == {"fps": 12}
    rgb = np.array(list(COLOURS.values()), float)
    distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert distances[~np.eye(len(rgb), dtype=bool)].min() > 100
