"""End to end through the core: a tiny image model learns, CFG at 0 is unconditional, VAE runs."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import polydiff_image.plugin as image_plugin
from polydiff.builder import build_dataset, build_model
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.samplers.guidance import cfg_model_fn
from polydiff.training.trainer import Trainer

TINY = {
    "dataset": {"digits": {"size": 8}},
    "unet": {
        "model_channels": 16,
        "channel_mult": [1, 2],
        "num_res_blocks": 1,
        "attention_levels": [1],
        "head_dim": 16,
        "norm_groups": 8,
    },
    "conditioner": {"dim": 32, "depth": 1, "heads": 2},
    "diffusion": {"num_timesteps": 100},
    "train": {
        "steps": 150,
        "batch_size": 16,
        "lr": 2e-3,
        "warmup_steps": 20,
        "ema_decay": 0.0,
        "log_every": 1,
        "checkpoint_every": 10_000,
        "encoder_steps": 40,
    },
    "sample": {"steps": 5},
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugins(image_plugin)


def _config(registry: Registry, encoder: str | None = None, changes: dict | None = None) -> RunConfig:
    overrides = {k: dict(v) for k, v in TINY.items()}
    for section, values in (changes or {}).items():
        overrides.setdefault(section, {}).update(values)
    return RunConfig.for_modality(
        "image", dataset="digits", encoder=encoder, overrides=overrides, registry=registry
    )


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("digits-run")
    torch.manual_seed(0)
    result = Trainer(_config(registry), out, registry=registry, progress=False, device="cpu").fit()
    return result, DiffusionPipeline.from_checkpoint(out, registry=registry, device="cpu")


def _fixed_batch_loss(model, dataset, n: int = 64) -> float:
    """Diffusion loss on the first ``n`` eval images with fixed timesteps and noise."""
    gen = torch.Generator().manual_seed(123)
    batch = {
        "x": torch.stack([dataset[i]["x"] for i in range(n)]),
        "text": [dataset[i]["text"] for i in range(n)],
    }
    with torch.no_grad():
        x0 = model.encoder.encode(batch["x"])
        t = torch.randint(0, model.diffusion.config.num_timesteps, (n,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        return model.eval()(batch, x0, t, noise)["loss"].item()


def test_a_few_hundred_steps_lower_the_loss(trained, registry) -> None:
    result, pipe = trained
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 150
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.6 * first
    eval_set = build_dataset(pipe.config, registry, "eval")
    torch.manual_seed(0)
    fresh = _config(registry)
    untrained = build_model(fresh, registry, dataset=build_dataset(fresh, registry))
    assert _fixed_batch_loss(pipe.model, eval_set) < 0.7 * _fixed_batch_loss(untrained, eval_set)
    assert (result.run_dir / "loss.png").exists()


def test_guidance_zero_is_the_unconditional_prediction(trained) -> None:
    _, pipe = trained
    model = pipe.model
    prompts = ["the digit three", "the digit eight"]
    plan = model.conditioner.plan(prompts, tuple(pipe.config.latent_shape))
    x = torch.randn(2, *pipe.config.latent_shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([50, 10])
    with torch.no_grad():
        guided0 = cfg_model_fn(model.unet, plan.cond, plan.uncond, 0.0)(x, t)
        uncond = model.unet(x, t, **plan.uncond.unet_kwargs())
        guided1 = cfg_model_fn(model.unet, plan.cond, plan.uncond, 1.0)(x, t)
        cond = model.unet(x, t, **plan.cond.unet_kwargs())
    assert torch.allclose(guided0, uncond, atol=1e-5) and torch.allclose(guided1, cond, atol=1e-5)
    assert not torch.allclose(cond, uncond, atol=1e-3)  # the prompt does matter
    # the whole sampler: guidance 0 with a prompt == the empty prompt without guidance
    a = pipe(["the digit three"], guidance=0.0, seed=5, steps=4).samples
    b = pipe([""], guidance=1.0, seed=5, steps=4).samples
    assert torch.allclose(a, b, atol=1e-3)


def test_pipeline_samples_and_writer_pictures(trained, tmp_path) -> None:
    _, pipe = trained
    out = pipe(["the digit one", "the digit seven"], num_per_prompt=2, steps=4, trajectory_steps=[99, 50, 0])
    assert out.samples.shape == (4, 1, 8, 8)
    assert out.samples.min() >= 0 and out.samples.max() <= 255
    writer = pipe.writer()
    paths = writer.write_samples(out.samples, out.prompts, tmp_path / "s.png")
    paths += writer.write_trajectory(
        out.trajectory_steps, out.trajectory_xt, out.trajectory_x0, out.prompts, tmp_path / "t.png"
    )
    for path in paths:
        with Image.open(path) as image:
            image.verify()


def test_vae_first_stage_is_trained_saved_and_reloaded(registry, tmp_path) -> None:
    cfg = _config(
        registry,
        encoder="vae",
        changes={
            "train": {"steps": 3},
            "encoder": {"vae": {"channels": 8}},
            "unet": {"channel_mult": [1], "attention_levels": [0]},
        },
    )
    assert cfg.encoder.name == "vae"
    Trainer(cfg, tmp_path, registry=registry, progress=False, device="cpu").fit()
    assert (tmp_path / "vae_reconstructions.png").exists()
    pipe = DiffusionPipeline.from_checkpoint(tmp_path, registry=registry, device="cpu")
    assert pipe.config.latent_shape == [4, 2, 2] and pipe.model.encoder.is_fitted
    weights = load_file(pipe.checkpoint_path / "model.safetensors")
    assert float(weights["encoder.scale_factor"]) == pytest.approx(float(pipe.model.encoder.scale_factor))
    assert float(weights["encoder.scale_factor"]) != 1.0
    assert pipe(["the digit two"], steps=2).samples.shape == (1, 1, 8, 8)
