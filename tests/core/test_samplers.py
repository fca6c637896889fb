"""Samplers against oracle denoisers whose exact answers are known in closed form.

For data ``x0 ~ N(m, s^2)`` (every element independent), ``x_t = alpha x0 + sigma eps`` is
Gaussian and ``E[x0 | x_t] = m + alpha s^2 / (alpha^2 s^2 + sigma^2) (x_t - alpha m)``; the
probability-flow ODE keeps ``z = (x_t - alpha m) / sqrt(alpha^2 s^2 + sigma^2)`` constant, so a
deterministic sampler started from ``x_T`` at timestep ``t_0`` should return ``m + s z(x_T)``.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from polydiff.diffusion import DiffusionConfig, GaussianDiffusion
from polydiff.diffusion.timesteps import SPACINGS
from polydiff.errors import ConfigError, UnknownNameError
from polydiff.plugins import Registry
from polydiff.samplers import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverPP2MSampler,
    EulerKarrasSampler,
    HeunKarrasSampler,
    Sampler,
    dynamic_threshold_x0,
    karras_sigmas,
)

MEAN, STD = 1.5, 0.5

#: The core's samplers by registry name: what polydiff.builtin registers (the one list of them).
BUILTIN_SAMPLERS: dict[str, type[Sampler]] = {
    component.name: component.load() for component in Registry.from_plugins().components("sampler")
}
SHAPE = (500, 1, 40)  # 20,000 independent draws
DETERMINISTIC = ["ddim", "dpmpp-2m", "euler", "heun"]


def gaussian_oracle(diffusion: GaussianDiffusion, mean: float = MEAN, std: float = STD):
    """The exact denoiser of data ``N(mean, std^2)``, answering in the network's target."""

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = (c.to(x_t.dtype).view(-1, *[1] * (x_t.ndim - 1)) for c in diffusion.alpha_sigma(t))
        x0 = mean + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (x_t - alpha * mean)
        return diffusion.target(x0, diffusion.eps_from_x0(x_t, t, x0), t)

    return model_fn


def point_mass_oracle(diffusion: GaussianDiffusion, x0: Tensor, seen: list[tuple[Tensor, Tensor]]):
    """The exact denoiser of data equal to ``x0``; records every ``(t, x_t)`` it is called with."""

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        seen.append((t.clone(), x_t.clone()))
        return diffusion.target(x0, diffusion.eps_from_x0(x_t, t, x0), t)

    return model_fn


def make(name: str, diffusion: GaussianDiffusion, steps: int, spacing: str = "trailing", **kw) -> Sampler:
    if name not in ("euler", "heun"):
        kw["spacing"] = spacing
    return BUILTIN_SAMPLERS[name](diffusion, steps, **kw)


def exact_flow(diffusion: GaussianDiffusion, sampler: Sampler, x_T: Tensor) -> Tensor:
    alpha, sigma = (float(c) for c in diffusion.alpha_sigma(sampler.timesteps[:1]))
    return MEAN + STD * (x_T - alpha * MEAN) / (alpha**2 * STD**2 + sigma**2) ** 0.5


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- convergence
@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLERS))
def test_sample_moments_converge_to_the_data_distribution(name: str) -> None:
    diffusion = GaussianDiffusion()
    errors = {}
    for steps in (5, 50, 200):
        x = make(name, diffusion, steps).sample(gaussian_oracle(diffusion), SHAPE, generator=seeded())
        errors[steps] = (abs(x.mean().item() - MEAN), abs(x.std().item() - STD))
    assert errors[200][0] < 0.025 and errors[200][1] < 0.025, errors
    assert errors[5][1] > errors[50][1] > errors[200][1], errors


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize(
    ("prediction", "zero_snr", "spacing"),
    [("eps", False, "leading"), ("x0", False, "linspace"), ("v", True, "trailing")],
)
def test_deterministic_samplers_follow_the_exact_probability_flow(
    name: str, prediction: str, zero_snr: bool, spacing: str
) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(prediction=prediction, rescale_zero_terminal_snr=zero_snr))
    x_T = torch.randn(16, 1, 64, generator=seeded(1), dtype=torch.float64)
    errors = []
    for steps in (5, 50, 200):
        sampler = make(name, diffusion, steps, spacing)
        x = sampler.sample(gaussian_oracle(diffusion), x_T.shape, x_T=x_T, dtype=torch.float64)
        errors.append((x - exact_flow(diffusion, sampler, x_T)).abs().max().item())
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.1, errors


