"""Line plots with Pillow only: panels of ``[C, L]`` signals (:func:`line_panel`) tiled into
labelled grids of equal cells (:func:`tile`), white background. For any rank-1 data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from polydiff.pictures.grids import font

#: Line colours of channels 0, 1, 2, ...
COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))
TITLE_HEIGHT = 14


def fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, face: object) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "...", font=face) > width:
        text = text[:-1]
    return text + "..."


def line_panel(
    series: np.ndarray,
    size: tuple[int, int],
    *,
    title: str = "",
    y_range: tuple[float, float] | None = (-1.5, 1.5),
    x_length: int | None = None,
) -> Image.Image:
    """One plot: ``series: [C, L]`` as C lines; values outside ``y_range`` are clipped.

    ``y_range=None`` scales to the data.
    ``x_length`` is the number of samples the width spans (default: the series' length; set
    it larger to draw a cut signal on the same time axis as full ones).
    The title (if any) takes the top :data:`TITLE_HEIGHT` pixels; the image is exactly
    ``size`` = (width, height).
    """
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font_ = font()
    top = 0
    if title:
        draw.text((3, 1), fit_text(draw, title, width - 6, font_), fill=(0, 0, 0), font=font_)
        top = TITLE_HEIGHT
    lo, hi = y_range if y_range is not None else (float(series.min()), float(series.max()))
    if hi - lo < 1e-6:
        lo, hi = lo - 1.0, hi + 1.0
    margin = 3
    plot_h = height - top - 2 * margin

    def y_of(value: np.ndarray) -> np.ndarray:
        return top + margin + (hi - np.clip(value, lo, hi)) / (hi - lo) * plot_h

    draw.rectangle((0, top, width - 1, height - 1), outline=(200, 200, 200))
    if lo < 0 < hi:
        zero = float(y_of(np.array(0.0)))
        draw.line((1, zero, width - 2, zero), fill=(225, 225, 225))
    length = series.shape[-1]
    span = max(x_length or length, length)
    xs = margin + np.arange(length) / max(span - 1, 1) * (width - 2 * margin - 1)
    for channel, values in enumerate(series):
        points = list(zip(xs.tolist(), y_of(values).tolist()))
        draw.line(points, fill=COLORS[channel % len(COLORS)], width=1)
    return image


def tile(
    panels: Sequence[Sequence[Image.Image]],
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    label_width: int = 140,
) -> Image.Image:
    """Grid of equally sized panels (``panels[row][col]``), with optional row and column labels.

    Size: ``(label_width if row_labels else 0) + cols * w`` by
    ``(TITLE_HEIGHT if col_labels else 0) + rows * h``.
    """
    w, h = panels[0][0].size
    cols = max(len(row) for row in panels)
    left = label_width if row_labels else 0
    top = TITLE_HEIGHT if col_labels else 0
    grid = Image.new("RGB", (left + cols * w, top + len(panels) * h), "white")
    draw = ImageDraw.Draw(grid)
    font_ = font()
    for r, row in enumerate(panels):
        for c, image in enumerate(row):
            grid.paste(image, (left + c * w, top + r * h))
        if row_labels:
            text = fit_text(draw, row_labels[r], label_width - 6, font_)
            draw.text((3, top + r * h + h // 2 - 6), text, fill=(0, 0, 0), font=font_)
    for c, text in enumerate(col_labels or []):
        draw.text((left + c * w + 3, 1), fit_text(draw, text, w - 6, font_), fill=(0, 0, 0), font=font_)
    return grid
