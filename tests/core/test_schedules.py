"""Closed-form checks of the beta schedules and the timestep spacings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polydiff.diffusion import (
    DiffusionConfig,
    GaussianDiffusion,
    make_beta_schedule,
    previous_timesteps,
    rescale_zero_terminal_snr,
    shift_snr,
    spaced_timesteps,
)
from polydiff.diffusion.schedules import COSINE_MAX_BETA, COSINE_OFFSET, SCHEDULES
from polydiff.diffusion.timesteps import SPACINGS
from polydiff.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize("ends", [(1e-4, 0.02), (None, None)])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_is_float64_and_in_unit_interval(name: str, ends: tuple) -> None:
    betas = make_beta_schedule(name, 1000, *ends)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert (betas > 0).all() and (betas < 1).all()
    abar = torch.cumprod(1 - betas, 0)
    assert (abar[1:] < abar[:-1]).all(), "abar must decrease strictly"


def test_linear_schedule_endpoints_and_constant_increment() -> None:
    betas = make_beta_schedule("linear", 1000, 1e-4, 0.02)
    assert betas[0].item() == pytest.approx(1e-4, rel=1e-12)
    assert betas[-1].item() == pytest.approx(0.02, rel=1e-12)
    torch.testing.assert_close(betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))


def test_scaled_linear_is_linear_in_sqrt_beta() -> None:
    betas = make_beta_schedule("scaled_linear", 1000, 0.00085, 0.012)
    assert betas[0].item() == pytest.approx(0.00085, rel=1e-12)
    assert betas[-1].item() == pytest.approx(0.012, rel=1e-12)
    step = (0.012**0.5 - 0.00085**0.5) / 999
    torch.testing.assert_close(betas.sqrt().diff(), torch.full((999,), step, dtype=torch.float64))


def test_cosine_schedule_matches_the_abar_formula() -> None:
    T = 1000
    betas = make_beta_schedule("cosine", T, 0.0, 0.0)
    abar = torch.cumprod(1 - betas, 0)
    f = lambda t: math.cos((t / T + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    for t in (0, 1, 250, 500, 900, 990):
        assert abar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert betas.max().item() == pytest.approx(COSINE_MAX_BETA)
    assert betas[-1].item() == pytest.approx(COSINE_MAX_BETA), "the last beta is clipped"


def test_sigmoid_with_set_betas_is_geodiffs_as_before() -> None:
    """Checkpoints store beta_start/beta_end: with them set, sigmoid is the former GeoDiff schedule."""
    start, end = 1e-4, 0.02
    betas = make_beta_schedule("sigmoid", 100, start, end)
    assert (betas.diff() > 0).all()
    torch.testing.assert_close(betas + betas.flip(0), torch.full((100,), start + end, dtype=torch.float64))
    assert betas[0].item() == pytest.approx(start + (end - start) / (1 + math.exp(6)), rel=1e-9)
    u = np.linspace(-6, 6, 100)
    np.testing.assert_allclose(betas.numpy(), start + (end - start) / (1 + np.exp(-u)), rtol=1e-12)


def _lucidrains_sigmoid_beta_schedule(timesteps: int, start=-3, end=3, tau=1, clamp_min=1e-5) -> np.ndarray:
    """``sigmoid_beta_schedule`` of lucidrains' denoising-diffusion-pytorch (Jabri et al. 2023), in numpy."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    t = np.linspace(0, timesteps, timesteps + 1, dtype=np.float64) / timesteps
    v_start, v_end = sigmoid(start / tau), sigmoid(end / tau)
    alphas_cumprod = (-sigmoid((t * (end - start) + start) / tau) + v_end) / (v_end - v_start)
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return np.clip(betas, 0, 0.999)


@pytest.mark.parametrize("T", [10, 100, 1000])
def test_default_sigmoid_is_the_reference_continuous_schedule(T: int) -> None:
    betas = make_beta_schedule("sigmoid", T)
    np.testing.assert_allclose(betas.numpy(), _lucidrains_sigmoid_beta_schedule(T), rtol=1e-10, atol=1e-15)
    assert GaussianDiffusion(DiffusionConfig(num_timesteps=T, schedule="sigmoid")).betas.equal(betas)


