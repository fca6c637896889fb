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

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.errors import ConfigError
from polydiff.interfaces import Evaluator
from polydiff_image.datasets.digits import DIGIT_NAMES
from polydiff_image.writer import PNGWriter

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline

SUPPORTED = ("shapes", "digits")


class ImageEvaluator(Evaluator):
    """Checker-based evaluation of image models.

    Args:
        checker_seed: Seeds the checkers' training (not the generation).
        grid_prompts: How many prompts ``samples.png`` shows.
        shapes_train_samples, shapes_epochs: Training of the shape classifier.
        digits_epochs: Training of the digit classifier.
        own_data / other options: Options of the own-data judges used for every other dataset
            (see :class:`~polydiff.evaluation.evaluator.OwnDataEvaluator`), e.g. ``max_prompts``.
    """

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

    def evaluate(
        self,
        pipeline: DiffusionPipeline,
        out_dir: Path,
        *,
        num_per_prompt: int = 4,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 3.0,
        seed: int = 0,
    ) -> dict[str, Any]:
        dataset = pipeline.config.dataset
        name, options = dataset.name, dict(dataset.options)
        if name not in SUPPORTED:
            from polydiff_image.evaluate.own_data import ImageOwnDataEvaluator

            try:
                judge = ImageOwnDataEvaluator(**{"seed": self.checker_seed, **self.own_data})
            except TypeError as exc:
                raise ConfigError(f"image-checkers option 'own_data': {exc}") from exc
            return judge.evaluate(
                pipeline,
                out_dir,
                num_per_prompt=num_per_prompt,
                sampler=sampler,
                steps=steps,
                guidance=guidance,
                seed=seed,
            )
        if self.own_data:
            raise ConfigError(
                f"image-checkers options {sorted(self.own_data)} apply to runs on your own images; "
                f"this run on '{name}' is judged by its purpose-made checkers, which take none of them"
            )
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        sampling = {"sampler": sampler, "steps": steps, "guidance": guidance, "seed": seed}
        start = time.perf_counter()
        if name == "shapes":
            metrics, labels, samples = self._shapes(pipeline, options, num_per_prompt, sampling)
        else:
            metrics, labels, samples = self._digits(pipeline, options, num_per_prompt, sampling)
        metrics = {
            "dataset": name,
            "num_per_prompt": num_per_prompt,
            **sampling,
            **metrics,
            "seconds": round(time.perf_counter() - start, 1),
        }
        shown = self.grid_prompts * num_per_prompt
        PNGWriter().write_samples(samples[:shown], labels[:shown], out_dir / "samples.png")
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return metrics

    def _shapes(
        self,
        pipeline: DiffusionPipeline,
        options: dict[str, Any],
        num_per_prompt: int,
        sampling: dict[str, Any],
    ) -> tuple[dict[str, Any], list[str], Any]:
        from polydiff_image.datasets.shapes import ShapesDataset
        from polydiff_image.evaluate.shapes_checker import ShapesChecker

        reference = ShapesDataset("eval", **{k: v for k, v in options.items() if k != "num_samples"})
        checker = ShapesChecker(
            reference,
            train_samples=self.shapes_train_samples,
            epochs=self.shapes_epochs,
            seed=self.checker_seed,
        )
        held_out = set(reference.held_out_prompts)
        prompts = reference.eval_prompts
        out = pipeline(prompts, num_per_prompt=num_per_prompt, **sampling)
        metrics: dict[str, Any] = {}
        for group, wanted in (("held_out", True), ("seen", False)):
            idx = [i for i, p in enumerate(out.prompts) if (p in held_out) == wanted]
            if idx:
                metrics[group] = checker.score(
                    out.samples[idx], [reference.attributes(out.prompts[i]) for i in idx]
                )
        metrics["checker_on_real"] = checker.real_accuracy
        labels = [f"{p} (held out)" if p in held_out else p for p in out.prompts]
        return metrics, labels, out.samples

    def _digits(
        self,
        pipeline: DiffusionPipeline,
        options: dict[str, Any],
        num_per_prompt: int,
        sampling: dict[str, Any],
    ) -> tuple[dict[str, Any], list[str], Any]:
        from polydiff_image.datasets.digits import digit_caption
        from polydiff_image.evaluate.digits_checker import DigitsChecker

        checker = DigitsChecker(
            int(options.get("size", 16)), epochs=self.digits_epochs, seed=self.checker_seed
        )
        prompts = [digit_caption(d) for d in range(10)]
        out = pipeline(prompts, num_per_prompt=num_per_prompt, **sampling)
        labels = [DIGIT_NAMES.index(p.rsplit(" ", 1)[-1]) for p in out.prompts]
        metrics = checker.score(out.samples, labels)
        predicted = checker.read(out.samples).tolist()
        metrics["per_digit_accuracy"] = {
            DIGIT_NAMES[d]: sum(p == d for p, t in zip(predicted, labels) if t == d) / max(1, labels.count(d))
            for d in range(10)
        }
        metrics["checker_on_real"] = {"accuracy": checker.real_accuracy}
        return metrics, list(out.prompts), out.samples
