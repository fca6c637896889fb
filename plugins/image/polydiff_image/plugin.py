"""The image plugin's hooks: records only (import strings), so loading it imports no torch."""

from __future__ import annotations

from polydiff import Component, Modality, Pretrained, hookimpl

PLUGIN = "polydiff_image"

#: Prompts of ``polydiff demo image``: four seen combinations, then four held out of training
#: (``(colour + shape + position) % 7 == 0`` on the quick preset's 2x2 grid).
DEMO_SEEN = [
    "a yellow circle at the bottom left",
    "a blue square at the top left",
    "a red triangle at the bottom right",
    "a green cross at the top left",
]
DEMO_HELD_OUT = [
    "a red circle at the top left",
    "a green triangle at the bottom right",
    "a cyan cross at the top right",
    "a magenta circle at the bottom left",
]
PRESETS = {
    # ~3 minutes on 2 CPU cores: 16x16 images, four positions, a 0.6M-parameter UNet
    "quick": {
        "dataset": {"shapes": {"size": 16, "grid": 2}, "digits": {"size": 16}},
        "unet": {
            "model_channels": 24,
            "channel_mult": [1, 2],
            "num_res_blocks": 1,
            "attention_levels": [1],
            "head_dim": 32,
            "norm_groups": 8,
        },
        "diffusion": {"num_timesteps": 1000, "schedule": "cosine", "prediction": "v", "min_snr_gamma": 5.0},
        "train": {
            "steps": 800,
            "batch_size": 16,
            "lr": 1e-3,
            "warmup_steps": 50,
            "ema_decay": 0.995,
            "cond_drop_prob": 0.1,
            "checkpoint_every": 100000,
            "log_every": 10,
            "encoder_steps": 400,
        },
        "conditioner": {"dim": 64, "depth": 1, "heads": 4},
        "sample": {"sampler": "ddim", "steps": 25, "guidance": 3.0, "spacing": "trailing"},
        "by_encoder": {"vae": {"unet": {"channel_mult": [1, 2], "attention_levels": [0, 1]}}},
    },
    # the figures in docs/benchmarks.md: 32x32 shapes on the 3x3 grid, 16x16 digits
    "full": {
        "dataset": {"shapes": {"size": 32, "grid": 3}, "digits": {"size": 16}},
        "unet": {
            "model_channels": 48,
            "channel_mult": [1, 2, 2],
            "num_res_blocks": 1,
            "attention_levels": [1, 2],
            "head_dim": 32,
            "norm_groups": 8,
            # positions are named in the prompts: give the network its coordinates
            "coord_channels": True,
        },
        "diffusion": {"num_timesteps": 1000, "schedule": "cosine", "prediction": "v", "min_snr_gamma": 5.0},
        "train": {
            "steps": 4000,
            "batch_size": 32,
            "lr": 5e-4,
            "warmup_steps": 100,
            "ema_decay": 0.999,
            "cond_drop_prob": 0.1,
            "checkpoint_every": 1000,
            "log_every": 25,
            "encoder_steps": 1500,
        },
        "conditioner": {"dim": 96, "depth": 2, "heads": 4},
        "sample": {"sampler": "ddim", "steps": 50, "guidance": 3.0, "spacing": "trailing"},
        "by_encoder": {"vae": {"unet": {"channel_mult": [1, 2], "attention_levels": [0, 1]}}},
    },
    # the shipped `image-shapes` (pretrained/image-shapes; its card has the figures): quick's 16x16
    # shapes on the 2x2 grid with coordinate channels, width 32, three levels with attention at 8x8
    # and 4x4 and a two-layer text encoder: 1.9 M parameters, the colour, shape and position of
    # held-out prompts after 1000 CPU steps (quick alone places shapes at random)
    "pretrained-shapes": {
        "dataset": {"shapes": {"size": 16, "grid": 2}},
        "unet": {
            "model_channels": 32,
            "channel_mult": [1, 2, 2],
            "num_res_blocks": 1,
            "attention_levels": [1, 2],
            "head_dim": 32,
            "norm_groups": 8,
            "coord_channels": True,
        },
        "diffusion": {"num_timesteps": 1000, "schedule": "cosine", "prediction": "v", "min_snr_gamma": 5.0},
        "train": {
            "steps": 1000,
            "batch_size": 32,
            "lr": 1e-3,
            "warmup_steps": 50,
            "ema_decay": 0.999,
            "cond_drop_prob": 0.1,
            "checkpoint_every": 500,
            "log_every": 25,
            "encoder_steps": 400,
        },
        "conditioner": {"dim": 96, "depth": 2, "heads": 4},
        "sample": {"sampler": "ddim", "steps": 25, "guidance": 3.0, "spacing": "trailing"},
    },
    # the shipped `image-digits` (pretrained/image-digits; its card has the figures): digits on
    # the VAE's latents, a UNet of width 32 (quick's is 24, full's 48 = 6 MB in float16, over the
    # 4 MB a shipped file may take) trained on the CPU; `--dataset digits --encoder vae`
    "pretrained-digits": {
        "dataset": {"digits": {"size": 16}},
        "unet": {
            "model_channels": 32,
            "channel_mult": [1, 2],
            "num_res_blocks": 1,
            "attention_levels": [0, 1],
            "head_dim": 32,
            "norm_groups": 8,
            "coord_channels": True,
        },
        "diffusion": {"num_timesteps": 1000, "schedule": "cosine", "prediction": "v", "min_snr_gamma": 5.0},
        "train": {
            "steps": 2500,
            "batch_size": 32,
            "lr": 1e-3,
            "warmup_steps": 100,
            "ema_decay": 0.999,
            "cond_drop_prob": 0.1,
            "checkpoint_every": 100000,
            "log_every": 25,
            "encoder_steps": 1500,
        },
        "conditioner": {"dim": 64, "depth": 1, "heads": 4},
        "sample": {"sampler": "ddim", "steps": 25, "guidance": 3.0, "spacing": "trailing"},
    },
}


