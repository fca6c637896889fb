"""Under torchrun every rank stops at the same step when only one of them got the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from polydiff.training.checkpoint import load_checkpoint

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import signal, sys
    sys.path.insert(0, {tests!r})
    import toy_plugin
    from polydiff.plugins import Registry
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer

    class OneRankSignalled(Trainer):
        def _train_step(self, step, batch):
            if self.dist.rank == 1 and step == 1:  # SIGTERM reaches rank 1 alone, during step 2
                self._stop_signal = signal.SIGTERM
            return super()._train_step(step, batch)

    reg = Registry.from_plugins(toy_plugin)
    cfg = RunConfig.for_modality("toy", registry=reg, overrides={{"train": {{
        "steps": 40, "batch_size": 8, "checkpoint_every": 100}}}})
    result = OneRankSignalled(cfg, sys.argv[1], registry=reg, progress=False).fit()
    print(f"rank-done step={{result.step}} interrupted={{result.interrupted}}", flush=True)
""")


def test_one_signalled_rank_stops_every_rank_at_the_same_step(tmp_path):
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
        + [str(tmp_path / "run")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # ranks that hang in mismatched collectives are killed with it
    )
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"the ranks hung (disagreeing about the stop?): {err[-2000:]}") from None
    assert proc.returncode == 0, err[-3000:]
    assert out.count("rank-done step=2 interrupted=True") == 2, out
    assert "a stop signal (on another rank) received: saved step 2" in err
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.state["step"] == 2 and ckpt.state["world_size"] == 2
