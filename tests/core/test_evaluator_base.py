"""The core's evaluator flow: plan -> generate -> score -> metrics.json -> picture, and its dispatch."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from polydiff.errors import ConfigError
from polydiff.evaluation.base import CheckerEvaluator, Plan


class Sums(CheckerEvaluator):
    name = "sums"
    datasets = ("numbers",)
    own_data_noun = "numbers"

    def __init__(self, own_data=None):
        self.own_data = dict(own_data or {})
        self.drawn = []

    def plan(self, pipeline):
        return Plan(["one", "two"], {"target": {"one": 1.0, "two": 2.0}})

    def score(self, pipeline, out, plan):
        wanted = torch.tensor([plan.context["target"][p] for p in out.prompts])
        return {"hits": float((out.samples.flatten(1).mean(1) == wanted).float().mean())}

    def picture(self, pipeline, out, plan, metrics, out_dir):
        self.drawn.append((list(out.prompts), plan.num_per_prompt, plan.sampling["steps"]))


def pipeline(dataset="numbers"):
    calls = []

    def run(prompts, *, num_per_prompt, **options):
        calls.append(options)
        wanted = [p for p in prompts for _ in range(num_per_prompt)]
        samples = torch.stack([torch.full((1, 4), 1.0 if p == "one" else 2.0) for p in wanted])
        return SimpleNamespace(samples=samples, prompts=wanted)

    run.config = SimpleNamespace(dataset=SimpleNamespace(name=dataset, options={}))
    run.calls = calls
    return run


def test_the_flow_writes_what_it_returns(tmp_path) -> None:
    evaluator, pipe = Sums(), pipeline()
    metrics = evaluator.evaluate(pipe, tmp_path / "eval", num_per_prompt=2, steps=3, seed=5)
    assert pipe.calls == [{"sampler": "ddim", "steps": 3, "guidance": 3.0, "seed": 5}]
    assert {k: metrics[k] for k in ("evaluator", "dataset", "num_per_prompt", "steps", "hits")} == {
        "evaluator": "sums",
        "dataset": "numbers",
        "num_per_prompt": 2,
        "steps": 3,
        "hits": 1.0,
    }
    assert metrics["seconds"] >= 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics
    assert evaluator.drawn == [(["one", "one", "two", "two"], 2, 3)]


def test_own_data_options_are_refused_for_a_run_the_checks_judge(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"sums options \['max_prompts'\] apply to runs on your own numbers"
    ):
        Sums(own_data={"max_prompts": 2}).evaluate(pipeline(), tmp_path)
    assert not tmp_path.joinpath("metrics.json").exists()


def test_other_datasets_go_to_the_own_data_judges(tmp_path, monkeypatch) -> None:
    from polydiff.evaluation import evaluator as own

    seen = {}

    def fake_evaluate(self, pipe, out_dir, **sampling):
        seen.update(max_prompts=self.max_prompts, **sampling)
        return {"evaluator": "own-data"}

    monkeypatch.setattr(own.OwnDataEvaluator, "evaluate", fake_evaluate)
    result = Sums(own_data={"max_prompts": 3}).evaluate(pipeline("my-folder"), tmp_path, steps=4)
    assert result == {"evaluator": "own-data"} and seen["max_prompts"] == 3 and seen["steps"] == 4
    with pytest.raises(ConfigError, match="sums option 'own_data'"):
        Sums(own_data={"no_such_option": 1}).evaluate(pipeline("my-folder"), tmp_path)
