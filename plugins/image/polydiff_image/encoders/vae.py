"""The image plugin's former ``vae`` encoder, now the core's :mod:`polydiff.encoders.vae`.

The core registers ``vae`` for every modality; this module keeps the old import path working.
"""

from polydiff.encoders.vae import SCALE_SAMPLES, VAEEncoder

__all__ = ["SCALE_SAMPLES", "VAEEncoder"]