def test_default_sigmoid_has_one_abar_curve_for_every_T() -> None:
    """abar_t = abar((t + 1) / T) of one continuous curve: T = 100 and T = 1000 agree where they meet."""
    abar = {T: torch.cumprod(1 - make_beta_schedule("sigmoid", T), 0) for T in (100, 1000)}
    # every step but the last, whose beta is capped at 0.999 as cosine's
    torch.testing.assert_close(abar[100][:-1], abar[1000][9:-1:10], rtol=1e-9, atol=0)
    assert abar[100][49].item() == pytest.approx(0.5, rel=1e-12)  # the curve's midpoint
    # the former schedule ended at 0.36 for T = 100 (the figure); this one is noise
    assert abar[100][-1].item() < 1e-5 and abar[1000][-1].item() < 1e-5
    former = torch.cumprod(1 - make_beta_schedule("sigmoid", 100, 1e-4, 0.02), 0)[-1].item()
    assert former == pytest.approx(0.363, abs=1e-3)


def test_default_scaled_linear_is_stable_diffusions() -> None:
    """diffusers' beta_schedule="scaled_linear" with SD's beta_start 0.00085, beta_end 0.012."""
    expected = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    np.testing.assert_allclose(make_beta_schedule("scaled_linear", 1000).numpy(), expected, rtol=1e-12)
    diffusion = GaussianDiffusion(DiffusionConfig(schedule="scaled_linear"))
    np.testing.assert_allclose(diffusion.betas.numpy(), expected, rtol=1e-12)
    # SD's final abar
    assert diffusion.alphas_cumprod[-1].item() == pytest.approx(0.004660, rel=1e-3)


@pytest.mark.parametrize("T", [100, 1000])
def test_set_betas_keep_the_former_numbers(T: int) -> None:
    """Checkpoints store beta_start=1e-4, beta_end=0.02 (the former defaults of every schedule)."""
    scale = 1000 / T
    former = {
        "linear": np.linspace(1e-4 * scale, 0.02 * scale, T),
        "scaled_linear": np.linspace((1e-4 * scale) ** 0.5, (0.02 * scale) ** 0.5, T) ** 2,
        "sigmoid": 1e-4 + (0.02 - 1e-4) / (1 + np.exp(-np.linspace(-6, 6, T))),
    }
    for name, expected in former.items():
        config = DiffusionConfig(num_timesteps=T, schedule=name, beta_start=1e-4, beta_end=0.02)
        np.testing.assert_allclose(
            GaussianDiffusion(config).betas.numpy(), expected, rtol=1e-12, err_msg=name
        )
    # linear's own default is the former one
    assert GaussianDiffusion(DiffusionConfig(num_timesteps=T)).betas.equal(
        GaussianDiffusion(DiffusionConfig(num_timesteps=T, beta_start=1e-4, beta_end=0.02)).betas
    )


def test_one_set_beta_takes_the_schedules_default_for_the_other() -> None:
    torch.testing.assert_close(make_beta_schedule("scaled_linear", 1000, None, 0.02)[0].item(), 0.00085)
    torch.testing.assert_close(make_beta_schedule("linear", 1000, 1e-3)[-1].item(), 0.02)


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "cosine"])
def test_zero_terminal_snr_rescaling(name: str) -> None:
    betas = make_beta_schedule(name, 1000, 0.00085, 0.012)
    rescaled = rescale_zero_terminal_snr(betas)
    abar, new_abar = torch.cumprod(1 - betas, 0), torch.cumprod(1 - rescaled, 0)
    assert new_abar[-1].item() == 0.0
    assert new_abar[0].item() == pytest.approx(abar[0].item(), rel=1e-12)
    assert rescaled[-1].item() == pytest.approx(1.0)
    # Algorithm 1 shifts and scales sqrt(abar): the map old -> new is affine
    old, new = abar.sqrt(), new_abar.sqrt()
    slope = (new[0] - new[-1]) / (old[0] - old[-1])
    torch.testing.assert_close(new, slope * (old - old[-1]))


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("shift", [0.5, 2.0, 4.0])
def test_snr_shift_divides_every_snr_by_its_square(name: str, shift: float) -> None:
    betas = make_beta_schedule(name, 1000)
    shifted = shift_snr(betas, shift)
    assert shifted.dtype == torch.float64 and ((shifted > 0) & (shifted <= 1)).all()
    abar, new_abar = torch.cumprod(1 - betas.double(), 0), torch.cumprod(1 - shifted, 0)
    snr, new_snr = abar / (1 - abar), new_abar / (1 - new_abar)
    torch.testing.assert_close(new_snr, snr / shift**2, rtol=1e-9, atol=0)
    torch.testing.assert_close(shift_snr(betas, 1.0), betas.double(), rtol=1e-12, atol=1e-15)


