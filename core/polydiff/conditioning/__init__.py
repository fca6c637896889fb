"""Conditioners built into the core: ``none`` and ``text``."""

from polydiff.conditioning.none import NullConditioner
from polydiff.conditioning.text import TextConditioner
from polydiff.conditioning.tokenizer import Tokenizer

__all__ = ["NullConditioner", "TextConditioner", "Tokenizer"]
