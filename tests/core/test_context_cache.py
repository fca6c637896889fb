"""Cached cross-attention keys and values (``UNet.prepare_context``), in-place sampling, fast upsampling."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from polydiff.errors import ConfigError
from polydiff.interfaces import Conditioning
from polydiff.nn import SpaceTimeConfig, UNet, UNetConfig
from polydiff.nn.attention import AttentionBlock, ContextCache, _residual
from polydiff.nn.blocks import ResBlock, upsample_nearest
from polydiff.nn.dit import DiT
from polydiff.nn.dit_config import DiTConfig
from polydiff.samplers import cfg_model_fn

CTX_DIM = 8


def tiny(dims: int, **overrides) -> UNetConfig:
    """Two levels, attention at the second; rank 3 is the space-time (video) UNet."""
    spacetime = SpaceTimeConfig() if dims == 3 else None
    return UNetConfig(
        dims=dims,
        in_channels=2,
        model_channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(1,),
        head_dim=8,
        norm_groups=8,
        spacetime=spacetime,
        **overrides,
    )


def perturb_(model: torch.nn.Module, std: float = 0.05, only=lambda name: True) -> None:
    """Add noise to (selected) parameters so that zero-initialised paths contribute to the output."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if only(name):
                p.add_(std * torch.randn(p.shape, generator=gen))


def kv_counter(model: UNet) -> list[int]:
    """A one-element list counting the calls of every cross-attention's ``to_kv`` projection."""
    calls = [0]
    for module in model.modules():
        if isinstance(module, AttentionBlock) and module.cross_attn is not None:
            module.cross_attn.to_kv.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def conditional(dims: int = 2) -> tuple[UNet, dict]:
    model = UNet(tiny(dims, context_dim=CTX_DIM)).eval()
    perturb_(model)
    gen = torch.Generator().manual_seed(0)
    kw = {
        "x": torch.randn(2, 2, *(3, 8, 8)[-dims:], generator=gen),
        "t": torch.tensor([10, 700]),
        "context": torch.randn(2, 5, CTX_DIM, generator=gen),
    }
    kw["context_mask"] = torch.tensor([[True] * 5, [True, True, False, False, False]])
    return model, kw


@pytest.mark.parametrize("dims", [2, 3])
def test_cached_context_gives_the_same_output_without_projecting_it_again(dims):
    model, kw = conditional(dims)
    calls = kv_counter(model)
    with torch.no_grad():
        plain = model(**kw)
        per_forward = calls[0]
        cache = model.prepare_context(kw["context"])
        assert isinstance(cache, ContextCache) and calls[0] == 2 * per_forward  # one projection per block
        for _ in range(3):
            cached = model(**dict(kw, context=cache))
    assert per_forward == 4  # cross-attention blocks: level 1 (encoder 1, decoder 2), middle
    assert calls[0] == 2 * per_forward  # three cached forwards projected nothing
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-6)


def test_cache_is_not_used_with_autograd_so_gradients_reach_the_projection():
    model, kw = conditional()
    cache = model.prepare_context(kw["context"])
    grads = []
    for context in (kw["context"], cache):
        model.zero_grad()
        model(**dict(kw, context=context)).square().mean().backward()
        grads.append(model.middle_block[1].cross_attn.to_kv.weight.grad.clone())
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0])


def test_cache_is_not_used_after_the_weights_change_or_by_another_network():
    model, kw = conditional()
    cache = model.prepare_context(kw["context"])
    with torch.no_grad():
        before = model(**dict(kw, context=cache))
        other = copy.deepcopy(model)  # e.g. an EMA copy: other modules, other weights
        perturb_(other, std=0.2)
        torch.testing.assert_close(other(**dict(kw, context=cache)), other(**kw), rtol=0, atol=1e-6)
        perturb_(model, std=0.2, only=lambda name: "cross_attn.to_kv" in name)  # an in-place update
        after = model(**dict(kw, context=cache))
        torch.testing.assert_close(after, model(**kw), rtol=0, atol=1e-6)
    assert not torch.allclose(after, before, atol=1e-4)


