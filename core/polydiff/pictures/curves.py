"""Training-loss charts drawn with Pillow (no matplotlib): one loss with its moving average
(:func:`loss_curve`), or several loss terms on a log scale (:func:`loss_plot`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

from polydiff.pictures.grids import BACKGROUND, INK, font, text_size

RAW = (170, 190, 230)
SMOOTH = (25, 70, 170)
GRID = (225, 225, 225)


def smooth(values: Sequence[float], weight: float | None = None) -> list[float]:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing); by default the
    weight ``1 - 20 / len(values)`` (clipped to [0, 0.95]) averages over ~5% of the points."""
    if weight is None:
        weight = min(0.95, max(0.0, 1.0 - 20.0 / max(1, len(values))))
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def loss_curve(
    steps: Sequence[float],
    losses: Sequence[float],
    title: str = "training loss",
    size: tuple[int, int] = (640, 400),
) -> Image.Image:
    """Plot ``losses`` against ``steps``: the raw values in light blue, their moving average in
    dark blue; a log y axis when the values span more than a factor of 10."""
    width, height = size
    left, right, top, bottom = 64, 16, 28, 40
    pairs = [(s, v) for s, v in zip(steps, losses) if math.isfinite(v)]
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((left, 8), title, fill=INK, font=font(12))
    if not pairs:
        draw.text((left, height // 2), "no finite loss values", fill=INK, font=font())
        return canvas
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    log = min(ys) > 0 and max(ys) / min(ys) > 10
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    y_lo, y_hi = f(min(ys)), f(max(ys))
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1

    def point(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_lo) / (x_hi - x_lo) * (width - left - right)
        py = height - bottom - (f(y) - y_lo) / (y_hi - y_lo) * (height - top - bottom)
        return px, py

    for k in range(5):  # horizontal grid lines with y labels
        fy = y_lo + k / 4 * (y_hi - y_lo)
        y = height - bottom - k / 4 * (height - top - bottom)
        draw.line([(left, y), (width - right, y)], fill=GRID)
        label = f"{10**fy:.3g}" if log else f"{fy:.3g}"
        draw.text((left - 6 - text_size(label)[0], y - 6), label, fill=INK, font=font())
    for k in range(5):  # x ticks
        fx = x_lo + k / 4 * (x_hi - x_lo)
        x = left + k / 4 * (width - left - right)
        draw.line([(x, height - bottom), (x, height - bottom + 4)], fill=INK)
        label = f"{fx:.0f}"
        draw.text((x - text_size(label)[0] // 2, height - bottom + 6), label, fill=INK, font=font())
    draw.text(((width - text_size("step")[0]) // 2, height - 16), "step", fill=INK, font=font())
    draw.rectangle([(left, top), (width - right, height - bottom)], outline=INK)
    if len(pairs) > 1:
        draw.line([point(x, y) for x, y in zip(xs, ys)], fill=RAW, width=1)
        draw.line([point(x, y) for x, y in zip(xs, smooth(ys))], fill=SMOOTH, width=2)
    else:
        px, py = point(xs[0], ys[0])
        draw.ellipse([(px - 3, py - 3), (px + 3, py + 3)], fill=SMOOTH)
    return canvas


#: Line colours of :func:`loss_plot`, one per loss term.
COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def loss_plot(
    curves: Mapping[str, Sequence[tuple[float, float]]], width: int = 480, height: int = 300
) -> Image.Image:
    """``{name: [(step, value), ...]}`` -> a line chart with a log10 y axis and a legend."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    points = {k: [(s, v) for s, v in pts if v > 0 and math.isfinite(v)] for k, pts in curves.items()}
    points = {k: v for k, v in points.items() if v}
    if not points:
        draw.text((10, 10), "no finite positive losses to plot", fill=(0, 0, 0))
        return image
    steps = [s for pts in points.values() for s, _ in pts]
    logs = [math.log10(v) for pts in points.values() for _, v in pts]
    s0 = min(steps)
    s1 = max(max(steps), s0 + 1)
    l0 = math.floor(min(logs))
    l1 = max(math.ceil(max(logs)), l0 + 1)
    left, right, top, bottom = 50, width - 10, 10, height - 30
    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    for decade in range(l0, l1 + 1):
        y = bottom - (decade - l0) / (l1 - l0) * (bottom - top)
        draw.line((left, y, right, y), fill=(220, 220, 220))
        draw.text((5, y - 6), f"1e{decade}", fill=(0, 0, 0))
    draw.text((left, bottom + 8), f"step {s0:g}", fill=(0, 0, 0))
    draw.text((right - 70, bottom + 8), f"step {s1:g}", fill=(0, 0, 0))
    for i, (name, pts) in enumerate(points.items()):
        color = COLORS[i % len(COLORS)]
        xy = [
            (
                left + (s - s0) / (s1 - s0) * (right - left),
                bottom - (math.log10(v) - l0) / (l1 - l0) * (bottom - top),
            )
            for s, v in pts
        ]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        draw.text((right - 100, top + 5 + 12 * i), name, fill=color)
    return image
