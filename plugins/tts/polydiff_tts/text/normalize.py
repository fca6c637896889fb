"""Text normalisation for TTS: lower case, abbreviations and numbers spelled out.

>>> normalize_text("Dr. Smith paid $3.50 for 12 eggs in 1984!")
'doctor smith paid three dollars fifty cents for twelve eggs in nineteen eighty-four!'
>>> normalize_text("7 2 9")
'seven two nine'
"""

from __future__ import annotations

import re
import unicodedata

_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ABBREVIATIONS = {
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "st": "saint",
    "co": "company",
    "jr": "junior",
    "maj": "major",
    "gen": "general",
    "drs": "doctors",
    "rev": "reverend",
    "lt": "lieutenant",
    "hon": "honorable",
    "sgt": "sergeant",
    "capt": "captain",
    "esq": "esquire",
    "ltd": "limited",
    "col": "colonel",
    "ft": "fort",
}
_ORDINAL_SUFFIX = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

_ABBREVIATION_RE = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", re.IGNORECASE)
_MONEY_RE = re.compile(r"\$(\d[\d,]*)(?:\.(\d\d))?\b")
_ORDINAL_RE = re.compile(r"\b(\d[\d,]*)(st|nd|rd|th)\b", re.IGNORECASE)
_PERCENT_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?%")
_NUMBER_RE = re.compile(r"(?:(?<![\w-])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_WHITESPACE_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION_RE = re.compile(r" ([,.!?;:])")
#: Characters kept after normalisation (the rest become spaces).
ALLOWED = set("abcdefghijklmnopqrstuvwxyz '-,.!?;:")


def cardinal(n: int) -> str:
    """``1984 -> 'one thousand nine hundred eighty-four'`` (any integer)."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for scale, word in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{cardinal(high)} {word}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


def year_or_cardinal(n: int) -> str:
    """Read 1100..1999 and 2010..2099 as years (``1984 -> 'nineteen eighty-four'``)."""
    if 1100 <= n < 2000 or 2010 <= n < 2100:
        high, low = divmod(n, 100)
        if low == 0:
            return f"{cardinal(high)} hundred"
        return f"{cardinal(high)} {'oh ' + _ONES[low] if low < 10 else cardinal(low)}"
    return cardinal(n)


def ordinal(n: int) -> str:
    """``21 -> 'twenty-first'``."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-" if "-" in words.split(" ")[-1] else " ")
    if last in _ORDINAL_SUFFIX:
        last = _ORDINAL_SUFFIX[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def _number(text: str) -> str:
    negative = text.startswith("-")
    digits = text.lstrip("-").replace(",", "")
    whole, _, fraction = digits.partition(".")
    words = cardinal(int(whole)) if fraction or "," in text else year_or_cardinal(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return ("minus " if negative else "") + words


def _money(match: re.Match[str]) -> str:
    dollars = int(match.group(1).replace(",", ""))
    cents = int(match.group(2) or 0)
    parts = []
    if dollars or not cents:
        parts.append(f"{cardinal(dollars)} dollar{'s' if dollars != 1 else ''}")
    if cents:
        parts.append(f"{cardinal(cents)} cent{'s' if cents != 1 else ''}")
    return " ".join(parts)


def normalize_text(text: str) -> str:
    """Lower-cased, ASCII, numbers and abbreviations spelled out, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
    text = _MONEY_RE.sub(_money, text)
    text = _PERCENT_RE.sub(lambda m: _number(m.group(1)) + " percent", text)
    text = _ORDINAL_RE.sub(lambda m: ordinal(int(m.group(1).replace(",", ""))), text)
    text = _NUMBER_RE.sub(lambda m: " " + _number(m.group(0)) + " ", text)
    text = text.lower()
    text = "".join(c if c in ALLOWED else " " for c in text)
    text = _WHITESPACE_RE.sub(" ", text).strip()
    return _SPACE_BEFORE_PUNCTUATION_RE.sub(r"\1", text)