def test_snr_shift_reaches_the_diffusion_and_must_be_positive() -> None:
    plain = GaussianDiffusion(DiffusionConfig(schedule="cosine", prediction="v"))
    shifted = GaussianDiffusion(DiffusionConfig(schedule="cosine", prediction="v", snr_shift=3.0))
    t = torch.tensor([100, 500, 900])
    torch.testing.assert_close(shifted.snr(t), plain.snr(t) / 9.0, rtol=1e-6, atol=0)
    with pytest.raises(ConfigError, match="snr_shift"):
        GaussianDiffusion(DiffusionConfig(snr_shift=0.0))


def test_unknown_schedule_names_the_closest_one() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'cosine'"):
        make_beta_schedule("cosin", 10)


def test_bad_beta_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="beta_start"):
        make_beta_schedule("linear", 10, 0.02, 1e-4)
    with pytest.raises(ConfigError, match="leave both unset"):
        make_beta_schedule("sigmoid", 10, 0.5, 0.2)


def test_zero_terminal_snr_refuses_eps_prediction() -> None:
    with pytest.raises(ConfigError, match="prediction='v'"):
        GaussianDiffusion(DiffusionConfig(rescale_zero_terminal_snr=True, prediction="eps"))


# ---------------------------------------------------------------------- timestep spacing
def test_spacings_follow_their_definitions_on_a_small_case() -> None:
    # T = 10, N = 3: leading k = 10 // 3 = 3; trailing round(10 - i * 10/3) - 1;
    # linspace round([0, 4.5, 9]) with round-half-to-even
    assert spaced_timesteps(10, 3, "leading").tolist() == [6, 3, 0]
    assert spaced_timesteps(10, 3, "trailing").tolist() == [9, 6, 2]
    assert spaced_timesteps(10, 3, "linspace").tolist() == [9, 4, 0]


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("num_steps", [1, 2, 7, 50, 61, 103, 999, 1000])
def test_spaced_timesteps_are_strictly_decreasing_and_in_range(spacing: str, num_steps: int) -> None:
    steps = spaced_timesteps(1000, num_steps, spacing)
    assert steps.dtype == torch.int64 and steps.shape == (num_steps,)
    assert (steps.diff() < 0).all()
    assert steps.min() >= 0 and steps.max() <= 999
    if spacing == "trailing":
        assert steps[0] == 999
    if spacing == "leading":
        assert steps[-1] == 0
    if spacing == "linspace" and num_steps > 1:
        assert steps[0] == 999 and steps[-1] == 0
    if num_steps == 1000:
        assert steps.tolist() == list(range(999, -1, -1))


@pytest.mark.parametrize("spacing", SPACINGS)
def test_previous_timestep_is_always_the_next_visited_one(spacing: str) -> None:
    steps = spaced_timesteps(1000, 30, spacing)
    prev = previous_timesteps(steps)
    assert prev[:-1].tolist() == steps[1:].tolist()
    assert prev[-1] == -1
    # diffusers' DDIM uses t - T // N instead, which is wrong off "leading" spacing
    naive = (steps - 1000 // 30).tolist()
    if spacing == "leading":
        assert naive[:-1] == steps[1:].tolist()
    else:
        assert naive[:-1] != steps[1:].tolist()


def test_spacing_errors() -> None:
    with pytest.raises(UnknownNameError, match="trailing"):
        spaced_timesteps(1000, 10, "trail")
    with pytest.raises(ConfigError, match="num_steps"):
        spaced_timesteps(100, 101, "leading")
    with pytest.raises(ConfigError, match="num_steps"):
        spaced_timesteps(100, 0, "leading")


def test_trailing_matches_numpy_definition_where_it_has_no_round_off() -> None:
    for n in (10, 20, 50, 250):
        expected = (np.round(np.arange(1000, 0, -1000 / n)) - 1).astype(np.int64)
        assert spaced_timesteps(1000, n, "trailing").tolist() == expected.tolist()


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "sigmoid"])
def test_short_chains_noise_as_far_as_t1000(name):
    """Betas quoted for T=1000 and scaled by 1000/T (sigmoid: one continuous curve): abar_T ~ T-free."""
    abar = {T: torch.cumprod(1 - make_beta_schedule(name, T), 0)[-1].item() for T in (100, 250, 1000)}
    assert abar[1000] < 1e-2
    assert abar[100] == pytest.approx(abar[1000], rel=0.5, abs=1e-4)
    assert abar[250] == pytest.approx(abar[1000], rel=0.5, abs=1e-4)
