"""``own-data``: ``polydiff evaluate`` for a run trained on any dataset, judged by its own real data.

Modalities specialise it (how an item becomes a fixed-shape tensor, how it is drawn); it is also
the evaluator of a modality that registers none.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.evaluation.judge import OwnDataJudge, RealItems, split_items
from polydiff.evaluation.report import grey_image, pairs_picture, write_report
from polydiff.interfaces import Evaluator

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline


def own_data_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into those of :class:`OwnDataEvaluator` and the rest (so a modality's
    evaluator can take both flat, as ``polydiff evaluate --option KEY=VALUE`` passes them)."""
    names = set(inspect.signature(OwnDataEvaluator.__init__).parameters) - {"self"}
    return {k: v for k, v in options.items() if k in names}, {
        k: v for k, v in options.items() if k not in names
    }


class OwnDataEvaluator(Evaluator):
    """Generates for captions of real held-out items and scores the samples with an
    :class:`~polydiff.evaluation.judge.OwnDataJudge` fitted on the real training items.

    The judges use the dataset's ``eval`` split as held-out data when it differs from ``train``;
    when both splits are the same items (a plain folder), a seeded ``held_out`` share is set aside
    for them instead (the generator may have seen those items; the judges have not).

    Args:
        max_prompts: Distinct held-out captions to generate for (unconditional: prompts).
        held_out: Share of the items held out when the dataset has no separate eval split.
        max_items: Use at most this many real items per split (seeded choice; 0 = all).
        classifier_steps, classifier_width, shift: Training of the caption classifier.
        pairs: Closest sample / training-item pairs drawn in ``closest_pairs.png``.
        write_samples: How many samples to write with the run's writer (0 = none).
        seed: Seeds the split and the classifier (not the generation).
    """

    name = "own-data"

    def __init__(
        self,
        max_prompts: int = 16,
        held_out: float = 0.2,
        max_items: int = 2000,
        classifier_steps: int = 400,
        classifier_width: int = 24,
        shift: int = 1,
        pairs: int = 8,
        write_samples: int = 16,
        seed: int = 0,
    ) -> None:
        if not 0 < held_out < 1:
            raise ConfigError(f"own-data evaluator option 'held_out' must be in (0, 1), not {held_out}")
        self.max_prompts, self.held_out, self.max_items = max_prompts, held_out, max_items
        self.classifier_steps, self.classifier_width, self.shift = classifier_steps, classifier_width, shift
        self.pairs, self.write_samples, self.seed = pairs, write_samples, seed

    # ------------------------------------------------------------ what modalities specialise
    def item_tensor(self, x: Tensor, length: int | None = None) -> Tensor:
        """One item (real or generated, ``length`` its valid extent if padded) -> fixed-shape float."""
        return x.detach().float().cpu()

    def to_image(self, x: Tensor) -> Tensor:
        """An item tensor -> uint8 ``[3, H, W]`` for the pictures (default by rank)."""
        x = x.detach().float().cpu()
        if x.ndim == 3 and x.shape[0] in (1, 3):  # an image in [0, 255]
            return x.expand(3, -1, -1).clamp(0, 255).round().to(torch.uint8)
        if x.ndim == 4 and x.shape[0] in (1, 3):  # a clip [C, T, H, W]: its frames side by side
            return torch.cat(list(x.expand(3, -1, -1, -1).unbind(1)), dim=-1).clamp(0, 255).to(torch.uint8)
        return grey_image(x.reshape(-1, x.shape[-1]))

    def notes(self) -> list[str]:
        """Sentences for the report about what these judges cannot say."""
        return []

    # ------------------------------------------------------------ the evaluation
    def real_items(self, pipeline: DiffusionPipeline) -> tuple[RealItems, RealItems, str]:
        """``(train, held_out, how)``: the run's real data for the judges."""
        cfg = pipeline.config
        build = pipeline.registry.build
        from polydiff.builder import conform_dataset

        datasets = [
            build("dataset", cfg.dataset.name, split=s, **cfg.dataset.options) for s in ("train", "eval")
        ]
        for ds in datasets:
            conform_dataset(ds, getattr(cfg, "data_shape", None))
        train, evals = (self._items(ds) for ds in datasets)
        # eval items that are also training items (same name and data) are not held out
        by_name = dict(zip(train.names, train.x))
        fresh = [
            i
            for i, (name, x) in enumerate(zip(evals.names, evals.x))
            if name not in by_name or not torch.equal(x, by_name[name])
        ]
        if len(fresh) < 2:
            train, held = split_items(train, self.held_out, self.seed)
            return train, held, f"no separate eval split: {len(held)} of the items held out for the judges"
        if len(fresh) < len(evals):
            return (
                train,
                evals.subset(fresh),
                f"the {len(fresh)} items of the eval split that are not in train",
            )
        return train, evals, "the dataset's eval split"

    def item_indices(self, count: int) -> list[int]:
        """Which of ``count`` items the judges use: all, or a seeded ``max_items`` of them."""
        if self.max_items and count > self.max_items:
            gen = torch.Generator().manual_seed(self.seed)
            return sorted(torch.randperm(count, generator=gen)[: self.max_items].tolist())
        return list(range(count))

    def _items(self, dataset: Any) -> RealItems:
        index = self.item_indices(len(dataset))
        xs, captions, names = [], [], []
        for i in index:
            item = dataset[i]
            xs.append(self.item_tensor(item["x"]))
            captions.append(str(item.get("text", "")))
            names.append(str(item.get("file", item.get("id", i))))
        return RealItems(torch.stack(xs), captions, names)

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
        out_dir = Path(out_dir)
        start = time.perf_counter()
        train, held, how = self.real_items(pipeline)
        judge = OwnDataJudge(
            train,
            held,
            steps=self.classifier_steps,
            width=self.classifier_width,
            shift=self.shift,
            seed=self.seed,
            device=getattr(pipeline, "device", "cpu"),
        )
        prompts = judge.prompts(self.max_prompts)
        if not prompts:
            raise ConfigError(
                "own-data evaluator: no held-out caption is one the classifier knows; hold out more "
                "items (option held_out) or add items per caption"
            )
        if not judge.conditional:  # empty prompts: half as many, each num_per_prompt times
            prompts = prompts[: max(1, self.max_prompts // 2)]
        sampling = {"sampler": sampler, "steps": steps, "guidance": guidance, "seed": seed}
        out = pipeline(prompts, num_per_prompt=num_per_prompt, **sampling)
        metrics, samples = self.score(judge, out)
        metrics = {
            "evaluator": self.name,
            "dataset": pipeline.config.dataset.name,
            "held_out": how,
            "num_per_prompt": num_per_prompt,
            **sampling,
            **metrics,
            "seconds": round(time.perf_counter() - start, 1),
        }
        self.pictures(judge, samples, list(out.prompts), metrics.get("_pairs", []), out_dir)
        if self.write_samples:
            keep = slice(0, self.write_samples)
            writer = pipeline.writer()
            lengths = getattr(out, "lengths", None)
            path = out_dir / f"samples{getattr(writer, 'extension', '')}"
            kwargs = {"lengths": lengths[keep]} if lengths else {}
            writer.write_samples(out.samples[keep], list(out.prompts)[keep], path, **kwargs)
        notes = self.notes()
        if not judge.conditional:
            notes.append(
                "the data is unconditional (no captions, or none the classifier could learn): "
                "no caption accuracy; the Frechet distance uses the features of a flip classifier"
            )
        return write_report(metrics, out_dir, notes)

    def score(self, judge: OwnDataJudge, out: Any) -> tuple[dict[str, Any], Tensor]:
        """The judges' metrics of a pipeline output, and the samples as item tensors."""
        lengths = getattr(out, "lengths", None) or [None] * len(out.samples)
        samples = torch.stack([self.item_tensor(x, n) for x, n in zip(out.samples, lengths)])
        return judge.score(samples, list(out.prompts), pairs=self.pairs), samples

    def pictures(
        self,
        judge: OwnDataJudge,
        samples: Tensor,
        prompts: list[str],
        pairs: list[tuple[int, int, float]],
        out_dir: Path,
    ) -> None:
        """``closest_pairs.png``: each of the closest samples next to its nearest training item."""
        if not pairs:
            return
        rows = [
            (samples[s], judge.train.x[t], f"{prompts[s] or 'sample'} | {judge.train.names[t]}  d={d:.3f}")
            for s, t, d in pairs
        ]
        pairs_picture(rows, self.to_image, out_dir / "closest_pairs.png")
