"""The trainer's fused AdamW and multi-tensor EMA: the same numbers as PyTorch's per-tensor loops,
and a checkpoint of either kind resumes into the other."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from polydiff.training.ema import EMA
from polydiff.training.optimizer import can_fuse, load_adamw_state, make_adamw


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.SiLU(), nn.Conv2d(8, 3, 1))


def _steps(net: nn.Module, opt: torch.optim.Optimizer, n: int, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(4, 3, 8, 8, generator=gen)
        loss = (net(x) - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def test_fused_where_torch_has_the_kernel() -> None:
    net = _net()
    assert can_fuse(list(net.parameters()))
    assert make_adamw(list(net.parameters()), lr=1e-3, weight_decay=0.01).param_groups[0]["fused"] is True
    assert not can_fuse([nn.Parameter(torch.zeros(3, dtype=torch.float64))])
    assert not can_fuse([nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3, device="meta"))])
    opt = make_adamw([nn.Parameter(torch.zeros(3, dtype=torch.float64))], lr=1e-3, weight_decay=0.0)
    assert not opt.param_groups[0]["fused"]


def test_fused_adamw_takes_the_per_tensor_loop_s_steps() -> None:
    a, b = _net(), _net()
    loop = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=0.1, foreach=False)
    fused = make_adamw(list(b.parameters()), lr=1e-2, weight_decay=0.1)
    _steps(a, loop, 20)
    _steps(b, fused, 20)
    moved = max((p - q).abs().max().item() for p, q in zip(a.parameters(), _net().parameters()))
    assert moved > 1e-2  # twenty steps of lr 1e-2 moved the weights
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("written_fused", [False, True])
def test_a_checkpoint_of_either_kind_resumes_with_this_run_s_kernel(written_fused: bool) -> None:
    """State written by the loop (an older run) resumes fused, and the other way round keeps the
    kernel this optimizer chose; both continue the same trajectory as an unbroken run."""
    ref = _net()
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.1, foreach=False)
    _steps(ref, ref_opt, 10)
    writer = _net()
    writer_opt = torch.optim.AdamW(
        writer.parameters(), lr=1e-2, weight_decay=0.1, fused=written_fused or None
    )
    _steps(writer, writer_opt, 5)
    state = copy.deepcopy(writer_opt.state_dict())
    assert bool(state["param_groups"][0]["fused"]) is written_fused
    reader = copy.deepcopy(writer)
    reader_opt = make_adamw(list(reader.parameters()), lr=1e-2, weight_decay=0.1)
    load_adamw_state(reader_opt, state)
    assert reader_opt.param_groups[0]["fused"] is True
    _steps(reader, reader_opt, 5, seed=2)
    _steps(writer, writer_opt, 5, seed=2)
    for p, q in zip(writer.parameters(), reader.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_ema_equals_the_per_tensor_average_with_its_warm_up() -> None:
    net = _net()
    ema = EMA(net, decay=0.9)
    expected = {name: p.detach().clone() for name, p in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for n in range(1, 6):
        _steps(net, opt, 1, seed=n)
        ema.update(net)
        d = min(0.9, (1 + n) / (10 + n))
        for name, p in net.named_parameters():
            expected[name] = d * expected[name] + (1 - d) * p.detach()
    for name, value in expected.items():
        torch.testing.assert_close(ema.shadow[name], value)
        assert not torch.equal(ema.shadow[name], dict(net.named_parameters())[name].detach())


def test_ema_skips_frozen_parameters() -> None:
    net = _net()
    net[0].weight.requires_grad_(False)
    ema = EMA(net, decay=0.5)
    assert "0.weight" not in ema.shadow and "0.bias" in ema.shadow
    bias = net[0].bias.detach().clone()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)  # first update: decay min(0.5, 2 / 11), so the average moves 9/11 of the way
    torch.testing.assert_close(ema.shadow["0.bias"], bias + 9 / 11)


def test_ema_of_a_model_with_nothing_trainable_is_a_no_op() -> None:
    net = _net().requires_grad_(False)
    ema = EMA(net, decay=0.9)
    ema.update(net)
    assert ema.shadow == {} and ema.num_updates == 1