def test_convergence_orders() -> None:
    """DDIM and Euler are first order (error halves when steps double); Heun and
    DPM-Solver++(2M) are second order and beat DDIM at equal network evaluations."""
    diffusion = GaussianDiffusion()
    x_T = torch.randn(64, 1, 1, generator=seeded(2), dtype=torch.float64)

    def error(name: str, steps: int) -> float:
        sampler = make(name, diffusion, steps)
        x = sampler.sample(gaussian_oracle(diffusion), x_T.shape, x_T=x_T, dtype=torch.float64)
        return (x - exact_flow(diffusion, sampler, x_T)).abs().max().item()

    for first_order in ("ddim", "euler"):
        ratio = error(first_order, 50) / error(first_order, 100)
        assert 1.7 < ratio < 2.3, (first_order, ratio)
    assert error("heun", 50) / error("heun", 100) > 3.5
    ddim_50 = error("ddim", 50)
    assert error("heun", 25) < ddim_50 / 1.5  # 49 network evaluations
    assert error("dpmpp-2m", 50) < ddim_50 / 5


def test_full_ddpm_chain_samples_the_data_distribution() -> None:
    # beta_end 0.015 becomes 0.05 after the 1000/T scaling
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=300, beta_end=0.015))
    sampler = DDPMSampler(diffusion)
    assert sampler.timesteps.tolist() == list(range(299, -1, -1))
    x = sampler.sample(gaussian_oracle(diffusion), SHAPE, generator=seeded(3))
    assert x.mean().item() == pytest.approx(MEAN, abs=0.015)
    assert x.std().item() == pytest.approx(STD, abs=0.015)


def test_ddpm_without_respacing_uses_the_diffusion_posterior() -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=100))
    sampler = DDPMSampler(diffusion)
    for t, abars in zip(sampler.timesteps.tolist(), sampler.step_alphas_cumprod()):
        coef_x0, coef_xt, variance = sampler.step_coefficients(*abars)
        assert coef_x0 == pytest.approx(diffusion.posterior_mean_coef1[t].item(), rel=1e-9)
        assert coef_xt == pytest.approx(diffusion.posterior_mean_coef2[t].item(), rel=1e-9, abs=1e-12)
        assert variance == pytest.approx(diffusion.posterior_variance[t].item(), rel=1e-9, abs=1e-30)
    large = DDPMSampler(diffusion, variance="fixed_large")
    assert large.step_coefficients(*large.step_alphas_cumprod()[10])[2] == pytest.approx(
        diffusion.betas[89].item(), rel=1e-9
    )


def test_ddim_with_eta_one_is_respaced_ddpm() -> None:
    diffusion = GaussianDiffusion()
    oracle = gaussian_oracle(diffusion)
    ddpm = DDPMSampler(diffusion, 20, spacing="linspace").sample(oracle, (8, 1, 16), generator=seeded(4))
    ddim = DDIMSampler(diffusion, 20, spacing="linspace", eta=1.0).sample(
        oracle, (8, 1, 16), generator=seeded(4)
    )
    torch.testing.assert_close(ddim, ddpm)


