"""Helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from polydiff.validation import check_sampling


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Options of every command that samples (defaults come from the run's config)."""
    p.add_argument("--sampler", help="ddpm, ddim, dpmpp-2m, euler, heun (default: the run's)")
    p.add_argument("--steps", type=int, help="sampling steps (network evaluations for first-order samplers)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (1 = off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (CPU generator)")
    p.add_argument("--eta", type=float, help="DDIM eta (0 = deterministic)")
    p.add_argument("--temperature", type=float, help="initial noise N(0, I/temperature) (speech: 1.5)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument(
        "--expert",
        type=Path,
        action="append",
        default=[],
        help="a run (or pretrained name) trained with --set train.timestep_range=[LO,HI]: it denoises "
        "at those timesteps in place of CHECKPOINT (repeat for several)",
    )


def add_speed_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--compile``, ``--compile-mode`` and ``--threads`` (``what``: the network's job, for the help)."""
    p.add_argument(
        "--compile",
        action="store_true",
        help=f"torch.compile the denoiser for {what} (inductor: g++ on the CPU, triton on CUDA; the "
        "first step compiles, seconds to minutes; where it cannot, one line says so and it runs eagerly)",
    )
    p.add_argument(
        "--compile-mode",
        choices=("default", "reduce-overhead", "max-autotune"),
        help="torch.compile mode (implies --compile): reduce-overhead adds CUDA graphs (fewer kernel "
        "launches for small models on a GPU; on the CPU it is the default mode)",
    )
    add_threads_argument(p)


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    """``--threads`` (applied by ``polydiff.cli.main`` before torch is imported)."""
    p.add_argument(
        "--threads",
        help="CPU threads: auto (default: one per CPU that other processes leave free, at least one; "
        "followed during training as other processes come and go; idle threads spin briefly), a number, "
        "or torch (PyTorch's own settings); "
        "also POLYDIFF_THREADS; without either, an OMP_NUM_THREADS set in the environment is the number",
    )


def apply_compile(pipe: Any, args: argparse.Namespace) -> None:
    """``pipe.compile(...)`` when ``--compile`` or ``--compile-mode`` was given."""
    if args.compile or args.compile_mode:
        pipe.compile(args.compile_mode or "default")


def add_experts(pipe: Any, args: argparse.Namespace) -> None:
    """Load each ``--expert`` run and hand it its timesteps in ``pipe`` (``with_expert``), then
    print every expert that samples with ``pipe`` (a pretrained name brings its record's own)."""
    for path in getattr(args, "expert", []):
        expert = type(pipe).from_pretrained(path, registry=pipe.registry, device=pipe.device)
        if any(_same_model(expert, attached) for _, _, attached in pipe.experts):
            print(f"expert {path} is already attached (the pretrained model brings it); given once")
            continue
        pipe.with_expert(expert)
    for lo, hi, expert in pipe.experts:
        record = getattr(expert, "pretrained", None)
        name = record.name if record is not None else expert.checkpoint_path
        print(f"expert {name} denoises timesteps {lo}..{hi - 1}")


def _same_model(a: Any, b: Any) -> bool:
    """Whether two pipelines were loaded from the same checkpoint files."""
    pa, pb = getattr(a, "checkpoint_path", None), getattr(b, "checkpoint_path", None)
    return pa is not None and pb is not None and Path(pa).resolve() == Path(pb).resolve()


def sampling_options(args: argparse.Namespace) -> dict:
    """The sampling flags given (None where not: the run's defaults apply), each checked and
    named by its flag in errors (``--steps must be >= 1, got 0``)."""
    opts = {k: getattr(args, k) for k in ("sampler", "steps", "guidance", "temperature")}
    if getattr(args, "eta", None) is not None:
        opts["eta"] = args.eta
    for key, value in opts.items():
        if value is not None:
            opts[key] = check_sampling(key, value, f"--{key}")
    check_sampling("seed", args.seed, "--seed")
    return opts


def check_flag(args: argparse.Namespace, dest: str, option: str) -> None:
    """Check the flag ``--dest`` (when given) against the sampling option ``option``'s rule."""
    value = getattr(args, dest, None)
    if value is not None:
        check_sampling(option, value, "--" + dest.replace("_", "-"))


def trajectory_timesteps(num_timesteps: int, count: int = 8) -> list[int]:
    """``count`` timesteps from ``T-1`` down to 0, evenly spaced (the reverse process as a strip)."""
    return sorted({round((num_timesteps - 1) * i / (count - 1)) for i in range(count)}, reverse=True)


def lengths_of(output: object) -> dict:
    """``{"lengths": ...}`` for variable-length outputs (speech), else ``{}``: writers of fixed-size
    data need not accept the keyword."""
    lengths = getattr(output, "lengths", None)
    return {"lengths": lengths} if lengths is not None else {}


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--no-progress`` (bars are drawn only on a terminal anyway: see ``progress_enabled``)."""
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (none when stderr is not a terminal)"
    )


def print_outputs(title: str, paths: list[Path]) -> None:
    """``title`` then the paths that exist, one per line (each once)."""
    from polydiff.outputs import existing

    print(title)
    for p in existing(paths):
        print(f"  {p}")
