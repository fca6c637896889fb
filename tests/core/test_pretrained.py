"""Pretrained models: a plugin ships checkpoints as package data; names resolve wherever runs do.

A fake plugin package (``pd_fake_pretrained``, written into a temporary directory on
``sys.path``) ships a tiny toy model in fp16, a denoiser expert and their cards.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import polydiff.plugins as plugins
from polydiff import Evaluator, Pretrained, hookimpl
from polydiff.cli.main import main
from polydiff.errors import CheckpointError, PluginError
from polydiff.pipeline import DiffusionPipeline
from polydiff.pretrained import (
    check_card,
    export_checkpoint,
    metric_value,
    read_card,
    render_card,
    resolve,
)
from polydiff.records import Component
from polydiff.run_config import RunConfig
from polydiff.training.trainer import Trainer

PACKAGE = "pd_fake_pretrained"


class SignEvaluator(Evaluator):
    """Share of samples whose mean has the sign their prompt ("up" / "down") asks for."""

    def evaluate(
        self, pipeline, out_dir, *, num_per_prompt=4, sampler="ddim", steps=10, guidance=2.0, seed=0
    ):
        out = pipeline(["up", "down"], num_per_prompt=num_per_prompt, sampler=sampler, steps=steps, seed=seed)
        signs = out.samples.mean(dim=(1, 2)).sign()
        wanted = torch.tensor([1.0 if p == "up" else -1.0 for p in out.prompts])
        metrics = {"sign_accuracy": float((signs == wanted).float().mean()), "num_samples": len(out.prompts)}
        Path(out_dir, "metrics.json").write_text(json.dumps(metrics))
        return metrics


class FakePlugin:
    """What a third-party plugin's module holds: its pretrained records (and an evaluator)."""

    experts: tuple[str, ...] = ("toy-tiny-high",)

    @hookimpl
    def polydiff_pretrained(self):
        return [
            Pretrained("toy-tiny", PACKAGE, "pretrained/toy-tiny", modality="toy", experts=self.experts),
            Pretrained("toy-tiny-high", PACKAGE, "pretrained/toy-tiny-high", modality="toy"),
        ]

    @hookimpl
    def polydiff_evaluators(self):
        return [Component("toy-sign", f"{__name__}:SignEvaluator", modality="toy")]


def _train(registry, run: Path, **train) -> None:
    overrides = {"train": {"steps": 4, "checkpoint_every": 4, **train}}
    Trainer(
        RunConfig.for_modality("toy", registry=registry, overrides=overrides),
        run,
        registry=registry,
        progress=False,
    ).fit()


def _ship(run: Path, dest: Path, registry, name: str) -> None:
    """What scripts/make_pretrained.py does, without the training command: export, evaluate, card."""
    export_checkpoint(run, dest, dtype="float16")
    config = json.loads((dest / "config.json").read_text())
    config["evaluator"] = {"name": "toy-sign", "options": {}}
    (dest / "config.json").write_text(json.dumps(config))
    metrics = {"sign_accuracy": 0.5, "num_samples": 8}
    (dest / "metrics.json").write_text(json.dumps(metrics))
    steps = config["train"]["steps"]
    fields = {
        "name": name,
        "modality": "toy",
        "command": f"polydiff train toy --steps {steps}",
        "steps": steps,
        "dtype": "float16",
        "metric": "sign_accuracy",
        "score": "0.5000",
    }
    (dest / "README.md").write_text(render_card(fields, f"# {name}\n\nA toy."))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """``(site, run)``: the fake package on a site directory, and the main model's run directory."""
    import toy_plugin

    from polydiff.plugins import Registry

    root = tmp_path_factory.mktemp("pretrained")
    registry = Registry.from_plugins(toy_plugin)
    run, expert_run = root / "run", root / "expert-run"
    _train(registry, run)
    _train(registry, expert_run, timestep_range=[50, 100])
    site = root / "site"
    package = site / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    _ship(run, package / "pretrained" / "toy-tiny", registry, "toy-tiny")
    _ship(expert_run, package / "pretrained" / "toy-tiny-high", registry, "toy-tiny-high")
    return site, run


