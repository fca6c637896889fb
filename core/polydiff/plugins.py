"""Plugin discovery and the registry of named components.

Two layers:

* :class:`PluginManager` wraps a ``pluggy.PluginManager("polydiff")``. It registers the
  core's own plugin (:mod:`polydiff.builtin`) first, then the modules named by entry points
  of group ``polydiff``. Every ``ep.load()`` is guarded: a plugin that fails to import is
  recorded as a :class:`PluginFailure` and warned about once, and the others still load.
* :class:`Registry` calls the component hooks of every loaded plugin, checks what they
  return, and answers ``registry.component("dataset", "sines")``.

Environment variables (read when a manager is built):

``POLYDIFF_STRICT_PLUGINS=1``
    Any plugin failure raises :class:`~polydiff.errors.PluginError` instead of a warning.
``POLYDIFF_DISABLE_PLUGINS=name1,name2``
    Skip these entry points (by entry-point name or distribution name).
``POLYDIFF_LOAD_PLUGINS=name1,name2``
    Load only these entry points (the core's own plugin always loads); set but empty = none.

Nothing here imports torch: listing plugins stays fast however many are installed.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from polydiff import hookspecs
from polydiff.errors import PluginError, unknown_name
from polydiff.records import COMPONENT_KINDS, Component, Modality, Pretrained

#: Entry-point group that third-party plugins register under.
ENTRY_POINT_GROUP = "polydiff"
#: Name (and distribution) of the core's own plugin.
BUILTIN_NAME = "polydiff"

ENV_STRICT = "POLYDIFF_STRICT_PLUGINS"
ENV_DISABLE = "POLYDIFF_DISABLE_PLUGINS"
ENV_LOAD = "POLYDIFF_LOAD_PLUGINS"

#: Hook that returns the components of each kind: ``"dataset" -> "polydiff_datasets"``.
KIND_HOOKS: dict[str, str] = {
    kind: "polydiff_pretrained" if kind == "pretrained" else f"polydiff_{kind}s" for kind in COMPONENT_KINDS
}
MODALITY_HOOK = "polydiff_modalities"

_IMPORT_STRING = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")


class PluginLoadWarning(UserWarning):
    """A plugin failed to load or contributes something invalid; the others still work."""


@dataclass(frozen=True)
class PluginSource:
    """Where a registered plugin comes from.

    Attributes:
        name: Plugin name: the entry-point name (``"timeseries"``), ``"polydiff"`` for the core.
        distribution: The pip distribution that ships it (``"polydiff-timeseries"``).
        version: That distribution's version, or ``""`` when unknown.
        module: Import path of the plugin object (``"polydiff_timeseries.plugin"``).
    """

    name: str
    distribution: str
    version: str
    module: str = ""

    def label(self) -> str:
        """``"polydiff-timeseries 0.1.0"``."""
        return f"{self.distribution} {self.version}".strip()


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why.

    Attributes:
        name: Plugin (entry-point) name.
        distribution: Distribution that ships it.
        version: Its version.
        error: What went wrong (``"ImportError: No module named 'scipy'"``).
        hook: The hook at fault, when the plugin loaded but a hook did not work.
        fix: What the user can do about it.
    """

    name: str
    distribution: str
    version: str
    error: str
    hook: str | None = None
    fix: str = ""

    def __str__(self) -> str:
        where = f"plugin '{self.name}' ({f'{self.distribution} {self.version}'.strip()})"
        if self.hook:
            where += f", hook {self.hook}"
        message = f"{where}: {self.error}"
        return f"{message}. Fix: {self.fix}" if self.fix else message


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_names(name: str) -> set[str] | None:
    """Names listed in a comma-separated environment variable; None when it is unset."""
    value = os.environ.get(name)
    if value is None:
        return None
    return {_normalize(part) for part in value.split(",") if part.strip()}


