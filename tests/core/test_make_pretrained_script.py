"""scripts/make_pretrained.py's pure helpers: what the cards of a model and its expert are made of."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_pretrained.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_pretrained", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: What the video evaluator writes (abridged): settings and checks, sections, per-prompt rows.
VIDEO = {
    "evaluator": "video-motion",
    "checkpoint": "/build/pkg/pretrained/video-motion",
    "settings": {"num_per_prompt": 8, "sampler": "ddim", "steps": 25, "guidance": 5.0, "seed": 0},
    "checks": {"threshold": 100},
    "held_out": {"clips": 64, "direction_accuracy": 0.9375, "area_cv_mean": None},
    "all": {"clips": 128},
    "per_prompt": [{"prompt": "a red square moving left", "split": "held_out"}],
    "experts": [{"checkpoint": "/build/pkg/pretrained/video-motion-expert", "timesteps": [800, 1000]}],
}


def test_the_metric_rows_leave_out_settings_checks_and_per_prompt_rows(script):
    rows = script.metric_rows(VIDEO).splitlines()
    assert rows == [
        "| held_out.clips | 64.0000 |",
        "| held_out.direction_accuracy | 0.9375 |",
        "| all.clips | 128.0000 |",
    ]


def test_shipped_paths_become_names(script):
    names = {
        "/build/pkg/pretrained/video-motion": "video-motion",
        "/build/pkg/pretrained/video-motion-expert": "video-motion-expert",
    }
    out = script.relabel(VIDEO, names)
    assert out["checkpoint"] == "video-motion"
    assert out["experts"] == [{"checkpoint": "video-motion-expert", "timesteps": [800, 1000]}]
    assert out["held_out"] == VIDEO["held_out"] and VIDEO["checkpoint"].startswith("/build")


def test_the_first_prompt_from_rows_or_a_mapping_and_how_it_sampled(script):
    assert script.first_prompt(VIDEO) == "a red square moving left"
    assert script.first_prompt({"per_prompt": {"a slow sine wave": 0.9}}) == "a slow sine wave"
    assert script.first_prompt({}) == ""
    assert script.sampling_of(VIDEO) == ", ddim 25 steps, guidance 5.0"
    assert (
        script.sampling_of({"sampler": "ddim", "steps": 25, "guidance": 3.0})
        == ", ddim 25 steps, guidance 3.0"
    )


def test_a_command_with_the_script_s_own_flags_is_refused(script):
    assert script.check_command("m", "polydiff train video --preset pretrained --seed 0")[2] == "video"
    with pytest.raises(SystemExit, match="without --out"):
        script.check_command("m", "polydiff train video --out runs/x")


def test_only_a_run_at_its_last_step_is_reused(script, tmp_path):
    run = tmp_path / "run"
    assert not script.finished(run)
    (run / "checkpoints" / "step-0000500").mkdir(parents=True)
    (run / "checkpoints" / "step-0000500" / "config.json").write_text('{"train": {"steps": 1000}}')
    (run / "latest").write_text("step-0000500\n")
    assert not script.finished(run)
    (run / "checkpoints" / "step-0000500" / "config.json").write_text('{"train": {"steps": 500}}')
    assert script.finished(run)
