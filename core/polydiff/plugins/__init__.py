"""Plugins: discovery, the registry of named components, and the report of what is installed.

* :mod:`polydiff.plugins.manager`: :class:`PluginManager` loads the core's own plugin, then
  the entry points of group ``polydiff`` (honouring ``POLYDIFF_DISABLE_PLUGINS``,
  ``POLYDIFF_LOAD_PLUGINS``, ``POLYDIFF_STRICT_PLUGINS``), and reports each failure once.
* :mod:`polydiff.plugins.kinds`: the kinds of components (the core's and those plugins
  declare) and what a record of each must look like.
* :mod:`polydiff.plugins.registry`: :class:`Registry` indexes every plugin's records:
  ``registry.component(kind, name)``, ``registry.names(kind)``, ``registry.build(kind, name, ...)``.
* :mod:`polydiff.plugins.report`: the JSON of ``polydiff plugins --json``.

Every failure of one plugin (it does not import, a hook misbehaves, a name clashes with an
earlier plugin's) skips that plugin with one report; the others still work. This module holds
the process-wide manager and registry. Nothing here imports torch.
"""

from __future__ import annotations

import threading

from polydiff.plugins.kinds import KINDS_HOOK, MODALITY_HOOK, Kind
from polydiff.plugins.manager import (
    BUILTIN_NAME,
    ENTRY_POINT_GROUP,
    ENV_DISABLE,
    ENV_LOAD,
    ENV_STRICT,
    PluginFailure,
    PluginLoadWarning,
    PluginManager,
    PluginSource,
)
from polydiff.plugins.registry import Registry

__all__ = [
    "BUILTIN_NAME",
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE",
    "ENV_LOAD",
    "ENV_STRICT",
    "KINDS_HOOK",
    "MODALITY_HOOK",
    "Kind",
    "PluginFailure",
    "PluginLoadWarning",
    "PluginManager",
    "PluginSource",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "reset_registry",
]

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
