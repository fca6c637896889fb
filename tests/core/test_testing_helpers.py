"""``polydiff.testing``: the checks plugin authors reuse fail where they should, and pass on a good plugin."""

from __future__ import annotations

import pytest

from polydiff.testing import (
    check_components,
    check_entry_point,
    check_lazy_import,
    check_presets,
    plugin_registry,
    run_cli,
)


def test_lazy_import_names_what_a_module_pulls_in() -> None:
    check_lazy_import("polydiff.records")
    with pytest.raises(AssertionError, match=r"importing polydiff.pipeline imports \['torch'\]"):
        check_lazy_import("polydiff.pipeline", forbidden=("torch",))


def test_entry_point_and_registry_checks() -> None:
    check_entry_point("timeseries", "polydiff_timeseries.plugin", "polydiff-timeseries")
    with pytest.raises(AssertionError, match="expected 'elsewhere.plugin'"):
        check_entry_point("timeseries", "elsewhere.plugin", "polydiff-timeseries")
    with pytest.raises(AssertionError, match=r"\['no-such-plugin'\] .* are not installed"):
        plugin_registry("no-such-plugin")


def test_components_and_presets_of_an_installed_plugin() -> None:
    registry = plugin_registry("timeseries")
    found = check_components(registry, "polydiff-timeseries")
    assert found["writer"] == ["timeseries-png"] and found["evaluator"] == ["timeseries-stats"]
    with pytest.raises(AssertionError, match="no component or modality is registered by 'nobody'"):
        check_components(registry, "nobody")
    configs = check_presets(registry, "timeseries", ["quick"], dataset_options={"num_samples": 4})
    assert list(configs) == ["quick"] and configs["quick"].data_shape == [1, 64]


def test_presets_of_the_toy_modality_build(toy_registry) -> None:
    assert set(check_presets(toy_registry, "toy")) == set(toy_registry.modality("toy").presets or ["quick"])


def test_run_cli_reports_the_exit_and_stderr() -> None:
    assert "timeseries" in run_cli("plugins", plugins=["timeseries"]).stdout
    with pytest.raises(
        AssertionError, match=r"polydiff train no-such-modality exited 2:\n.*no-such-modality"
    ):
        run_cli("train", "no-such-modality", plugins=["timeseries"])


def test_the_fixtures_work_as_a_pytest_plugin(tmp_path) -> None:
    import subprocess
    import sys

    (tmp_path / "conftest.py").write_text('pytest_plugins = ["polydiff.testing"]\n')
    (tmp_path / "test_mine.py").write_text(
        "def test_it(polydiff_registry, polydiff_cli):\n"
        "    registry = polydiff_registry('timeseries')\n"
        "    assert registry is polydiff_registry('timeseries')\n"
        "    assert registry.modality('timeseries').rank == 1\n"
        "    assert polydiff_cli('plugins', plugins=['timeseries']).returncode == 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 passed" in result.stdout
