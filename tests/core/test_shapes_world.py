"""The shapes world both synthetic plugins share: palette, held-out rules, one foreground threshold."""

from __future__ import annotations

import math
import subprocess
import sys

import torch

from polydiff.shapes_world import (
    FOREGROUND,
    PALETTE,
    centroid,
    foreground,
    held_out_by_sum,
    held_out_cycling,
)


def test_importing_the_world_imports_no_torch() -> None:
    code = "import sys, polydiff.shapes_world; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_palette_hues_are_60_degrees_apart_and_rgbs_have_those_hues_roughly() -> None:
    assert [c.hue for c in PALETTE.values()] == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    import colorsys

    for name, colour in PALETTE.items():
        hue = colorsys.rgb_to_hsv(*(v / 255 for v in colour.rgb))[0] * 360
        assert min(abs(hue - colour.hue), 360 - abs(hue - colour.hue)) < 15, name


def test_held_out_rules_keep_every_pair_in_training() -> None:
    by_sum = held_out_by_sum((6, 4, 9), 7)
    assert all(sum(c) % 7 == 0 for c in by_sum) and held_out_by_sum((6, 4, 9), 0) == []
    cycling = held_out_cycling(4, 4, 3)
    assert len(cycling) == 8 and cycling[:2] == [(0, 0, 0), (0, 2, 1)]
    for held, sizes in ((set(by_sum), (6, 4, 9)), (set(cycling), (4, 4, 3))):
        kept = [c for c in _all(sizes) if c not in held]
        for a, b in ((0, 1), (0, 2), (1, 2)):
            pairs = {(c[a], c[b]) for c in kept}
            assert len(pairs) == sizes[a] * sizes[b]


def _all(sizes):
    from itertools import product

    return list(product(*(range(n) for n in sizes)))


def test_one_threshold_for_pictures_and_clips() -> None:
    pictures = torch.zeros(1, 3, 2, 2)
    pictures[0, 1, 0, 0], pictures[0, 2, 1, 1] = FOREGROUND, FOREGROUND - 1
    assert foreground(pictures).tolist() == [[[True, False], [False, False]]]
    clip = pictures[0].unsqueeze(1).repeat(1, 3, 1, 1)  # [C, T, H, W]
    assert foreground(clip, channel_dim=0).shape == (3, 2, 2)
    assert FOREGROUND == 100.0


def test_centroid_in_pixel_indices_and_nan_when_empty() -> None:
    weight = torch.zeros(2, 4, 6)
    weight[0, 1:3, 4:6] = 1.0
    y, x, total = centroid(weight)
    assert (y[0].item(), x[0].item(), total.tolist()) == (1.5, 4.5, [4.0, 0.0])
    assert math.isnan(y[1].item()) and math.isnan(x[1].item())
