"""polydiff-timeseries: a template polydiff plugin adding a 1D modality, ``timeseries``.

Importing this package is cheap (no torch): polydiff imports :mod:`polydiff_timeseries.plugin`
at startup through the ``polydiff`` entry point, and the heavy modules (dataset, writer,
evaluator) only when a run uses them.
"""

__version__ = "0.1.0"
