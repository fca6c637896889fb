"""2-D UNets run channels-last on the CPU: the same outputs and gradients as NCHW, a contiguous result."""

from __future__ import annotations

import pytest
import torch

from polydiff.nn.blocks import upsample_nearest


@pytest.mark.parametrize("overrides", [{}, {"context_dim": 12, "cond_channels": 2, "coord_channels": True}])
def test_same_outputs_and_gradients_as_nchw(perturbed_unet, overrides):
    model = perturbed_unet(**overrides)
    assert model.channels_last_on_cpu
    gen = torch.Generator().manual_seed(1)
    kw = {"x": torch.randn(4, 3, 8, 8, generator=gen), "t": torch.tensor([0, 10, 500, 999])}
    if "context_dim" in overrides:
        kw["context"] = torch.randn(4, 5, 12, generator=gen)
        kw["concat"] = torch.randn(4, 2, 8, 8, generator=gen)

    def run(channels_last: bool) -> list[torch.Tensor]:
        model.channels_last_on_cpu = channels_last
        model.zero_grad()
        y = model(**kw)
        assert y.is_contiguous()
        y.square().mean().backward()
        return [y.detach()] + [p.grad.clone() for p in model.parameters()]

    reference, fast = run(False), run(True)
    for a, b in zip(fast, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(1.0, b.abs().max().item()))


def test_channels_last_reaches_the_convolutions(perturbed_unet):
    model = perturbed_unet()
    seen: list[bool] = []
    target = next(m for m in model.input_blocks[1].modules() if isinstance(m, torch.nn.Conv2d))
    handle = target.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    model(torch.randn(2, 3, 8, 8), torch.tensor([1, 2]))
    model.channels_last_on_cpu = False
    model(torch.randn(2, 3, 8, 8), torch.tensor([1, 2]))
    handle.remove()
    assert seen == [True, False]


def test_upsample_nearest_channels_last_equals_nchw():
    x = torch.randn(2, 5, 3, 4, requires_grad=True)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    y, y_cl = upsample_nearest(x, 2), upsample_nearest(x_cl, 2)
    torch.testing.assert_close(y_cl, y)
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn(y.shape)
    y.backward(g), y_cl.backward(g)
    torch.testing.assert_close(x_cl.grad, x.grad)
