"""The diffusers bridge: a small random UNet2DModel saved locally samples through polydiff as
through diffusers (network output, DDIM and DDPM samples from the same noise). No downloads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from polydiff import plugins  # noqa: E402
from polydiff.bridges.diffusers import diffusion_from_scheduler, is_diffusers_dir  # noqa: E402
from polydiff.cli.main import main  # noqa: E402
from polydiff.diffusion.gaussian import GaussianDiffusion  # noqa: E402
from polydiff.errors import CheckpointError, ConfigError, MissingDependencyError  # noqa: E402
from polydiff.pipeline import DiffusionPipeline  # noqa: E402

T = 100  # training timesteps of the small model; N = 10 sampling steps divide it


def _registry():
    registry = plugins.get_registry()
    if "image" not in [m.name for m in registry.modalities()]:
        pytest.skip("the image plugin (png writer, pixels encoder) is not installed")
    return registry


def _unet() -> diffusers.UNet2DModel:
    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
    )


@pytest.fixture(scope="module")
def ddim_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("diffusers") / "ddim"
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=True)
    diffusers.DDIMPipeline(_unet(), scheduler).save_pretrained(path)
    return path


def test_a_diffusers_directory_is_recognised(ddim_dir, tmp_path):
    assert is_diffusers_dir(ddim_dir) and is_diffusers_dir(ddim_dir / "unet")
    (tmp_path / "config.json").write_text("{}")
    assert not is_diffusers_dir(tmp_path) and not is_diffusers_dir(tmp_path / "nothing")


def test_network_output_equals_diffusers(ddim_dir):
    pipe = DiffusionPipeline.from_diffusers(ddim_dir, registry=_registry(), device="cpu")
    reference = diffusers.UNet2DModel.from_pretrained(ddim_dir / "unet")
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for t in (torch.tensor([3, 70]), torch.tensor([12.5, 40.25])):  # int and fractional timesteps
        with torch.no_grad():
            ours, theirs = pipe.model.unet(x, t), reference(x, t).sample
        assert ours.abs().mean() > 1e-3 and torch.allclose(ours, theirs, atol=1e-6)
    assert pipe.config.backbone.name == "diffusers-unet2d" and pipe.config.latent_shape == [3, 8, 8]


def test_ddim_samples_equal_diffusers_ddim_pipeline(ddim_dir):
    """Same noise (seeded CPU generator), N = 10 dividing T = 100 with 'leading' spacing, where
    diffusers' previous timestep t - T // N is the next visited one."""
    pipe = DiffusionPipeline.from_diffusers(ddim_dir, registry=_registry(), device="cpu")
    assert pipe.config.sample["clip_denoised"] is True and pipe.config.sample["spacing"] == "leading"
    reference = diffusers.DDIMPipeline.from_pretrained(ddim_dir)
    reference.set_progress_bar_config(disable=True)
    images = reference(
        batch_size=3,
        generator=torch.Generator().manual_seed(0),
        num_inference_steps=10,
        output_type="np",
        use_clipped_model_output=True,  # polydiff recomputes eps from the clipped x0
    ).images  # [B, H, W, C] in [0, 1]
    out = pipe(None, num_per_prompt=3, sampler="ddim", steps=10, seed=0)
    ours = (out.samples / 255).permute(0, 2, 3, 1).numpy()
    assert images.std() > 0.05 and np.abs(ours - images).max() < 1e-5


def test_ddpm_samples_equal_diffusers_ddpm_pipeline(tmp_path):
    """Ancestral sampling over all T steps: the same per-step noise in the same order."""
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
    diffusers.DDPMPipeline(_unet(), scheduler).save_pretrained(tmp_path)
    reference = diffusers.DDPMPipeline.from_pretrained(tmp_path)
    reference.set_progress_bar_config(disable=True)
    images = reference(
        batch_size=2, generator=torch.Generator().manual_seed(3), num_inference_steps=T, output_type="np"
    ).images
    pipe = DiffusionPipeline.from_pretrained(tmp_path, registry=_registry(), device="cpu")
    assert pipe.config.diffusion.schedule == "cosine"
    out = pipe(None, num_per_prompt=2, sampler="ddpm", steps=T, seed=3)
    assert np.abs((out.samples / 255).permute(0, 2, 3, 1).numpy() - images).max() < 1e-4


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"])
@pytest.mark.parametrize("timesteps", [1000, 250])
def test_scheduler_betas_equal_diffusers(schedule, timesteps):
    scheduler = diffusers.DDPMScheduler(
        num_train_timesteps=timesteps, beta_schedule=schedule, prediction_type="v_prediction"
    )
    config, sample = diffusion_from_scheduler(dict(scheduler.config))
    ours = GaussianDiffusion(config).alphas_cumprod
    assert config.prediction == "v" and torch.allclose(ours.float(), scheduler.alphas_cumprod, atol=1e-6)


def test_scheduler_settings_without_an_equivalent_are_one_line_errors():
    with pytest.raises(ConfigError, match="^scheduler: beta_schedule 'exp' has no polydiff equivalent"):
        diffusion_from_scheduler({"beta_schedule": "exp"})
    with pytest.raises(ConfigError, match="trained_betas"):
        diffusion_from_scheduler({"trained_betas": [0.1, 0.2]})
    _, sample = diffusion_from_scheduler({"clip_sample": True, "clip_sample_range": 2.0})
    assert sample["clip_denoised"] == 2.0


def test_pickled_weights_are_refused(tmp_path):
    _unet().save_pretrained(tmp_path / "unet", safe_serialization=False)
    diffusers.DDPMScheduler(num_train_timesteps=T).save_pretrained(tmp_path / "scheduler")
    with pytest.raises(
        CheckpointError, match=r"diffusion_pytorch_model.bin is a pickle.*safe_serialization=True"
    ):
        DiffusionPipeline.from_diffusers(tmp_path, registry=_registry())


def test_missing_scheduler_is_one_line(ddim_dir, tmp_path):
    import shutil

    shutil.copytree(ddim_dir / "unet", tmp_path / "unet")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "DDIMPipeline"}))
    with pytest.raises(CheckpointError, match="no scheduler/scheduler_config.json"):
        DiffusionPipeline.from_diffusers(tmp_path, registry=_registry())


def test_without_diffusers_the_error_names_the_extra(ddim_dir, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "diffusers" else find_spec(name, *a)
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'polydiff\[diffusers\]'"):
        DiffusionPipeline.from_diffusers(ddim_dir, registry=_registry())


def test_cli_samples_a_diffusers_directory(ddim_dir, tmp_path, capsys):
    """The lecture's figure in small: DDPM over all T steps, snapshots at chosen timesteps."""
    _registry()
    out = tmp_path / "x.png"
    args = ["sample", str(ddim_dir), "--out", str(out), "--num", "2", "--sampler", "ddpm", "--steps", str(T)]
    assert main([*args, "--trajectory", "--trajectory-at", "29,19,9,0", "--no-progress"]) == 0
    assert out.is_file() and (tmp_path / "x-trajectory.png").is_file()
    assert str(out) in capsys.readouterr().out
    assert main([*args, "--trajectory", "--trajectory-at", "29,100", "--no-progress"]) == 2
    assert "--trajectory-at '29,100': give comma-separated timesteps in 0..99" in capsys.readouterr().err
    assert main(["evaluate", str(ddim_dir), "--no-progress"]) == 2
    assert "is a diffusers model: polydiff has no data it was trained on" in capsys.readouterr().err
