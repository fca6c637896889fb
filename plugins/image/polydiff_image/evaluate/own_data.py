"""Image models trained on your folder (or any dataset without a purpose-made checker), judged by
the core's own-data judges: images ``[3, H, W]`` in [0, 255], drawn as they are."""

from __future__ import annotations

from polydiff.evaluation.evaluator import OwnDataEvaluator


class ImageOwnDataEvaluator(OwnDataEvaluator):
    """:class:`~polydiff.evaluation.evaluator.OwnDataEvaluator` for images: the classifier is a
    2-D network and learns with random shifts of one pixel; pictures show the images."""

    name = "image-checkers (own data)"
