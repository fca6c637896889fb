"""Hooks that polydiff-tts adds for other plugins (registered through ``polydiff_addhooks``).

A neural vocoder plugin implements :func:`polydiff_tts_vocoders`::

    # my_vocoder/plugin.py  (entry point group "polydiff", like any polydiff plugin)
    from polydiff import Component, hookimpl

    @hookimpl
    def polydiff_tts_vocoders():
        return [Component("hifigan", "my_vocoder.model:HiFiGANVocoder", requires=("torch",),
                          description="HiFi-GAN V1 for the grad-tts mel preset")]

and users select it with ``--set writer.vocoder=hifigan``. polydiff-tts declares the ``vocoder``
component kind (``polydiff_component_kinds``), so vocoders live in polydiff's registry like the
core's kinds: ``registry.names("vocoder")``, one report and a skipped plugin for a name clash.
"""

from __future__ import annotations

import pluggy

from polydiff.records import Component

hookspec = pluggy.HookspecMarker("polydiff")


@hookspec
def polydiff_tts_vocoders() -> list[Component]:
    """Return vocoder components.

    ``target(mel=MelConfig, **options)`` returns a :class:`polydiff_tts.vocoders.base.Vocoder`:
    ``vocoder(log_mel [n_mels, T]) -> audio [samples]`` at ``mel.sample_rate``. The mel
    settings are the checkpoint's (``polydiff_tts.audio.MelConfig``); a vocoder trained for
    other settings must raise :class:`polydiff.ConfigError` naming the ones it supports.
    Built in: ``griffin-lim``.
    """
