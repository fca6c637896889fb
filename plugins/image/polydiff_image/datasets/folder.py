"""``folder``: your own images, with captions in the Hugging Face *imagefolder* layout.

::

    my_images/
      metadata.jsonl        {"file_name": "cats/001.png", "text": "a cat on a sofa"}  (one per line)
      cats/001.png          ... or metadata.csv with a header row: file_name,text
      dogs/002.jpg

Without ``metadata.jsonl``/``metadata.csv`` the dataset is unconditional (every caption is
``""``; train it with ``--conditioner none``). Images are converted to RGB (see
:func:`to_rgb` for the rule per mode), resized so that the shorter side is ``size`` and
centre-cropped to ``size x size``, and all of them are decoded once, when the dataset is
built.

Metadata must be UTF-8; every row names one image (a relative path inside the folder: no
absolute paths, no ``..``, no symlink that leads out of the folder; one row per image) and
a string caption (``null`` or a number is an error). Such problems are one-line
:class:`polydiff.DataError` messages naming the file and the line.

Unreadable files (whatever Pillow raises, ``DecompressionBombError`` included): with
``on_error="skip"`` (the default) such a file is left out and one warning names every
skipped file and the count; with ``on_error="raise"`` the first one raises
:class:`polydiff.DataError` naming it. A folder where no image is left is always an error.
Both splits are the whole folder.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from polydiff.data_check import DataReport, ensure_inside, path_inside, read_text_lines
from polydiff.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
METADATA_FILES = ("metadata.jsonl", "metadata.csv")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB without clipping or dropping information silently.

    * ``I;16*`` and ``I`` (16-bit grey) are scaled from 0-65535 to 0-255 (``round(v / 257)``);
    * ``F`` (32-bit float) is taken as 0-1 and scaled to 0-255 (clipped); NaN or infinite
      pixels make the file unreadable;
    * transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent colour, premultiplied
      modes) is composited over a white background;
    * ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ... use Pillow's own conversion.

    Raises:
        ValueError: non-finite float pixels, or a mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image).astype(np.float64)
        if mode == "F":
            if not np.isfinite(values).all():
                raise ValueError("float image with NaN or infinite pixels")
            values = values * 255.0
        else:
            values = values / 257.0
        grey = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _why(exc: BaseException) -> str:
    """``exc``'s message, led by its type unless that is a plain OSError or ValueError."""
    plain = type(exc) in (OSError, ValueError) or isinstance(exc, DataError)
    return str(exc) if plain else f"{type(exc).__name__}: {exc}"


