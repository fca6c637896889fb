"""``folder``: your own images, with captions in the Hugging Face *imagefolder* layout.

::

    my_images/
      metadata.jsonl        {"file_name": "cats/001.png", "text": "a cat on a sofa"}  (one per line)
      cats/001.png          ... or metadata.csv with a header row: file_name,text
      dogs/002.jpg

Without ``metadata.jsonl``/``metadata.csv`` the dataset is unconditional (every caption is
``""``; train it with ``--conditioner none``). Images are converted to RGB (see
:func:`to_rgb` for the rule per mode), fitted to ``size x size`` by the ``resize`` policy
(:func:`fit_square`: centre crop or letterbox) and reduced to one channel when ``channels``
says so (``"auto"``: when every image is grey; :func:`pick_channels`). Every file is decoded
once when the dataset is built; the decoded images are kept in memory up to ``cache_mb`` and,
with ``cache_dir``, on disk (:mod:`~polydiff_image.datasets.decoded_cache`).

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
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from polydiff.data_check import DataReport, ensure_inside, path_inside, read_text_lines
from polydiff.errors import ConfigError, DataError
from polydiff_image.datasets.decoded_cache import DecodedCache, cache_key

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"}
)
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


RESIZE_POLICIES = ("crop", "pad")


def fit_square(image: Image.Image, size: int, resize: str = "crop", pad_fill: int = 0) -> Image.Image:
    """An RGB picture -> ``size x size``, keeping its aspect ratio.

    * ``"crop"``: the shorter side is resized to ``size`` (bicubic), the longer one
      centre-cropped;
    * ``"pad"``: the longer side is resized to ``size``, and the picture is centred on a
      square of grey level ``pad_fill`` (0 = black, a letterbox).
    """
    w, h = image.size
    if resize == "crop":
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        return image.crop((left, top, left + size, top + size))
    if resize != "pad":
        raise ConfigError(
            f"folder dataset option 'resize' must be one of {', '.join(RESIZE_POLICIES)}, not '{resize}'"
        )
    scale = size / max(w, h)
    nw, nh = min(size, max(1, round(w * scale))), min(size, max(1, round(h * scale)))
    image = image.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), (pad_fill, pad_fill, pad_fill))
    canvas.paste(image, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def load_image(path: Path, size: int, resize: str = "crop", pad_fill: int = 0) -> torch.Tensor:
    """Decode ``path``, convert it to RGB (:func:`to_rgb`) and fit it to a square
    (:func:`fit_square`) -> uint8 ``[3, size, size]``.

    Raises:
        DataError: Pillow cannot decode the file, for whatever reason (named in the message).
    """
    try:
        with Image.open(path) as image:
            image.load()
            image = to_rgb(image)
    except Exception as exc:  # Pillow raises many types (DecompressionBombError is no OSError)
        raise DataError(f"cannot read image '{path}': {_why(exc)}. Fix: replace or delete the file") from exc
    image = fit_square(image, size, resize, pad_fill)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def is_grey(x: torch.Tensor) -> bool:
    """Whether RGB ``x [..., 3, H, W]`` has equal red, green and blue everywhere."""
    return bool(
        torch.equal(x[..., 0, :, :], x[..., 1, :, :]) and torch.equal(x[..., 1, :, :], x[..., 2, :, :])
    )


def pick_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 RGB ``[..., 3, H, W]`` -> ``[..., channels, H, W]``.

    One channel is the ITU-R 601-2 luma of Pillow's ``convert("L")``, with its rounding
    (``(19595 R + 38470 G + 7471 B + 32768) >> 16``): exactly the grey level of a grey pixel.
    """
    if channels == 3:
        return x
    r, g, b = (c.to(torch.int32) for c in x.unbind(-3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).unsqueeze(-3).to(torch.uint8)


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
    """Images from a folder; items ``{"x": uint8 [channels, size, size], "text": caption or "",
    "file": relative path}``.

    Args:
        split: ``"train"`` or ``"eval"``; both are the whole folder.
        path: The folder (searched recursively for image files).
        size: Output side in pixels.
        caption_column: Metadata field holding the caption (default ``"text"``).
        on_error: ``"skip"`` unreadable images (with one warning naming them) or ``"raise"``.
        channels: ``"auto"`` (1 when every readable image is grey after :func:`to_rgb`, else 3),
            1 (the luma of :func:`pick_channels`) or 3.
        resize: How a non-square image becomes square: ``"crop"`` (centre crop) or ``"pad"``
            (letterbox); see :func:`fit_square`.
        pad_fill: Grey level 0-255 of the ``"pad"`` border.
        cache_mb: Memory for decoded images, in MiB, counted as RGB (3 bytes a pixel): the
            first images (in file order) that fit are kept; the others are read again when
            drawn, from ``cache_dir`` or by decoding their files (then DataLoader workers help,
            see :attr:`loader_workers`). 0 keeps none.
        cache_dir: A directory for the on-disk cache of decoded images
            (:mod:`~polydiff_image.datasets.decoded_cache`); None (the default) = no disk cache.
        decode_threads: Threads that decode the files when the dataset is built (``"auto"``:
            the usable CPUs, at most 8). The images are the same with any number; on 2 shared
            cores 2 threads were no faster than 1, so 1 is the default.
    """

    def __init__(
        self,
        split: str = "train",
        path: str | Path | None = None,
        size: int = 32,
        caption_column: str = "text",
        on_error: str = "skip",
        channels: int | str = "auto",
        resize: str = "crop",
        pad_fill: int = 0,
        cache_mb: float = 1024,
        cache_dir: str | Path | None = None,
        decode_threads: int | str = 1,
    ):
        if path is None:
            raise ConfigError(
                "the folder dataset needs a folder: --data-path PATH/TO/IMAGES "
                "(or --set dataset.path=PATH/TO/IMAGES)"
            )
        _check_options(on_error, channels, resize, pad_fill, cache_mb, size)
        if decode_threads != "auto" and (
            isinstance(decode_threads, bool) or not isinstance(decode_threads, int) or decode_threads < 1
        ):
            raise ConfigError(
                f"folder dataset option 'decode_threads' must be 'auto' or an integer >= 1, not "
                f"{decode_threads!r}; e.g. --set dataset.decode_threads=4"
            )
        self.decode_threads = min(8, _usable_cpus()) if decode_threads == "auto" else int(decode_threads)
        self.root, self.size, self.split = Path(path).expanduser(), int(size), split
        self.resize, self.pad_fill, self.on_error = resize, int(pad_fill), on_error
        if not self.root.is_dir():
            raise DataError(f"folder dataset: '{self.root}' is not a directory")
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            ensure_inside(self.root, file, f"image '{file.relative_to(self.root).as_posix()}'")
        metadata = read_metadata(self.root, caption_column)
        names = [p.relative_to(self.root).as_posix() for p in files]
        if metadata is not None:
            _check_metadata_matches(self.root, names, metadata)
        budget = int(cache_mb * 2**20) // (3 * self.size * self.size)  # images kept in memory
        self._array_path: Path | None = None
        self._array: np.ndarray | None = None
        disk = None
        if cache_dir is not None:
            options = {"size": self.size, "resize": resize, "pad_fill": self.pad_fill}
            disk = DecodedCache(Path(cache_dir), cache_key(self.root, files, options))
        entry = disk.read() if disk is not None else None
        if entry is not None and entry[0].shape != (len(files), 3, self.size, self.size):
            entry = None  # not what this key promises (a damaged entry): decode and write it again
        if entry is None:
            kept, rows, grey, self.skipped, memory = self._decode_all(files, names, budget, disk)
        else:
            array, index = entry
            kept, rows, grey = index["files"], index["rows"], index["grey"]
            self.skipped = [(name, why) for name, why in index["skipped"]]
            if self.skipped and on_error == "raise":
                name, why = self.skipped[0]
                raise DataError(
                    f"cannot read image '{self.root / name}': {why}. Fix: replace or delete the file"
                )
            memory = torch.from_numpy(np.array(array[rows[:budget]])) if budget and rows else None
        if disk is not None:
            self._array_path = disk.array_path
        if self.skipped:
            listed = "; ".join(f"{name} ({why})" for name, why in self.skipped)
            warnings.warn(
                f"folder dataset '{self.root}': skipped {len(self.skipped)} of {len(files)} "
                f"unreadable image files: {listed}",
                stacklevel=2,
            )
        if not kept:
            raise DataError(
                f"folder dataset '{self.root}' has no readable images (looked for "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}, recursively)"
            )
        self.files, self._rows = list(kept), list(rows)
        self.texts = [metadata[name] if metadata is not None else "" for name in self.files]
        self.conditional = metadata is not None
        self._channels_option = channels
        self.channels = (1 if grey else 3) if channels == "auto" else int(channels)
        empty = torch.empty((0, 3, self.size, self.size), dtype=torch.uint8)
        self._memory = pick_channels(memory if memory is not None else empty, self.channels)
        self.data_shape = (self.channels, self.size, self.size)
        #: DataLoader workers this dataset wants (``train.num_workers="auto"``): images not held
        #: in memory nor on disk are decoded when drawn, which workers do in parallel.
        self.loader_workers = 0 if len(self._memory) == len(self.files) or disk is not None else 4

    def conform(self, data_shape: tuple[int, ...]) -> None:
        """Give the items of a run trained on ``data_shape`` (called when a run is loaded): with
        ``channels="auto"``, a run trained on 3-channel images of a folder that is now all grey
        (runs before the ``channels`` option, or a folder that changed) gets the grey level
        three times, and a 1-channel run of a folder that now holds colour gets the luma.

        Raises:
            DataError: ``channels`` was given and differs from the run's.
        """
        want = int(data_shape[0])
        if want == self.channels:
            return
        if self._channels_option != "auto" or want not in (1, 3):
            raise DataError(
                f"folder dataset '{self.root}': the run was trained on {want}-channel images, but the "
                f"option channels={self._channels_option} gives {self.channels}. Fix: --set "
                f"dataset.channels={want} (or leave the option out)"
            )
        if want == 3:  # auto chose 1 channel: every image is grey, so this is exact
            self._memory = self._memory.expand(-1, 3, -1, -1).contiguous()
        else:
            self._memory = pick_channels(self._memory, 1)
        self.channels = want
        self.data_shape = (want, self.size, self.size)

    def _decode_all(
        self, files: list[Path], names: list[str], budget: int, disk: DecodedCache | None
    ) -> tuple[list[str], list[int], bool, list[tuple[str, str]], torch.Tensor | None]:
        """Decode every file once: ``(kept names, their rows, all grey, skipped, the first
        ``budget`` images)``, writing the disk cache entry when ``disk`` is given."""
        store = disk.start(len(files), self.size) if disk is not None else None
        kept, rows, memory, skipped, grey = [], [], [], [], True
        try:
            for row, (name, x) in enumerate(zip(names, self._decode_each(files))):
                if isinstance(x, DataError):
                    if self.on_error == "raise":
                        raise x
                    skipped.append((name, _why(x.__cause__ or x)))
                    continue
                kept.append(name)
                rows.append(row)
                grey = grey and is_grey(x)
                if store is not None:
                    store[row] = x.numpy()
                if len(memory) < budget:
                    memory.append(x)
            if disk is not None and store is not None:
                index = {"files": kept, "rows": rows, "grey": grey, "skipped": skipped}
                disk.finish(store, index)
        except BaseException:
            if disk is not None:
                disk.abandon()
            raise
        return kept, rows, grey, skipped, torch.stack(memory) if memory else None

    def _decode_each(self, files: list[Path]) -> Iterator[torch.Tensor | DataError]:
        """Each file decoded (or the DataError that says why not), in order, by
        ``decode_threads`` threads (Pillow decodes and resizes without holding the GIL)."""

        def one(path: Path) -> torch.Tensor | DataError:
            try:
                return load_image(path, self.size, self.resize, self.pad_fill)
            except DataError as exc:
                return exc

        if self.decode_threads <= 1:
            yield from map(one, files)
            return
        with ThreadPoolExecutor(self.decode_threads) as pool:
            for start in range(0, len(files), 256):  # a bounded number of decoded images in flight
                yield from pool.map(one, files[start : start + 256])

    def _read(self, index: int) -> torch.Tensor:
        """Image ``index`` that is not held in memory: from the disk cache, or decoded again."""
        if self._array_path is not None:
            if self._array is None:
                self._array = np.load(self._array_path, mmap_mode="r")
            x = torch.from_numpy(np.array(self._array[self._rows[index]]))
        else:
            path = self.root / self.files[index]
            try:
                x = load_image(path, self.size, self.resize, self.pad_fill)
            except DataError as exc:
                raise DataError(f"{exc} (it was readable when the dataset was built)") from exc
        return pick_channels(x, self.channels)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for DataLoader workers (spawn): the memory map is opened again there."""
        return {**self.__dict__, "_array": None}

    @property
    def images(self) -> torch.Tensor:
        """Every image, uint8 ``[N, channels, size, size]`` (read as :meth:`__getitem__` does)."""
        if len(self._memory) == len(self.files):
            return self._memory
        return torch.stack([self[i]["x"] for i in range(len(self))])

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
        x = self._memory[index] if index < len(self._memory) else self._read(index)
        return {"x": x, "text": self.texts[index], "file": self.files[index]}


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_options(
    on_error: str, channels: Any, resize: str, pad_fill: Any, cache_mb: Any, size: Any
) -> None:
    """One-line ConfigErrors naming the folder dataset option, the value and the fix."""
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"folder dataset option 'on_error' must be 'skip' or 'raise', not '{on_error}'")
    if isinstance(channels, bool) or channels not in ("auto", 1, 3):
        raise ConfigError(
            f"folder dataset option 'channels' must be 'auto', 1 or 3, not {channels!r}; "
            "e.g. --set dataset.channels=1 for grey images"
        )
    if resize not in RESIZE_POLICIES:
        raise ConfigError(
            f"folder dataset option 'resize' must be 'crop' (centre crop) or 'pad' (letterbox), "
            f"not {resize!r}; e.g. --set dataset.resize=pad"
        )
    if isinstance(pad_fill, bool) or not isinstance(pad_fill, int) or not 0 <= pad_fill <= 255:
        raise ConfigError(
            f"folder dataset option 'pad_fill' must be a grey level from 0 to 255, not {pad_fill!r}; "
            "e.g. --set dataset.pad_fill=255 for white"
        )
    if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, float)) or not cache_mb >= 0:
        raise ConfigError(
            f"folder dataset option 'cache_mb' must be a number of MiB >= 0, not {cache_mb!r}; "
            "e.g. --set dataset.cache_mb=1024 (the default; 0 keeps no decoded image in memory)"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(
            f"folder dataset option 'size' must be a positive integer, not {size!r}; "
            "e.g. --set dataset.size=32"
        )


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
