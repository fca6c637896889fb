"""Where commands write and what they print: the ``--out`` rules, printed paths, progress bars.

The CLI runs in-process on the toy modality (its writer writes ``.json``)."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import pytest

import polydiff.plugins as plugins
from polydiff import Component, hookimpl
from polydiff.cli.common import print_outputs
from polydiff.cli.main import main
from polydiff.errors import ConfigError
from polydiff.outputs import existing, numbered, progress_enabled, resolve_output, writer_extensions


class FakeTTY(io.StringIO):
    """A stderr that says it is a terminal (progress bars draw on it)."""

    def isatty(self) -> bool:
        return True


class ToyEvaluator:
    """Writes metrics.json and one picture; returns a constant score."""

    def evaluate(
        self, pipeline, out_dir, *, num_per_prompt=4, sampler="ddim", steps=50, guidance=3.0, seed=0
    ):
        pipeline(["up"], num_per_prompt=1, sampler=sampler, steps=2, seed=seed)
        (Path(out_dir) / "picture.json").write_text("{}")
        metrics = {"score": 1.0}
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics))
        return metrics


class EvaluatorPlugin:
    @hookimpl
    def polydiff_evaluators(self):
        return [Component("toy-eval", "toy_outputs_eval:ToyEvaluator", modality="toy")]


@pytest.fixture
def registry(monkeypatch):
    import toy_plugin

    from polydiff.plugins import Registry

    module = types.ModuleType("toy_outputs_eval")
    module.ToyEvaluator = ToyEvaluator
    monkeypatch.setitem(sys.modules, "toy_outputs_eval", module)
    return Registry.from_plugins(toy_plugin, ("toy_outputs_eval", EvaluatorPlugin()))


@pytest.fixture
def cli(registry, monkeypatch):
    monkeypatch.setattr(plugins, "get_registry", lambda: registry)
    return main


@pytest.fixture
def run(cli, tmp_path_factory, capsys):
    """A toy run trained for 2 steps, scored by the toy evaluator."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert cli(["train", "toy", "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    [config] = (out / "checkpoints").glob("step-*/config.json")
    config.write_text(json.dumps({**json.loads(config.read_text()), "evaluator": {"name": "toy-eval"}}))
    return out


def printed_paths(stdout: str) -> list[Path]:
    """The lines of ``print_outputs`` (indented absolute paths: tests write under tmp_path)."""
    return [Path(line.strip()) for line in stdout.splitlines() if line.startswith("  /")]


