"""``video-motion`` evaluator: generate clips for seen and held-out prompts and score them.

Scores (see :mod:`polydiff_video.evaluation.checks`): motion-direction accuracy from the
object's centroid track, colour accuracy, area stability (coefficient of variation) and
temporal consistency (smooth centroid track; mean frame-to-frame change compared with real
clips of the same prompts). Real clips from the dataset's ``eval`` split are scored by the
same checkers as a reference, so every number has its ceiling next to it.

These checks need the ``moving-shapes`` captions; a run on any other dataset (``video-folder``) is
judged by its own real clips instead (:class:`~polydiff_video.evaluation.own_data.VideoOwnDataEvaluator`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.evaluation.base import CheckerEvaluator, Plan
from polydiff.evaluation.evaluator import own_data_options
from polydiff.interfaces import DiffusionDataset, Evaluator
from polydiff_video.evaluation.checks import DEFAULT_CHECKS, CheckerConfig, ClipScore, score_clip, summarise
from polydiff_video.evaluation.own_data import MOTION_DATASETS, VideoOwnDataEvaluator
from polydiff_video.writers.gif import GifWriter

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline


def evaluate_clips(
    clips: Tensor,
    prompts: Sequence[str],
    *,
    held_out: Iterable[str] = (),
    reference: Mapping[str, Sequence[Tensor]] | None = None,
    config: CheckerConfig = DEFAULT_CHECKS,
) -> dict[str, Any]:
    """Score ``clips: [N, 3, T, H, W]`` (data space) against their ``prompts`` (N of them).

    Returns ``{"seen", "held_out", "all"}`` summaries, ``"per_prompt"`` rows, and with
    ``reference`` (real clips per prompt) ``"reference"`` summaries of the real clips plus
    ``"frame_change_ratio"`` (generated / real mean frame change, 1 = as much change as real).
    """
    if len(clips) != len(prompts):
        raise ValueError(f"got {len(clips)} clips but {len(prompts)} prompts")
    held = set(held_out)
    scores = [score_clip(c, p, config) for c, p in zip(clips, prompts)]
    result: dict[str, Any] = _by_split(scores, held)
    result["per_prompt"] = [
        {
            "prompt": p,
            "split": "held_out" if p in held else "seen",
            **summarise([s for s in scores if s.prompt == p]),
        }
        for p in dict.fromkeys(prompts)
    ]
    if reference:
        real = [score_clip(c, p, config) for p in dict.fromkeys(prompts) for c in reference.get(p, [])]
        if real:
            result["reference"] = _by_split(real, held)
            gen_change, real_change = (
                result["all"]["frame_change_mean"],
                result["reference"]["all"]["frame_change_mean"],
            )
            if gen_change is not None and real_change:
                result["frame_change_ratio"] = gen_change / real_change
    return result


def _by_split(scores: list[ClipScore], held: set[str]) -> dict[str, Any]:
    out = {
        "seen": summarise([s for s in scores if s.prompt not in held]),
        "held_out": summarise([s for s in scores if s.prompt in held]),
        "all": summarise(scores),
    }
    return out


def reference_clips(
    dataset: DiffusionDataset, prompts: Iterable[str], per_prompt: int
) -> dict[str, list[Tensor]]:
    """Up to ``per_prompt`` real clips ``[3, T, H, W]`` per prompt, found by caption in ``dataset``."""
    wanted = {p: [] for p in prompts}
    for i in range(len(dataset)):
        item = dataset[i]
        bucket = wanted.get(item.get("text", ""))
        if bucket is not None and len(bucket) < per_prompt:
            bucket.append(item["x"])
        if all(len(b) >= per_prompt for b in wanted.values()):
            break
    return {p: clips for p, clips in wanted.items() if clips}


class VideoMotionEvaluator(CheckerEvaluator):
    """Generates ``num_per_prompt`` clips per prompt and scores them (see module docstring); the
    flow is the core's :class:`~polydiff.evaluation.base.CheckerEvaluator`.

    Args:
        prompts: Prompts to score (default: the eval dataset's ``seen_prompts`` and
            ``held_out_prompts``, else its ``eval_prompts``).
        held_out: Which of ``prompts`` are held out (default: the dataset's ``held_out_prompts``).
        write_clips: Also write contact sheets and one GIF per prompt to ``out_dir``.
        own_data: Options of the own-data judges used for datasets other than ``moving-shapes``
            (see :class:`~polydiff.evaluation.evaluator.OwnDataEvaluator`; its option names may
            also be given directly, e.g. ``classifier_steps``).
        checker options: Fields of :class:`CheckerConfig` (``threshold``, ``max_jerk``, ...).
    """

    name = "video-motion"
    datasets = MOTION_DATASETS
    own_data_noun = "clips"
    timed = False

    def __init__(
        self,
        prompts: Sequence[str] | None = None,
        held_out: Sequence[str] | None = None,
        write_clips: bool = True,
        fps: float = 8.0,
        own_data: dict[str, Any] | None = None,
        **checker_options: Any,
    ) -> None:
        flat, checker_options = own_data_options(checker_options)
        self.own_data = {**(own_data or {}), **flat}
        self.prompts = list(prompts) if prompts is not None else None
        self.held_out = list(held_out) if held_out is not None else None
        self.write_clips = write_clips
        self.fps = fps
        try:
            self.checks = CheckerConfig(**checker_options)
        except TypeError as exc:
            raise ConfigError(
                f"video-motion evaluator: {exc}; options are the fields of CheckerConfig "
                f"(threshold, min_area, min_step, agreement, max_area_cv, max_jerk)."
            ) from exc

    def handles(self, pipeline: DiffusionPipeline) -> bool:
        return self.prompts is not None or super().handles(pipeline)

    def fallback(self, pipeline: DiffusionPipeline) -> Evaluator:
        try:
            return VideoOwnDataEvaluator(**self.own_data)
        except TypeError as exc:
            raise ConfigError(f"video-motion option 'own_data': {exc}") from exc

    def plan(self, pipeline: DiffusionPipeline) -> Plan:
        cfg = pipeline.config
        eval_set = pipeline.registry.build("dataset", cfg.dataset.name, split="eval", **cfg.dataset.options)
        seen, held = self._prompts(eval_set)
        return Plan(seen + held, {"eval_set": eval_set, "held": held})

    def header(
        self, pipeline: DiffusionPipeline, num_per_prompt: int, sampling: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "evaluator": self.name,
            "checkpoint": str(getattr(pipeline, "checkpoint_path", "")),
            "settings": {"num_per_prompt": num_per_prompt, **sampling},
            "checks": vars(self.checks),
        }

    def score(self, pipeline: DiffusionPipeline, out: Any, plan: Plan) -> dict[str, Any]:
        return evaluate_clips(
            out.samples,
            out.prompts,
            held_out=plan.context["held"],
            reference=reference_clips(plan.context["eval_set"], plan.prompts, plan.num_per_prompt),
            config=self.checks,
        )

    def picture(
        self, pipeline: DiffusionPipeline, out: Any, plan: Plan, metrics: dict[str, Any], out_dir: Path
    ) -> None:
        """Contact sheets and one GIF per prompt, seen and held-out apart (with ``write_clips``)."""
        if self.write_clips:
            self._write(out.samples, out.prompts, plan.context["held"], out_dir, plan.num_per_prompt)

    def _prompts(self, dataset: DiffusionDataset) -> tuple[list[str], list[str]]:
        held = list(self.held_out if self.held_out is not None else getattr(dataset, "held_out_prompts", []))
        if self.prompts is not None:
            return [p for p in self.prompts if p not in held], [p for p in self.prompts if p in held]
        seen = getattr(dataset, "seen_prompts", None)
        if seen is None:
            seen = [p for p in getattr(dataset, "eval_prompts", []) if p not in held]
            if not seen and not held:
                raise ConfigError(
                    "video-motion evaluator: the dataset has no eval_prompts; pass prompts=[...]."
                )
        return list(seen), held

    def _write(
        self, samples: Tensor, prompts: list[str], held: list[str], out_dir: Path, per_prompt: int
    ) -> None:
        writer = GifWriter(fps=self.fps)
        for split, keep in (("seen", lambda p: p not in held), ("held_out", lambda p: p in held)):
            index = [i for i, p in enumerate(prompts) if keep(p)]
            if not index:
                continue
            picked = torch.stack([samples[i] for i in index])
            names = [prompts[i] for i in index]
            writer.write_sheet(picked, names, out_dir / f"samples_{split}.png")
            writer.write_gifs(picked[::per_prompt], out_dir / f"samples_{split}")
