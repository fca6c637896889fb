"""Bridges to other libraries' checkpoints (diffusers)."""
