"""The core's rank-generic KL autoencoder (``vae``): shapes per axis, old checkpoints, any modality."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from polydiff.encoders.autoencoder import AutoencoderKL
from polydiff.encoders.vae import VAEEncoder
from polydiff.errors import ConfigError
from polydiff.interfaces import DiffusionDataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints"


@pytest.mark.parametrize(
    ("shape", "downsample", "latent"),
    [
        ((2, 16), None, (3, 4)),
        ((1, 8, 12), None, (3, 2, 3)),
        ((3, 4, 8, 8), [False, True, True], (3, 4, 2, 2)),
        ((3, 4, 8, 8), None, (3, 1, 2, 2)),
    ],
)
def test_every_rank_encodes_and_decodes_to_its_shapes(shape, downsample, latent) -> None:
    vae = VAEEncoder(data_shape=shape, latent_channels=3, channels=8, downsample=downsample)
    assert vae.latent_shape(shape) == latent
    vae.fitted.fill_(True)
    x = torch.rand(2, *shape) * 255
    with torch.no_grad():
        z = vae.encode(x)
        y = vae.decode(z)
    assert z.shape == (2, *latent) and y.shape == x.shape
    assert float(y.min()) >= 0 and float(y.max()) <= 255


def test_video_compresses_space_and_not_time() -> None:
    ae = AutoencoderKL(3, 4, 8, (1, 2, 2), dims=3, downsample=[False, True, True])
    assert ae.factors == (1, 4, 4)
    assert ae.encode(torch.zeros(1, 3, 5, 8, 8)).mean.shape == (1, 4, 5, 2, 2)


def test_bad_options_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"'downsample' has 2 entries .* 3 spatial axes"):
        VAEEncoder(data_shape=(3, 4, 8, 8), downsample=[True, True])
    with pytest.raises(ConfigError, match=r"divisible by \(1, 4\) per axis"):
        VAEEncoder(data_shape=(3, 8, 6), downsample=[False, True], channels=8)
    with pytest.raises(ConfigError, match="data_range"):
        VAEEncoder(data_shape=(3, 8, 8), data_range=[1, 1])


def test_data_range_none_is_standardised_data(tmp_path) -> None:
    class Mels(DiffusionDataset):
        def __len__(self) -> int:
            return 16

        def __getitem__(self, i: int) -> dict:
            return {"x": torch.randn(4, 16, generator=torch.Generator().manual_seed(i))}

    vae = VAEEncoder(data_shape=(4, 16), channels=8, channel_mult=(1, 2), data_range=None)
    assert vae.config()["data_range"] is None and "downsample" not in vae.config()
    metrics = vae.fit(Mels(), steps=2, batch_size=4, seed=0, out_dir=tmp_path)
    assert metrics["latent_std"] == pytest.approx(1.0, abs=0.05)
    assert not list(tmp_path.iterdir())  # no picture of mel data
    assert vae.from_unit(torch.tensor([-7.0, 3.0])).tolist() == [-7.0, 3.0]  # no range, no clamping
    pixels = VAEEncoder(data_shape=(1, 8, 8), channels=8)
    assert pixels.from_unit(torch.tensor([-2.0, 0.0, 2.0])).tolist() == [0.0, 127.5, 255.0]


def test_scale_factor_takes_batches_of_different_lengths() -> None:
    """Speech pads each batch to its longest item: the latents' std spans batches of any length."""

    class Clips(DiffusionDataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int) -> dict:
            return {"x": torch.randn(4, 8 + 4 * i, generator=torch.Generator().manual_seed(i))}

        @staticmethod
        def collate(items: list) -> dict:
            longest = max(item["x"].shape[-1] for item in items)
            return {
                "x": torch.stack([F.pad(item["x"], (0, longest - item["x"].shape[-1])) for item in items])
            }

    vae = VAEEncoder(data_shape=(4, 8), channels=8, channel_mult=(1, 2), downsample=[False], data_range=None)
    vae.fitted.fill_(True)
    assert vae.set_scale_factor(Clips(), batch_size=2) == pytest.approx(1.0, abs=1e-4)
    assert float(vae.scale_factor) != 1.0


@pytest.mark.parametrize("run", ["image-vae", "video-video-vae"])
def test_checkpoints_of_the_plugin_autoencoders_load_and_compute_the_same(run) -> None:
    """Written by the image plugin's ``vae`` / the video plugin's ``video-vae`` before the move."""
    from polydiff.pipeline import DiffusionPipeline

    pipe = DiffusionPipeline.from_checkpoint(FIXTURES / run, device="cpu")
    expected = load_file(FIXTURES / run / "expected.safetensors")
    with torch.no_grad():
        z = pipe.model.encoder.encode(expected["x"])
        y = pipe.model.encoder.decode(expected["z"])
    assert torch.allclose(z, expected["z"], atol=1e-5)
    assert torch.allclose(y, expected["y"], atol=1e-4)
    assert pipe.config.encoder.name == run.split("-", 1)[1]


def test_vae_is_the_cores_and_serves_every_modality() -> None:
    from polydiff.plugins import get_registry

    component = get_registry().component("encoder", "vae")
    assert component.modality is None and component.target == "polydiff.encoders.vae:VAEEncoder"
