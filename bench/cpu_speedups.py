"""polydiff's two CPU speed-ups measured: linear layers on oneDNN, and channels-last activations.

:class:`polydiff.nn.linear.Linear` runs large float32 CPU products as a 1x1 convolution on
x86 CPUs not made by Intel (``POLYDIFF_CPU_MATMUL``), and a 2-D ``UNet`` runs its activations
channels-last on the CPU (``UNet.channels_last_on_cpu``). This measures, in one process and
alternately (AB, BA, ...):

* *layers*: the products of the benchmark UNets' transformer blocks (tokens x in -> out),
  forward alone and forward + backward, as GFLOP/s of MKL's sgemm (``F.linear``) and oneDNN;
* *UNets*: polydiff's UNet of ``bench/peer_models.py``'s CPU settings, a training step (forward,
  MSE, backward, AdamW) and a sampling forward, in three variants: neither speed-up (MKL, NCHW),
  oneDNN linear layers (NCHW), and both (the default).

Usage::

    python bench/cpu_speedups.py --threads 1 --clock cpu           # writes bench/results/cpu_speedups.json
    python bench/cpu_speedups.py --from-json --write-docs          # the section in docs/research/speed.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CLOCKS,
    ROOT,
    SPEED_PAGE,
    MachineState,
    alternate,
    markdown_table,
    median,
    replace_section,
    time_call,
)
from peer_models import DEFAULT_SETTINGS, SETTINGS, Setting, build_polydiff  # noqa: E402

import polydiff.nn.linear as linear_mod  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "cpu_speedups.json"
SECTION = "## Linear layers on oneDNN and channels-last activations (CPU)"
ROUTES = ("blas", "onednn")
#: UNet variants: (route of the linear layers, channels-last activations).
VARIANTS: dict[str, tuple[str, bool]] = {
    "neither": ("blas", False),
    "onednn": ("onednn", False),
    "both": ("onednn", True),
}
CLOCK_WORDS = {"wall": "wall time", "cpu": "process CPU time"}
#: (rows, in, out): the feed-forward and attention products of the 32x32 UNet's 16x16 level at
#: batch 32 (8192 tokens of 96 channels), of its 8x8 level, and of the 16x16 UNet's 8x8 level.
LAYERS = ((8192, 96, 384), (8192, 384, 96), (8192, 96, 288), (8192, 96, 96), (2048, 96, 384), (4096, 64, 256))


def on_route(route: str) -> Callable[[], str]:
    return lambda: route


def product(route: str, rows: int, cin: int, cout: int, backward: bool) -> Callable[[], None]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, cin, generator=gen, requires_grad=backward)
    weight = torch.randn(cout, cin, generator=gen, requires_grad=backward)
    bias = torch.randn(cout, generator=gen, requires_grad=backward)
    grad = torch.randn(rows, cout, generator=gen)
    block = linear_mod._row_block(rows)
    assert block is not None, f"{rows} rows would not take the oneDNN route"

    def fn() -> torch.Tensor:
        if route == "blas":
            return F.linear(x, weight, bias)
        return linear_mod.onednn_linear(x, weight, bias, block)

    if not backward:

        def forward() -> None:
            with torch.no_grad():
                fn()

        return forward
    return lambda: fn().backward(grad)


def measure_layers(
    rounds: int, clock: str, repeats: int = 5, layers: tuple[tuple[int, int, int], ...] = LAYERS
) -> list[dict[str, Any]]:
    out = []
    for rows, cin, cout in layers:
        entry: dict[str, Any] = {"rows": rows, "in": cin, "out": cout}
        for backward in (False, True):
            fns = {r: product(r, rows, cin, cout, backward) for r in ROUTES}
            for fn in fns.values():
                fn()
            timers = {r: (lambda f=f: median(time_call(f, repeats, clock))) for r, f in fns.items()}
            times = alternate(timers, rounds)
            flops = 2 * rows * cin * cout * (3 if backward else 1)
            key = "forward_backward" if backward else "forward"
            entry[key] = {r: flops / median(v) / 1e9 for r, v in times.items()}  # GFLOP/s
        out.append(entry)
        f, fb = entry["forward"], entry["forward_backward"]
        print(
            f"[{rows}, {cin}] -> {cout}: forward {f['blas']:.0f} -> {f['onednn']:.0f} GFLOP/s, "
            f"forward + backward {fb['blas']:.0f} -> {fb['onednn']:.0f} GFLOP/s",
            flush=True,
        )
    return out


def measure_unet(
    setting: Setting, rounds: int, clock: str, set_route: Callable[[str], None]
) -> dict[str, Any]:
    """Training step and sampling forward of ``setting``'s polydiff UNet in each of :data:`VARIANTS`."""
    name = setting.name
    torch.manual_seed(0)
    model = build_polydiff(setting).model
    gen = torch.Generator().manual_seed(0)
    shape = (setting.batch, 3, setting.size, setting.size)
    x, noise = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    t = torch.randint(0, 1000, (setting.batch,), generator=gen)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    now = CLOCKS[clock]

    def use(variant: str) -> None:
        route, channels_last = VARIANTS[variant]
        set_route(route)
        model.channels_last_on_cpu = channels_last

    def train_step(variant: str) -> float:
        use(variant)
        model.train()
        start = now()
        F.mse_loss(model(x, t), noise).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return now() - start

    def forward(variant: str) -> float:
        use(variant)
        model.eval()
        with torch.no_grad():
            start = now()
            model(x, t)
            return now() - start

    for variant in VARIANTS:  # warm-up
        train_step(variant), train_step(variant), forward(variant)
    entry: dict[str, Any] = {"setting": name, "parameters": sum(p.numel() for p in model.parameters())}
    for key, fn in (("train_s", train_step), ("sample_s", forward)):
        timers = {v: (lambda v=v, fn=fn: median([fn(v) for _ in range(3)])) for v in VARIANTS}
        entry[key] = {v: median(times) for v, times in alternate(timers, rounds).items()}
    print(
        f"{name}: training step " + " -> ".join(f"{entry['train_s'][v]:.3f}" for v in VARIANTS) + " s, "
        "sampling forward " + " -> ".join(f"{entry['sample_s'][v]:.3f}" for v in VARIANTS) + " s",
        flush=True,
    )
    return entry