# ---------------------------------------------------------------------- respacing
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("name", ["ddim", "dpmpp-2m"])
def test_each_step_lands_on_the_next_visited_timestep(name: str, spacing: str) -> None:
    """With data = one point x0 and its exact denoiser, the probability-flow ODE keeps
    ``(x_t - alpha_t x0) / sigma_t`` fixed; a step that computed its target with the wrong
    previous timestep would change it at the next network call."""
    diffusion = GaussianDiffusion()
    x0 = torch.linspace(-1, 1, 12, dtype=torch.float64).view(2, 3, 2)
    seen: list[tuple[Tensor, Tensor]] = []
    sampler = make(name, diffusion, 7, spacing)
    out = sampler.sample(
        point_mass_oracle(diffusion, x0, seen), x0.shape, generator=seeded(), dtype=torch.float64
    )
    assert [t[0].item() for t, _ in seen] == sampler.timesteps.tolist()
    t_first, x_first = seen[0]
    eps_star = diffusion.eps_from_x0(x_first, t_first, x0)
    for t, x_t in seen[1:]:
        torch.testing.assert_close(diffusion.eps_from_x0(x_t, t, x0), eps_star)
    torch.testing.assert_close(out, x0)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_ddpm_states_have_the_forward_marginals_at_every_visited_timestep(spacing: str) -> None:
    """For point-mass data, ancestral sampling with the exact posterior gives
    ``x_t ~ N(alpha_t x0, sigma_t^2)`` at each visited ``t``."""
    diffusion = GaussianDiffusion()
    x0 = torch.full((4000, 1, 5), 0.7, dtype=torch.float64)
    seen: list[tuple[Tensor, Tensor]] = []
    sampler = DDPMSampler(diffusion, 7, spacing=spacing)
    out = sampler.sample(
        point_mass_oracle(diffusion, x0, seen), x0.shape, generator=seeded(5), dtype=torch.float64
    )
    for t, x_t in seen[1:]:
        z = diffusion.eps_from_x0(x_t, t, x0)
        assert abs(z.mean().item()) < 0.03 and abs(z.std().item() - 1) < 0.03, (t[0].item(), z.std().item())
    torch.testing.assert_close(out, x0)