@pytest.fixture
def registry(shipped, monkeypatch):
    import toy_plugin

    from polydiff.plugins import Registry

    monkeypatch.syspath_prepend(str(shipped[0]))
    return Registry.from_plugins(toy_plugin, ("fakepre", FakePlugin()))


@pytest.fixture
def cli(registry, monkeypatch, tmp_path):
    monkeypatch.setattr(plugins, "get_registry", lambda: registry)
    monkeypatch.chdir(tmp_path)
    return main


def test_from_pretrained_loads_fp16_weights_into_the_fp32_model_with_its_experts(registry, shipped):
    pipe = DiffusionPipeline.from_pretrained("toy-tiny", registry=registry, device="cpu")
    assert pipe.pretrained.name == "toy-tiny" and pipe.pretrained.plugin  # the registry filled it in
    assert pipe.checkpoint_path == shipped[0] / PACKAGE / "pretrained" / "toy-tiny"
    shipped_weights = load_file(str(pipe.checkpoint_path / "model.safetensors"))
    assert {t.dtype for t in shipped_weights.values() if t.is_floating_point()} == {torch.float16}
    params = dict(pipe.model.named_parameters())
    assert {p.dtype for p in params.values()} == {torch.float32}
    name = "unet.out.2.weight" if "unet.out.2.weight" in params else next(iter(params))
    assert torch.equal(params[name], shipped_weights[name].float())
    # the record's expert denoises its timesteps
    assert [(lo, hi) for lo, hi, _ in pipe.experts] == [(50, 100)]
    assert pipe.experts[0][2].pretrained.name == "toy-tiny-high"
    out = pipe(["up"], num_per_prompt=2, steps=4)
    assert out.samples.shape == (2, 1, 16) and torch.isfinite(out.samples).all()


def test_an_existing_path_wins_over_a_name(registry, shipped, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(shipped[1], tmp_path / "toy-tiny")  # a run directory called like the model
    path, record = resolve("toy-tiny", registry)
    assert record is None and path == Path("toy-tiny")
    pipe = DiffusionPipeline.from_pretrained("toy-tiny", registry=registry, device="cpu")
    assert pipe.pretrained is None and pipe.experts == []
    assert pipe.checkpoint_path.parent.parent.resolve() == (tmp_path / "toy-tiny").resolve()


def test_an_unknown_name_is_one_line_with_the_closest_and_the_known_names(registry):
    with pytest.raises(CheckpointError) as info:
        DiffusionPipeline.from_pretrained("toy-tiyn", registry=registry)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("toy-tiyn does not exist and is not a pretrained model name")
    assert "Did you mean 'toy-tiny'?" in message
    assert "Known pretrained models: toy-tiny, toy-tiny-high." in message


def test_a_record_whose_files_are_missing_names_the_path_and_the_fix(registry):
    record = Pretrained("ghost", PACKAGE, "pretrained/ghost", plugin="pd-fake")
    with pytest.raises(PluginError, match=r"pretrained 'ghost' from pd-fake: .*pretrained/ghost is missing"):
        record.load()
    assert record.directory(missing_ok=True).name == "ghost"
    with pytest.raises(PluginError, match="'no_such_pkg', which is not an installed package"):
        Pretrained("x", "no_such_pkg", "p").load()


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (Pretrained("a", "pkg:attr", "p"), "package 'pkg:attr' is not a package import name"),
        (Pretrained("a", "pkg", ""), "path must name the checkpoint directory"),
        (Pretrained("a", "pkg", "p", experts="b"), "experts must be a tuple of pretrained names"),
    ],
)
def test_a_bad_record_is_reported_and_its_plugin_skipped(record, problem):
    from polydiff.plugins import Registry

    class Bad:
        @hookimpl
        def polydiff_pretrained(self):
            return [record]

    with pytest.warns(plugins.PluginLoadWarning):
        registry = Registry.from_plugins(("bad", Bad()))
    assert problem in registry.failures[0].error and registry.failures[0].hook == "polydiff_pretrained"


