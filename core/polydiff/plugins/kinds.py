"""The kinds of named components, and what a record of each kind must look like.

A kind is what ``registry.component(kind, name)`` takes: the core's (:data:`COMPONENT_KINDS
<polydiff.records.COMPONENT_KINDS>`: dataset, encoder, ..., pretrained) and those plugins add
with a :class:`~polydiff.records.ComponentKind` (the TTS plugin's ``vocoder``). Every kind has
the hook that returns its records, the record type and a check of one record.

To add a built-in kind: one entry in :data:`polydiff.records.COMPONENT_KINDS` and its hook spec
(``polydiff_{kind}s``) in :mod:`polydiff.hookspecs`; nothing here changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from polydiff.records import COMPONENT_KINDS, Component, ComponentKind, Modality, Pretrained

MODALITY_HOOK = "polydiff_modalities"
KINDS_HOOK = "polydiff_component_kinds"

_IMPORT_STRING = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")
_KIND_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def check_component(component: Component) -> str | None:
    """What is wrong with a :class:`Component` record, or None."""
    if not isinstance(component.name, str) or not component.name:
        return "name must be a non-empty string"
    if not isinstance(component.target, str) or not _IMPORT_STRING.match(component.target):
        return f"target {component.target!r} is not an import string 'package.module:attr'"
    if not isinstance(component.options, Mapping):
        return f"options must be a dict, not {type(component.options).__name__}"
    return None


def check_pretrained(record: Pretrained) -> str | None:
    """What is wrong with a :class:`Pretrained` record, or None."""
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


def check_modality(modality: Modality) -> str | None:
    """What is wrong with a :class:`Modality` record, or None."""
    if not isinstance(modality.name, str) or not modality.name:
        return "name must be a non-empty string"
    if modality.rank not in (1, 2, 3):
        return f"rank must be 1, 2 or 3 (spatial dims of [B, C, *spatial]), not {modality.rank!r}"
    if not isinstance(modality.presets, Mapping):
        return f"presets must be a dict, not {type(modality.presets).__name__}"
    return None


def check_kind(kind: ComponentKind) -> str | None:
    """What is wrong with a :class:`ComponentKind` record, or None."""
    if not isinstance(kind.name, str) or not _KIND_NAME.match(kind.name):
        return f"name {kind.name!r} must be a lower-case word ('vocoder')"
    if not isinstance(kind.hook, str) or not kind.hook.isidentifier():
        return f"hook {kind.hook!r} must be the name of a hook ('polydiff_tts_vocoders')"
    return None


@dataclass(frozen=True)
class Kind:
    """How the registry collects one kind: its hook, record type and record check.

    Attributes:
        name: ``"dataset"``, ``"vocoder"``, ...
        hook: The hook returning its records.
        record: The record type (:class:`Component`, or :class:`Pretrained`).
        check: Returns what is wrong with one record, or None.
        declared_by: The plugin (name) that declared it; ``""`` for the core's kinds.
        description: One line (plugin kinds).
    """

    name: str
    hook: str
    record: type = Component
    check: Callable[[Any], str | None] = check_component
    declared_by: str = ""
    description: str = ""


def builtin_kinds() -> dict[str, Kind]:
    """The core's kinds by name, in :data:`~polydiff.records.COMPONENT_KINDS` order."""
    kinds = {}
    for name in COMPONENT_KINDS:
        if name == "pretrained":
            kinds[name] = Kind(name, "polydiff_pretrained", Pretrained, check_pretrained)
        else:
            kinds[name] = Kind(name, f"polydiff_{name}s")
    return kinds


def plugin_kind(record: ComponentKind, plugin: str) -> Kind:
    """The :class:`Kind` of a plugin's :class:`ComponentKind` (its records are Components)."""
    return Kind(record.name, record.hook, declared_by=plugin, description=record.description)
