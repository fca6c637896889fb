"""Plugin discovery, failure isolation and the component registry (polydiff.plugins)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from polydiff import Component, Modality, PluginError, UnknownNameError, hookimpl
from polydiff.cli import plugins_cmd
from polydiff.plugins import (
    ENV_DISABLE,
    ENV_LOAD,
    ENV_STRICT,
    PluginLoadWarning,
    PluginManager,
    Registry,
    get_registry,
)

pytestmark = pytest.mark.usefixtures("plugin_env")

BUILTIN_SAMPLERS = ["ddim", "ddpm", "dpmpp-2m", "euler", "heun"]


def discover(*only: str, strict: bool | None = None) -> Registry:
    """A registry of the core plus the entry points named ``only`` (never the global one)."""
    manager = PluginManager(strict=strict)
    manager.load_entrypoints(only=only)
    return Registry(manager)


class HookPlugin:
    """An in-memory plugin whose ``polydiff_datasets`` returns ``result`` (or raises it)."""

    def __init__(self, result: object) -> None:
        self.result = result

    @hookimpl
    def polydiff_modalities(self) -> list[Modality]:
        return [Modality("inmemory", rank=2)]

    @hookimpl
    def polydiff_datasets(self) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


# -- the core's own plugin -------------------------------------------------------------------


def test_builtin_components_are_registered_with_kind_and_distribution():
    registry = Registry.from_plugins()

    assert registry.names("sampler") == BUILTIN_SAMPLERS
    assert registry.names("conditioner") == ["none", "text"]
    assert registry.names("encoder") == ["identity", "vae"]  # vae: the core's since issue 16
    ddim = registry.component("sampler", "ddim")
    assert (ddim.kind, ddim.plugin, ddim.target) == (
        "sampler",
        "polydiff",
        "polydiff.samplers.ddim:DDIMSampler",
    )
    assert registry.modalities() == []
    assert registry.failures == []


# -- entry-point discovery -----------------------------------------------------------------


def test_entry_point_plugin_is_discovered_with_its_distribution(fake_site):
    fake_site("fake-waves", "pd_fake_waves", version="1.2.3")

    registry = discover("waves")

    assert registry.manager.distribution_of("waves") == ("fake-waves", "1.2.3")
    modality = registry.modality("wave1d")
    assert (modality.rank, modality.plugin, modality.default_dataset) == (1, "fake-waves", "fake-sines")
    dataset = registry.component("dataset", "fake-sines")
    assert (dataset.kind, dataset.plugin, dataset.modality) == ("dataset", "fake-waves", "wave1d")
    assert registry.names("sampler") == sorted([*BUILTIN_SAMPLERS, "fake-sampler"])
    assert registry.manager.hook_names("waves") == [
        "polydiff_datasets",
        "polydiff_modalities",
        "polydiff_samplers",
        "polydiff_writers",
    ]


def test_plugin_that_fails_to_import_is_reported_and_the_others_still_load(fake_site):
    fake_site("fake-waves", "pd_fake_waves")
    fake_site("fake-broken", "pd_fake_broken", version="2.3")

    with pytest.warns(PluginLoadWarning, match=r"plugin 'broken' \(fake-broken 2\.3\)") as caught:
        registry = discover("waves", "broken")

    assert len([w for w in caught if issubclass(w.category, PluginLoadWarning)]) == 1
    [failure] = registry.failures
    assert (failure.name, failure.distribution, failure.version) == ("broken", "fake-broken", "2.3")
    assert "ModuleNotFoundError" in failure.error and "polydiff_fake_missing_dependency" in failure.error
    assert f"{ENV_DISABLE}=broken" in failure.fix
    assert registry.modality("wave1d").plugin == "fake-waves"
    assert registry.names("sampler") == sorted([*BUILTIN_SAMPLERS, "fake-sampler"])


def test_strict_mode_makes_an_import_failure_fatal(fake_site, monkeypatch):
    fake_site("fake-broken", "pd_fake_broken", version="2.3")
    monkeypatch.setenv(ENV_STRICT, "1")

    with pytest.raises(PluginError, match=r"fake-broken 2\.3.*polydiff_fake_missing_dependency") as info:
        discover("broken")
    assert ENV_STRICT in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)


def test_duplicate_component_name_skips_the_later_plugin_naming_both_distributions(fake_site):
    """Changed by issue 16: a clash used to make every command fail (PluginError); now the later
    plugin is skipped with one report naming both distributions, and the first keeps working."""
    fake_site("fake-waves", "pd_fake_waves", version="1.0")
    fake_site("fake-clash", "pd_fake_clash", version="0.4")

    with pytest.warns(PluginLoadWarning) as caught:
        registry = discover("waves", "clash")

    # Loaded in (distribution, name) order: fake-clash first, so fake-waves is the later one.
    assert len([w for w in caught if issubclass(w.category, PluginLoadWarning)]) == 1
    [failure] = registry.failures
    assert (failure.name, failure.distribution, failure.hook) == ("waves", "fake-waves", "polydiff_datasets")
    message = str(failure)
    assert "dataset 'fake-sines'" in message
    assert "fake-waves 1.0" in message and "fake-clash 0.4" in message
    assert f"{ENV_DISABLE}=waves" in message
    assert registry.component("dataset", "fake-sines").plugin == "fake-clash"
    assert registry.manager.plugin("waves") is None
    assert registry.names("sampler") == BUILTIN_SAMPLERS  # none of the skipped plugin's components


def test_a_clash_is_fatal_in_strict_mode(fake_site, monkeypatch):
    fake_site("fake-waves", "pd_fake_waves", version="1.0")
    fake_site("fake-clash", "pd_fake_clash", version="0.4")
    monkeypatch.setenv(ENV_STRICT, "1")

    with pytest.raises(
        PluginError, match=r"dataset 'fake-sines' is provided by two plugins.*fake-clash 0\.4"
    ):
        discover("waves", "clash")


def test_clash_with_a_builtin_name_suggests_disabling_the_plugin_not_the_core():
    """Changed by issue 16: the impostor is skipped with a report (it used to raise PluginError)."""

    class Impostor:
        @hookimpl
        def polydiff_samplers(self) -> list[Component]:
            return [Component("ddim", "impostor:DDIM")]

        @hookimpl
        def polydiff_datasets(self) -> list[Component]:
            return [Component("impostor-data", "impostor:Data")]

    with pytest.warns(PluginLoadWarning, match=r"sampler 'ddim'.*polydiff 0\.1\.0.*impostor"):
        registry = Registry.from_plugins(("impostor", Impostor()))
    [failure] = registry.failures
    assert f"{ENV_DISABLE}=impostor" in failure.fix and "the core keeps the name" in failure.error
    assert registry.component("sampler", "ddim").plugin == "polydiff"
    assert "impostor-data" not in registry.names("dataset")  # a plugin is indexed whole or not at all


def test_two_distributions_with_the_same_entry_point_name(fake_site):
    fake_site("fake-waves", "pd_fake_waves", name="waves")
    fake_site("fake-clash", "pd_fake_clash", name="waves")

    with pytest.warns(PluginLoadWarning, match="already used by fake-clash 1.0"):
        registry = discover("waves")

    # Loaded in (distribution, name) order: fake-clash first, fake-waves reported.
    [failure] = registry.failures
    assert failure.distribution == "fake-waves"
    assert registry.manager.distribution_of("waves") == ("fake-clash", "1.0")


# -- misspelt and misbehaving hooks -----------------------------------------------------------


def test_misspelt_hook_is_reported_and_its_plugin_dropped(fake_site):
    fake_site("fake-waves", "pd_fake_waves")
    fake_site("fake-misspelt", "pd_fake_misspelt", version="0.1")

    with pytest.warns(PluginLoadWarning, match="polydiff_dataset"):
        registry = discover("waves", "misspelt")

    [failure] = registry.failures
    assert (failure.name, failure.distribution, failure.hook) == (
        "misspelt",
        "fake-misspelt",
        "polydiff_dataset",
    )
    assert "did you mean 'polydiff_datasets'" in failure.error
    assert "misspelt-writer" not in registry.names("writer")  # the whole plugin is skipped
    assert registry.names("writer") == ["fake-writer"]
    assert registry.manager.plugin("misspelt") is None


def test_misspelt_hook_is_fatal_in_strict_mode(fake_site):
    fake_site("fake-misspelt", "pd_fake_misspelt", version="0.1")

    with pytest.raises(PluginError, match=r"fake-misspelt 0\.1.*polydiff_dataset"):
        discover("misspelt", strict=True)


def test_optional_unknown_hook_is_allowed():
    class Optional:
        @hookimpl(optionalhook=True)
        def polydiff_vocoders(self) -> list[Component]:
            return []

    registry = Registry.from_plugins(("optional", Optional()))
    assert registry.failures == []
    assert registry.manager.plugin("optional") is not None


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (RuntimeError("disk full"), "raised RuntimeError: disk full"),
        ({"name": "x"}, "returned dict, expected a list of Component"),
        ([Modality("oops", rank=1)], "item 0 is Modality"),
        ([Component("x", "not an import string")], "is not an import string"),
        ([Component("", "pkg.mod:Attr")], "name must be a non-empty string"),
    ],
)
def test_hook_that_raises_or_returns_the_wrong_thing_is_reported(result, expected):
    with pytest.warns(PluginLoadWarning, match="polydiff_datasets"):
        registry = Registry.from_plugins(("bad", HookPlugin(result)))

    [failure] = registry.failures
    assert (failure.name, failure.hook) == ("bad", "polydiff_datasets")
    assert expected in failure.error
    with pytest.raises(UnknownNameError):  # its modality is skipped along with the rest
        registry.modality("inmemory")
    assert registry.names("sampler") == BUILTIN_SAMPLERS


def test_hook_that_returns_none_or_a_tuple_is_accepted():
    assert Registry.from_plugins(("none", HookPlugin(None))).names("dataset") == []
    registry = Registry.from_plugins(("tuple", HookPlugin((Component("t", "pkg.mod:T"),))))
    assert registry.component("dataset", "t").plugin == "tuple"


def test_modality_with_an_unsupported_rank_is_reported():
    class FourD:
        @hookimpl
        def polydiff_modalities(self) -> list[Modality]:
            return [Modality("hyper", rank=4)]

    with pytest.warns(PluginLoadWarning, match="rank must be 1, 2 or 3"):
        registry = Registry.from_plugins(("fourd", FourD()))
    assert registry.modalities() == []


def test_hookimpl_with_an_argument_the_spec_lacks_is_reported():
    class Wrong:
        @hookimpl
        def polydiff_datasets(self, config):
            return []

    with pytest.warns(PluginLoadWarning, match="config"):
        registry = Registry.from_plugins(("wrong", Wrong()))
    assert registry.failures[0].name == "wrong"
    assert registry.manager.plugin("wrong") is None


# -- environment variables ------------------------------------------------------------------


def test_disable_skips_plugins_by_entry_point_or_distribution_name(fake_site, monkeypatch):
    fake_site("fake-waves", "pd_fake_waves")
    fake_site("fake-broken", "pd_fake_broken")

    monkeypatch.setenv(ENV_DISABLE, "broken, waves")
    registry = discover("waves", "broken")
    assert registry.failures == [] and registry.modalities() == []
    skipped = sorted(source.name for source, reason in registry.manager.disabled if ENV_DISABLE in reason)
    assert skipped == ["broken", "waves"]

    monkeypatch.setenv(ENV_DISABLE, "Fake_Broken")  # distribution name, normalised
    registry = discover("waves", "broken")
    assert registry.failures == []
    assert [m.name for m in registry.modalities()] == ["wave1d"]


def test_load_only_listed_plugins_and_always_the_core(fake_site, monkeypatch):
    fake_site("fake-waves", "pd_fake_waves")
    fake_site("fake-broken", "pd_fake_broken")

    monkeypatch.setenv(ENV_LOAD, "waves")
    manager = PluginManager()
    manager.load_entrypoints()
    assert [source.name for source in manager.sources()] == ["polydiff", "waves"]
    assert manager.failures == []

    monkeypatch.setenv(ENV_LOAD, "")
    manager = PluginManager()
    assert manager.load_entrypoints() == 0
    assert [source.name for source in manager.sources()] == ["polydiff"]
    assert "broken" in {source.name for source, _ in manager.disabled}


def test_global_registry_is_cached_and_honours_the_environment(fake_site, monkeypatch):
    fake_site("fake-waves", "pd_fake_waves")
    monkeypatch.setenv(ENV_LOAD, "waves")

    registry = get_registry()
    assert get_registry() is registry
    assert [m.name for m in registry.modalities()] == ["wave1d"]


# -- lookups --------------------------------------------------------------------------------


def test_unknown_name_lists_known_names_and_suggests_the_closest():
    registry = Registry.from_plugins()

    with pytest.raises(UnknownNameError) as info:
        registry.component("sampler", "dim")
    message = str(info.value)
    assert "unknown sampler 'dim'" in message and "Did you mean 'ddim'?" in message
    assert "ddpm, dpmpp-2m, euler, heun" in message
    assert "Installed plugins: polydiff 0.1.0" in message and "`polydiff plugins`" in message
    assert isinstance(info.value, KeyError)

    with pytest.raises(UnknownNameError, match="Did you mean 'sampler'"):
        registry.names("samplers")


def test_unknown_name_hint_mentions_plugins_that_failed(fake_site):
    fake_site("fake-broken", "pd_fake_broken", version="2.3")
    with pytest.warns(PluginLoadWarning):
        registry = discover("broken")

    with pytest.raises(UnknownNameError, match=r"failed to load: broken \(fake-broken 2\.3\)"):
        registry.modality("wave1d")


def test_names_keep_components_of_the_modality_and_of_none(fake_site):
    fake_site("fake-waves", "pd_fake_waves")
    registry = discover("waves")
    other = Component("img", "pkg.mod:Img", modality="image")
    registry._components["writer"]["img"] = other  # a writer of another modality

    assert registry.names("writer") == ["fake-writer", "img"]
    assert registry.names("writer", modality="wave1d") == ["fake-writer"]
    assert registry.names("sampler", modality="wave1d") == sorted([*BUILTIN_SAMPLERS, "fake-sampler"])


def test_build_calls_the_target_with_default_options_overridden_by_kwargs(fake_site):
    fake_site("fake-waves", "pd_fake_waves")
    registry = discover("waves")

    dataset = registry.build("dataset", "fake-sines", split="eval", seed=3)

    assert type(dataset).__name__ == "FakeDataset"
    assert dataset.kwargs == {"length": 8, "split": "eval", "seed": 3}


def test_plugins_info_is_json_ready_and_covers_ok_failed_and_disabled(fake_site, monkeypatch):
    fake_site("fake-waves", "pd_fake_waves", version="1.0")
    fake_site("fake-broken", "pd_fake_broken", version="2.3")
    fake_site("fake-clash", "pd_fake_clash")
    monkeypatch.setenv(ENV_DISABLE, "clash")
    with pytest.warns(PluginLoadWarning):
        registry = discover("waves", "broken", "clash")

    info = {entry["name"]: entry for entry in json.loads(json.dumps(registry.plugins_info()))}

    assert info["polydiff"]["status"] == "ok"
    assert info["polydiff"]["components"]["sampler"][1]["name"] == "ddim"
    waves = info["waves"]
    assert (waves["distribution"], waves["version"], waves["module"]) == (
        "fake-waves",
        "1.0",
        "pd_fake_waves",
    )
    assert waves["modalities"] == [
        {"name": "wave1d", "rank": 1, "description": "", "presets": ["quick", "full"]}
    ]
    assert [c["name"] for c in waves["components"]["dataset"]] == ["fake-sines"]
    assert "polydiff_modalities" in waves["hooks"]
    assert (
        info["broken"]["status"] == "failed" and "polydiff_fake_missing_dependency" in info["broken"]["error"]
    )
    assert info["clash"]["status"] == "disabled" and ENV_DISABLE in info["clash"]["reason"]


def test_component_with_a_missing_requirement_shows_the_extra_to_install():
    class NeedsExtra:
        @hookimpl
        def polydiff_writers(self) -> list[Component]:
            return [Component("wav", "pkg.mod:Wav", requires=("polydiff_no_such_module",), extra="x[audio]")]

    registry = Registry.from_plugins(("extra", NeedsExtra()))
    [entry] = [e for e in registry.plugins_info() if e["name"] == "extra"]
    assert entry["components"]["writer"][0]["missing"] == ["polydiff_no_such_module"]
    lines = []
    plugins_cmd.print_plugins(registry.plugins_info(), _Lines(lines))
    assert "wav (needs polydiff_no_such_module: pip install 'x[audio]')" in "".join(lines)


# -- the `polydiff plugins` command ---------------------------------------------------------


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _run_plugins_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="polydiff")
    plugins_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["plugins", *argv])
    return args.func(args)


def test_plugins_command_lists_plugins_and_failures_with_the_fix(fake_site, monkeypatch, capsys):
    fake_site("fake-waves", "pd_fake_waves", version="1.0")
    fake_site("fake-broken", "pd_fake_broken", version="2.3")
    monkeypatch.setenv(ENV_LOAD, "waves,broken")

    status = _run_plugins_command()

    out = capsys.readouterr().out
    assert status == 1  # a plugin failed
    assert "fake-waves 1.0  (plugin 'waves', pd_fake_waves)" in out
    assert "modality      wave1d (rank 1)" in out
    assert "presets       quick, full" in out
    assert "datasets      fake-sines [wave1d]" in out
    assert "samplers      ddpm, ddim, dpmpp-2m, euler, heun" in out
    assert "Failed to load (1):" in out and "broken  fake-broken 2.3" in out
    assert f"fix:   reinstall it (pip install -U fake-broken), or skip it with {ENV_DISABLE}=broken" in out


def test_plugins_command_json(fake_site, monkeypatch, capsys):
    fake_site("fake-waves", "pd_fake_waves", version="1.0")
    monkeypatch.setenv(ENV_LOAD, "waves")

    assert _run_plugins_command("--json") == 0

    info = json.loads(capsys.readouterr().out)
    assert [(e["name"], e["distribution"], e["status"]) for e in info if e["status"] == "ok"] == [
        ("polydiff", "polydiff", "ok"),
        ("waves", "fake-waves", "ok"),
    ]


def test_plugins_command_reports_a_clash_as_an_error(fake_site, monkeypatch, capsys):
    """Changed by issue 16: the clash is listed as the later plugin's failure (exit 1), and the
    other plugins are listed as usual (before: only the error, on stderr)."""
    fake_site("fake-waves", "pd_fake_waves")
    fake_site("fake-clash", "pd_fake_clash")
    monkeypatch.setenv(ENV_LOAD, "waves,clash")

    assert _run_plugins_command() == 1
    out = capsys.readouterr().out
    assert "dataset 'fake-sines' is provided by two plugins" in out
    assert "Failed to load (1):" in out and "waves  fake-waves 1.0 [polydiff_datasets]" in out
    assert "fake-clash 1.0  (plugin 'clash', pd_fake_clash)" in out and "fake-sines [wave1d]" in out


# -- import cost and the really installed template -----------------------------------------


def test_listing_plugins_imports_no_torch():
    """`polydiff plugins` with every installed plugin (the template included) never imports torch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYDIFF_")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "polydiff", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some installed plugin failed to load
    assert "polydiff" in {entry["name"] for entry in json.loads(result.stdout)}
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "polydiff.plugins" in imported
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}


