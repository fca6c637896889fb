"""The offline checkers: real clips score near 100%, shuffled or wrong clips score low."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polydiff_video.data.moving_shapes import MovingShapesDataset
from polydiff_video.evaluation.checks import (
    area_cv,
    motion_direction,
    nearest_colour,
    score_clip,
    summarise,
    track_jerk,
)
from polydiff_video.evaluation.evaluator import evaluate_clips, reference_clips
from polydiff_video.evaluation.tracking import track_object


@pytest.fixture(scope="module")
def real():
    ds = MovingShapesDataset("eval")
    items = [ds[i] for i in range(len(ds))]
    return ds, torch.stack([it["x"] for it in items]), [it["text"] for it in items]


def test_motion_direction_of_simple_tracks():
    line = np.stack([np.full(8, 10.0), 4 + 2 * np.arange(8.0)], axis=1)  # x grows: right
    assert motion_direction(line) == "right"
    assert motion_direction(line[::-1].copy()) == "left"
    assert motion_direction(line[:, ::-1].copy()) == "down"
    assert motion_direction(np.full((8, 2), 5.0)) is None  # no motion
    missing = line.copy()
    missing[1] = np.nan
    assert motion_direction(missing) is None
    zigzag = line.copy()
    zigzag[1:5, 1] = [2.0, 8.0, 4.0, 10.0]  # first-half steps disagree
    assert motion_direction(zigzag) is None


def test_track_object_finds_the_centroid_area_and_colour():
    clip = torch.zeros(3, 4, 16, 16)
    for t in range(4):
        clip[0, t, 2:6, 3 + t : 7 + t] = 200.0  # a red 4x4 square moving right
    track = track_object(clip)
    assert track.areas.tolist() == [16, 16, 16, 16]
    assert np.allclose(track.centroids, [[3.5, 4.5 + t] for t in range(4)])
    assert np.allclose(track.mean_rgb, [200.0, 0.0, 0.0])
    assert nearest_colour(track.mean_rgb) == "red"
    assert nearest_colour(None) is None


def test_area_cv_and_jerk_closed_form():
    assert area_cv(np.array([10, 10, 10])) == 0.0
    assert area_cv(np.array([10, 20])) == pytest.approx(5 / 15)
    assert area_cv(np.array([10, 0])) == float("inf")
    uniform = np.stack([np.zeros(8), 3.0 * np.arange(8)], axis=1)
    assert track_jerk(uniform) == 0.0
    bounce = uniform.copy()
    bounce[5:, 1] = [13.0, 10.0, 7.0]  # reflects off x = 14: two of six second differences change
    assert track_jerk(bounce) == 0.0  # the median ignores a bounce
    assert track_jerk(uniform[[0, 3, 1, 5, 2, 4, 7, 6]]) > 3


def test_real_clips_score_near_perfect(real):
    _, clips, prompts = real
    summary = summarise([score_clip(c, p) for c, p in zip(clips, prompts)])
    assert summary["direction_accuracy"] >= 0.99
    assert summary["colour_accuracy"] == 1.0
    assert summary["area_stable_rate"] == 1.0 and summary["area_cv_mean"] == 0.0
    assert summary["temporal_consistency"] >= 0.99


def test_shuffled_frames_score_low_on_motion(real):
    _, clips, prompts = real
    gen = torch.Generator().manual_seed(0)
    shuffled = [c[:, torch.randperm(c.shape[1], generator=gen)] for c in clips]
    summary = summarise([score_clip(c, p) for c, p in zip(shuffled, prompts)])
    assert summary["direction_accuracy"] < 0.4
    assert summary["temporal_consistency"] < 0.1
    assert summary["colour_accuracy"] == 1.0  # colour does not depend on the order of frames


def test_wrong_colours_and_vanishing_objects_are_caught(real):
    _, clips, prompts = real
    swapped = clips[:, [2, 1, 0]]  # red <-> blue channels
    red = [i for i, p in enumerate(prompts) if " red " in p]
    assert summarise([score_clip(swapped[i], prompts[i]) for i in red])["colour_accuracy"] == 0.0
    faded = clips[:8].clone()
    faded[:, :, 4:] = 0.0  # the object disappears half-way
    summary = summarise([score_clip(c, p) for c, p in zip(faded, prompts[:8])])
    assert summary["area_stable_rate"] == 0.0 and summary["object_visible_rate"] == 0.0


def test_evaluate_clips_splits_seen_and_held_out_and_compares_with_real(real):
    ds, clips, prompts = real
    held = ds.held_out_prompts
    wanted = ds.eval_prompts
    refs = reference_clips(ds, wanted, per_prompt=2)
    assert set(refs) == set(wanted) and all(len(v) == 2 for v in refs.values())
    picked = [i for i, p in enumerate(prompts) if p in wanted]
    gen_clips, gen_prompts = clips[picked], [prompts[i] for i in picked]
    result = evaluate_clips(gen_clips, gen_prompts, held_out=held, reference=refs)
    assert result["held_out"]["clips"] == sum(p in held for p in gen_prompts) > 0
    assert result["seen"]["clips"] == sum(p not in held for p in gen_prompts) > 0
    assert result["held_out"]["direction_accuracy"] >= 0.99
    assert result["reference"]["all"]["direction_accuracy"] >= 0.99
    assert 0.8 < result["frame_change_ratio"] < 1.25  # real vs real: about the same change
    still = gen_clips[:, :, :1].expand_as(gen_clips)  # a frozen first frame
    frozen = evaluate_clips(still, gen_prompts, held_out=held, reference=refs)
    assert frozen["all"]["direction_accuracy"] == 0.0 and frozen["frame_change_ratio"] == 0.0
    row = next(r for r in result["per_prompt"] if r["prompt"] == held[0])
    assert row["split"] == "held_out"
