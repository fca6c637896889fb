"""Fast tests of the benchmark helpers; none needs the peers (the ``bench`` extra) or a trained model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import alternate, markdown_table, peak_cpu_memory, replace_section, spread, time_block  # noqa: E402
from line_chart import Panel, Series, draw_line_chart, log_ticks, nice_ceiling  # noqa: E402
from peer_models import DEFAULT_SETTINGS, SETTINGS, build_polydiff, largest_divisor, match_width  # noqa: E402
from peers import ALL_MODES, Mode, Workload, _command, main, render  # noqa: E402
from sampler_quality import SAMPLERS, nfe_of, score_of, standard_error, steps_for_nfe  # noqa: E402

from polydiff.diffusion.config import DiffusionConfig  # noqa: E402
from polydiff.diffusion.gaussian import GaussianDiffusion  # noqa: E402
from polydiff.errors import ConfigError  # noqa: E402
from polydiff.plugins import get_registry  # noqa: E402


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps", [1, 3, 6])
def test_nfe_of_counts_the_network_calls_a_sampler_makes(sampler: str, steps: int) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=100, schedule="cosine"))
    calls = []

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(t)
        return torch.zeros_like(x)

    sampler_obj = get_registry().build("sampler", sampler, diffusion=diffusion, num_steps=steps)
    sampler_obj.sample(model_fn, (2, 1, 4), generator=torch.Generator().manual_seed(0))
    assert len(calls) == nfe_of(sampler, steps)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("nfe", [5, 10, 20, 1000])
def test_steps_for_nfe_is_the_largest_budget_that_fits(sampler: str, nfe: int) -> None:
    steps = steps_for_nfe(sampler, nfe)
    assert nfe_of(sampler, steps) <= nfe < nfe_of(sampler, steps + 1)


def test_score_of_pools_seen_and_held_out_shapes_by_sample_count() -> None:
    metrics = {
        "dataset": "shapes",
        "held_out": {"all": 0.5, "num_samples": 10},
        "seen": {"all": 1.0, "num_samples": 30},
    }
    assert score_of(metrics) == (pytest.approx(0.875), 40)
    assert score_of({"dataset": "digits", "accuracy": 0.9, "num_samples": 50}) == (0.9, 50)
    assert standard_error(0.5, 100) == pytest.approx(0.05)


def test_alternate_rotates_who_goes_first() -> None:
    order: list[str] = []
    fns = {name: (lambda name=name: order.append(name) or float(len(order))) for name in "abc"}
    values = alternate(fns, rounds=3)
    assert order == list("abcbcacab")
    assert values == {"a": [1.0, 6.0, 8.0], "b": [2.0, 4.0, 9.0], "c": [3.0, 5.0, 7.0]}
    assert spread([1.0, 2.0, 4.0]) == pytest.approx(1.5)


def test_peak_cpu_memory_sees_a_temporary_tensor() -> None:
    size = 4 * 2**20  # bytes

    def fn() -> None:
        a = torch.ones(size // 4)  # float32: `size` bytes, freed on return
        (a * 2).sum()  # a second temporary of the same size while `a` lives

    peak = peak_cpu_memory(fn)
    assert 2 * size <= peak < 2 * size + 2**20


def test_replace_section_rewrites_only_its_own_section(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "benchmarks.md"
    replace_section(page, "## Mine", "first", header="# Bench\n")
    page.write_text(page.read_text() + "\n## Theirs\n\ntheir text\n")
    replace_section(page, "## Mine", "second\n\n```\n## not a heading\n```\n\n### sub\n\nmore")
    replace_section(page, "## Other", "appended")
    text = page.read_text()
    assert text.startswith("# Bench\n")
    assert "first" not in text and "second" in text and "### sub" in text and "## not a heading" in text
    assert text.index("## Mine") < text.index("## Theirs") < text.index("## Other")
    assert "their text" in text and text.count("## Mine") == 1
    replace_section(page, "## Mine", "third")
    assert "second" not in page.read_text() and "their text" in page.read_text()


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"


def test_match_width_picks_the_closest_count_and_refuses_a_poor_match() -> None:
    def build(width: int) -> nn.Module:
        return nn.Linear(width, width)  # width^2 + width parameters

    assert match_width(build, 40 * 41 + 30, widths=range(8, 100, 4)) == (40, 40 * 41)
    with pytest.raises(ConfigError, match="within 5%"):
        match_width(build, 42 * 43, widths=range(8, 100, 8))  # 40 and 48 are both > 5% away
    assert largest_divisor(36, 8) == 6 and largest_divisor(40, 8) == 8


def test_match_width_bisection_builds_few_candidates_and_finds_the_closest() -> None:
    built: list[int] = []

    def build(width: int) -> nn.Module:
        built.append(width)
        return nn.Linear(width, width)

    widths = range(8, 257, 4)
    assert match_width(build, 100 * 101, widths) == (100, 100 * 101)
    assert len(built) <= 8  # bisection over 63 widths, not a scan
    assert match_width(build, 8 * 9, widths) == (8, 72)  # the target at the first width
    assert match_width(build, 256 * 257 + 100, widths) == (256, 256 * 257)  # ... and beyond the last one


@pytest.mark.parametrize("name", sorted({n for names in DEFAULT_SETTINGS.values() for n in names}))
def test_polydiff_contender_runs_the_benchmark_setting(name: str) -> None:
    setting = SETTINGS[name]
    contender = build_polydiff(setting)
    x = torch.randn(2, 3, setting.size, setting.size)
    assert contender.forward(x, torch.tensor([1, 500])).shape == x.shape
    assert contender.num_parameters == sum(p.numel() for p in contender.model.parameters())


def test_mode_labels_round_trip_and_bad_labels_name_the_choices() -> None:
    assert [m.label for m in ALL_MODES] == ["fp32", "bf16", "fp32+compile", "bf16+compile"]
    assert all(Mode.parse(m.label) == m for m in ALL_MODES)
    for bad in ("fp16", "bf16+jit", "compile"):
        with pytest.raises(ValueError, match="expected one of fp32, bf16, fp32\\+compile, bf16\\+compile"):
            Mode.parse(bad)


def test_bf16_workload_trains_in_autocast_and_keeps_float32_weights() -> None:
    setting = SETTINGS["16x16-b64"]
    contender = build_polydiff(setting)
    before = [p.detach().clone() for p in contender.model.parameters()]
    work = Workload(contender, setting, mode=Mode("bf16"))
    seen: list[torch.dtype] = []
    contender.model.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    work.train_step()
    assert seen == [torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in contender.model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, contender.model.parameters(), strict=True))
    assert work.x.shape == work.noise.shape == (setting.batch, 3, setting.size, setting.size)


def test_time_block_synchronises_around_the_whole_block() -> None:
    events: list[str] = []
    per_call = time_block(lambda: events.append("call"), 3, sync=lambda: events.append("sync"))
    assert events == ["sync", "call", "call", "call", "sync"]
    assert per_call >= 0.0
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_block(lambda: None, 0)


def _fake_gpu_results() -> dict:
    def entry(name: str, train_s: float, sample_s: float) -> dict:
        return {
            "parameters": 1000,
            "width": 8,
            "attention": "somewhere",
            "train_s": [train_s, train_s],
            "sample_s": [sample_s, sample_s],
            "train_peak_bytes": 3 * 2**20,
            "sample_peak_bytes": 2**20,
            "first_train_s": 1.0,
            "first_forward_s": 0.5,
        }

    setting = {"name": "32x32-b128", "size": 32, "batch": 128}
    return {
        "machine": "a GPU",
        "device": "cuda",
        "rounds": 2,
        "train_steps_per_round": 10,
        "forwards_per_round": 10,
        "versions": {"diffusers": "0.42.1", "denoising_diffusion_pytorch": "2.3.4"},
        "settings": [
            {
                "setting": setting,
                "mode": "fp32",
                "contenders": {
                    "polydiff": entry("polydiff", 0.010, 0.002),
                    "diffusers": entry("diffusers", 0.020, 0.004),
                },
            },
            {
                "setting": setting,
                "mode": "bf16+compile",
                "contenders": {
                    "polydiff": entry("polydiff", 0.004, 0.001),
                    "diffusers": entry("diffusers", 0.005, 0.001),
                },
            },
        ],
        "skipped": ["64x64-b64 bf16+compile"],
    }


def test_render_modes_gives_one_table_per_setting_with_ratios_per_mode() -> None:
    text = render(_fake_gpu_results())
    assert text.count("### 32x32, batch 128") == 1
    rows = [
        line for line in text.splitlines() if line.startswith("| polydiff") or line.startswith("| diffusers")
    ]
    assert rows == [
        "| polydiff | fp32 | 10.0 (0%) | 12800 | 2.00x | 1.00x | 2.00 (0%) | 2.00x | 3 | 1 | 1.5 |",
        "| diffusers | fp32 | 20.0 (0%) | 6400 | 1.00x | 1.00x | 4.00 (0%) | 1.00x | 3 | 1 | 1.5 |",
        "| polydiff | bf16+compile | 4.0 (0%) | 32000 | 1.25x | 2.50x | 1.00 (0%) | 1.00x | 3 | 1 | 1.5 |",
        "| diffusers | bf16+compile | 5.0 (0%) | 25600 | 1.00x | 4.00x | 1.00 (0%) | 1.00x | 3 | 1 | 1.5 |",
    ]
    assert "ddpm-pytorch width" not in text  # a peer that was not measured is left out
    assert "Not measured (past `--max-seconds`): 64x64-b64 bf16+compile." in text
    assert "torch.cuda.synchronize()" in text


def test_from_json_renders_a_gpu_run_without_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "peers-cuda.json"
    path.write_text(json.dumps(_fake_gpu_results()))
    assert main(["--device", "cuda", "--from-json", "--out", str(path)]) == 0
    assert "| polydiff | bf16+compile | 4.0 (0%) |" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without a GPU")
def test_gpu_run_without_cuda_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--gpu"])
    assert "--device cuda: torch.cuda.is_available() is False" in capsys.readouterr().err


def test_command_drops_the_out_path() -> None:
    assert _command(["--device", "cuda", "--out", "/tmp/x.json", "--modes", "fp32"]) == (
        "python bench/peers.py --device cuda --modes fp32"
    )


def test_draw_line_chart_draws_every_series(tmp_path: Path) -> None:
    assert log_ticks(4, 1000) == [5, 10, 20, 50, 100, 200, 500, 1000]
    assert [nice_ceiling(v) for v in (0.7, 1.0, 1575.0, 2300.0, 3100.0)] == [1.0, 1.0, 2000.0, 2500.0, 5000.0]
    panels = [
        Panel(
            "a", [Series("s1", [(5, 0.2), (50, 0.8)]), Series("s2", [(10, 0.5)])], references=[("ref", 0.9)]
        ),
        Panel("b", [Series("s1", [(5, 0.1), (1000, 0.95)])]),
    ]
    path = draw_line_chart(panels, tmp_path / "chart.png", panel_size=(300, 200))
    image = Image.open(path).convert("RGB")
    assert image.size == (600, 240)
    colours = {colour for _, colour in image.getcolors(maxcolors=2**20)}
    assert (0x00, 0x72, 0xB2) in colours and (0xE6, 0x9F, 0x00) in colours  # s1 and s2


def test_gpu_speed_peaks_come_from_the_table_or_the_override() -> None:
    from gpu_speed import peak_tflops

    assert peak_tflops("NVIDIA H200", "bf16") == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156.0  # fp32 training runs in TF32
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "fp32", override=100.0) == 100.0
    assert peak_tflops("cpu", "fp32") is None


def test_gpu_speed_smoke_runs_the_cpu_path_and_counts_flops(tmp_path: Path, capsys, monkeypatch) -> None:
    """The GPU script's CPU path end to end (eager only here: compiling the video UNet takes minutes)."""
    from gpu_speed import main as gpu_speed

    from polydiff import compiling

    monkeypatch.setattr(compiling, "BACKEND", compiling.BACKEND)  # --smoke sets aot_eager: restored after
    threads = torch.get_num_threads()
    out = tmp_path / "speed.json"
    try:
        assert gpu_speed(["--smoke", "--modes", "eager", "--loader-seconds", "0", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["mode"] == "eager" and row["steps"] >= 1 and row["steps_per_s"] > 0
    assert row["step_flops"] > 1e8  # forward + backward of the video UNet on batch 4
    table = capsys.readouterr().out
    assert "| eager |" in table and "GFLOP" in table and "| n/a |" in table  # no peak known for a CPU


def test_context_cache_bench_measures_both_variants_and_renders_them(tmp_path):
    import context_cache

    tiny = context_cache.Setting("tiny", 8, 2, 3, 8, 8, (1, 2), (1,), steps=2)
    result = context_cache.measure(tiny, rounds=1, clock="cpu")
    assert set(result["median_s"]) == {"cached", "uncached"}
    assert result["max_abs_difference"] < 1e-5  # the cache changes the cost, not the samples
    data = {"machine": "m", "clock": "cpu", "rounds": 1, "command": "--rounds 1", "results": [result]}
    text = context_cache.render(data)
    assert f"{result['speedup']:.2f}x" in text and "`python bench/context_cache.py --rounds 1`" in text
    assert "process CPU time" in text


def test_cpu_speedups_bench_measures_every_variant_and_renders_them(monkeypatch):
    import cpu_speedups
    from peer_models import Setting

    import polydiff.nn.linear as linear_mod

    original = linear_mod.cpu_matmul_route
    routes: list[str] = []

    def set_route(route: str) -> None:
        routes.append(route)
        monkeypatch.setattr(linear_mod, "cpu_matmul_route", cpu_speedups.on_route(route))

    layers = cpu_speedups.measure_layers(1, "cpu", repeats=1, layers=((1024, 8, 16),))
    assert layers[0]["forward"]["blas"] > 0 and layers[0]["forward_backward"]["onednn"] > 0
    tiny = Setting("tiny", size=8, batch=2, model_channels=8, channel_mult=(1, 2), head_dim=8, norm_groups=4)
    unet = cpu_speedups.measure_unet(tiny, 1, "cpu", set_route)
    assert set(unet["train_s"]) == set(unet["sample_s"]) == set(cpu_speedups.VARIANTS)
    assert set(routes) == {"blas", "onednn"}
    monkeypatch.setattr(linear_mod, "cpu_matmul_route", original)
    data = {"machine": "m", "threads": 1, "clock": "cpu", "rounds": 1, "command": "--rounds 1"}
    text = cpu_speedups.render(data | {"layers": layers, "unets": [unet]})
    assert "[1024, 8] -> 16" in text and "`tiny` (" in text
    assert "`python bench/cpu_speedups.py --rounds 1`" in text
    gain = unet["sample_s"]["neither"] / unet["sample_s"]["both"]
    assert f"({gain:.2f}x)" in text


def test_train_overheads_bench_measures_every_variant_and_renders_them(tmp_path):
    import train_overheads

    parts = train_overheads.measure_parts("16x16-b64", 1, "cpu", repeats=1)
    assert set(parts["optimizer_ms"]) == set(train_overheads.OPTIMIZERS)
    assert set(parts["ema_ms"]) == set(train_overheads.EMAS)
    assert parts["tensors"] > 100 and all(v > 0 for v in parts["optimizer_ms"].values())
    # the "before" trainer, in this process (its allocator stays as the environment says)
    run = train_overheads.child("before", "image", "quick", 0.2, 1, "wall")
    assert run["steps"] >= 2 and run["steps_per_s"] > 0 and run["faults_per_step"] >= 0
    variants = {
        v: run | {"steps_per_s": run["steps_per_s"] * (1 + i)}
        for i, v in enumerate(train_overheads.TRAINER_VARIANTS)
    }
    data = {
        "machine": "test",
        "clock": "cpu",
        "threads": 1,
        "rounds": 1,
        "command": train_overheads._command(["--rounds", "1", "--out", str(tmp_path / "x.json")]),
        "parts": [parts],
        "trainers": [{"modality": "image", "preset": "quick", "seconds": 0.2, "variants": variants}],
    }
    text = train_overheads.render(data)
    assert "`python bench/train_overheads.py --rounds 1`." in text
    assert "| `16x16-b64` (922,051 parameters" in text and "| `quick` | " in text and "(3.00x)" in text


def test_ratios_come_with_the_range_of_the_rounds_ratios() -> None:
    from peers import _ratio_with_rounds, paired_ratios

    diffusers, polydiff = [0.30, 0.20, 0.24], [0.25, 0.20, 0.16]
    assert paired_ratios(diffusers, polydiff) == pytest.approx([1.2, 1.0, 1.5])
    assert _ratio_with_rounds(diffusers, polydiff) == "1.20x (1.00-1.50)"
    assert _ratio_with_rounds(None, polydiff) == "-"


@pytest.mark.parametrize(("optimizer", "fused"), [("fused", True), ("default", None)])
def test_workload_optimizer_is_the_same_kind_for_every_contender(optimizer: str, fused: bool | None) -> None:
    setting = SETTINGS["16x16-b64"]
    work = Workload(build_polydiff(setting), setting, optimizer=optimizer)
    assert work.optimizer.param_groups[0]["fused"] is fused


def test_cpu_bf16_bench_measures_every_variant_and_restores_the_switch() -> None:
    import cpu_bf16
    from peer_models import Setting

    import polydiff.nn.layers as layers

    tiny = Setting("tiny", size=8, batch=2, model_channels=8, channel_mult=(1, 2), head_dim=8, norm_groups=4)
    unet = cpu_bf16.measure_unet(tiny, rounds=1)
    assert set(unet["train_s"]) == set(unet["sample_s"]) == set(cpu_bf16.VARIANTS)
    assert layers.CPU_FLOAT32_FOR == cpu_bf16.DEFAULT_FLOAT32_FOR
    with cpu_bf16.running("bf16-pytorch"):
        assert layers.CPU_FLOAT32_FOR == () and torch.is_autocast_enabled("cpu")
    assert layers.CPU_FLOAT32_FOR == cpu_bf16.DEFAULT_FLOAT32_FOR and not torch.is_autocast_enabled("cpu")
    measured = cpu_bf16.measure_trainer("video", rounds=1, steps=1)  # two trainers, three variants
    assert (
        set(measured["steps_per_s"]) == set(cpu_bf16.VARIANTS) and min(measured["steps_per_s"].values()) > 0
    )
    assert layers.CPU_FLOAT32_FOR == cpu_bf16.DEFAULT_FLOAT32_FOR
    trainers = [
        {
            "modality": "image",
            "preset": "quick",
            "steps_per_s": {"fp32": 10.0, "bf16-pytorch": 8.0, "bf16": 12.5},
        }
    ]
    scores = {"held_out": 0.6, "seen": 0.7, "samples": 56}
    cli = {"seed": 3, "steps": 800, "fp32": scores, "bf16": scores}
    cli["steps_per_s"] = {"fp32": [20.0, 22.0], "bf16-pytorch": [16.0, 17.0], "bf16": [24.0, 26.0]}
    data = {
        "machine": "m",
        "threads": 2,
        "rounds": 1,
        "command": "--rounds 1",
        "unets": [unet],
        "trainers": trainers,
    }
    text = cpu_bf16.render(data | {"cli": cli})
    assert "`python bench/cpu_bf16.py --rounds 1`" in text and "`tiny` (" in text
    assert "| `image` `quick` | 10.00 / 8.00 / 12.50 | 0.80x | 1.25x |" in text
    assert "(median; each run: 20.00, 22.00 / 16.00, 17.00 / 24.00, 26.00)" in text
    assert (
        "| bf16 (polydiff) | 25.00 (1.19x) | 0.600 | 0.700 |" in text
        and "| bf16 (PyTorch) | 16.50 (0.79x) | - | - |" in text
    )
    assert "The whole command" not in cpu_bf16.render(data)
