"""Rank 3 is three spatial axes; the space-time UNet is the ``unet.spacetime`` section, which
``--set`` reaches; checkpoints written before that section existed still load.

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

from polydiff import Component, Modality, hookimpl
from polydiff.errors import ConfigError
from polydiff.nn.config import SpaceTimeConfig
from polydiff.nn.unet import UNet
from polydiff.plugins import Registry
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


class VoxelsPlugin:
    """A static 3-D modality (as docs/writing-plugins.md walks): rank 3, no space-time section."""

    @hookimpl
    def polydiff_modalities(self):
        quick = {"unet": {"model_channels": 16, "channel_mult": [1, 2], "attention_levels": [1]}}
        return [Modality("voxels", rank=3, default_dataset="toy-voxels", presets={"quick": quick})]

    @hookimpl
    def polydiff_datasets(self):
        return [Component("toy-voxels", "toy_plugin:ToySignals", modality="voxels")]


@pytest.fixture
def voxels():
    return RunConfig.for_modality("voxels", registry=Registry.from_plugins(("voxels", VoxelsPlugin())))


def test_rank_3_gets_full_3d_layers_and_set_reaches_the_spacetime_section(voxels):
    assert voxels.unet.dims == 3 and voxels.unet.spacetime is None
    with pytest.raises(
        ConfigError, match=r"unet.spacetime is null, not a section .*--set unet.spacetime=true"
    ):
        voxels.apply_overrides(["unet.spacetime.frame_norm=false"])
    voxels.apply_overrides(["unet.spacetime=true", "unet.spacetime.frame_norm=false"])
    assert voxels.unet.spacetime == SpaceTimeConfig(frame_norm=False)
    voxels.apply_overrides(['unet.spacetime={"frame_embedding": true}'])
    assert voxels.unet.spacetime == SpaceTimeConfig(frame_embedding=True)
    assert RunConfig.from_dict(voxels.to_dict()).unet.spacetime == SpaceTimeConfig(frame_embedding=True)
    with pytest.raises(
        ConfigError, match=r"unknown unet.spacetime field\(s\) \['frame_nrom'\]\. Did you mean 'frame_norm'"
    ):
        voxels.apply_overrides(["unet.spacetime.frame_nrom=false"])
    with pytest.raises(ConfigError, match=r"unet.spacetime.frame_norm must be true or false, got 'no'"):
        voxels.apply_overrides(["unet.spacetime.frame_norm=no"])
    voxels.apply_overrides(["unet.spacetime=null"])
    assert voxels.unet.spacetime is None


def test_the_old_flat_fields_name_their_new_place(voxels, toy_config):
    with pytest.raises(
        ConfigError, match=r"unet.factorized is now part of .* unet.spacetime.*--set unet.spacetime=true"
    ):
        voxels.apply_overrides(["unet.factorized=true"])
    with pytest.raises(
        ConfigError, match=r"unet.frame_norm is now part of .*use --set unet.spacetime.frame_norm="
    ):
        voxels.apply_overrides(["unet.frame_norm=false"])
    with pytest.raises(
        ConfigError, match=r"needs rank-3 data, got unet.dims=1; drop it: --set unet.spacetime=null"
    ):
        toy_config.apply_overrides(["unet.spacetime=true"])


def test_old_flat_fields_of_other_ranks_are_dropped():
    """Before, ``factorized`` (default True) and the frame flags were stored for every rank and
    had no effect outside dims=3; an old 1-D or unfactorized 3-D config builds no space-time UNet."""
    old = json.loads((CONFIGS / "video-quick-format1-config.json").read_text())
    assert RunConfig.from_dict({**old, "unet": {**old["unet"], "factorized": False}}).unet.spacetime is None
    one_d = {**old["unet"], "dims": 1, "frame_norm": False}
    assert RunConfig.from_dict({**old, "unet": one_d}).unet.spacetime is None