# ---------------------------------------------------------------------- determinism
def test_ddim_is_deterministic_given_x_T() -> None:
    diffusion = GaussianDiffusion()
    sampler, oracle = DDIMSampler(diffusion, 10), gaussian_oracle(diffusion)
    assert not sampler.stochastic and DDIMSampler(diffusion, 10, eta=0.5).stochastic
    a = sampler.sample(oracle, (4, 2, 3), generator=seeded(0))
    b = sampler.sample(oracle, (4, 2, 3), generator=seeded(0))
    c = sampler.sample(oracle, (4, 2, 3), generator=seeded(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    # seeds only matter through x_T: the same x_T with different generators gives the same samples
    x_T = torch.randn(4, 2, 3, generator=seeded(7))
    torch.testing.assert_close(
        sampler.sample(oracle, (4, 2, 3), x_T=x_T, generator=seeded(0)),
        sampler.sample(oracle, (4, 2, 3), x_T=x_T, generator=seeded(1)),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLERS))
def test_seeded_samples_repeat_and_respect_the_stochastic_flag(name: str) -> None:
    diffusion = GaussianDiffusion()
    sampler, oracle = make(name, diffusion, 8), gaussian_oracle(diffusion)
    assert sampler.stochastic == (name == "ddpm")
    x_T = torch.randn(3, 1, 4, generator=seeded(9))
    a = sampler.sample(oracle, (3, 1, 4), x_T=x_T, generator=seeded(0))
    b = sampler.sample(oracle, (3, 1, 4), x_T=x_T, generator=seeded(0))
    c = sampler.sample(oracle, (3, 1, 4), x_T=x_T, generator=seeded(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.equal(a, c) != sampler.stochastic


def test_noise_scale_multiplies_the_initial_noise() -> None:
    diffusion = GaussianDiffusion()
    sampler, oracle = DDIMSampler(diffusion, 10), gaussian_oracle(diffusion)
    scaled = sampler.sample(oracle, (4, 1, 6), generator=seeded(2), noise_scale=0.5)
    x_T = 0.5 * torch.randn(4, 1, 6, generator=seeded(2))
    torch.testing.assert_close(scaled, sampler.sample(oracle, (4, 1, 6), x_T=x_T))


# ---------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLERS))
@pytest.mark.parametrize("shape", [(2, 3, 8), (2, 1, 4, 6), (1, 2, 3, 4, 5)])
def test_samplers_are_rank_blind_and_report_every_step(name: str, shape: tuple[int, ...]) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(prediction="v"))
    sampler = make(name, diffusion, 6)
    calls: list[tuple[int, Tensor, Tensor, Tensor]] = []
    out = sampler.sample(
        gaussian_oracle(diffusion), shape, generator=seeded(), callback=lambda *a: calls.append(a)
    )
    assert out.shape == shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert [c[0] for c in calls] == list(range(6))
    torch.testing.assert_close(torch.stack([c[1][0] for c in calls]).double(), sampler.timesteps.double())
    assert all(c[2].shape == shape and c[3].shape == shape for c in calls)
    # the reported x0 of the last step is what the sampler returns
    torch.testing.assert_close(calls[-1][3], out)


@pytest.mark.parametrize("name", sorted(BUILTIN_SAMPLERS))
def test_clip_denoised_bounds_the_predicted_x0(name: str) -> None:
    diffusion = GaussianDiffusion()
    sampler = make(name, diffusion, 6)
    calls: list[Tensor] = []
    out = sampler.sample(
        gaussian_oracle(diffusion, mean=3.0),
        (4, 1, 8),
        generator=seeded(),
        clip_denoised=True,
        callback=lambda i, t, x, x0: calls.append(x0),
    )
    assert all(x0.abs().max() <= 1.0 for x0 in calls)
    assert out.abs().max() <= 1.0 + 1e-5
    bounded = sampler.sample(
        gaussian_oracle(diffusion, mean=3.0), (4, 1, 8), generator=seeded(), clip_denoised=2.0
    )
    assert 1.5 < bounded.abs().max() <= 2.0 + 1e-5


def test_dynamic_threshold() -> None:
    x0 = torch.tensor([[[0.5, -0.9, 0.2, 1.0]], [[3.0, -3.0, 3.0, -3.0]]])
    out = dynamic_threshold_x0(x0, 0.99)
    torch.testing.assert_close(out[0], x0[0])  # s is at least 1: nothing changes inside [-1, 1]
    torch.testing.assert_close(out[1], x0[1] / 3.0)
    with pytest.raises(ConfigError, match="percentile"):
        DDIMSampler(GaussianDiffusion(), 2).sample(lambda x, t: x, (1, 1, 2), dynamic_threshold=99.5)


def test_karras_noise_levels() -> None:
    diffusion = GaussianDiffusion()
    sampler = EulerKarrasSampler(diffusion, 10, sigma_max=float(diffusion.log_sigmas[-1].exp()))
    sigmas = sampler.sigmas
    abar = diffusion.alphas_cumprod
    assert sigmas[0].item() == pytest.approx(((1 - abar[-1]) / abar[-1]).sqrt().item(), rel=1e-9)
    assert sigmas[-2].item() == pytest.approx(((1 - abar[0]) / abar[0]).sqrt().item(), rel=1e-9)
    assert sigmas[-1] == 0 and (sigmas.diff() < 0).all()
    # sigma^(1/rho) is evenly spaced
    inv = sigmas[:-1] ** (1 / 7)
    torch.testing.assert_close(
        inv.diff(), torch.full((9,), (inv[-1] - inv[0]).item() / 9, dtype=torch.float64)
    )
    assert sampler.timesteps[0].item() == pytest.approx(999) and sampler.timesteps[
        -1
    ].item() == pytest.approx(0)
    torch.testing.assert_close(
        karras_sigmas(3, 0.1, 10.0, rho=1.0), torch.tensor([10.0, 5.05, 0.1, 0.0], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("schedule", "largest", "default"),
    # scaled_linear: Stable Diffusion's betas, whose largest sigma is SD's 14.6146
    [("cosine", 4096.0, 80.0), ("linear", 157.4, 80.0), ("scaled_linear", 14.6146, 14.6146)],
)
@pytest.mark.parametrize("cls", [EulerKarrasSampler, HeunKarrasSampler])
def test_karras_sigma_max_defaults_to_80_or_the_schedules_largest(
    cls: type[Sampler], schedule: str, largest: float, default: float
) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(schedule=schedule))
    highest = diffusion.log_sigmas[-1].exp().item()
    assert highest == pytest.approx(largest, rel=1e-3)
    for sampler in (cls(diffusion, 10), cls(diffusion, 10, sigma_max=None)):
        assert sampler.sigma_max == pytest.approx(min(80.0, highest), rel=1e-12)
        assert sampler.sigmas[0].item() == pytest.approx(default, rel=1e-3)
        # the first network call is at the timestep of that sigma, by log-sigma interpolation
        assert diffusion.t_to_sigma(sampler.timesteps[:1]).item() == pytest.approx(
            sampler.sigma_max, rel=1e-9
        )
    assert cls(diffusion, 10, sigma_max=highest).sigmas[0].item() == pytest.approx(highest, rel=1e-12)
    assert cls(diffusion, 10, sigma_max=5.0).timesteps[0].item() < cls(diffusion, 10).timesteps[0].item()


@pytest.mark.parametrize("name", ["euler", "heun"])
@pytest.mark.parametrize("sigma_max", [None, 10.0])
def test_karras_chain_starts_at_the_first_sigma_and_calls_the_network_at_its_timestep(
    name: str, sigma_max: float | None
) -> None:
    """For point-mass data the exact denoiser makes every Euler/Heun step exact: the network must
    see ``x_VP = alpha_t x0 + sigma_t eps*`` with one ``eps*`` (that of ``x_T`` read at
    ``sigmas[0]``) at the timestep ``t`` with ``t_to_sigma(t) = sigma`` of each noise level."""
    diffusion = GaussianDiffusion(DiffusionConfig(schedule="cosine", prediction="v"))
    x0 = torch.linspace(-1, 1, 12, dtype=torch.float64).view(2, 3, 2)
    seen: list[tuple[Tensor, Tensor]] = []
    sampler = make(name, diffusion, 6, sigma_max=sigma_max)
    x_T = torch.randn(x0.shape, generator=seeded(3), dtype=torch.float64)
    out = sampler.sample(point_mass_oracle(diffusion, x0, seen), x0.shape, x_T=x_T, dtype=torch.float64)
    sigmas_seen = torch.stack([diffusion.t_to_sigma(t[:1].double())[0] for t, _ in seen])
    expected = sampler.sigmas[:-1]
    if name == "heun":  # Euler's sigma, then the correction's at the next one (none for the last step)
        expected = torch.stack([s for i in range(6) for s in sampler.sigmas[i : i + 2] if s > 0])
    # the network's timesteps are float32: t(sigma) is exact up to float32 rounding of t
    torch.testing.assert_close(sigmas_seen, expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(seen[0][1], x_T)  # x_T is the network's first input, at t(sigmas[0])
    eps_star = diffusion.eps_from_x0(x_T, seen[0][0], x0)
    for t, x_t in seen[1:]:
        torch.testing.assert_close(diffusion.eps_from_x0(x_t, t, x0), eps_star, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, x0)


@pytest.mark.parametrize("name", ["euler", "heun"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_karras_samplers_follow_the_exact_flow_on_a_cosine_schedule(name: str, prediction: str) -> None:
    """From sigma_max = 80 (the default here), not the schedule's 4096."""
    diffusion = GaussianDiffusion(DiffusionConfig(schedule="cosine", prediction=prediction))
    x_T = torch.randn(16, 1, 64, generator=seeded(1), dtype=torch.float64)
    errors = []
    for steps in (5, 50, 200):
        sampler = make(name, diffusion, steps)
        assert sampler.sigma_max == 80.0
        x = sampler.sample(gaussian_oracle(diffusion), x_T.shape, x_T=x_T, dtype=torch.float64)
        errors.append((x - exact_flow(diffusion, sampler, x_T)).abs().max().item())
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < (0.05 if name == "euler" else 0.005), errors  # first and second order
    x = make(name, diffusion, 100).sample(gaussian_oracle(diffusion), SHAPE, generator=seeded())
    assert x.mean().item() == pytest.approx(MEAN, abs=0.02) and x.std().item() == pytest.approx(STD, abs=0.02)


def test_heun_calls_the_network_twice_per_step_but_the_last() -> None:
    diffusion = GaussianDiffusion()
    oracle, count = gaussian_oracle(diffusion), []
    HeunKarrasSampler(diffusion, 7).sample(lambda x, t: count.append(1) or oracle(x, t), (2, 1, 3))
    assert len(count) == 2 * 7 - 1


def mixture_oracle(diffusion: GaussianDiffusion, centres=(-1.0, 1.0), std: float = 0.05):
    """The exact denoiser of data drawn evenly from ``N(c, std^2)``, ``c`` in ``centres``."""
    c = torch.tensor(centres, dtype=torch.float64)

    def model_fn(x_t: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = (v.to(x_t.dtype).view(-1, *[1] * (x_t.ndim - 1)) for v in diffusion.alpha_sigma(t))
        var = (alpha**2 * std**2 + sigma**2)[..., None]
        weights = (-((x_t[..., None] - alpha[..., None] * c) ** 2) / (2 * var)).softmax(-1)
        posterior = c + alpha[..., None] * std**2 / var * (x_t[..., None] - alpha[..., None] * c)
        x0 = (weights * posterior).sum(-1)
        return diffusion.target(x0, diffusion.eps_from_x0(x_t, t, x0), t)

    return model_fn


@pytest.mark.parametrize(("schedule", "prediction"), [("cosine", "v"), ("linear", "eps")])
def test_heun_with_few_steps_samples_the_data_with_the_exact_denoiser(schedule: str, prediction: str) -> None:
    """2..10 steps (3..19 evaluations). With Algorithm 1's grid the last Heun step went from
    3.1 to sigma_min = 0.006 at N = 3 and the samples' std came out 4x too large (80x at N = 2,
    2.5x at N = 5), and on two-mode data almost no sample landed near a mode up to N = 6."""
    diffusion = GaussianDiffusion(DiffusionConfig(schedule=schedule, prediction=prediction))
    x_T = torch.randn(SHAPE, generator=seeded(), dtype=torch.float64)
    stds = {}
    for steps in range(2, 11):
        sampler = HeunKarrasSampler(diffusion, steps)
        assert sampler.sigmas[-1] == 0 and sampler.sigmas[-2] > sampler.sigma_min
        x = sampler.sample(gaussian_oracle(diffusion), SHAPE, x_T=x_T, dtype=torch.float64)
        assert torch.isfinite(x).all()
        assert x.mean().item() == pytest.approx(MEAN, abs=0.05), steps
        stds[steps] = x.std().item()
        if steps >= 3:
            y = sampler.sample(mixture_oracle(diffusion), SHAPE, x_T=x_T, dtype=torch.float64)
            near_a_mode = ((y.abs() - 1).abs() < 0.2).double().mean().item()
            assert near_a_mode > 0.9, (steps, near_a_mode)
    assert all(0.15 * STD < std < 2.5 * STD for std in stds.values()), stds
    assert all(abs(stds[n] - STD) < 0.4 * STD for n in range(7, 11)), stds
    assert abs(stds[10] - STD) < abs(stds[7] - STD) < abs(stds[5] - STD), stds


@pytest.mark.parametrize("steps", [1, 2, 3, 10])
def test_heun_makes_2n_minus_1_evaluations_the_last_an_euler_step_to_zero(steps: int) -> None:
    diffusion = GaussianDiffusion(DiffusionConfig(schedule="cosine", prediction="v"))
    oracle, seen = gaussian_oracle(diffusion), []
    sampler = HeunKarrasSampler(diffusion, steps)
    sampler.sample(lambda x, t: seen.append(t[0].item()) or oracle(x, t), (2, 1, 3), dtype=torch.float64)
    assert len(seen) == 2 * steps - 1
    # its noise levels are the first N of the N + 1 Karras levels down to sigma_min, then 0
    grid = karras_sigmas(steps + 1, sampler.sigma_min, sampler.sigma_max)
    torch.testing.assert_close(sampler.sigmas, torch.cat([grid[:-2], grid.new_zeros(1)]))
    # the last evaluation is the Euler step's, at the last nonzero level (not at sigma_min)
    assert seen[-1] == pytest.approx(sampler.timesteps[-1].item(), rel=1e-6)
    assert diffusion.t_to_sigma(torch.tensor([seen[-1]])).item() > sampler.sigma_min * 1.5


def test_sampler_errors_name_the_fix() -> None:
    diffusion = GaussianDiffusion()
    with pytest.raises(ConfigError, match="accepts: spacing, variance"):
        DDPMSampler(diffusion, 10, eta=0.0)
    with pytest.raises(UnknownNameError, match="fixed_small"):
        DDPMSampler(diffusion, 10, variance="small")
    with pytest.raises(ConfigError, match="spacing"):
        EulerKarrasSampler(diffusion, 10, spacing="trailing")
    with pytest.raises(ConfigError, match="sigma_max"):
        HeunKarrasSampler(diffusion, 10, sigma_max=1e4)
    with pytest.raises(ConfigError, match="eta"):
        DDIMSampler(diffusion, 10, eta=-1)
    assert isinstance(DPMSolverPP2MSampler(diffusion), Sampler)
