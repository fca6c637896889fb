"""The Grad-TTS acoustic model parts: text encoder, alignment search, losses."""
