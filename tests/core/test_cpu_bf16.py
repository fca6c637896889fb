"""bfloat16 on the CPU: GroupNorm and short attention compute in float32, and give what that computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import polydiff.nn.attention as attention_mod
import polydiff.nn.layers as layers
from polydiff.nn.attention import Attention, scaled_dot_product_attention
from polydiff.nn.config import UNetConfig
from polydiff.nn.layers import FrameGroupNorm, GroupNorm
from polydiff.nn.unet import UNet

BF16 = torch.bfloat16
CL = torch.channels_last


def _norm() -> GroupNorm:
    torch.manual_seed(0)
    norm = GroupNorm(4, 16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return norm


def test_channels_last_bf16_groupnorm_is_the_float32_one_cast_back() -> None:
    norm = _norm()
    x = (3 * torch.randn(2, 16, 5, 5) + 1).to(BF16).contiguous(memory_format=CL).requires_grad_()
    y = norm(x)
    assert y.dtype == BF16 and y.is_contiguous(memory_format=CL)
    assert torch.equal(y, F.group_norm(x.float(), 4, norm.weight, norm.bias, norm.eps).to(BF16))
    grad = torch.randn(2, 16, 5, 5)
    y.backward(grad.to(BF16))
    ref_x = x.detach().float().requires_grad_()
    F.group_norm(ref_x, 4, norm.weight.detach(), norm.bias.detach(), norm.eps).backward(grad.to(BF16).float())
    assert x.grad.dtype == BF16
    torch.testing.assert_close(x.grad, ref_x.grad.to(BF16), rtol=0, atol=0)
    assert norm.weight.grad is not None and norm.weight.grad.dtype == torch.float32


def test_contiguous_and_float32_inputs_run_as_nn_groupnorm_does(monkeypatch) -> None:
    norm = _norm()
    stock = torch.nn.GroupNorm(4, 16)
    stock.load_state_dict(norm.state_dict())  # same parameters, same state dict keys
    seen: list[torch.dtype] = []
    real = F.group_norm
    monkeypatch.setattr(F, "group_norm", lambda x, *a, **k: seen.append(x.dtype) or real(x, *a, **k))
    bf16_nchw, float32_cl = (
        torch.randn(2, 16, 5, 5).to(BF16),
        torch.randn(2, 16, 5, 5).contiguous(memory_format=CL),
    )
    for x in (bf16_nchw, float32_cl):
        assert torch.equal(norm(x), stock(x))
    assert seen == [BF16, BF16, torch.float32, torch.float32]  # NCHW bfloat16: PyTorch's kernel, uncast


def test_frame_groupnorm_keeps_bf16_video_in_its_own_dtype() -> None:
    norm = FrameGroupNorm(4, 16)
    x = torch.randn(2, 16, 3, 4, 4).to(BF16)
    per_frame = (
        torch.nn.GroupNorm(4, 16)(x.transpose(1, 2).flatten(0, 1)).unflatten(0, (2, 3)).transpose(1, 2)
    )
    assert torch.equal(norm(x), per_frame)


def test_the_switch_restores_pytorchs_bf16_groupnorm(monkeypatch) -> None:
    norm = _norm()
    x = torch.randn(2, 16, 5, 5).to(BF16).contiguous(memory_format=CL)
    monkeypatch.setattr(layers, "CPU_FLOAT32_FOR", ())
    assert torch.equal(norm(x), F.group_norm(x, 4, norm.weight, norm.bias, norm.eps))


def _record_sdpa_dtypes(monkeypatch) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None):
        seen.append(q.dtype)
        return real(q, k, v, attn_mask=attn_mask)

    monkeypatch.setattr(attention_mod.F, "scaled_dot_product_attention", spy)
    return seen


@pytest.mark.parametrize(("queries", "keys", "computed_in"), [(64, 64, torch.float32), (512, 256, BF16)])
def test_short_bf16_cpu_attention_runs_in_float32(monkeypatch, queries, keys, computed_in) -> None:
    seen = _record_sdpa_dtypes(monkeypatch)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 2, queries, 8, generator=gen)
    k, v = torch.randn(2, 2, keys, 8, generator=gen), torch.randn(2, 2, keys, 8, generator=gen)
    with torch.autocast("cpu", dtype=BF16):  # as --precision bf16 runs it: autocast must not undo the cast
        out = scaled_dot_product_attention(q.to(BF16), k.to(BF16), v.to(BF16))
    assert seen == [computed_in] and out.dtype == BF16
    exact = F.scaled_dot_product_attention(*(t.to(BF16).float() for t in (q, k, v)))
    if computed_in == torch.float32:
        torch.testing.assert_close(out, exact.to(BF16), rtol=0, atol=0)
    else:
        torch.testing.assert_close(out.float(), exact, rtol=0.05, atol=0.02)


def test_float32_attention_is_untouched_and_masks_follow_the_cast(monkeypatch) -> None:
    seen = _record_sdpa_dtypes(monkeypatch)
    torch.manual_seed(0)
    attn = Attention(16, context_dim=12, head_dim=8)
    x, context = torch.randn(2, 10, 16), torch.randn(2, 6, 12)
    keep = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])[:, None, None]
    bias = torch.zeros(2, 1, 1, 6).masked_fill(~keep, float("-inf"))
    reference = attn(x, context, attn_mask=keep)
    with torch.autocast("cpu", dtype=BF16):
        with_bool = attn(x, context, attn_mask=keep)
        with_bias = attn(x, context, attn_mask=bias)
    assert seen == [torch.float32] * 3
    assert with_bool.dtype == BF16
    torch.testing.assert_close(with_bias, with_bool, rtol=0, atol=0)
    torch.testing.assert_close(with_bool.float(), reference, rtol=0.05, atol=0.02)


def test_unet_trains_under_cpu_bf16_close_to_float32() -> None:
    cfg = UNetConfig(
        dims=2, in_channels=3, model_channels=16, channel_mult=(1, 2), attention_levels=(1,),
        head_dim=8, norm_groups=4, context_dim=12,
    )  # fmt: skip
    torch.manual_seed(0)
    net = UNet(cfg)
    with torch.no_grad():  # zero-initialised outputs would hide the attention and the last convs
        for p in net.parameters():
            if not p.any():
                p.normal_(std=0.1)
    x, t = torch.randn(4, 3, 8, 8), torch.tensor([3, 200, 500, 900])
    context = torch.randn(4, 5, 12)
    reference = net(x, t, context=context)
    with torch.autocast("cpu", dtype=BF16):
        out = net(x, t, context=context)
    assert (out.float() - reference).norm() / reference.norm() < 0.02
    with torch.autocast("cpu", dtype=BF16):
        loss = net(x, t, context=context).float().square().mean()
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
