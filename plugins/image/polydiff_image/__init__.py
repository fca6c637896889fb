"""polydiff-image: the image modality for polydiff.

Datasets ``shapes``, ``digits``, ``folder``; encoders ``pixels`` and ``vae``; the ``png``
writer; the ``image-checkers`` evaluator; the optional ``sentence-embedding`` conditioner.
Hooks are in :mod:`polydiff_image.plugin` (cheap to import: no torch).
"""

__version__ = "0.1.0"
