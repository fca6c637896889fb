"""``png``: image samples, reverse/forward process strips and the loss curve as PNG files.

The drawing is the core's picture kit (:mod:`polydiff.pictures`) and the output paths follow
:mod:`polydiff.outputs`; this module only arranges images into rows and grids."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from torch import Tensor

from polydiff.interfaces import Writer
from polydiff.outputs import output_file
from polydiff.pictures.curves import loss_curve
from polydiff.pictures.grids import captioned_grid, labelled_rows, save_png, to_pictures


def _target(path: Path, default_name: str) -> Path:
    """``path`` itself when it names a ``.png`` file, else ``path / default_name``."""
    return output_file(path, default_name, PNGWriter.extensions)


class PNGWriter(Writer):
    """Writes data-space images ``[B, 1 or 3, H, W]`` in [0, 255] as labelled PNG grids.

    Every picture is enlarged by an integer factor (nearest neighbour) so that its shorter
    side is at least ``min_side`` pixels. Each method takes a file path ending in ``.png``
    or a directory (then writes ``samples.png``, ``trajectory.png``, ``forward.png`` or
    ``loss.png`` in it) and returns the paths written. Following :mod:`polydiff.outputs`, one
    sample is written to exactly ``path``, and several as one grid at ``path``.

    Args:
        min_side: Smallest displayed side of one image, in pixels.
        columns: Images per row when every prompt has a single sample.
        max_trajectory_samples: Samples shown by :meth:`write_trajectory` (the first ones).
    """

    #: Suffix callers append to a base name (``polydiff demo`` writes ``samples.png``, ...).
    extension = ".png"
    #: Suffixes ``polydiff sample/noise --out`` may have.
    extensions = (".png",)

    def __init__(self, min_side: int = 64, columns: int = 8, max_trajectory_samples: int = 8):
        self.min_side, self.columns = min_side, columns
        self.max_trajectory_samples = max_trajectory_samples

    def write_samples(
        self, x: Tensor, prompts: Sequence[str], path: Path, lengths: Sequence[int] | None = None
    ) -> list[Path]:
        """One row per run of equal consecutive prompts (label on the left) when prompts repeat;
        otherwise a grid of ``columns`` with each prompt under its image. ``lengths`` is ignored
        (images have no variable length)."""
        pictures = to_pictures(x, self.min_side)
        prompts = list(prompts) if prompts else [""] * len(pictures)
        runs = [(prompt, len(list(group))) for prompt, group in groupby(prompts)]
        if all(n == 1 for _, n in runs):
            image = captioned_grid(pictures, prompts, min(self.columns, len(pictures)))
        else:
            rows, start = [], 0
            for prompt, n in runs:
                rows.append((prompt, pictures[start : start + n]))
                start += n
            image = labelled_rows(rows)
        out = _target(path, "samples.png")
        save_png(image, out)
        return [out]

    def write_trajectory(
        self, steps: Sequence[int], xt: Tensor, x0: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """For each sample, a row of ``x_t`` and a row of the predicted ``x0`` at ``steps``.

        ``xt``, ``x0``: ``[S, B, C, H, W]`` with ``S = len(steps)``; at most
        ``max_trajectory_samples`` samples are drawn, the first sample of each distinct prompt
        first, so several prompts are shown rather than repeats of one.
        """
        headers = [f"t={int(t)}" for t in steps]
        prompts = list(prompts) + [""] * (xt.shape[1] - len(prompts))
        first: dict[str, int] = {}
        for b, prompt in enumerate(prompts):
            first.setdefault(prompt, b)
        order = list(first.values()) + [b for b in range(len(prompts)) if b not in first.values()]
        rows = []
        for b in order[: self.max_trajectory_samples]:
            prompt = prompts[b]
            rows.append((f"{prompt}\nx_t" if prompt else "x_t", to_pictures(xt[:, b], self.min_side)))
            rows.append(("predicted x0", to_pictures(x0[:, b], self.min_side)))
        out = _target(path, "trajectory.png")
        save_png(labelled_rows(rows, headers=headers, title="reverse process"), out)
        return [out]

    def write_forward(
        self, steps: Sequence[int], xt: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """One row per image, one column per step: ``xt [S, B, C, H, W]`` noised to ``steps``."""
        headers = [f"t={int(t)}" for t in steps]
        rows = [
            (prompts[b] if b < len(prompts) else "", to_pictures(xt[:, b], self.min_side))
            for b in range(xt.shape[1])
        ]
        out = _target(path, "forward.png")
        save_png(labelled_rows(rows, headers=headers, title="forward process q(x_t | x_0)"), out)
        return [out]

    def write_loss_curve(self, history: Sequence[dict[str, float]], path: Path) -> list[Path]:
        """Plot ``history[i]["loss"]`` against ``history[i]["step"]`` (entries without a loss are skipped)."""
        points = [(float(h.get("step", i)), float(h["loss"])) for i, h in enumerate(history) if "loss" in h]
        out = _target(path, "loss.png")
        save_png(loss_curve([p[0] for p in points], [p[1] for p in points]), out)
        return [out]