@hookimpl
def polydiff_modalities() -> list[Modality]:
    return [
        Modality(
            name="image",
            rank=2,
            description="images [B, C, H, W]: text-to-image on shapes, digits or your folder",
            default_dataset="shapes",
            default_encoder="pixels",
            default_conditioner="text",
            writer="png",
            evaluator="image-checkers",
            presets=PRESETS,
            demo={
                "preset": "quick",
                "dataset": "shapes",
                "prompts": DEMO_SEEN + DEMO_HELD_OUT,
                "held_out": DEMO_HELD_OUT,
                "num_per_prompt": 4,
                # with image-shapes installed (the shapes model it finds): a short live run, then
                # image-shapes' samples of these prompts, held-out ones included
            },
        )
    ]


@hookimpl
def polydiff_datasets() -> list[Component]:
    return [
        Component(
            "shapes",
            f"{PLUGIN}.datasets.shapes:ShapesDataset",
            modality="image",
            description="coloured shapes at grid positions with captions; held-out combinations (generated)",
        ),
        Component(
            "digits",
            f"{PLUGIN}.datasets.digits:DigitsDataset",
            modality="image",
            description="scikit-learn's handwritten digits, 16x16, captioned 'the digit seven'",
        ),
        Component(
            "folder",
            f"{PLUGIN}.datasets.folder:FolderDataset",
            modality="image",
            description="your images (--data-path DIR); captions from metadata.jsonl/.csv if present",
        ),
    ]


@hookimpl
def polydiff_encoders() -> list[Component]:
    # latent diffusion: the core's ``vae`` (any modality) serves images too
    return [
        Component(
            "pixels",
            f"{PLUGIN}.encoders.pixels:PixelEncoder",
            modality="image",
            description="pixels [0, 255] <-> [-1, 1]",
        ),
    ]


@hookimpl
def polydiff_conditioners() -> list[Component]:
    return [
        Component(
            "sentence-embedding",
            f"{PLUGIN}.conditioners.sentence:SentenceEmbeddingConditioner",
            requires=("sentence_transformers",),
            extra="polydiff-image[sbert]",
            description="frozen pretrained sentence-transformers token embeddings from a local model",
        ),
    ]


@hookimpl
def polydiff_writers() -> list[Component]:
    return [
        Component(
            "png",
            f"{PLUGIN}.writer:PNGWriter",
            modality="image",
            description="labelled PNG grids, reverse/forward process strips, loss curve",
        ),
    ]


@hookimpl
def polydiff_evaluators() -> list[Component]:
    return [
        Component(
            "image-checkers",
            f"{PLUGIN}.evaluate.evaluator:ImageEvaluator",
            modality="image",
            description="shapes: attribute accuracy seen/held-out; digits: classifier accuracy, Frechet",
        ),
    ]


@hookimpl
def polydiff_pretrained() -> list[Pretrained]:
    # Package data (pyproject.toml: [tool.setuptools.package-data]); each card
    # (pretrained/NAME/README.md) says how the model was trained and what it scores.
    # `python scripts/make_pretrained.py NAME` retrains one and rewrites its card.
    return [
        Pretrained(
            "image-shapes",
            package=PLUGIN,
            path="pretrained/image-shapes",
            modality="image",
            description="coloured shapes at four positions, held-out combinations included; "
            '`polydiff sample image-shapes --prompt "a red circle at the top left"`',
        ),
        Pretrained(
            "image-digits",
            package=PLUGIN,
            path="pretrained/image-digits",
            modality="image",
            description="handwritten digits on VAE latents; "
            '`polydiff sample image-digits --prompt "the digit seven"`',
        ),
    ]
