"""Fixtures for the plugin tests: fake installed distributions and a clean plugin environment."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from polydiff.nn import UNet, UNetConfig
from polydiff.plugins import ENV_DISABLE, ENV_LOAD, ENV_STRICT, reset_registry

FAKE_PLUGINS = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``POLYDIFF_*`` plugin variables, and a process-wide registry rebuilt before and after."""
    for name in (ENV_STRICT, ENV_DISABLE, ENV_LOAD):
        monkeypatch.delenv(name, raising=False)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``install(distribution, module, version="1.0", name=None) -> entry-point name``.

    Writes ``<distribution>-<version>.dist-info/`` (METADATA, entry_points.txt with a
    ``[polydiff]`` section naming ``module``) and a copy of ``tests/fixtures/plugins/<module>.py``
    into a directory on ``sys.path``: importlib.metadata finds it like a pip-installed plugin.
    """
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(distribution: str, module: str, *, version: str = "1.0", name: str | None = None) -> str:
        name = name or module.removeprefix("pd_fake_")
        shutil.copy(FAKE_PLUGINS / f"{module}.py", site / f"{module}.py")
        dist_info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        (dist_info / "entry_points.txt").write_text(f"[polydiff]\n{name} = {module}\n")
        importlib.invalidate_caches()
        return name

    yield install
    for module in [m for m in sys.modules if m.startswith("pd_fake_")]:
        del sys.modules[module]
    importlib.invalidate_caches()


@pytest.fixture
def perturbed_unet() -> Callable[..., UNet]:
    """``make(**overrides) -> UNet``: a small 2-D UNet (3 channels, two levels, attention at the second)
    whose parameters are all perturbed, so the zero-initialised output layers hide no block."""

    def make(**overrides) -> UNet:
        config = dict(
            dims=2,
            in_channels=3,
            model_channels=16,
            channel_mult=(1, 2),
            attention_levels=(1,),
            head_dim=8,
            norm_groups=8,
        )
        torch.manual_seed(0)
        model = UNet(UNetConfig(**(config | overrides)))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        return model

    return make
