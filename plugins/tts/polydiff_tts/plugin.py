"""The ``tts`` plugin's hook implementations (entry point ``polydiff: tts``).

Cheap to import: records name code by import string; torch and torchaudio are imported
only when a component is built.
"""

from __future__ import annotations

import math
from typing import Any

from polydiff import Component, ComponentKind, Modality, Pretrained, hookimpl

REQUIRES = ("torchaudio", "soundfile")
#: The log-mel of silence of both mel presets (``MelConfig.log_min``: ``log(log_floor)``).
LOG_MIN = math.log(1e-5)
#: Held-out digit sequences (``corpora/digits/heldout.csv``; never spoken in training).
DEMO_PROMPTS = ("six zero four eight", "eight two four", "one nine four", "seven eight one five")

#: CPU preset for the embedded digits corpus: ``polydiff demo tts`` in <= 5 min on 2 cores.
QUICK: dict[str, dict[str, Any]] = {
    "dataset": {"mel": "small", "pad_multiple": 4},
    "unet": {
        "model_channels": 64,
        "channel_mult": (1, 2, 2),
        "num_res_blocks": 1,
        "attention_levels": (),
        "head_dim": 32,
        "norm_groups": 16,
    },
    "diffusion": {"num_timesteps": 1000, "schedule": "linear", "prediction": "v"},
    "train": {
        "steps": 800,
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 100,
        "ema_decay": 0.995,
        "cond_drop_prob": 0.0,
        "checkpoint_every": 500,
        "log_every": 25,
        "grad_clip": 1.0,
    },
    "conditioner": {
        "hidden": 128,
        "layers": 2,
        "heads": 2,
        "ffn_mult": 2,
        "duration_hidden": 128,
        "dropout": 0.1,
    },
    "sample": {"sampler": "ddim", "steps": 10, "temperature": 3.0, "guidance": 1.0},
    # --encoder vae (the core's autoencoder, 1-D here): 40 mel bands -> 16 latent channels per frame
    # (8 scored lower: docs/research/tts.md), every frame kept (latent frames are the conditioner's
    # mel frames); log-mels lie in [log(log_floor), ~1.1] (log_floor 1e-5, both mel presets),
    # mapped to [-1, 1] around it
    "encoder": {"vae": {"latent_channels": 16, "downsample": [False], "data_range": [LOG_MIN, 2.0]}},
}
#: Twice the batch and 25% more steps than ``quick`` (same networks, measured to fit ~10 min on
#: 2 CPU cores); its figures are in docs/research/tts.md.
FULL: dict[str, dict[str, Any]] = {
    **QUICK,
    "train": {**QUICK["train"], "steps": 1000, "batch_size": 16, "ema_decay": 0.998},
}
#: The shipped ``tts-spoken-digits`` model (``pretrained/tts-spoken-digits``, its card says how
#: it was trained and what it scores): ``full``'s training with a 1-D UNet of width 48 and a text
#: encoder of width 96, 1.8 M parameters (3.5 MB in float16, under the 4 MB a shipped file may take).
PRETRAINED: dict[str, dict[str, Any]] = {
    **FULL,
    "unet": {**QUICK["unet"], "model_channels": 48},
    "conditioner": {**QUICK["conditioner"], "hidden": 96, "duration_hidden": 96},
}


#: The vocoder every installation has (the ``vocoder`` kind's built-in member).
GRIFFIN_LIM = Component(
    "griffin-lim",
    "polydiff_tts.vocoders.griffin_lim:GriffinLimVocoder",
    description="pseudo-inverse mel filterbank + Griffin-Lim phase (no training; robotic)",
    requires=("torchaudio",),
)


@hookimpl
def polydiff_addhooks(pluginmanager: Any) -> None:
    from polydiff_tts import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def polydiff_component_kinds() -> list[ComponentKind]:
    return [
        ComponentKind(
            "vocoder",
            hook="polydiff_tts_vocoders",
            description="log-mel [n_mels, T] -> waveform; target(mel=MelConfig, **options)",
        )
    ]


@hookimpl
def polydiff_modalities() -> list[Modality]:
    return [
        Modality(
            name="tts",
            rank=1,
            description="text to speech: Grad-TTS over log-mels (mels as channels, time as the axis)",
            default_dataset="spoken-digits",
            default_encoder="identity",
            default_conditioner="grad-tts",
            writer="wav",
            evaluator="tts-intelligibility",
            presets={"quick": QUICK, "full": FULL, "pretrained": PRETRAINED},
            demo={
                "prompts": list(DEMO_PROMPTS),
                "held_out": list(DEMO_PROMPTS),
                "preset": "quick",
                "num_per_prompt": 1,
            },
        )
    ]


@hookimpl
def polydiff_datasets() -> list[Component]:
    return [
        Component(
            "spoken-digits",
            "polydiff_tts.data.digits:DigitsDataset",
            modality="tts",
            requires=REQUIRES,
            description="embedded spoken digit sequences (espeak-ng, 3 voices, 16 kHz), held-out split",
        ),
        Component(
            "ljspeech",
            "polydiff_tts.data.ljspeech:LJSpeechDataset",
            modality="tts",
            requires=REQUIRES,
            description="any corpus in the LJSpeech layout (metadata.csv + wavs/); set dataset.root",
        ),
    ]


@hookimpl
def polydiff_encoders() -> list[Component]:
    return [
        Component(
            "mel-norm",
            "polydiff_tts.encoders.mel_norm:MelNormEncoder",
            modality="tts",
            description="per-channel standardised log-mels (statistics of the training set)",
        ),
    ]


@hookimpl
def polydiff_conditioners() -> list[Component]:
    return [
        Component(
            "grad-tts",
            "polydiff_tts.conditioner:GradTTSConditioner",
            modality="tts",
            requires=REQUIRES,
            description="text encoder + durations + monotonic alignment; prior mean mu (Grad-TTS)",
        ),
    ]


@hookimpl
def polydiff_writers() -> list[Component]:
    return [
        Component(
            "wav",
            "polydiff_tts.writers.wav:WavWriter",
            modality="tts",
            requires=REQUIRES,
            description="WAV files through a vocoder (griffin-lim) + mel-spectrogram PNGs",
        ),
    ]


@hookimpl
def polydiff_evaluators() -> list[Component]:
    return [
        Component(
            "tts-intelligibility",
            "polydiff_tts.evaluation.evaluator:IntelligibilityEvaluator",
            modality="tts",
            requires=REQUIRES,
            description="digit word accuracy (DTW templates), MCD-mel, duration error, real-time factor",
        ),
    ]


@hookimpl
def polydiff_tts_vocoders() -> list[Component]:
    return [GRIFFIN_LIM]


@hookimpl
def polydiff_pretrained() -> list[Pretrained]:
    # Package data (pyproject.toml: [tool.setuptools.package-data]); the card
    # pretrained/tts-spoken-digits/README.md says how it was trained and what it scores.
    # `python scripts/make_pretrained.py tts-spoken-digits` retrains it and rewrites the card.
    return [
        Pretrained(
            "tts-spoken-digits",
            package="polydiff_tts",
            path="pretrained/tts-spoken-digits",
            modality="tts",
            requires=REQUIRES,
            description="spoken digit sequences (pretrained preset); "
            '`polydiff sample tts-spoken-digits --prompt "one nine four"`',
        )
    ]
