"""The ``timeseries-stats`` evaluator: does each generated signal match its prompt?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from polydiff.evaluation.base import CheckerEvaluator, Plan
from polydiff_timeseries.analysis import classify, signal_stats
from polydiff_timeseries.waveforms import CAPTIONS, CYCLES, waveform_for


def score_signals(x: Tensor | np.ndarray, prompts: Sequence[str]) -> dict[str, Any]:
    """Judge signals ``x: [N, C, L]`` against the ``N`` prompts they were made for.

    Each signal is classified by :func:`polydiff_timeseries.analysis.classify` (FFT peak,
    trend, tonality, fullness: nothing from the generator). Returns:

    * ``caption_accuracy``: share classified as exactly their prompt.
    * ``shape_accuracy``: share with the prompt's shape (sine / square / ramp).
    * ``speed_accuracy``: over periodic prompts, share whose strongest frequency lies in the
      prompt's speed band (slow or fast).
    * ``per_prompt``: per prompt, ``accuracy``, ``count``, ``mean_cycles``.
    """
    signals = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    if signals.ndim != 3 or len(signals) != len(prompts):
        raise ValueError(
            f"timeseries-stats: expected x [N, C, L] and N prompts, "
            f"got shape {signals.shape} and {len(prompts)} prompts"
        )
    exact, shape_ok, speed_ok = [], [], []
    per_prompt: dict[str, dict[str, Any]] = {}
    for signal, prompt in zip(signals, prompts):
        wanted = waveform_for(prompt)
        got = classify(signal)
        cycles = signal_stats(signal).dominant_cycles
        exact.append(got == wanted)
        shape_ok.append(got is not None and got.shape == wanted.shape)
        if wanted.periodic:
            low, high = CYCLES[wanted.variant]
            speed_ok.append(low - 0.5 <= cycles <= high + 0.5)
        entry = per_prompt.setdefault(wanted.caption, {"hits": 0, "count": 0, "cycles": []})
        entry["hits"] += int(got == wanted)
        entry["count"] += 1
        entry["cycles"].append(cycles)
    return {
        "num_samples": len(prompts),
        "caption_accuracy": float(np.mean(exact)),
        "shape_accuracy": float(np.mean(shape_ok)),
        "speed_accuracy": float(np.mean(speed_ok)) if speed_ok else None,
        "per_prompt": {
            caption: {
                "accuracy": entry["hits"] / entry["count"],
                "count": entry["count"],
                "mean_cycles": float(np.mean(entry["cycles"])),
            }
            for caption, entry in per_prompt.items()
        },
    }


class TimeseriesStatsEvaluator(CheckerEvaluator):
    """Generates ``num_per_prompt`` signals per caption and scores them with :func:`score_signals`.

    The core's :class:`~polydiff.evaluation.base.CheckerEvaluator` runs the flow (generate, score,
    ``metrics.json``, picture) and hands runs on other datasets to its own-data judges; this class
    only says what to generate, how to score it and how to draw it.

    Args:
        prompts: Captions to generate (default: all six classes of ``sines``).
        writer_options: Options of the :class:`~polydiff_timeseries.writer.TimeseriesPngWriter`
            that draws ``samples.png`` next to ``metrics.json``.
        own_data: Options of the core's own-data judges, which score runs on any dataset other
            than ``sines`` (their captions are not the six classes these checks know).
    """

    name = "timeseries-stats"
    datasets = ("sines",)
    timed = False
    refuse_own_data = False

    def __init__(
        self,
        *,
        prompts: Sequence[str] | None = None,
        writer_options: dict[str, Any] | None = None,
        own_data: dict[str, Any] | None = None,
    ):
        self.prompts = list(prompts) if prompts is not None else list(CAPTIONS)
        for prompt in self.prompts:
            waveform_for(prompt)  # fail early on a prompt the checks cannot judge
        self.writer_options = dict(writer_options or {})
        self.own_data = dict(own_data or {})

    def plan(self, pipeline: Any) -> Plan:
        return Plan(list(self.prompts))

    def header(self, pipeline: Any, num_per_prompt: int, sampling: dict[str, Any]) -> dict[str, Any]:
        return dict(sampling)

    def score(self, pipeline: Any, out: Any, plan: Plan) -> dict[str, Any]:
        return score_signals(out.samples, list(out.prompts))

    def picture(self, pipeline: Any, out: Any, plan: Plan, metrics: dict[str, Any], out_dir: Path) -> None:
        from polydiff_timeseries.writer import TimeseriesPngWriter

        TimeseriesPngWriter(**self.writer_options).write_samples(
            out.samples, list(out.prompts), out_dir / "samples.png"
        )
