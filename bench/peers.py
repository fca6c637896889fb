"""polydiff's UNet against diffusers' and denoising-diffusion-pytorch's at matched parameter counts.

One process, same inputs, contenders measured alternately (ABC, BCA, CAB, ...) for several
rounds; medians and ratios are reported. Per setting (see :data:`peer_models.SETTINGS`):

* training step: forward + MSE loss against the noise + backward + AdamW step, at ``batch``;
* sampling: forward passes per second in ``torch.no_grad()`` at the same batch;
* peak memory: tensor bytes allocated during one training step / one forward, above what was
  allocated before it (CPU: ``torch.profiler`` memory events, see :func:`common.peak_cpu_memory`;
  CUDA: the allocator's peak, see :func:`common.peak_cuda_memory`).

On CUDA (``--device cuda``) each round times a block of steps between two
``torch.cuda.synchronize()`` calls, and several modes can be measured in one run: ``fp32``,
``bf16`` (autocast) and either with ``+compile`` (``torch.compile`` of each contender; the first
step, which compiles, is excluded from the timings and reported on its own).

Usage::

    python bench/peers.py                          # both settings, 7 rounds, writes bench/results/peers.json
    python bench/peers.py --rounds 3 --settings 16x16-b64
    python bench/peers.py --write-docs             # also rewrites the section in docs/research/speed.md
    python bench/peers.py --max-load 2.5 --wait 3600   # wait for a quiet machine first
    python bench/peers.py --device cuda --modes fp32 bf16 bf16+compile   # bench/results/peers-cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from polydiff.allocator import MODES, configure_cpu_allocator
from polydiff.training.optimizer import can_fuse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CLOCKS,
    ROOT,
    SPEED_PAGE,
    MachineState,
    alternate,
    gpu_description,
    markdown_table,
    median,
    peak_cpu_memory,
    peak_cuda_memory,
    replace_section,
    spread,
    time_block,
    time_call,
    wait_for_low_load,
    without_out,
)
from peer_models import DEFAULT_SETTINGS, NAMES, SETTINGS, Contender, Setting, build_contenders  # noqa: E402

#: AdamW variants of the training step (the same for every contender).
OPTIMIZERS = ("fused", "default")
RESULTS = ROOT / "bench" / "results" / "peers.json"
RESULTS_CUDA = ROOT / "bench" / "results" / "peers-cuda.json"
FINDINGS = ROOT / "bench" / "findings" / "peers.md"
SECTION = "## Speed against peers (CPU)"
SECTION_GPU = "## Speed against peers (GPU)"
MIB = 2**20
DEVICES = ("cpu", "cuda")
#: Per device type: (rounds, timed training steps per round, timed forwards per round, warm-up calls).
#: On CUDA a round's steps form one synchronised block; 5 x 10 keeps the full GPU run short.
DEFAULT_COUNTS: dict[str, tuple[int, int, int, int]] = {"cpu": (7, 3, 5, 2), "cuda": (5, 10, 10, 3)}
#: Autocast dtype of each precision (``None``: no autocast, float32 throughout).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Mode:
    """How the contenders run: ``precision`` (a key of :data:`PRECISIONS`) and ``torch.compile`` or not."""

    precision: str = "fp32"
    compile: bool = False

    @property
    def label(self) -> str:
        """``"fp32"``, ``"bf16"``, ``"fp32+compile"`` or ``"bf16+compile"``."""
        return self.precision + ("+compile" if self.compile else "")

    @classmethod
    def parse(cls, label: str) -> Mode:
        """The inverse of :attr:`label`; raises ``ValueError`` naming the accepted labels."""
        precision, plus, rest = label.partition("+")
        if precision not in PRECISIONS or (plus and rest != "compile"):
            accepted = ", ".join(m.label for m in ALL_MODES)
            raise ValueError(f"unknown mode {label!r}; expected one of {accepted}")
        return cls(precision, bool(plus))

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        dtype = PRECISIONS[self.precision]
        return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


ALL_MODES = tuple(Mode(p, c) for c in (False, True) for p in PRECISIONS)
#: What ``--gpu`` measures.
GPU_MODES = (Mode("fp32"), Mode("bf16"), Mode("bf16", compile=True))


class Workload:
    """Fixed random inputs and a fresh AdamW for one contender: ``train_step()`` and ``forward()``.

    Inputs ``x``, ``noise``: ``[batch, 3, size, size]``, ``t``: ``[batch]`` int64, drawn on the CPU from
    ``seed`` (the same values on every device) and moved to ``device``, where the model must already be.
    ``mode`` adds autocast around forward + loss and/or ``torch.compile`` of the contender's forward.
    ``optimizer``: ``"fused"`` (AdamW's fused kernel, as polydiff's trainer runs it; where the device has
    one) or ``"default"`` (PyTorch's default AdamW: a loop per tensor on the CPU).
    """

    def __init__(
        self,
        contender: Contender,
        setting: Setting,
        seed: int = 0,
        *,
        device: torch.device | str = "cpu",
        mode: Mode = Mode(),
        optimizer: str = "fused",
    ) -> None:
        device = torch.device(device)
        gen = torch.Generator().manual_seed(seed)
        shape = (setting.batch, 3, setting.size, setting.size)
        self.contender = contender
        self.device, self.mode = device, mode
        self.x = torch.randn(shape, generator=gen).to(device)
        self.noise = torch.randn(shape, generator=gen).to(device)
        self.t = torch.randint(0, 1000, (setting.batch,), generator=gen).to(device)
        params = list(contender.model.parameters())
        fused = optimizer == "fused" and can_fuse(params)
        self.optimizer = torch.optim.AdamW(params, lr=1e-4, fused=fused or None)
        self.net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
            torch.compile(contender.forward) if mode.compile else contender.forward
        )

    def train_step(self) -> None:
        self.contender.model.train()
        with self.mode.autocast(self.device):
            loss = F.mse_loss(self.net(self.x, self.t), self.noise)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def forward(self) -> None:
        self.contender.model.eval()
        with torch.no_grad(), self.mode.autocast(self.device):
            self.net(self.x, self.t)


def measure_setting(
    setting: Setting,
    *,
    rounds: int,
    train_steps: int,
    forwards: int,
    clock: str = "wall",
    log: Any = print,
    device: torch.device | str = "cpu",
    mode: Mode = Mode(),
    warmup: int = 2,
    optimizer: str = "fused",
) -> dict[str, Any]:
    """Build the contenders, warm them up, then time them alternately; returns a JSON-able dict.

    CPU: a round's value is the median of ``train_steps`` (``forwards``) individually timed calls.
    CUDA: a round's value is the mean of a block of calls between two synchronisations. The first
    training step and forward (where ``torch.compile`` compiles) are timed apart as ``first_*_s``.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else None
    torch.manual_seed(0)
    contenders = build_contenders(setting, log=log)
    for c in contenders:
        c.model.to(device)
    work = {c.name: Workload(c, setting, device=device, mode=mode, optimizer=optimizer) for c in contenders}
    first: dict[str, tuple[float, float]] = {}
    for name, w in work.items():  # warm-up: allocator, AdamW state, kernel selection, compilation
        first_train = time_block(w.train_step, 1, sync=sync)
        time_call(w.train_step, warmup - 1)
        first_forward = time_block(w.forward, 1, sync=sync)
        time_call(w.forward, warmup - 1)
        first[name] = (first_train, first_forward)
        if mode.compile:
            log(f"  {setting.name} {mode.label} {name}: first step + forward {sum(first[name]):.1f} s")

    def timer(fn: Callable[[], None], n: int) -> Callable[[], float]:
        if sync is None:
            return lambda: median(time_call(fn, n, clock))
        return lambda: time_block(fn, n, clock, sync)

    train = alternate({n: timer(w.train_step, train_steps) for n, w in work.items()}, rounds)
    sample = alternate({n: timer(w.forward, forwards) for n, w in work.items()}, rounds)
    out: dict[str, Any] = {
        "setting": vars(setting)
        | {"channel_mult": list(setting.channel_mult), "attention_levels": list(setting.attention_levels)},
        "mode": mode.label,
        "contenders": {},
    }
    for c in contenders:
        w = work[c.name]
        peak = (lambda fn: peak_cuda_memory(fn, device)) if cuda else peak_cpu_memory
        entry = {
            "parameters": c.num_parameters,
            "width": c.width,
            "attention": c.attention,
            "train_s": train[c.name],
            "sample_s": sample[c.name],
            "train_peak_bytes": peak(w.train_step),
            "sample_peak_bytes": peak(w.forward),
            "state_bytes": 4 * c.num_parameters * 4,  # fp32 weights, grads, AdamW's two moments
            "first_train_s": first[c.name][0],
            "first_forward_s": first[c.name][1],
        }
        out["contenders"][c.name] = entry
        log(
            f"  {setting.name} {c.name:13s} {c.num_parameters:>9,} params  "
            + (f"{mode.label:13s}" if (cuda or mode != Mode()) else "")
            + f"train {1e3 * median(train[c.name]):7.1f} ms/step  "
            f"sample {1e3 * median(sample[c.name]):6.1f} ms/forward  "
            f"peak {entry['train_peak_bytes'] / MIB:6.1f} MiB"
        )
    del work, contenders
    if cuda:
        torch.cuda.empty_cache()
    return out


def run(
    settings: list[str],
    *,
    rounds: int,
    train_steps: int,
    forwards: int,
    threads: int,
    clock: str = "wall",
    device: str = "cpu",
    modes: list[Mode] | None = None,
    warmup: int = 2,
    max_seconds: float | None = None,
    partial_out: Path | None = None,
    command: str = "",
    allocator: str = "keep",
    optimizer: str = "fused",
) -> dict[str, Any]:
    """Measure every (mode, setting) block, modes outermost; returns the results dict.

    ``max_seconds``: blocks not yet started when this much wall time has passed are skipped and listed
    under ``"skipped"``. ``partial_out``: the results so far are written there after every block (so a
    run cut short still leaves what it measured). ``allocator``: the CPU allocator mode
    (:mod:`polydiff.allocator`), process-wide, so every contender runs with it; ``optimizer``: every
    contender's AdamW (see :class:`Workload`).
    """
    modes = modes or [Mode()]
    dev = torch.device(device)
    torch.set_num_threads(threads)
    allocator = configure_cpu_allocator(allocator)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    state = MachineState.capture()
    print(f"peers: {state.describe()}")
    versions = {"torch": torch.__version__}
    for module in ("diffusers", "denoising_diffusion_pytorch"):
        try:
            from importlib.metadata import version

            versions[module] = version(module.replace("_", "-"))
        except Exception:  # pragma: no cover - metadata missing
            versions[module] = "?"
    results: dict[str, Any] = {
        "machine": "",
        "device": dev.type,
        "modes": [m.label for m in modes],
        "threads": threads,
        "clock": clock,
        "allocator": allocator,
        "optimizer": optimizer,
        "rounds": rounds,
        "train_steps_per_round": train_steps,
        "forwards_per_round": forwards,
        "warmup": warmup,
        "versions": versions,
        "settings": [],
        "skipped": [],
    }
    if command:
        results["command"] = command
    gpu = f"{gpu_description(dev)}; host: " if dev.type == "cuda" else ""
    start = time.monotonic()
    blocks = [(m, name) for m in modes for name in settings]
    for i, (mode, name) in enumerate(blocks):
        elapsed = time.monotonic() - start
        if max_seconds is not None and elapsed > max_seconds:
            results["skipped"].append(f"{name} {mode.label}")
            print(f"[{elapsed:6.1f} s] skipping {name} {mode.label}: past --max-seconds {max_seconds:g}")
            continue
        if len(blocks) > 1 or dev.type == "cuda":
            print(f"[{elapsed:6.1f} s] block {i + 1}/{len(blocks)}: {name} {mode.label}")
        results["settings"].append(
            measure_setting(
                SETTINGS[name],
                rounds=rounds,
                train_steps=train_steps,
                forwards=forwards,
                clock=clock,
                device=dev,
                mode=mode,
                warmup=warmup,
                optimizer=optimizer,
            )
        )
        if partial_out is not None:
            results["machine"] = gpu + state.describe()
            partial_out.parent.mkdir(parents=True, exist_ok=True)
            partial_out.write_text(json.dumps(results | {"complete": False}, indent=1) + "\n")
    state.finish()
    results["machine"] = gpu + state.describe()
    results["wall_s"] = round(time.monotonic() - start, 1)
    print(f"[{results['wall_s']:6.1f} s] done")
    return results


def render(results: dict[str, Any], findings: str = "") -> str:
    """The Markdown body of the docs section from :func:`run`'s results.

    A CPU run in float32 without compilation gives the CPU section's tables (with ``findings``);
    anything else (CUDA, bf16, compiled) gives :func:`render_modes`' tables.
    """
    if results.get("device", "cpu") != "cpu" or any(
        s.get("mode", "fp32") != "fp32" for s in results["settings"]
    ):
        return render_modes(results)
    return _render_cpu(results, findings)


def _ratio(reference: float | None, value: float) -> str:
    """``reference / value`` as ``"1.23x"`` (``"-"`` without a reference)."""
    return "-" if reference is None else f"{reference / value:.2f}x"


def paired_ratios(reference: list[float], values: list[float]) -> list[float]:
    """Round by round ``reference / value``: the contenders ran back to back within each round, so
    these ratios are free of the machine's drift between rounds."""
    return [r / v for r, v in zip(reference, values)]


def _ratio_with_rounds(reference: list[float] | None, values: list[float]) -> str:
    """Ratio of the medians, then the lowest and highest round's ratio: ``"1.23x (1.15-1.30)"``."""
    if reference is None:
        return "-"
    if reference is values:  # the reference's own row
        return "1.00x"
    per_round = paired_ratios(reference, values)
    return f"{median(reference) / median(values):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"


def _render_cpu(results: dict[str, Any], findings: str = "") -> str:
    v = results["versions"]
    parts = [
        f"polydiff's `UNet` against diffusers {v['diffusers']} `UNet2DModel` and denoising-diffusion-pytorch "
        + (
            f'{v["denoising_diffusion_pytorch"]} `Unet` ("ddpm-pytorch")'
            if v.get("denoising_diffusion_pytorch", "?") != "?"
            else "`Unet` (not installed for this run: no rows)"
        )
        + ", unconditional, 3 channels, same inputs, "
        "matched parameter counts (within 5%), in one process. Training step = forward + MSE + backward + "
        + (
            "AdamW step (fused, as polydiff's trainer runs it, for both)"
            if results.get("optimizer") == "fused"
            else "AdamW step (PyTorch's default: a loop per tensor)"
        )
        + "; sampling = one forward pass in `no_grad` at the same batch. Contenders alternate "
        f"(ABC, BCA, CAB, ...) for {results['rounds']} rounds of {results['train_steps_per_round']} training "
        f"steps / {results['forwards_per_round']} forwards; each round's median counts once and the table "
        "gives the median over rounds (spread = (max - min) / median over rounds). Ratios are polydiff's "
        "throughput over the peer's (> 1: polydiff is faster): the ratio of the medians, and in brackets "
        "the lowest and highest ratio within one round (the contenders ran back to back). Peak memory = "
        "tensor bytes allocated during "
        "one step above what existed before it (activations, gradients, temporaries; not the weights and "
        "AdamW state, which are 16 bytes per parameter), from `torch.profiler`'s memory events.",
        "",
        f"Machine: {results['machine']}. Clock: "
        + (
            "wall time."
            if results.get("clock", "wall") == "wall"
            else "process CPU time (robust to other processes' load, measures cost rather than latency)."
        )
        + _allocator_words(results.get("allocator")),
        "",
        f"Reproduce: `pip install -e '.[bench]' && {results.get('command', 'python bench/peers.py')}`.",
    ]
    for s in results["settings"]:
        setting, cs = s["setting"], s["contenders"]
        ref = cs.get("diffusers")
        rows = []
        for name in [n for n in NAMES if n in cs]:
            c = cs[name]
            tr, sa = median(c["train_s"]), median(c["sample_s"])
            rows.append(
                [
                    name,
                    f"{c['parameters']:,}",
                    f"{1e3 * tr:.0f} ({spread(c['train_s']):.0%})",
                    f"{setting['batch'] / tr:.0f}",
                    _ratio_with_rounds(ref["train_s"] if ref else None, c["train_s"]),
                    f"{1e3 * sa:.1f} ({spread(c['sample_s']):.0%})",
                    f"{1 / sa:.1f}",
                    _ratio_with_rounds(ref["sample_s"] if ref else None, c["sample_s"]),
                    f"{c['train_peak_bytes'] / MIB:.0f}",
                    f"{c['sample_peak_bytes'] / MIB:.0f}",
                ]
            )
        parts += [
            "",
            f"### {setting['size']}x{setting['size']}, batch {setting['batch']}",
            "",
            markdown_table(
                [
                    "model",
                    "parameters",
                    "train ms/step (spread)",
                    "train img/s",
                    "vs diffusers (rounds)",
                    "forward ms (spread)",
                    "forwards/s",
                    "vs diffusers (rounds)",
                    "train peak MiB",
                    "forward peak MiB",
                ],
                rows,
            ),
            "",
            "Architectures: "
            + "; ".join(
                f"**{name}** width {cs[name]['width']}, {cs[name]['attention']}"
                for name in NAMES
                if name in cs
            )
            + ".",
        ]
    if findings.strip():
        parts += ["", findings.strip()]
    return "\n".join(parts)


def _allocator_words(mode: str | None) -> str:
    if mode == "keep":
        return (
            " CPU allocator: `keep` for both contenders (the process keeps freed memory, as polydiff's "
            "commands do; `--allocator system`: glibc's defaults)."
        )
    if mode == "system":
        return " CPU allocator: glibc's defaults (`--allocator system`)."
    return ""


def render_modes(results: dict[str, Any]) -> str:
    """The Markdown body of a run with several modes (or on CUDA): one table per setting, a row per
    mode and contender; ratios are against diffusers in the same mode and against the same
    contender in ``fp32``."""
    v, n_train, n_fwd = results["versions"], results["train_steps_per_round"], results["forwards_per_round"]
    cuda = results.get("device") == "cuda"
    if cuda:
        timing = (
            f"each round times {n_train} training steps / {n_fwd} forwards back to back between two "
            "`torch.cuda.synchronize()` calls and counts their mean"
        )
        memory = "from `torch.cuda.max_memory_allocated` (peak statistics reset before the step)"
    else:
        timing = f"each round counts the median of {n_train} training steps / {n_fwd} forwards"
        memory = "from `torch.profiler`'s memory events"
    method = [
        f"polydiff's `UNet` against diffusers {v['diffusers']} `UNet2DModel` and denoising-diffusion-pytorch",
        f'{v["denoising_diffusion_pytorch"]} `Unet` ("ddpm-pytorch"), unconditional, 3 channels,',
        "same inputs, matched parameter counts (within 5%), in one process, as in the CPU section.",
        "Modes: `fp32` (PyTorch's defaults: TF32 for cuDNN convolutions, none for matmuls),",
        "`bf16` (`torch.autocast` in bfloat16 around forward + loss; weights, gradients and AdamW stay",
        "float32), `+compile` (`torch.compile` of each network's forward, default mode, no CUDA graphs)"
        + (", `torch.backends.cudnn.benchmark` on." if cuda else "."),
        f"Contenders alternate (ABC, BCA, CAB, ...) for {results['rounds']} rounds; {timing}; the table",
        "gives the median over rounds (spread = (max - min) / median).",
        f"Warm-up calls ({results.get('warmup', 3)} training steps and as many forwards) are not timed;",
        "the last column is the first training step + first forward, where compilation happens.",
        "Ratios are throughputs: a contender's over diffusers' in the same mode, and over its own `fp32`.",
        "Peak memory = bytes allocated during one step above what existed before it (not the weights and",
        f"AdamW state, 16 bytes per parameter), {memory}.",
        "denoising-diffusion-pytorch's attention may use any SDPA kernel, as the others do (on GPUs newer",
        "than the A100 it allows only the flash kernel, which has no float32 version).",
    ]
    parts = [
        " ".join(method),
        "",
        f"Machine: {results['machine']}. Run time: {results.get('wall_s', '?')} s.",
        "",
        f"Reproduce: `pip install -e '.[bench]' && {results.get('command', 'python bench/peers.py')}`.",
    ]
    if results.get("skipped"):
        parts += ["", "Not measured (past `--max-seconds`): " + ", ".join(results["skipped"]) + "."]
    if not results.get("complete", True):
        parts += ["", "**Incomplete run**: the results of the blocks finished before it stopped."]
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for s in results["settings"]:
        by_setting.setdefault(s["setting"]["name"], []).append(s)
    for entries in by_setting.values():
        setting = entries[0]["setting"]
        fp32 = next((e["contenders"] for e in entries if e["mode"] == "fp32"), {})
        rows = []
        for e in entries:
            cs = e["contenders"]
            ref = cs.get("diffusers")
            for name in [n for n in NAMES if n in cs]:
                c = cs[name]
                tr, sa = median(c["train_s"]), median(c["sample_s"])
                own = fp32.get(name)
                rows.append(
                    [
                        name,
                        e["mode"],
                        f"{1e3 * tr:.1f} ({spread(c['train_s']):.0%})",
                        f"{setting['batch'] / tr:.0f}",
                        _ratio(median(ref["train_s"]) if ref else None, tr),
                        _ratio(median(own["train_s"]) if own else None, tr),
                        f"{1e3 * sa:.2f} ({spread(c['sample_s']):.0%})",
                        _ratio(median(ref["sample_s"]) if ref else None, sa),
                        f"{c['train_peak_bytes'] / MIB:.0f}",
                        f"{c['sample_peak_bytes'] / MIB:.0f}",
                        f"{c.get('first_train_s', 0.0) + c.get('first_forward_s', 0.0):.1f}",
                    ]
                )
        cs = entries[0]["contenders"]
        parts += [
            "",
            f"### {setting['size']}x{setting['size']}, batch {setting['batch']}",
            "",
            markdown_table(
                [
                    "model",
                    "mode",
                    "train ms/step (spread)",
                    "train img/s",
                    "vs diffusers",
                    "vs own fp32",
                    "forward ms (spread)",
                    "vs diffusers",
                    "train peak MiB",
                    "forward peak MiB",
                    "first step + forward s",
                ],
                rows,
            ),
            "",
            "Parameters: "
            + ", ".join(f"{name} {cs[name]['parameters']:,}" for name in NAMES if name in cs)
            + ". Architectures: "
            + "; ".join(
                f"**{name}** width {cs[name]['width']}, {cs[name]['attention']}"
                for name in NAMES
                if name in cs
            )
            + ".",
        ]
    return "\n".join(parts)


def _command(argv: list[str]) -> str:
    """The command line that reproduces a run, without ``--out PATH``."""
    return " ".join(["python bench/peers.py", *without_out(argv)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=DEVICES, default="cpu", help="where the networks run")
    p.add_argument(
        "--gpu",
        action="store_true",
        help=f"the GPU comparison: --device cuda --modes {' '.join(m.label for m in GPU_MODES)}",
    )
    p.add_argument(
        "--settings",
        nargs="+",
        default=None,
        choices=list(SETTINGS),
        help="default: the device's (see peer_models)",
    )
    p.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="bf16: torch.autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile each contender's forward")
    p.add_argument(
        "--modes",
        nargs="+",
        type=Mode.parse,
        default=None,
        metavar="MODE",
        help="several modes in one run, e.g. fp32 bf16 bf16+compile (overrides --precision/--compile)",
    )
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default: cpu 7, cuda 5)")
    p.add_argument(
        "--train-steps", type=int, default=None, help="timed training steps per contender and round"
    )
    p.add_argument("--forwards", type=int, default=None, help="timed forwards per contender and round")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    p.add_argument(
        "--optimizer",
        choices=list(OPTIMIZERS),
        default="fused",
        help="every contender's AdamW: fused (as polydiff's trainer runs it) or PyTorch's default",
    )
    p.add_argument(
        "--allocator",
        choices=list(MODES),
        default="keep",
        help="CPU allocator for the whole process, both contenders (polydiff.allocator; default: keep, "
        "as polydiff's commands run)",
    )
    p.add_argument(
        "--clock",
        choices=list(CLOCKS),
        default="wall",
        help="wall time, or process CPU time (robust to other load; use with --threads 1)",
    )
    p.add_argument(
        "--max-load", type=float, default=None, help="wait until the 1-minute load is at most this"
    )
    p.add_argument("--wait", type=float, default=0.0, help="give up waiting for --max-load after this many s")
    p.add_argument(
        "--max-seconds", type=float, default=None, help="skip the (mode, setting) blocks not started by then"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="results JSON (default: peers.json, cuda: peers-cuda.json)"
    )
    p.add_argument("--write-docs", action="store_true", help=f"rewrite '{SECTION}' or '{SECTION_GPU}'")
    p.add_argument("--from-json", action="store_true", help="render --out into the docs without measuring")
    args = p.parse_args(argv)
    if args.gpu:
        args.device, args.modes = "cuda", args.modes or list(GPU_MODES)
    out = args.out or (RESULTS_CUDA if args.device == "cuda" else RESULTS)
    if args.from_json:
        results = json.loads(out.read_text())
    else:
        if args.device == "cuda" and not torch.cuda.is_available():
            p.error(
                f"--device cuda: torch.cuda.is_available() is False (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda}); run it on a GPU machine or pass --device cpu"
            )
        rounds, train_steps, forwards, warmup = DEFAULT_COUNTS[args.device]
        if args.max_load is not None:
            wait_for_low_load(args.max_load, timeout_s=args.wait)
        results = run(
            list(args.settings or DEFAULT_SETTINGS[args.device]),
            rounds=args.rounds or rounds,
            train_steps=args.train_steps or train_steps,
            forwards=args.forwards or forwards,
            threads=args.threads,
            clock=args.clock,
            device=args.device,
            modes=args.modes or [Mode(args.precision, args.compile)],
            warmup=warmup,
            max_seconds=args.max_seconds,
            partial_out=out if args.device == "cuda" else None,
            command=_command(argv if argv is not None else sys.argv[1:]),
            allocator=args.allocator,
            optimizer=args.optimizer,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"results in {out}")
    findings = FINDINGS.read_text() if FINDINGS.exists() else ""
    text = render(results, findings)
    section = SECTION_GPU if results.get("device", "cpu") == "cuda" else SECTION
    if args.write_docs:
        replace_section(SPEED_PAGE, section, text)
        print(f"wrote '{section}' in {SPEED_PAGE}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
