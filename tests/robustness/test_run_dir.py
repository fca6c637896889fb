"""A run directory has one owner: refusals, --overwrite, the lock, retention, no silent fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from robustness.cli_helpers import error_line, snapshot, train

from polydiff.training.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def trained(cli, tmp_path, capsys) -> Path:
    """A toy run at step 4 with checkpoints at 2 and 4 and a metrics log."""
    run = tmp_path / "run"
    assert (
        train(cli, run, "--steps", "4", "--set", "train.checkpoint_every=2", "--set", "train.log_every=1")
        == 0
    )
    capsys.readouterr()
    return run


def test_fresh_train_into_a_run_is_refused_and_changes_nothing(cli, trained, capsys):
    before = snapshot(trained)
    assert train(cli, trained, "--steps", "2") == 2
    line = error_line(capsys)
    assert line.startswith("polydiff train: error: ")
    assert "already holds a training run" in line and "checkpoints/step-0000004" in line
    assert "--resume" in line and "--overwrite" in line
    assert snapshot(trained) == before


def test_overwrite_replaces_the_previous_run(cli, trained, capsys):
    assert train(cli, trained, "--steps", "3", "--overwrite", "--set", "train.log_every=1") == 0
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == ["step-0000003"]
    assert (trained / "latest").read_text().strip() == "step-0000003"
    steps = [
        line.split('"step": ')[1].split(",")[0]
        for line in (trained / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == ["1", "2", "3"]  # the earlier run's history is gone, not mixed in
    capsys.readouterr()
    assert cli(["train", "toy", "--out", str(trained), "--resume", "--overwrite"]) == 2
    assert "pass one of them" in error_line(capsys)


def test_out_that_is_a_file_is_one_line(cli, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert train(cli, target, "--steps", "1") == 2
    line = error_line(capsys)
    assert f"--out {target} is an existing file" in line
    assert target.read_text() == "mine"


_HOLD = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"pid={os.getpid()}\\nhost=testhost\\nstarted=now\\ncommand=polydiff train toy\\n".encode())
    print("locked", flush=True)
    time.sleep(60)
""")


def test_a_second_live_training_is_refused_and_a_killed_one_leaves_no_lock(cli, trained, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(trained / "train.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(trained)
        for extra in (["--resume", "--steps", "6"], ["--overwrite", "--steps", "1"]):
            assert train(cli, trained, *extra) == 2
            line = error_line(capsys)
            assert f"is in use by another training (pid {holder.pid} on testhost" in line, line
            assert snapshot(trained) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert train(cli, trained, "--resume", "--steps", "5") == 0  # the kernel freed the lock
    assert (trained / "latest").read_text().strip() == "step-0000005"
    assert f"pid={os.getpid()}" in (trained / "train.lock").read_text()


def test_resume_of_a_live_run_without_checkpoints_names_the_training(cli, tmp_path, capsys):
    """Before the first checkpoint a live run is named as such, not as a run with nothing to resume."""
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run / "train.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert train(cli, run, "--resume", "--steps", "6") == 2
        assert f"is in use by another training (pid {holder.pid} on testhost" in error_line(capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert train(cli, run, "--resume", "--steps", "6") == 2
    assert "holds no checkpoint to continue" in error_line(capsys)


def test_retention_follows_the_runs_history_and_temporaries_are_cleaned(cli, trained, capsys):
    stale = trained / "checkpoints" / ".step-0000006-x1y2"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    assert (
        train(
            cli,
            trained,
            "--resume",
            "--steps",
            "7",
            "--set",
            "train.checkpoint_every=1",
            "--set",
            "train.keep_checkpoints=3",
        )
        == 0
    )
    assert "removed 1 half-written checkpoint(s)" in capsys.readouterr().err
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "step-0000005",
        "step-0000006",
        "step-0000007",
    ]


def test_retention_never_removes_the_checkpoint_just_written(toy_config, tmp_path):
    """The run's own history decides, not the names: a newer-named leftover goes first."""
    model = {"w": __import__("torch").zeros(2)}
    later = save_checkpoint(tmp_path, 9, toy_config, model, keep=0)
    just = save_checkpoint(tmp_path, 3, toy_config, model, keep=1, history=[later])
    assert just.is_dir() and not later.exists()
    assert (tmp_path / "latest").read_text().strip() == "step-0000003"


def test_sample_never_falls_back_to_another_checkpoint(cli, trained, tmp_path, capsys):
    out = tmp_path / "s.json"
    (trained / "latest").write_text("step-0000500\n")  # names a checkpoint that is not there
    assert cli(["sample", str(trained), "--steps", "2", "--out", str(out)]) == 2
    line = error_line(capsys)
    assert "latest names step-0000500, which is missing or incomplete" in line
    assert "step-0000002, step-0000004" in line and "explicitly" in line
    (trained / "latest").unlink()
    for command in ("sample", "evaluate"):
        assert cli([command, str(trained), "--steps", "2", "--out", str(out)]) == 2
        line = error_line(capsys)
        assert "has checkpoints but no 'latest' file" in line and "step-0000004" in line
    assert not out.exists()
    explicit = trained / "checkpoints" / "step-0000002"
    assert cli(["sample", str(explicit), "--steps", "2", "--out", str(out)]) == 0
    assert out.exists()
    assert load_checkpoint(explicit).state["step"] == 2
