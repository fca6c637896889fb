"""Every option is validated where it enters: the CLI, ``--set``, the config classes, the pipeline.

Each bad value ends in one line naming the option (exit status 2 through the CLI) before anything
is written; the CLI cases run in-process on the toy modality (tests/toy_plugin.py).
"""

from __future__ import annotations

import json
import math
import re
import types
from pathlib import Path

import pytest
import torch

import polydiff.plugins as plugins
from polydiff import Component, Modality, hookimpl
from polydiff.cli.main import main
from polydiff.devices import resolve_device
from polydiff.diffusion.config import DiffusionConfig
from polydiff.errors import CheckpointError, ConfigError, UnknownNameError
from polydiff.nn.config import UNetConfig
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.training.config import TrainConfig
from polydiff.training.trainer import Trainer

OLD_CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "configs" / "toy-format1-config.json"


def _grid_plugin() -> types.SimpleNamespace:
    """A second modality (``grid``, rank 2) whose dataset, conditioner and encoder are its own."""

    @hookimpl
    def polydiff_modalities():
        return [Modality("grid", rank=2, default_dataset="grid-cells", presets={"quick": {}})]

    @hookimpl
    def polydiff_datasets():
        return [Component("grid-cells", "toy_plugin:ToySignals", modality="grid")]

    @hookimpl
    def polydiff_conditioners():
        return [Component("grid-labels", "polydiff.conditioning.none:NullConditioner", modality="grid")]

    @hookimpl
    def polydiff_encoders():
        return [Component("grid-patches", "polydiff.encoders.identity:IdentityEncoder", modality="grid")]

    return types.SimpleNamespace(
        polydiff_modalities=polydiff_modalities,
        polydiff_datasets=polydiff_datasets,
        polydiff_conditioners=polydiff_conditioners,
        polydiff_encoders=polydiff_encoders,
    )


