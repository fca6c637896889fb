"""`polydiff demo` with a pretrained model installed: a short live run, then the pretrained model.

A fake plugin package (``pd_demo_pretrained``, written into a temporary directory on
``sys.path``) ships a tiny toy model in fp16 with its card, as a plugin ships package data.
"""

from __future__ import annotations

import json
import re

import pytest

import polydiff.plugins as plugins
from polydiff import Pretrained, hookimpl
from polydiff.cli import demo_cmd
from polydiff.cli.main import main
from polydiff.pretrained import export_checkpoint, render_card
from polydiff.run_config import RunConfig
from polydiff.training.trainer import Trainer

PACKAGE = "pd_demo_pretrained"


class Shipped:
    """A plugin module's pretrained records: one main model, its expert, one not installed."""

    @hookimpl
    def polydiff_pretrained(self):
        return [
            Pretrained("toy-demo", PACKAGE, "pretrained/toy-demo", modality="toy", experts=("a-toy-high",)),
            Pretrained("a-toy-high", PACKAGE, "pretrained/a-toy-high", modality="toy"),
        ]


class NotInstalled:
    @hookimpl
    def polydiff_pretrained(self):
        return [Pretrained("toy-gone", PACKAGE, "pretrained/toy-gone", modality="toy")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site directory holding the fake package with its shipped toy model and expert (fp16)."""
    import toy_plugin

    root = tmp_path_factory.mktemp("demo-pretrained")
    registry = plugins.Registry.from_plugins(toy_plugin)
    for name, train in (("toy-demo", {}), ("a-toy-high", {"timestep_range": [50, 100]})):
        config = RunConfig.for_modality("toy", registry=registry, overrides={"train": {"steps": 4, **train}})
        Trainer(config, root / name, registry=registry, progress=False).fit()
        export_checkpoint(root / name, root / "site" / PACKAGE / "pretrained" / name, dtype="float16")
    (root / "site" / PACKAGE / "__init__.py").write_text("")
    dest = root / "site" / PACKAGE / "pretrained" / "toy-demo"
    (dest / "metrics.json").write_text(json.dumps({"sign_accuracy": 0.75, "held_out": {"all": 0.5}}))
    fields = {"name": "toy-demo", "modality": "toy", "command": "polydiff train toy --steps 4", "steps": 4}
    fields |= {"dtype": "float16", "metric": "sign_accuracy", "score": "0.7500", "target": 0.7}
    (dest / "README.md").write_text(render_card(fields, "# toy-demo"))
    return root / "site"


def _demo(toy, extra, site, monkeypatch, tmp_path, steps=()):
    import toy_plugin

    monkeypatch.syspath_prepend(str(site))
    registry = plugins.Registry.from_plugins(toy_plugin, *extra)
    monkeypatch.setattr(plugins, "get_registry", lambda: registry)
    out = tmp_path / "demo"
    assert main(["demo", toy, "--out", str(out), "--no-progress", *steps]) == 0
    return out, (out / "index.html").read_text()


def test_demo_trains_briefly_then_shows_the_pretrained_model_and_its_card(
    site, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(demo_cmd, "LIVE_STEPS", 3)
    out, page = _demo("toy", [("shipped", Shipped())], site, monkeypatch, tmp_path)
    log = [json.loads(ln) for ln in (out / "toy" / "metrics.jsonl").read_text().splitlines()]
    assert max(ln["step"] for ln in log) == 3  # the live run is capped
    for name in ("forward", "live-samples", "pretrained-samples", "pretrained-reverse"):
        assert (out / "toy" / f"{name}.json").is_file(), name
    assert not (out / "toy" / "samples.json").exists()
    assert "<h2>toy: live training, 3 steps</h2>" in page
    assert "<h2>toy: pretrained toy-demo</h2>" in page  # the main model, not its expert
    assert "sign_accuracy (card)</th><td class='num'>0.7500" in page
    assert (
        "final loss" in page
        and "held_out all</th><td class='num'>0.500" in page
        and "target</th><td class='num'>0.7" in page
    )
    linked = re.findall(r"href='([^']+)'", page)
    assert "toy/pretrained-samples.json" in linked and all((out / s).is_file() for s in linked)
    assert "toy-demo: sign_accuracy (card) 0.7500" in capsys.readouterr().out


def test_steps_option_sets_the_live_run(site, monkeypatch, tmp_path):
    out, page = _demo("toy", [("shipped", Shipped())], site, monkeypatch, tmp_path, ["--steps", "5"])
    assert (
        "<h2>toy: live training, 5 steps</h2>" in page and (out / "toy" / "pretrained-samples.json").is_file()
    )


def test_without_installed_files_the_demo_trains_and_samples_as_before(site, monkeypatch, tmp_path):
    out, page = _demo("toy", [("gone", NotInstalled())], site, monkeypatch, tmp_path, ["--steps", "4"])
    assert "<h2>toy</h2>" in page and "<h2>toy: " not in page
    assert (out / "toy" / "samples.json").is_file() and (out / "toy" / "forward.json").is_file()
