"""The trainer: learning, exact resume, atomic checkpoints, divergence, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from polydiff.errors import CheckpointError, ConfigError, TrainingDiverged
from polydiff.run_config import RunConfig
from polydiff.training.checkpoint import load_checkpoint, resolve_checkpoint
from polydiff.training.trainer import Trainer

TESTS = Path(__file__).resolve().parents[1]


def _config(registry, **train) -> RunConfig:
    return RunConfig.for_modality("toy", registry=registry, overrides={"train": train})


def _params(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(run_dir, training_state=True)
    return {
        **{f"model.{k}": v for k, v in ckpt.model.items()},
        **{f"ema.{k}": v for k, v in (ckpt.ema or {}).items()},
        **{
            f"opt.{i}.{n}": v
            for i, s in ckpt.optimizer["state"].items()
            for n, v in s.items()
            if isinstance(v, torch.Tensor)
        },
    }


def test_short_training_lowers_the_loss(toy_registry, tmp_path):
    result = Trainer(_config(toy_registry, steps=60), tmp_path, registry=toy_registry, progress=False).fit()
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert last < 0.5 * first, (first, last)
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == len(result.history)
    assert resolve_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-0000060"


def test_resume_is_bit_identical_to_an_uninterrupted_run(toy_registry, tmp_path):
    common = {"checkpoint_every": 4, "log_every": 1, "cond_drop_prob": 0.3}
    Trainer(
        _config(toy_registry, steps=8, **common), tmp_path / "a", registry=toy_registry, progress=False
    ).fit()
    Trainer(
        _config(toy_registry, steps=4, **common), tmp_path / "b", registry=toy_registry, progress=False
    ).fit()
    resumed = Trainer(
        _config(toy_registry, steps=8, **common),
        tmp_path / "b",
        registry=toy_registry,
        resume=True,
        progress=False,
    ).fit()
    assert resumed.step == 8
    a, b = _params(tmp_path / "a"), _params(tmp_path / "b")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    # the metrics log has one line per step, none duplicated by the resume
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 9))


def test_nan_loss_stops_with_step_and_last_checkpoint(toy_registry, tmp_path):
    cfg = _config(toy_registry, steps=20, checkpoint_every=2, batch_size=16)
    cfg.dataset.options["nan_after"] = 16 * 3  # items of steps 1-3 are finite, step 4 is NaN
    with pytest.raises(TrainingDiverged) as info:
        Trainer(cfg, tmp_path, registry=toy_registry, progress=False).fit()
    message = str(info.value)
    assert "step 4" in message and "step-0000002" in message
    assert resolve_checkpoint(tmp_path).name == "step-0000002"  # nothing overwritten by a bad state
    assert all(torch.isfinite(v).all() for v in load_checkpoint(tmp_path).model.values())


def test_fp16_on_cpu_is_refused(toy_registry, tmp_path):
    with pytest.raises(ConfigError, match="fp16 training needs a CUDA GPU"):
        Trainer(_config(toy_registry, precision="fp16"), tmp_path, registry=toy_registry, device="cpu")


def test_bf16_autocast_trains(toy_registry, tmp_path):
    result = Trainer(
        _config(toy_registry, steps=4, precision="bf16", log_every=1),
        tmp_path,
        registry=toy_registry,
        progress=False,
    ).fit()
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)


def test_interrupted_checkpoint_write_keeps_the_previous_one(toy_registry, tmp_path, monkeypatch):
    Trainer(
        _config(toy_registry, steps=2, checkpoint_every=2), tmp_path, registry=toy_registry, progress=False
    ).fit()
    import polydiff.training.checkpoint as ck

    def explode(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ck, "save_file", explode)
    with pytest.raises(OSError, match="disk full"):
        Trainer(
            _config(toy_registry, steps=4, checkpoint_every=2),
            tmp_path,
            registry=toy_registry,
            resume=True,
            progress=False,
        ).fit()
    assert resolve_checkpoint(tmp_path).name == "step-0000002"
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    load_checkpoint(tmp_path)


def test_missing_run_and_empty_run_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)


_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import toy_plugin
    from polydiff.plugins import Registry
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer
    reg = Registry.from_plugins(toy_plugin)
    cfg = RunConfig.for_modality("toy", registry=reg,
                                 overrides={{"train": {{"steps": 100000, "checkpoint_every": 1}}}})
    Trainer(cfg, {run!r}, registry=reg, resume={resume}, progress=False).fit()
""")


def _start(run_dir: Path, resume: bool = False) -> subprocess.Popen:
    code = _SCRIPT.format(tests=str(TESTS), run=str(run_dir), resume=resume)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_checkpoints(run_dir: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root = run_dir / "checkpoints"
        if (run_dir / "latest").exists() and int((run_dir / "latest").read_text().split("-")[1]) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint {count} in {root} after {timeout} s")


def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    proc = _start(tmp_path)
    try:
        _wait_for_checkpoints(tmp_path, 3, proc)
        proc.send_signal(signal.SIGKILL)  # checkpoint_every=1: very likely mid-write
    finally:
        proc.wait(timeout=60)
    ckpt = load_checkpoint(tmp_path, training_state=True)
    assert ckpt.state["step"] >= 3
    assert ckpt.optimizer is not None


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = _start(tmp_path)
    _wait_for_checkpoints(tmp_path, 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err and "--resume" in err
    step = load_checkpoint(tmp_path).state["step"]
    assert step >= 2


def test_compile_wraps_the_unet_alone_and_keeps_parameter_names(toy_registry, tmp_path):
    """--compile compiles the UNet in place (the conditioner's CPU tokenising stays eager), so the
    checkpoint's names are those of an eager run."""
    eager = Trainer(_config(toy_registry, steps=1), tmp_path / "eager", registry=toy_registry, progress=False)
    compiled = Trainer(
        _config(toy_registry, steps=1, compile=True), tmp_path / "c", registry=toy_registry, progress=False
    )
    eager._setup(), compiled._setup()  # what fit() does first
    assert compiled.model.unet._compiled_call_impl is not None
    assert eager.model.unet._compiled_call_impl is None
    assert compiled.forward is compiled.model
    assert list(compiled.model.state_dict()) == list(eager.model.state_dict())
