"""Line charts drawn with Pillow (no matplotlib): panels side by side, log x axis, shared legend."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from polydiff.pictures.grids import font as kit_font

#: Distinct colours for up to eight series (mostly Okabe-Ito's colour-blind-safe set).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#222222", "#56B4E9", "#D55E00", "#999999"]


@dataclass
class Series:
    """One line: ``(x, y)`` points (sorted by x when drawn)."""

    label: str
    points: list[tuple[float, float]]


@dataclass
class Panel:
    """One plot: its series, optional horizontal reference lines ``(label, y)``, axis titles; y ticks
    as percentages (values in [0, 1]) or plain numbers."""

    title: str
    series: list[Series]
    references: list[tuple[str, float]] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    y_range: tuple[float, float] = (0.0, 1.0)
    percent: bool = True


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks between ``lo`` and ``hi`` (inclusive), for a log axis."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**exponent
            if lo <= v * (1 + 1e-9) and v <= hi * (1 + 1e-9):
                ticks.append(v)
    return ticks


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (> 0)."""
    exponent = math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10.0**exponent >= value * (1 - 1e-12):
            return m * 10.0**exponent
    return 10.0 ** (exponent + 1)


def _dashed(draw: ImageDraw.ImageDraw, x0: float, x1: float, y: float, colour: str, dash: int = 6) -> None:
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + dash, x1), y)], fill=colour, width=2)
        x += 2 * dash


def draw_line_chart(
    panels: Sequence[Panel],
    path: Path,
    *,
    panel_size: tuple[int, int] = (520, 380),
    x_range: tuple[float, float] | None = None,
) -> Path:
    """Draw ``panels`` left to right with a log x axis and a legend of series labels below; save a PNG.

    Series with the same label get the same colour in every panel.
    """
    labels = list(dict.fromkeys(s.label for p in panels for s in p.series))
    colour = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    xs = [x for p in panels for s in p.series for x, _ in s.points]
    lo, hi = x_range or (min(xs), max(xs))
    width, height = panel_size
    legend_h = 40
    image = Image.new("RGB", (width * len(panels), height + legend_h), "white")
    draw = ImageDraw.Draw(image)
    font, small = kit_font(15), kit_font(12)
    left, right, top, bottom = 62, 18, 34, 52
    for k, panel in enumerate(panels):
        ox = k * width
        px0, px1, py0, py1 = ox + left, ox + width - right, top, height - bottom
        y_lo, y_hi = panel.y_range

        def to_px(
            x: float,
            y: float,
            px0: float = px0,
            px1: float = px1,
            py0: float = py0,
            py1: float = py1,
            y_lo: float = y_lo,
            y_hi: float = y_hi,
        ) -> tuple[float, float]:
            fx = (math.log10(x) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
            fy = (y - y_lo) / (y_hi - y_lo)
            return px0 + fx * (px1 - px0), py1 - fy * (py1 - py0)

        draw.text(((px0 + px1) / 2, 8), panel.title, fill="black", font=font, anchor="mt")
        for i in range(6):  # y grid every fifth of the range
            y = y_lo + i * (y_hi - y_lo) / 5
            _, py = to_px(lo, y)
            draw.line([(px0, py), (px1, py)], fill="#e6e6e6")
            draw.text(
                (px0 - 6, py),
                f"{y:.0%}" if panel.percent else f"{y:,.{0 if y_hi >= 10 else 2}f}",
                fill="black",
                font=small,
                anchor="rm",
            )
        for tick in log_ticks(lo, hi):
            px, _ = to_px(tick, y_lo)
            draw.line([(px, py0), (px, py1)], fill="#f0f0f0")
            draw.text((px, py1 + 6), f"{tick:g}", fill="black", font=small, anchor="mt")
        draw.rectangle([px0, py0, px1, py1], outline="black")
        draw.text(((px0 + px1) / 2, height - 14), panel.x_label, fill="black", font=small, anchor="mb")
        if panel.y_label:
            draw.text((ox + 4, top - 16), panel.y_label, fill="black", font=small, anchor="lt")
        for label, y in panel.references:
            _, py = to_px(lo, y)
            _dashed(draw, px0, px1, py, "#444444")
            draw.text((px1 - 4, py - 3), label, fill="#444444", font=small, anchor="rb")
        # earlier series drawn wider, so that lines lying on top of each other all stay visible
        for rank, s in enumerate(panel.series):
            pts = [to_px(x, y) for x, y in sorted(s.points)]
            line_width = 2 + len(panel.series) - 1 - rank
            if len(pts) > 1:
                draw.line(pts, fill=colour[s.label], width=line_width)
            r = line_width / 2 + 2
            for x, y in pts:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour[s.label])
    x = 16
    for label in labels:
        y = height + legend_h / 2
        draw.line([(x, y), (x + 26, y)], fill=colour[label], width=4)
        draw.text((x + 32, y), label, fill="black", font=font, anchor="lm")
        x += 44 + int(draw.textlength(label, font=font))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
