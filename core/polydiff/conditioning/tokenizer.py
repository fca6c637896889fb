"""Tokenizers for short prompts: whole words from a fitted vocabulary, or UTF-8 bytes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from polydiff.errors import ConfigError

PAD, UNK, BOS = 0, 1, 2
_SPECIALS = ("<pad>", "<unk>", "<bos>")
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


class Tokenizer:
    """Turns prompts into padded id tensors; id 0 is padding, every sequence starts with BOS.

    ``kind="word"``: lower-cased words (and single punctuation marks) from a vocabulary
    fitted on the training captions; unseen words become ``<unk>``.
    ``kind="byte"``: UTF-8 bytes, no vocabulary, any character is representable.
    """

    def __init__(self, kind: str = "word", vocab: Sequence[str] | None = None, max_length: int = 32):
        if kind not in ("word", "byte"):
            raise ConfigError(f"conditioner option 'tokenizer' must be 'word' or 'byte', not '{kind}'")
        self.kind, self.max_length = kind, max_length
        self.vocab = list(vocab) if vocab is not None else list(_SPECIALS)
        if self.vocab[: len(_SPECIALS)] != list(_SPECIALS):
            raise ConfigError("tokenizer vocabulary must start with <pad>, <unk>, <bos>")
        self._index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return 256 + len(_SPECIALS) if self.kind == "byte" else len(self.vocab)

    def fit(self, texts: Iterable[str]) -> None:
        """Build the word vocabulary (sorted, so the same captions give the same ids)."""
        if self.kind == "word":
            words = sorted({w for text in texts for w in _WORD.findall(text.lower())})
            self.vocab = list(_SPECIALS) + words
            self._index = {w: i for i, w in enumerate(self.vocab)}

    def ids(self, text: str) -> list[int]:
        if self.kind == "byte":
            body = [b + len(_SPECIALS) for b in text.encode("utf-8")]
        else:
            body = [self._index.get(w, UNK) for w in _WORD.findall(text.lower())]
        return ([BOS] + body)[: self.max_length]

    def __call__(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``texts`` -> ``(ids [B, L] long, mask [B, L] bool)`` with L the longest sequence."""
        seqs = [self.ids(t) for t in texts]
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), PAD, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
        return ids, ids != PAD
