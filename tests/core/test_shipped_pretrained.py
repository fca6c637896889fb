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


def test_the_template_ships_one():
    assert "timeseries-sines" in NAMES


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


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_its_evaluator_reproduces_the_card(name, tmp_path):
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
