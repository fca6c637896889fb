"""Judges built from a run's own real data (no downloads): the pieces ``polydiff evaluate`` uses
for datasets that have no purpose-made checker (your folders and corpora).

* :mod:`.targets`: what a caption says, as classes (a finite caption set) or words (free captions);
* :mod:`.classifier`: a small rank-generic convolutional classifier trained on real items;
* :mod:`.frechet`: Frechet distance between two feature sets;
* :mod:`.memorisation`: nearest-training-item distances of samples and of real held-out items;
* :mod:`.judge`: the three judges together, fitted on real train items, scoring samples;
* :mod:`.report`: the explanations, ``metrics.json``, ``report.md`` and the closest-pairs picture;
* :mod:`.evaluator`: ``own-data``, an :class:`~polydiff.interfaces.Evaluator` for any modality;
* :mod:`.base`: the flow of purpose-made evaluators (plan, generate, score, ``metrics.json``,
  picture, own-data dispatch), :class:`~polydiff.evaluation.base.CheckerEvaluator`.

The synthetic shapes world's readers (foreground, centroid) are in :mod:`polydiff.shapes_world`.
"""

from polydiff.evaluation.frechet import frechet_distance
from polydiff.evaluation.judge import OwnDataJudge, RealItems
from polydiff.evaluation.targets import CaptionTargets

__all__ = ["CaptionTargets", "OwnDataJudge", "RealItems", "frechet_distance"]
