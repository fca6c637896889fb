"""RunConfig: presets, overrides, JSON round trip and the errors users meet."""

from __future__ import annotations

import pytest

from polydiff.errors import CheckpointError, ConfigError, UnknownNameError
from polydiff.run_config import FORMAT_VERSION, RunConfig


def test_preset_and_overrides_are_applied(toy_registry):
    cfg = RunConfig.for_modality("toy", registry=toy_registry, overrides={"train": {"steps": 7}})
    assert cfg.train.steps == 7 and cfg.train.batch_size == 16  # override, then preset
    assert cfg.unet.dims == 1 and cfg.unet.model_channels == 16
    assert cfg.conditioner.name == "text" and cfg.conditioner.options["dim"] == 32
    assert cfg.sample["steps"] == 10 and cfg.sample["sampler"] == "ddim"


def test_component_options_follow_the_selected_component(toy_registry):
    cfg = RunConfig.for_modality("toy", registry=toy_registry, conditioner="none")
    assert cfg.conditioner.name == "none" and cfg.conditioner.options == {}


def test_json_round_trip(toy_registry, tmp_path):
    cfg = RunConfig.for_modality("toy", registry=toy_registry)
    cfg.data_shape = [1, 16]
    cfg.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == cfg


def test_set_assignments(toy_registry):
    cfg = RunConfig.for_modality("toy", registry=toy_registry)
    cfg.apply_overrides(
        ["train.lr=0.5", "unet.channel_mult=[1,2,2]", "sample.sampler=ddpm", "conditioner.depth=3"]
    )
    assert cfg.train.lr == 0.5 and cfg.unet.channel_mult == (1, 2, 2)
    assert cfg.sample["sampler"] == "ddpm" and cfg.conditioner.options["depth"] == 3
    with pytest.raises(ConfigError, match="unknown train field.*'lrr'.*Did you mean 'lr'"):
        cfg.apply_overrides(["train.lrr=1"])
    with pytest.raises(ConfigError, match="SECTION.FIELD=VALUE"):
        cfg.apply_overrides(["lr=1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modality": "tyo"}, "unknown modality 'tyo'. Did you mean 'toy'"),
        (
            {"modality": "toy", "dataset": "toy-signal"},
            "unknown dataset 'toy-signal'. Did you mean 'toy-signals'",
        ),
        ({"modality": "toy", "encoder": "vea"}, "unknown encoder 'vea'.*Known encoders: identity"),
    ],
)
def test_unknown_names_list_the_known_ones(toy_registry, kwargs, message):
    with pytest.raises(UnknownNameError, match=message):
        RunConfig.for_modality(registry=toy_registry, **kwargs)


def test_unknown_preset(toy_registry):
    with pytest.raises(ConfigError, match="no preset 'ful'; known presets: quick"):
        RunConfig.for_modality("toy", preset="ful", registry=toy_registry)


def test_from_dict_rejects_newer_and_foreign_configs(toy_registry):
    cfg = RunConfig.for_modality("toy", registry=toy_registry).to_dict()
    with pytest.raises(CheckpointError, match="newer than this polydiff"):
        RunConfig.from_dict({**cfg, "format_version": FORMAT_VERSION + 1})
    with pytest.raises(CheckpointError, match="unknown field"):
        RunConfig.from_dict({**cfg, "surprise": 1})
    with pytest.raises(CheckpointError, match="not a polydiff run config"):
        RunConfig.from_dict({"model_type": "bert"})


def test_unknown_name_lists_the_known_ones_in_plain_english():
    from polydiff.errors import unknown_name

    msg = str(unknown_name("modality", "imag", ["video", "image"]))
    assert "Did you mean 'image'?" in msg and "Known modalities: image, video." in msg
    assert "Known datasets: shapes." in str(unknown_name("dataset", "shapez", ["shapes"]))
