"""Guided text-conditional sampling with and without the UNet's cached context keys and values.

``UNet.prepare_context`` projects the text context to every cross-attention's keys and values once
per sampling call; without it, each of the ``steps`` forwards projects it again in every block.
Both variants sample the same prompts from the same noise in one process, alternately (AB, BA, ...),
with classifier-free guidance in one forward of batch ``2B`` (:func:`polydiff.samplers.cfg_model_fn`).
The uncached variant calls the same network through a wrapper without ``prepare_context``.

Usage::

    python bench/context_cache.py                            # both settings, 5 rounds, wall clock
    python bench/context_cache.py --threads 1 --clock cpu    # process CPU time (busy machine)
    python bench/context_cache.py --write-docs               # the section in docs/research/speed.md
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

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
    spread,
    time_call,
)

from polydiff.diffusion import DiffusionConfig, GaussianDiffusion  # noqa: E402
from polydiff.interfaces import Conditioning  # noqa: E402
from polydiff.nn import UNet, UNetConfig  # noqa: E402
from polydiff.samplers import DDIMSampler, cfg_model_fn  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "context_cache.json"
SECTION = "## Cached context keys and values (CPU)"
VARIANTS = ("cached", "uncached")
CLOCK_WORDS = {"wall": "wall time", "cpu": "process CPU time"}


@dataclass(frozen=True)
class Setting:
    """A text-conditional UNet of the image plugin's presets, and what is sampled with it."""

    name: str
    size: int
    batch: int  # prompts per sampling call (the guided forward has 2x this batch)
    tokens: int  # context length of the prompts (the null prompt is one token)
    context_dim: int
    model_channels: int
    channel_mult: tuple[int, ...]
    attention_levels: tuple[int, ...]
    coord_channels: bool = False
    steps: int = 25
    guidance: float = 3.0

    def unet(self) -> UNet:
        return UNet(
            UNetConfig(
                dims=2,
                in_channels=3,
                model_channels=self.model_channels,
                channel_mult=self.channel_mult,
                num_res_blocks=1,
                attention_levels=self.attention_levels,
                head_dim=32,
                norm_groups=8,
                context_dim=self.context_dim,
                coord_channels=self.coord_channels,
            )
        )


#: The image plugin's ``quick`` and ``full`` UNets with their text encoders' widths (64, 96),
#: 25 DDIM steps at guidance 3 as in ``quick``'s sampling (``full`` samples 50).
SETTINGS = {
    s.name: s
    for s in (
        Setting("quick-16x16-b16", 16, 16, 8, 64, 24, (1, 2), (1,)),
        Setting("full-32x32-b8", 32, 8, 8, 96, 48, (1, 2, 2), (1, 2), coord_channels=True),
    )
}


def perturb_(model: torch.nn.Module, seed: int = 0) -> None:
    """Give the zero-initialised output layers weights, so every block shapes the samples."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))


def measure(setting: Setting, rounds: int, clock: str) -> dict[str, Any]:
    torch.manual_seed(0)
    unet = setting.unet().eval()
    perturb_(unet)
    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(2, setting.tokens + 1, (setting.batch,), generator=gen)
    cond = Conditioning(
        context=torch.randn(setting.batch, setting.tokens, setting.context_dim, generator=gen),
        context_mask=torch.arange(setting.tokens)[None, :] < lengths[:, None],
    )
    uncond = Conditioning(context=torch.randn(1, 1, setting.context_dim, generator=gen))
    sampler = DDIMSampler(
        GaussianDiffusion(DiffusionConfig(prediction="v", schedule="cosine")),
        setting.steps,
        spacing="trailing",
    )
    shape = (setting.batch, 3, setting.size, setting.size)
    networks = {"cached": unet, "uncached": lambda *a, **kw: unet(*a, **kw)}  # no prepare_context
    samples: dict[str, torch.Tensor] = {}

    def sample(name: str) -> None:
        fn = cfg_model_fn(networks[name], cond, uncond, setting.guidance)
        with torch.no_grad():
            samples[name] = sampler.sample(fn, shape, generator=torch.Generator().manual_seed(2))

    for name in VARIANTS:  # warm-up
        sample(name)
    times = alternate({n: (lambda n=n: time_call(lambda: sample(n), 1, clock)[0]) for n in VARIANTS}, rounds)
    diff = (samples["cached"] - samples["uncached"]).abs().max().item()
    out = {
        "setting": asdict(setting),
        "parameters": unet.num_parameters(),
        "seconds": times,
        "median_s": {n: median(v) for n, v in times.items()},
        "spread": {n: spread(v) for n, v in times.items()},
        "max_abs_difference": diff,
    }
    out["speedup"] = out["median_s"]["uncached"] / out["median_s"]["cached"]
    return out


def render(data: dict[str, Any]) -> str:
    rows = []
    for r in data["results"]:
        s = r["setting"]
        rows.append(
            [
                f"`{s['name']}`: {s['size']}x{s['size']}, {s['batch']} prompts of {s['tokens']} tokens "
                f"(context width {s['context_dim']}), {r['parameters']:,} parameters",
                f"{r['median_s']['uncached']:.2f} ({r['spread']['uncached']:.0%})",
                f"{r['median_s']['cached']:.2f} ({r['spread']['cached']:.0%})",
                f"{r['speedup']:.2f}x",
                f"{r['max_abs_difference']:.1e}",
            ]
        )
    table = markdown_table(
        ["setting", "uncached s/call (spread)", "cached s/call (spread)", "speedup", "max abs difference"],
        rows,
    )
    first = data["results"][0]["setting"]
    return (
        f"One sampling call = {first['steps']} DDIM steps (trailing spacing, v-prediction) with "
        f"classifier-free guidance at {first['guidance']} in one forward of twice the batch; "
        "the null prompt is one token, padded and masked to the prompts' length. *cached*: the "
        "UNet gets `prepare_context(context)` (every cross-attention's keys and values made once "
        "per call); *uncached*: the same network through a wrapper without `prepare_context` (each "
        "step projects the context in every block). Same prompts and noise; the variants alternate "
        f"for {data['rounds']} rounds, median reported. The difference column is the largest absolute "
        "difference between the two variants' samples.\n\n"
        f"Machine: {data['machine']}. Clock: {CLOCK_WORDS[data['clock']]}.\n\n"
        f"Reproduce: `python bench/context_cache.py {data['command']}`.\n\n" + table + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--from-json", action="store_true", help="render --out into the docs")
    args = parser.parse_args(argv)
    if args.from_json:
        data = json.loads(args.out.read_text())
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        machine = MachineState.capture()
        results = []
        for name in args.settings:
            r = measure(SETTINGS[name], args.rounds, args.clock)
            print(
                f"{name}: uncached {r['median_s']['uncached']:.3f} s, "
                f"cached {r['median_s']['cached']:.3f} s, {r['speedup']:.2f}x, "
                f"max abs difference {r['max_abs_difference']:.1e}"
            )
            results.append(r)
        machine.finish()
        command = " ".join(a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-docs")
        data = {
            "machine": machine.describe(),
            "clock": args.clock,
            "rounds": args.rounds,
            "command": command,
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(render(data))
    if args.write_docs:
        replace_section(SPEED_PAGE, SECTION, render(data))


if __name__ == "__main__":
    main()
