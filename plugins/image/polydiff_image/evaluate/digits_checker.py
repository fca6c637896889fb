"""Scores generated digits with a classifier trained on real digits, independently of the generator.

* accuracy: how often the classifier reads the digit the prompt asked for;
* Frechet distance in the classifier's feature space between generated images and the
  real ``eval`` split (360 images), next to the same distance for as many real ``train``
  images: the value a perfect generator would get with this sample size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from polydiff_image.datasets.digits import load_digit_images
from polydiff_image.evaluate.classifier import SmallConvNet, predict, train_classifier
from polydiff_image.evaluate.frechet import frechet_distance


def to_grey(x: Tensor) -> Tensor:
    """``[N, 1 or 3, H, W]`` in [0, 255] -> ``[N, 1, H, W]`` in [0, 1] (channel mean)."""
    return x.detach().float().cpu().mean(dim=1, keepdim=True) / 255.0


class DigitsChecker:
    """Digit classifier trained on the real ``train`` split at image side ``size`` (random shifts of
    one pixel per 16), about 98% accurate on the real ``eval`` split with the defaults.

    :attr:`real_accuracy` is its accuracy on the real ``eval`` split.
    """

    def __init__(self, size: int = 16, *, epochs: int = 20, width: int = 32, seed: int = 0):
        images, labels = load_digit_images("train", size)
        self.train_images = to_grey(images)
        self.net: SmallConvNet = train_classifier(
            self.train_images, labels, 10, epochs=epochs, width=width, shift=max(1, size // 16), seed=seed
        )
        eval_images, self.eval_labels = load_digit_images("eval", size)
        predicted, self.real_features = predict(self.net, to_grey(eval_images))
        self.real_accuracy = (predicted == self.eval_labels).float().mean().item()
        self.seed = seed

    def read(self, x: Tensor) -> Tensor:
        """``x [N, C, H, W]`` in [0, 255] -> predicted digits ``[N]``."""
        return predict(self.net, to_grey(x))[0]

    def score(self, x: Tensor, labels: Sequence[int]) -> dict[str, float]:
        """Accuracy against ``labels``, Frechet distance to the real eval split, and the reference
        distance of ``len(x)`` real train images (at least 2 images)."""
        predicted, features = predict(self.net, to_grey(x))
        target = torch.as_tensor(list(labels))
        pick = torch.randperm(len(self.train_images), generator=torch.Generator().manual_seed(self.seed))
        real = predict(self.net, self.train_images[pick[: max(2, len(x))]])[1]
        return {
            "accuracy": (predicted == target).float().mean().item(),
            "frechet": frechet_distance(features, self.real_features),
            "frechet_real_reference": frechet_distance(real, self.real_features),
            "num_samples": len(x),
        }
