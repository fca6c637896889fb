"""Reading ``metadata.csv`` files in the LJSpeech layout.

Each line is ``id|text|normalized_text`` (``normalized_text`` may be omitted). Fields are
separated by ``|`` and never quoted: quotes inside the text are kept literally, as in
LJSpeech (``LJ001-0001|Printing, in the only sense with which we are at present concerned,...``).
Audio is ``wavs/ID.wav`` (or ``.flac``) next to the metadata file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from polydiff.data_check import ensure_inside, read_text_lines
from polydiff.errors import DataError

AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclass(frozen=True)
class Utterance:
    """One row of a metadata file.

    Attributes:
        id: File stem of the audio.
        text: Raw text (second column).
        normalized_text: Third column, or ``text`` when it is missing or empty.
        audio_path: The audio file.
        line: 1-based line number in the metadata file (for error messages).
    """

    id: str
    text: str
    normalized_text: str
    audio_path: Path
    line: int


def read_metadata(path: str | Path, wavs_dir: str | Path | None = None) -> list[Utterance]:
    """Parse an LJSpeech-style metadata file and check that every row has its audio.

    Args:
        path: The ``|``-separated file.
        wavs_dir: Where ``ID.wav``/``ID.flac`` live; default ``wavs/`` next to ``path``.

    Raises:
        DataError: the file is missing or not UTF-8, a row has the wrong number of fields or an
            empty id/text, an id repeats, or an audio file is missing or a symlink leading out of
            ``wavs_dir``; the message names the file, the line and the fix.
    """
    path = Path(path)
    wavs_dir = Path(wavs_dir) if wavs_dir is not None else path.parent / "wavs"
    if not path.is_file():
        raise DataError(
            f"metadata file {path} does not exist; an LJSpeech-layout corpus has "
            "metadata.csv (id|text|normalized_text) and wavs/ID.wav"
        )
    lines = read_text_lines(path)
    available = {p.name for p in wavs_dir.iterdir()} if wavs_dir.is_dir() else set()
    utterances: list[Utterance] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(csv.reader(lines, delimiter="|", quoting=csv.QUOTE_NONE), start=1):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}, line {number}"
        if len(row) not in (2, 3):
            raise DataError(
                f"{where}: expected 'id|text|normalized_text' (2 or 3 fields separated by '|'), "
                f"got {len(row)} fields: {lines[number - 1]!r}"
            )
        uid, text = row[0].strip(), row[1].strip()
        normalized = row[2].strip() if len(row) == 3 and row[2].strip() else text
        if not uid or not text:
            raise DataError(f"{where}: the id and the text must not be empty: {lines[number - 1]!r}")
        if uid in seen:
            raise DataError(f"{where}: id '{uid}' repeats line {seen[uid]}; ids must be unique")
        seen[uid] = number
        audio = next(
            (wavs_dir / f"{uid}{ext}" for ext in AUDIO_EXTENSIONS if f"{uid}{ext}" in available), None
        )
        if audio is None:
            raise DataError(
                f"{where}: no audio for id '{uid}': looked for "
                f"{' and '.join(str(wavs_dir / (uid + ext)) for ext in AUDIO_EXTENSIONS)}; "
                "add the file or remove the row"
            )
        ensure_inside(wavs_dir, audio, where)
        utterances.append(Utterance(uid, text, normalized, audio, number))
    if not utterances:
        raise DataError(f"{path} has no rows")
    return utterances