def files_in(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


SAMPLE = ["--prompt", "up", "--steps", "2", "--no-progress"]


def test_one_sample_is_written_to_exactly_the_path_given(cli, run, tmp_path, capsys):
    out = tmp_path / "clip.json"
    assert cli(["sample", str(run), *SAMPLE, "--num", "1", "--out", str(out)]) == 0
    assert files_in(tmp_path) == ["clip.json"]
    assert len(json.loads(out.read_text())["x"]) == 1
    assert printed_paths(capsys.readouterr().out) == [out]


def test_out_that_is_a_directory_gets_the_default_name_inside(cli, run, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert cli(["sample", str(run), *SAMPLE, "--out", str(tmp_path / "d")]) == 0
    assert files_in(tmp_path) == ["d/sample.json"]
    assert printed_paths(capsys.readouterr().out) == [tmp_path / "d" / "sample.json"]
    assert cli(["noise", "toy", "--num", "2", "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "forward.json").is_file()
    assert printed_paths(capsys.readouterr().out) == [tmp_path / "d" / "forward.json"]


def test_unsupported_extension_is_one_line_naming_the_supported_ones(cli, run, tmp_path, capsys):
    assert cli(["sample", str(run), *SAMPLE, "--out", str(tmp_path / "clip.gif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "'.gif'" in err and ".json" in err, err
    assert cli(["noise", "toy", "--out", str(tmp_path / "f.png")]) == 2
    assert ".json" in capsys.readouterr().err
    assert files_in(tmp_path) == []


def test_out_under_a_file_is_one_line(cli, run, tmp_path, capsys):
    (tmp_path / "file").write_text("keep")
    for argv in (
        ["sample", str(run), *SAMPLE, "--out", str(tmp_path / "file" / "x.json")],
        ["noise", "toy", "--out", str(tmp_path / "file" / "sub" / "x.json")],
        ["evaluate", str(run), "--out", str(tmp_path / "file" / "eval")],
        ["evaluate", str(run), "--out", str(tmp_path / "file")],
    ):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{tmp_path / 'file'}" in err and "is a file" in err, err
    assert (tmp_path / "file").read_text() == "keep" and files_in(tmp_path) == ["file"]


def test_several_samples_use_the_writers_multi_sample_form(cli, run, tmp_path, capsys):
    out = tmp_path / "grid.json"
    argv = ["sample", str(run), *SAMPLE, "--prompt", "down", "--num", "2", "--out", str(out), "--trajectory"]
    assert cli(argv) == 0
    assert len(json.loads(out.read_text())["x"]) == 4  # the toy writer's form: one file
    assert printed_paths(capsys.readouterr().out) == [out, tmp_path / "grid-trajectory.json"]


def test_evaluate_prints_the_files_it_wrote(cli, run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli(["evaluate", str(run), "--out", str(out), "--no-progress"]) == 0
    assert sorted(printed_paths(capsys.readouterr().out)) == [out / "metrics.json", out / "picture.json"]


def test_demo_prints_only_files_that_exist(cli, tmp_path, capsys):
    assert cli(["demo", "toy", "--steps", "2", "--out", str(tmp_path / "demo"), "--no-progress"]) == 0
    paths = printed_paths(capsys.readouterr().out)
    assert {p.name for p in paths} >= {"samples.json", "reverse.json", "forward.json"}
    assert all(p.is_file() for p in paths)


def test_no_carriage_return_bars_when_stderr_is_not_a_terminal(cli, run, tmp_path, capsys, monkeypatch):
    """Without --no-progress: no bars off a terminal; on a terminal the same commands draw them."""
    commands = [
        ["train", "toy", "--steps", "2", "--out", str(tmp_path / "t")],
        ["sample", str(run), "--prompt", "up", "--steps", "3", "--out", str(tmp_path / "s.json")],
        ["evaluate", str(run), "--out", str(tmp_path / "e")],
        ["demo", "toy", "--steps", "2", "--out", str(tmp_path / "demo")],
    ]
    for argv in commands:
        assert cli(argv) == 0, argv
        assert "\r" not in capsys.readouterr().err, argv
    for argv in commands:
        tty = FakeTTY()
        monkeypatch.setattr(sys, "stderr", tty)
        assert cli([*argv[:2], *argv[2:], "--out", str(tmp_path / ("again-" + argv[0]))]) == 0
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        assert "\r" in tty.getvalue(), argv  # the check above could fail
        tty = FakeTTY()
        monkeypatch.setattr(sys, "stderr", tty)
        assert cli([*argv, "--no-progress", "--out", str(tmp_path / ("quiet-" + argv[0]))]) == 0
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        assert "\r" not in tty.getvalue(), argv


def test_every_long_command_takes_no_progress():
    from polydiff.cli.main import build_parser

    parser = build_parser()
    for argv in (["train", "toy"], ["sample", "r"], ["evaluate", "r"], ["demo"], ["noise", "toy"]):
        assert parser.parse_args([*argv, "--no-progress"]).no_progress is True


def test_progress_enabled():
    assert progress_enabled(stream=FakeTTY()) is True
    assert progress_enabled(True, stream=FakeTTY()) is False
    assert progress_enabled(stream=io.StringIO()) is False
    closed = io.StringIO()
    closed.close()  # isatty() raises ValueError
    assert progress_enabled(stream=closed) is False


def test_numbered_and_existing(tmp_path):
    assert numbered(tmp_path / "clip.gif", 1) == [tmp_path / "clip.gif"]
    assert numbered(tmp_path / "clip.gif", 2) == [tmp_path / "clip-00.gif", tmp_path / "clip-01.gif"]
    assert numbered(tmp_path / "s.wav", 2, labels=["one two", ""]) == [
        tmp_path / "s-00-one two.wav",
        tmp_path / "s-01.wav",
    ]
    assert numbered(tmp_path / "s", 1, ".png") == [tmp_path / "s.png"]
    (tmp_path / "a").write_text("")
    assert existing([tmp_path / "a", tmp_path / "missing", tmp_path / "a"]) == [tmp_path / "a"]


def test_print_outputs_skips_missing_paths(tmp_path, capsys):
    (tmp_path / "a").write_text("")
    print_outputs("wrote:", [tmp_path / "missing", tmp_path / "a"])
    assert capsys.readouterr().out == f"wrote:\n  {tmp_path / 'a'}\n"


def test_resolve_output_rules(tmp_path):
    default = tmp_path / "run" / "sample.png"
    assert resolve_output(None, default, (".png",)) == default and default.parent.is_dir()
    assert resolve_output(tmp_path / "new" / "x.PNG", default, (".png",)) == tmp_path / "new" / "x.PNG"
    assert resolve_output(tmp_path / "newdir", default, (".png",)) == tmp_path / "newdir" / "sample.png"
    with pytest.raises(ConfigError, match=r"unsupported extension '\.jpg'.*writes \.gif, \.png"):
        resolve_output(tmp_path / "x.jpg", default, (".gif", ".png"))
    (tmp_path / "plain").write_text("")
    with pytest.raises(ConfigError, match="without extension"):
        resolve_output(tmp_path / "plain", default, (".png",))
    assert writer_extensions(types.SimpleNamespace(extension=".wav")) == (".wav",)
    assert writer_extensions(types.SimpleNamespace(extension=".gif", extensions=(".GIF", ".png"))) == (
        ".gif",
        ".png",
    )
