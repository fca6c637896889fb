"""Fixtures shared by the core's tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so subprocesses and tests can `import toy_plugin`


@pytest.fixture
def toy_registry():
    """An isolated registry with the core's built-ins and the toy modality (no entry points)."""
    import toy_plugin

    from polydiff.plugins import Registry

    return Registry.from_plugins(toy_plugin)


@pytest.fixture
def toy_config(toy_registry):
    """A RunConfig of the toy modality's quick preset."""
    from polydiff.run_config import RunConfig

    return RunConfig.for_modality("toy", registry=toy_registry)
