"""The plugin as polydiff sees it: found through its entry point, cheap to import, complete.

The generic checks (discovery, lazy import, every component loads, presets build) are the
core's :mod:`polydiff.testing`; the assertions here are about this plugin's own choices.
"""

from __future__ import annotations

import pytest

from polydiff import Evaluator, Registry, RunConfig, Writer
from polydiff.testing import (
    check_components,
    check_entry_point,
    check_lazy_import,
    check_presets,
    plugin_registry,
)


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The core plus this plugin only, discovered through the installed entry point."""
    return plugin_registry("timeseries")


def test_entry_point_is_installed():
    check_entry_point("timeseries", "polydiff_timeseries.plugin", "polydiff-timeseries")


def test_every_component_loads_and_presets_train(registry):
    found = check_components(registry, "polydiff-timeseries")
    assert found["dataset"] == ["sines"] and found["modality"] == ["timeseries"]
    configs = check_presets(registry, "timeseries", dataset_options={"num_samples": 8})
    assert sorted(configs) == ["full", "quick"]


def test_modality_and_components_are_registered(registry):
    modality = registry.modality("timeseries")
    assert modality.rank == 1 and modality.plugin == "polydiff-timeseries"
    assert registry.names("dataset", modality="timeseries") == ["sines"]
    assert registry.component("writer", modality.writer).plugin == "polydiff-timeseries"
    assert registry.component("evaluator", modality.evaluator).plugin == "polydiff-timeseries"
    # The encoder and conditioner come from the core.
    assert registry.component("encoder", modality.default_encoder).plugin == "polydiff"
    assert registry.component("conditioner", modality.default_conditioner).plugin == "polydiff"


def test_components_build_through_the_registry(registry):
    dataset = registry.build("dataset", "sines", split="eval", num_samples=6, length=32)
    assert dataset[0]["x"].shape == (1, 32)
    assert isinstance(registry.build("writer", "timeseries-png"), Writer)
    assert isinstance(registry.build("evaluator", "timeseries-stats"), Evaluator)


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_presets_make_a_valid_run_config(registry, preset):
    config = RunConfig.for_modality("timeseries", preset=preset, registry=registry)
    assert (config.dataset.name, config.encoder.name, config.conditioner.name) == (
        "sines",
        "identity",
        "text",
    )
    assert config.unet.dims == 1 and config.writer.name == "timeseries-png"
    assert config.dataset.options["length"] == 64


def test_importing_the_plugin_module_imports_neither_torch_nor_numpy():
    check_lazy_import("polydiff_timeseries.plugin", forbidden=("torch", "numpy", "PIL"))


def test_the_pretrained_model_ships_with_its_card_and_loads(registry):
    from polydiff import DiffusionPipeline
    from polydiff.pretrained import check_card, read_card

    record = registry.component("pretrained", "timeseries-sines")
    assert record.plugin == "polydiff-timeseries" and record.modality == "timeseries"
    directory = record.load()
    assert check_card(directory) == []
    assert float(read_card(directory)["score"]) >= 0.95  # the evaluator's target, measured on these files
    pipe = DiffusionPipeline.from_pretrained("timeseries-sines", registry=registry, device="cpu")
    assert pipe(["a rising ramp"], num_per_prompt=2, steps=2).samples.shape == (2, 1, 64)
