"""--compile (trainer, pipeline, CLI) with its one-line fallbacks, and --threads.

Inductor takes minutes to compile even the toy network on the shared CPU, and dynamo's tracing
alone takes seconds, so the fast tests stand a failing function in for the compiled call; the
slow ones compile with ``aot_eager`` (the same dynamo tracing and AOTAutograd graphs, run by
eager kernels), a backend that fails, and inductor itself.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch

from polydiff import compiling, plugins
from polydiff import threads as threads_module
from polydiff.cli.main import main
from polydiff.errors import ConfigError
from polydiff.pipeline import DiffusionPipeline
from polydiff.run_config import RunConfig
from polydiff.training.checkpoint import load_checkpoint
from polydiff.training.trainer import Trainer


def _broken_backend(gm, example_inputs):  # noqa: ANN001
    raise RuntimeError("the C++ build failed: cc1plus killed")


def _compile_that_fails(self, **kwargs):  # noqa: ANN001
    """``nn.Module.compile`` whose compiled call fails as a failed C++ build would."""

    def call(*args, **kw):  # noqa: ANN002, ANN003
        raise RuntimeError("BackendCompilerFailed: the C++ build failed: cc1plus killed\nmore lines")

    self._compiled_call_impl = call


@pytest.fixture(autouse=True)
def fresh_compile_state(monkeypatch):
    # dynamo's structured trace logs (DEBUG) cost seconds when pytest captures every level
    monkeypatch.setattr(logging.getLogger("torch.__trace"), "disabled", True)
    monkeypatch.setattr(compiling, "_checked", {})
    monkeypatch.setattr(compiling, "_said", set())
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _fit(registry, run_dir, **train):
    config = RunConfig.for_modality(
        "toy", registry=registry, overrides={"train": {"steps": 3, "log_every": 1, **train}}
    )
    return Trainer(config, run_dir, registry=registry, progress=False).fit()


def _losses(result) -> list[float]:
    return [h["loss"] for h in result.history]


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_clean_names(toy_registry, tmp_path, monkeypatch):
    monkeypatch.setattr(compiling, "BACKEND", "aot_eager")
    eager = _fit(toy_registry, tmp_path / "eager")
    compiled = _fit(toy_registry, tmp_path / "compiled", compile=True)
    assert compiled.compiled and not eager.compiled
    assert compiled.first_step_s is not None and compiled.steps_per_s is not None
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-4)
    names = list(load_checkpoint(tmp_path / "compiled").model)
    assert names == list(load_checkpoint(tmp_path / "eager").model)
    assert not any("_orig_mod" in n for n in names)


@pytest.mark.parametrize("failing", ["compiled call", pytest.param("backend", marks=pytest.mark.slow)])
def test_a_compile_failure_at_the_first_step_falls_back_in_one_line(
    toy_registry, tmp_path, monkeypatch, capsys, failing
):
    if failing == "backend":  # dynamo traces, then the backend fails
        monkeypatch.setattr(compiling, "BACKEND", _broken_backend)
    else:
        monkeypatch.setattr(torch.nn.Module, "compile", _compile_that_fails)
    eager = _fit(toy_registry, tmp_path / "eager")
    capsys.readouterr()
    fell_back = _fit(toy_registry, tmp_path / "fell-back", compile=True)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "torch.compile" in ln]
    assert len(lines) == 1 and "failed at the first training step" in lines[0], err
    assert "continuing eagerly" in lines[0] and "Traceback" not in err
    assert not fell_back.compiled
    assert _losses(fell_back) == _losses(eager)  # the failed step was repeated, not skipped


def test_without_a_cpp_compiler_compile_says_so_once_and_trains_eagerly(toy_registry, tmp_path, capsys):
    from torch._inductor import config

    with config.patch({"cpp.cxx": (None, "no-such-g++")}):
        result = _fit(toy_registry, tmp_path / "run", compile=True)
        assert not compiling.compile_module(torch.nn.Linear(2, 2), "cpu")  # asked again: no second line
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "--compile" in ln]
    assert lines == [
        "polydiff: --compile: inductor compiles for the CPU with a C++ compiler and 'no-such-g++' is "
        "not on PATH; running eagerly"
    ]
    assert not result.compiled and result.step == 3


def test_compile_mode_is_checked():
    with pytest.raises(ConfigError, match="--compile-mode must be one of default, reduce-overhead"):
        compiling.check_mode("fast")
    with pytest.raises(ConfigError, match="train.compile_mode"):
        RunConfig.for_modality("image", overrides={"train": {"compile_mode": "fast"}})


@pytest.fixture
def toy_run(toy_registry, tmp_path_factory):
    run = tmp_path_factory.mktemp("toy-run")
    _fit(toy_registry, run, steps=2)
    return run


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("aot_eager", marks=pytest.mark.slow),
        pytest.param(_broken_backend, marks=pytest.mark.slow),
        "compiled call fails",
    ],
)
def test_compiled_sampling_draws_what_eager_sampling_draws(
    toy_registry, toy_run, monkeypatch, capsys, backend
):
    if backend == "compiled call fails":
        monkeypatch.setattr(torch.nn.Module, "compile", _compile_that_fails)
    else:
        monkeypatch.setattr(compiling, "BACKEND", backend)
    kw = {"num_per_prompt": 2, "steps": 2, "seed": 3}
    eager = DiffusionPipeline.from_checkpoint(toy_run, registry=toy_registry)(["a"], **kw)
    pipe = DiffusionPipeline.from_checkpoint(toy_run, registry=toy_registry)
    assert pipe.compile()
    capsys.readouterr()
    first, second = pipe(["a"], **kw), pipe(["a"], **kw)
    assert torch.allclose(first.samples, eager.samples, atol=1e-5)
    assert torch.allclose(second.samples, eager.samples, atol=1e-5)
    err = capsys.readouterr().err
    if backend == "aot_eager":
        assert err.count("torch.compile") == 0 and compiling.is_compiled(pipe.model.unet)
    else:  # one line, and the same noise drawn again eagerly
        assert err.count("torch.compile failed at the first sampling call") == 1, err
        assert not compiling.is_compiled(pipe.model.unet)


@pytest.fixture
def cli(toy_registry, monkeypatch):
    monkeypatch.setattr(plugins, "get_registry", lambda: toy_registry)
    monkeypatch.setattr(compiling, "BACKEND", "aot_eager")
    before = torch.get_num_threads()
    yield main
    torch.set_num_threads(before)


def test_cli_compile_flags_reach_the_trainer_and_the_pipeline(cli, tmp_path, capsys, monkeypatch):
    from polydiff.training import trainer

    compiled = []  # what the trainer asked for (compiling itself is tested above)
    monkeypatch.setattr(trainer, "compile_module", lambda net, device, mode: compiled.append(mode))
    run = tmp_path / "run"
    argv = ["train", "toy", "--steps", "3", "--out", str(run), "--no-progress"]
    assert cli([*argv, "--compile-mode", "reduce-overhead", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert compiled == ["reduce-overhead"]
    assert "speed: first step" in out and "steps/s" in out
    train = load_checkpoint(run).config.train
    assert train.compile and train.compile_mode == "reduce-overhead"
    assert torch.get_num_threads() == 1
    calls = []
    monkeypatch.setattr(DiffusionPipeline, "compile", lambda self, mode="default": calls.append(mode))
    assert cli(["sample", str(run), "--steps", "2", "--compile", "--out", str(tmp_path / "s.json")]) == 0
    assert (
        cli(["evaluate", str(run), "--steps", "2", "--num-per-prompt", "1", "--compile-mode", "max-autotune"])
        == 0
    )
    assert calls == ["default", "max-autotune"]


@pytest.mark.parametrize("value", ["0", "many", "-2"])
def test_a_bad_threads_value_is_one_line(cli, tmp_path, capsys, value):
    assert cli(["train", "toy", "--steps", "1", "--out", str(tmp_path / "r"), "--threads", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"polydiff train: error: --threads must be auto, torch or a number of threads >= 1, not "
        f"'{value}'; e.g. --threads 1"
    )
    assert not (tmp_path / "r").exists()


def test_threads_settings(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads_module.configure("1")["threads"] == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv(threads_module.ENV, "2")
        assert threads_module.configure(None)["threads"] == 2 and torch.get_num_threads() == 2
        assert threads_module.configure("torch") == {"setting": "torch"} and torch.get_num_threads() == 2
        monkeypatch.setenv(threads_module.ENV, "lots")
        with pytest.raises(ConfigError, match=f"{threads_module.ENV} must be auto, torch or a number"):
            threads_module.configure(None)
        auto = threads_module.configure("auto")["threads"]
        assert 1 <= auto <= threads_module.usable_cpus()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cpus", "busy", "processes", "threads"),
    [
        (2, 0.1, 1, 2),
        (2, 1.2, 1, 1),
        (2, 2.0, 1, 1),
        (2, 5.0, 1, 1),
        (16, 3.6, 1, 12),
        (16, 0.0, 4, 4),
        (2, 0, 4, 1),
    ],
)
def test_auto_takes_the_cpus_other_processes_leave_free(cpus, busy, processes, threads):
    assert threads_module.auto_threads(cpus, busy, processes) == threads


def test_busy_cpus_sees_a_busy_process(monkeypatch):
    """The /proc/stat reading: the busy share of all CPUs times their number."""
    samples = iter([(100, 1000), (100 + 150, 1000 + 200)])  # 150 of 200 jiffies busy
    monkeypatch.setattr(threads_module, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads_module.os, "cpu_count", lambda: 2)
    assert threads_module.busy_cpus(0.0) == pytest.approx(1.5)


def test_omp_num_threads_is_honoured_when_nothing_else_is_given(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv(threads_module.ENV, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        assert threads_module.configure(None) == {"setting": 1, "threads": 1}  # torch is imported: no policy
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_inductor_builds_with_the_system_compiler(monkeypatch):
    """compile_module with inductor on the CPU: g++ builds the kernels of a small network."""
    if compiling.unavailable_reason(torch.device("cpu")) is not None:
        pytest.skip(compiling.unavailable_reason(torch.device("cpu")))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.SiLU(), torch.nn.Linear(16, 8))
    x = torch.randn(4, 8)
    eager = net(x)
    assert compiling.compile_module(net, "cpu") and compiling.is_compiled(net)
    compiled = net(x)
    compiled.sum().backward()
    assert torch.allclose(compiled, eager, atol=1e-5)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("POLYDIFF_TEST_INDUCTOR"),
    reason="minutes of g++ on a small CPU: set POLYDIFF_TEST_INDUCTOR=1",
)
def test_inductor_compiles_the_toy_network_on_the_cpu(toy_registry, tmp_path):
    """The real thing: g++ builds the kernels (minutes cold on a shared 2-core machine)."""
    if compiling.unavailable_reason(torch.device("cpu")) is not None:
        pytest.skip(compiling.unavailable_reason(torch.device("cpu")))
    eager = _fit(toy_registry, tmp_path / "eager")
    compiled = _fit(toy_registry, tmp_path / "compiled", compile=True)
    assert compiled.compiled
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-3)
    assert not any("_orig_mod" in n for n in load_checkpoint(tmp_path / "compiled").model)


def test_the_cli_shortens_the_spin_of_idle_threads_before_torch_is_imported(tmp_path):
    """GOMP_SPINCOUNT acts only if set before torch loads OpenMP: the CLI sets it first."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from polydiff.cli.main import main\n"
        "assert 'torch' not in sys.modules\n"
        f"code = main(['sample', {str(tmp_path / 'missing')!r}, '--threads', '1'])\n"
        "import torch\n"
        "print(code, os.environ.get('GOMP_SPINCOUNT'), torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "10000", "1"], proc.stderr