def test_the_pip_installed_template_plugin_is_discovered():
    try:
        dist = importlib.metadata.distribution("polydiff-timeseries")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            "polydiff-timeseries is not installed: pip install --no-deps -e examples/third_party_plugin"
        )
    registry = discover("timeseries")

    assert registry.manager.distribution_of("timeseries") == ("polydiff-timeseries", dist.version)
    modality = registry.modality("timeseries")
    assert (modality.rank, modality.plugin, modality.default_dataset) == (1, "polydiff-timeseries", "sines")
    assert registry.component("dataset", modality.default_dataset).plugin == "polydiff-timeseries"
    assert registry.component("writer", modality.writer).modality == "timeseries"
    assert registry.component("evaluator", modality.evaluator).modality == "timeseries"
    assert registry.component("conditioner", modality.default_conditioner).plugin == "polydiff"
    assert registry.failures == []


# -- component kinds declared by plugins -----------------------------------------------------


class _KindPlugin:
    """Declares the kind ``widget`` (hook ``polydiff_test_widgets``) and contributes one."""

    @hookimpl
    def polydiff_addhooks(self, pluginmanager):
        import pluggy

        class Specs:
            @pluggy.HookspecMarker("polydiff")
            def polydiff_test_widgets(self):
                """Return widget components."""

        pluginmanager.add_hookspecs(Specs)

    @hookimpl
    def polydiff_component_kinds(self):
        from polydiff import ComponentKind

        return [ComponentKind("widget", hook="polydiff_test_widgets", description="a test kind")]

    @hookimpl
    def polydiff_test_widgets(self):
        return [Component("cog", "json:dumps")]


