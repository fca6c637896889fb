"""Image encoders: ``pixels`` and the ``vae`` first stage."""
