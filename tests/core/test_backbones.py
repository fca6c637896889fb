"""Backbones as components: the DiT, the ``polydiff_backbones`` hook, ``--backbone`` and old configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import polydiff.plugins as plugins
from polydiff.builder import build_model
from polydiff.cli.main import main
from polydiff.errors import ConfigError, UnknownNameError
from polydiff.nn.dit import DiT, axis_position_embedding, build_dit
from polydiff.nn.dit_config import DiTConfig
from polydiff.nn.unet import UNet
from polydiff.pipeline import DiffusionPipeline
from polydiff.run_config import RunConfig
from polydiff.training.checkpoint import save_checkpoint

OLD_CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "configs" / "toy-format1-config.json"
TINY_DIT = {"hidden_size": 32, "depth": 2, "head_dim": 16}


def _randomise(net: torch.nn.Module) -> None:
    """Non-zero weights everywhere (a fresh DiT predicts exactly zero)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize(
    ("dims", "spatial", "patch"), [(1, (24,), [4]), (2, (8, 12), [2]), (3, (3, 4, 8), [1, 2, 2])]
)
def test_dit_any_rank_with_every_input(dims, spatial, patch):
    net = build_dit(dims=dims, in_channels=2, cond_channels=1, context_dim=6, patch_size=patch, **TINY_DIT)
    x, concat = torch.randn(2, 2, *spatial), torch.randn(2, 1, *spatial)
    ctx, mask = torch.randn(2, 5, 6), torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    t = torch.tensor([3, 90])
    out = net(x, t, ctx, mask, concat)
    assert out.shape == x.shape and out.abs().max() == 0  # zero-initialised final layer
    _randomise(net)
    out = net(x, t, ctx, mask, concat)
    assert out.abs().mean() > 1e-3
    padded = ctx.clone()
    padded[0, 2:] = 100.0  # masked-out tokens of sample 0 change nothing
    assert torch.allclose(net(x, t, padded, mask, concat), out, atol=1e-5)
    ctx2 = ctx.clone()
    ctx2[0, 0] += 1.0  # a real token does
    assert not torch.allclose(net(x, t, ctx2, mask, concat)[0], out[0], atol=1e-4)
    assert torch.allclose(net(x, t, ctx2, mask, concat)[1], out[1], atol=1e-5)  # per sample


def test_dit_variable_length_and_patch_grid_are_consistent():
    """One network takes any multiple of the patch: positions come from the actual grid."""
    net = build_dit(dims=1, in_channels=3, patch_size=[2], **TINY_DIT)
    _randomise(net)
    for length in (8, 14, 40):
        assert net(torch.randn(1, 3, length), torch.tensor([5])).shape == (1, 3, length)
    # a patch's output depends on its position: the same input at two places differs
    x = torch.randn(1, 3, 2).repeat(1, 1, 4)
    out = net(x, torch.tensor([5]))
    assert not torch.allclose(out[..., :2], out[..., 2:4], atol=1e-4)
    pe = axis_position_embedding([3, 5], 16, torch.device("cpu"))
    assert pe.shape == (15, 16) and torch.equal(pe[0, :8], pe[4, :8])  # row 0 shares its row chunk
    assert not torch.equal(pe[0, 8:], pe[4, 8:])


def test_dit_unpatchify_inverts_patchify():
    """With identity-like projections the token grid maps every pixel back to its place."""
    net = DiT(DiTConfig(dims=2, in_channels=1, patch_size=(2,), hidden_size=32, depth=1, head_dim=16))
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).reshape(2, 1, 4, 6)
    from einops import rearrange

    tokens = rearrange(x, f"{net.to_tokens} -> {net.to_spatial}", p0=2, p1=2)
    back = rearrange(tokens, f"{net.to_spatial} -> {net.to_tokens}", p0=2, p1=2, a=2, b=3)
    assert tokens.shape == (2, 6, 4) and torch.equal(back, x)


def test_dit_config_and_input_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"^backbone.patch_size \[2, 2\] must hold one size or one per"):
        DiTConfig(dims=3, patch_size=(2, 2))
    with pytest.raises(
        ConfigError, match="backbone.hidden_size=100 is not a multiple of backbone.head_dim=32"
    ):
        DiTConfig(hidden_size=100)
    with pytest.raises(ConfigError, match="backbone.depth"):
        DiTConfig(depth=0)
    with pytest.raises(ConfigError, match="unknown backbone option"):
        build_dit(dims=2, in_channels=3, widht=3)
    net = build_dit(dims=2, in_channels=3, patch_size=[4], **TINY_DIT)
    with pytest.raises(ConfigError, match="height 10 is not a multiple of patch 4; use 8"):
        net(torch.randn(1, 3, 10, 8), torch.tensor([1]))
    with pytest.raises(ConfigError, match="got a context"):
        net(torch.randn(1, 3, 8, 8), torch.tensor([1]), context=torch.randn(1, 2, 4))


