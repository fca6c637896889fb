"""``folder``: a user's folder of captioned clips (GIF with Pillow; MP4 and others with PyAV).

Layout::

    my_clips/
      metadata.jsonl        {"file_name": "cat.gif", "text": "a cat jumping"} per line
      cat.gif               (or metadata.csv with a header row: file_name,text)
      waves.mp4             needs `pip install 'polydiff-video[mp4]'`

An optional ``split`` field (``train``/``eval``) assigns rows to splits; rows without it
belong to both. Every clip is decoded when the dataset is built, so a corrupt file fails
at once with a :class:`~polydiff.DataError` naming it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polydiff.errors import ConfigError, DataError
from polydiff_video.data.clip_io import GIF_SUFFIXES, MP4_SUFFIXES, fit_clip, read_clip

METADATA_FILES = ("metadata.jsonl", "metadata.csv")


def read_metadata(
    root: Path, *, file_column: str = "file_name", caption_column: str = "text"
) -> list[dict[str, str]]:
    """Rows ``{"file_name", "text", "split"?}`` of ``root/metadata.jsonl`` or ``root/metadata.csv``."""
    path = next((root / name for name in METADATA_FILES if (root / name).is_file()), None)
    if path is None:
        raise DataError(
            f"no metadata.jsonl or metadata.csv in '{root}'. Fix: add one with a '{file_column}' and a "
            f'\'{caption_column}\' field per clip, e.g. {{"{file_column}": "clip.gif", "{caption_column}": '
            f'"a red ball bouncing"}}.'
        )
    rows: list[dict[str, Any]] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON ({exc}).") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
            rows.append({"line": number, **row})
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                rows.append({"line": number, **row})
    out = []
    for row in rows:
        for column in (file_column, caption_column):
            if not row.get(column):
                raise DataError(f"{path}, line {row['line']}: missing '{column}'. Fix: give every row one.")
        out.append(
            {
                "file_name": str(row[file_column]),
                "text": str(row[caption_column]),
                **({"split": str(row["split"])} if row.get("split") else {}),
            }
        )
    if not out:
        raise DataError(f"{path} lists no clips.")
    return out


class FolderVideoDataset:
    """Captioned clips from a folder, cut/resampled to ``frames`` frames of ``size``.

    ``ds[i]`` is ``{"x": float32 [3, T, H, W] in [0, 255], "text": caption, "file": name}``.

    Args:
        split: ``"train"`` or ``"eval"``: rows whose ``split`` field differs are skipped.
        path: The folder (``--data-path``); ``root`` is accepted as another name for it.
        frames: Frames per clip ``T``; longer clips keep frames ``0, stride, 2*stride, ...``,
            shorter ones are resampled evenly over their length.
        size: Output ``H = W`` (int) or ``(H, W)``: frames are resized to cover it and
            centre-cropped.
        frame_stride: Step between kept frames of long clips.
        file_column / caption_column: Field names in the metadata.
        fps: Frame rate of written GIFs.
        eval_prompts: Prompts for evaluation and the demo (default: the first 8 captions).
    """

    def __init__(
        self,
        split: str = "train",
        *,
        path: str | Path | None = None,
        root: str | Path | None = None,
        frames: int = 8,
        size: int | Sequence[int] = 32,
        frame_stride: int = 1,
        file_column: str = "file_name",
        caption_column: str = "text",
        fps: int = 8,
        eval_prompts: Sequence[str] | None = None,
    ) -> None:
        folder = path if path is not None else root
        if folder is None:
            raise ConfigError(
                "the 'video-folder' dataset needs a folder: pass --data-path PATH "
                "(or --set dataset.path=PATH)."
            )
        self.root = Path(folder).expanduser()
        if not self.root.is_dir():
            raise DataError(f"video folder '{self.root}' does not exist or is not a directory.")
        self.split = split
        self.frames = int(frames)
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.fps = int(fps)
        rows = [
            r
            for r in read_metadata(self.root, file_column=file_column, caption_column=caption_column)
            if r.get("split", split) == split
        ]
        if not rows:
            raise DataError(f"metadata in '{self.root}' has no rows for split '{split}'.")
        self.texts = [r["text"] for r in rows]
        self.files = [r["file_name"] for r in rows]
        self.clips = [self._load(name, frame_stride) for name in self.files]
        self._eval_prompts = (
            list(eval_prompts) if eval_prompts is not None else list(dict.fromkeys(self.texts))[:8]
        )

    def _load(self, name: str, stride: int) -> torch.Tensor:
        path = self.root / name
        if not path.is_file():
            raise DataError(f"clip '{path}' listed in the metadata of '{self.root}' does not exist.")
        if path.suffix.lower() not in GIF_SUFFIXES + MP4_SUFFIXES:
            raise DataError(f"clip '{path}': unsupported suffix '{path.suffix}'. Use GIF or MP4.")
        frames = fit_clip(read_clip(path), self.frames, self.size, stride)  # [T, H, W, 3]
        return torch.from_numpy(np.ascontiguousarray(frames.transpose(3, 0, 1, 2))).float()

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.clips[index], "text": self.texts[index], "file": self.files[index]}

    @property
    def data_shape(self) -> tuple[int, int, int, int]:
        return (3, self.frames, *self.size)

    @property
    def captions(self) -> list[str]:
        return list(self.texts)

    @property
    def eval_prompts(self) -> list[str]:
        return list(self._eval_prompts)

    def writer_options(self) -> dict[str, Any]:
        return {"fps": self.fps}
