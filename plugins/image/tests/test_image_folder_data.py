"""Image folders as they come: grey folders keep one channel, non-square images follow the resize
policy, decoded images are cached (in memory and on disk), and DataLoader workers change no batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import polydiff_image.datasets.folder as folder_module
import polydiff_image.plugin as image_plugin
from polydiff.builder import build_dataset
from polydiff.errors import ConfigError, DataError
from polydiff.pipeline import DiffusionPipeline
from polydiff.plugins import Registry
from polydiff.run_config import RunConfig
from polydiff.training.batching import StepBatchSampler, resolve_workers, step_loader
from polydiff.training.trainer import Trainer
from polydiff_image.datasets.folder import FolderDataset, fit_square, pick_channels


def _grey_folder(root, n: int = 8, size=(10, 8)):
    """``n`` grey PNGs (mode L), each a different horizontal ramp."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ramp = (np.arange(size[0]) * (20 + i) % 256).astype(np.uint8)
        Image.fromarray(np.tile(ramp, (size[1], 1)), "L").save(root / f"g{i}.png")
    return root


def _counting(monkeypatch) -> list[str]:
    """Count the files the folder dataset decodes."""
    calls: list[str] = []
    real = folder_module.load_image

    def load(path, *args, **kwargs):
        calls.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folder_module, "load_image", load)
    return calls


# ----------------------------------------------------------------------------- channels
def test_a_grey_folder_has_one_channel_and_a_colour_image_makes_three(tmp_path) -> None:
    root = _grey_folder(tmp_path / "g", n=2)
    Image.new("L", (6, 9), 40).save(root / "orl.pgm")  # netpbm files (the ORL faces) are read too
    grey = FolderDataset(path=root, size=8)
    assert grey.data_shape == (1, 8, 8) and grey[0]["x"].shape == (1, 8, 8) and len(grey) == 3
    assert int(grey[grey.files.index("orl.pgm")]["x"].float().mean()) == 40
    rgb = FolderDataset(path=root, size=8, channels=3)
    assert torch.equal(rgb[0]["x"][0], grey[0]["x"][0]) and torch.equal(rgb[0]["x"][1], rgb[0]["x"][2])
    Image.new("RGB", (8, 8), (200, 30, 10)).save(root / "red.png")
    assert FolderDataset(path=root, size=8).data_shape == (3, 8, 8)  # one colour image: RGB
    forced = FolderDataset(path=root, size=8, channels=1)
    red = forced[forced.files.index("red.png")]["x"]
    assert red.shape == (1, 8, 8) and int(red[0, 0, 0]) == Image.new("RGB", (1, 1), (200, 30, 10)).convert(
        "L"
    ).getpixel((0, 0))


def test_luma_matches_pillow_and_keeps_grey_levels() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ours = pick_channels(torch.from_numpy(rgb).permute(2, 0, 1), 1)[0].numpy()
    assert (ours == np.asarray(Image.fromarray(rgb).convert("L"))).all()
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16).expand(3, -1, -1)
    assert torch.equal(pick_channels(levels, 1)[0], levels[0])


def test_a_grey_folder_trains_and_samples_with_one_channel(tmp_path) -> None:
    registry = Registry.from_plugins(image_plugin)
    root = _grey_folder(tmp_path / "faces", n=8, size=(12, 8))
    cfg = RunConfig.for_modality(
        "image",
        dataset="folder",
        conditioner="none",
        registry=registry,
        overrides={
            "dataset": {"folder": {"path": str(root), "size": 8}},
            "unet": {"model_channels": 8, "channel_mult": [1], "attention_levels": [], "norm_groups": 4},
            "diffusion": {"num_timesteps": 20},
            "train": {"steps": 2, "batch_size": 4, "log_every": 1, "ema_decay": 0.0, "num_workers": 0},
        },
    )
    Trainer(cfg, tmp_path / "run", registry=registry, progress=False, device="cpu").fit()
    pipe = DiffusionPipeline.from_checkpoint(tmp_path / "run", registry=registry, device="cpu")
    assert pipe.config.data_shape == [1, 8, 8] and pipe.config.unet.in_channels == 1
    out = pipe([""], num_per_prompt=2, steps=2)
    assert out.samples.shape == (2, 1, 8, 8)
    (path,) = pipe.writer().write_samples(out.samples, out.prompts, tmp_path / "s.png")
    with Image.open(path) as image:
        assert image.mode == "RGB"


