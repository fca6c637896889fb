"""Fixtures of the tts plugin's tests: an isolated registry, a tiny run config, small data."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tts_registry():
    """The core's built-ins plus the tts plugin, without entry-point discovery."""
    import polydiff_tts.plugin
    from polydiff.plugins import Registry

    return Registry.from_plugins(("tts", polydiff_tts.plugin))


@pytest.fixture(scope="session")
def make_tiny_config(tts_registry):
    """``make_tiny_config(steps=60, encoder=None)``: the quick preset shrunk to a model that trains
    in seconds on a slice of the digits (a fresh RunConfig each call; ``encoder``: e.g. ``"vae"``)."""
    from polydiff.run_config import RunConfig

    def make(steps: int = 60, encoder: str | None = None) -> RunConfig:
        return RunConfig.for_modality(
            "tts",
            encoder=encoder,
            registry=tts_registry,
            overrides={
                "dataset": {"max_items": 48},
                "unet": {
                    "model_channels": 16,
                    "channel_mult": (1, 2),
                    "num_res_blocks": 1,
                    "attention_levels": (),
                    "norm_groups": 8,
                },
                "conditioner": {
                    "hidden": 32,
                    "layers": 1,
                    "heads": 2,
                    "ffn_mult": 2,
                    "duration_hidden": 32,
                    "dropout": 0.0,
                },
                "train": {
                    "steps": steps,
                    "batch_size": 8,
                    "lr": 3e-3,
                    "warmup_steps": 5,
                    "ema_decay": 0.0,
                    "checkpoint_every": 1000,
                    "log_every": 1,
                },
                "sample": {"sampler": "ddim", "steps": 4},
            },
        )

    return make


@pytest.fixture
def tiny_config(make_tiny_config):
    """The tiny run config of :func:`make_tiny_config`, 60 steps."""
    return make_tiny_config()


@pytest.fixture(scope="session")
def digits_train():
    from polydiff_tts.data.digits import DigitsDataset

    return DigitsDataset("train", max_items=24)
