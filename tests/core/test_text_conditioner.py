"""The text conditioner and its tokenizer."""

from __future__ import annotations

import pytest
import torch

from polydiff.conditioning.text import TextConditioner
from polydiff.conditioning.tokenizer import BOS, PAD, UNK, Tokenizer
from polydiff.errors import ConfigError


def test_word_tokenizer_fits_a_sorted_vocabulary_and_pads():
    tok = Tokenizer("word")
    tok.fit(["a red circle", "a blue square, top left"])
    assert tok.vocab[3:] == sorted({"a", "red", "circle", "blue", "square", ",", "top", "left"})
    ids, mask = tok(["a red square", "circle"])
    assert ids.shape == (2, 4) and ids[0, 0] == BOS and ids[1, 2] == PAD
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert tok.ids("a GREEN circle")[2] == UNK  # unseen words are handled, case-folded


def test_byte_tokenizer_takes_any_character():
    tok = Tokenizer("byte", max_length=8)
    ids, mask = tok(["héllo wörld ✓"])
    assert ids.shape == (1, 8) and mask.all()  # truncated to max_length, nothing crashes
    assert int(ids.max()) < tok.vocab_size


def test_bad_tokenizer_kind():
    with pytest.raises(ConfigError, match="'word' or 'byte'"):
        Tokenizer("bpe")


class _Captions:
    captions = ["up", "down", "far up"]

    def __len__(self):
        return 3


def test_conditioner_shapes_mask_and_rebuild_from_config():
    torch.manual_seed(0)
    cond = TextConditioner(dim=16, depth=1, heads=2)
    cond.fit(_Captions())
    c = cond.encode(["up", "far up", "never seen ✓"])
    assert c.context.shape == (3, 4, 16) and c.context_mask.sum(1).tolist() == [2, 3, 4]
    clone = TextConditioner(**cond.config())
    clone.load_state_dict(cond.state_dict())
    torch.testing.assert_close(clone.encode(["far up"]).context, cond.encode(["far up"]).context)


def test_dropped_prompts_equal_the_null_prompt():
    cond = TextConditioner(dim=16, depth=1, heads=2).eval()
    cond.fit(_Captions())
    dropped = cond({"text": ["up", "down"]}, torch.zeros(2, 1, 4), drop=torch.tensor([True, False]))
    null = cond.encode([""])
    torch.testing.assert_close(dropped.context[0, :1], null.context[0])
    assert dropped.context_mask[0].sum() == 1  # only BOS remains
    plan = cond.plan(["up"], (1, 4))
    torch.testing.assert_close(plan.uncond.context, null.context)
    assert plan.shape == (1, 4)
