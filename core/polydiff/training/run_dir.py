"""A run directory has one owner: a lock, the check for an earlier run, and ``--overwrite``.

``RUN_DIR/train.lock`` is held with ``fcntl.flock`` for as long as a training runs, so a second
training into the same directory is refused at once, and a killed process (whose descriptors the
kernel closes) never leaves a stale lock. The file holds the owner's pid, host and command for
the refusal message.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from polydiff.errors import CheckpointError, ConfigError

LOCK_FILE = "train.lock"
METRICS_FILE = "metrics.jsonl"
#: What a training writes into its run directory besides ``checkpoints/`` (removed by --overwrite).
TRAINER_FILES = ("latest", ".latest.tmp", METRICS_FILE, "loss.png", "vae_reconstructions.png")


def check_is_directory(run_dir: Path) -> None:
    """A one-line error when ``run_dir`` exists and is not a directory."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(
            f"--out {run_dir} is an existing file, not a directory; pass a new directory or a run "
            "directory of `polydiff train`"
        )


def resume_point(run_dir: Path) -> Path:
    """The checkpoint ``run_dir/latest`` names, or a one-line CheckpointError (no fallback)."""
    from polydiff.training.checkpoint import resolve_checkpoint

    RunLock(run_dir).check_free()  # a live training first: its checkpoints are still coming
    if not (run_dir / "latest").exists() and not (run_dir / "checkpoints").is_dir():
        raise CheckpointError(
            f"--resume: {run_dir} holds no checkpoint to continue; drop --resume to start a new run there"
        )
    return resolve_checkpoint(run_dir)


def previous_run(run_dir: Path) -> list[str]:
    """What an earlier training left in ``run_dir`` (checkpoints, ``latest``, metrics), by name."""
    root = run_dir / "checkpoints"
    found = sorted(p.name for p in root.glob("step-*") if p.is_dir()) if root.is_dir() else []
    if len(found) > 2:
        found = [found[0], "...", found[-1]]
    found = [f"checkpoints/{n}" if n != "..." else n for n in found]
    return found + [n for n in ("latest", METRICS_FILE) if (run_dir / n).exists()]


def check_fresh(run_dir: Path) -> None:
    """Refuse a fresh training into a directory that holds an earlier run."""
    left = previous_run(run_dir)
    if left:
        raise ConfigError(
            f"{run_dir} already holds a training run ({', '.join(left)}): continue it with --resume, "
            "replace it with --overwrite, or pass another --out"
        )


def remove_previous_run(run_dir: Path) -> None:
    """Delete the previous run's checkpoints, ``latest``, metrics and the trainer's pictures."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for name in TRAINER_FILES:
        (run_dir / name).unlink(missing_ok=True)


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Remove ``checkpoints/.step-*`` directories a killed run left half-written."""
    root = run_dir / "checkpoints"
    left = sorted(root.glob(".step-*")) if root.is_dir() else []
    for p in left:
        shutil.rmtree(p, ignore_errors=True)
    (run_dir / ".latest.tmp").unlink(missing_ok=True)
    return left


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/train.lock``; :meth:`release` (or process exit) frees it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise ConfigError naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._busy() from None
        os.ftruncate(fd, 0)
        command = " ".join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv))
        os.write(
            fd,
            f"pid={os.getpid()}\nhost={socket.gethostname()}\n"
            f"started={time.strftime('%Y-%m-%d %H:%M:%S')}\ncommand={command}\n".encode(),
        )
        self.fd = fd
        return self

    def check_free(self) -> None:
        """Raise the :meth:`acquire` error if another process holds the lock; take nothing."""
        if not self.path.exists():
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._busy() from None
        finally:
            os.close(fd)

    def _busy(self) -> ConfigError:
        return ConfigError(
            f"{self.path.parent} is in use by another training ({self._owner()}); wait for it to "
            "finish or stop it, or pass another --out"
        )

    def _owner(self) -> str:
        info: dict[str, str] = {}
        for _ in range(20):  # the owner may be writing it this very moment
            try:
                text = self.path.read_text()
            except OSError:
                text = ""
            info = dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)
            if "pid" in info:
                break
            time.sleep(0.01)
        if "pid" not in info:
            return "process unknown"
        where = f"pid {info['pid']} on {info.get('host', '?')}, since {info.get('started', '?')}"
        return f"{where}: {info['command']}" if info.get("command") else where

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