# ----------------------------------------------------------------------------- resize policy
def test_crop_keeps_the_middle_and_pad_letterboxes_the_whole_image() -> None:
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    wide[:, :10] = (255, 0, 0)  # red left third, black middle, blue right third
    wide[:, 20:] = (0, 0, 255)
    image = Image.fromarray(wide)
    crop = np.asarray(fit_square(image, 10, "crop"))
    assert crop.shape == (10, 10, 3) and crop.max() < 40  # only the black middle is left
    pad = np.asarray(fit_square(image, 12, "pad", pad_fill=255))
    assert pad.shape == (12, 12, 3)
    assert (pad[:4] == 255).all() and (pad[8:] == 255).all()  # 12 x 4 picture, white bands
    assert pad[6, 1].tolist() == [255, 0, 0] and pad[6, 10].tolist() == [0, 0, 255]  # both ends kept
    tall = np.asarray(fit_square(Image.new("RGB", (5, 20), (0, 255, 0)), 8, "pad"))
    assert (tall[:, :3] == 0).all() and (tall[:, 5:] == 0).all() and (tall[:, 3:5] == (0, 255, 0)).all()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("resize", "stretch", "'resize' must be 'crop' (centre crop) or 'pad' (letterbox), not 'stretch'"),
        ("channels", 2, "'channels' must be 'auto', 1 or 3, not 2"),
        ("pad_fill", 300, "'pad_fill' must be a grey level from 0 to 255, not 300"),
        ("cache_mb", -1, "'cache_mb' must be a number of MiB >= 0, not -1"),
    ],
)
def test_bad_folder_options_are_one_line_errors(tmp_path, option, value, words) -> None:
    root = _grey_folder(tmp_path / "g", n=1)
    with pytest.raises(ConfigError, match="^folder dataset option ") as info:
        FolderDataset(path=root, size=8, **{option: value})
    assert words in str(info.value) and f"--set dataset.{option}=" in str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- caches
def test_memory_cache_decodes_each_file_once_and_its_bound_holds(tmp_path, monkeypatch) -> None:
    root = _grey_folder(tmp_path / "g", n=6)
    calls = _counting(monkeypatch)
    ds = FolderDataset(path=root, size=8)
    assert len(calls) == 6 and ds.loader_workers == 0
    for _ in range(3):  # three epochs: no decoding
        [ds[i] for i in range(len(ds))]
    assert len(calls) == 6
    calls.clear()
    two = 2 * 3 * 8 * 8 / 2**20  # room for two images (counted as RGB)
    small = FolderDataset(path=root, size=8, cache_mb=two)
    assert len(calls) == 6 and small.loader_workers == 4
    first = [small[i]["x"] for i in range(6)]
    assert calls[6:] == ["g2.png", "g3.png", "g4.png", "g5.png"]  # the first two came from memory
    assert all(torch.equal(a, b["x"]) for a, b in zip(first, ds))


def test_disk_cache_is_reused_and_follows_the_files(tmp_path, monkeypatch) -> None:
    root = _grey_folder(tmp_path / "g", n=4)
    (root / "broken.png").write_bytes(b"not a png")
    cache = tmp_path / "cache"
    calls = _counting(monkeypatch)
    with pytest.warns(UserWarning, match="skipped 1 of 5"):
        cold = FolderDataset(path=root, size=8, cache_dir=cache)
    assert len(calls) == 5 and len(list(cache.glob("*.npy"))) == 1 and not list(cache.glob("*.tmp-*"))
    with pytest.warns(UserWarning, match="skipped 1 of 5"):  # the warm build still names it
        warm = FolderDataset(path=root, size=8, cache_dir=cache, cache_mb=0)
    assert len(calls) == 5  # nothing decoded: read from the cache
    assert warm.files == cold.files and warm.data_shape == (1, 8, 8)
    assert all(torch.equal(warm[i]["x"], cold[i]["x"]) for i in range(len(cold)))
    assert len(calls) == 5 and warm.loader_workers == 0
    with pytest.raises(DataError, match="broken.png"):
        FolderDataset(path=root, size=8, cache_dir=cache, on_error="raise")
    (npy,) = cache.glob("*.npy")
    np.save(npy, np.zeros((2, 3, 8, 8), np.uint8))  # a damaged entry is decoded and written again
    with pytest.warns(UserWarning, match="skipped 1 of 5"):
        again = FolderDataset(path=root, size=8, cache_dir=cache)
    assert len(calls) == 10 and all(torch.equal(again[i]["x"], cold[i]["x"]) for i in range(len(cold)))
    (root / "broken.png").unlink()
    Image.new("L", (8, 8), 77).save(root / "g0.png")  # a changed file: a new entry, decoded again
    calls.clear()
    fresh = FolderDataset(path=root, size=8, cache_dir=cache)
    assert len(calls) == 4 and int(fresh[0]["x"].float().mean()) == 77
    assert len(list(cache.glob("*.json"))) == 2
    index = json.loads(sorted(cache.glob("*.json"), key=lambda p: p.stat().st_mtime)[-1].read_text())
    assert index["files"] == ["g0.png", "g1.png", "g2.png", "g3.png"] and index["grey"] is True


