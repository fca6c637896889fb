"""Reading clips from files and fitting them to a fixed number of frames and size.

Frames are numpy uint8 ``[T, H, W, 3]`` here (the file layout); datasets transpose them
to the data-space layout ``[3, T, H, W]``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from polydiff.errors import ConfigError, DataError, MissingDependencyError

GIF_SUFFIXES = (".gif",)
#: ``limit(rate)``: how many leading frames of a clip at ``rate`` frames per second (None: unknown)
#: are needed; see :func:`frames_needed`.
FrameLimit = Callable[[float | None], int]
MP4_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")


def read_gif(path: Path) -> np.ndarray:
    """Decode an animated (or still) GIF to uint8 ``[T, H, W, 3]`` (see :func:`read_gif_timed`)."""
    return read_gif_timed(path)[0]


def read_gif_timed(path: Path) -> tuple[np.ndarray, float | None]:
    """Decode an animated (or still) GIF -> ``(uint8 [T, H, W, 3], frames per second or None)``.

    Frames shown for longer than the shortest frame are repeated ``round(duration /
    shortest)`` times, so the result is sampled at a constant rate, ``1000 / shortest``
    frames per second (None when the GIF states no durations). This also restores identical
    consecutive frames, which GIF encoders (Pillow included) merge into one longer frame.
    """
    try:
        with Image.open(path) as image:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(image):
                frames.append(np.asarray(frame.convert("RGB"), dtype=np.uint8))
                durations.append(int(frame.info.get("duration", 0) or 0))
    except Exception as exc:  # Pillow raises many types (DecompressionBombError is no OSError)
        why = str(exc) if type(exc) in (OSError, ValueError) else f"{type(exc).__name__}: {exc}"
        why = why.rstrip(".")
        raise DataError(
            f"cannot read GIF '{path}': {why}. Fix: re-export the clip as an animated GIF or remove it "
            f"(and its metadata row)."
        ) from exc
    if not frames:
        raise DataError(f"GIF '{path}' has no frames. Fix: re-export it or remove it.")
    positive = [d for d in durations if d > 0]
    rate = None
    if positive:
        shortest = min(positive)
        repeats = [max(1, round(d / shortest)) if d > 0 else 1 for d in durations]
        frames = [f for f, r in zip(frames, repeats) for _ in range(r)]
        rate = 1000.0 / shortest
    return np.stack(frames), rate


def read_video(path: Path) -> np.ndarray:
    """Decode an MP4 (or another container PyAV reads) to uint8 ``[T, H, W, 3]``."""
    return read_video_timed(path)[0]


def read_video_timed(path: Path, limit: FrameLimit | None = None) -> tuple[np.ndarray, float | None]:
    """Decode an MP4 (or another container PyAV reads) -> ``(uint8 [T, H, W, 3], its stream's
    average frames per second or None)``; every decoded frame is kept, or the first
    ``limit(rate)`` of them (decoding stops there: a long clip is never held whole)."""
    if importlib.util.find_spec("av") is None:
        raise MissingDependencyError(
            f"reading '{path}' needs PyAV, which is not installed. Fix: pip install 'polydiff-video[mp4]' "
            f"(or convert the clip to GIF)."
        )
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else None
            most = None if limit is None else max(1, int(limit(rate)))
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if most is not None and len(frames) >= most:
                    break
    except Exception as exc:  # whatever PyAV raises for a broken file
        why = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
        raise DataError(f"cannot read video '{path}': {why}. Fix: re-encode the clip or remove it.") from exc
    if not frames:
        raise DataError(f"video '{path}' has no frames. Fix: re-encode it or remove it.")
    return np.stack(frames), rate


def read_clip(path: Path) -> np.ndarray:
    """Decode a clip file by its suffix: uint8 ``[T, H, W, 3]``."""
    return read_clip_timed(path)[0]


def read_clip_timed(path: Path, limit: FrameLimit | None = None) -> tuple[np.ndarray, float | None]:
    """Decode a clip file by its suffix: ``(uint8 [T, H, W, 3], frames per second or None)``.

    ``limit(rate)``: at most this many frames of a video container are decoded (GIFs are
    decoded whole: their rate is known only from every frame's duration)."""
    suffix = path.suffix.lower()
    if suffix in GIF_SUFFIXES:
        return read_gif_timed(path)
    if suffix in MP4_SUFFIXES:
        return read_video_timed(path, limit)
    raise DataError(
        f"'{path}' is not a clip polydiff-video reads (suffix '{suffix}'). Supported: "
        f"{', '.join(GIF_SUFFIXES + MP4_SUFFIXES)} (video containers need the 'mp4' extra)."
    )


def frame_indices(available: int, frames: int, stride: int = 1) -> np.ndarray:
    """Which of ``available`` frames to keep for a clip of ``frames`` frames.

    Consecutive frames ``0, stride, 2 * stride, ...`` when the clip is long enough;
    otherwise ``frames`` indices spread evenly over the whole clip (nearest frame, so
    short clips repeat frames).
    """
    if stride < 1:
        raise ConfigError(f"frame_stride must be >= 1, got {stride}.")
    needed = (frames - 1) * stride + 1
    if available >= needed:
        return np.arange(frames) * stride
    return np.linspace(0, available - 1, frames).round().astype(np.int64)


def frames_needed(frames: int, stride: int, clip_fps: float | None, rate: float | None) -> int:
    """How many leading source frames :func:`retime` then :func:`fit_clip` can use: decoding only
    these gives the same clip as decoding the whole file (a clip shorter than this is read whole
    and spread over ``frames`` as before).

    Without retiming that is ``(frames - 1) * stride + 1``; resampled from ``rate`` to
    ``clip_fps``, retimed frame ``k`` is source frame ``floor(k * rate / clip_fps)``, and the
    retimed clip must count that many, so ``ceil(needed * rate / clip_fps) + 1`` source frames.
    """
    needed = (frames - 1) * stride + 1
    if clip_fps is None or rate is None or abs(rate - clip_fps) < 1e-9:
        return needed
    return int(np.ceil(needed * rate / clip_fps)) + 1


def retime(frames: np.ndarray, rate: float | None, target: float | None) -> np.ndarray:
    """``frames`` shown at ``rate`` frames per second, resampled to ``target``: frame ``k`` of
    the result is the source frame on screen at time ``k / target`` (index
    ``floor(k * rate / target)``), over the clip's whole duration. Unchanged when either rate is
    None or they are equal."""
    if rate is None or target is None or abs(rate - target) < 1e-9:
        return frames
    count = max(1, int(np.floor(len(frames) * target / rate + 1e-9)))
    index = np.minimum(np.floor(np.arange(count) * rate / target + 1e-9).astype(np.int64), len(frames) - 1)
    return frames[index]


def resize_and_crop(frame: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a uint8 ``[H, W, 3]`` frame to cover ``(height, width)``, then centre-crop to it."""
    height, width = size
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    image = Image.fromarray(frame).resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)), dtype=np.uint8)


def fit_clip(frames: np.ndarray, num_frames: int, size: Sequence[int], stride: int = 1) -> np.ndarray:
    """Cut/resample uint8 ``[T0, H0, W0, 3]`` to ``[num_frames, H, W, 3]`` (see
    :func:`frame_indices` and :func:`resize_and_crop`)."""
    picked = frames[frame_indices(len(frames), num_frames, stride)]
    return np.stack([resize_and_crop(f, size) for f in picked])
