"""``polydiff.nn.linear.Linear``: the oneDNN route of large CPU products gives ``F.linear``'s results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import polydiff.nn.linear as linear_mod
from polydiff.errors import ConfigError
from polydiff.nn.linear import ENV_VAR, MIN_ROWS, Linear, cpu_matmul_route, onednn_linear

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this build")


@pytest.fixture
def route(monkeypatch):
    """Set ``POLYDIFF_CPU_MATMUL`` for one test (the route is cached per process)."""

    def set_route(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(ENV_VAR, value)
        cpu_matmul_route.cache_clear()

    yield set_route
    cpu_matmul_route.cache_clear()


@pytest.fixture
def onednn_calls(monkeypatch) -> list[int]:
    """Count calls of :func:`onednn_linear` (by row block)."""
    calls: list[int] = []

    def spy(x, weight, bias, block):
        calls.append(block)
        return onednn_linear(x, weight, bias, block)

    monkeypatch.setattr(linear_mod, "onednn_linear", spy)
    return calls


def grads(layer: nn.Linear, x: torch.Tensor, fn) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_()
    y = fn(x)
    # random, not a ramp: a ramp's column sums (the bias gradient) cancel to float32 rounding noise
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    params = [x, layer.weight] + ([layer.bias] if layer.bias is not None else [])
    return (y.detach(), *torch.autograd.grad(y, params, g))


@needs_onednn
@pytest.mark.parametrize(
    ("shape", "out", "bias"),
    [
        ((32, 256, 96), 384, True),
        ((2048, 96), 288, False),
        ((4, 8, 64, 64), 40, True),
        ((1, 1040, 24), 8, True),
    ],
)
def test_onednn_route_equals_f_linear(route, onednn_calls, shape, out, bias):
    route("onednn")
    torch.manual_seed(0)
    layer = Linear(shape[-1], out, bias=bias)
    x = torch.randn(shape)
    fast = grads(layer, x, layer)
    reference = grads(layer, x, lambda x: F.linear(x, layer.weight, layer.bias))
    assert onednn_calls, "the oneDNN route was not taken"
    assert fast[0].shape == (*shape[:-1], out) and fast[0].is_contiguous()
    for a, b in zip(fast, reference, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


@needs_onednn
def test_non_contiguous_input(route, onednn_calls):
    route("onednn")
    layer = Linear(32, 16)
    x = torch.randn(64, 32, 40).transpose(1, 2)  # [64, 40, 32], not contiguous
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-4, atol=1e-5)
    assert onednn_calls == [128]  # 2560 rows: blocks of 128


@needs_onednn
@pytest.mark.parametrize(
    "case", ["few rows", "rows not divisible by 16", "float64", "autocast", "blas route"]
)
def test_falls_back_to_f_linear(route, onednn_calls, case):
    route("blas" if case == "blas route" else "onednn")
    layer = Linear(8, 8)
    x = torch.randn(4 * MIN_ROWS, 8)
    if case == "few rows":
        x = torch.randn(MIN_ROWS - 16, 8)
    elif case == "rows not divisible by 16":
        x = torch.randn(MIN_ROWS + 8, 8)
    elif case == "float64":
        layer, x = layer.double(), x.double()
    if case == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        assert y.dtype == torch.bfloat16
    else:
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    assert onednn_calls == []


def test_same_state_dict_as_nn_linear():
    plain = nn.Linear(12, 7)
    layer = Linear(12, 7)
    layer.load_state_dict(plain.state_dict())
    assert list(layer.state_dict()) == list(plain.state_dict()) == ["weight", "bias"]
    assert isinstance(layer, nn.Linear)
    x = torch.randn(3, 12)
    torch.testing.assert_close(layer(x), plain(x))


def test_unknown_route_is_one_line(route):
    route("fast")
    with pytest.raises(
        ConfigError, match=r"POLYDIFF_CPU_MATMUL='fast' is not a route; use one of auto, onednn, blas"
    ):
        cpu_matmul_route()


@needs_onednn
@pytest.mark.parametrize(
    ("machine", "vendor", "expected"),
    [
        ("x86_64", "AuthenticAMD", "onednn"),
        ("x86_64", "GenuineIntel", "blas"),
        ("aarch64", "", "blas"),
        ("x86_64", "", "blas"),
    ],
)
def test_auto_route_by_cpu(route, monkeypatch, machine, vendor, expected):
    monkeypatch.setattr(linear_mod.platform, "machine", lambda: machine)
    monkeypatch.setattr(linear_mod, "_cpu_vendor", lambda: vendor)
    route(None)
    assert cpu_matmul_route() == expected
    route("onednn")
    assert cpu_matmul_route() == "onednn"  # an explicit choice wins on every CPU


@needs_onednn
def test_unet_same_output_and_gradients_on_both_routes(route, onednn_calls, perturbed_unet):
    model = perturbed_unet(model_channels=32, head_dim=16, context_dim=24)
    x, t, context = torch.randn(64, 3, 16, 16), torch.randint(0, 1000, (64,)), torch.randn(64, 5, 24)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        y = model(x, t, context=context)
        y.square().mean().backward()
        return y.detach(), model.input_blocks[-1][-1].proj_in.weight.grad.clone()

    route("blas")
    reference = run()
    assert onednn_calls == []
    route("onednn")
    fast = run()
    assert onednn_calls, "no layer of the UNet took the oneDNN route"
    for a, b in zip(fast, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


@needs_onednn
def test_traces_into_one_graph_for_torch_compile(route):
    route("onednn")
    layer = Linear(16, 32)
    x = torch.randn(2048, 16)
    compiled = torch.compile(layer, backend="eager", fullgraph=True)  # fails on any graph break
    torch.testing.assert_close(compiled(x), F.linear(x, layer.weight, layer.bias))
