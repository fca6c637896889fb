"""polydiff's UNet against diffusers' and denoising-diffusion-pytorch's at matched parameter counts.

One process, same inputs, contenders measured alternately (ABC, BCA, CAB, ...) for several
rounds; medians and ratios are reported. Per setting (see :data:`peer_models.SETTINGS`):

* training step: forward + MSE loss against the noise + backward + AdamW step, at ``batch``;
* sampling: forward passes per second in ``torch.no_grad()`` at the same batch;
* peak memory: tensor bytes allocated during one training step / one forward, above what was
  allocated before it (``torch.profiler`` memory events, see :func:`common.peak_cpu_memory`).

Usage::

    python bench/peers.py                          # both settings, 7 rounds, writes bench/results/peers.json
    python bench/peers.py --rounds 3 --settings 16x16-b64
    python bench/peers.py --write-docs             # also rewrites the section in docs/benchmarks.md
    python bench/peers.py --max-load 2.5 --wait 3600   # wait for a quiet machine first
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCHMARKS_PAGE,
    CLOCKS,
    ROOT,
    MachineState,
    alternate,
    markdown_table,
    median,
    peak_cpu_memory,
    replace_section,
    spread,
    time_call,
    wait_for_low_load,
)
from peer_models import NAMES, SETTINGS, Contender, Setting, build_contenders  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "peers.json"
FINDINGS = ROOT / "bench" / "findings" / "peers.md"
SECTION = "## Speed against peers (CPU)"
MIB = 2**20


class Workload:
    """Fixed random inputs and a fresh AdamW for one contender: ``train_step()`` and ``forward()``."""

    def __init__(self, contender: Contender, setting: Setting, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        shape = (setting.batch, 3, setting.size, setting.size)
        self.contender = contender
        self.x = torch.randn(shape, generator=gen)
        self.noise = torch.randn(shape, generator=gen)
        self.t = torch.randint(0, 1000, (setting.batch,), generator=gen)
        self.optimizer = torch.optim.AdamW(contender.model.parameters(), lr=1e-4)

    def train_step(self) -> None:
        self.contender.model.train()
        loss = F.mse_loss(self.contender.forward(self.x, self.t), self.noise)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def forward(self) -> None:
        self.contender.model.eval()
        with torch.no_grad():
            self.contender.forward(self.x, self.t)


def measure_setting(
    setting: Setting, *, rounds: int, train_steps: int, forwards: int, clock: str = "wall", log: Any = print
) -> dict[str, Any]:
    """Build the contenders, warm them up, then time them alternately; returns a JSON-able dict."""
    torch.manual_seed(0)
    contenders = build_contenders(setting)
    work = {c.name: Workload(c, setting) for c in contenders}
    for w in work.values():  # warm-up: allocator, AdamW state, oneDNN kernel selection
        time_call(w.train_step, 2)
        time_call(w.forward, 2)
    train = alternate(
        {n: (lambda w=w: median(time_call(w.train_step, train_steps, clock))) for n, w in work.items()},
        rounds,
    )
    sample = alternate(
        {n: (lambda w=w: median(time_call(w.forward, forwards, clock))) for n, w in work.items()}, rounds
    )
    out: dict[str, Any] = {
        "setting": vars(setting)
        | {"channel_mult": list(setting.channel_mult), "attention_levels": list(setting.attention_levels)},
        "contenders": {},
    }
    for c in contenders:
        w = work[c.name]
        entry = {
            "parameters": c.num_parameters,
            "width": c.width,
            "attention": c.attention,
            "train_s": train[c.name],
            "sample_s": sample[c.name],
            "train_peak_bytes": peak_cpu_memory(w.train_step),
            "sample_peak_bytes": peak_cpu_memory(w.forward),
            "state_bytes": 4 * c.num_parameters * 4,  # fp32 weights, grads, AdamW's two moments
        }
        out["contenders"][c.name] = entry
        log(
            f"  {setting.name} {c.name:13s} {c.num_parameters:>9,} params  "
            f"train {1e3 * median(train[c.name]):7.1f} ms/step  "
            f"sample {1e3 * median(sample[c.name]):6.1f} ms/forward  "
            f"peak {entry['train_peak_bytes'] / MIB:6.1f} MiB"
        )
    return out


def run(
    settings: list[str], *, rounds: int, train_steps: int, forwards: int, threads: int, clock: str = "wall"
) -> dict[str, Any]:
    torch.set_num_threads(threads)
    state = MachineState.capture()
    print(f"peers: {state.describe()}")
    results = [
        measure_setting(
            SETTINGS[name], rounds=rounds, train_steps=train_steps, forwards=forwards, clock=clock
        )
        for name in settings
    ]
    state.finish()
    versions = {"torch": torch.__version__}
    for module in ("diffusers", "denoising_diffusion_pytorch"):
        try:
            from importlib.metadata import version

            versions[module] = version(module.replace("_", "-"))
        except Exception:  # pragma: no cover - metadata missing
            versions[module] = "?"
    return {
        "machine": state.describe(),
        "threads": threads,
        "clock": clock,
        "rounds": rounds,
        "train_steps_per_round": train_steps,
        "forwards_per_round": forwards,
        "versions": versions,
        "settings": results,
    }


def render(results: dict[str, Any], findings: str = "") -> str:
    """The Markdown body of the docs section from :func:`run`'s results."""
    v = results["versions"]
    parts = [
        f"polydiff's `UNet` against diffusers {v['diffusers']} `UNet2DModel` and denoising-diffusion-pytorch "
        f'{v["denoising_diffusion_pytorch"]} `Unet` ("ddpm-pytorch"), unconditional, 3 channels, same '
        "inputs, "
        "matched parameter counts (within 5%), in one process. Training step = forward + MSE + backward + "
        "AdamW step; sampling = one forward pass in `no_grad` at the same batch. Contenders alternate "
        f"(ABC, BCA, CAB, ...) for {results['rounds']} rounds of {results['train_steps_per_round']} training "
        f"steps / {results['forwards_per_round']} forwards; each round's median counts once and the table "
        "gives the median over rounds (spread = (max - min) / median over rounds). Ratios are polydiff's "
        "throughput over the peer's (> 1: polydiff is faster). Peak memory = tensor bytes allocated during "
        "one step above what existed before it (activations, gradients, temporaries; not the weights and "
        "AdamW state, which are 16 bytes per parameter), from `torch.profiler`'s memory events.",
        "",
        f"Machine: {results['machine']}. Clock: "
        + (
            "wall time."
            if results.get("clock", "wall") == "wall"
            else "process CPU time (robust to other processes' load, measures cost rather than latency)."
        ),
        "",
        f"Reproduce: `pip install -e '.[bench]' && {results.get('command', 'python bench/peers.py')}`.",
    ]
    for s in results["settings"]:
        setting, cs = s["setting"], s["contenders"]
        ref_train = median(cs["diffusers"]["train_s"])
        ref_sample = median(cs["diffusers"]["sample_s"])
        rows = []
        for name in NAMES:
            c = cs[name]
            tr, sa = median(c["train_s"]), median(c["sample_s"])
            rows.append(
                [
                    name,
                    f"{c['parameters']:,}",
                    f"{1e3 * tr:.0f} ({spread(c['train_s']):.0%})",
                    f"{setting['batch'] / tr:.0f}",
                    f"{ref_train / tr:.2f}x",
                    f"{1e3 * sa:.1f} ({spread(c['sample_s']):.0%})",
                    f"{1 / sa:.1f}",
                    f"{ref_sample / sa:.2f}x",
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
                    "vs diffusers",
                    "forward ms (spread)",
                    "forwards/s",
                    "vs diffusers",
                    "train peak MiB",
                    "forward peak MiB",
                ],
                rows,
            ),
            "",
            "Architectures: "
            + "; ".join(f"**{name}** width {cs[name]['width']}, {cs[name]['attention']}" for name in NAMES)
            + ".",
        ]
    if findings.strip():
        parts += ["", findings.strip()]
    return "\n".join(parts)


