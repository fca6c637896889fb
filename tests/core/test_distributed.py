"""DDP under torchrun: 2 CPU processes (gloo) train exactly what 1 process trains."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from polydiff.diffusion import GaussianDiffusion
from polydiff.training.batching import StepBatchSampler
from polydiff.training.checkpoint import load_checkpoint
from polydiff.training.distributed import DistInfo, global_count, global_loss_counts

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

#: A toy conditioner whose loss mask keeps a different number of the 16 samples of each item
#: (4..15, read off the item's own values, so both runs mask alike): padded speech in small.
MASKED_PLUGIN = textwrap.dedent("""
    import torch
    from polydiff import Component, hookimpl
    from polydiff.conditioning.text import TextConditioner

    class MaskedTextConditioner(TextConditioner):
        def forward(self, batch, x0, *, drop=None):
            lengths = 4 + (x0[:, 0, 0].abs() * 1000).long() % 12
            mask = (torch.arange(x0.shape[-1], device=x0.device) < lengths[:, None]).to(x0.dtype)
            return super().forward(batch, x0, drop=drop).replace(loss_mask=mask[:, None, :])

    @hookimpl
    def polydiff_conditioners():
        return [Component("masked-text", "masked_plugin:MaskedTextConditioner", modality="toy")]
""")

#: Trains ``argv[2]`` (toy or tts) into ``argv[1]``; ``argv[3] == "local"`` divides masked
#: losses by each rank's own count (the former behaviour, to show the test can tell).
MASKED_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from polydiff.plugins import Registry
    from polydiff.run_config import RunConfig
    from polydiff.training import distributed as D
    from polydiff.training.trainer import Trainer

    if sys.argv[3] == "local":  # each rank divides by its own count, as the trainer once did
        import contextlib
        D.global_loss_counts = lambda info: contextlib.nullcontext()

    train = {{"steps": 3, "batch_size": 8, "checkpoint_every": 3, "ema_decay": 0.0, "log_every": 1}}
    if sys.argv[2] == "toy":
        import toy_plugin, masked_plugin
        reg = Registry.from_plugins(toy_plugin, masked_plugin)
        cfg = RunConfig.for_modality("toy", registry=reg, conditioner="masked-text",
                                     overrides={{"train": {{**train, "cond_drop_prob": 0.25}}}})
    else:
        import polydiff_tts.plugin
        reg = Registry.from_plugins(("tts", polydiff_tts.plugin))
        cfg = RunConfig.for_modality("tts", registry=reg, overrides={{
            "dataset": {{"max_items": 48, "pad_multiple": 256}},  # one length on all ranks (GroupNorm)
            "unet": {{"model_channels": 16, "channel_mult": (1, 2), "num_res_blocks": 1,
                      "attention_levels": (), "norm_groups": 8}},
            "conditioner": {{"hidden": 32, "layers": 1, "heads": 2, "ffn_mult": 2,
                             "duration_hidden": 32, "dropout": 0.0}},
            "train": {{**train, "lr": 3e-3}}}})
    Trainer(cfg, sys.argv[1], registry=reg, progress=False).fit()
""")


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _train(script: Path, out: Path, *args: str, procs: int = 1) -> Path:
    launcher = (
        ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    )
    run = subprocess.run(
        [sys.executable, *launcher, str(script), str(out), *args],
        env={**_env(), "PYTHONPATH": os.pathsep.join([str(script.parent), os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_processes_match_one_process(tmp_path):
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT.format(tests=str(TESTS)))
    _train(script, tmp_path / "one")
    _train(script, tmp_path / "two", procs=2)
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert two.state["world_size"] == 2 and one.state["world_size"] == 1
    for name, value in one.model.items():
        torch.testing.assert_close(two.model[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # and training did change the parameters
    init_changed = [k for k in one.ema if not torch.equal(one.ema[k], one.model[k])]
    assert init_changed


def _masked_two_match_one(tmp_path: Path, modality: str) -> None:
    (tmp_path / "masked_plugin.py").write_text(MASKED_PLUGIN)
    script = tmp_path / "train_masked.py"
    script.write_text(MASKED_SCRIPT.format(tests=str(TESTS)))
    one = load_checkpoint(_train(script, tmp_path / "one", modality, "global")).model
    two = load_checkpoint(_train(script, tmp_path / "two", modality, "global", procs=2)).model
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)
    if modality == "toy":
        # each rank dividing by its own count trains something else: the test can tell
        local = load_checkpoint(_train(script, tmp_path / "local", modality, "local", procs=2)).model
        assert _max_difference(local, one) > 100 * _max_difference(two, one) + 1e-4


def test_two_processes_match_one_process_with_a_masked_loss(tmp_path):
    """Items with different valid lengths: the masked mean is over the global batch's valid elements."""
    _masked_two_match_one(tmp_path, "toy")


@pytest.mark.slow
def test_two_processes_match_one_process_for_tts(tmp_path):
    """Padded mel frames: the diffusion, prior and duration losses all divide by global counts."""
    pytest.importorskip("polydiff_tts")
    _masked_two_match_one(tmp_path, "tts")


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


def test_global_count_is_the_local_count_outside_a_ddp_block():
    count = torch.tensor(12.0)
    assert global_count(count) is count
    with global_loss_counts(DistInfo()):  # one process: nothing to reduce
        assert global_count(count) is count
    # so a single process's masked loss is the mean over its own valid elements
    noise, lengths = torch.randn(3, 1, 8), torch.tensor([2, 5, 8])
    mask = (torch.arange(8) < lengths[:, None]).float()[:, None]
    loss = GaussianDiffusion().training_loss(
        lambda x, t: torch.zeros_like(x), torch.randn(3, 1, 8), noise=noise, mask=mask
    )
    torch.testing.assert_close(loss, (noise**2 * mask).sum() / 15)