def test_the_trainer_pins_batches_only_for_a_gpu(toy_registry, tmp_path):
    from polydiff.training.batching import StepBatchSampler, step_loader

    sampler = StepBatchSampler(8, 4, seed=0)
    assert step_loader(list(range(8)), sampler, list, 0, pin_memory=True).pin_memory
    config = RunConfig.for_modality("toy", registry=toy_registry, overrides={"train": {"steps": 1}})
    trainer = Trainer(config, tmp_path, registry=toy_registry, progress=False)
    trainer._setup()
    assert not trainer.loader.pin_memory  # on the CPU there is nothing to copy to


def test_the_thread_governor_counts_only_other_processes_and_follows_them(monkeypatch):
    """Others' busy CPUs = the machine's busy CPUs minus this process's own; the number of
    threads follows the CPUs they leave free and comes back when they go."""
    import torch

    from polydiff import threads as T

    g = T.ThreadGovernor(period_s=1.0, cpus=2)
    monkeypatch.setattr(T.os, "cpu_count", lambda: 2)
    # 10 s: the machine was busy 150% of 2 CPUs' jiffies share = 1.5 CPUs; this process used 0.5
    before, after = (0.0, 0.0, (0, 1000)), (10.0, 5.0, (750, 2000))
    assert g.others_busy(before, after) == pytest.approx(1.0)
    assert g.others_busy(before, (10.0, 5.0, None)) is None

    old = torch.get_num_threads()
    readings = iter([(100.0, 0.0, (0, 1000)), (102.0, 2.0, (1000, 2000)), (104.0, 4.0, (1500, 3000))])
    monkeypatch.setattr(T.ThreadGovernor, "_read", staticmethod(lambda: next(readings)))
    try:
        torch.set_num_threads(2)
        g = T.ThreadGovernor(period_s=1.0, cpus=2)
        g.tick()  # machine fully busy (2 CPUs), this process 1: another process holds one CPU
        assert torch.get_num_threads() == 1
        g.tick()  # machine 1 CPU busy, all of it ours: the other process has gone
        assert torch.get_num_threads() == 2
        assert g.changes == [(1.0, 1), (0.0, 2)]
    finally:
        torch.set_num_threads(old)


def test_only_auto_is_governed(monkeypatch):
    from polydiff import threads as T

    monkeypatch.setattr(T, "_decided", {"auto": 1})
    monkeypatch.setattr(T, "_governed", {"on": False})
    old = __import__("torch").get_num_threads()
    try:
        T.configure("2")
        assert T.governor() is None
        T.configure("auto")
        assert isinstance(T.governor(), T.ThreadGovernor)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: each rank keeps its share
        T.configure("auto")
        assert T.governor() is None
    finally:
        __import__("torch").set_num_threads(old)
