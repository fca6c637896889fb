"""Checking a dataset before training, and helpers for datasets that read users' files.

:func:`check_dataset` is the validation pass the trainer runs after building the dataset
(and ``polydiff check-data`` runs alone). A dataset may define
``validate(progress: bool = False) -> DataReport``: it checks its own files (decoding audio,
say) and, when its ``on_error`` is ``"skip"``, drops the bad items itself and lists them in
``skipped``. Without ``validate()`` every item is loaded and its ``"x"`` checked: a tensor,
finite, and of one shape (all but the last axis when the dataset has ``collate``, i.e.
variable-length items). A dataset with ``synthetic = True`` (generated in code) is not
checked unless ``full=True``.

The helpers :func:`read_text_lines` and :func:`path_inside` give metadata readers one-line
:class:`~polydiff.errors.DataError` messages naming the file and the line.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polydiff.errors import DataError, PluginError

#: Problems listed in a report's one-line summary before "and N more".
SHOWN = 3


@dataclass
class DataReport:
    """What a validation pass found.

    Attributes:
        name: What was checked (the dataset's class or registry name).
        items: Items left to train on.
        checked: Items (or files) the pass looked at; 0 when it was not run (synthetic).
        skipped: ``(file, why)`` of items left out (the dataset's ``on_error="skip"``).
        errors: ``(file, why)`` of items that cannot be used.
        synthetic: The dataset is generated in code and was not checked.
    """

    name: str
    items: int
    checked: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    synthetic: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """One line: ``items``, ``skipped`` and ``errors`` counts."""
        if self.synthetic:
            return f"{self.name}: {self.items} items, generated in code (not checked; use full=True)"
        return (
            f"{self.name}: {self.items} items usable, {self.checked} checked, "
            f"{len(self.skipped)} skipped, {len(self.errors)} errors"
        )

    def error_message(self) -> str:
        """One line naming the first bad files, the count and the fix."""
        return " ".join(self._error_message().split())  # one line, whatever the reasons hold

    def _error_message(self) -> str:
        fix = (
            "Fix: replace or remove those files (and their metadata rows), or skip them with "
            "--set dataset.on_error=skip where the dataset has that option; `polydiff check-data` "
            "lists them all"
        )
        if len(self.errors) == 1:
            file, why = self.errors[0]
            problem = why if file in why else f"{file}: {why}"
            return f"{self.name}: {problem}" + ("" if "Fix:" in why else f". {fix}")
        shown = "; ".join(
            why.split(". Fix:")[0] if file in why else f"{file}: {why.split('. Fix:')[0]}"
            for file, why in self.errors[:SHOWN]
        )
        more = f" (and {len(self.errors) - SHOWN} more)" if len(self.errors) > SHOWN else ""
        return f"{self.name}: {len(self.errors)} unusable items: {shown}{more}. {fix}"

    def raise_for_errors(self) -> DataReport:
        """Raise a one-line :class:`DataError` when there are errors; else return ``self``."""
        if self.errors:
            raise DataError(self.error_message())
        return self


def check_dataset(
    dataset: Any, *, progress: bool = False, full: bool = False, raise_errors: bool = False
) -> DataReport:
    """Validate ``dataset`` (see the module docstring) and return what was found.

    Args:
        dataset: A map-style dataset (``ds[i]["x"]`` a tensor).
        progress: Show a tqdm bar on stderr.
        full: Check datasets that declare ``synthetic = True`` too.
        raise_errors: Raise a one-line :class:`DataError` when an item is unusable.
    """
    name = type(dataset).__name__
    if getattr(dataset, "synthetic", False) and not full:
        report = DataReport(name, len(dataset), synthetic=True)
    elif callable(getattr(dataset, "validate", None)):
        report = dataset.validate(progress=progress)
        if not isinstance(report, DataReport):
            raise PluginError(f"{name}.validate() returned {type(report).__name__}, expected a DataReport")
    else:
        report = _load_every_item(dataset, name, progress)
    return report.raise_for_errors() if raise_errors else report


def _load_every_item(dataset: Any, name: str, progress: bool) -> DataReport:
    import torch  # here: metadata readers import this module without torch

    report = DataReport(name, len(dataset))
    variable = getattr(dataset, "collate", None) is not None
    first_shape: tuple[int, ...] | None = None
    first_file = ""
    for index in progress_bar(range(len(dataset)), progress, f"checking {name}"):
        file = f"item {index}"
        try:
            item = dataset[index]
            file = _item_file(item, index)
            x = item["x"]
        except DataError as exc:
            report.errors.append((file, str(exc)))
            continue
        except Exception as exc:  # a dataset's own bug or a file it cannot read: name the item
            report.errors.append((file, f"{type(exc).__name__}: {exc}"))
            continue
        report.checked += 1
        if not isinstance(x, torch.Tensor):
            report.errors.append((file, f"'x' is a {type(x).__name__}, not a tensor"))
            continue
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            report.errors.append((file, f"{bad} of {x.numel()} values are NaN or infinite"))
            continue
        shape = tuple(x.shape[:-1] if variable else x.shape)
        if first_shape is None:
            first_shape, first_file = shape, file
        elif shape != first_shape:
            report.errors.append((file, f"shape {tuple(x.shape)} differs from {first_file}'s {first_shape}"))
    report.items = len(dataset) - len(report.errors)
    return report


def _item_file(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in ("file", "wav_path", "path", "id"):
            if item.get(key):
                return str(item[key])
    return f"item {index}"


def progress_bar(iterable: Any, enabled: bool, desc: str) -> Any:
    """``iterable`` wrapped in a tqdm bar on stderr when ``enabled`` (else unchanged)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="item", file=sys.stderr, leave=False)


# ---------------------------------------------------------------------------- metadata helpers
def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, split at ``\\n`` only (a leading BOM is dropped).

    Raises:
        DataError: a line is not UTF-8 (the message names the file and the line).
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte {raw[exc.start : exc.start + 1]!r}). "
            "Fix: re-save the file as UTF-8"
        ) from exc
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # not splitlines(): U+2028 is text
    return lines[:-1] if lines and lines[-1] == "" else lines


def path_inside(root: Path, name: str, where: str) -> Path:
    """``root / name`` when it stays inside ``root``, symlinks resolved.

    Args:
        root: The data folder.
        name: A relative path from a metadata row.
        where: ``"FILE, line N"`` for the message.

    Raises:
        DataError: ``name`` is absolute, climbs out with ``..``, or is a symlink that leads
            out of ``root``.
    """
    if os.path.isabs(name) or Path(name).is_absolute() or name.startswith(("/", "\\")):
        raise DataError(
            f"{where}: file name '{name}' is an absolute path. Fix: give it relative to the data "
            f"folder '{root}' (and copy the file there)"
        )
    if ".." in Path(name).parts:
        raise DataError(
            f"{where}: file name '{name}' leads out of the data folder '{root}' with '..'. Fix: "
            "move the file into the folder and name it relative to it"
        )
    path = root / name
    ensure_inside(root, path, where)
    return path


def ensure_inside(root: Path, path: Path, where: str) -> None:
    """Raise a :class:`DataError` when ``path`` resolves (through symlinks) outside ``root``."""
    real_root = Path(root).resolve()
    real = Path(path).resolve()
    if real != real_root and real_root not in real.parents:
        raise DataError(
            f"{where}: '{path}' leads through a symlink to '{real}', outside the data folder "
            f"'{real_root}'. Fix: copy the file into the folder (or point --data-path at a folder "
            "that holds it)"
        )
