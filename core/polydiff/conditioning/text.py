"""A text conditioner trained from scratch: tokenizer + small transformer -> context tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from polydiff.conditioning.tokenizer import Tokenizer
from polydiff.errors import DataError
from polydiff.interfaces import Conditioner, Conditioning, DiffusionDataset, SamplingPlan


class TextConditioner(Conditioner):
    """Encodes prompts into ``[B, L, dim]`` cross-attention tokens.

    Classifier-free guidance: during training each prompt is replaced by the empty
    prompt where the trainer's ``drop`` mask is True; the unconditional branch at sampling time is the
    empty prompt too (a lone BOS token), so the null condition is learned, not zeros.

    Args:
        dim: Width of the tokens (the UNet's ``context_dim``).
        depth, heads: Transformer encoder size.
        tokenizer: ``"word"`` (vocabulary fitted on the training captions) or ``"byte"``.
        vocab: The fitted vocabulary (saved in the checkpoint's config).
        max_length: Prompts are cut to this many tokens.
    """

    def __init__(
        self,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        tokenizer: str = "word",
        vocab: Sequence[str] | None = None,
        max_length: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.options = {
            "dim": dim,
            "depth": depth,
            "heads": heads,
            "tokenizer": tokenizer,
            "max_length": max_length,
            "dropout": dropout,
        }
        self.tokenizer = Tokenizer(tokenizer, vocab, max_length)
        self.context_dim = dim
        self._build()

    def _build(self) -> None:
        o = self.options
        self.embed = nn.Embedding(self.tokenizer.vocab_size, o["dim"])
        self.pos = nn.Parameter(torch.randn(o["max_length"], o["dim"]) * 0.02)
        layer = nn.TransformerEncoderLayer(
            o["dim"],
            o["heads"],
            4 * o["dim"],
            o["dropout"],
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, o["depth"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(o["dim"])

    def fit(self, dataset: DiffusionDataset) -> None:
        """Fit the word vocabulary on the training captions (rebuilds the embedding)."""
        texts = getattr(dataset, "captions", None)
        if texts is None:
            texts = [dataset[i].get("text", "") for i in range(len(dataset))]
        if not any(texts):
            raise DataError(
                "the text conditioner needs captions, but the dataset has none; "
                "use --conditioner none for unconditional training"
            )
        self.tokenizer.fit(texts)
        self._build()

    def config(self) -> dict[str, Any]:
        return {**self.options, "vocab": self.tokenizer.vocab if self.tokenizer.kind == "word" else None}

    def encode(self, texts: Sequence[str]) -> Conditioning:
        """``texts`` -> Conditioning with ``context [B, L, dim]`` and ``context_mask [B, L]``."""
        ids, mask = self.tokenizer(texts)
        ids, mask = ids.to(self.pos.device), mask.to(self.pos.device)
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask))
        return Conditioning(context=h, context_mask=mask)

    def forward(self, batch: dict[str, Any], x0: Tensor, *, drop: Tensor | None = None) -> Conditioning:
        texts = list(batch["text"])
        if drop is not None:
            texts = ["" if d else t for t, d in zip(texts, drop.tolist())]
        return self.encode(texts)

    def plan(self, prompts: Sequence[str], shape: tuple[int, ...]) -> SamplingPlan:
        return SamplingPlan(
            cond=self.encode(prompts), uncond=self.encode([""] * len(prompts)), shape=tuple(shape)
        )
