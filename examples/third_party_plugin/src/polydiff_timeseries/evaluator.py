"""The ``timeseries-stats`` evaluator: does each generated signal match its prompt?"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from polydiff import Evaluator
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


class TimeseriesStatsEvaluator(Evaluator):
    """Generates ``num_per_prompt`` signals per caption and scores them with :func:`score_signals`.

    Args:
        prompts: Captions to generate (default: all six classes of ``sines``).
        writer_options: Options of the :class:`~polydiff_timeseries.writer.TimeseriesPngWriter`
            that draws ``samples.png`` next to ``metrics.json``.
        own_data: Options of the core's own-data judges, which score runs on any dataset other
            than ``sines`` (their captions are not the six classes these checks know).
    """

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

    def evaluate(
        self,
        pipeline: Any,
        out_dir: Path,
        *,
        num_per_prompt: int = 4,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 3.0,
        seed: int = 0,
    ) -> dict[str, Any]:
        from polydiff_timeseries.writer import TimeseriesPngWriter

        config = getattr(pipeline, "config", None)
        if config is not None and config.dataset.name != "sines":
            # the judge depends on the run's dataset: other data is judged by its own real items
            from polydiff.evaluation.evaluator import OwnDataEvaluator

            return OwnDataEvaluator(**self.own_data).evaluate(
                pipeline,
                out_dir,
                num_per_prompt=num_per_prompt,
                sampler=sampler,
                steps=steps,
                guidance=guidance,
                seed=seed,
            )
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        output = pipeline(
            self.prompts,
            num_per_prompt=num_per_prompt,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            seed=seed,
        )
        prompts = list(output.prompts)
        metrics = score_signals(output.samples, prompts)
        metrics.update(sampler=sampler, steps=steps, guidance=guidance, seed=seed)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        TimeseriesPngWriter(**self.writer_options).write_samples(
            output.samples, prompts, out_dir / "samples.png"
        )
        return metrics
