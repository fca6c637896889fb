"""DDP under torchrun: 2 CPU processes (gloo) train exactly what 1 process trains."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from polydiff.training.batching import StepBatchSampler
from polydiff.training.checkpoint import load_checkpoint

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import toy_plugin
    from polydiff.plugins import Registry
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer
    reg = Registry.from_plugins(toy_plugin)
    cfg = RunConfig.for_modality("toy", registry=reg, overrides={{"train": {{
        "steps": 3, "batch_size": 8, "checkpoint_every": 3, "cond_drop_prob": 0.25}}}})
    Trainer(cfg, sys.argv[1], registry=reg, progress=False).fit()
""")


def test_two_processes_match_one_process(tmp_path):
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert two.state["world_size"] == 2 and one.state["world_size"] == 1
    for name, value in one.model.items():
        torch.testing.assert_close(two.model[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # and training did change the parameters
    init_changed = [k for k in one.ema if not torch.equal(one.ema[k], one.model[k])]
    assert init_changed


def test_ranks_share_each_global_batch_exactly():
    full = StepBatchSampler(40, 8, seed=3)
    ranks = [StepBatchSampler(40, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    it_full, its = iter(full), [iter(s) for s in ranks]
    for _ in range(12):  # crosses epoch boundaries (5 batches per epoch)
        assert next(it_full) == next(its[0]) + next(its[1])


def test_batches_depend_only_on_the_step():
    a = iter(StepBatchSampler(40, 8, seed=3))
    for _ in range(7):
        next(a)
    assert next(a) == next(iter(StepBatchSampler(40, 8, seed=3, start_step=7)))
