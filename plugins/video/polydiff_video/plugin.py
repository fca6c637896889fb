"""The ``video`` plugin's hook implementations (entry point ``polydiff: video``).

Cheap to import: records name their code by import string, so ``polydiff plugins`` never
imports torch through this module.
"""

from __future__ import annotations

from polydiff import hookimpl
from polydiff.records import Component, Modality, Pretrained
from polydiff_video.presets import DEMO, PRESETS


@hookimpl
def polydiff_modalities() -> list[Modality]:
    return [
        Modality(
            name="video",
            rank=3,
            description="short clips [3, T, H, W]; factorised space-time UNet, text-conditioned",
            default_dataset="moving-shapes",
            default_encoder="video-pixels",
            default_conditioner="text",
            writer="gif",
            evaluator="video-motion",
            presets=PRESETS,
            demo=DEMO,
        )
    ]


@hookimpl
def polydiff_datasets() -> list[Component]:
    return [
        Component(
            "moving-shapes",
            "polydiff_video.data.moving_shapes:MovingShapesDataset",
            modality="video",
            description="generated clips of a coloured shape moving and bouncing, with captions; "
            "8 of 48 combinations held out",
        ),
        Component(
            "video-folder",
            "polydiff_video.data.folder:FolderVideoDataset",
            modality="video",
            description="your folder of GIF/MP4 clips captioned by metadata.jsonl or metadata.csv "
            "(--data-path PATH; MP4 needs the mp4 extra)",
        ),
    ]


@hookimpl
def polydiff_encoders() -> list[Component]:
    return [
        Component(
            "video-pixels",
            "polydiff_video.encoder:VideoPixelEncoder",
            modality="video",
            description="clips in [0, 255] <-> [-1, 1]",
        ),
        Component(
            "video-vae",
            "polydiff_video.frame_vae:FrameVAEEncoder",
            modality="video",
            description="latent video: the core's 2-D KL autoencoder on every frame (trained first); "
            "'vae' is the 3-D one",
        ),
    ]


@hookimpl
def polydiff_writers() -> list[Component]:
    return [
        Component(
            "gif",
            "polydiff_video.writers.gif:GifWriter",
            modality="video",
            description="one animated GIF per clip, a contact-sheet PNG, strips of the diffusion process",
        )
    ]


@hookimpl
def polydiff_evaluators() -> list[Component]:
    return [
        Component(
            "video-motion",
            "polydiff_video.evaluation.evaluator:VideoMotionEvaluator",
            modality="video",
            description="motion-direction and colour accuracy, area stability, temporal consistency "
            "(seen vs held-out prompts)",
        )
    ]


@hookimpl
def polydiff_pretrained() -> list[Pretrained]:
    # Package data (pyproject.toml: [tool.setuptools.package-data]); each card
    # (pretrained/NAME/README.md) says how the model was trained and what it scores.
    # `python scripts/make_pretrained.py video-motion` retrains the pair and rewrites both cards.
    return [
        Pretrained(
            "video-motion",
            package="polydiff_video",
            path="pretrained/video-motion",
            modality="video",
            experts=("video-motion-expert",),
            description="8x16x16 clips of moving shapes, held-out combinations included, sampled "
            'with its high-noise expert; `polydiff sample video-motion --prompt "a red square moving left"`',
        ),
        Pretrained(
            "video-motion-expert",
            package="polydiff_video",
            path="pretrained/video-motion-expert",
            modality="video",
            description="video-motion's denoiser expert for timesteps 800..999 (used through video-motion)",
        ),
    ]
