"""What ``polydiff plugins`` reports: one JSON-ready entry per plugin, and the installed-plugins
hint that unknown-name errors end with. Reads a registry; changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polydiff.plugins.manager import PluginManager, PluginSource
from polydiff.records import Component, Pretrained

if TYPE_CHECKING:
    from polydiff.plugins.registry import Registry


def plugins_info(registry: Registry) -> list[dict[str, Any]]:
    """One JSON-ready dict per plugin (loaded, failed or disabled), for ``polydiff plugins --json``.

    Keys: ``name``, ``distribution``, ``version``, ``module``, ``status`` (``"ok"``,
    ``"failed"``, ``"disabled"``), ``hooks``, ``modalities`` (name, rank, description, presets),
    ``components`` (kind -> list of name, description, modality, target, missing, extra),
    ``kinds`` (component kinds it declares: name, hook, description); failed ones add
    ``error``, ``hook``, ``fix``; disabled ones add ``reason``.
    """
    manager = registry.manager
    info: list[dict[str, Any]] = []
    for source in manager.sources():
        contribution = registry.contributed(source.name)
        if contribution is None:
            continue
        modalities, components = contribution
        entry = _plugin_entry(source, "ok", hooks=manager.hook_names(source.name))
        entry["modalities"] = [
            {"name": m.name, "rank": m.rank, "description": m.description, "presets": list(m.presets)}
            for m in modalities
        ]
        entry["components"] = {
            kind: [_component_entry(c) for c in records] for kind, records in components.items() if records
        }
        entry["kinds"] = [
            {"name": k.name, "hook": k.hook, "description": k.description}
            for k in registry.declared_kinds(source.name)
        ]
        info.append(entry)
    for failure in manager.failures:
        source = PluginSource(failure.name, failure.distribution, failure.version)
        entry = _plugin_entry(source, "failed", module=None)
        entry.update(error=failure.error, hook=failure.hook, fix=failure.fix)
        info.append(entry)
    for source, reason in manager.disabled:
        entry = _plugin_entry(source, "disabled")
        entry["reason"] = reason
        info.append(entry)
    return info


def installed_hint(manager: PluginManager) -> str:
    """``"Installed plugins: polydiff 0.1.0, ...; failed to load: ...; run `polydiff plugins` ..."``."""
    installed = ", ".join(source.label() for source in manager.sources())
    hint = f"Installed plugins: {installed}"
    if manager.failures:
        failed = ", ".join(
            f"{f.name} ({f.distribution} {f.version})".replace(" )", ")") for f in manager.failures
        )
        hint += f"; failed to load: {failed}"
    return hint + "; run `polydiff plugins` to see what each provides."


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
        "kinds": [],
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