def test_prepare_context_checks_the_network_and_the_context():
    model, kw = conditional()
    with pytest.raises(ConfigError, match=r"context must have shape \[B, L, 8\].*got \(2, 5, 3\)"):
        model.prepare_context(kw["context"][..., :3])
    with pytest.raises(ConfigError, match="context_dim is None"):
        UNet(tiny(2)).prepare_context(kw["context"])
    cache = model.prepare_context(kw["context"][:1])
    with pytest.raises(ConfigError, match=r"context must have shape \[2, L, 8\]"):
        model(**dict(kw, context=cache))  # batch 1 against x's 2: refused as for the tensor


def test_dit_caches_its_blocks_cross_attention_too():
    _, kw = conditional()
    dit = DiT(
        DiTConfig(
            dims=2, in_channels=2, context_dim=CTX_DIM, patch_size=(2,), hidden_size=32, head_dim=8, depth=2
        )
    )
    dit.eval()
    perturb_(dit)
    calls = [0]
    for block in dit.blocks:
        block.cross_attn.to_kv.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    with torch.no_grad():
        plain = dit(**kw)
        cache = dit.prepare_context(kw["context"])
        cached = dit(**dict(kw, context=cache))
    assert calls[0] == 4  # two blocks: projected by the plain forward and by prepare_context only
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-6)


def test_guided_sampling_projects_the_context_once_and_matches_two_forwards():
    model, kw = conditional()
    cond = Conditioning(context=kw["context"], context_mask=kw["context_mask"])
    uncond = Conditioning(context=torch.zeros(1, 1, CTX_DIM))  # a null token, broadcast over the batch
    calls = kv_counter(model)
    fn = cfg_model_fn(model, cond, uncond, 3.0)
    with torch.no_grad():
        outs = [fn(kw["x"], torch.full((2,), t)) for t in (900, 500, 100)]
        assert calls[0] == 4  # prepared once for the 2B batch: one projection per block
        for t, out in zip((900, 500, 100), outs):
            tt = torch.full((2,), t)
            c = model(kw["x"], tt, context=cond.context, context_mask=cond.context_mask)
            u = model(kw["x"], tt, context=uncond.context.expand(2, 1, CTX_DIM))
            torch.testing.assert_close(out, u + 3.0 * (c - u), rtol=0, atol=1e-5)


def test_sampling_forward_matches_training_forward_and_leaves_inputs_alone():
    # Without autograd the ResBlocks and transformer blocks work in place: same output, inputs untouched.
    model, kw = conditional(dims=3)
    saved = {k: v.clone() for k, v in kw.items()}
    with torch.no_grad():
        sampled = model(**kw)
    for k, v in kw.items():
        assert torch.equal(v, saved[k]), k
    torch.testing.assert_close(sampled, model(**kw).detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "scale"), [((2, 3, 5), 2), ((2, 3, 4, 5), 2), ((1, 2, 3, 4, 5), (1, 2, 2))]
)
def test_upsample_nearest_equals_interpolate_with_its_gradient(shape, scale):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    expected = F.interpolate(x, scale_factor=scale, mode="nearest")
    out = upsample_nearest(x, scale)
    assert torch.equal(out, expected)
    g = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(expected, x, g)[0])


@pytest.mark.parametrize("grad", [False, True])
def test_residuals_add_out_of_place_when_the_sum_needs_a_wider_dtype(grad):
    # Under autocast a ResBlock's convolutions give bfloat16 while its input may be float32: the
    # residual must then be a new float32 tensor, not an in-place add into bfloat16 (an error).
    block = ResBlock(2, 8, 8, emb_dim=16, norm_groups=4)
    perturb_(block)
    x, emb = torch.randn(2, 8, 4, 4), torch.randn(2, 16)
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x, emb)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, block(x, emb).detach(), rtol=0.05, atol=0.05)
    with torch.no_grad():
        h = torch.ones(3, dtype=torch.bfloat16)
        total = _residual(h, torch.full((3,), 0.5))
    assert total.dtype == torch.float32 and torch.equal(h, torch.ones(3, dtype=torch.bfloat16))
