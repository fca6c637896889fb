"""The ``timeseries-png`` writer: line plots of signals in PNG grids (``polydiff_writers``).

Drawing and output paths come from the core's picture kit (:mod:`polydiff.pictures.plots`:
line panels and labelled tiles) and :func:`polydiff.outputs.output_file`; this module only
says which signals go in which cell."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from polydiff import Writer
from polydiff.outputs import output_file
from polydiff.pictures.plots import line_panel as panel
from polydiff.pictures.plots import tile


def _numpy(x: Tensor, dims: int, what: str) -> np.ndarray:
    if x.dim() != dims:
        raise ValueError(f"timeseries-png: {what} must have {dims} dims, got shape {tuple(x.shape)}")
    return x.detach().float().cpu().numpy()


class TimeseriesPngWriter(Writer):
    """Draws ``[C, L]`` signals as line plots (one colour per channel) with Pillow.

    Args:
        panel_width, panel_height: Size in pixels of one plot (its title included).
        columns: Plots per row in a grid of samples.
        y_range: Fixed vertical range (values outside are clipped), so plots compare;
            None scales each plot to its data.
    """

    #: File extension the CLI gives default output paths.
    extension = ".png"
    #: Suffixes ``polydiff sample/noise --out`` may have (see ``polydiff.outputs``): one sample is
    #: written to exactly the path given, several as one grid there.
    extensions = (".png",)

    def __init__(
        self,
        *,
        panel_width: int = 192,
        panel_height: int = 96,
        columns: int = 4,
        y_range: Sequence[float] | None = (-1.5, 1.5),
    ) -> None:
        self.size = (panel_width, panel_height)
        self.columns = columns
        self.y_range = tuple(y_range) if y_range is not None else None

    def write_samples(
        self, x: Tensor, prompts: Sequence[str], path: Path, lengths: Sequence[int] | None = None
    ) -> list[Path]:
        """``x: [B, C, L]`` -> one PNG grid, ``min(B, columns)`` plots wide, titled by prompt.

        ``lengths`` (optional): plot only the first ``lengths[b]`` samples of signal ``b``.
        """
        signals = _numpy(x, 3, "samples")
        full = signals.shape[-1]
        if lengths is not None:
            signals = [s[:, :n] for s, n in zip(signals, lengths)]
        cells = [
            panel(s, self.size, title=p, y_range=self.y_range, x_length=full)
            for s, p in zip(signals, prompts)
        ]
        columns = min(len(cells), self.columns)
        rows = [cells[r * columns : (r + 1) * columns] for r in range(math.ceil(len(cells) / columns))]
        path = output_file(path, "samples.png")
        tile(rows).save(path)
        return [path]

    def write_trajectory(
        self, steps: Sequence[int], xt: Tensor, x0: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """``xt, x0: [S, B, C, L]`` -> one PNG: per sample a row of ``x_t`` and a row of predicted ``x0``."""
        noisy, clean = _numpy(xt, 4, "xt"), _numpy(x0, 4, "x0")
        rows, labels = [], []
        for b, prompt in enumerate(prompts):
            for name, values in (("x_t", noisy), ("x0", clean)):
                rows.append([panel(values[s, b], self.size, y_range=self.y_range) for s in range(len(steps))])
                labels.append(f"{name}: {prompt}")
        path = output_file(path, "trajectory.png")
        tile(rows, row_labels=labels, col_labels=[f"t={t}" for t in steps]).save(path)
        return [path]

    def write_forward(
        self, steps: Sequence[int], xt: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """``xt: [S, B, C, L]`` -> one PNG: per sample a row of ``x_t`` at increasing ``t``."""
        noisy = _numpy(xt, 4, "xt")
        rows = [
            [panel(noisy[s, b], self.size, y_range=self.y_range) for s in range(len(steps))]
            for b in range(len(prompts))
        ]
        path = output_file(path, "forward.png")
        tile(rows, row_labels=list(prompts), col_labels=[f"t={t}" for t in steps]).save(path)
        return [path]

    def write_loss_curve(self, history: Sequence[dict[str, float]], path: Path) -> list[Path]:
        """Training loss (``history[i]["loss"]``, log scale) against logged step."""
        losses = np.array([entry["loss"] for entry in history if "loss" in entry], dtype=np.float64)
        if losses.size < 2:
            return []
        size = (self.size[0] * 2, self.size[1] * 2)
        title = f"training loss (log scale): {losses[0]:.3g} -> {losses[-1]:.3g}"
        path = output_file(path, "loss.png")
        panel(np.log10(np.maximum(losses, 1e-12))[None], size, title=title, y_range=None).save(path)
        return [path]
