"""Finding vocoders by name through the ``polydiff_tts_vocoders`` hook."""

from __future__ import annotations

import dataclasses
from typing import Any

from polydiff.errors import PluginError, unknown_name
from polydiff.records import Component
from polydiff_tts.audio.config import MelConfig
from polydiff_tts.vocoders.base import Vocoder

#: The vocoder every installation has (also registered through the hook by polydiff-tts).
GRIFFIN_LIM = Component(
    "griffin-lim",
    "polydiff_tts.vocoders.griffin_lim:GriffinLimVocoder",
    description="pseudo-inverse mel filterbank + Griffin-Lim phase (no training; robotic)",
    requires=("torchaudio",),
)


def vocoder_components() -> dict[str, Component]:
    """Every installed vocoder by name (``griffin-lim`` always).

    Raises:
        PluginError: two plugins register the same vocoder name.
    """
    found: dict[str, Component] = {
        GRIFFIN_LIM.name: dataclasses.replace(GRIFFIN_LIM, kind="vocoder", plugin="polydiff-tts")
    }
    owners: dict[str, str] = {GRIFFIN_LIM.name: "tts"}
    from polydiff.plugins import get_plugin_manager

    caller = getattr(get_plugin_manager().hook, "polydiff_tts_vocoders", None)
    for impl in caller.get_hookimpls() if caller is not None else []:
        for component in impl.function() or []:
            owner = owners.get(component.name)
            if owner is not None and owner != impl.plugin_name:
                raise PluginError(
                    f"vocoder '{component.name}' is registered by both plugin '{owner}' and "
                    f"plugin '{impl.plugin_name}'; uninstall one or rename its vocoder"
                )
            owners[component.name] = impl.plugin_name
            found[component.name] = dataclasses.replace(component, kind="vocoder", plugin=impl.plugin_name)
    return found


def load_vocoder(name: str, mel: MelConfig | dict[str, Any] | str | None, **options: Any) -> Vocoder:
    """Build vocoder ``name`` for the mel settings ``mel``."""
    components = vocoder_components()
    if name not in components:
        raise unknown_name(
            "vocoder", name, components, hint="Vocoders come from plugins implementing polydiff_tts_vocoders."
        )
    return components[name].load()(mel=MelConfig.from_options(mel), **options)
