"""The plugin's records: cheap to import, complete, and presets that build working models."""

from __future__ import annotations

import subprocess
import sys

import pytest

import polydiff_image.plugin as image_plugin
from polydiff.builder import build_dataset, build_model
from polydiff.errors import MissingDependencyError
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff_image.datasets.shapes import ShapesDataset


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugins(image_plugin)


def test_plugin_module_imports_no_torch() -> None:
    code = "import sys, polydiff_image.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_component_is_registered_and_importable(registry) -> None:
    modality = registry.modality("image")
    assert (
        modality.rank,
        modality.default_dataset,
        modality.default_encoder,
        modality.default_conditioner,
    ) == (2, "shapes", "pixels", "text")
    assert registry.names("dataset", modality="image") == ["digits", "folder", "shapes"]
    for kind, names in {
        "encoder": ["pixels", "vae"],
        "writer": ["png"],
        "evaluator": ["image-checkers"],
    }.items():
        for name in names:
            assert callable(registry.component(kind, name).load())
    assert registry.component("writer", modality.writer) and registry.component(
        "evaluator", modality.evaluator
    )


def test_sentence_embedding_conditioner_names_its_extra(registry) -> None:
    component = registry.component("conditioner", "sentence-embedding")
    assert component.requires == ("sentence_transformers",) and component.extra == "polydiff-image[sbert]"
    if component.missing_requirements():
        with pytest.raises(MissingDependencyError, match=r"polydiff-image\[sbert\]"):
            component.load()


@pytest.mark.parametrize("preset", ["quick", "full"])
@pytest.mark.parametrize("encoder", ["pixels", "vae"])
@pytest.mark.parametrize("dataset", ["shapes", "digits"])
def test_presets_build_models_that_fit_their_data(registry, preset: str, encoder: str, dataset: str) -> None:
    cfg = RunConfig.for_modality("image", preset=preset, dataset=dataset, encoder=encoder, registry=registry)
    data = build_dataset(cfg, registry)
    model = build_model(cfg, registry, dataset=data)
    model.unet.check_input_shape(cfg.latent_shape[1:])
    size = cfg.data_shape[-1]
    assert cfg.latent_shape == ([4, size // 4, size // 4] if encoder == "vae" else cfg.data_shape)
    assert model.unet.config.context_dim == model.conditioner.context_dim


def test_demo_prompts_mix_seen_and_held_out_combinations(registry) -> None:
    modality = registry.modality("image")
    options = modality.presets[modality.demo["preset"]]["dataset"]["shapes"]
    dataset = ShapesDataset(**options)
    held_out = set(dataset.held_out_prompts)
    prompts = modality.demo["prompts"]
    assert all(dataset.attributes(p) is not None for p in prompts)
    assert set(image_plugin.DEMO_HELD_OUT) <= held_out and not set(image_plugin.DEMO_SEEN) & held_out
    assert prompts == image_plugin.DEMO_SEEN + image_plugin.DEMO_HELD_OUT


@pytest.mark.parametrize(
    ("name", "preset", "dataset", "encoder"),
    [
        ("image-digits", "pretrained-digits", "digits", "vae"),
        ("image-shapes", "pretrained-shapes", "shapes", "pixels"),
    ],
)
def test_the_shipped_models_were_trained_with_their_presets(registry, name, preset, dataset, encoder) -> None:
    import json

    record = registry.component("pretrained", name)
    config = json.loads((record.load() / "config.json").read_text())
    assert record.modality == "image" and config["preset"] == preset
    assert preset in registry.modality("image").presets
    assert (config["dataset"]["name"], config["encoder"]["name"]) == (dataset, encoder)


def test_the_demo_shows_the_shapes_model_beside_its_own_short_run(registry) -> None:
    from polydiff.cli.demo_cmd import pretrained_for

    record, directory = pretrained_for("image", registry, registry.modality("image").demo["dataset"])
    assert record.name == "image-shapes" and (directory / "model.safetensors").is_file()
