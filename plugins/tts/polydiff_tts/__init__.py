"""polydiff-tts: the text-to-speech modality of polydiff (Grad-TTS over log-mels).

Importing this package is cheap; components are imported when they are built. Main parts:
:mod:`polydiff_tts.audio` (mel settings, I/O), :mod:`polydiff_tts.text` (normalisation,
tokens), :mod:`polydiff_tts.conditioner` (``grad-tts``), :mod:`polydiff_tts.data`
(``ljspeech``, ``spoken-digits``), :mod:`polydiff_tts.writers` (``wav``),
:mod:`polydiff_tts.vocoders` (``griffin-lim`` + the ``polydiff_tts_vocoders`` hook),
:mod:`polydiff_tts.evaluation` (``tts-intelligibility``).
"""

__version__ = "0.1.0"
