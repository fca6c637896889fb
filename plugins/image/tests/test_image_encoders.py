"""Pixel and VAE encoders: ranges, round trips, the latent scale factor, saving and loading."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from polydiff.errors import CheckpointError, ConfigError
from polydiff_image.datasets.digits import DigitsDataset
from polydiff_image.encoders.autoencoder import DiagonalGaussian
from polydiff_image.encoders.pixels import PixelEncoder
from polydiff_image.encoders.vae import VAEEncoder


def test_pixels_map_0_255_to_minus_one_one_and_back() -> None:
    enc = PixelEncoder(data_shape=(3, 4, 4))
    x = torch.tensor([0, 51, 127, 128, 255], dtype=torch.uint8).view(1, 1, 1, 5)
    z = enc.encode(x)
    assert torch.allclose(
        z, torch.tensor([-1.0, -0.6, 127 / 127.5 - 1, 128 / 127.5 - 1, 1.0]).view(1, 1, 1, 5), atol=1e-6
    )
    assert torch.allclose(enc.decode(z), x.float(), atol=1e-4)
    assert enc.decode(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 255.0]  # clamped
    assert enc.latent_shape((3, 16, 16)) == (3, 16, 16) and not enc.trainable and enc.is_fitted


def test_kl_of_a_standard_normal_posterior_is_zero() -> None:
    moments = torch.cat([torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)], dim=1)
    assert torch.equal(DiagonalGaussian(moments).kl(), torch.zeros(2, 4, 3, 3))
    moments[:, :4] = 2.0  # mean 2, var 1: KL = mean^2 / 2
    assert torch.allclose(DiagonalGaussian(moments).kl(), torch.full((2, 4, 3, 3), 2.0))


def test_vae_shapes_and_errors() -> None:
    vae = VAEEncoder(data_shape=(3, 32, 32), channels=8)
    assert vae.latent_shape((3, 32, 32)) == (4, 8, 8) and vae.factor == 4
    assert vae.trainable and not vae.is_fitted
    with pytest.raises(CheckpointError, match="has not been trained"):
        vae.encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="divisible by 4"):
        VAEEncoder(data_shape=(3, 30, 30))
    assert not any(p.requires_grad for p in vae.parameters())  # frozen unless fitting


@pytest.fixture(scope="module")
def fitted_vae() -> tuple[VAEEncoder, dict[str, float]]:
    torch.manual_seed(0)
    vae = VAEEncoder(data_shape=(1, 16, 16), channels=8, lr=2e-3)
    metrics = vae.fit(DigitsDataset("train"), steps=200, batch_size=16, seed=0)
    return vae, metrics


def test_vae_round_trip_beats_a_fixed_error(fitted_vae) -> None:
    vae, metrics = fitted_vae
    x = DigitsDataset("eval").images[:128]  # images the autoencoder never saw
    z = vae.encode(x)
    assert z.shape == (128, 4, 4, 4)
    recon = vae.decode(z)
    assert recon.shape == x.shape and recon.min() >= 0 and recon.max() <= 255
    error = (recon - x.float()).abs().mean().item()
    blank = (x.float() - x.float().mean()).abs().mean().item()
    assert error < 25.0 < blank  # of 255; an untrained decoder is ~blank
    assert set(metrics) >= {"l1", "mse", "kl", "scale_factor", "latent_std"}


def test_scale_factor_makes_latent_std_about_one(fitted_vae) -> None:
    vae, metrics = fitted_vae
    z = vae.encode(DigitsDataset("eval").images)  # fitted on train images, checked on eval ones
    assert 0.85 < z.std().item() < 1.15
    raw = z / vae.scale_factor
    assert abs(raw.std().item() * metrics["scale_factor"] - z.std().item()) < 1e-4
    assert metrics["scale_factor"] == pytest.approx(float(vae.scale_factor))


def test_vae_weights_and_scale_factor_survive_safetensors(fitted_vae, tmp_path) -> None:
    vae, _ = fitted_vae
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, tmp_path / "vae.safetensors")
    fresh = VAEEncoder(data_shape=(1, 16, 16), **{k: v for k, v in vae.config().items()})
    assert not fresh.is_fitted
    fresh.load_state_dict(load_file(tmp_path / "vae.safetensors"))
    assert fresh.is_fitted and float(fresh.scale_factor) == float(vae.scale_factor)
    x = DigitsDataset("eval").images[:8]
    assert torch.equal(fresh.encode(x), vae.encode(x))