@pytest.fixture
def two_modalities():
    """The toy modality and the fake ``grid`` modality in one isolated registry."""
    import toy_plugin

    return Registry.from_plugins(toy_plugin, ("fake_grid", _grid_plugin()))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A toy run trained for two steps (enough to sample from)."""
    import toy_plugin

    registry = Registry.from_plugins(toy_plugin)
    cfg = RunConfig.for_modality(
        "toy", registry=registry, overrides={"train": {"steps": 2, "checkpoint_every": 2}}
    )
    run = tmp_path_factory.mktemp("options") / "run"
    Trainer(cfg, run, registry=registry, device="cpu", progress=False).fit()
    return run


@pytest.fixture
def pipe(toy_registry, toy_run) -> DiffusionPipeline:
    return DiffusionPipeline.from_checkpoint(toy_run, registry=toy_registry, device="cpu")


def no_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def one_line_error(capsys, *names: str, after_progress: bool = False) -> str:
    """The CLI's stderr: exactly one ``polydiff CMD: error: ...`` line naming each of ``names``
    (``after_progress``: what follows the sampler's progress bar, which ends in a carriage return)."""
    err = capsys.readouterr().err
    if after_progress:
        err = err.rsplit("\r", 1)[-1]
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("polydiff ") and ": error: " in lines[0], err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------- train
TRAIN_CASES = {
    "batch-size-0": (["--batch-size", "0"], ["batch_size", "--batch-size", ">= 1", "got 0"]),
    "batch-size-negative": (["--batch-size", "-4"], ["--batch-size", "got -4"]),
    "steps-0": (["--steps", "0"], ["train.steps", "--steps", "got 0"]),
    "steps-negative": (["--steps", "-3"], ["--steps", "got -3"]),
    "lr-nan": (["--lr", "nan"], ["train.lr", "--lr", "finite", "nan"]),
    "lr-negative": (["--lr", "-0.1"], ["--lr", "> 0", "-0.1"]),
    "grad-accum-0": (["--grad-accum", "0"], ["--grad-accum", "got 0"]),
    "checkpoint-every-0": (["--set", "train.checkpoint_every=0"], ["train.checkpoint_every", "got 0"]),
    "log-every-0": (["--set", "train.log_every=0"], ["train.log_every", "got 0"]),
    "lr-text": (["--set", "train.lr=fast"], ["train.lr", "a number", "'fast'"]),
    "model-channels-text": (
        ["--set", 'unet.model_channels="lots"'],
        ["unet.model_channels", "an integer", "'lots'"],
    ),
    "ema-decay-above-1": (["--set", "train.ema_decay=1.5"], ["train.ema_decay", "[0, 1)", "1.5"]),
    "dims-vs-rank": (["--set", "unet.dims=2"], ["unet.dims=2", "rank 1", "unet.dims=1"]),
    "dims-out-of-range": (["--set", "unet.dims=5"], ["unet.dims", "got 5"]),
    "sample-steps-0": (["--set", "sample.steps=0"], ["sample.steps", "got 0"]),
    "sample-unknown-field": (["--set", "sample.totally_bogus=1"], ["totally_bogus"]),
    "sample-unknown-sampler": (["--set", "sample.sampler=hune"], ["sampler 'hune'", "heun"]),
    "timestep-range-reversed": (["--set", "train.timestep_range=[80,20]"], ["train.timestep_range"]),
    "device-banana": (["--device", "banana"], ["unknown device 'banana'", "cpu, cuda or cuda:N"]),
}


@pytest.mark.parametrize("args, names", TRAIN_CASES.values(), ids=TRAIN_CASES.keys())
def test_train_refuses_bad_option_before_writing(cli, tmp_path, capsys, args, names):
    run = tmp_path / "run"
    assert cli(["train", "toy", "--out", str(run), "--no-progress", *args]) == 2
    one_line_error(capsys, "polydiff train: error:", *names)
    assert not run.exists()
    assert list(tmp_path.iterdir()) == []


def test_train_cuda_without_gpu_is_one_line(cli, tmp_path, capsys, monkeypatch):
    no_gpu(monkeypatch)
    run = tmp_path / "run"
    assert cli(["train", "toy", "--out", str(run), "--device", "cuda", "--no-progress"]) == 2
    line = one_line_error(capsys)
    assert line.endswith("--device cuda: no CUDA GPU is visible; use --device cpu")
    assert not run.exists()


@pytest.mark.parametrize(
    "flag, name",
    [("--dataset", "grid-cells"), ("--conditioner", "grid-labels"), ("--encoder", "grid-patches")],
)
def test_component_of_another_modality_is_refused(two_modalities, monkeypatch, tmp_path, capsys, flag, name):
    monkeypatch.setattr(plugins, "get_registry", lambda: two_modalities)
    run = tmp_path / "run"
    assert main(["train", "toy", flag, name, "--out", str(run), "--no-progress"]) == 2
    kind = flag[2:]
    line = one_line_error(capsys, f"{kind} '{name}' is for modality 'grid', not 'toy'")
    own = {"dataset": "toy-signals", "conditioner": "text", "encoder": "identity"}[kind]
    assert f"toy's {kind}s: " in line and own in line.split(f"toy's {kind}s: ")[1]
    assert not run.exists()


# ---------------------------------------------------------------------------------------- sample
SAMPLE_CASES = {
    "steps-0": (["--steps", "0"], ["--steps", ">= 1", "got 0"]),
    "steps-negative": (["--steps", "-2"], ["--steps", "got -2"]),
    "num-0": (["--num", "0"], ["--num", ">= 1", "got 0"]),
    "length-scale-nan": (["--length-scale", "nan"], ["--length-scale", "finite", "nan"]),
    "length-scale-0": (["--length-scale", "0"], ["--length-scale", "> 0"]),
    "guidance-nan": (["--guidance", "nan"], ["--guidance", "finite", "nan"]),
    "guidance-inf": (["--guidance", "inf"], ["--guidance", "finite", "inf"]),
    "eta-nan": (["--eta", "nan"], ["--eta", "finite", "nan"]),
    "eta-negative": (["--eta", "-1"], ["--eta", ">= 0"]),
    "temperature-0": (["--temperature", "0"], ["--temperature", "> 0", "got 0"]),
    "temperature-inf": (["--temperature", "inf"], ["--temperature", "finite"]),
    "device-banana": (["--device", "banana"], ["unknown device 'banana'"]),
    "unknown-sampler": (["--sampler", "hune"], ["sampler 'hune'", "heun"]),
}


@pytest.mark.parametrize("args, names", SAMPLE_CASES.values(), ids=SAMPLE_CASES.keys())
def test_sample_refuses_bad_option_before_writing(cli, toy_run, tmp_path, capsys, args, names):
    out = tmp_path / "s.json"
    assert cli(["sample", str(toy_run), "--prompt", "up", "--out", str(out), *args]) == 2
    one_line_error(capsys, "polydiff sample: error:", *names)
    assert list(tmp_path.iterdir()) == []
    assert not (toy_run / "samples").exists()


def test_sample_cuda_without_gpu_is_one_line(cli, toy_run, tmp_path, capsys, monkeypatch):
    no_gpu(monkeypatch)
    out = tmp_path / "s.json"
    assert cli(["sample", str(toy_run), "--out", str(out), "--device", "cuda"]) == 2
    assert one_line_error(capsys).endswith("--device cuda: no CUDA GPU is visible; use --device cpu")
    assert not out.exists()


def test_sample_refuses_to_write_non_finite_samples(cli, toy_run, tmp_path, capsys):
    # a finite but absurd guidance scale overflows float32 within a few steps
    out = tmp_path / "s.json"
    args = ["sample", str(toy_run), "--prompt", "up", "--num", "2", "--steps", "3", "--guidance", "1e38"]
    assert cli([*args, "--out", str(out), "--device", "cpu"]) == 2
    line = one_line_error(
        capsys,
        "2 of 2 sample(s) hold NaN or inf",
        "nothing was written",
        "--guidance 1e+38",
        after_progress=True,
    )
    assert "extreme sampling option" in line
    assert not out.exists()


def test_evaluate_refuses_bad_option(cli, toy_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli(["evaluate", str(toy_run), "--out", str(out), "--num-per-prompt", "0"]) == 2
    one_line_error(capsys, "--num-per-prompt", "got 0")
    assert cli(["evaluate", str(toy_run), "--out", str(out), "--steps", "0"]) == 2
    one_line_error(capsys, "--steps", "got 0")
    assert not out.exists()


# ---------------------------------------------------------------------------------------- pipeline
def test_unknown_sampling_option_names_what_sampler_and_conditioner_take(pipe):
    with pytest.raises(ConfigError) as info:
        pipe(["up"], sampler="heun", steps=2, totally_bogus=1)
    msg = str(info.value)
    assert msg.startswith("unknown sampling option 'totally_bogus'")
    assert "sampler 'heun' takes: rho, sigma_min, sigma_max" in msg
    assert "conditioner 'text' takes: (nothing)" in msg
    with pytest.raises(
        ConfigError, match="unknown sampling option 'rho'.*sampler 'ddim' takes: spacing, eta"
    ):
        pipe(["up"], sampler="ddim", steps=2, rho=3)  # a Karras option given to DDIM


def test_sampler_options_reach_the_sampler(pipe):
    """``rho`` and ``sigma_max`` used to vanish into the conditioner's plan (identical output)."""
    base = pipe(["up"], sampler="heun", steps=3, seed=1).samples
    assert not torch.equal(base, pipe(["up"], sampler="heun", steps=3, seed=1, rho=3).samples)
    assert not torch.equal(base, pipe(["up"], sampler="heun", steps=3, seed=1, sigma_max=5).samples)
    assert torch.equal(base, pipe(["up"], sampler="heun", steps=3, seed=1, rho=7).samples)  # the default


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps must be >= 1, got 0"),
        ({"steps": 2.5}, "steps must be an integer, got 2.5"),
        ({"num_per_prompt": 0}, "num_per_prompt must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"guidance": math.nan}, "guidance must be a finite number, got nan"),
        ({"guidance": math.inf}, "guidance must be a finite number, got inf"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"temperature": math.nan}, "temperature must be a finite number"),
        ({"eta": math.nan}, "eta must be a finite number"),
        ({"eta": -0.5}, "eta must be >= 0"),
        ({"sampler": "heun", "rho": 0}, "rho must be > 0"),
        ({"sampler": "heun", "rho": math.nan}, "rho must be a finite number"),
        ({"sampler": "heun", "sigma_max": math.inf}, "sigma_max must be a finite number"),
        ({"sampler": "ddim", "spacing": 3}, "spacing must be a string"),
        ({"length_scale": 1.0}, "unknown sampling option 'length_scale'"),  # the text conditioner's plan
        ({"sampler": "hune"}, "unknown sampler 'hune'. Did you mean 'heun'?"),
    ],
)
def test_pipeline_refuses_bad_values(pipe, kwargs, match):
    with pytest.raises((ConfigError, UnknownNameError), match=re.escape(match)):
        pipe(["up"], **{"steps": 2, **kwargs})


