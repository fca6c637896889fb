"""Every pretrained model the installed plugins ship: it loads, its card describes its files,
and (slow) its evaluator's score reproduces.

Rebuild a model that fails here with ``python scripts/make_pretrained.py NAME``.
"""

from __future__ import annotations

import json

import pytest
import torch

from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import PluginManager, Registry
from polydiff.pretrained import check_card, metric_value, read_card

#: The most one file and all shipped models together may weigh.
MAX_FILE_BYTES, MAX_TOTAL_BYTES = 4 * 2**20, 16 * 2**20
#: How far a re-measured score may stray from the card's (sampling on another machine).
SCORE_NOISE = 0.03


def _registry() -> Registry:
    manager = PluginManager(strict=True)
    manager.load_entrypoints()
    return Registry(manager)


REGISTRY = _registry()
NAMES = REGISTRY.names("pretrained")
#: Models sampled on their own (with their experts); an expert is measured through its model.
EXPERTS = {e for n in NAMES for e in REGISTRY.component("pretrained", n).experts}
MAINS = [n for n in NAMES if n not in EXPERTS]


def test_the_template_ships_one():
    assert "timeseries-sines" in NAMES


def test_video_ships_a_model_with_its_high_noise_expert():
    assert REGISTRY.component("pretrained", "video-motion").experts == ("video-motion-expert",)
    assert "video-motion-expert" in NAMES


def test_shipped_files_stay_small():
    sizes = {f: f.stat().st_size for n in NAMES for f in REGISTRY.component("pretrained", n).load().iterdir()}
    assert all(size <= MAX_FILE_BYTES for size in sizes.values()), sizes
    assert sum(sizes.values()) <= MAX_TOTAL_BYTES


@pytest.mark.parametrize("name", NAMES)
def test_it_loads_into_an_fp32_model_and_samples(name):
    pipe = DiffusionPipeline.from_pretrained(name, registry=REGISTRY, device="cpu")
    assert {p.dtype for p in pipe.model.parameters()} == {torch.float32}
    assert pipe.config.modality == REGISTRY.component("pretrained", name).modality
    out = pipe(pipe.config.sample.get("prompts") or ["a"], steps=2)
    assert torch.isfinite(out.samples).all()


@pytest.mark.parametrize("name", NAMES)
def test_its_card_matches_its_config_weights_and_metrics(name):
    directory = REGISTRY.component("pretrained", name).load()
    assert check_card(directory) == []
    card = read_card(directory)
    assert card["name"] == name
    assert float(card["score"]) >= float(card["target"])
    config = json.loads((directory / "config.json").read_text())
    assert card["command"].split()[:3] == ["polydiff", "train", config["modality"]]
    # experts: the model's card lists its record's, an expert's card names the model it serves
    experts = REGISTRY.component("pretrained", name).experts
    assert card.get("experts", "") == ", ".join(experts)
    served = [n for n in NAMES if name in REGISTRY.component("pretrained", n).experts]
    assert card.get("expert_of") == (served[0] if served else None)
    if served:  # the pair was measured together: the same metrics.json on both
        model = REGISTRY.component("pretrained", served[0]).load()
        assert (directory / "metrics.json").read_text() == (model / "metrics.json").read_text()
        assert card["timesteps"] == "{}..{}".format(
            config["train"]["timestep_range"][0], config["train"]["timestep_range"][1] - 1
        )


@pytest.mark.parametrize("name", [n for n in MAINS if REGISTRY.component("pretrained", n).experts])
def test_its_experts_come_with_it_by_name(name):
    pipe = DiffusionPipeline.from_pretrained(name, registry=REGISTRY, device="cpu")
    record = REGISTRY.component("pretrained", name)
    assert [e.pretrained.name for _, _, e in pipe.experts] == list(record.experts)
    for lo, hi, expert in pipe.experts:
        assert [lo, hi] == list(expert.config.train.timestep_range)
        assert {p.dtype for p in expert.model.parameters()} == {torch.float32}
    # what the card's score measured: the shipped files of the model and of each expert
    metrics = json.loads((record.load() / "metrics.json").read_text())
    assert [e["timesteps"] for e in metrics["experts"]] == [[lo, hi] for lo, hi, _ in pipe.experts]


@pytest.mark.slow
@pytest.mark.parametrize("name", MAINS)
def test_its_evaluator_reproduces_the_card(name, tmp_path):
    # with its experts (from_pretrained attaches them), as `polydiff evaluate NAME` samples
    pipe = DiffusionPipeline.from_pretrained(name, registry=REGISTRY, device="cpu")
    card = read_card(pipe.checkpoint_path)
    evaluator = REGISTRY.build("evaluator", pipe.config.evaluator.name, **pipe.config.evaluator.options)
    sample = pipe.config.sample
    metrics = evaluator.evaluate(
        pipe,
        tmp_path,
        num_per_prompt=int(card["eval_num_per_prompt"]),
        seed=int(card["eval_seed"]),
        sampler=sample.get("sampler", "ddim"),
        steps=sample.get("steps", 50),
        guidance=sample.get("guidance", 3.0),
    )
    score = float(metric_value(metrics, card["metric"]))
    assert abs(score - float(card["score"])) <= SCORE_NOISE, (score, card["score"])
    assert score >= float(card["target"])


def test_naming_a_pretrained_expert_again_attaches_it_once(capsys):
    """`polydiff sample video-motion --expert video-motion-expert`: the expert its record brings
    is not attached twice (which would overlap its own timesteps)."""
    import argparse

    from polydiff.cli.common import add_experts

    pipe = DiffusionPipeline.from_pretrained("video-motion", registry=REGISTRY, device="cpu")
    add_experts(pipe, argparse.Namespace(expert=["video-motion-expert"]))
    assert [e.pretrained.name for _, _, e in pipe.experts] == ["video-motion-expert"]
    assert "already attached" in capsys.readouterr().out
