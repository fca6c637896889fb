"""The plugin module: what polydiff imports through the ``polydiff`` entry point.

It only *describes* components, by import string, so it must stay cheap: import nothing
heavy here (no torch, no numpy). polydiff imports ``polydiff_timeseries.dataset`` and the
others only when a run uses them.
"""

from __future__ import annotations

from polydiff import Component, Modality, Pretrained, hookimpl

MODALITY = "timeseries"

#: ``polydiff train timeseries --preset quick`` (the default): a few CPU minutes. After 800 steps
#: every sample of 16 per caption was judged right by ``timeseries-stats`` (see the README).
QUICK = {
    "dataset": {"length": 64, "num_samples": 4096},
    "unet": {
        "dims": 1,
        "model_channels": 32,
        "channel_mult": (1, 2, 2),
        "num_res_blocks": 1,
        "attention_levels": (2,),
        "head_dim": 32,
        "norm_groups": 8,
    },
    "conditioner": {"dim": 64, "depth": 1, "heads": 4},
    "diffusion": {"num_timesteps": 1000, "schedule": "cosine", "prediction": "eps"},
    "train": {"steps": 800, "batch_size": 64, "lr": 1e-3, "warmup_steps": 50, "checkpoint_every": 400},
    "sample": {"sampler": "ddim", "steps": 50, "guidance": 3.0},
}

#: ``--preset full``: a wider network trained longer.
FULL = {
    **QUICK,
    "unet": {**QUICK["unet"], "model_channels": 64, "num_res_blocks": 2, "attention_levels": (1, 2)},
    "train": {"steps": 5000, "batch_size": 128, "lr": 5e-4, "warmup_steps": 200, "checkpoint_every": 1000},
}


@hookimpl
def polydiff_modalities() -> list[Modality]:
    return [
        Modality(
            name=MODALITY,
            rank=1,
            description="1-channel signals (64 samples) from captions like 'a slow sine wave'",
            default_dataset="sines",
            default_encoder="identity",  # the core's: diffusion runs on the signal itself
            default_conditioner="text",  # the core's: captions -> cross-attention tokens
            writer="timeseries-png",
            evaluator="timeseries-stats",
            presets={"quick": QUICK, "full": FULL},
            demo={
                "preset": "quick",
                "prompts": ["a slow sine wave", "a fast square wave", "a rising ramp", "a fast sine wave"],
            },
        )
    ]


@hookimpl
def polydiff_datasets() -> list[Component]:
    return [
        Component(
            "sines",
            "polydiff_timeseries.dataset:SinesDataset",
            modality=MODALITY,
            description="synthetic sine/square waves (slow, fast) and ramps, with captions",
        )
    ]


@hookimpl
def polydiff_writers() -> list[Component]:
    return [
        Component(
            "timeseries-png",
            "polydiff_timeseries.writer:TimeseriesPngWriter",
            modality=MODALITY,
            description="line plots in PNG grids (Pillow), trajectories and forward-process strips",
        )
    ]


@hookimpl
def polydiff_evaluators() -> list[Component]:
    return [
        Component(
            "timeseries-stats",
            "polydiff_timeseries.evaluator:TimeseriesStatsEvaluator",
            modality=MODALITY,
            description="waveform class and frequency of samples vs their prompt (FFT checks)",
        )
    ]


@hookimpl
def polydiff_pretrained() -> list[Pretrained]:
    # Shipped as package data (pyproject.toml: [tool.setuptools.package-data]); the card
    # pretrained/timeseries-sines/README.md says how it was trained and what it scores.
    # `make pretrained` retrains it from scratch and rewrites the card.
    return [
        Pretrained(
            "timeseries-sines",
            package="polydiff_timeseries",
            path="pretrained/timeseries-sines",
            modality=MODALITY,
            description="quick preset trained on sines; `polydiff sample timeseries-sines --prompt ...`",
        )
    ]
