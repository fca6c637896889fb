"""Mel spectrograms as PNG images with Pillow (no matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

#: Anchors of a perceptually ordered dark-to-bright colour map (magma-like), RGB 0..255.
_ANCHORS = np.array(
    [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
    dtype=np.float64,
)
LABEL_HEIGHT = 12


def colorize(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """``[H, W]`` floats -> ``[H, W, 3]`` uint8 through the colour map."""
    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-8), 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.floor(scaled).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (scaled - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


def value_range(mels: Sequence[Tensor], floor: float) -> tuple[float, float]:
    """Shared colour range of several log-mels: from ``floor`` (silence) to a robust maximum."""
    values = np.concatenate([m.detach().float().cpu().numpy().ravel() for m in mels])
    return floor, max(float(np.percentile(values, 99.5)), floor + 1.0)


def mel_image(mel: Tensor, vmin: float, vmax: float, scale: int = 2) -> Image.Image:
    """``mel: [n_mels, T]`` -> an RGB image, low frequencies at the bottom, ``scale`` px per cell."""
    values = mel.detach().float().cpu().numpy()[::-1]
    image = Image.fromarray(colorize(values, vmin, vmax), "RGB")
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def grid_image(
    mels: Sequence[Sequence[Tensor]],
    labels: Sequence[Sequence[str]] | None = None,
    *,
    floor: float,
    scale: int = 2,
    gap: int = 4,
) -> Image.Image:
    """Rows of log-mels ``mels[r][c]`` (each ``[n_mels, T]``) in one image, optional labels above each."""
    flat = [m for row in mels for m in row]
    vmin, vmax = value_range(flat, floor)
    cells = [[mel_image(m, vmin, vmax, scale) for m in row] for row in mels]
    label_h = LABEL_HEIGHT if labels is not None else 0
    col_w = [max(row[c].width for row in cells if c < len(row)) for c in range(max(map(len, cells)))]
    row_h = [max(c.height for c in row) + label_h for row in cells]
    canvas = Image.new(
        "RGB", (sum(col_w) + gap * (len(col_w) - 1), sum(row_h) + gap * (len(row_h) - 1)), (255, 255, 255)
    )
    draw = ImageDraw.Draw(canvas)
    y = 0
    for r, row in enumerate(cells):
        x = 0
        for c, cell in enumerate(row):
            if labels is not None:
                draw.text((x + 1, y), labels[r][c][: max(1, cell.width // 6)], fill=(0, 0, 0))
            canvas.paste(cell, (x, y + label_h))
            x += col_w[c] + gap
        y += row_h[r] + gap
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Save as a 256-colour PNG (the images come from a 1-D colour map, so nothing visible is lost)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