def load_image(path: Path, size: int) -> torch.Tensor:
    """Decode ``path``, convert it to RGB (:func:`to_rgb`), resize its shorter side to ``size``,
    centre-crop -> uint8 ``[3, size, size]``.

    Raises:
        DataError: Pillow cannot decode the file, for whatever reason (named in the message).
    """
    try:
        with Image.open(path) as image:
            image.load()
            image = to_rgb(image)
    except Exception as exc:  # Pillow raises many types (DecompressionBombError is no OSError)
        raise DataError(f"cannot read image '{path}': {_why(exc)}. Fix: replace or delete the file") from exc
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def read_metadata(root: Path, caption_column: str = "text") -> dict[str, str] | None:
    """Captions by relative file name from ``metadata.jsonl`` or ``metadata.csv``; None if neither.

    Raises:
        DataError: both files exist; the file is not UTF-8; a line is not valid JSON; a row
            lacks ``file_name`` or ``caption_column``, has a caption that is not a string, names
            a path outside ``root`` or repeats a file (the message names the file and line).
    """
    present = [root / name for name in METADATA_FILES if (root / name).is_file()]
    if not present:
        return None
    if len(present) > 1:
        raise DataError(f"folder '{root}' has both metadata.jsonl and metadata.csv; keep one of them")
    path = present[0]
    lines = read_text_lines(path)
    rows: list[tuple[int, Any]] = []
    if path.suffix == ".jsonl":
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append((line_no, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{line_no} is not valid JSON ({exc.msg}); each line must be "
                    f'an object like {{"file_name": "a.png", "text": "a caption"}}'
                ) from exc
    else:
        reader = csv.DictReader(lines)
        rows = [(reader.line_num, row) for row in reader]
    captions: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for line_no, row in rows:
        where = f"{path}:{line_no}"
        if not isinstance(row, dict) or "file_name" not in row or caption_column not in row:
            raise DataError(f"{where} needs the fields 'file_name' and '{caption_column}'; got {row!r}")
        name, text = row["file_name"], row[caption_column]
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: 'file_name' must be a non-empty string, got {name!r}")
        if not isinstance(text, str):
            raise DataError(
                f"{where}: the caption '{caption_column}' of '{name}' is {json.dumps(text)}, not a string. "
                'Fix: write the caption in quotes ("" for none)'
            )
        path_inside(root, name, where)
        key = Path(name).as_posix()
        if key in line_of:
            raise DataError(
                f"{where}: '{name}' already has a row at line {line_of[key]}. Fix: keep one row per image"
            )
        line_of[key] = line_no
        captions[key] = text
    return captions


class FolderDataset:
    """Images from a folder; items ``{"x": uint8 [3, size, size], "text": caption or "",
    "file": relative path}``.

    Args:
        split: ``"train"`` or ``"eval"``; both are the whole folder.
        path: The folder (searched recursively for image files).
        size: Output side in pixels.
        caption_column: Metadata field holding the caption (default ``"text"``).
        on_error: ``"skip"`` unreadable images (with one warning naming them) or ``"raise"``.
    """

    def __init__(
        self,
        split: str = "train",
        path: str | Path | None = None,
        size: int = 32,
        caption_column: str = "text",
        on_error: str = "skip",
    ):
        if path is None:
            raise ConfigError(
                "the folder dataset needs a folder: --data-path PATH/TO/IMAGES "
                "(or --set dataset.path=PATH/TO/IMAGES)"
            )
        if on_error not in ("skip", "raise"):
            raise ConfigError(f"folder dataset option 'on_error' must be 'skip' or 'raise', not '{on_error}'")
        self.root, self.size, self.split = Path(path).expanduser(), size, split
        if not self.root.is_dir():
            raise DataError(f"folder dataset: '{self.root}' is not a directory")
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            ensure_inside(self.root, file, f"image '{file.relative_to(self.root).as_posix()}'")
        metadata = read_metadata(self.root, caption_column)
        names = [p.relative_to(self.root).as_posix() for p in files]
        if metadata is not None:
            _check_metadata_matches(self.root, names, metadata)
        images, self.files, texts = [], [], []
        self.skipped: list[tuple[str, str]] = []
        for path, name in zip(files, names):
            try:
                images.append(load_image(path, size))
            except DataError as exc:
                if on_error == "raise":
                    raise
                self.skipped.append((name, _why(exc.__cause__ or exc)))
                continue
            self.files.append(name)
            texts.append(metadata[name] if metadata is not None else "")
        if self.skipped:
            listed = "; ".join(f"{name} ({why})" for name, why in self.skipped)
            warnings.warn(
                f"folder dataset '{self.root}': skipped {len(self.skipped)} of {len(files)} "
                f"unreadable image files: {listed}",
                stacklevel=2,
            )
        if not images:
            raise DataError(
                f"folder dataset '{self.root}' has no readable images (looked for "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}, recursively)"
            )
        self.images = torch.stack(images)
        self.texts = texts
        self.conditional = metadata is not None
        self.data_shape = (3, size, size)

    def validate(self, progress: bool = False) -> DataReport:
        """Every image was decoded when the dataset was built: report the items and the skipped."""
        checked = len(self.files) + len(self.skipped)
        return DataReport(f"folder dataset '{self.root}'", len(self.files), checked, list(self.skipped))

    @property
    def captions(self) -> list[str]:
        """Every caption (empty when the folder has no metadata)."""
        return list(self.texts) if self.conditional else []

    @property
    def eval_prompts(self) -> list[str]:
        """Up to 8 distinct captions (8 empty prompts when unconditional)."""
        if not self.conditional:
            return [""] * 8
        return list(dict.fromkeys(self.texts))[:8]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.images[index], "text": self.texts[index], "file": self.files[index]}


def _check_metadata_matches(root: Path, names: list[str], metadata: dict[str, str]) -> None:
    missing = sorted(set(metadata) - set(names))
    if missing:
        raise DataError(
            f"metadata in '{root}' lists {len(missing)} image(s) that do not exist, e.g. "
            f"'{missing[0]}'; fix the file_name or remove the row"
        )
    uncaptioned = [n for n in names if n not in metadata]
    if uncaptioned:
        raise DataError(
            f"image '{root / uncaptioned[0]}' has no row in the metadata "
            f"({len(uncaptioned)} image(s) lack one); add a row or move the file out"
        )
