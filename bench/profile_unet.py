"""Where a training step's time goes: ``torch.profiler`` tables for the contenders of ``bench/peers.py``.

Usage::

    python bench/profile_unet.py                                  # polydiff and diffusers, 16x16-b64
    python bench/profile_unet.py --setting 32x32-b32 --models polydiff ddpm-pytorch --row-limit 30
    python bench/profile_unet.py --by-module                      # time per module type instead of per op

``--by-module`` attributes forward time to module classes (GroupNorm, Conv2d, attention blocks, ...)
through forward hooks, inclusive of submodules, which shows *which layers* cost what rather than
which kernels (use ``--threads 1 --clock cpu`` on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CLOCKS, time_call  # noqa: E402
from peer_models import NAMES, SETTINGS, build_contenders  # noqa: E402
from peers import Workload  # noqa: E402


@contextmanager
def module_timer(model: nn.Module, clock: str = "wall") -> Iterator[dict[str, float]]:
    """Accumulate inclusive forward seconds (on ``clock``) per module class of ``model`` while the block runs.

    Inclusive: a class's time contains its submodules' (so the shares add up to more than 100%);
    ``model``'s own class holds the total.
    """
    now = CLOCKS[clock]
    totals: dict[str, float] = defaultdict(float)
    starts: dict[int, float] = {}
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(lambda m, _: starts.__setitem__(id(m), now())))
        handles.append(
            module.register_forward_hook(
                lambda m, _i, _o: totals.__setitem__(
                    type(m).__name__, totals[type(m).__name__] + now() - starts[id(m)]
                )
            )
        )
    try:
        yield totals
    finally:
        for h in handles:
            h.remove()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", default="16x16-b64", choices=list(SETTINGS))
    p.add_argument("--models", nargs="+", default=["polydiff", "diffusers"], choices=list(NAMES))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--steps", type=int, default=3, help="profiled training steps")
    p.add_argument("--row-limit", type=int, default=20)
    p.add_argument("--by-module", action="store_true", help="forward time per leaf module class")
    p.add_argument("--clock", choices=list(CLOCKS), default="wall", help="--by-module's clock")
    p.add_argument(
        "--sampling", action="store_true", help="profile no_grad forwards instead of training steps"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    setting = SETTINGS[args.setting]
    for contender in build_contenders(setting):
        if contender.name not in args.models:
            continue
        work = Workload(contender, setting)
        step = work.forward if args.sampling else work.train_step
        time_call(step, 2)
        print(
            f"\n=== {contender.name}: {contender.num_parameters:,} parameters, {args.setting}, "
            f"{'forward' if args.sampling else 'training step'} x {args.steps}"
        )
        if args.by_module:
            with module_timer(contender.model, args.clock) as totals:
                time_call(step, args.steps)
            total = totals[type(contender.model).__name__]
            for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[: args.row_limit]:
                print(f"  {name:28s} {1e3 * seconds / args.steps:8.1f} ms  {seconds / total:6.1%}")
            continue
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            time_call(step, args.steps)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.row_limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
