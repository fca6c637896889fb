"""A tiny modality used by the core's tests: 1-D signals whose caption says their sign.

Registered into isolated registries (``Registry.from_plugins(toy_plugin)``), never installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from polydiff import Component, Modality, Writer, hookimpl

LENGTH = 16


class ToySignals(torch.utils.data.Dataset):
    """``x: [1, 16]``: +0.8 or -0.8 plus a little noise; ``text``: "up" or "down"."""

    data_shape = (1, LENGTH)
    synthetic = True  # generated in code: the trainer's validation pass skips it

    def __init__(self, split: str = "train", size: int = 64, nan_after: int | None = None):
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.signs = torch.randint(0, 2, (size,), generator=g) * 2 - 1
        self.x = self.signs[:, None, None] * 0.8 + 0.05 * torch.randn(size, 1, LENGTH, generator=g)
        self.captions = ["up" if s > 0 else "down" for s in self.signs.tolist()]
        self.nan_after = nan_after
        self.calls = 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        self.calls += 1
        x = self.x[i]
        if self.nan_after is not None and self.calls > self.nan_after:
            x = torch.full_like(x, float("nan"))
        return {"x": x, "text": self.captions[i]}

    def writer_options(self) -> dict:
        return {"note": "from-dataset"}


class ToyWriter(Writer):
    """Writes tensors as JSON lists (enough to test that the CLI calls it)."""

    extension = ".json"

    def __init__(self, note: str = ""):
        self.note = note

    def _dump(self, obj: dict, path: Path) -> list[Path]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))
        return [path]

    def write_samples(self, x, prompts, path, lengths=None):
        return self._dump({"x": x.tolist(), "prompts": list(prompts), "note": self.note}, Path(path))

    def write_trajectory(self, steps, xt, x0, prompts, path):
        return self._dump({"steps": list(steps), "xt": list(xt.shape), "x0": list(x0.shape)}, Path(path))

    def write_forward(self, steps, xt, prompts, path):
        return self._dump({"steps": list(steps), "xt": list(xt.shape)}, Path(path))


TINY_UNET = {
    "model_channels": 16,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_levels": [1],
    "head_dim": 16,
    "norm_groups": 8,
}


@hookimpl
def polydiff_modalities():
    quick = {
        "train": {
            "steps": 60,
            "batch_size": 16,
            "lr": 2e-3,
            "warmup_steps": 5,
            "ema_decay": 0.9,
            "checkpoint_every": 20,
            "log_every": 5,
        },
        "unet": TINY_UNET,
        "diffusion": {"num_timesteps": 100},
        "conditioner": {"dim": 32, "depth": 1, "heads": 2},
        "sample": {"sampler": "ddim", "steps": 10, "guidance": 2.0},
    }
    return [
        Modality(
            "toy",
            rank=1,
            default_dataset="toy-signals",
            default_conditioner="text",
            writer="toy-writer",
            presets={"quick": quick},
            demo={"prompts": ["up", "down"]},
        )
    ]


@hookimpl
def polydiff_datasets():
    return [Component("toy-signals", f"{__name__}:ToySignals", modality="toy")]


@hookimpl
def polydiff_writers():
    return [Component("toy-writer", f"{__name__}:ToyWriter", modality="toy")]
