"""Presets of the ``video`` modality (plain data: imported while listing plugins, no torch).

``quick`` is sized for ``polydiff demo video`` on 2 CPU cores (at most 5 minutes, training
and sampling); ``full`` gives the figures in docs/benchmarks.md. ``quick-expert`` trains a
denoiser expert for the noisiest fifth of the steps (t >= 800) of 8x16x16 clips, where a clip's
layout and motion are decided, ``full-expert`` the same for ``full``'s 8x32x32 clips; sample a
run with it through ``polydiff sample RUN --expert EXPERT_RUN``. Each maps config sections to
overrides of their defaults (see :class:`polydiff.records.Modality`).
"""

from __future__ import annotations

import copy
from typing import Any

#: Clips ``[B, C, T, H, W]`` go through the space-time UNet (``unet.spacetime``): rank 3 alone
#: means three spatial axes to the core (full 3x3x3 layers, every axis downsampled).
QUICK: dict[str, dict[str, Any]] = {
    # 2 px/frame (the default at 16 px is 1): 8 px of motion over the clean first half
    "dataset": {"frames": 8, "size": 16, "speed": 2},
    "unet": {
        "dims": 3,
        "spacetime": {},
        "model_channels": 16,
        "channel_mult": (1, 2),
        "num_res_blocks": 1,
        "attention_levels": (1,),
        "head_dim": 32,
        "norm_groups": 8,
    },
    # v-prediction: with eps-prediction, 300 CPU steps gave noise-like samples (the x0 estimate
    # at low SNR is eps's error times 1 / sqrt(abar)); v gave clean backgrounds and objects.
    # Min-SNR weighting and trailing spacing (as the image plugin's quick preset) gave cleaner
    # backgrounds than without, at 300 steps.
    "diffusion": {"schedule": "cosine", "prediction": "v", "min_snr_gamma": 5.0},
    "conditioner": {"dim": 64, "depth": 1, "heads": 4},
    # --encoder vae (the core's autoencoder, 3-D here): compress space, keep every frame
    "encoder": {"vae": {"downsample": [False, True, True]}},
    # 300 steps: ~0.7 s of one CPU thread each (docs/research/video.md); 350 steps of the
    # earlier (1, 2, 4) UNet with attention at 8x8 and 4x4 took 320 s, over the demo's 5 minutes
    "train": {
        "steps": 300,
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 50,
        "ema_decay": 0.99,
        "checkpoint_every": 300,
        "log_every": 25,
    },
    "sample": {"sampler": "ddim", "steps": 25, "guidance": 3.0, "spacing": "trailing"},
}

#: Sized for a GPU: ~6 steps/s on one H200 (docs/research/video.md has its figures).
FULL: dict[str, dict[str, Any]] = {
    "dataset": {"frames": 8, "size": 32},
    "unet": {
        "dims": 3,
        "model_channels": 32,
        "channel_mult": (1, 2, 4),
        "num_res_blocks": 2,
        "attention_levels": (1, 2),
        "head_dim": 32,
        "norm_groups": 16,
        # Motion words need to know which frame is which (docs/research/video.md): the frame
        # index and position as input channels, GroupNorm over the clip (per-frame statistics
        # erase what is constant within a frame), a frame embedding in each attention block, and
        # the prompt in every ResBlock's scale/shift, not only at the attention levels.
        "coord_channels": True,
        "pooled_context": True,
        "spacetime": {"frame_norm": False, "frame_embedding": True},
    },
    "diffusion": {"schedule": "cosine", "prediction": "v"},
    "conditioner": {"dim": 128, "depth": 2, "heads": 4},
    "encoder": {"vae": {"downsample": [False, True, True]}},
    "train": {
        # ~5 minutes on one H200: a step is 1.35 TFLOP (fwd + bwd, batch 32) and ~5,600 aten ops,
        # so eager PyTorch is bound by op dispatch at roughly 15-30 steps/s (docs/research/video.md)
        "steps": 6000,
        "batch_size": 32,
        "lr": 5e-4,
        "warmup_steps": 500,
        "ema_decay": 0.999,
        "checkpoint_every": 2000,
        "log_every": 50,
    },
    "sample": {"sampler": "ddim", "steps": 50, "guidance": 3.0},
}

#: The four UNet flags that let motion words reach the frames (docs/research/video.md),
#: and the per-frame scale/shift of the prompt, which the expert below learns direction with.
MOTION_FLAGS: dict[str, Any] = {
    "coord_channels": True,
    "pooled_context": True,
    "spacetime": {"frame_norm": False, "frame_embedding": True, "frame_modulation": True},
}


