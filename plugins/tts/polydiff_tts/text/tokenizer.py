"""Text -> symbol ids: characters (always available) or phonemes (phonemizer + espeak-ng).

Id 0 is padding. With ``add_blank`` a blank id is interspersed between symbols
(``a b`` -> ``<b> a <b> b <b>``, as Glow-TTS/Grad-TTS do); it is the *largest* id, above
every real symbol, so it can never collide with one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from functools import lru_cache

import torch
from torch import Tensor

from polydiff.errors import ConfigError, MissingDependencyError
from polydiff_tts.text.normalize import ALLOWED, normalize_text

PAD = "_"
#: The character inventory: everything :func:`normalize_text` can output.
CHARACTERS: tuple[str, ...] = tuple(sorted(ALLOWED))


class Tokenizer:
    """Maps normalised text to ids over a fixed symbol inventory.

    Args:
        kind: ``"chars"`` or ``"phonemes"`` (needs ``pip install 'polydiff-tts[phonemes]'``
            and the espeak-ng program).
        symbols: The inventory (without padding). Characters by default; for phonemes it is
            fitted on the training texts (:meth:`fit`) and saved in the checkpoint.
        add_blank: Intersperse the blank id between symbols.
        language: Phonemizer language (``"en-us"``).
    """

    def __init__(
        self,
        kind: str = "chars",
        symbols: Sequence[str] | None = None,
        add_blank: bool = True,
        language: str = "en-us",
    ):
        if kind not in ("chars", "phonemes"):
            raise ConfigError(f"tokens must be 'chars' or 'phonemes', got '{kind}'")
        if kind == "phonemes":
            _check_phonemizer()
        self.kind, self.add_blank, self.language = kind, add_blank, language
        self.symbols: tuple[str, ...] = (
            tuple(symbols) if symbols is not None else (CHARACTERS if kind == "chars" else ())
        )
        self._ids = {s: i + 1 for i, s in enumerate(self.symbols)}

    @property
    def blank_id(self) -> int:
        return len(self.symbols) + 1

    @property
    def vocab_size(self) -> int:
        """Embedding rows needed: padding, symbols, blank."""
        return len(self.symbols) + 1 + (1 if self.add_blank else 0)

    def fit(self, texts: Iterable[str]) -> None:
        """Phonemes only: the inventory becomes every phoneme symbol of ``texts``."""
        if self.kind == "phonemes":
            self.symbols = tuple(sorted({c for t in texts for c in self.to_symbols(t)}))
            self._ids = {s: i + 1 for i, s in enumerate(self.symbols)}

    def to_symbols(self, text: str) -> str:
        """Normalised text (chars) or its IPA transcription (phonemes)."""
        text = normalize_text(text)
        return _phonemize(text, self.language) if self.kind == "phonemes" else text

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``; symbols outside the inventory are skipped."""
        ids = [self._ids[c] for c in self.to_symbols(text) if c in self._ids]
        if not self.add_blank:
            return ids
        out = [self.blank_id] * (2 * len(ids) + 1)
        out[1::2] = ids
        return out

    def __call__(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``texts`` -> ``ids [B, L]`` (long, 0-padded) and ``lengths [B]``.

        Raises:
            ConfigError: a text has nothing to say after normalisation.
        """
        encoded = [self.encode(t) for t in texts]
        for text, ids in zip(texts, encoded):
            if not any(i != self.blank_id for i in ids):
                raise ConfigError(
                    f"the text {text!r} has no speakable symbols after normalisation "
                    f"({self.kind}); write words or numbers"
                )
        lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long)
        batch = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
        for row, ids in zip(batch, encoded):
            row[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return batch, lengths


def _check_phonemizer() -> None:
    if importlib.util.find_spec("phonemizer") is None:
        raise MissingDependencyError(
            "tokens='phonemes' needs phonemizer (and the espeak-ng program). "
            "Fix: pip install 'polydiff-tts[phonemes]' && apt-get install espeak-ng, "
            "or use tokens='chars'"
        )


@lru_cache(maxsize=4096)
def _phonemize(text: str, language: str) -> str:
    from phonemizer import phonemize

    return phonemize(
        text, language=language, backend="espeak", strip=True, preserve_punctuation=True, with_stress=False
    )
