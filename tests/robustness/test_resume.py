"""--resume applies what may change between legs, refuses what changes the run; nothing
non-finite is ever written or sampled."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from robustness.cli_helpers import error_line, snapshot, train
from safetensors.torch import save_file

from polydiff.errors import ConfigError
from polydiff.run_config import RunConfig
from polydiff.training.checkpoint import load_checkpoint, save_checkpoint
from polydiff.training.trainer import Trainer


@pytest.fixture
def trained(cli, tmp_path, capsys) -> Path:
    run = tmp_path / "run"
    assert train(cli, run, "--steps", "4", "--set", "train.checkpoint_every=2") == 0
    capsys.readouterr()
    return run


def test_resume_applies_and_prints_the_changes(cli, trained, capsys):
    code = train(
        cli,
        trained,
        "--resume",
        "--steps",
        "6",
        "--lr",
        "0.001",
        "--set",
        "train.grad_clip=0.5",
        "--set",
        "train.warmup_steps=1",
        "--set",
        "sample.steps=7",
    )
    assert code == 0
    captured = capsys.readouterr()
    for change in (
        "resume: train.steps 4 -> 6",
        "resume: train.lr 0.002 -> 0.001",
        "resume: train.grad_clip 1.0 -> 0.5",
        "resume: train.warmup_steps 5 -> 1",
        "resume: sample.steps 10 -> 7",
    ):
        assert change in captured.err, captured.err
    assert "trained toy on toy-signals to step 6" in captured.out
    config = load_checkpoint(trained).config
    assert (config.train.lr, config.train.grad_clip, config.train.steps) == (0.001, 0.5, 6)
    lr_logged = [json.loads(ln)["lr"] for ln in (trained / "metrics.jsonl").read_text().splitlines()]
    assert lr_logged[-1] == 0.001


def test_resume_may_lower_the_steps_to_the_current_step(cli, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    original = Trainer._train_step

    def stop_after_two(self, step, batch):  # as if SIGTERM came during step 2
        if step == 1:
            self._stop_signal = signal.SIGTERM
        return original(self, step, batch)

    monkeypatch.setattr(Trainer, "_train_step", stop_after_two)
    assert train(cli, run, "--steps", "8") == 130
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert load_checkpoint(run).state["step"] == 2
    capsys.readouterr()
    before = snapshot(run)
    assert train(cli, run, "--resume", "--steps", "1") == 2
    line = error_line(capsys)
    assert "train.steps=1: the run is at step 2 already; pass --steps 2 or more" in line
    assert snapshot(run) == before
    assert train(cli, run, "--resume", "--steps", "3") == 0
    assert "resume: train.steps 8 -> 3" in capsys.readouterr().err
    assert load_checkpoint(run).state["step"] == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seed", "5"], "train.seed 0 -> 5"),
        (["--batch-size", "8"], "train.batch_size 16 -> 8"),
        (["--set", "unet.model_channels=32"], "unet.model_channels 16 -> 32"),
        (["--set", "train.cond_drop_prob=0.5"], "train.cond_drop_prob 0.1 -> 0.5"),
        (["--set", "diffusion.schedule=cosine"], "diffusion.schedule"),
        (["--set", "dataset.size=32"], "dataset.size 'unset' -> 32"),
        (["--dataset", "other-signals"], "with dataset 'toy-signals', not 'other-signals'"),
        (["--preset", "full"], "with preset 'quick', not 'full'"),
    ],
)
def test_resume_refuses_what_changes_the_run(cli, trained, capsys, args, expected):
    before = snapshot(trained)
    assert train(cli, trained, "--resume", *args) == 2
    line = error_line(capsys)
    assert expected in line and "another --out" in line, line
    assert snapshot(trained) == before


def test_resume_refuses_another_modality_and_names_the_runs(cli, trained, capsys):
    assert cli(["train", "image", "--out", str(trained), "--resume"]) == 2
    line = error_line(capsys)
    assert "is a toy run with modality 'toy', not 'image'" in line
    assert f"polydiff train toy --resume --out {trained}" in line


@pytest.mark.parametrize("missing", ["trainer_state.json", "optimizer.safetensors"])
def test_resume_without_training_state_is_one_line(cli, trained, capsys, missing):
    (trained / "checkpoints" / "step-0000004" / missing).unlink()
    before = snapshot(trained)
    assert train(cli, trained, "--resume", "--steps", "6") == 2
    line = error_line(capsys)
    assert f"step-0000004/{missing} is missing" in line and "cannot be resumed" in line
    assert snapshot(trained) == before


def test_resume_without_a_checkpoint_is_one_line(cli, tmp_path, capsys):
    assert train(cli, tmp_path / "empty", "--resume") == 2
    assert "holds no checkpoint to continue; drop --resume" in error_line(capsys)


def test_divergence_advice_works(cli, trained, capsys):
    """Diverge with a huge lr, then do what the message says: resume with a sane lr."""
    assert train(cli, trained, "--resume", "--steps", "8", "--lr", "1e30", "--set", "train.grad_clip=0") == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == [
        "resume: train.steps 4 -> 8",
        "resume: train.lr 0.002 -> 1e+30",
        "resume: train.grad_clip 1.0 -> 0.0",
    ]
    line = err[-1]
    assert len(err) == 4 and line.startswith("polydiff train: error: ")
    assert "training diverged at step" in line
    good = trained / "checkpoints" / "step-0000004"
    assert f"the last good checkpoint is {good}" in line
    assert f"polydiff train toy --resume --out {trained} --lr X, X below 1e+30" in line
    assert (trained / "latest").read_text().strip() == "step-0000004"
    assert train(cli, trained, "--resume", "--steps", "8", "--lr", "1e-3") == 0
    ckpt = load_checkpoint(trained)
    assert ckpt.state["step"] == 8 and ckpt.config.train.lr == 1e-3
    assert all(torch.isfinite(v).all() for v in ckpt.model.values())


def test_non_finite_weights_write_no_checkpoint(cli, tmp_path, capsys, monkeypatch):
    """The loss of step 1 is finite, the weights after its update are not (an optimizer overflow)."""
    step = torch.optim.AdamW.step

    def overflowing_step(self, *args, **kwargs):
        result = step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("inf")
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", overflowing_step)
    run = tmp_path / "run"
    assert train(cli, run, "--steps", "1") == 2
    line = error_line(capsys)
    assert "training diverged at step 1: the weights after it are not finite" in line
    assert "there is no good checkpoint" in line and "--overwrite" in line
    assert not (run / "latest").exists()
    assert not list(run.glob("checkpoints/step-*"))


def test_sampling_non_finite_weights_is_refused(cli, trained, tmp_path, capsys):
    ckpt = trained / "checkpoints" / "step-0000004"
    weights = load_checkpoint(ckpt).model
    name = next(k for k in weights if k.startswith("unet."))
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(ckpt / "model.safetensors"))
    out = tmp_path / "s.json"
    assert cli(["sample", str(trained), "--steps", "2", "--out", str(out), "--no-ema"]) == 2
    line = error_line(capsys)
    assert f"{ckpt / 'model.safetensors'} holds non-finite values (e.g. in {name})" in line
    assert not out.exists()


def test_api_resume_compares_with_the_checkpoints_config(toy_registry, trained, capsys):
    asked = RunConfig.for_modality(
        "toy", registry=toy_registry, overrides={"train": {"steps": 5, "lr": 1e-3, "checkpoint_every": 2}}
    )
    trainer = Trainer(asked, trained, registry=toy_registry, resume=True, progress=False)
    assert trainer.resume_changes == ["train.steps 4 -> 5", "train.lr 0.002 -> 0.001"]
    assert trainer.fit().step == 5
    again = Trainer(None, trained, registry=toy_registry, resume=True, progress=False)
    assert again.config.train.lr == 1e-3 and again.resume_changes == []
    bad = RunConfig.for_modality("toy", registry=toy_registry, overrides={"train": {"seed": 3}})
    with pytest.raises(ConfigError, match=r"train\.seed 0 -> 3"):
        Trainer(bad, trained, registry=toy_registry, resume=True)


def test_grad_scaler_state_is_saved_and_restored(toy_config, tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)
    scaler.load_state_dict({**scaler.state_dict(), "_growth_tracker": 3})
    path = save_checkpoint(tmp_path, 1, toy_config, {"w": torch.zeros(1)}, scaler=scaler.state_dict())
    assert "grad_scaler" in json.loads((path / "trainer_state.json").read_text())
    restored = torch.amp.GradScaler("cpu")
    restored.load_state_dict(load_checkpoint(tmp_path).state["grad_scaler"])
    assert restored.state_dict() == scaler.state_dict()
    assert restored.get_scale() == 1024.0


def test_the_trainer_writes_its_grad_scaler_state(toy_registry, tmp_path):
    """fp16 needs CUDA; the trainer's save path is checked with a CPU scaler in its place."""
    cfg = RunConfig.for_modality("toy", registry=toy_registry, overrides={"train": {"steps": 1}})
    trainer = Trainer(cfg, tmp_path, registry=toy_registry, progress=False)
    trainer.fit()
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=512.0)
    path = trainer._save(2)
    assert load_checkpoint(path).state["grad_scaler"]["scale"] == 512.0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000001", "step-0000002"]
