"""GaussianDiffusion: forward process, parametrisations, posterior and loss, against closed forms."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from polydiff.diffusion import DiffusionConfig, GaussianDiffusion, expand_to
from polydiff.errors import ConfigError

SHAPES = [(3, 2, 8), (3, 2, 4, 5), (3, 1, 2, 3, 4)]  # 1, 2 and 3 spatial dims
PREDICTIONS = ["eps", "x0", "v"]


def randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_buffers_are_float64_and_consistent() -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=50))
    for name in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance"):
        buffer = getattr(diffusion, name)
        assert buffer.dtype == torch.float64 and buffer.shape == (50,)
    torch.testing.assert_close(diffusion.alphas_cumprod, torch.cumprod(1 - diffusion.betas, 0))
    assert diffusion.alphas_cumprod_prev[0] == 1.0
    torch.testing.assert_close(diffusion.alphas_cumprod_prev[1:], diffusion.alphas_cumprod[:-1])


@pytest.mark.parametrize("shape", SHAPES)
def test_q_sample_is_the_closed_form(shape: tuple[int, ...]) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=1000, schedule="cosine"))
    x0, noise = randn(*shape, seed=1), randn(*shape, seed=2)
    t = torch.tensor([0, 500, 999])
    x_t = diffusion.q_sample(x0, t, noise)
    for b, step in enumerate(t.tolist()):
        abar = torch.prod(1 - diffusion.betas[: step + 1])
        torch.testing.assert_close(x_t[b], abar.sqrt() * x0[b] + (1 - abar).sqrt() * noise[b])
    # an int timestep is broadcast over the batch
    torch.testing.assert_close(diffusion.q_sample(x0, 500, noise)[1], x_t[1])


def test_q_sample_keeps_dtype_and_expand_to_broadcasts() -> None:
    diffusion = GaussianDiffusion()
    x0 = torch.ones(2, 3, 4, 4, dtype=torch.float32)
    assert diffusion.q_sample(x0, torch.tensor([1, 2]), torch.zeros_like(x0)).dtype == torch.float32
    assert expand_to(torch.tensor([1.0, 2.0], dtype=torch.float64), x0).shape == (2, 1, 1, 1)


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_parametrisations_round_trip(prediction: str, shape: tuple[int, ...]) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(prediction=prediction))
    x0, eps = randn(*shape, seed=3), randn(*shape, seed=4)
    t = torch.tensor([3, 400, 997])
    x_t = diffusion.q_sample(x0, t, eps)
    out = diffusion.target(x0, eps, t)
    x0_hat, eps_hat = diffusion.predict_x0_eps(x_t, t, out)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, eps)
    torch.testing.assert_close(diffusion.x0_from_eps(x_t, t, eps), x0)
    torch.testing.assert_close(diffusion.eps_from_x0(x_t, t, x0), eps)


def test_v_is_alpha_eps_minus_sigma_x0_and_rotates_x0_eps() -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(prediction="v"))
    x0, eps = randn(2, 1, 16, seed=5), randn(2, 1, 16, seed=6)
    t = torch.tensor([100, 800])
    alpha, sigma = diffusion.alphas_cumprod[t].sqrt(), (1 - diffusion.alphas_cumprod[t]).sqrt()
    v = diffusion.v_from(x0, eps, t)
    torch.testing.assert_close(v, alpha.view(-1, 1, 1) * eps - sigma.view(-1, 1, 1) * x0)
    # (x_t, v) is a rotation of (x0, eps): norms are preserved
    x_t = diffusion.q_sample(x0, t, eps)
    torch.testing.assert_close(x_t**2 + v**2, x0**2 + eps**2)


def test_q_posterior_matches_ho_et_al() -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=200))
    x0, x_t = randn(3, 2, 5, seed=7), randn(3, 2, 5, seed=8)
    t = torch.tensor([0, 1, 150])
    mean, var, log_var = diffusion.q_posterior(x0, x_t, t)
    betas, abar = diffusion.betas, diffusion.alphas_cumprod
    for b, step in enumerate(t.tolist()):
        abar_prev = abar[step - 1] if step > 0 else torch.tensor(1.0, dtype=torch.float64)
        coef1 = abar_prev.sqrt() * betas[step] / (1 - abar[step])
        coef2 = (1 - betas[step]).sqrt() * (1 - abar_prev) / (1 - abar[step])
        torch.testing.assert_close(mean[b], coef1 * x0[b] + coef2 * x_t[b])
        expected_var = betas[step] * (1 - abar_prev) / (1 - abar[step])
        assert var[b].item() == pytest.approx(expected_var.item(), rel=1e-12, abs=1e-30)
    assert var[0].item() == 0.0
    assert log_var[0].item() == pytest.approx(log_var[1].item()), "log variance at t=0 is clipped to t=1"


def test_q_posterior_composes_with_q_sample_into_q() -> None:
    # If x_t ~ q(x_t | x0) and x_{t-1} ~ q(x_{t-1} | x_t, x0), then x_{t-1} ~ q(x_{t-1} | x0):
    # coef1 + coef2 sqrt(abar_t) = sqrt(abar_{t-1}) and coef2^2 (1 - abar_t) + var = 1 - abar_{t-1}.
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=300, schedule="cosine"))
    t = torch.arange(1, 300)
    abar, abar_prev = diffusion.alphas_cumprod[t], diffusion.alphas_cumprod[t - 1]
    coef1, coef2 = diffusion.posterior_mean_coef1[t], diffusion.posterior_mean_coef2[t]
    torch.testing.assert_close(coef1 + coef2 * abar.sqrt(), abar_prev.sqrt())
    torch.testing.assert_close(coef2**2 * (1 - abar) + diffusion.posterior_variance[t], 1 - abar_prev)


def test_snr_and_fractional_timesteps() -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=100))
    t = torch.arange(100)
    abar = diffusion.alphas_cumprod
    torch.testing.assert_close(diffusion.snr(t), abar / (1 - abar))
    # integer-valued float timesteps give the same coefficients as integer ones
    for a, b in zip(diffusion.alpha_sigma(t.double()), diffusion.alpha_sigma(t)):
        torch.testing.assert_close(a, b)
    # fractional timesteps interpolate log-sigma; sigma_to_t inverts t_to_sigma
    frac = torch.tensor([0.0, 0.25, 10.5, 98.9, 99.0], dtype=torch.float64)
    torch.testing.assert_close(diffusion.sigma_to_t(diffusion.t_to_sigma(frac)), frac)
    sigma_mid = diffusion.t_to_sigma(torch.tensor([10.5], dtype=torch.float64))
    sigma_10, sigma_11 = diffusion.t_to_sigma(torch.tensor([10.0, 11.0], dtype=torch.float64))
    torch.testing.assert_close(sigma_mid, (sigma_10 * sigma_11).sqrt().view(1))


# ---------------------------------------------------------------------- training loss
def oracle_of(diffusion: GaussianDiffusion, x0: Tensor, noise: Tensor, x0_error: Tensor | None = None):
    """A model_fn whose x0 estimate is ``x0 + x0_error`` (exact when None), in the network's target."""

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        x0_hat = x0 if x0_error is None else x0 + x0_error
        eps_hat = diffusion.eps_from_x0(x_t, t, x0_hat)
        return diffusion.target(x0_hat, eps_hat, t)

    return model_fn


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_training_loss_is_zero_for_the_exact_model_and_mse_otherwise(prediction: str) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(prediction=prediction))
    x0, noise, t = randn(4, 2, 6, seed=9), randn(4, 2, 6, seed=10), torch.tensor([5, 50, 500, 900])
    exact = oracle_of(diffusion, x0, noise)
    assert diffusion.training_loss(exact, x0, t=t, noise=noise).item() == pytest.approx(0.0, abs=1e-10)
    zero_model = lambda x_t, t: torch.zeros_like(x_t)
    expected = diffusion.target(x0, noise, t).pow(2).mean()
    loss = diffusion.training_loss(zero_model, x0, t=t, noise=noise)
    assert loss.ndim == 0 and loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_min_snr_weight_is_min_snr_gamma_times_x0_error_for_every_target(prediction: str) -> None:
    gamma = 5.0
    diffusion = GaussianDiffusion(DiffusionConfig(prediction=prediction, min_snr_gamma=gamma))
    x0, noise = randn(6, 1, 8, seed=11), randn(6, 1, 8, seed=12)
    x0_error = 0.1 * randn(6, 1, 8, seed=13)
    t = torch.tensor([0, 20, 100, 300, 600, 999])
    losses = diffusion.training_loss(
        oracle_of(diffusion, x0, noise, x0_error), x0, t=t, noise=noise, reduction="none"
    )
    snr = diffusion.snr(t)
    expected = snr.clamp(max=gamma) * x0_error.pow(2).mean(dim=(1, 2))
    assert losses.shape == (6,)
    torch.testing.assert_close(losses.double(), expected, rtol=1e-5, atol=1e-9)


