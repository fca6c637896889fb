"""``gif`` writer: one animated GIF per clip, a contact sheet, and strips of the diffusion process.

Frames, sheets and GIFs are drawn by the core's picture kit (:mod:`polydiff.pictures.frames`);
output paths follow :mod:`polydiff.outputs`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from polydiff.errors import ConfigError
from polydiff.interfaces import Writer
from polydiff.outputs import numbered, output_file, stem_of, with_suffix_kept
from polydiff.pictures.frames import clip_frames, frame_sheet, save_gif

__all__ = ["GifWriter", "save_gif"]


def _stem(path: Path) -> Path:
    """``out/samples.gif`` and ``out/samples`` both give the stem ``out/samples``."""
    return stem_of(path, (".gif", ".png"))


def _target(path: Path, default_name: str) -> Path:
    """``path``, or ``path/default_name`` when ``path`` is an existing directory."""
    return output_file(path, default_name)


class GifWriter(Writer):
    """Writes clips ``[B, 3, T, H, W]`` (data space, [0, 255]).

    Output paths follow :mod:`polydiff.outputs`: one clip is written to exactly ``STEM.gif``;
    several to ``STEM-00.gif, STEM-01.gif, ...`` plus the contact sheet ``STEM.png``. A ``.png``
    path gets the contact sheet alone. Strips of the diffusion process are PNGs: ``STEM.png``
    for one sample, ``STEM-00.png, ...`` for several. An existing directory gets the default
    names (``samples``, ``trajectory``, ``forward``) inside it.

    Args:
        fps: Frame rate of the GIFs (datasets pass theirs via ``writer_options()``).
        scale: Integer upscaling of GIF frames; None = to at least 128 pixels wide (32x32 clips
            are tiny on screen).
        sheet_scale: Integer upscaling of frames in the PNG sheets; None = to at least 64 pixels.
        max_trajectory_samples: At most this many samples get a trajectory/forward strip.
    """

    #: Suffix of the default output path (``polydiff sample`` writes ``samples/sample.gif``).
    extension = ".gif"
    #: Suffixes ``--out`` may have: clips, or the contact sheet / strips alone.
    extensions = (".gif", ".png")

    def __init__(
        self,
        fps: float = 8.0,
        scale: int | None = None,
        sheet_scale: int | None = None,
        max_trajectory_samples: int = 4,
    ):
        if fps <= 0 or (scale is not None and scale < 1) or (sheet_scale is not None and sheet_scale < 1):
            raise ConfigError(
                f"gif writer: need fps > 0 and scales >= 1, got fps={fps}, scale={scale}, "
                f"sheet_scale={sheet_scale}."
            )
        self.fps = float(fps)
        self.scale = scale
        self.sheet_scale = sheet_scale
        self.max_trajectory_samples = int(max_trajectory_samples)

    def _scales(self, x: Tensor) -> tuple[int, int]:
        """``(gif scale, sheet scale)`` for clips ``[..., H, W]``."""
        width = int(x.shape[-1])
        return (self.scale or max(1, 128 // width), self.sheet_scale or max(1, 64 // width))

    def write_samples(
        self, x: Tensor, prompts: Sequence[str], path: Path, lengths: Sequence[int] | None = None
    ) -> list[Path]:
        """One clip: exactly ``STEM.gif``. Several: ``STEM-00.gif, STEM-01.gif, ...`` and
        ``STEM.png``, a contact sheet with one row of frames per clip under its prompt, where
        ``STEM`` is ``path`` without its suffix. A ``.png`` ``path``: the contact sheet only.
        ``lengths`` is ignored: clips of a batch all have the same frames and size."""
        path = _target(path, "samples.gif")
        if path.suffix.lower() == ".png":
            return [self.write_sheet(x, prompts, path)]
        stem = _stem(path)
        if len(x) == 1:
            return [
                save_gif(
                    clip_frames(x[0]), with_suffix_kept(stem, ".gif"), fps=self.fps, scale=self._scales(x)[0]
                )
            ]
        return [*self.write_gifs(x, stem), self.write_sheet(x, prompts, with_suffix_kept(stem, ".png"))]

    def write_gifs(self, x: Tensor, path: Path) -> list[Path]:
        """One GIF per clip of ``x: [B, 3, T, H, W]``: ``STEM-00.gif, STEM-01.gif, ...`` (numbered
        even for one clip; :meth:`write_samples` writes one clip to exactly its path)."""
        stem = _stem(Path(path))
        scale = self._scales(x)[0]
        return [
            save_gif(clip_frames(c), stem.parent / f"{stem.name}-{i:02d}.gif", fps=self.fps, scale=scale)
            for i, c in enumerate(x)
        ]

    def write_sheet(self, x: Tensor, prompts: Sequence[str], path: Path) -> Path:
        """A contact sheet PNG of ``x: [B, 3, T, H, W]``: one row of frames per clip under its prompt."""
        path = with_suffix_kept(_stem(Path(path)), ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [list(clip_frames(c)) for c in x]
        frame_sheet(rows, _labels(prompts, len(rows)), scale=self._scales(x)[1]).save(path)
        return path

    def write_trajectory(
        self, steps: Sequence[int], xt: Tensor, x0: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """One PNG per sample (``STEM.png`` for one, ``STEM-00.png, ...`` for several): a row per
        timestep with the frames of ``x_t``, a gap, then the frames of the predicted ``x0``.
        ``xt, x0: [S, B, 3, T, H, W]``; at most ``max_trajectory_samples`` are drawn."""
        stem = _stem(_target(path, "trajectory.png"))
        stem.parent.mkdir(parents=True, exist_ok=True)
        labels = _labels(prompts, xt.shape[1])
        outs = numbered(with_suffix_kept(stem, ".png"), xt.shape[1])
        written = []
        for b in range(min(xt.shape[1], self.max_trajectory_samples)):
            rows = [[*clip_frames(xt[s, b]), None, *clip_frames(x0[s, b])] for s in range(len(steps))]
            names = [f"t={int(t)}: x_t | predicted x0" for t in steps]
            names[0] = f"{labels[b]} -- {names[0]}"
            out = outs[b]
            frame_sheet(rows, names, scale=self._scales(xt)[1]).save(out)
            written.append(out)
        return written

    def write_forward(
        self, steps: Sequence[int], xt: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """One PNG per sample (``STEM.png`` for one, ``STEM-00.png, ...`` for several): a row of
        frames per timestep. ``xt: [S, B, 3, T, H, W]``."""
        stem = _stem(_target(path, "forward.png"))
        stem.parent.mkdir(parents=True, exist_ok=True)
        labels = _labels(prompts, xt.shape[1])
        outs = numbered(with_suffix_kept(stem, ".png"), xt.shape[1])
        written = []
        for b in range(min(xt.shape[1], self.max_trajectory_samples)):
            rows = [list(clip_frames(xt[s, b])) for s in range(len(steps))]
            names = [f"t={int(t)}" for t in steps]
            names[0] = f"{labels[b]} -- {names[0]}"
            out = outs[b]
            frame_sheet(rows, names, scale=self._scales(xt)[1]).save(out)
            written.append(out)
        return written


def _labels(prompts: Sequence[str], count: int) -> list[str]:
    """``prompts`` padded with empty labels to ``count`` (a prompt list may be shorter than the batch)."""
    return [str(p) for p in prompts[:count]] + [""] * max(0, count - len(prompts))
