"""What a caption says, in a form a classifier can learn: one class per caption when the captions
are a small finite set, else the words they use (multi-label)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

WORD = re.compile(r"[a-z0-9']+")


def caption_words(caption: str) -> list[str]:
    """Lower-cased words of ``caption``, each once, in order."""
    return list(dict.fromkeys(WORD.findall(caption.lower())))


@dataclass(frozen=True)
class CaptionTargets:
    """The labels a caption classifier learns.

    Attributes:
        kind: ``"classes"`` (each distinct caption is a class), ``"words"`` (multi-label: which
            vocabulary words the caption contains) or ``"none"`` (unconditional data).
        names: The class captions or the vocabulary words.
    """

    kind: str
    names: tuple[str, ...]

    @classmethod
    def from_captions(
        cls,
        captions: Sequence[str],
        *,
        max_classes: int = 50,
        min_count: int = 2,
        max_words: int = 64,
        max_word_share: float = 0.9,
    ) -> CaptionTargets:
        """Choose the labels of the training ``captions``.

        Classes when there are at most ``max_classes`` distinct non-empty captions and each has at
        least ``min_count`` items; otherwise the (at most ``max_words``) most frequent words found in
        at least ``min_count`` captions and in at most ``max_word_share`` of them (so "a" and "the"
        drop out); ``none`` when every caption is empty or no word qualifies.
        """
        texts = [c.strip() for c in captions]
        if not any(texts):
            return cls("none", ())
        counts = Counter(texts)
        if len(counts) <= max_classes and min(counts.values()) >= min_count and "" not in counts:
            return cls("classes", tuple(sorted(counts)))
        doc_freq = Counter(w for t in texts for w in caption_words(t))
        limit = max_word_share * len(texts)
        kept = [w for w, n in doc_freq.most_common() if min_count <= n <= limit][:max_words]
        if len(kept) < 2:
            return cls("none", ())
        return cls("words", tuple(sorted(kept)))

    @property
    def chance(self) -> float | None:
        """Accuracy of guessing: ``1 / classes`` or 0.5 (balanced accuracy of words); None if none."""
        return {"classes": 1.0 / max(1, len(self.names)), "words": 0.5}.get(self.kind)

    def encode(self, captions: Sequence[str]) -> Tensor:
        """Targets: classes -> long ``[N]`` (-1 for a caption outside the set); words -> float ``[N, K]``."""
        if self.kind == "classes":
            index = {c: i for i, c in enumerate(self.names)}
            return torch.tensor([index.get(c.strip(), -1) for c in captions], dtype=torch.long)
        if self.kind == "words":
            index = {w: i for i, w in enumerate(self.names)}
            out = torch.zeros(len(captions), len(self.names))
            for row, caption in enumerate(captions):
                for w in caption_words(caption):
                    if w in index:
                        out[row, index[w]] = 1.0
            return out
        return torch.zeros(len(captions), 0)

    def accuracy(self, logits: Tensor, captions: Sequence[str]) -> float | None:
        """Classes: share of items whose top class is their caption. Words: balanced accuracy per
        word (mean of the share of items with the word read as having it and of items without it
        read as not; "read as having" = logit above 0), averaged over the words that occur in some
        but not all ``captions``; chance is 0.5 whatever the predictor. None when no word qualifies."""
        target = self.encode(captions)
        if self.kind == "classes":
            return (logits.argmax(1) == target).float().mean().item()
        if self.kind == "words":
            said, has = logits > 0, target > 0.5
            count = has.sum(0)
            judged = (count > 0) & (count < len(has))
            if not judged.any():
                return None
            tpr = (said & has).sum(0) / count.clamp(min=1)
            tnr = (~said & ~has).sum(0) / (len(has) - count).clamp(min=1)
            return ((tpr + tnr) / 2)[judged].mean().item()
        raise ValueError("no caption targets: the data is unconditional")
