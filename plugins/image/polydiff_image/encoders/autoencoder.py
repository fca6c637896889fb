"""The KL autoencoder, now rank-generic in the core (:mod:`polydiff.encoders.autoencoder`);
this module keeps the old import path working."""

from polydiff.encoders.autoencoder import AutoencoderKL, DiagonalGaussian, ResBlock

__all__ = ["AutoencoderKL", "DiagonalGaussian", "ResBlock"]
