"""Pictures of clips: frames to uint8, upscaling, labelled sheets of frames (dark background)
and GIF writing (Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)


def clip_frames(clip: torch.Tensor | np.ndarray) -> np.ndarray:
    """Data-space ``[3, T, H, W]`` in [0, 255] -> uint8 ``[T, H, W, 3]`` (rounded, clamped)."""
    array = clip.detach().float().cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip, float)
    if array.ndim != 4 or array.shape[0] != 3:
        raise ValueError(f"expected a clip shaped [3, T, H, W], got {list(array.shape)}")
    return rearrange(np.clip(np.rint(array), 0, 255).astype(np.uint8), "c t h w -> t h w c")


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of ``[H, W, 3]`` by an integer factor."""
    return frame if scale == 1 else frame.repeat(scale, axis=0).repeat(scale, axis=1)


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def frame_sheet(
    rows: Sequence[Sequence[np.ndarray | None]],
    labels: Sequence[str],
    *,
    scale: int = 2,
    pad: int = 2,
    gap: int = 8,
) -> Image.Image:
    """Lay out rows of frames under one-line labels.

    Args:
        rows: Each row is a sequence of uint8 ``[H, W, 3]`` frames (all the same size);
            ``None`` inserts a ``gap``-pixel separator (e.g. between ``x_t`` and ``x0``).
        labels: One caption per row, drawn above it.
        scale: Integer nearest-neighbour upscaling of every frame.
        pad: Pixels between frames and around the sheet.
        gap: Width of a ``None`` separator.
    """
    frame = next(f for row in rows for f in row if f is not None)
    fh, fw = frame.shape[0] * scale, frame.shape[1] * scale
    font = _font()
    label_h = max(font.getbbox(label or "x")[3] for label in labels) + 3 if any(labels) else 0

    def row_width(row: Sequence[np.ndarray | None]) -> int:
        return sum(gap if f is None else fw + pad for f in row) + pad

    width = max(
        max(row_width(r) for r in rows), max((font.getbbox(lab)[2] + 2 * pad for lab in labels), default=0)
    )
    height = pad + len(rows) * (label_h + fh + pad)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = pad
    for row, label in zip(rows, labels):
        if label:
            draw.text((pad, y), label, fill=TEXT, font=font)
        y += label_h
        x = pad
        for f in row:
            if f is None:
                x += gap
                continue
            sheet.paste(Image.fromarray(upscale(f, scale)), (x, y))
            x += fw + pad
        y += fh + pad
    return sheet


def save_gif(frames: np.ndarray, path, *, fps: float = 8.0, scale: int = 1):
    """Write uint8 ``[T, H, W, 3]`` as a looping GIF at ``fps``, upscaled by ``scale``; returns ``path``.

    Identical consecutive frames are stored once with a longer duration (the GIF way).
    """
    images = [Image.fromarray(upscale(f, scale)) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, optimize=False
    )
    return path