def _normalize(name: str) -> str:
    """Distribution-style normalisation (PEP 503): ``Polydiff_TimeSeries`` -> ``polydiff-timeseries``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _disable_fix(name: str) -> str:
    return f"skip it with {ENV_DISABLE}={name}"


class PluginManager:
    """Loads polydiff plugins into a ``pluggy.PluginManager`` and remembers where each came from.

    Typical use (what :func:`get_plugin_manager` does)::

        manager = PluginManager()        # hookspecs + the core's own plugin
        manager.load_entrypoints()       # third-party plugins, each load guarded
        manager.check_pending()          # misspelt hooks -> reported, plugin dropped

    Args:
        strict: Raise :class:`PluginError` on the first plugin failure instead of warning.
            Default: ``POLYDIFF_STRICT_PLUGINS``.
        builtin: Register :mod:`polydiff.builtin` (the core's encoders, conditioners, samplers).
    """

    def __init__(self, *, strict: bool | None = None, builtin: bool = True) -> None:
        self.strict = _env_flag(ENV_STRICT) if strict is None else strict
        self.pluggy = pluggy.PluginManager("polydiff")
        self.pluggy.add_hookspecs(hookspecs)
        self.pluggy.hook.polydiff_addhooks.call_historic(kwargs={"pluginmanager": self.pluggy})
        self.failures: list[PluginFailure] = []
        self.disabled: list[tuple[PluginSource, str]] = []
        self._sources: dict[str, PluginSource] = {}
        if builtin:
            from polydiff import __version__
            from polydiff import builtin as builtin_module

            # The core cannot work without its own plugin: never downgrade this to a warning.
            self.pluggy.register(builtin_module, BUILTIN_NAME)
            self._sources[BUILTIN_NAME] = PluginSource(
                BUILTIN_NAME, BUILTIN_NAME, __version__, builtin_module.__name__
            )

    @property
    def hook(self) -> Any:
        """pluggy's hook relay: ``manager.hook.polydiff_datasets()``."""
        return self.pluggy.hook

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str = "",
        module: str | None = None,
    ) -> str | None:
        """Register a plugin object (usually a module); return its name, or None if it failed.

        A plugin whose hooks do not match their specs (unknown arguments), whose
        ``polydiff_addhooks`` raises, or whose name is taken is reported as a failure.
        """
        name = name or self.pluggy.get_canonical_name(plugin)
        module = module or getattr(plugin, "__name__", type(plugin).__module__)
        source = PluginSource(name, distribution or name, version, module)
        if name in self._sources:
            self._report_name_taken(source)
            return None
        try:
            self.pluggy.register(plugin, name)
        except Exception as exc:
            if self.pluggy.is_registered(plugin):
                self.pluggy.unregister(plugin)
            self.report(
                PluginFailure(
                    name,
                    source.distribution,
                    version,
                    _describe(exc),
                    fix=f"check the hook signatures against polydiff.hookspecs, or {_disable_fix(name)}",
                ),
                exc,
            )
            return None
        self._sources[name] = source
        return name

    def _report_name_taken(self, source: PluginSource) -> None:
        taken = self._sources[source.name]
        self.report(
            PluginFailure(
                source.name,
                source.distribution,
                source.version,
                f"the plugin name '{source.name}' is already used by {taken.label()}",
                fix=f"rename one entry point, uninstall one of them, or {_disable_fix(source.name)}",
            )
        )

    def unregister(self, name: str) -> None:
        """Remove a registered plugin (its failure, if any, stays in :attr:`failures`)."""
        plugin = self.pluggy.get_plugin(name)
        if plugin is not None:
            self.pluggy.unregister(plugin)
        self._sources.pop(name, None)

    def load_entrypoints(
        self,
        group: str = ENTRY_POINT_GROUP,
        *,
        disable: Iterable[str] | None = None,
        only: Iterable[str] | None = None,
    ) -> int:
        """Load and register the plugins of an entry-point group; return how many loaded.

        Args:
            group: Entry-point group (``[project.entry-points.polydiff]`` in pyproject.toml).
            disable: Entry-point or distribution names to skip. Default: ``POLYDIFF_DISABLE_PLUGINS``.
            only: If not None, load only these. Default: ``POLYDIFF_LOAD_PLUGINS`` (None if unset).
        """
        skip = {_normalize(n) for n in disable} if disable is not None else (_env_names(ENV_DISABLE) or set())
        keep = {_normalize(n) for n in only} if only is not None else _env_names(ENV_LOAD)
        entry_points = importlib.metadata.entry_points(group=group)
        loaded = 0
        for ep in sorted(entry_points, key=lambda ep: (_ep_distribution(ep)[0], ep.name)):
            distribution, version = _ep_distribution(ep)
            source = PluginSource(ep.name, distribution, version, ep.module)
            names = {_normalize(ep.name), _normalize(distribution)}
            if names & skip:
                self.disabled.append((source, f"listed in {ENV_DISABLE}"))
                continue
            if keep is not None and not names & keep:
                self.disabled.append((source, f"not listed in {ENV_LOAD}"))
                continue
            if ep.name in self._sources:
                self._report_name_taken(source)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.report(
                    PluginFailure(
                        ep.name,
                        distribution,
                        version,
                        f"cannot import {ep.value}: {_describe(exc)}",
                        fix=f"reinstall it (pip install -U {distribution}), or {_disable_fix(ep.name)}",
                    ),
                    exc,
                )
                continue
            if self.register(plugin, ep.name, distribution=distribution, version=version, module=ep.module):
                loaded += 1
        return loaded

    def check_pending(self) -> None:
        """Report and drop plugins that implement hooks no spec defines (misspelt hooks).

        Without this, pluggy silently ignores ``polydiff_dataset`` (missing ``s``).
        """
        spec_names = [name for name in vars(self.pluggy.hook) if not name.startswith("_")]
        known = [name for name in spec_names if getattr(self.pluggy.hook, name).has_spec()]
        unknown: dict[str, list[str]] = {}
        for hook_name in spec_names:
            caller = getattr(self.pluggy.hook, hook_name)
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    unknown.setdefault(impl.plugin_name, []).append(hook_name)
        for plugin_name, hook_names in unknown.items():
            source = self._sources.get(plugin_name) or PluginSource(plugin_name, plugin_name, "")
            problems = []
            for hook_name in hook_names:
                close = difflib.get_close_matches(hook_name, known, n=1)
                problems.append(f"'{hook_name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            self.unregister(plugin_name)
            self.report(
                PluginFailure(
                    plugin_name,
                    source.distribution,
                    source.version,
                    f"unknown hook {', '.join(problems)} in {source.module or plugin_name}",
                    hook=hook_names[0],
                    fix="rename it to a hook of polydiff.hookspecs (or mark it @hookimpl(optionalhook=True))",
                )
            )
        try:
            self.pluggy.check_pending()
        except pluggy.PluginValidationError as exc:  # pragma: no cover - the loop above drops these
            raise PluginError(f"plugin {exc.plugin!r}: {exc}") from exc

    def report(self, failure: PluginFailure, exc: BaseException | None = None) -> None:
        """Record a failure and warn once; raise :class:`PluginError` instead in strict mode."""
        if self.strict:
            raise PluginError(f"{failure} ({ENV_STRICT}=1 makes plugin failures fatal)") from exc
        self.failures.append(failure)
        # Attributed to no source line: the location inside polydiff would only add noise.
        warnings.warn_explicit(
            f"polydiff {failure}", PluginLoadWarning, filename="polydiff-plugins", lineno=0, module=__name__
        )

    # -- queries --------------------------------------------------------------------------

    def sources(self) -> list[PluginSource]:
        """The registered plugins, in registration order (the core first)."""
        return list(self._sources.values())

    def source(self, name: str) -> PluginSource:
        """Where the plugin registered as ``name`` comes from."""
        try:
            return self._sources[name]
        except KeyError:
            raise unknown_name("plugin", name, self._sources) from None

    def distribution_of(self, name: str) -> tuple[str, str]:
        """``(distribution, version)`` of a registered plugin."""
        source = self.source(name)
        return source.distribution, source.version

    def plugin(self, name: str) -> object | None:
        """The registered plugin object (module) called ``name``, or None."""
        return self.pluggy.get_plugin(name)

    def hook_names(self, name: str) -> list[str]:
        """Names of the hooks the plugin ``name`` implements, sorted."""
        plugin = self.pluggy.get_plugin(name)
        callers = self.pluggy.get_hookcallers(plugin) if plugin is not None else None
        return sorted(caller.name for caller in callers or [])

    def hookimpl(self, name: str, hook_name: str) -> Any | None:
        """The ``HookImpl`` of ``hook_name`` in plugin ``name``, or None if it does not implement it."""
        caller = getattr(self.pluggy.hook, hook_name, None)
        if caller is None:
            return None
        return next((impl for impl in caller.get_hookimpls() if impl.plugin_name == name), None)


def _ep_distribution(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    """``(distribution name, version)`` that declares an entry point."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown-distribution", ""
    return dist.metadata["Name"] or "unknown-distribution", dist.version or ""


class Registry:
    """Named modalities and components of every loaded plugin.

    Built from a :class:`PluginManager`: each plugin's component hooks are called and what
    they return is checked; a plugin whose hook raises or returns anything but a list of the
    right records is reported in :attr:`failures` and skipped as a whole. Two plugins giving
    the same name to components of one kind is an error naming both distributions.
    """

    def __init__(self, manager: PluginManager) -> None:
        manager.check_pending()
        self.manager = manager
        self._modalities: dict[str, Modality] = {}
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in COMPONENT_KINDS}
        self._owners: dict[tuple[str, str], PluginSource] = {}
        self._contributed: dict[str, tuple[list[Modality], dict[str, list[Component]]]] = {}
        for source in manager.sources():
            contribution = self._collect(source)
            if contribution is not None:
                self._contributed[source.name] = contribution
                self._index(source, *contribution)

    @classmethod
    def from_plugins(cls, *plugins: object, discover: bool = False, strict: bool | None = None) -> Registry:
        """An isolated registry: the core's plugin, then ``plugins`` (modules or objects).

        Each plugin is registered under its module name; pass a ``(name, plugin)`` tuple to
        choose the name. With ``discover=True``, entry points are loaded too. For tests.
        """
        manager = PluginManager(strict=strict)
        for plugin in plugins:
            if isinstance(plugin, tuple):
                name, obj = plugin
                manager.register(obj, name)
            else:
                manager.register(plugin)
        if discover:
            manager.load_entrypoints()
        return cls(manager)

    # -- building -------------------------------------------------------------------------

    def _collect(self, source: PluginSource) -> tuple[list[Modality], dict[str, list[Component]]] | None:
        """Call every hook of one plugin; None (after reporting) if any of them misbehaves."""
        try:
            modalities = [
                replace(m, plugin=source.distribution)
                for m in self._call(source, MODALITY_HOOK, Modality, _check_modality)
            ]
            components = {
                kind: [
                    replace(c, kind=kind, plugin=source.distribution)
                    for c in (
                        self._call(source, hook, Pretrained, _check_pretrained)
                        if kind == "pretrained"
                        else self._call(source, hook, Component, _check_component)
                    )
                ]
                for kind, hook in KIND_HOOKS.items()
            }
        except _HookFailed as failed:
            self.manager.unregister(source.name)
            self.manager.report(
                PluginFailure(
                    source.name,
                    source.distribution,
                    source.version,
                    failed.message,
                    hook=failed.hook,
                    fix=f"fix {failed.hook} in {source.module}, or {_disable_fix(source.name)}",
                ),
                failed.__cause__,
            )
            return None
        return modalities, components

    def _call(self, source: PluginSource, hook: str, record_type: type, check: Any) -> list[Any]:
        impl = self.manager.hookimpl(source.name, hook)
        if impl is None:
            return []
        if impl.hookwrapper or impl.wrapper:
            raise _HookFailed(hook, f"{hook} must be a plain hook returning a list, not a wrapper")
        try:
            result = impl.function()
        except Exception as exc:
            raise _HookFailed(hook, f"raised {_describe(exc)}") from exc
        if result is None:
            return []
        if not isinstance(result, (list, tuple)):
            raise _HookFailed(
                hook, f"returned {type(result).__name__}, expected a list of {record_type.__name__}"
            )
        for i, record in enumerate(result):
            if not isinstance(record, record_type):
                raise _HookFailed(
                    hook, f"item {i} is {type(record).__name__} {record!r}, expected {record_type.__name__}"
                )
            problem = check(record)
            if problem:
                raise _HookFailed(hook, f"{record_type.__name__} '{record.name}': {problem}")
        return list(result)

    def _index(
        self, source: PluginSource, modalities: list[Modality], components: dict[str, list[Component]]
    ) -> None:
        for modality in modalities:
            self._add("modality", modality.name, source)
            self._modalities[modality.name] = modality
        for kind, records in components.items():
            for component in records:
                self._add(kind, component.name, source)
                self._components[kind][component.name] = component

    def _add(self, kind: str, name: str, source: PluginSource) -> None:
        other = self._owners.get((kind, name))
        if other is not None:
            culprit = other.name if other.name != BUILTIN_NAME else source.name
            raise PluginError(
                f"{kind} '{name}' is provided by two plugins: '{other.name}' from {other.label()} and "
                f"'{source.name}' from {source.label()}. Names must be unique within a kind. Fix: "
                f"uninstall one of the distributions, rename the {kind} in one of them, or "
                f"{_disable_fix(culprit)}"
            )
        self._owners[(kind, name)] = source

    # -- lookups --------------------------------------------------------------------------

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load or whose hooks misbehaved (all of them were skipped)."""
        return list(self.manager.failures)

    def modality(self, name: str) -> Modality:
        """The modality called ``name``; :class:`~polydiff.UnknownNameError` lists the known ones."""
        try:
            return self._modalities[name]
        except KeyError:
            raise unknown_name("modality", name, self._modalities, hint=self._hint()) from None

    def modalities(self) -> list[Modality]:
        """Every modality, sorted by name."""
        return [self._modalities[name] for name in sorted(self._modalities)]

    def component(self, kind: str, name: str) -> Component:
        """The component of ``kind`` (``"dataset"``, ``"sampler"``, ...) called ``name``."""
        registered = self._kind(kind)
        try:
            return registered[name]
        except KeyError:
            raise unknown_name(kind, name, registered, hint=self._hint()) from None

    def components(self, kind: str, modality: str | None = None) -> list[Component]:
        """Components of ``kind`` sorted by name; with ``modality``, those for it or for any modality."""
        registered = self._kind(kind)
        return [
            registered[name]
            for name in sorted(registered)
            if modality is None or registered[name].modality in (None, modality)
        ]

    def names(self, kind: str, modality: str | None = None) -> list[str]:
        """Names of :meth:`components` (for ``--help`` choices and error messages)."""
        return [component.name for component in self.components(kind, modality)]

    def build(self, kind: str, name: str, /, **kwargs: Any) -> Any:
        """Import the component's target and call it with its default options updated by ``kwargs``."""
        component = self.component(kind, name)
        return component.load()(**{**component.options, **kwargs})

    def plugins_info(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per plugin (loaded, failed or disabled), for ``polydiff plugins --json``.

        Keys: ``name``, ``distribution``, ``version``, ``module``, ``status`` (``"ok"``,
        ``"failed"``, ``"disabled"``), ``hooks``, ``modalities`` (name, rank, description, presets),
        ``components`` (kind -> list of name, description, modality, target, missing, extra);
        failed ones add ``error``, ``hook``, ``fix``; disabled ones add ``reason``.
        """
        info: list[dict[str, Any]] = []
        for source in self.manager.sources():
            if source.name not in self._contributed:
                continue
            modalities, components = self._contributed[source.name]
            entry = _plugin_entry(source, "ok", hooks=self.manager.hook_names(source.name))
            entry["modalities"] = [
                {"name": m.name, "rank": m.rank, "description": m.description, "presets": list(m.presets)}
                for m in modalities
            ]
            entry["components"] = {
                kind: [_component_entry(c) for c in records]
                for kind, records in components.items()
                if records
            }
            info.append(entry)
        for failure in self.manager.failures:
            source = PluginSource(failure.name, failure.distribution, failure.version)
            entry = _plugin_entry(source, "failed", module=None)
            entry.update(error=failure.error, hook=failure.hook, fix=failure.fix)
            info.append(entry)
        for source, reason in self.manager.disabled:
            entry = _plugin_entry(source, "disabled")
            entry["reason"] = reason
            info.append(entry)
        return info

    def _kind(self, kind: str) -> dict[str, Component]:
        try:
            return self._components[kind]
        except KeyError:
            raise unknown_name("component kind", kind, COMPONENT_KINDS) from None

    def _hint(self) -> str:
        installed = ", ".join(source.label() for source in self.manager.sources())
        hint = f"Installed plugins: {installed}"
        if self.manager.failures:
            failed = ", ".join(
                f"{f.name} ({f.distribution} {f.version})".replace(" )", ")") for f in self.failures
            )
            hint += f"; failed to load: {failed}"
        return hint + "; run `polydiff plugins` to see what each provides."


class _HookFailed(Exception):
    def __init__(self, hook: str, message: str) -> None:
        super().__init__(message)
        self.hook = hook
        self.message = message


def _check_component(component: Component) -> str | None:
    if not isinstance(component.name, str) or not component.name:
        return "name must be a non-empty string"
    if not isinstance(component.target, str) or not _IMPORT_STRING.match(component.target):
        return f"target {component.target!r} is not an import string 'package.module:attr'"
    if not isinstance(component.options, Mapping):
        return f"options must be a dict, not {type(component.options).__name__}"
    return None


def _check_pretrained(record: Pretrained) -> str | None:
    if not isinstance(record.name, str) or not record.name:
        return "name must be a non-empty string"
    if (
        not isinstance(record.package, str)
        or not _IMPORT_STRING.match(record.package)
        or ":" in record.package
    ):
        return f"package {record.package!r} is not a package import name ('my_plugin')"
    if not isinstance(record.path, str) or not record.path:
        return "path must name the checkpoint directory inside the package ('pretrained/NAME')"
    if isinstance(record.experts, str) or not all(isinstance(e, str) for e in record.experts):
        return f"experts must be a tuple of pretrained names, not {record.experts!r}"
    return None


def _check_modality(modality: Modality) -> str | None:
    if not isinstance(modality.name, str) or not modality.name:
        return "name must be a non-empty string"
    if modality.rank not in (1, 2, 3):
        return f"rank must be 1, 2 or 3 (spatial dims of [B, C, *spatial]), not {modality.rank!r}"
    if not isinstance(modality.presets, Mapping):
        return f"presets must be a dict, not {type(modality.presets).__name__}"
    return None


def _plugin_entry(source: PluginSource, status: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": source.name,
        "distribution": source.distribution,
        "version": source.version,
        "module": source.module,
        "status": status,
        "hooks": [],
        "modalities": [],
        "components": {},
    }
    entry.update(extra)
    return entry


def _component_entry(component: Component | Pretrained) -> dict[str, Any]:
    if isinstance(component, Pretrained):
        return {
            "name": component.name,
            "description": component.description,
            "modality": component.modality,
            "target": f"{component.package}/{component.path}",
            "package": component.package,
            "path": component.path,
            "experts": list(component.experts),
            "missing": component.missing_requirements(),
            "extra": component.extra,
        }
    return {
        "name": component.name,
        "description": component.description,
        "modality": component.modality,
        "target": component.target,
        "missing": component.missing_requirements(),
        "extra": component.extra,
    }


# -- the process-wide instance --------------------------------------------------------------

_lock = threading.RLock()
_manager: PluginManager | None = None
_registry: Registry | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide :class:`PluginManager`, built (and its entry points loaded) on first call."""
    global _manager
    with _lock:
        if _manager is None:
            manager = PluginManager()
            manager.load_entrypoints()
            manager.check_pending()
            _manager = manager
        return _manager


def get_registry() -> Registry:
    """The process-wide :class:`Registry` over :func:`get_plugin_manager`, built on first call."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = Registry(get_plugin_manager())
        return _registry


def reset_registry() -> None:
    """Forget the process-wide manager and registry (the next call rediscovers plugins)."""
    global _manager, _registry
    with _lock:
        _manager = None
        _registry = None
