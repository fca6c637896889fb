"""No plugin imports another: what modalities share lives in the core (issue 16)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from polydiff.plugins import ENTRY_POINT_GROUP
from polydiff.testing import check_components, check_entry_point, check_lazy_import, plugin_registry


def _installed_packages() -> dict[str, Path]:
    """Top-level package of every installed plugin -> its source directory."""
    packages = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        top = ep.value.split(":")[0].split(".")[0]
        spec = importlib.util.find_spec(top)
        assert spec is not None and spec.submodule_search_locations, f"{top} is not a package"
        packages[top] = Path(next(iter(spec.submodule_search_locations)))
    return packages


def imported_top_levels(directory: Path) -> dict[str, set[str]]:
    """``{top-level module: {files importing it}}`` over every ``.py`` file under ``directory``."""
    found: dict[str, set[str]] = {}
    for file in sorted(directory.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ":" in node.value:
                names = [node.value.split(":")[0]]  # import strings of records, "pkg.mod:Name"
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(file.relative_to(directory)))
    return found


def test_no_installed_plugin_imports_another() -> None:
    packages = _installed_packages()
    assert {"polydiff_image", "polydiff_video", "polydiff_tts", "polydiff_timeseries"} <= set(packages)
    offences = []
    for top, directory in packages.items():
        imported = imported_top_levels(directory)
        for other in set(packages) - {top}:
            offences += [f"{top}/{file} imports {other}" for file in sorted(imported.get(other, ()))]
    assert offences == []


def test_the_scan_sees_imports_and_import_strings(tmp_path) -> None:
    (tmp_path / "a.py").write_text("import polydiff_x.y\nfrom polydiff_y import z\nT = 'polydiff_w.m:C'\n")
    found = imported_top_levels(tmp_path)
    assert {name: sorted(files) for name, files in found.items()} == {
        "polydiff_x": ["a.py"],
        "polydiff_y": ["a.py"],
        "polydiff_w": ["a.py"],
    }


def _entry_points() -> list[tuple[str, str, str]]:
    return sorted(
        (ep.name, ep.value, ep.dist.metadata["Name"])
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    )


@pytest.mark.parametrize(("name", "module", "distribution"), _entry_points())
def test_every_installed_plugin_passes_the_authors_checks(name, module, distribution) -> None:
    """The checks of ``polydiff.testing`` that plugin authors run, over the bundled plugins."""
    check_entry_point(name, module, distribution)
    check_lazy_import(module, forbidden=("torch",))
    found = check_components(plugin_registry(name), distribution)
    assert found.get("modality")
