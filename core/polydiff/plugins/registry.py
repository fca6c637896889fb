"""The registry: every loaded plugin's modalities and named components, by kind and name.

:class:`Registry` calls the hooks of each plugin of a :class:`~polydiff.plugins.manager.PluginManager`,
checks what they return, and answers ``registry.component("dataset", "sines")`` and
``registry.build("sampler", "ddim", diffusion=...)``. Kinds are the core's
(:data:`polydiff.records.COMPONENT_KINDS`) and those plugins declare
(:class:`~polydiff.records.ComponentKind`, see :mod:`polydiff.plugins.kinds`).

One rule for every failure of one plugin: a hook that raises, returns anything but a list of
the right records, declares a kind that exists, or names a component, modality or kind that an
earlier plugin already registered (a clash: the report names both distributions) makes that
plugin skipped as a whole, with one :class:`~polydiff.plugins.manager.PluginFailure` report;
every other plugin still works. ``POLYDIFF_STRICT_PLUGINS=1`` makes the report an error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from polydiff.errors import unknown_name
from polydiff.plugins.kinds import (
    KINDS_HOOK,
    MODALITY_HOOK,
    Kind,
    builtin_kinds,
    check_kind,
    check_modality,
    plugin_kind,
)
from polydiff.plugins.manager import (
    BUILTIN_NAME,
    PluginFailure,
    PluginManager,
    PluginSource,
    describe,
    disable_fix,
)
from polydiff.records import Component, ComponentKind, Modality

#: What one plugin contributes: its modalities and its records of each kind.
Contribution = tuple[list[Modality], dict[str, list[Any]]]


class _Skip(Exception):
    """One plugin cannot be used: ``message`` (with ``hook`` at fault) and ``fix`` for its report."""

    def __init__(self, message: str, hook: str | None = None, fix: str = "") -> None:
        super().__init__(message)
        self.message, self.hook, self.fix = message, hook, fix


class Registry:
    """Named modalities and components of every loaded plugin.

    Built from a :class:`PluginManager` in two passes over its plugins (registration order,
    the core first): the kinds plugins declare, then every plugin's records of every kind.
    A plugin that fails in either pass is reported in :attr:`failures` and skipped as a whole.
    """

    def __init__(self, manager: PluginManager) -> None:
        manager.check_pending()
        self.manager = manager
        self._kinds: dict[str, Kind] = builtin_kinds()
        self._declared: dict[str, list[ComponentKind]] = {}
        self._modalities: dict[str, Modality] = {}
        self._components: dict[str, dict[str, Any]] = {}
        self._owners: dict[tuple[str, str], PluginSource] = {}
        self._contributed: dict[str, Contribution] = {}
        for source in manager.sources():
            self._guard(source, self._add_kinds)
        self._components = {kind: {} for kind in self._kinds}
        for source in manager.sources():
            self._guard(source, self._add_records)

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

    def _guard(self, source: PluginSource, step: Any) -> None:
        """Run ``step(source)``; on :class:`_Skip`, drop the plugin and report it once."""
        if self.manager.plugin(source.name) is None:  # skipped in an earlier pass
            return
        try:
            step(source)
        except _Skip as skip:
            self._declared.pop(source.name, None)
            self.manager.unregister(source.name)
            self.manager.report(
                PluginFailure(
                    source.name,
                    source.distribution,
                    source.version,
                    skip.message,
                    hook=skip.hook,
                    fix=skip.fix or f"fix {skip.hook} in {source.module}, or {disable_fix(source.name)}",
                ),
                skip.__cause__,
            )

    def _add_kinds(self, source: PluginSource) -> None:
        declared = self._call(source, Kind(KINDS_HOOK, KINDS_HOOK, ComponentKind, check_kind))
        new: dict[str, Kind] = {}
        for record in declared:
            kind = self._kinds.get(record.name) or new.get(record.name)
            if kind is not None:
                owner = self.manager.source(kind.declared_by) if kind.declared_by else None
                by = f"plugin '{owner.name}' from {owner.label()}" if owner else "the core"
                raise _Skip(
                    f"component kind '{record.name}' is declared by {by} already",
                    hook=KINDS_HOOK,
                    fix=f"rename the kind in {source.module}, or {disable_fix(source.name)}",
                )
            new[record.name] = plugin_kind(record, source.name)
        self._kinds.update(new)
        self._declared[source.name] = [replace(r, plugin=source.distribution) for r in declared]

    def _add_records(self, source: PluginSource) -> None:
        modalities = [
            replace(m, plugin=source.distribution)
            for m in self._call(source, Kind("modality", MODALITY_HOOK, Modality, check_modality))
        ]
        records = {
            name: [replace(r, kind=name, plugin=source.distribution) for r in self._call(source, kind)]
            for name, kind in self._kinds.items()
        }
        names = [("modality", m.name) for m in modalities]
        names += [(kind, r.name) for kind, rs in records.items() for r in rs]
        seen: set[tuple[str, str]] = set()
        for kind, name in names:  # check every name first: a plugin is indexed whole or not at all
            if (kind, name) in seen:
                hook = MODALITY_HOOK if kind == "modality" else self._kinds[kind].hook
                raise _Skip(f"returns two of {kind} '{name}'; names must be unique within a kind", hook)
            seen.add((kind, name))
            other = self._owners.get((kind, name))
            if other is not None:
                hook = MODALITY_HOOK if kind == "modality" else self._kinds[kind].hook
                raise _Skip(*_clash(kind, name, hook, other, source))
        for kind, name in names:
            self._owners[(kind, name)] = source
        for modality in modalities:
            self._modalities[modality.name] = modality
        for kind, rs in records.items():
            for record in rs:
                self._components[kind][record.name] = record
        self._contributed[source.name] = (modalities, records)

    def _call(self, source: PluginSource, kind: Kind) -> list[Any]:
        """The checked records that ``source``'s implementation of ``kind.hook`` returns."""
        hook = kind.hook
        impl = self.manager.hookimpl(source.name, hook)
        if impl is None:
            return []
        if impl.hookwrapper or impl.wrapper:
            raise _Skip(f"{hook} must be a plain hook returning a list, not a wrapper", hook)
        try:
            result = impl.function()
        except Exception as exc:
            raise _Skip(f"raised {describe(exc)}", hook) from exc
        if result is None:
            return []
        record_type = kind.record.__name__
        if not isinstance(result, (list, tuple)):
            raise _Skip(f"returned {type(result).__name__}, expected a list of {record_type}", hook)
        for i, record in enumerate(result):
            if not isinstance(record, kind.record):
                raise _Skip(f"item {i} is {type(record).__name__} {record!r}, expected {record_type}", hook)
            problem = kind.check(record)
            if problem:
                raise _Skip(f"{record_type} '{record.name}': {problem}", hook)
        return list(result)

    # -- lookups --------------------------------------------------------------------------

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load, whose hooks misbehaved or whose names clashed (all skipped)."""
        return list(self.manager.failures)

    def kinds(self) -> list[str]:
        """Every component kind: the core's, then those plugins declared (``"vocoder"``)."""
        return list(self._kinds)

    def kind(self, name: str) -> Kind:
        """How kind ``name`` is collected (its hook, record type, the plugin that declared it)."""
        try:
            return self._kinds[name]
        except KeyError:
            raise unknown_name("component kind", name, self._kinds) from None

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

    def contributed(self, plugin: str) -> Contribution | None:
        """What the loaded plugin ``plugin`` contributes, or None if it was skipped."""
        return self._contributed.get(plugin)

    def declared_kinds(self, plugin: str) -> list[ComponentKind]:
        """The component kinds the plugin ``plugin`` declared."""
        return list(self._declared.get(plugin, []))

    def plugins_info(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per plugin, for ``polydiff plugins --json``
        (see :func:`polydiff.plugins.report.plugins_info`)."""
        from polydiff.plugins.report import plugins_info

        return plugins_info(self)

    def _kind(self, kind: str) -> dict[str, Any]:
        try:
            return self._components[kind]
        except KeyError:
            raise unknown_name("component kind", kind, self._kinds) from None

    def _hint(self) -> str:
        from polydiff.plugins.report import installed_hint

        return installed_hint(self.manager)


def _clash(
    kind: str, name: str, hook: str, other: PluginSource, source: PluginSource
) -> tuple[str, str, str]:
    """Message, hook and fix of the report that skips ``source`` for reusing ``other``'s name."""
    which = "the core" if other.name == BUILTIN_NAME else f"plugin '{other.name}'"
    message = (
        f"{kind} '{name}' is provided by two plugins: '{other.name}' from {other.label()} and "
        f"'{source.name}' from {source.label()}; {source.name} is skipped ({which} keeps the name). "
        "Names must be unique within a kind"
    )
    fix = (
        f"uninstall one of the distributions, rename the {kind} in one of them, or {disable_fix(source.name)}"
    )
    return message, hook, fix
