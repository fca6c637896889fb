"""Vocoders by name: the ``vocoder`` component kind that polydiff-tts declares.

The kind lives in polydiff's registry like the built-in kinds (``polydiff_component_kinds`` in
:mod:`polydiff_tts.plugin`); vocoder plugins implement ``polydiff_tts_vocoders``
(:mod:`polydiff_tts.hookspecs`). A clash of vocoder names skips the later plugin with one report,
as for every kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polydiff.records import Component
from polydiff_tts.audio.config import MelConfig
from polydiff_tts.plugin import GRIFFIN_LIM  # noqa: F401  (where it used to be defined)
from polydiff_tts.vocoders.base import Vocoder

if TYPE_CHECKING:
    from polydiff.plugins import Registry

KIND = "vocoder"


def vocoder_components(registry: Registry | None = None) -> dict[str, Component]:
    """Every installed vocoder by name (``griffin-lim`` always), from ``registry`` (default:
    the process-wide one)."""
    registry = registry or _registry()
    return {component.name: component for component in registry.components(KIND)}


def load_vocoder(
    name: str, mel: MelConfig | dict[str, Any] | str | None, registry: Registry | None = None, **options: Any
) -> Vocoder:
    """Build vocoder ``name`` for the mel settings ``mel``; an unknown name lists the installed ones."""
    return (registry or _registry()).build(KIND, name, mel=MelConfig.from_options(mel), **options)


def _registry() -> Registry:
    from polydiff.plugins import get_registry

    return get_registry()
