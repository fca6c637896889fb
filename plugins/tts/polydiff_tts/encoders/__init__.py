"""Encoders between log-mel data space and diffusion space."""
