"""Training-loss curves as a PNG with Pillow: one line per loss term, log scale."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

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
