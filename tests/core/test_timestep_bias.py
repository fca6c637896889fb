"""Timestep bias of training: the weights, the draws and the trainer's use of them."""

from __future__ import annotations

import pytest
import torch

from polydiff.errors import ConfigError
from polydiff.run_config import RunConfig
from polydiff.training.timestep_bias import draw_timesteps, timestep_weights
from polydiff.training.trainer import Trainer


def test_weights_multiply_the_chosen_portion():
    later = timestep_weights(1000, "later", 0.25, 3.0)
    assert (later[750:] == 3).all() and (later[:750] == 1).all()
    earlier = timestep_weights(1000, "earlier", 0.1, 5.0)
    assert (earlier[:100] == 5).all() and (earlier[100:] == 1).all()
    assert (timestep_weights(1000, "none", 0.25, 7.0) == 1).all()


def test_draws_follow_the_weights():
    weights = timestep_weights(1000, "later", 0.1, 9.0)  # the last 100: 900 of 1800 = half the mass
    t = draw_timesteps(weights, 20_000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64 and t.min() >= 0 and t.max() <= 999
    assert 0.47 < (t >= 900).float().mean() < 0.53


def test_uniform_draws_are_the_plain_randint_ones():
    """No bias keeps the draws of runs made before the option existed (bit-identical resumes)."""
    ours = draw_timesteps(torch.ones(1000, dtype=torch.float64), 64, torch.Generator().manual_seed(3))
    plain = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, plain)


@pytest.mark.parametrize(
    "args, match",
    [
        (("sooner", 0.25, 2.0), "timestep_bias must be one of none, earlier, later; got 'sooner'"),
        (("later", 0.0, 2.0), "timestep_bias_portion"),
        (("later", 0.25, 0.0), "timestep_bias_multiplier"),
    ],
)
def test_bad_settings_name_the_field(args, match):
    with pytest.raises(ConfigError, match=match):
        timestep_weights(1000, *args)


def test_trainer_draws_biased_timesteps(toy_registry, tmp_path):
    train = {"timestep_bias": "later", "timestep_bias_portion": 0.1, "timestep_bias_multiplier": 1e9}
    config = RunConfig.for_modality("toy", registry=toy_registry, overrides={"train": train})
    trainer = Trainer(config, tmp_path, registry=toy_registry, progress=False)
    trainer._setup()
    t, _, _ = trainer._step_noise(0, torch.zeros(256, 1, 8))
    steps = config.diffusion.num_timesteps
    assert t.min() >= steps - steps // 10 and t.max() < steps, (t.min(), t.max())
    with pytest.raises(ConfigError, match="timestep_bias"):
        bad = RunConfig.for_modality(
            "toy", registry=toy_registry, overrides={"train": {"timestep_bias": "x"}}
        )
        Trainer(bad, tmp_path / "bad", registry=toy_registry, progress=False)
