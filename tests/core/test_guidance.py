"""Classifier-free guidance: the combination, the single batched forward, and context padding."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from polydiff.diffusion import GaussianDiffusion
from polydiff.interfaces import Conditioning
from polydiff.samplers import DDIMSampler, cfg_model_fn


class FakeUNet:
    """A UNet stand-in whose output depends on every conditioning input; counts its calls.

    ``out = x * (1 + t/1000) + mean over real tokens of context (per channel 0) + concat``.
    Padding tokens are excluded through ``context_mask``, so padding must be masked to keep
    the output unchanged.
    """

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def __call__(
        self,
        x: Tensor,
        t: Tensor,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        self.batch_sizes.append(x.shape[0])
        out = x * (1 + t.view(-1, 1, 1).float() / 1000)
        if context is not None:
            mask = torch.ones(context.shape[:2]) if context_mask is None else context_mask.float()
            pooled = (context[..., 0] * mask).sum(1) / mask.sum(1)
            out = out + pooled.view(-1, 1, 1)
        if concat is not None:
            out = out + concat
        return out


def rand(*shape: int, seed: int) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


B, C, L = 3, 2, 7
X, T = rand(B, C, L, seed=0), torch.tensor([10, 500, 990])


def separate(unet: FakeUNet, c: Conditioning) -> Tensor:
    return unet(X, T, **c.unet_kwargs())


@pytest.fixture
def conds() -> tuple[Conditioning, Conditioning]:
    cond = Conditioning(context=rand(B, 5, 4, seed=1), concat=rand(B, C, L, seed=2))
    uncond = Conditioning(context=rand(B, 5, 4, seed=3), concat=torch.zeros(B, C, L))
    return cond, uncond


@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0, -0.5])
def test_guidance_combines_cond_and_uncond(conds: tuple[Conditioning, Conditioning], scale: float) -> None:
    cond, uncond = conds
    unet = FakeUNet()
    expected_c, expected_u = separate(unet, cond), separate(unet, uncond)
    unet.batch_sizes.clear()
    out = cfg_model_fn(unet, cond, uncond, scale)(X, T)
    torch.testing.assert_close(out, expected_u + scale * (expected_c - expected_u))
    if scale == 0.0:
        torch.testing.assert_close(out, expected_u)
    if scale == 1.0:
        torch.testing.assert_close(out, expected_c)
    if scale not in (0.0, 1.0):
        assert unet.batch_sizes == [2 * B], "cond and uncond must run in one batched forward"


def test_contexts_of_different_lengths_are_padded_and_masked() -> None:
    cond = Conditioning(
        context=rand(B, 6, 4, seed=4),
        context_mask=torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] * 6]),
    )
    uncond = Conditioning(context=rand(1, 1, 4, seed=5))  # one null token, batch 1
    unet = FakeUNet()
    expected_c = separate(unet, cond)
    expected_u = unet(X, T, context=uncond.context.expand(B, 1, 4))
    unet.batch_sizes.clear()
    out = cfg_model_fn(unet, cond, uncond, 2.5)(X, T)
    assert unet.batch_sizes == [2 * B]
    torch.testing.assert_close(out, expected_u + 2.5 * (expected_c - expected_u))


def test_no_uncond_means_no_guidance(conds: tuple[Conditioning, Conditioning]) -> None:
    cond, _ = conds
    unet = FakeUNet()
    torch.testing.assert_close(cfg_model_fn(unet, cond, None, 7.0)(X, T), separate(unet, cond))


def test_mismatched_inputs_fall_back_to_two_forwards() -> None:
    cond = Conditioning(context=rand(B, 4, 4, seed=6))
    uncond = Conditioning()  # nothing to attend to
    unet = FakeUNet()
    expected_c, expected_u = separate(unet, cond), separate(unet, uncond)
    unet.batch_sizes.clear()
    out = cfg_model_fn(unet, cond, uncond, 4.0)(X, T)
    assert unet.batch_sizes == [B, B]
    torch.testing.assert_close(out, expected_u + 4.0 * (expected_c - expected_u))


def test_guided_model_fn_drives_a_sampler(conds: tuple[Conditioning, Conditioning]) -> None:
    cond, uncond = conds
    unet = FakeUNet()
    model_fn = cfg_model_fn(lambda x, t, **kw: 0.1 * unet(x, t, **kw), cond, uncond, 3.0)
    out = DDIMSampler(GaussianDiffusion(), 5).sample(
        model_fn, (B, C, L), generator=torch.Generator().manual_seed(0)
    )
    assert out.shape == (B, C, L) and torch.isfinite(out).all()
    assert unet.batch_sizes == [2 * B] * 5
