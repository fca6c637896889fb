"""Plugin discovery: which plugins load, from where, and the report of each one that fails.

:class:`PluginManager` wraps a ``pluggy.PluginManager("polydiff")``. It registers the core's
own plugin (:mod:`polydiff.builtin`) first, then the modules named by entry points of group
``polydiff``. Every ``ep.load()`` is guarded: a plugin that fails to import is recorded as a
:class:`PluginFailure` and warned about once (:meth:`PluginManager.report`), and the others
still load. The registry (:mod:`polydiff.plugins.registry`) reports through the same method.

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
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pluggy

from polydiff import hookspecs
from polydiff.errors import PluginError, unknown_name

#: Entry-point group that third-party plugins register under.
ENTRY_POINT_GROUP = "polydiff"
#: Name (and distribution) of the core's own plugin.
BUILTIN_NAME = "polydiff"

ENV_STRICT = "POLYDIFF_STRICT_PLUGINS"
ENV_DISABLE = "POLYDIFF_DISABLE_PLUGINS"
ENV_LOAD = "POLYDIFF_LOAD_PLUGINS"


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


def describe(exc: BaseException) -> str:
    """``"ImportError: No module named 'scipy'"``."""
    return f"{type(exc).__name__}: {exc}"


def disable_fix(name: str) -> str:
    """The fix that skips plugin ``name``: ``"skip it with POLYDIFF_DISABLE_PLUGINS=name"``."""
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
                    describe(exc),
                    fix=f"check the hook signatures against polydiff.hookspecs, or {disable_fix(name)}",
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
                fix=f"rename one entry point, uninstall one of them, or {disable_fix(source.name)}",
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
                        f"cannot import {ep.value}: {describe(exc)}",
                        fix=f"reinstall it (pip install -U {distribution}), or {disable_fix(ep.name)}",
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