def _command(argv: list[str]) -> str:
    """The command line that reproduces a run, without ``--out PATH``."""
    kept = [a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out")]
    return " ".join(["python bench/peers.py", *kept])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--rounds", type=int, default=7, help="alternating rounds (medians over rounds)")
    p.add_argument("--train-steps", type=int, default=3, help="timed training steps per contender and round")
    p.add_argument("--forwards", type=int, default=5, help="timed forwards per contender and round")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
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
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    p.add_argument("--write-docs", action="store_true", help=f"rewrite '{SECTION}' in docs/benchmarks.md")
    p.add_argument("--from-json", action="store_true", help="render --out into the docs without measuring")
    args = p.parse_args(argv)
    if args.from_json:
        results = json.loads(args.out.read_text())
    else:
        if args.max_load is not None:
            wait_for_low_load(args.max_load, timeout_s=args.wait)
        results = run(
            args.settings,
            rounds=args.rounds,
            train_steps=args.train_steps,
            forwards=args.forwards,
            threads=args.threads,
            clock=args.clock,
        )
        results["command"] = _command(argv if argv is not None else sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"results in {args.out}")
    findings = FINDINGS.read_text() if FINDINGS.exists() else ""
    text = render(results, findings)
    if args.write_docs:
        replace_section(BENCHMARKS_PAGE, SECTION, text)
        print(f"wrote '{SECTION}' in {BENCHMARKS_PAGE}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
