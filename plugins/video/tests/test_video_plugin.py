"""The plugin's records: cheap to import, loadable, presets that build run configs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import polydiff_video.plugin
from polydiff.builder import build_model
from polydiff.errors import ConfigError
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff_video.attributes import default_held_out, parse_caption


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugins(polydiff_video.plugin)


def test_listing_the_plugin_imports_no_torch():
    code = "import sys, polydiff_video.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_modality_and_components_are_registered_and_load(registry):
    video = registry.modality("video")
    assert video.rank == 3 and video.default_encoder == "video-pixels" and video.default_conditioner == "text"
    assert (video.writer, video.evaluator, video.default_dataset) == ("gif", "video-motion", "moving-shapes")
    names = {
        kind: registry.names(kind, modality="video") for kind in ("dataset", "encoder", "writer", "evaluator")
    }
    assert {"moving-shapes", "video-folder"} <= set(names["dataset"])
    assert (
        "video-pixels" in names["encoder"]
        and "gif" in names["writer"]
        and "video-motion" in names["evaluator"]
    )
    for kind, kind_names in names.items():
        for name in kind_names:
            component = registry.component(kind, name)
            if component.plugin == "polydiff-video" or component.target.startswith("polydiff_video"):
                assert callable(component.load())


@pytest.mark.parametrize(
    "preset", ["quick", "full", "quick-expert", "full-expert", "pretrained", "pretrained-expert"]
)
def test_presets_build_factorised_video_run_configs(registry, preset):
    config = RunConfig.for_modality("video", preset=preset, registry=registry)
    assert config.unet.dims == 3 and config.unet.spacetime is not None
    assert config.dataset.name == "moving-shapes" and config.dataset.options["frames"] == 8
    assert config.encoder.name == "video-pixels" and config.conditioner.name == "text"
    dataset = registry.build("dataset", config.dataset.name, split="train", **config.dataset.options)
    assert dataset[0]["x"].shape[1] == 8


def test_a_misspelt_preset_names_the_closest(registry):
    with pytest.raises(
        ConfigError,
        match=r"no preset 'quick-expret'; known presets: full, full-expert, pretrained, "
        r"pretrained-expert, quick, quick-expert\. Did you mean 'quick-expert'\?",
    ):
        RunConfig.for_modality("video", preset="quick-expret", registry=registry)


def test_the_shipped_pair_s_presets_are_quick_with_the_motion_flags_and_an_expert(registry):
    main = RunConfig.for_modality("video", preset="pretrained", registry=registry)
    quick = RunConfig.for_modality("video", preset="quick", registry=registry)
    expert = RunConfig.for_modality("video", preset="pretrained-expert", registry=registry)
    assert main.unet.model_channels == quick.unet.model_channels and main.data_shape == quick.data_shape
    assert main.unet.coord_channels and main.unet.pooled_context
    assert main.unet.spacetime.frame_embedding and not main.unet.spacetime.frame_norm
    assert not main.unet.spacetime.frame_modulation and main.diffusion.min_snr_gamma is None
    assert main.train.timestep_range is None and main.train.ema_decay == 0.999
    # the expert serves the main model: same process, t >= 800 only
    assert expert.train.timestep_range == (800, 1000) and expert.train.steps == 500
    assert expert.diffusion.schedule == main.diffusion.schedule
    assert expert.diffusion.prediction == main.diffusion.prediction
    assert expert.dataset.options == main.dataset.options


def _pipeline(registry: Registry, preset: str) -> DiffusionPipeline:
    config = RunConfig.for_modality("video", preset=preset, registry=registry)
    dataset = registry.build("dataset", config.dataset.name, split="train", **config.dataset.options)
    config.data_shape = list(dataset[0]["x"].shape)
    return DiffusionPipeline(build_model(config, registry, dataset), config, registry)


@pytest.mark.parametrize("size", ["quick", "full"])
def test_expert_preset_serves_its_main_preset_at_the_noisiest_fifth(registry, size):
    """A run of ``quick-expert`` is accepted by ``with_expert`` on a ``quick`` run (whose
    min-SNR loss weighting differs: it is no part of sampling), ``full-expert`` on ``full``."""
    main, expert = _pipeline(registry, size), _pipeline(registry, f"{size}-expert")
    assert expert.config.diffusion.min_snr_gamma is None
    assert main.config.dataset.options == expert.config.dataset.options
    assert main.config.train.timestep_range is None
    assert tuple(expert.config.train.timestep_range) == (800, 1000)
    assert expert.config.unet.spacetime.frame_modulation and not main.config.unet.spacetime.frame_modulation
    assert main.with_expert(expert).experts == [(800, 1000, expert)]


def test_demo_prompts_include_seen_and_held_out_prompts(registry):
    prompts = registry.modality("video").demo["prompts"]
    held = {c.caption for c in default_held_out()}
    assert all(parse_caption(p) is not None for p in prompts)
    assert any(p in held for p in prompts) and any(p not in held for p in prompts)


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_the_cores_vae_compresses_space_and_keeps_every_frame(registry, preset):
    config = RunConfig.for_modality("video", preset=preset, encoder="vae", registry=registry)
    assert config.encoder.options == {"downsample": [False, True, True]}
    config.data_shape = [3, 8, 16, 16]
    model = build_model(config, registry)
    assert model.encoder.latent_shape((3, 8, 16, 16)) == (4, 8, 4, 4)
    assert config.latent_shape == [4, 8, 4, 4]