def test_backbones_are_components(toy_registry):
    assert {"unet", "dit", "diffusers-unet2d"} <= set(toy_registry.names("backbone"))
    assert toy_registry.component("backbone", "dit").plugin == "polydiff"
    with pytest.raises(UnknownNameError, match="dti"):
        RunConfig.for_modality("toy", backbone="dti", registry=toy_registry)


def test_dit_options_are_checked_with_the_config(toy_registry):
    cfg = RunConfig.for_modality("toy", backbone="dit", registry=toy_registry)
    with pytest.raises(ConfigError, match=r"^backbone.depth must be >= 1, got 0"):
        cfg.apply_overrides(["backbone.depth=0"])
    cfg.backbone.options.clear()
    with pytest.raises(ConfigError, match=r"unknown backbone field\(s\) \['dpeth'\]. Did you mean 'depth'"):
        cfg.apply_overrides(["backbone.dpeth=2"])


def test_dit_run_builds_saves_and_reloads(toy_registry, toy_config, tmp_path):
    cfg = RunConfig.for_modality("toy", backbone="dit", registry=toy_registry)
    cfg.apply_overrides([f"backbone.{k}={v}" for k, v in TINY_DIT.items()] + ["backbone.patch_size=[4]"])
    cfg.data_shape = [1, 16]
    from toy_plugin import ToySignals

    model = build_model(cfg, toy_registry, ToySignals(split="train"))
    assert isinstance(model.unet, DiT) and model.unet.config.dims == 1
    assert cfg.backbone.options["context_dim"] == model.conditioner.context_dim  # written back
    assert cfg.backbone.options["patch_size"] == (4,)
    save_checkpoint(tmp_path, 1, cfg, model.state_dict())
    pipe = DiffusionPipeline.from_checkpoint(tmp_path, registry=toy_registry)
    assert isinstance(pipe.model.unet, DiT) and pipe.config.backbone.name == "dit"
    assert pipe(["up"], steps=2).samples.shape == (1, 1, 16)
    with pytest.raises(ConfigError, match="backbone 'unet' takes its options from the unet section"):
        toy_config.apply_overrides(["backbone.depth=2"])


def test_old_config_without_backbone_is_a_unet_checkpoint(toy_registry, tmp_path):
    """A config.json from before backbones existed (no backbone field, a unet section) loads as
    the UNet, and weights saved under unet.* load into it."""
    data = json.loads(OLD_CONFIG.read_text())
    assert "backbone" not in data and "unet" in data
    # the fixture's hand-written vocabulary is not one the tokenizer ever wrote (it needs
    # <pad>, <unk>, <bos> first); the rest of the file is as before
    data["conditioner"]["options"]["vocab"] = ["<pad>", "<unk>", "<bos>", "up", "down"]
    old = json.dumps(data, indent=2)
    (tmp_path / "config.json").write_text(old)
    cfg = RunConfig.load(tmp_path / "config.json")
    assert cfg.backbone.name == "unet" and cfg.backbone.options == {}
    model = build_model(cfg, toy_registry)
    assert isinstance(model.unet, UNet)
    state = model.state_dict()
    assert any(k.startswith("unet.input_blocks.") for k in state)
    save_checkpoint(tmp_path / "run", 5, cfg, state)
    ckpt_config = tmp_path / "run" / "checkpoints" / "step-0000005" / "config.json"
    ckpt_config.write_text(old)  # the old file beside the weights
    pipe = DiffusionPipeline.from_checkpoint(tmp_path / "run", registry=toy_registry)
    assert isinstance(pipe.model.unet, UNet)
    assert torch.equal(pipe.model.unet.out[2].weight, state["unet.out.2.weight"])


@pytest.fixture
def cli(toy_registry, monkeypatch):
    monkeypatch.setattr(plugins, "get_registry", lambda: toy_registry)
    return main


def test_cli_trains_and_samples_a_dit(cli, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "toy", "--backbone", "dit", "--steps", "3", "--out", str(run), "--no-progress"]
    sets = [x for k, v in TINY_DIT.items() for x in ("--set", f"backbone.{k}={v}")]
    assert cli(args + sets) == 0
    saved = json.loads((run / "checkpoints" / "step-0000003" / "config.json").read_text())
    assert saved["backbone"]["name"] == "dit" and saved["backbone"]["options"]["depth"] == 2
    assert cli(["sample", str(run), "--prompt", "up", "--steps", "2", "--out", str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    resume = ["train", "toy", "--resume", "--backbone", "unet", "--out", str(run), "--steps", "4"]
    assert cli(resume) == 2
    assert "backbone 'dit', not 'unet'" in capsys.readouterr().err
