"""Fixtures of the robustness suite: the `polydiff` command in-process on the toy registry."""

from __future__ import annotations

import pytest

import polydiff.plugins as plugins
from polydiff.cli.main import main


@pytest.fixture
def cli(toy_registry, monkeypatch):
    """``main(argv) -> exit status`` with the isolated toy registry in place of the installed plugins."""
    monkeypatch.setattr(plugins, "get_registry", lambda: toy_registry)
    return main
