"""Pillow helpers shared by every writer: fonts, tensors to pictures, labelled grids and rows.

White background, dark ink (:data:`BACKGROUND`, :data:`INK`). Rank-2 pictures come from
:func:`to_pictures`; clips are laid out by :mod:`polydiff.pictures.frames`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image, ImageDraw, ImageFont

from polydiff.errors import ConfigError

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
PAD = 4


@lru_cache(maxsize=4)
def font(size: int = 11) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` (a bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, TypeError):  # Pillow without FreeType, or older than 10.1
        return ImageFont.load_default()


def text_size(text: str, size: int = 11) -> tuple[int, int]:
    """``(width, height)`` of ``text`` (possibly several lines) in :func:`font`."""
    if not text:
        return 0, 0
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).multiline_textbbox(
        (0, 0), text, font=font(size), spacing=2
    )
    return right - min(left, 0), bottom - min(top, 0)


def wrap(text: str, width: int) -> str:
    """Wrap each line of ``text`` to lines of at most ``width`` characters."""
    return "\n".join("\n".join(textwrap.wrap(line, width)) or "" for line in text.split("\n")) if text else ""


def to_pictures(x: torch.Tensor, min_side: int = 64) -> list[Image.Image]:
    """``x: [B, C, H, W]`` data space [0, 255], C in {1, 3} -> B RGB pictures, each upscaled
    (nearest neighbour, an integer factor) so that its shorter side is at least ``min_side``."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ConfigError(
            f"the png writer takes images [B, 1 or 3, H, W]; got a tensor of shape {tuple(x.shape)}"
        )
    pixels = x.detach().float().cpu().clamp(0, 255).round().to(torch.uint8)
    if pixels.shape[1] == 1:
        pixels = repeat(pixels, "b 1 h w -> b c h w", c=3)
    scale = max(1, -(-min_side // min(pixels.shape[-2:])))
    arrays = rearrange(pixels, "b c h w -> b h w c").numpy()
    return [
        Image.fromarray(np.ascontiguousarray(a)).resize(
            (a.shape[1] * scale, a.shape[0] * scale), Image.Resampling.NEAREST
        )
        for a in arrays
    ]


def labelled_rows(
    rows: Sequence[tuple[str, Sequence[Image.Image]]], headers: Sequence[str] | None = None, title: str = ""
) -> Image.Image:
    """Rows of pictures with a label on the left of each row and optional column headers.

    Args:
        rows: ``(label, pictures)`` per row; pictures of one size.
        headers: Text above each column.
        title: Text above everything.
    """
    cell_w, cell_h = rows[0][1][0].size
    labels = [wrap(label, 28) for label, _ in rows]
    label_w = max((text_size(t)[0] for t in labels), default=0)
    label_w = label_w + 2 * PAD if label_w else 0
    header_h = max((text_size(h)[1] for h in headers), default=0) + PAD if headers else 0
    title_h = text_size(title)[1] + 2 * PAD if title else 0
    ncols = max(len(p) for _, p in rows)
    width = label_w + ncols * (cell_w + PAD) + PAD
    height = title_h + header_h + len(rows) * (cell_h + PAD) + PAD
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, PAD), title, fill=INK, font=font())
    for j, header in enumerate(headers or []):
        x = label_w + PAD + j * (cell_w + PAD) + (cell_w - text_size(header)[0]) // 2
        draw.text((x, title_h + PAD // 2), header, fill=INK, font=font())
    for i, (label, (_, pictures)) in enumerate(zip(labels, rows)):
        y = title_h + header_h + PAD + i * (cell_h + PAD)
        if label:
            draw.multiline_text(
                (PAD, y + (cell_h - text_size(label)[1]) // 2), label, fill=INK, font=font(), spacing=2
            )
        for j, picture in enumerate(pictures):
            canvas.paste(picture, (label_w + PAD + j * (cell_w + PAD), y))
    return canvas


def captioned_grid(pictures: Sequence[Image.Image], captions: Sequence[str], columns: int) -> Image.Image:
    """Pictures in a grid of ``columns``, each with its (wrapped) caption underneath."""
    cell_w, cell_h = pictures[0].size
    chars = max(8, cell_w // 6)
    texts = [wrap(c, chars) for c in captions]
    text_h = max((text_size(t)[1] for t in texts), default=0)
    text_h = text_h + PAD if text_h else 0
    nrows = -(-len(pictures) // columns)
    width = columns * (cell_w + PAD) + PAD
    height = nrows * (cell_h + text_h + PAD) + PAD
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, (picture, text) in enumerate(zip(pictures, texts)):
        row, col = divmod(k, columns)
        x, y = PAD + col * (cell_w + PAD), PAD + row * (cell_h + text_h + PAD)
        canvas.paste(picture, (x, y))
        if text:
            draw.multiline_text((x, y + cell_h + 2), text, fill=INK, font=font(), spacing=2)
    return canvas


def save_png(image: Image.Image, path) -> None:
    """Save ``image`` as PNG, creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
