"""An on-disk cache of a folder's decoded, resized images: one ``.npy`` array and one ``.json``.

The key is a SHA-256 of everything that decides the pixels: the folder's resolved path, the
output size and resize policy, the pad fill, and each image file's name, byte size and
modification time (``st_mtime_ns``). Editing, adding or removing an image, or changing one of
those options, gives another key, so a stale entry is never read (old entries stay until
removed by hand). Captions are not cached: the metadata is read on every build.

The array holds uint8 RGB ``[N, 3, size, size]`` (one row per image file, in sorted file order;
rows of unreadable files stay zero); the JSON lists the readable files with their row and
whether every pixel is grey, and the unreadable files with the reason. Both are written under
temporary names and renamed into place, so a killed build leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

#: Bumped when the stored format or the decoding rules change.
VERSION = 1


def cache_key(root: Path, files: list[Path], options: dict[str, Any]) -> str:
    """Hex key of the folder ``root``'s ``files`` decoded with ``options``."""
    listing = []
    for path in files:
        st = path.stat()
        listing.append([path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    text = json.dumps(
        {"version": VERSION, "root": str(root.resolve()), "options": options, "files": listing},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class DecodedCache:
    """The entry ``key`` in the directory ``directory``.

    Args:
        directory: Where entries live (created on the first write).
        key: From :func:`cache_key`.
    """

    def __init__(self, directory: Path, key: str):
        self.directory, self.key = Path(directory).expanduser(), key
        self.array_path = self.directory / f"folder-{key}.npy"
        self.index_path = self.directory / f"folder-{key}.json"

    def read(self) -> tuple[np.ndarray, dict[str, Any]] | None:
        """``(memory-mapped array, index)`` of a complete entry, or None (missing or unreadable)."""
        try:
            index = json.loads(self.index_path.read_text())
            array = np.load(self.array_path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if index.get("version") != VERSION or array.ndim != 4:
            return None
        return array, index

    def start(self, rows: int, size: int) -> np.ndarray:
        """A writable uint8 ``[rows, 3, size, size]`` array under a temporary name."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._tmp = self.array_path.with_name(f"{self.array_path.name}.tmp-{os.getpid()}")
        return np.lib.format.open_memmap(self._tmp, mode="w+", dtype=np.uint8, shape=(rows, 3, size, size))

    def finish(self, array: np.ndarray, index: dict[str, Any]) -> None:
        """Flush ``array`` (from :meth:`start`) and move it and ``index`` into place."""
        array.flush()
        del array
        os.replace(self._tmp, self.array_path)
        tmp_index = self.index_path.with_name(f"{self.index_path.name}.tmp-{os.getpid()}")
        tmp_index.write_text(json.dumps({**index, "version": VERSION}))
        os.replace(tmp_index, self.index_path)

    def abandon(self) -> None:
        """Remove the temporary array of a build that failed."""
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