# ----------------------------------------------------------------------------- workers
def test_workers_give_the_batches_of_the_main_process(tmp_path) -> None:
    root = _grey_folder(tmp_path / "g", n=10)
    ds = FolderDataset(path=root, size=8, cache_mb=0)  # every item decoded when drawn
    assert resolve_workers("auto", ds, processes_per_node=10**6) == 0  # never more than the CPUs allow
    assert resolve_workers(3, ds) == 3 and resolve_workers("auto", object()) == 0

    def batches(workers: int, start: int) -> list[torch.Tensor]:
        sampler = StepBatchSampler(len(ds), 4, seed=3, start_step=start)
        loader = iter(step_loader(ds, sampler, lambda items: torch.stack([i["x"] for i in items]), workers))
        return [next(loader) for _ in range(5)]

    alone, pooled = batches(0, 0), batches(2, 0)
    assert all(torch.equal(a, b) for a, b in zip(alone, pooled))
    resumed = batches(2, 2)  # a resume at step 2 continues the same sequence
    assert all(torch.equal(a, b) for a, b in zip(alone[2:], resumed))


def test_a_loaded_run_gets_the_channels_it_was_trained_on(tmp_path) -> None:
    root = _grey_folder(tmp_path / "g", n=3)
    registry = Registry.from_plugins(image_plugin)
    cfg = RunConfig.for_modality(
        "image",
        dataset="folder",
        conditioner="none",
        registry=registry,
        overrides={"dataset": {"folder": {"path": str(root), "size": 8}}},
    )
    cfg.data_shape = [3, 8, 8]  # a run trained before the channels option: grey as RGB
    ds = build_dataset(cfg, registry)
    assert ds.data_shape == (3, 8, 8) and ds[0]["x"].shape == (3, 8, 8)
    assert torch.equal(ds[0]["x"], FolderDataset(path=root, size=8, channels=3)[0]["x"])
    cfg.dataset.options["channels"] = 1
    with pytest.raises(DataError, match=r"trained on 3-channel images.*--set dataset.channels=3"):
        build_dataset(cfg, registry)


@pytest.mark.parametrize("value", ["many", -1])
def test_num_workers_is_auto_or_a_count(value) -> None:
    from polydiff.training.config import TrainConfig

    assert TrainConfig().num_workers == "auto" and TrainConfig(num_workers=2).num_workers == 2
    with pytest.raises(
        ConfigError, match=r"^train.num_workers must be 'auto' or an integer >= 0, got"
    ) as info:
        TrainConfig(num_workers=value)
    assert "--set train.num_workers=2" in str(info.value) and "\n" not in str(info.value)


def test_training_with_workers_gives_the_same_weights(tmp_path) -> None:
    from safetensors.torch import load_file

    from polydiff.training.checkpoint import resolve_checkpoint

    registry = Registry.from_plugins(image_plugin)
    root = _grey_folder(tmp_path / "g", n=8)

    def train(workers: int, out: str) -> dict[str, torch.Tensor]:
        cfg = RunConfig.for_modality(
            "image",
            dataset="folder",
            conditioner="none",
            registry=registry,
            overrides={
                "dataset": {"folder": {"path": str(root), "size": 8, "cache_mb": 0}},  # decoded when drawn
                "unet": {"model_channels": 8, "channel_mult": [1], "attention_levels": [], "norm_groups": 4},
                "diffusion": {"num_timesteps": 20},
                "train": {"steps": 3, "batch_size": 4, "ema_decay": 0.0, "num_workers": workers},
            },
        )
        trainer = Trainer(cfg, tmp_path / out, registry=registry, progress=False, device="cpu")
        trainer.fit()
        assert trainer.num_workers == workers
        return load_file(resolve_checkpoint(tmp_path / out) / "model.safetensors")

    alone, pooled = train(0, "w0"), train(2, "w2")
    assert alone.keys() == pooled.keys() and all(torch.equal(alone[k], pooled[k]) for k in alone)


def test_decode_threads_change_no_image_and_no_skip(tmp_path) -> None:
    root = _grey_folder(tmp_path / "g", n=7)
    Image.new("RGB", (9, 5), (10, 200, 30)).save(root / "colour.png")
    (root / "bad.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipped 1 of 9"):
        one = FolderDataset(path=root, size=8, decode_threads=1)
    with pytest.warns(UserWarning, match="skipped 1 of 9"):
        three = FolderDataset(path=root, size=8, decode_threads=3)
    assert three.decode_threads == 3 and one.files == three.files and one.skipped == three.skipped
    assert torch.equal(one.images, three.images) and three.data_shape == (3, 8, 8)
    with pytest.raises(ConfigError, match="'decode_threads' must be 'auto' or an integer >= 1, not 0"):
        FolderDataset(path=root, size=8, decode_threads=0)


def test_a_pickled_dataset_reopens_its_disk_cache(tmp_path) -> None:
    import pickle

    root = _grey_folder(tmp_path / "g", n=4)
    ds = FolderDataset(path=root, size=8, cache_mb=0, cache_dir=tmp_path / "cache")
    first = ds[0]["x"]  # opens the memory map
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker gets
    assert copy._array is None and torch.equal(copy[0]["x"], first) and torch.equal(copy[3]["x"], ds[3]["x"])