def test_training_loss_mask_averages_over_real_elements_only() -> None:
    diffusion = GaussianDiffusion()
    x0, noise, t = randn(2, 3, 10, seed=14), randn(2, 3, 10, seed=15), torch.tensor([10, 700])
    mask = torch.ones(2, 1, 10)
    mask[0, :, 6:] = 0  # sample 0 has 6 real frames, sample 1 all 10

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        out = noise + 0.5
        out[0, :, 6:] = 1e6  # garbage in the padding must not count
        return out

    loss = diffusion.training_loss(model_fn, x0, t=t, noise=noise, mask=mask)
    assert loss.item() == pytest.approx(0.25, rel=1e-6)
    per_sample = diffusion.training_loss(model_fn, x0, t=t, noise=noise, mask=mask, reduction="none")
    torch.testing.assert_close(per_sample, torch.tensor([0.25, 0.25]))


def test_training_loss_draws_from_the_generator_reproducibly() -> None:
    diffusion = GaussianDiffusion()
    x0 = randn(8, 1, 4, seed=16).float()
    model_fn = lambda x_t, t: x_t * (t.view(-1, 1, 1) / 1000)
    first = diffusion.training_loss(model_fn, x0, generator=torch.Generator().manual_seed(3))
    second = diffusion.training_loss(model_fn, x0, generator=torch.Generator().manual_seed(3))
    other = diffusion.training_loss(model_fn, x0, generator=torch.Generator().manual_seed(4))
    assert first.item() == second.item() != other.item()
    assert first.dtype == torch.float32


def test_training_loss_errors_name_the_fix() -> None:
    diffusion = GaussianDiffusion()
    x0 = torch.zeros(2, 3, 8)
    with pytest.raises(ConfigError, match="out_channels"):
        diffusion.training_loss(lambda x, t: x[:, :1], x0)
    with pytest.raises(ConfigError, match="loss_mask"):
        diffusion.training_loss(lambda x, t: x, x0, mask=torch.ones(2, 8))
    with pytest.raises(ConfigError, match="min_snr_gamma"):
        GaussianDiffusion(DiffusionConfig(min_snr_gamma=0.0))