def test_sample_and_evaluate_take_a_name_and_write_under_runs_pretrained(cli, tmp_path, shipped, capsys):
    assert cli(["sample", "toy-tiny", "--prompt", "up", "--num", "2", "--steps", "3"]) == 0
    written = json.loads((tmp_path / "runs/pretrained/toy-tiny/samples/sample.json").read_text())
    assert written["prompts"] == ["up", "up"]
    assert cli(["evaluate", "toy-tiny", "--num-per-prompt", "2", "--steps", "3"]) == 0
    metrics = json.loads((tmp_path / "runs/pretrained/toy-tiny/eval/metrics.json").read_text())
    assert metrics["num_samples"] == 4 and 0.0 <= metrics["sign_accuracy"] <= 1.0
    assert "experts" in metrics  # the record's expert sampled too
    package = shipped[0] / PACKAGE / "pretrained" / "toy-tiny"
    assert sorted(p.name for p in package.iterdir()) == [
        "README.md",
        "config.json",
        "metrics.json",
        "model.safetensors",
    ]


def test_expert_option_takes_a_name(cli, shipped, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert (
        cli(["sample", str(shipped[1]), "--expert", "toy-tiny-high", "--steps", "3", "--out", str(out)]) == 0
    )
    assert "denoises timesteps 50..99" in capsys.readouterr().out and out.is_file()


def test_a_misspelt_name_on_the_command_line_exits_2_with_one_line(cli, capsys):
    assert cli(["sample", "toy-tny", "--prompt", "up"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0
        and "Did you mean 'toy-tiny'?" in err
        and err.startswith("polydiff sample: error:")
    )


def test_plugins_lists_pretrained_models_in_text_and_json(cli, capsys):
    assert cli(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "  pretrained    toy-tiny [toy] (+ experts toy-tiny-high), toy-tiny-high [toy]" in text
    assert cli(["plugins", "--json"]) == 0
    info = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    listed = {p["name"]: p for p in info["fakepre"]["components"]["pretrained"]}
    assert listed["toy-tiny"]["experts"] == ["toy-tiny-high"]
    assert listed["toy-tiny"]["package"] == PACKAGE and listed["toy-tiny"]["path"] == "pretrained/toy-tiny"


def test_card_is_checked_against_config_weights_and_metrics(shipped, tmp_path):
    good = shipped[0] / PACKAGE / "pretrained" / "toy-tiny"
    assert check_card(good) == []
    assert read_card(good)["steps"] == "4"
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    card = (bad / "README.md").read_text()
    (bad / "README.md").write_text(
        card.replace("--steps 4", "--steps 40").replace("dtype: float16", "dtype: float32")
    )
    (bad / "metrics.json").write_text(json.dumps({"sign_accuracy": 0.75}))
    problems = "\n".join(check_card(bad))
    assert "card command's --steps 40 != config.json's train.steps 4" in problems
    assert "card dtype float32 but model.safetensors holds ['F16']" in problems
    assert "card score 0.5000 != metrics.json's sign_accuracy 0.75" in problems
    (bad / "README.md").write_text("no front matter\n")
    with pytest.raises(CheckpointError, match="has no front matter"):
        read_card(bad)


def test_a_dotted_metric_reads_a_nested_section_of_metrics_json(shipped, tmp_path):
    nested = tmp_path / "nested"
    shutil.copytree(shipped[0] / PACKAGE / "pretrained" / "toy-tiny", nested)
    (nested / "README.md").write_text(
        (nested / "README.md").read_text().replace("metric: sign_accuracy", "metric: held_out.all")
    )
    (nested / "metrics.json").write_text(json.dumps({"held_out": {"all": 0.5}, "seen": {"all": 0.25}}))
    assert check_card(nested) == []
    assert metric_value({"held_out": {"all": 0.5}, "a.b": 1}, "a.b") == 1  # a flat key wins
    assert metric_value({"held_out": {"all": 0.5}}, "held_out.none") is None
    (nested / "metrics.json").write_text(json.dumps({"held_out": {"all": 0.75}}))
    assert check_card(nested) == ["card score 0.5000 != metrics.json's held_out.all 0.75"]


def test_resolving_a_name_imports_neither_torch_nor_the_package(shipped):
    import subprocess

    code = (
        "import sys; from polydiff.records import Pretrained; "
        f"d = Pretrained('t', '{PACKAGE}', 'pretrained/toy-tiny').load(); "
        f"print(d.is_dir(), 'torch' in sys.modules, '{PACKAGE}' in sys.modules)"
    )
    env = {"PYTHONPATH": f"{shipped[0]}:{':'.join(sys.path)}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == ["True", "False", "False"]