def test_pipeline_counts_non_finite_samples(pipe):
    assert pipe(["up", "down"], steps=2).nonfinite == 0
    assert pipe(["up", "down"], steps=3, guidance=1e38).nonfinite == 2


def test_samplers_check_their_own_values(pipe):
    from polydiff.samplers import DDIMSampler, HeunKarrasSampler

    diffusion = pipe.model.diffusion
    with pytest.raises(ConfigError, match="num_steps must be >= 1, got 0"):
        DDIMSampler(diffusion, 0)
    with pytest.raises(ConfigError, match="eta must be finite and >= 0"):
        DDIMSampler(diffusion, 4, eta=math.nan)
    with pytest.raises(ConfigError, match="rho must be > 0"):
        HeunKarrasSampler(diffusion, 4, rho=-1.0)


def test_plan_declares_its_options(pipe):
    with pytest.raises(TypeError):
        pipe.model.conditioner.plan(["up"], (1, 16), totally_bogus=1)


# ---------------------------------------------------------------------------------------- config classes
@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (TrainConfig, {"batch_size": 0}, r"train.batch_size \(--batch-size\) must be >= 1, got 0"),
        (TrainConfig, {"steps": -1}, r"train.steps \(--steps\) must be >= 1"),
        (TrainConfig, {"lr": math.nan}, r"train.lr \(--lr\) must be a finite number, got nan"),
        (TrainConfig, {"lr": "fast"}, "must be a number, got 'fast'"),
        (TrainConfig, {"grad_accum": 0}, "train.grad_accum"),
        (TrainConfig, {"ema_decay": 1.5}, r"train.ema_decay must be in \[0, 1\), got 1.5"),
        (TrainConfig, {"checkpoint_every": 0}, "train.checkpoint_every must be >= 1"),
        (TrainConfig, {"precision": "fp8"}, "train.precision .* must be one of fp32, bf16, fp16"),
        (TrainConfig, {"compile": 1}, "train.compile must be true or false"),
        (UNetConfig, {"model_channels": "lots"}, "unet.model_channels must be an integer, got 'lots'"),
        (UNetConfig, {"channel_mult": [1, 0]}, "unet.channel_mult must be >= 1"),
        (UNetConfig, {"attention_levels": [3]}, "unet.attention_levels"),
        (UNetConfig, {"dropout": math.inf}, "unet.dropout must be a finite number"),
        (DiffusionConfig, {"num_timesteps": 0}, "diffusion.num_timesteps must be >= 1"),
        (DiffusionConfig, {"prediction": "noise"}, "diffusion.prediction must be one of eps, x0, v"),
        (DiffusionConfig, {"beta_end": math.nan}, "diffusion.beta_end must be a finite number"),
    ],
)
def test_config_classes_validate_on_construction(cls, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        cls(**kwargs)


def test_an_int_for_a_float_is_fine_and_lists_become_tuples():
    cfg = TrainConfig(lr=1, timestep_range=[10, 20], loggers=["jsonl"])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.timestep_range == (10, 20) and cfg.loggers == ("jsonl",)
    assert UNetConfig(channel_mult=[1, 2], attention_levels=[1]).channel_mult == (1, 2)


def test_run_config_python_api(toy_registry, two_modalities):
    with pytest.raises(ConfigError, match="train.lr"):
        RunConfig.for_modality("toy", registry=toy_registry, overrides={"train": {"lr": -1.0}})
    with pytest.raises(ConfigError, match="unet.dims=2 does not fit modality 'toy'"):
        RunConfig.for_modality("toy", registry=toy_registry).apply_overrides(["unet.dims=2"])
    with pytest.raises(ConfigError, match="dataset 'grid-cells' is for modality 'grid'"):
        RunConfig.for_modality("toy", dataset="grid-cells", registry=two_modalities)
    cfg = RunConfig.for_modality("toy", registry=two_modalities)
    cfg.conditioner.name = "grid-labels"
    with pytest.raises(ConfigError, match="conditioner 'grid-labels' is for modality 'grid'"):
        cfg.validate(two_modalities)


def test_format1_config_json_still_loads(toy_registry, tmp_path):
    """A config.json written before these checks (ints for floats, lists for tuples) loads and validates."""
    cfg = RunConfig.load(OLD_CONFIG)
    cfg.validate(toy_registry)
    assert cfg.train.lr == 1.0 and cfg.train.timestep_range == (50, 100)
    assert cfg.unet.channel_mult == (1, 2) and cfg.sample["spacing"] == "trailing"
    bad = json.loads(OLD_CONFIG.read_text())
    bad["train"]["batch_size"] = 0
    (tmp_path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match="train.batch_size .* must be >= 1, got 0"):
        RunConfig.load(tmp_path / "config.json")


# ---------------------------------------------------------------------------------------- devices
def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="^unknown device 'banana'; use cpu, cuda or cuda:N$"):
        resolve_device("banana")
    no_gpu(monkeypatch)
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(ConfigError, match="^--device cuda: no CUDA GPU is visible; use --device cpu$"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="--device cuda:3: only 1 CUDA GPU"):
        resolve_device("cuda:3")
    assert resolve_device("cuda:0") == torch.device("cuda:0")


