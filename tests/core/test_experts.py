"""Denoiser experts: a run trained on a timestep range samples in place of the main model there."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from polydiff.errors import ConfigError
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.training.timestep_bias import timestep_weights
from polydiff.training.trainer import Trainer


def _train(registry: Registry, run, **train) -> None:
    config = RunConfig.for_modality("toy", registry=registry, overrides={"train": {"steps": 150, **train}})
    Trainer(config, run, registry=registry, progress=False).fit()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import toy_plugin

    registry = Registry.from_plugins(toy_plugin)
    base, expert = tmp_path_factory.mktemp("base"), tmp_path_factory.mktemp("expert")
    _train(registry, base)
    _train(registry, expert, timestep_range=[50, 100])
    return registry, base, expert


def _load(registry, run) -> DiffusionPipeline:
    return DiffusionPipeline.from_checkpoint(run, registry=registry, device="cpu")


def test_range_keeps_only_its_timesteps():
    weights = timestep_weights(100, "later", 0.5, 3.0, (20, 60))
    assert (weights[:20] == 0).all() and (weights[60:] == 0).all()
    assert (weights[20:50] == 1).all() and (weights[50:60] == 3).all()
    with pytest.raises(ConfigError, match=r"timestep_range .* 0 <= lo < hi <= 100"):
        timestep_weights(100, "none", 0.25, 1.0, (60, 60))


def test_each_network_denoises_its_own_timesteps(runs):
    """Hooks on both UNets: the expert sees exactly the sampler's steps in [50, 100), the main
    model the others; the samples still follow the prompt."""
    registry, base, expert = runs
    pipe = _load(registry, base).with_expert(_load(registry, expert))
    seen: dict[str, list[int]] = {"base": [], "expert": []}
    for name, net in (("base", pipe.model.unet), ("expert", pipe.experts[0][2].model.unet)):
        net.register_forward_hook(
            lambda m, args, out, name=name: seen[name].append(int(args[1].flatten()[0]))
        )
    out = pipe(["up", "down"], num_per_prompt=4, sampler="ddim", steps=10, seed=0)
    assert seen["expert"] and min(seen["expert"]) >= 50
    assert seen["base"] and max(seen["base"]) < 50
    assert len(set(seen["expert"])) + len(set(seen["base"])) == 10
    means = out.samples.mean(dim=(1, 2))
    assert means[:4].mean() > 0.3 and means[4:].mean() < -0.3, means


def test_a_run_of_every_timestep_is_not_an_expert(runs):
    registry, base, _ = runs
    with pytest.raises(ConfigError, match=r"not an expert.*timestep_range=\[LO,HI\]"):
        _load(registry, base).with_expert(_load(registry, base))


def test_expert_must_share_the_diffusion_process_and_not_overlap(runs):
    registry, base, expert = runs
    other = _load(registry, expert)
    other.config.diffusion = dataclasses.replace(other.config.diffusion, prediction="x0")
    with pytest.raises(ConfigError, match="its diffusion.prediction is 'x0', this model's is 'eps'"):
        _load(registry, base).with_expert(other)
    # The loss weighting is not part of the sampling process: an expert may train without it.
    other.config.diffusion = dataclasses.replace(_load(registry, base).config.diffusion, min_snr_gamma=5.0)
    assert _load(registry, base).with_expert(other).experts[0][2] is other
    pipe = _load(registry, base).with_expert(_load(registry, expert))
    with pytest.raises(ConfigError, match="overlap"):
        pipe.with_expert(_load(registry, expert))


def test_trainer_draws_only_the_range(runs, tmp_path):
    registry = runs[0]
    config = RunConfig.for_modality(
        "toy", registry=registry, overrides={"train": {"timestep_range": [30, 40]}}
    )
    trainer = Trainer(config, tmp_path, registry=registry, progress=False)
    trainer._setup()
    t, _, _ = trainer._step_noise(0, torch.zeros(256, 1, 8))
    assert t.min() >= 30 and t.max() < 40
    assert len(t.unique()) == 10
