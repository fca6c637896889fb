"""Checkers independent of the generator, and the ``image-checkers`` evaluator."""
