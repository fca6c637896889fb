"""The `polydiff` command end to end on the toy modality (in-process, isolated registry)."""

from __future__ import annotations

import json

import pytest

import polydiff.plugins as plugins
from polydiff.cli.main import main


@pytest.fixture
def cli(toy_registry, monkeypatch):
    monkeypatch.setattr(plugins, "get_registry", lambda: toy_registry)
    return main


def test_train_sample_noise_demo(cli, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        cli(
            [
                "train",
                "toy",
                "--steps",
                "6",
                "--out",
                str(run),
                "--no-progress",
                "--set",
                "train.checkpoint_every=3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "trained toy on toy-signals to step 6" in out and str(run / "checkpoints" / "step-0000006") in out

    sample = tmp_path / "s.json"
    assert (
        cli(
            [
                "sample",
                str(run),
                "--prompt",
                "up",
                "--prompt",
                "down",
                "--num",
                "2",
                "--steps",
                "4",
                "--out",
                str(sample),
                "--trajectory",
            ]
        )
        == 0
    )
    written = json.loads(sample.read_text())
    assert written["prompts"] == ["up", "up", "down", "down"] and len(written["x"]) == 4
    assert written["note"] == "from-dataset"  # writer options stored at training time
    traj = json.loads((tmp_path / "s-trajectory.json").read_text())
    assert traj["xt"][1:] == [4, 1, 16] and traj["steps"] == sorted(traj["steps"], reverse=True)

    fwd = tmp_path / "fwd.json"
    assert cli(["noise", "toy", "--num", "3", "--steps", "0,50,99", "--out", str(fwd)]) == 0
    assert json.loads(fwd.read_text()) == {"steps": [0, 50, 99], "xt": [3, 3, 1, 16]}

    assert cli(["train", "toy", "--steps", "8", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "to step 8" in capsys.readouterr().out

    assert cli(["demo", "toy", "--steps", "3", "--out", str(tmp_path / "demo")]) == 0
    assert "demo finished" in capsys.readouterr().out
    assert (tmp_path / "demo" / "toy" / "samples.json").exists()
    assert (tmp_path / "demo" / "toy" / "reverse.json").exists()
    assert (tmp_path / "demo" / "toy" / "forward.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "tyo"], "unknown modality 'tyo'. Did you mean 'toy'?"),
        (["train", "toy", "--dataset", "toy-signal"], "Did you mean 'toy-signals'?"),
        (["train", "toy", "--precision", "fp16", "--device", "cpu"], "fp16 training needs a CUDA GPU"),
        (["sample", "/nonexistent/run"], "/nonexistent/run does not exist"),
        (["noise", "toy", "--steps", "0,100"], r"--steps must lie in \[0, 99\]"),
    ],
)
def test_bad_input_is_one_clear_line(cli, argv, message, capsys):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"polydiff {argv[0]}: error:") and err.count("\n") == 1
    assert __import__("re").search(message, err), err


def test_unknown_sampler(cli, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["train", "toy", "--steps", "2", "--out", str(run), "--no-progress"]) == 0
    assert cli(["sample", str(run), "--sampler", "dddim", "--out", str(tmp_path / "x.json")]) == 2
    assert "unknown sampler 'dddim'. Did you mean 'ddim'?" in capsys.readouterr().err
