"""The core's 3D UNet on clips, and a short video training run through the real trainer."""

from __future__ import annotations

import json

import pytest
import torch

import polydiff_video.plugin
from polydiff.nn.config import UNetConfig
from polydiff.nn.unet import UNet
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.training.trainer import Trainer
from polydiff_video.evaluation.evaluator import VideoMotionEvaluator
from polydiff_video.presets import QUICK


@pytest.mark.parametrize("frames", [5, 8])
def test_quick_unet_keeps_frames_and_spatial_size(frames):
    config = UNetConfig(**{**QUICK["unet"], "context_dim": 16})
    unet = UNet(config)
    x = torch.randn(2, 3, frames, 16, 16)
    context = torch.randn(2, 4, 16)
    with torch.no_grad():
        for p in unet.parameters():  # a fresh UNet predicts zeros; perturb to see real outputs
            p.add_(0.01 * torch.randn_like(p))
        out = unet(x, torch.tensor([10, 900]), context=context)
    assert out.shape == x.shape
    assert out.abs().sum() > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    registry = Registry.from_plugins(polydiff_video.plugin)
    config = RunConfig.for_modality(
        "video",
        preset="quick",
        registry=registry,
        overrides={
            # pinned here, so that tuning the quick preset does not move this test's losses
            "dataset": {"frames": 4, "size": 8, "num_clips": 256, "speed": 1},
            "diffusion": {"min_snr_gamma": None},
            "unet": {"model_channels": 16, "channel_mult": (1, 2), "attention_levels": (1,), "head_dim": 16},
            "conditioner": {"dim": 16, "depth": 1, "heads": 2},
            "train": {
                "steps": 25,
                "batch_size": 8,
                "lr": 2e-3,
                "warmup_steps": 5,
                "log_every": 1,
                "checkpoint_every": 1000,
                "ema_decay": 0.0,
            },
        },
    )
    run_dir = tmp_path_factory.mktemp("video-run")
    result = Trainer(config, run_dir, registry=registry, device="cpu", progress=False).fit()
    return registry, result


def test_short_training_lowers_the_loss(trained):
    _, result = trained
    losses = [h["diffusion"] for h in result.history]
    assert len(losses) == 25
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first  # about 0.96 -> 0.43 over seeds 0-2


def test_pipeline_and_evaluator_on_the_trained_run(trained, tmp_path):
    registry, result = trained
    pipe = DiffusionPipeline.from_checkpoint(result.checkpoint, registry=registry, device="cpu")
    out = pipe(["a red square moving left", "a blue circle moving up"], num_per_prompt=2, steps=3, seed=0)
    assert out.samples.shape == (4, 3, 4, 8, 8)
    assert out.samples.min() >= 0 and out.samples.max() <= 255
    evaluator = VideoMotionEvaluator(prompts=["a red square moving left", "a blue circle moving up"])
    metrics = evaluator.evaluate(pipe, tmp_path, num_per_prompt=2, steps=3)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["held_out"]["clips"] == 2 and saved["seen"]["clips"] == 2  # "red square left" is held out
    assert saved["reference"]["all"]["direction_accuracy"] == 1.0
    assert metrics["settings"]["steps"] == 3
    assert (tmp_path / "samples_held_out.png").is_file() and (tmp_path / "samples_seen-00.gif").is_file()
