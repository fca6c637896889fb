"""The per-frame latent encoder (the core's autoencoder on frames)."""

from __future__ import annotations

import pytest
import torch

from polydiff.errors import ConfigError
from polydiff_video.data.moving_shapes import MovingShapesDataset
from polydiff_video.frame_vae import FramesOf, FrameVAEEncoder


def test_frames_of_a_video_dataset():
    clips = MovingShapesDataset("train", frames=4, size=16, num_clips=3)
    frames = FramesOf(clips, 4)
    assert len(frames) == 12
    assert torch.equal(frames[6]["x"], clips[1]["x"][:, 2])


def test_encodes_every_frame_like_the_image_autoencoder(tmp_path):
    clips = MovingShapesDataset("train", frames=4, size=16, num_clips=16)
    enc = FrameVAEEncoder(data_shape=(3, 4, 16, 16), channels=8, channel_mult=(1, 2))
    assert not enc.is_fitted and enc.trainable
    metrics = enc.fit(clips, steps=3, batch_size=4, seed=0)
    assert enc.is_fitted and metrics["latent_std"] == pytest.approx(1.0, abs=0.05)
    assert enc.latent_shape((3, 4, 16, 16)) == (4, 4, 8, 8)
    x = torch.stack([clips[i]["x"] for i in range(2)])
    with torch.no_grad():
        z = enc.encode(x)
        assert z.shape == (2, 4, 4, 8, 8)
        assert torch.allclose(z[:, :, 2], enc.vae.encode(x[:, :, 2]), atol=1e-5)
        out = enc.decode(z)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert enc.config()["channels"] == 8


def test_rejects_image_shapes():
    with pytest.raises(ConfigError, match="video-vae"):
        FrameVAEEncoder(data_shape=(3, 32, 32))


def test_the_cores_3d_vae_trains_first_and_samples_clips(tmp_path):
    """``--encoder vae`` on video: the core's autoencoder in 3-D, time kept, fitted by the trainer."""
    import polydiff_video.plugin as video_plugin
    from polydiff.pipeline import DiffusionPipeline
    from polydiff.plugins import Registry
    from polydiff.run_config import RunConfig
    from polydiff.training.trainer import Trainer

    registry = Registry.from_plugins(video_plugin)
    cfg = RunConfig.for_modality(
        "video",
        encoder="vae",
        registry=registry,
        overrides={
            "dataset": {"frames": 4, "size": 8, "num_clips": 8},
            "encoder": {"vae": {"channels": 8, "channel_mult": [1, 2], "downsample": [False, True, True]}},
            "unet": {"model_channels": 8, "channel_mult": [1], "attention_levels": [], "norm_groups": 4},
            "train": {"steps": 2, "encoder_steps": 2, "batch_size": 4, "log_every": 1, "checkpoint_every": 2},
        },
    )
    Trainer(cfg, tmp_path, registry=registry, progress=False, device="cpu").fit()
    assert (tmp_path / "vae_reconstructions.png").exists()  # clips: their middle frames
    pipe = DiffusionPipeline.from_checkpoint(tmp_path, registry=registry, device="cpu")
    assert pipe.config.latent_shape == [4, 4, 4, 4] and pipe.model.encoder.is_fitted
    assert pipe(["a red square moving left"], steps=2).samples.shape == (1, 3, 4, 8, 8)
