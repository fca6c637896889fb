"""What the run-directory tests share: a toy training, a run's bytes, the one error line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def train(cli: Callable[[list[str]], int], run: Path, *extra: str) -> int:
    """``polydiff train toy --out RUN --no-progress EXTRA...``; its exit status."""
    return cli(["train", "toy", "--out", str(run), "--no-progress", *extra])


def snapshot(run: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file of a run (the lock file aside)."""
    return {
        str(p.relative_to(run)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != "train.lock"
    }


def error_line(capsys) -> str:
    """The one non-empty line on stderr (fails if there are more)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]
