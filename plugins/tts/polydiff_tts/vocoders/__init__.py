"""Vocoders: log-mel -> audio. ``griffin-lim`` is built in; others come from plugins
through the ``polydiff_tts_vocoders`` hook (see :mod:`polydiff_tts.hookspecs`)."""
