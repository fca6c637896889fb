"""The flow every checker-based evaluator shares: generate -> score -> ``metrics.json`` -> a picture.

A modality's evaluator subclasses :class:`CheckerEvaluator` and supplies :meth:`~CheckerEvaluator.score`
(usually :meth:`~CheckerEvaluator.plan` too: which prompts, and the checkers ``score`` needs).
Runs on datasets its checks do not know (``datasets``) are handed to the core's own-data judges
(:class:`~polydiff.evaluation.evaluator.OwnDataEvaluator`, or the modality's specialisation of it
from :meth:`~CheckerEvaluator.fallback`), with the options given under ``own_data``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.errors import ConfigError
from polydiff.interfaces import Evaluator

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline, PipelineOutput


@dataclass
class Plan:
    """What to generate, and what scoring it needs.

    Attributes:
        prompts: The prompts, each generated ``num_per_prompt`` times.
        context: Anything :meth:`CheckerEvaluator.score` and ``picture`` need (checkers, held-out prompts).
        pipeline_options: Extra keyword arguments of the pipeline call (e.g. ``temperature``).
        num_per_prompt, sampling: Set by :meth:`CheckerEvaluator.evaluate`: samples per prompt and
            the sampling settings (``sampler``, ``steps``, ``guidance``, ``seed``).
        generation_seconds: Set by :meth:`CheckerEvaluator.evaluate`: wall time of the pipeline call.
    """

    prompts: list[str]
    context: dict[str, Any] = field(default_factory=dict)
    pipeline_options: dict[str, Any] = field(default_factory=dict)
    num_per_prompt: int = 1
    sampling: dict[str, Any] = field(default_factory=dict)
    generation_seconds: float = 0.0


def write_metrics(metrics: dict[str, Any], out_dir: Path) -> Path:
    """``out_dir/metrics.json``, indented, with a final newline (non-JSON values as strings)."""
    path = Path(out_dir) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    return path


def dataset_name(pipeline: Any) -> str | None:
    """The run's dataset name, or None for a stand-in pipeline without a ``config``."""
    config = getattr(pipeline, "config", None)
    return None if config is None else config.dataset.name


class CheckerEvaluator(Evaluator):
    """Generates the :meth:`plan`'s prompts, :meth:`score`s the samples, writes ``metrics.json``
    (:meth:`header` + the scores + ``seconds``) and :meth:`picture`; returns the metrics.

    Subclasses set :attr:`name`, and :attr:`datasets` when their checks only know some datasets;
    ``self.own_data`` holds the options of the own-data judges (given as ``own_data``).
    """

    #: The evaluator's registered name (in metrics and messages).
    name = "evaluator"
    #: Datasets the purpose-made checks know; runs on others go to :meth:`fallback` (None: all).
    datasets: tuple[str, ...] | None = None
    #: What "your own data" is, in the message refusing own-data options (images, clips, ...).
    own_data_noun = "data"
    #: Refuse own-data options for a run the purpose-made checks judge (they would be ignored).
    refuse_own_data = True
    #: Write the evaluation's wall time as ``seconds``.
    timed = True
    #: Samples the default :meth:`picture` writes with the run's writer.
    picture_samples = 16

    own_data: dict[str, Any] = {}

    # ------------------------------------------------------------------ what a modality supplies
    def plan(self, pipeline: DiffusionPipeline) -> Plan:
        """Prompts to generate (default: the eval dataset's ``eval_prompts``)."""
        cfg = pipeline.config
        dataset = pipeline.registry.build("dataset", cfg.dataset.name, split="eval", **cfg.dataset.options)
        prompts = list(getattr(dataset, "eval_prompts", []))
        if not prompts:
            raise ConfigError(f"{self.name} evaluator: the dataset '{cfg.dataset.name}' has no eval_prompts")
        return Plan(prompts)

    def score(self, pipeline: DiffusionPipeline, out: PipelineOutput, plan: Plan) -> dict[str, Any]:
        """The metrics of ``out`` (samples and prompts of the pipeline call)."""
        raise NotImplementedError

    def header(
        self, pipeline: DiffusionPipeline, num_per_prompt: int, sampling: dict[str, Any]
    ) -> dict[str, Any]:
        """The first entries of the metrics: evaluator, dataset and the sampling settings."""
        return {
            "evaluator": self.name,
            "dataset": dataset_name(pipeline),
            "num_per_prompt": num_per_prompt,
            **sampling,
        }

    def picture(
        self,
        pipeline: DiffusionPipeline,
        out: PipelineOutput,
        plan: Plan,
        metrics: dict[str, Any],
        out_dir: Path,
    ) -> None:
        """Default: the first :attr:`picture_samples` samples with the run's writer (``samples.EXT``)."""
        writer = pipeline.writer()
        keep = slice(0, self.picture_samples)
        lengths = getattr(out, "lengths", None)
        kwargs = {"lengths": lengths[keep]} if lengths else {}
        path = out_dir / f"samples{getattr(writer, 'extension', '')}"
        writer.write_samples(out.samples[keep], list(out.prompts)[keep], path, **kwargs)

    def fallback(self, pipeline: DiffusionPipeline) -> Evaluator:
        """The judge of a run on a dataset the checks do not know: the core's own-data judges."""
        from polydiff.evaluation.evaluator import OwnDataEvaluator

        try:
            return OwnDataEvaluator(**self.own_data)
        except TypeError as exc:
            raise ConfigError(f"{self.name} option 'own_data': {exc}") from exc

    def handles(self, pipeline: DiffusionPipeline) -> bool:
        """Whether the purpose-made checks judge this run (else :meth:`fallback` does); a stand-in
        pipeline without a ``config`` (a plain function in tests) is always theirs."""
        name = dataset_name(pipeline)
        return self.datasets is None or name is None or name in self.datasets

    # ------------------------------------------------------------------ the flow
    def evaluate(
        self,
        pipeline: DiffusionPipeline,
        out_dir: Path,
        *,
        num_per_prompt: int = 4,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 3.0,
        seed: int = 0,
    ) -> dict[str, Any]:
        sampling = {"sampler": sampler, "steps": steps, "guidance": guidance, "seed": seed}
        if not self.handles(pipeline):
            return self.fallback(pipeline).evaluate(
                pipeline, out_dir, num_per_prompt=num_per_prompt, **sampling
            )
        if self.own_data and self.refuse_own_data:
            raise ConfigError(
                f"{self.name} options {sorted(self.own_data)} apply to runs on your own "
                f"{self.own_data_noun}; "
                f"this run on '{dataset_name(pipeline)}' is judged by the purpose-made checks, "
                "which take none of them"
            )
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        plan = self.plan(pipeline)
        plan.num_per_prompt, plan.sampling = num_per_prompt, dict(sampling)
        generating = time.perf_counter()
        out = pipeline(plan.prompts, num_per_prompt=num_per_prompt, **sampling, **plan.pipeline_options)
        plan.generation_seconds = time.perf_counter() - generating
        metrics = {**self.header(pipeline, num_per_prompt, sampling), **self.score(pipeline, out, plan)}
        if self.timed:
            metrics["seconds"] = round(time.perf_counter() - start, 1)
        details = metrics.pop("_details", None)
        write_metrics(metrics if details is None else {**metrics, **details}, out_dir)
        self.picture(pipeline, out, plan, metrics, out_dir)
        return metrics
