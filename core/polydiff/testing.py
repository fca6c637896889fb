"""Checks every plugin's tests need, so that a plugin's own tests are about its domain.

Plain functions (call them from your tests) and pytest fixtures (``pytest_plugins =
["polydiff.testing"]`` in your ``conftest.py`` gives ``polydiff_registry`` and ``polydiff_cli``).
Each check raises ``AssertionError`` with a message saying what is wrong and where::

    from polydiff.testing import (check_components, check_entry_point, check_lazy_import,
                                  check_presets, plugin_registry, run_cli)

    registry = plugin_registry("timeseries")          # the core plus this plugin only
    check_entry_point("timeseries", "polydiff_timeseries.plugin", "polydiff-timeseries")
    check_lazy_import("polydiff_timeseries.plugin")   # listing plugins imports no torch
    check_components(registry, "polydiff-timeseries") # every component imports and builds
    configs = check_presets(registry, "timeseries")   # every preset: a run config and a model
    run_cli("train", "timeseries", "--steps", "2", "--out", run, plugins=["timeseries"])
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.plugins import ENTRY_POINT_GROUP, PluginManager, Registry

if TYPE_CHECKING:
    from polydiff.run_config import RunConfig

#: Modules a plugin's hook module must not import (listing plugins stays fast).
HEAVY = ("torch", "numpy", "PIL")


def plugin_registry(*entry_points: str, strict: bool = True) -> Registry:
    """The core's built-ins plus the plugins of ``entry_points`` only, discovered through their
    installed entry points (so the test sees what users get); ``strict`` turns a plugin's load
    failure into an error instead of a warning."""
    manager = PluginManager(strict=strict)
    manager.load_entrypoints(only=list(entry_points))
    missing = [name for name in entry_points if name not in {s.name for s in manager.sources()}]
    assert not missing, (
        f"entry point(s) {missing} of group '{ENTRY_POINT_GROUP}' are not installed; "
        "fix: pip install -e YOUR_PLUGIN (its pyproject.toml names them under "
        "[project.entry-points.polydiff])"
    )
    return Registry(manager)


def check_entry_point(name: str, module: str, distribution: str) -> importlib.metadata.EntryPoint:
    """The entry point ``name`` of group ``polydiff`` is installed, names ``module`` and comes
    from ``distribution``; returns it."""
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    assert len(found) == 1, f"expected one '{ENTRY_POINT_GROUP}' entry point '{name}', found {len(found)}"
    ep = found[0]
    assert ep.value == module, f"entry point '{name}' names {ep.value!r}, expected {module!r}"
    assert ep.dist is not None and ep.dist.metadata["Name"] == distribution, (
        f"entry point '{name}' comes from {ep.dist and ep.dist.metadata['Name']!r}, expected {distribution!r}"
    )
    return ep


def check_lazy_import(module: str, forbidden: Iterable[str] = HEAVY) -> None:
    """Importing ``module`` (in a fresh interpreter) imports none of ``forbidden``'s packages."""
    wanted = sorted(set(forbidden))
    code = (
        f"import sys, {module}\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({wanted!r}))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"importing {module} failed:\n{result.stderr[-2000:]}"
    imported = [m for m in result.stdout.strip().split(",") if m]
    assert not imported, (
        f"importing {module} imports {imported}: hook modules must name their code by import string "
        "('package.module:Class') and import nothing heavy at module level"
    )


def check_components(
    registry: Registry, plugin: str, build: dict[str, dict[str, Any]] | None = None
) -> dict[str, list[str]]:
    """Every component the distribution ``plugin`` registers imports (its requirements
    installed) and is callable; writers and evaluators also build with their default options,
    datasets with ``build["dataset NAME"]`` options when given. Returns ``{kind: [names]}``."""
    kinds = ("dataset", "encoder", "conditioner", "sampler", "writer", "evaluator", "pretrained")
    found: dict[str, list[str]] = {}
    for kind in kinds:
        for component in registry.components(kind):
            if component.plugin != plugin:
                continue
            found.setdefault(kind, []).append(component.name)
            if getattr(component, "missing_requirements", lambda: [])():
                continue  # an optional extra: its own test says which
            target = component.load()
            if kind == "pretrained":
                continue
            assert callable(target), f"{kind} '{component.name}': {component.target} is not callable"
            options = (build or {}).get(f"{kind} {component.name}")
            if kind in ("writer", "evaluator") or options is not None:
                registry.build(kind, component.name, **(options or {}))
    for modality in registry.modalities():
        if modality.plugin != plugin:
            continue
        found.setdefault("modality", []).append(modality.name)
        for kind, name in (
            ("dataset", modality.default_dataset),
            ("encoder", modality.default_encoder),
            ("conditioner", modality.default_conditioner),
            ("writer", modality.writer),
            ("evaluator", modality.evaluator),
        ):
            if name is not None:
                registry.component(kind, name)  # an unknown default is a clear error here
    assert found, f"no component or modality is registered by '{plugin}' (is that its distribution name?)"
    return found


def check_presets(
    registry: Registry,
    modality: str,
    presets: Sequence[str] | None = None,
    *,
    build: bool = True,
    dataset_options: dict[str, Any] | None = None,
) -> dict[str, RunConfig]:
    """Every preset of ``modality`` (or ``presets``) gives a run config whose UNet has the
    modality's rank; with ``build``, its dataset (``dataset_options`` override the preset's, e.g.
    a small ``num_samples``) builds, the model builds on it and its training loss on a batch of
    two items is finite (a trainable first stage, fitted by training, is skipped). Returns
    ``{preset: config}``."""
    import torch

    from polydiff.builder import build_dataset, build_model
    from polydiff.interfaces import default_collate
    from polydiff.run_config import RunConfig

    mod = registry.modality(modality)
    names = list(presets) if presets is not None else list(mod.presets) or ["quick"]
    configs = {}
    for preset in names:
        config = RunConfig.for_modality(modality, preset=preset, registry=registry)
        assert config.unet.dims == mod.rank, (
            f"preset '{preset}': unet.dims {config.unet.dims} != rank {mod.rank}"
        )
        if build:
            config.dataset.options.update(dataset_options or {})
            data = build_dataset(config, registry)
            model = build_model(config, registry, dataset=data).eval()
            if model.encoder.trainable and not model.encoder.is_fitted:
                configs[preset] = config  # a first stage is fitted by training, not here
                continue
            collate = getattr(data, "collate", None) or default_collate
            batch = collate([data[i] for i in range(min(2, len(data)))])
            with torch.no_grad():
                x0 = model.encoder.encode(batch["x"])
                t = torch.full((len(x0),), model.diffusion.num_timesteps // 2, dtype=torch.long)
                loss = model(batch, x0, t, torch.randn_like(x0))["loss"]
            assert torch.isfinite(loss), f"preset '{preset}': the loss of one batch is {float(loss)}"
        configs[preset] = config
    return configs


def run_cli(
    *args: str | Path, plugins: Sequence[str] = (), check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m polydiff ARGS`` in a fresh interpreter with only ``plugins`` loaded
    (strict: a plugin that fails to load fails the command); with ``check``, a non-zero exit is
    an ``AssertionError`` showing the end of stderr. Returns the completed process."""
    environment = {**os.environ, **(env or {}), "POLYDIFF_STRICT_PLUGINS": "1"}
    if plugins:
        environment["POLYDIFF_LOAD_PLUGINS"] = ",".join(plugins)
    result = subprocess.run(
        [sys.executable, "-m", "polydiff", *map(str, args)], capture_output=True, text=True, env=environment
    )
    if check:
        assert result.returncode == 0, (
            f"polydiff {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}"
        )
    return result


# ---------------------------------------------------------------------------- pytest fixtures
try:  # the fixtures need pytest; the functions above do not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def polydiff_registry() -> Callable[..., Registry]:
        """``polydiff_registry("timeseries")``: :func:`plugin_registry`, cached per entry point set."""
        cache: dict[tuple[str, ...], Registry] = {}

        def make(*entry_points: str) -> Registry:
            if entry_points not in cache:
                cache[entry_points] = plugin_registry(*entry_points)
            return cache[entry_points]

        return make

    @pytest.fixture
    def polydiff_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
        """:func:`run_cli` as a fixture."""
        return run_cli
