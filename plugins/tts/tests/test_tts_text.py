"""Text normalisation and tokens."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from polydiff.errors import ConfigError, MissingDependencyError
from polydiff_tts.text.normalize import cardinal, normalize_text, ordinal
from polydiff_tts.text.tokenizer import CHARACTERS, Tokenizer


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety-nine"),
        (105, "one hundred five"),
        (2024, "two thousand twenty-four"),
        (1_000_001, "one million one"),
        (-7, "minus seven"),
    ],
)
def test_cardinal(number, words):
    assert cardinal(number) == words


def test_ordinal():
    assert [ordinal(n) for n in (1, 2, 3, 12, 20, 21, 100)] == [
        "first",
        "second",
        "third",
        "twelfth",
        "twentieth",
        "twenty-first",
        "one hundredth",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7 2 9", "seven two nine"),
        (
            "Dr. Smith paid $3.50 in 1984!",
            "doctor smith paid three dollars fifty cents in nineteen eighty-four!",
        ),
        (
            "It rose 12% to 1,500 on the 3rd.",
            "it rose twelve percent to one thousand five hundred on the third.",
        ),
        ("pi is 3.14", "pi is three point one four"),
        ('He said "Café"', "he said cafe"),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_blank_id_exceeds_every_symbol_id():
    tok = Tokenizer("chars", add_blank=True)
    ids = tok.encode("three one four")
    symbol_ids = [i for i in ids if i != tok.blank_id]
    assert ids[0::2] == [tok.blank_id] * (len(symbol_ids) + 1)  # blanks interleaved
    assert max(symbol_ids) < tok.blank_id < tok.vocab_size
    assert len(symbol_ids) == len("three one four")


def test_batch_pads_with_zero_and_reports_lengths():
    tok = Tokenizer("chars", add_blank=False)
    ids, lengths = tok(["one", "three"])
    assert lengths.tolist() == [3, 5]
    assert ids[0, 3:].tolist() == [0, 0]
    assert ids[1].tolist() == [CHARACTERS.index(c) + 1 for c in "three"]


def test_unspeakable_text_is_an_error():
    with pytest.raises(ConfigError, match="no speakable symbols"):
        Tokenizer()(["###"])


@pytest.mark.skipif(importlib.util.find_spec("phonemizer") is not None, reason="phonemizer is installed")
def test_phonemes_without_phonemizer_name_the_extra():
    with pytest.raises(MissingDependencyError, match=r"polydiff-tts\[phonemes\]"):
        Tokenizer("phonemes")


@pytest.mark.skipif(
    importlib.util.find_spec("phonemizer") is None or shutil.which("espeak-ng") is None,
    reason="needs phonemizer and espeak-ng",
)
def test_phoneme_inventory_is_fitted_and_rebuilt_from_the_saved_symbols():
    tok = Tokenizer("phonemes")
    tok.fit(["three one four", "seven two nine"])
    assert "θ" in tok.symbols and "ɹ" in tok.symbols
    ids = tok.encode("four one")
    assert max(i for i in ids if i != tok.blank_id) < tok.blank_id
    assert Tokenizer("phonemes", symbols=tok.symbols).encode("four one") == ids
