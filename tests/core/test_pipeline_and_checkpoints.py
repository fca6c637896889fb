"""Checkpoint round trips give identical samples; broken checkpoints give clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from polydiff.errors import CheckpointError, UnknownNameError
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import toy_plugin

    from polydiff.run_config import RunConfig

    registry = Registry.from_plugins(toy_plugin)
    run = tmp_path_factory.mktemp("toy-run")
    config = RunConfig.for_modality("toy", registry=registry, overrides={"train": {"steps": 150}})
    Trainer(config, run, registry=registry, progress=False).fit()
    return registry, run


def test_same_seed_same_samples_after_reload(trained):
    registry, run = trained
    a = DiffusionPipeline.from_checkpoint(run, registry=registry)(["up", "down"], num_per_prompt=3, seed=7)
    b = DiffusionPipeline.from_checkpoint(run, registry=registry)(["up", "down"], num_per_prompt=3, seed=7)
    c = DiffusionPipeline.from_checkpoint(run, registry=registry)(["up", "down"], num_per_prompt=3, seed=8)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)
    assert a.prompts == ["up"] * 3 + ["down"] * 3


def test_model_follows_the_prompt(trained):
    registry, run = trained
    out = DiffusionPipeline.from_checkpoint(run, registry=registry)(["up", "down"], num_per_prompt=8, seed=0)
    means = out.samples.mean(dim=(1, 2))
    assert means[:8].mean() > 0.3 and means[8:].mean() < -0.3, means


def test_trajectory_is_recorded_and_ends_at_the_sample(trained):
    registry, run = trained
    pipe = DiffusionPipeline.from_checkpoint(run, registry=registry)
    out = pipe(["up"], num_per_prompt=2, trajectory_steps=[99, 50, 0], steps=10, sampler="ddim")
    assert out.trajectory_xt.shape == (3, 2, 1, 16)
    assert out.trajectory_steps[0] > out.trajectory_steps[-1]
    # noise shrinks along the reverse process
    assert out.trajectory_xt[0].std() > out.trajectory_xt[-1].sub(out.samples).std()


def test_run_sampling_defaults_eta_and_temperature_apply(trained):
    """``eta``/``temperature`` in the run's ``sample`` section act like the same call options
    (``polydiff evaluate --eta/--temperature`` relies on it)."""
    registry, run = trained
    pipe = DiffusionPipeline.from_checkpoint(run, registry=registry)
    kw = {"num_per_prompt": 2, "seed": 3, "steps": 10, "sampler": "ddim"}
    plain = pipe(["up"], **kw).samples
    explicit = pipe(["up"], eta=1.0, temperature=2.0, **kw).samples
    pipe.config.sample.update(eta=1.0, temperature=2.0)
    from_config = pipe(["up"], **kw).samples
    assert torch.equal(from_config, explicit)
    assert not torch.allclose(plain, explicit)


def test_progress_bar_follows_the_pipeline_default_unless_the_call_says(trained, capsys):
    """``polydiff evaluate`` sets ``pipe.progress``, so evaluators' sampling shows its steps."""
    registry, run = trained
    pipe = DiffusionPipeline.from_checkpoint(run, registry=registry)
    kw = {"num_per_prompt": 1, "steps": 4, "sampler": "ddim"}
    pipe(["up"], **kw)
    assert "ddim" not in capsys.readouterr().err
    pipe.progress = True
    pipe(["up"], **kw)
    assert "ddim:" in capsys.readouterr().err
    pipe(["up"], progress=False, **kw)
    assert "ddim" not in capsys.readouterr().err


def test_batching_does_not_change_samples(trained):
    registry, run = trained
    pipe = DiffusionPipeline.from_checkpoint(run, registry=registry)
    whole = pipe(["up", "down"], num_per_prompt=2, seed=3, sampler="ddim", steps=5)
    again = pipe(["up", "down"], num_per_prompt=2, seed=3, sampler="ddim", steps=5, batch_size=4)
    assert torch.equal(whole.samples, again.samples)


@pytest.fixture
def copy_of(trained, tmp_path):
    registry, run = trained
    ckpt = sorted((run / "checkpoints").glob("step-*"))[-1]
    dst = tmp_path / "ckpt"
    shutil.copytree(ckpt, dst)
    return registry, dst


def test_truncated_safetensors_names_the_file(copy_of):
    registry, ckpt = copy_of
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated"):
        DiffusionPipeline.from_checkpoint(ckpt, registry=registry)


def test_foreign_safetensors_names_the_mismatch(copy_of):
    registry, ckpt = copy_of
    save_file({"weight": torch.zeros(3)}, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError, match="does not match the model.*missing"):
        DiffusionPipeline.from_checkpoint(ckpt, registry=registry)


def test_newer_format_version_is_refused(copy_of):
    registry, ckpt = copy_of
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["format_version"] = 99
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="format_version 99.*upgrade polydiff"):
        DiffusionPipeline.from_checkpoint(ckpt, registry=registry)


def test_config_of_an_uninstalled_modality_lists_the_known_ones(copy_of):
    registry, ckpt = copy_of
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["modality"] = "toi"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnknownNameError, match="unknown modality 'toi'. Did you mean 'toy'"):
        DiffusionPipeline.from_checkpoint(ckpt, registry=registry)


def test_config_that_is_not_json_or_not_ours(copy_of):
    registry, ckpt = copy_of
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        DiffusionPipeline.from_checkpoint(ckpt, registry=registry)
    (ckpt / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a polydiff run config"):
        DiffusionPipeline.from_checkpoint(ckpt, registry=registry)