def expert_of(base: dict[str, dict[str, Any]], **train: Any) -> dict[str, dict[str, Any]]:
    """A high-noise expert for runs of ``base`` (a new dict; ``base`` is untouched): the motion
    flags, the plain v loss, timesteps 800..999 only, and ``train`` (steps, batch size, ...)."""
    preset = copy.deepcopy(base)
    preset["unet"].update(copy.deepcopy(MOTION_FLAGS))
    # the plain v loss: min-SNR weights a v error by SNR / (SNR + 1), under 0.1 at t >= 800
    preset["diffusion"]["min_snr_gamma"] = None
    preset["train"].update(timestep_range=(800, 1000), **train)
    return preset


#: A high-noise expert for 8x16x16 clips (~7 minutes on 2 CPU cores): the direction word moves
#: its x0 estimate at t = 999 nearly as much as the data's conditional means differ (0.065
#: against 0.078), where a model trained on every timestep learnt 1-3% of it. It decides where
#: the object goes; the main model must draw a rigid object below t = 800: with a `quick` run
#: trained 4000 steps with the four flags of MOTION_FLAGS (not frame_modulation) and no min-SNR,
#: 0.91 held-out direction accuracy; with
#: the 300-step demo run, whose objects are speckled blobs, 0.28 (docs/research/video.md).
QUICK_EXPERT = expert_of(QUICK, steps=400, batch_size=32, warmup_steps=20, checkpoint_every=100)

#: The same expert for the ``full`` preset's 8x32x32 clips, sized for a GPU: the full UNet with
#: frame modulation, batch 64, EMA 0.995 (a slow average would lag behind the late-learnt word).
#: 850 steps (~7 minutes on an H100 beside two other runs) with a ``full`` run of 866 steps of
#: batch 64: 1.00 seen / 1.00 held-out direction accuracy, where that run alone scored 0.28 / 0.19
#: (docs/research/video.md). Its x0 estimate at t = 999 moves 0.050 between "left" and "right"
#: (the data's conditional means: 0.060).
FULL_EXPERT = expert_of(
    FULL, steps=850, batch_size=64, warmup_steps=100, ema_decay=0.995, checkpoint_every=500
)

#: The shipped pretrained model ``video-motion`` (docs/research/pretrained.md): the ``quick``
#: UNet with the four flags that carry motion words (MOTION_FLAGS without frame_modulation), the
#: plain v loss (min-SNR held the direction word back) and EMA 0.999, trained 5000 steps of batch
#: 8 on one CPU thread. 4000 such steps with the 400-step quick expert gave 0.91 held-out direction.
PRETRAINED = copy.deepcopy(QUICK)
PRETRAINED["unet"].update(
    coord_channels=True,
    pooled_context=True,
    spacetime={"frame_norm": False, "frame_embedding": True},
)
PRETRAINED["diffusion"]["min_snr_gamma"] = None
PRETRAINED["train"].update(steps=5000, ema_decay=0.999, checkpoint_every=500, log_every=100)
# guidance 5, chosen on the seen prompts only (direction 0.84 at 3, 0.92 at 5 and at 8, 64 clips):
# a sampling setting, the same weights (docs/research/pretrained.md)
PRETRAINED["sample"] = {**PRETRAINED["sample"], "guidance": 5.0}

#: Its high-noise expert ``video-motion-expert`` (t >= 800, shipped with it and used by name):
#: ``quick-expert`` trained 500 steps instead of 400.
PRETRAINED_EXPERT = expert_of(QUICK, steps=500, batch_size=32, warmup_steps=20, checkpoint_every=100)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": QUICK,
    "full": FULL,
    "quick-expert": QUICK_EXPERT,
    "full-expert": FULL_EXPERT,
    "pretrained": PRETRAINED,
    "pretrained-expert": PRETRAINED_EXPERT,
}

#: ``polydiff demo video``: two seen and two held-out prompts (held out of training by default).
DEMO: dict[str, Any] = {
    "preset": "quick",
    "prompts": [
        "a red circle moving left",
        "a blue triangle moving down",
        "a red square moving left",
        "a green circle moving down",
    ],
    "held_out": ["a red square moving left", "a green circle moving down"],
    # with video-motion installed: a short live run, then two clips per prompt of video-motion
    # (with its expert) and its reverse process
    "num_per_prompt": 2,
}