class _OtherWidgets:
    @hookimpl
    def polydiff_test_widgets(self):
        return [Component("gear", "json:loads")]


def test_a_plugin_declared_kind_is_indexed_built_and_reported_like_a_builtin_one():
    registry = Registry.from_plugins(("widgets", _KindPlugin()), ("more", _OtherWidgets()))
    assert registry.kinds()[-1] == "widget" and registry.names("widget") == ["cog", "gear"]
    assert registry.component("widget", "gear").plugin == "more"
    assert registry.build("widget", "cog", obj=[1]) == "[1]"
    with pytest.raises(UnknownNameError, match=r"unknown widget 'cgo'\. Did you mean 'cog'\?"):
        registry.component("widget", "cgo")
    info = {entry["name"]: entry for entry in json.loads(json.dumps(registry.plugins_info()))}
    assert info["widgets"]["kinds"] == [
        {"name": "widget", "hook": "polydiff_test_widgets", "description": "a test kind"}
    ]
    assert [c["name"] for c in info["more"]["components"]["widget"]] == ["gear"]


def test_a_kind_declared_twice_skips_the_later_plugin():
    class Again:  # the hook's spec is the first plugin's
        @hookimpl
        def polydiff_component_kinds(self):
            from polydiff import ComponentKind

            return [ComponentKind("widget", hook="polydiff_test_widgets")]

        @hookimpl
        def polydiff_test_widgets(self):
            return [Component("other", "json:dumps")]

    class SamplerKind:
        @hookimpl
        def polydiff_component_kinds(self):
            from polydiff import ComponentKind

            return [ComponentKind("sampler", hook="polydiff_samplers")]

    with pytest.warns(PluginLoadWarning) as caught:
        registry = Registry.from_plugins(
            ("widgets", _KindPlugin()), ("again", Again()), ("samp", SamplerKind())
        )
    assert len([w for w in caught if issubclass(w.category, PluginLoadWarning)]) == 2
    failures = {f.name: f for f in registry.failures}
    assert "component kind 'widget' is declared by plugin 'widgets'" in failures["again"].error
    assert "component kind 'sampler' is declared by the core already" in failures["samp"].error
    assert registry.names("widget") == ["cog"]


def test_one_plugin_naming_a_component_twice_is_skipped():
    class Twice:
        @hookimpl
        def polydiff_datasets(self) -> list[Component]:
            return [Component("dup", "json:dumps"), Component("dup", "json:loads")]

    with pytest.warns(PluginLoadWarning, match=r"returns two of dataset 'dup'"):
        registry = Registry.from_plugins(("twice", Twice()))
    assert "dup" not in registry.names("dataset")
