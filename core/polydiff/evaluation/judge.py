"""The own-data judges together: fitted on real training items, scoring generated samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from polydiff.errors import DataError
from polydiff.evaluation.classifier import CaptionNet, logits_and_features, train_caption_net
from polydiff.evaluation.frechet import frechet_distance
from polydiff.evaluation.memorisation import memorisation_summary, nearest_items
from polydiff.evaluation.targets import CaptionTargets


@dataclass
class RealItems:
    """Real items of one split: ``x [N, C, *S]`` (a fixed item shape, data scale) and captions.

    ``names`` identify the items in reports (file names or ids; default their index)."""

    x: Tensor
    captions: list[str]
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.captions) != len(self.x):
            raise ValueError(f"RealItems: {len(self.x)} items but {len(self.captions)} captions")
        if not self.names:
            self.names = [str(i) for i in range(len(self.x))]

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: Sequence[int]) -> RealItems:
        index = list(index)
        return RealItems(self.x[index], [self.captions[i] for i in index], [self.names[i] for i in index])


def split_items(items: RealItems, held_out: float = 0.2, seed: int = 0) -> tuple[RealItems, RealItems]:
    """A seeded split of one set into (train, held-out) for data that has no separate eval split.

    With a small caption set (at most 50 distinct captions) the split is per caption and leaves
    each caption at least two training items, so the classifier still learns it as a class."""
    if len(items) < 4:
        raise DataError(
            f"only {len(items)} real items: the own-data judges need at least 4 (to hold some out); add data"
        )
    gen = torch.Generator().manual_seed(seed)
    groups: dict[str, list[int]] = {}
    for i, caption in enumerate(items.captions):
        groups.setdefault(caption.strip(), []).append(i)
    held: list[int] = []
    if 1 < len(groups) <= 50:
        for members in groups.values():
            order = [members[j] for j in torch.randperm(len(members), generator=gen).tolist()]
            held += order[: min(round(held_out * len(members)), max(0, len(members) - 2))]
    if len(held) < 2:
        order = torch.randperm(len(items), generator=gen).tolist()
        held = order[: max(2, round(held_out * len(items)))]
    chosen = set(held)
    return items.subset([i for i in range(len(items)) if i not in chosen]), items.subset(sorted(chosen))


class OwnDataJudge:
    """Caption classifier, Frechet distance and memorisation check, built from real data only.

    Args:
        train: Real items the classifier learns from and the memorisation check compares against.
        held_out: Real items neither saw: the ceiling of every number.
        steps, width, shift, seed: Training of the classifier (:func:`train_caption_net`).
        device: Where the classifier trains and runs.
    """

    def __init__(
        self,
        train: RealItems,
        held_out: RealItems,
        *,
        steps: int = 400,
        width: int = 24,
        shift: int = 1,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if train.x.shape[1:] != held_out.x.shape[1:]:
            raise ValueError(
                f"train items {tuple(train.x.shape[1:])} and held-out items "
                f"{tuple(held_out.x.shape[1:])} differ in shape"
            )
        if len(held_out) < 2:
            raise DataError(f"{len(held_out)} real held-out item(s): the judges need at least 2")
        self.train, self.held_out, self.seed, self.device = train, held_out, seed, torch.device(device)
        reduce = tuple(d for d in range(train.x.ndim) if d != 1)
        self.mean = train.x.float().mean(reduce, keepdim=True)[0]
        self.std = train.x.float().std(reduce, keepdim=True)[0].clamp(min=1e-6)
        self.targets = CaptionTargets.from_captions(train.captions)
        self.train_x = self.normalise(train.x)
        self.held_x = self.normalise(held_out.x)
        if self.targets.kind == "none":
            # no captions: the features come from a pretext task on the real items (which flip)
            x, target = flip_task(self.train_x)
            multi_label, outputs = False, len(FLIPS)
        else:
            target = self.targets.encode(train.captions)
            keep = torch.ones(len(target), dtype=torch.bool) if target.ndim > 1 else target >= 0
            x, target = self.train_x[keep], target[keep]
            multi_label, outputs = self.targets.kind == "words", len(self.targets.names)
        self.net: CaptionNet = train_caption_net(
            x.to(self.device),
            target.to(self.device),
            multi_label=multi_label,
            num_outputs=outputs,
            steps=steps,
            width=width,
            shift=shift,
            seed=seed,
        )
        self.train_logits, self.train_features = self._run(self.train_x)
        self.held_logits, self.held_features = self._run(self.held_x)

    def normalise(self, x: Tensor) -> Tensor:
        """Per-channel standardisation with the training items' statistics."""
        return (x.detach().float().cpu() - self.mean) / self.std

    def _run(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return logits_and_features(self.net, x.to(self.device))

    @property
    def conditional(self) -> bool:
        """Whether the classifier reads captions (else it learnt the flip pretext task)."""
        return self.targets.kind != "none"

    def prompts(self, max_prompts: int = 16) -> list[str]:
        """Captions to generate for: distinct held-out captions the classifier can judge (first
        ``max_prompts``); ``max_prompts`` empty prompts when the data is unconditional."""
        if not self.conditional:
            return [""] * max_prompts
        known = set(self.targets.names)
        usable = [
            c
            for c in dict.fromkeys(self.held_out.captions)
            if self.targets.kind == "words" or c.strip() in known
        ]
        return usable[:max_prompts]

    def ceiling(self) -> dict[str, Any]:
        """The classifier on real held-out items: its accuracy (the best samples can expect)."""
        if not self.conditional:
            return {}
        usable = self._usable(self.held_out.captions)
        return {
            "accuracy": self.targets.accuracy(
                self.held_logits[usable], _pick(self.held_out.captions, usable)
            ),
            "num_items": int(usable.sum()),
        }

    def _usable(self, captions: Sequence[str]) -> Tensor:
        if self.targets.kind == "classes":
            return self.targets.encode(captions) >= 0
        return torch.ones(len(captions), dtype=torch.bool)

    def score(self, samples: Tensor, prompts: Sequence[str], *, pairs: int = 8) -> dict[str, Any]:
        """Score ``samples [N, C, *S]`` (same item shape and scale as the real items) made for
        ``prompts``. Returns the metrics (see :mod:`polydiff.evaluation.report` for what each means)
        and, under ``"_pairs"``, the ``pairs`` closest (sample index, training index, distance)."""
        if samples.shape[1:] != self.train.x.shape[1:]:
            raise ValueError(
                f"samples of shape {tuple(samples.shape[1:])} but real items of "
                f"{tuple(self.train.x.shape[1:])}"
            )
        x = self.normalise(samples)
        if not torch.isfinite(x).all():
            raise ValueError("samples contain NaN or infinite values; nothing to judge")
        metrics: dict[str, Any] = {
            "num_samples": len(x),
            "num_train_items": len(self.train),
            "num_held_out_items": len(self.held_out),
        }
        gen = torch.Generator().manual_seed(self.seed)
        size = min(len(x), len(self.held_out))
        logits, features = self._run(x)
        if self.conditional:
            usable = self._usable(prompts)
            metrics["labels"] = self.targets.kind
            metrics["caption_accuracy"] = {
                "samples": self.targets.accuracy(logits[usable], _pick(prompts, usable))
                if usable.any()
                else None,
                "real_held_out": self.ceiling()["accuracy"],
                "chance": self.targets.chance,
                "num_classes" if self.targets.kind == "classes" else "num_words": len(self.targets.names),
            }
        if size >= 2:
            pick_s = torch.randperm(len(x), generator=gen)[:size]
            pick_r = torch.randperm(len(self.held_out), generator=gen)[:size]
            metrics["frechet"] = {
                "samples": frechet_distance(features[pick_s], self.train_features),
                "real_held_out": frechet_distance(self.held_features[pick_r], self.train_features),
                "sample_size": size,
                "features": "caption classifier" if self.conditional else "flip classifier (no captions)",
            }
        sample_d, sample_i = nearest_items(x, self.train_x)
        real_d, _ = nearest_items(self.held_x, self.train_x)
        metrics["memorisation"] = memorisation_summary(sample_d, real_d)
        order = sample_d.argsort()[:pairs].tolist()
        metrics["_pairs"] = [(i, int(sample_i[i]), float(sample_d[i])) for i in order]
        return metrics


#: The pretext task of uncaptioned data: which of these flips (axes counted from the end) was applied.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-1, -2))


def flip_task(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x [N, C, *S]`` -> every item under each of :data:`FLIPS` ``[4N, C, *S]`` and the flip's
    index ``[4N]``. With one axis (signals, mels) the second flip negates instead."""
    out = []
    for dims in FLIPS:
        y = x
        for d in dims:
            y = y.flip(d) if x.ndim - 2 >= -d else -y
        out.append(y)
    return torch.cat(out), torch.arange(len(FLIPS)).repeat_interleave(len(x))


def _pick(items: Sequence[str], mask: Tensor) -> list[str]:
    return [c for c, keep in zip(items, mask.tolist()) if keep]
