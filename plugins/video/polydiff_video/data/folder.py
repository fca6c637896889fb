"""``folder``: a user's folder of captioned clips (GIF with Pillow; MP4 and others with PyAV).

Layout::

    my_clips/
      metadata.jsonl        {"file_name": "cat.gif", "text": "a cat jumping"} per line
      cat.gif               (or metadata.csv with a header row: file_name,text)
      waves.mp4             needs `pip install 'polydiff-video[mp4]'`

An optional ``split`` field (``train``/``eval``) assigns rows to splits; rows without it
belong to both. Metadata must be UTF-8; each row names one clip by a relative path inside
the folder (no absolute path, no ``..``, no symlink leading out of the folder; one row per
clip) and a non-empty string caption. Such problems are one-line
:class:`~polydiff.DataError` messages naming the metadata file and the line.

Every clip is decoded when the dataset is built: a video container only up to the frames the
cut uses (a ten-minute clip is not held whole in memory), a GIF whole. A clip that cannot be decoded (whatever
Pillow or PyAV raises, ``DecompressionBombError`` included) fails at once with a
:class:`~polydiff.DataError` naming it (``on_error="raise"``, the default), or is left out
with one warning naming every skipped clip (``on_error="skip"``).
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polydiff.data_check import DataReport, path_inside, read_text_lines
from polydiff.errors import ConfigError, DataError
from polydiff_video.data.clip_io import (
    GIF_SUFFIXES,
    MP4_SUFFIXES,
    fit_clip,
    frames_needed,
    read_clip_timed,
    retime,
)

METADATA_FILES = ("metadata.jsonl", "metadata.csv")


def read_metadata(
    root: Path, *, file_column: str = "file_name", caption_column: str = "text"
) -> list[dict[str, str]]:
    """Rows ``{"file_name", "text", "line", "split"?}`` of ``root/metadata.jsonl`` or ``root/metadata.csv``.

    Raises:
        DataError: no metadata file, or a line that is not UTF-8 or JSON, lacks a field, has a
            non-string field, names a path outside ``root`` or repeats a clip (file and line named).
    """
    path = next((root / name for name in METADATA_FILES if (root / name).is_file()), None)
    if path is None:
        raise DataError(
            f"no metadata.jsonl or metadata.csv in '{root}'. Fix: add one with a '{file_column}' and a "
            f'\'{caption_column}\' field per clip, e.g. {{"{file_column}": "clip.gif", "{caption_column}": '
            f'"a red ball bouncing"}}.'
        )
    rows: list[dict[str, Any]] = []
    lines = read_text_lines(path)
    if path.suffix == ".jsonl":
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON ({exc}).") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
            rows.append({**row, "line": number})
    else:
        reader = csv.DictReader(lines)
        rows = [{**row, "line": reader.line_num} for row in reader]
    out = []
    line_of: dict[str, int] = {}
    for row in rows:
        where = f"{path}, line {row['line']}"
        for column in (file_column, caption_column):
            value = row.get(column)
            if value is None or value == "":
                raise DataError(f"{where}: missing '{column}'. Fix: give every row one.")
            if not isinstance(value, str):
                raise DataError(
                    f"{where}: '{column}' is {json.dumps(value)}, not a string. Fix: write it in quotes."
                )
        name = row[file_column]
        path_inside(root, name, where)
        key = Path(name).as_posix()
        if key in line_of:
            raise DataError(
                f"{where}: '{name}' already has a row at line {line_of[key]}. Fix: keep one row per clip."
            )
        line_of[key] = row["line"]
        out.append(
            {
                "file_name": name,
                "text": row[caption_column],
                "line": row["line"],
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
        frames: Frames per clip ``T``: a clip is cut from its start; longer clips keep frames
            ``0, stride, 2*stride, ...`` (the rest is dropped), shorter ones are resampled
            evenly over their whole length (nearest frame: frames repeat).
        size: Output ``H = W`` (int) or ``(H, W)``: frames are resized to cover it and
            centre-cropped.
        frame_stride: Step between kept frames of long clips.
        file_column / caption_column: Field names in the metadata.
        fps: Frame rate of written GIFs.
        clip_fps: Resample every clip in time to this many frames per second before it is cut
            (:func:`~polydiff_video.data.clip_io.retime`), so that clips recorded at different
            rates cover the same time: ``frames * frame_stride / clip_fps`` seconds. None (the
            default) keeps the decoded frames: GIFs at their shortest frame duration (longer
            frames repeated), MP4 at every decoded frame. Clips that state no rate are kept.
        eval_prompts: Prompts for evaluation and the demo (default: the first 8 captions).
        on_error: ``"raise"`` on the first clip that cannot be decoded, or ``"skip"`` such
            clips (one warning names them all).
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
        clip_fps: float | None = None,
        eval_prompts: Sequence[str] | None = None,
        on_error: str = "raise",
    ) -> None:
        folder = path if path is not None else root
        if folder is None:
            raise ConfigError(
                "the 'video-folder' dataset needs a folder: pass --data-path PATH "
                "(or --set dataset.path=PATH)."
            )
        if on_error not in ("skip", "raise"):
            raise ConfigError(
                f"video-folder dataset option 'on_error' must be 'skip' or 'raise', not '{on_error}'."
            )
        self.root = Path(folder).expanduser()
        if not self.root.is_dir():
            raise DataError(f"video folder '{self.root}' does not exist or is not a directory.")
        self.split = split
        self.frames = int(frames)
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.fps = int(fps)
        if clip_fps is not None and (
            isinstance(clip_fps, bool) or not isinstance(clip_fps, (int, float)) or not clip_fps > 0
        ):
            raise ConfigError(
                f"video-folder dataset option 'clip_fps' must be a number of frames per second > 0 "
                f"(or null to keep every frame), not {clip_fps!r}; e.g. --set dataset.clip_fps=8"
            )
        self.clip_fps = None if clip_fps is None else float(clip_fps)
        rows = [
            r
            for r in read_metadata(self.root, file_column=file_column, caption_column=caption_column)
            if r.get("split", split) == split
        ]
        if not rows:
            raise DataError(f"metadata in '{self.root}' has no rows for split '{split}'.")
        self.texts, self.files, self.clips = [], [], []
        self.skipped: list[tuple[str, str]] = []
        for row in rows:
            self._check_listed(row)
            try:
                clip = self._load(row["file_name"], frame_stride)
            except DataError as exc:
                if on_error == "raise":
                    raise
                self.skipped.append((row["file_name"], str(exc)))
                continue
            self.texts.append(row["text"])
            self.files.append(row["file_name"])
            self.clips.append(clip)
        if self.skipped:
            listed = "; ".join(f"{name} ({why})" for name, why in self.skipped)
            warnings.warn(
                f"video folder '{self.root}': skipped {len(self.skipped)} of {len(rows)} unreadable "
                f"clips: {listed}",
                stacklevel=2,
            )
        if not self.clips:
            raise DataError(f"video folder '{self.root}' has no readable clips for split '{split}'.")
        self._eval_prompts = (
            list(eval_prompts) if eval_prompts is not None else list(dict.fromkeys(self.texts))[:8]
        )

    def _check_listed(self, row: dict[str, Any]) -> None:
        """The clip of a metadata row exists and has a clip suffix (always an error otherwise)."""
        path = self.root / row["file_name"]
        if not path.is_file():
            raise DataError(
                f"clip '{path}' listed in the metadata of '{self.root}' (line {row['line']}) does not "
                "exist. Fix: add the file or remove the row."
            )
        if path.suffix.lower() not in GIF_SUFFIXES + MP4_SUFFIXES:
            raise DataError(f"clip '{path}': unsupported suffix '{path.suffix}'. Use GIF or MP4.")

    def _load(self, name: str, stride: int) -> torch.Tensor:
        path = self.root / name
        count, clip_fps = self.frames, self.clip_fps
        decoded, rate = read_clip_timed(path, lambda rate: frames_needed(count, stride, clip_fps, rate))
        frames = fit_clip(
            retime(decoded, rate, self.clip_fps), self.frames, self.size, stride
        )  # [T, H, W, 3]
        return torch.from_numpy(np.ascontiguousarray(frames.transpose(3, 0, 1, 2))).float()

    def validate(self, progress: bool = False) -> DataReport:
        """Every clip was decoded when the dataset was built: report the items and the skipped."""
        checked = len(self.clips) + len(self.skipped)
        return DataReport(f"video folder '{self.root}'", len(self.clips), checked, list(self.skipped))

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
