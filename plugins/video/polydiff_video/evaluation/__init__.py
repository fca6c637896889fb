"""Offline checkers of generated clips and the ``video-motion`` evaluator."""