def test_trainer_refuses_unknown_device_before_writing(toy_config, toy_registry, tmp_path):
    with pytest.raises(ConfigError, match="unknown device 'banana'"):
        Trainer(toy_config, tmp_path / "run", registry=toy_registry, device="banana", progress=False)
    assert not (tmp_path / "run").exists()


def test_trainer_checks_fields_assigned_after_construction(toy_config, toy_registry, tmp_path):
    toy_config.train.steps = 0
    with pytest.raises(ConfigError, match=r"train.steps \(--steps\) must be >= 1, got 0; e.g. --steps 2000"):
        Trainer(toy_config, tmp_path / "run", registry=toy_registry, device="cpu", progress=False)
    assert not (tmp_path / "run").exists()


def test_messages_suggest_a_fix():
    from polydiff.validation import check_sampling

    with pytest.raises(ConfigError, match=r"^--steps must be >= 1, got 0; e.g. --steps 50$"):
        check_sampling("steps", 0, "--steps")
    with pytest.raises(
        ConfigError, match=r"^eta must be a finite number, got nan; e.g. eta=0 \(deterministic"
    ):
        check_sampling("eta", math.nan)


@pytest.mark.parametrize(
    "args, names",
    [(["--num", "0"], ["--num", ">= 1", "got 0"]), (["--steps", "0,fifty"], ["--steps", "'0,fifty'"])],
    ids=["num-0", "steps-text"],
)
def test_noise_refuses_bad_option(cli, tmp_path, capsys, args, names):
    out = tmp_path / "fwd.json"
    assert cli(["noise", "toy", "--out", str(out), *args]) == 2
    one_line_error(capsys, "polydiff noise: error:", *names)
    assert not out.exists()
