"""Encoders built into the core (plugins add learned ones)."""

from polydiff.encoders.identity import IdentityEncoder

__all__ = ["IdentityEncoder"]
