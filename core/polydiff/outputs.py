"""What commands write: the rules for output paths, and whether to draw progress bars.

Output paths, the same for every command and writer:

* ``--out`` not given: the command's default file (``RUN/samples/sample.EXT``, ...).
* ``--out DIR``, an existing directory or a path without a suffix (created): the default file
  name inside it.
* ``--out FILE``: its suffix must be one the writer declares (``extensions``, else its
  ``extension``), otherwise a one-line :class:`ConfigError` names the supported ones. A parent
  that is a file is a one-line error too.
* A writer given ``path`` for ONE item writes exactly ``path``. For several items it writes its
  multi-item form, which it documents: either one combined file at ``path`` (a PNG grid), or
  numbered files ``STEM-00.EXT``, ``STEM-01.EXT``, ... (:func:`numbered`) plus at most one
  overview picture ``STEM.png`` (a contact sheet, a grid of spectrograms).
* A command prints the paths it wrote, only those that exist (:func:`existing`).

Progress bars: :func:`progress_enabled` decides for every command: none with ``--no-progress``
and none when stderr is not a terminal (no carriage-return bars in logs and pipes).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from polydiff.errors import ConfigError


def writer_extensions(writer: Any) -> tuple[str, ...]:
    """Suffixes a writer accepts for ``--out``: its ``extensions``, else ``(extension,)``."""
    declared = getattr(writer, "extensions", None) or (getattr(writer, "extension", ""),)
    return tuple(e.lower() for e in declared if e)


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def check_parent(path: Path, option: str = "--out") -> None:
    """Raise a one-line ConfigError when a parent of ``path`` is a file, not a directory."""
    ancestor = _existing_ancestor(Path(path))
    if not ancestor.is_dir():
        raise ConfigError(
            f"{option} {path}: {ancestor} is a file, not a directory; choose a path under a directory"
        )


def resolve_output(
    out: Path | str | None, default: Path, extensions: Sequence[str], option: str = "--out"
) -> Path:
    """The file a command writes to, by the rules above; creates its parent directory.

    ``default`` is the file written without ``--out``; its name is used inside a directory.
    """
    if out is None:
        path = Path(default)
    else:
        out = Path(out)
        check_parent(out, option)
        if out.is_dir() or (not out.exists() and not out.suffix):
            path = out / Path(default).name
        elif out.suffix.lower() in extensions or not extensions:
            path = out
        else:
            what = f"unsupported extension '{out.suffix}'" if out.suffix else "is a file without extension"
            raise ConfigError(
                f"{option} {out}: {what}; this modality's writer writes {', '.join(extensions)} "
                f"(e.g. {out.with_suffix(extensions[0]).name}), or give a directory"
            )
    check_parent(path, option)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def resolve_directory(out: Path | str, option: str = "--out") -> Path:
    """``out`` as a directory to write into (created); a one-line error when it is a file."""
    out = Path(out)
    check_parent(out, option)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out}: is a file; this command writes a directory of files")
    out.mkdir(parents=True, exist_ok=True)
    return out


def numbered(path: Path, count: int, suffix: str | None = None, labels: Sequence[str] = ()) -> list[Path]:
    """The files of ``count`` items written to ``path`` (with ``suffix`` if given).

    One item: ``[path]``. Several: ``STEM-00.EXT, STEM-01.EXT, ...`` next to it, each followed by
    ``-LABEL`` when ``labels`` are given (``samples-00-seven-two.wav``).
    """
    path = Path(path)
    if suffix is not None:
        path = path.with_suffix(suffix)
    if count == 1:
        return [path]
    tags = [f"-{label}" if label else "" for label in labels] + [""] * count
    return [path.with_name(f"{path.stem}-{i:02d}{tags[i]}{path.suffix}") for i in range(count)]


def existing(paths: Iterable[Path | str]) -> list[Path]:
    """``paths`` that exist, in order, each once."""
    seen: dict[Path, None] = {}
    for p in paths:
        if p is not None and Path(p).exists():
            seen.setdefault(Path(p), None)
    return list(seen)


def files_under(directory: Path) -> dict[Path, int]:
    """``{file: mtime_ns}`` of every file under ``directory`` (empty when it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    return {p: p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


def written_since(directory: Path, before: dict[Path, int]) -> list[Path]:
    """Files under ``directory`` created or modified since the snapshot ``before`` (:func:`files_under`)."""
    return [p for p, mtime in files_under(directory).items() if before.get(p) != mtime]


def progress_enabled(no_progress: bool = False, stream: IO[str] | None = None) -> bool:
    """Whether to draw progress bars: not with ``--no-progress``, and only on a terminal.

    ``stream`` is where the bars go (default ``sys.stderr``, as tqdm).
    """
    if no_progress:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def output_file(path: Path | str, default_name: str, suffixes: Sequence[str] | None = None) -> Path:
    """The one file a writer method writes for ``path``, its parent directory created.

    ``path`` itself, or ``path / default_name`` when ``path`` is an existing directory; with
    ``suffixes`` also whenever ``path``'s suffix is none of them (a path without a known suffix
    names a directory, e.g. ``--out results`` -> ``results/samples.png``).
    """
    path = Path(path)
    known = suffixes is None or path.suffix.lower() in suffixes
    if path.is_dir() or not known:
        path = path / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def stem_of(path: Path | str, suffixes: Sequence[str]) -> Path:
    """``path`` without its suffix when that is one of ``suffixes``: ``out/samples.gif`` and
    ``out/samples`` both give ``out/samples``; other dots stay (``clip.v2`` -> ``clip.v2``)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in suffixes else path


def with_suffix_kept(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix``; unlike ``Path.with_suffix`` it keeps dots: ``clip.v2`` -> ``clip.v2.gif``."""
    return stem.with_name(stem.name + suffix)