def render(data: dict[str, Any]) -> str:
    layer_rows = [
        [
            f"[{e['rows']}, {e['in']}] -> {e['out']}",
            f"{e['forward']['blas']:.0f} / {e['forward']['onednn']:.0f}",
            f"{e['forward']['onednn'] / e['forward']['blas']:.2f}x",
            f"{e['forward_backward']['blas']:.0f} / {e['forward_backward']['onednn']:.0f}",
            f"{e['forward_backward']['onednn'] / e['forward_backward']['blas']:.2f}x",
        ]
        for e in data["layers"]
    ]

    def cells(seconds: dict[str, float]) -> list[str]:
        base = seconds["neither"]
        return [
            f"{seconds[v]:.3f}" + ("" if v == "neither" else f" ({base / seconds[v]:.2f}x)") for v in VARIANTS
        ]

    unet_rows = [
        [f"`{e['setting']}` ({e['parameters']:,} parameters)", *cells(e["train_s"]), *cells(e["sample_s"])]
        for e in data["unets"]
    ]
    return (
        "`polydiff.nn.linear.Linear` (every linear layer of the attention blocks and the DiT) runs a "
        "float32 CPU product of at least 1024 rows as a 1x1 convolution over the rows viewed as a "
        "channels-last image: oneDNN instead of MKL's sgemm, which on x86 CPUs not made by Intel "
        "takes a slower path (`POLYDIFF_CPU_MATMUL=blas` turns it off). A 2-D `UNet` on the CPU runs "
        "its activations channels-last (NHWC: oneDNN's fastest convolution layout, and the attention "
        "blocks' token views need no copy; `unet.channels_last_on_cpu = False` turns it off). Same "
        "parameters, results equal to float32 rounding (`tests/core/test_cpu_linear.py`, "
        "`tests/core/test_channels_last.py`).\n\n"
        f"Machine: {data['machine']}. Clock: {CLOCK_WORDS[data['clock']]}, {data['threads']} thread(s); "
        f"the routes alternate for {data['rounds']} rounds, medians reported.\n\n"
        f"Reproduce: `python bench/cpu_speedups.py {data['command']}`.\n\n"
        "Products (GFLOP/s, MKL / oneDNN):\n\n"
        + markdown_table(["rows, in -> out", "forward", "gain", "forward + backward", "gain"], layer_rows)
        + "\n\npolydiff's UNet, seconds per call (gain over neither): *neither* = MKL linear layers and NCHW "
        "activations (before), *oneDNN* = oneDNN linear layers, *both* = oneDNN and channels-last (the "
        "default here):\n\n"
        + markdown_table(
            [
                "UNet",
                "training step: neither",
                "oneDNN",
                "both",
                "sampling forward: neither",
                "oneDNN",
                "both",
            ],
            unet_rows,
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    cpu_settings = list(DEFAULT_SETTINGS["cpu"])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=cpu_settings)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--from-json", action="store_true", help="render --out into the docs")
    args = parser.parse_args(argv)
    if args.from_json:
        data = json.loads(args.out.read_text())
    else:
        if not torch.backends.mkldnn.is_available():
            sys.exit("this PyTorch has no oneDNN (torch.backends.mkldnn.is_available() is False)")
        if args.threads:
            torch.set_num_threads(args.threads)
        original = linear_mod.cpu_matmul_route

        def set_route(route: str) -> None:
            linear_mod.cpu_matmul_route = on_route(route)

        machine = MachineState.capture()
        try:
            layers = measure_layers(args.rounds, args.clock)
            unets = [measure_unet(SETTINGS[n], args.rounds, args.clock, set_route) for n in args.settings]
        finally:
            linear_mod.cpu_matmul_route = original
        machine.finish()
        command = " ".join(a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-docs")
        data = {
            "machine": machine.describe(),
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "rounds": args.rounds,
            "command": command,
            "layers": layers,
            "unets": unets,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.write_docs:
        replace_section(SPEED_PAGE, SECTION, render(data))
        print(f"wrote the section {SECTION!r} of {SPEED_PAGE}")


if __name__ == "__main__":
    main()
