"""Items per second of the image ``folder`` dataset: its build (the decode pass), with and without
the disk cache, and an epoch through the trainer's DataLoader with 0 or 2 workers, with the
memory cache or without it (every item decoded when drawn).

The folder is made once (``--make N``) from the two photographs that ship with scikit-learn: N
random non-square crops (120-320 pixels a side) saved as JPEG (quality 90), so that decoding costs
what real photographs cost. Nothing is downloaded; the folder stays where ``--folder`` says.

    python bench/folder_throughput.py --folder /tmp/realdata/bench_images --make 3000 --rounds 5
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from polydiff.training.batching import StepBatchSampler, step_loader
from polydiff_image.datasets.folder import FolderDataset


def make_folder(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` random crops of scikit-learn's photographs as JPEG files in ``folder``."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = (int(v) for v in rng.integers(120, 321, size=2))
        top, left = int(rng.integers(0, photo.shape[0] - h)), int(rng.integers(0, photo.shape[1] - w))
        Image.fromarray(photo[top : top + h, left : left + w]).save(folder / f"{i:05d}.jpg", quality=90)


def build(**options) -> tuple[FolderDataset, float]:
    start = time.perf_counter()
    ds = FolderDataset(**options)
    return ds, time.perf_counter() - start


def epoch(ds: FolderDataset, workers: int, batch: int = 32) -> float:
    """Items per second of one epoch through the trainer's loader (worker start-up included)."""
    steps = len(ds) // batch
    sampler = StepBatchSampler(len(ds), batch, seed=0)
    start = time.perf_counter()
    loader = iter(step_loader(ds, sampler, lambda items: torch.stack([i["x"] for i in items]), workers))
    for _ in range(steps):
        next(loader)
    elapsed = time.perf_counter() - start
    del loader
    return steps * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--make", type=int, default=0, help="create N images first (if the folder is empty)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="repeat every measurement (median, range)")
    args = parser.parse_args()
    if args.make and not any(args.folder.glob("*.jpg")):
        make_folder(args.folder, args.make)
    torch.set_num_threads(1)
    n = len(list(args.folder.glob("*.jpg")))
    rates: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for what, rate in one_round(args.folder, args.size, n):
            rates.setdefault(what, []).append(rate)
    print(
        f"{n} JPEG files in {args.folder}, size {args.size}, batch 32, torch threads 1, "
        f"{args.rounds} rounds\n"
    )
    print("| what | items/s (median) | range |\n|---|---|---|")
    for what, values in rates.items():
        print(f"| {what} | {np.median(values):,.0f} | {min(values):,.0f} - {max(values):,.0f} |")


def one_round(folder: Path, size: int, n: int) -> list[tuple[str, float]]:
    """Every measurement once, with a fresh disk cache."""
    cache = Path(tempfile.mkdtemp(prefix="polydiff-folder-cache-"))
    rows = []
    try:
        base = {"path": folder, "size": size}
        _, t = build(**base, decode_threads=1)
        rows.append(("build, no disk cache, 1 decoding thread (the decode pass)", n / t))
        ds, t = build(**base, decode_threads=2)
        rows.append(("build, no disk cache, 2 decoding threads", n / t))
        _, t = build(**base, cache_dir=cache)
        rows.append(("build, disk cache cold (decode + write)", n / t))
        _, t = build(**base, cache_dir=cache)
        rows.append(("build, disk cache warm (read)", n / t))
        rows.append(("epoch, memory cache, 0 workers", epoch(ds, 0)))
        rows.append(("epoch, memory cache, 2 workers", epoch(ds, 2)))
        lazy, _ = build(**base, cache_mb=0)
        rows.append(("epoch, no cache (decoded when drawn), 0 workers", epoch(lazy, 0)))
        rows.append(("epoch, no cache (decoded when drawn), 2 workers", epoch(lazy, 2)))
        mapped, _ = build(**base, cache_mb=0, cache_dir=cache)
        rows.append(("epoch, disk cache only (memory-mapped), 0 workers", epoch(mapped, 0)))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return rows


if __name__ == "__main__":
    main()
