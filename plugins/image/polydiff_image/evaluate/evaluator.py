"""``image-checkers``: ``polydiff evaluate`` for image models; the judge depends on the run's dataset.

Generates ``num_per_prompt`` images per evaluation prompt with the trained pipeline and
scores them with checkers trained here on real data only (never on generated images):

* ``shapes``: colour, shape and position accuracy (and all three at once), separately for
  the prompts held out of training and for as many seen ones;
* ``digits``: accuracy of a real-digit classifier on the generated digits and a Frechet
  distance in its feature space.

Writes ``metrics.json`` and ``samples.png`` (the first prompts, held-out ones marked) to ``out_dir``.

Any other dataset (``folder``, a third-party one) is judged by its own real data
(:class:`~polydiff_image.evaluate.own_data.ImageOwnDataEvaluator`): a caption classifier trained on
real items, a Frechet distance in its features and a nearest-training-item memorisation check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.errors import ConfigError
from polydiff.evaluation.base import CheckerEvaluator, Plan
from polydiff.interfaces import Evaluator
from polydiff_image.datasets.digits import DIGIT_NAMES
from polydiff_image.writer import PNGWriter

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline

SUPPORTED = ("shapes", "digits")


class ImageEvaluator(CheckerEvaluator):
    """Checker-based evaluation of image models (the flow is the core's
    :class:`~polydiff.evaluation.base.CheckerEvaluator`: this class plans, scores and draws).

    Args:
        checker_seed: Seeds the checkers' training (not the generation).
        grid_prompts: How many prompts ``samples.png`` shows.
        shapes_train_samples, shapes_epochs: Training of the shape classifier.
        digits_epochs: Training of the digit classifier.
        own_data / other options: Options of the own-data judges used for every other dataset
            (see :class:`~polydiff.evaluation.evaluator.OwnDataEvaluator`), e.g. ``max_prompts``.
    """

    name = "image-checkers"
    datasets = SUPPORTED
    own_data_noun = "images"

    def __init__(
        self,
        checker_seed: int = 0,
        grid_prompts: int = 12,
        shapes_train_samples: int = 2000,
        shapes_epochs: int = 6,
        digits_epochs: int = 20,
        own_data: dict[str, Any] | None = None,
        **own_data_options: Any,
    ):
        self.checker_seed, self.grid_prompts = checker_seed, grid_prompts
        self.shapes_train_samples, self.shapes_epochs = shapes_train_samples, shapes_epochs
        self.digits_epochs = digits_epochs
        self.own_data = {**(own_data or {}), **own_data_options}

    def fallback(self, pipeline: DiffusionPipeline) -> Evaluator:
        from polydiff_image.evaluate.own_data import ImageOwnDataEvaluator

        try:
            return ImageOwnDataEvaluator(**{"seed": self.checker_seed, **self.own_data})
        except TypeError as exc:
            raise ConfigError(f"image-checkers option 'own_data': {exc}") from exc

    def plan(self, pipeline: DiffusionPipeline) -> Plan:
        dataset = pipeline.config.dataset
        options = dict(dataset.options)
        if dataset.name == "shapes":
            from polydiff_image.datasets.shapes import ShapesDataset
            from polydiff_image.evaluate.shapes_checker import ShapesChecker

            reference = ShapesDataset("eval", **{k: v for k, v in options.items() if k != "num_samples"})
            checker = ShapesChecker(
                reference,
                train_samples=self.shapes_train_samples,
                epochs=self.shapes_epochs,
                seed=self.checker_seed,
            )
            return Plan(reference.eval_prompts, {"reference": reference, "checker": checker})
        from polydiff_image.datasets.digits import digit_caption
        from polydiff_image.evaluate.digits_checker import DigitsChecker

        checker = DigitsChecker(
            int(options.get("size", 16)), epochs=self.digits_epochs, seed=self.checker_seed
        )
        return Plan([digit_caption(d) for d in range(10)], {"checker": checker})

    def header(
        self, pipeline: DiffusionPipeline, num_per_prompt: int, sampling: dict[str, Any]
    ) -> dict[str, Any]:
        return {"dataset": pipeline.config.dataset.name, "num_per_prompt": num_per_prompt, **sampling}

    def score(self, pipeline: DiffusionPipeline, out: Any, plan: Plan) -> dict[str, Any]:
        if "reference" in plan.context:
            return self._shapes(out, plan)
        return self._digits(out, plan)

    def picture(
        self, pipeline: DiffusionPipeline, out: Any, plan: Plan, metrics: dict[str, Any], out_dir: Path
    ) -> None:
        """``samples.png``: the first ``grid_prompts`` prompts, held-out ones marked."""
        shown = self.grid_prompts * metrics["num_per_prompt"]
        labels = plan.context["labels"]
        PNGWriter().write_samples(out.samples[:shown], labels[:shown], out_dir / "samples.png")

    def _shapes(self, out: Any, plan: Plan) -> dict[str, Any]:
        reference, checker = plan.context["reference"], plan.context["checker"]
        held_out = set(reference.held_out_prompts)
        metrics: dict[str, Any] = {}
        for group, wanted in (("held_out", True), ("seen", False)):
            idx = [i for i, p in enumerate(out.prompts) if (p in held_out) == wanted]
            if idx:
                metrics[group] = checker.score(
                    out.samples[idx], [reference.attributes(out.prompts[i]) for i in idx]
                )
        metrics["checker_on_real"] = checker.real_accuracy
        plan.context["labels"] = [f"{p} (held out)" if p in held_out else p for p in out.prompts]
        return metrics

    def _digits(self, out: Any, plan: Plan) -> dict[str, Any]:
        checker = plan.context["checker"]
        labels = [DIGIT_NAMES.index(p.rsplit(" ", 1)[-1]) for p in out.prompts]
        metrics = checker.score(out.samples, labels)
        predicted = checker.read(out.samples).tolist()
        metrics["per_digit_accuracy"] = {
            DIGIT_NAMES[d]: sum(p == d for p, t in zip(predicted, labels) if t == d) / max(1, labels.count(d))
            for d in range(10)
        }
        metrics["checker_on_real"] = {"accuracy": checker.real_accuracy}
        plan.context["labels"] = list(out.prompts)
        return metrics
