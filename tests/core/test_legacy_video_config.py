"""Checkpoints written before the space-time UNet became its own config section still load.

The fixtures ``tests/fixtures/configs/video-{quick,quick-expert}-format1-config.json`` are the
``config.json`` files the code of that time wrote for the video presets (``factorized``,
``frame_embedding``, ``frame_modulation``, ``frame_norm`` flat in ``unet``), with the sizes the
builder fills in. ``video-format1-networks.json`` holds what that code built from them: the
state-dict layout and the output of the network with seeded weights, via :func:`fingerprint`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from polydiff.nn.config import SpaceTimeConfig
from polydiff.nn.unet import UNet
from polydiff.run_config import RunConfig

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"


def fingerprint(unet_config) -> dict:
    """Parameter count, a hash of the state-dict keys and shapes, and statistics of the output of
    the network whose weights are drawn from a seeded generator in state-dict order."""
    torch.manual_seed(0)
    model = UNet(unet_config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=generator) * 0.05)
    x = torch.randn(2, unet_config.in_channels, 5, 8, 8, generator=generator)
    context = torch.randn(2, 3, unet_config.context_dim, generator=generator)
    with torch.no_grad():
        y = model(x, torch.tensor([10, 700]), context=context).double()
    layout = "\n".join(f"{k}:{list(v.shape)}" for k, v in model.state_dict().items())
    return {
        "num_parameters": model.num_parameters(),
        "layout_sha256": hashlib.sha256(layout.encode()).hexdigest(),
        "output": [float(y.mean()), float(y.abs().mean()), float(y.flatten()[::97].sum())],
    }


@pytest.mark.parametrize("preset", ["quick", "quick-expert"])
def test_old_video_config_builds_the_same_network(preset):
    config = RunConfig.load(CONFIGS / f"video-{preset}-format1-config.json")
    expected = json.loads((CONFIGS / "video-format1-networks.json").read_text())[preset]
    old = json.loads((CONFIGS / f"video-{preset}-format1-config.json").read_text())["unet"]
    assert config.unet.spacetime == SpaceTimeConfig(
        frame_embedding=old["frame_embedding"],
        frame_modulation=old["frame_modulation"],
        frame_norm=old["frame_norm"],
    )
    got = fingerprint(config.unet)
    assert got["num_parameters"] == expected["num_parameters"]
    assert got["layout_sha256"] == expected["layout_sha256"]
    assert got["output"] == pytest.approx(expected["output"], rel=1e-5, abs=1e-7)
