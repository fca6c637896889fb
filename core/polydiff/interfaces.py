"""Base classes of the components plugins provide (see :mod:`polydiff.hookspecs`).

Shapes: ``x`` is always ``[B, C, *spatial]`` with 1, 2 or 3 spatial dims; a "shape"
without batch is ``(C, *spatial)``. *Data space* is what datasets yield and writers
take (pixels, mel frames, ...); *diffusion space* is what the UNet sees (pixels in
[-1, 1], VAE latents, normalised mels); encoders map between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from polydiff.pipeline import DiffusionPipeline


@dataclass
class Conditioning:
    """Everything a conditioner hands to the UNet and the loss, for one batch.

    Attributes:
        context: ``[B, L, D]`` tokens for cross-attention, or None.
        context_mask: ``[B, L]`` bool, True where a token is real, or None (all real).
        concat: ``[B, Cc, *spatial]`` maps concatenated to ``x_t`` on channels, or None.
        offset: ``[B, C, *spatial]`` prior mean: diffusion runs on ``x0 - offset`` and
            sampling adds it back, so ``x_T ~ N(offset, I)`` (Grad-TTS's ``mu``), or None.
        loss_mask: ``[B, 1 or C, *spatial]`` weights of the diffusion loss (padding = 0).
        aux_losses: Extra named scalar losses added to the diffusion loss (duration, prior).
    """

    context: Tensor | None = None
    context_mask: Tensor | None = None
    concat: Tensor | None = None
    offset: Tensor | None = None
    loss_mask: Tensor | None = None
    aux_losses: dict[str, Tensor] = field(default_factory=dict)

    def unet_kwargs(self) -> dict[str, Tensor | None]:
        """Keyword arguments for :meth:`polydiff.UNet.forward`."""
        return {"context": self.context, "context_mask": self.context_mask, "concat": self.concat}

    def replace(self, **changes: Any) -> Conditioning:
        return replace(self, **changes)


@dataclass
class SamplingPlan:
    """What a conditioner decides before sampling a batch of prompts.

    Attributes:
        cond: Conditioning for the prompts.
        uncond: Conditioning with the prompts dropped (for classifier-free guidance), or
            None when the conditioner has nothing to drop.
        shape: ``(C, *spatial)`` of one sample in diffusion space.
        lengths: Optional per-sample valid length along the last axis (speech frames).
    """

    cond: Conditioning
    uncond: Conditioning | None
    shape: tuple[int, ...]
    lengths: list[int] | None = None


@runtime_checkable
class DiffusionDataset(Protocol):
    """Map-style dataset; ``ds[i]`` is ``{"x": Tensor[C, *spatial], "text": str, ...}``.

    Optional attributes: ``data_shape`` (``(C, *spatial)``), ``captions`` (all captions, to
    build a vocabulary), ``eval_prompts`` (prompts an evaluator and the demo use), and
    ``collate(items) -> batch`` when items differ in size (default: stack / list),
    ``validate(progress=False) -> polydiff.data_check.DataReport`` (checks its files before
    training; see :func:`polydiff.data_check.check_dataset`) and ``synthetic = True``
    (generated in code: the trainer's validation pass skips it).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


class Encoder(nn.Module):
    """Maps data space to diffusion space and back.

    Subclasses implement :meth:`encode`, :meth:`decode`, :meth:`latent_shape`, and
    :meth:`config` (the keyword options that rebuild them). A learned encoder sets
    ``trainable = True`` and implements :meth:`fit`; after fitting it is frozen.
    """

    trainable: bool = False

    def encode(self, x: Tensor) -> Tensor:
        """``x: [B, C, *spatial]`` data space -> ``[B, C', *spatial']`` diffusion space."""
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        """Inverse of :meth:`encode`."""
        raise NotImplementedError

    def latent_shape(self, data_shape: Sequence[int]) -> tuple[int, ...]:
        """``(C, *spatial)`` of the diffusion tensor for a data tensor of ``data_shape``."""
        return tuple(data_shape)

    def config(self) -> dict[str, Any]:
        """Options that rebuild this encoder (saved in ``config.json``)."""
        return {}

    def fit(
        self,
        dataset: DiffusionDataset,
        *,
        steps: int,
        batch_size: int,
        seed: int,
        out_dir: Path | None = None,
    ) -> dict[str, float]:
        """Train a learned encoder as a first stage; returns final metrics."""
        return {}

    @property
    def is_fitted(self) -> bool:
        return not self.trainable


class Conditioner(nn.Module):
    """Turns a batch's conditioning information into a :class:`Conditioning`.

    Attributes (set in ``__init__``, read when the UNet is built):
        context_dim: width ``D`` of cross-attention tokens, or None.
        concat_channels: channels ``Cc`` concatenated to ``x_t``.

    Trainable parameters of the conditioner are optimised with the UNet.
    """

    context_dim: int | None = None
    concat_channels: int = 0

    def set_latent_shape(self, shape: tuple[int, ...]) -> None:
        """The diffusion-space shape ``(C, *spatial)`` (the encoder's :meth:`Encoder.latent_shape`
        of the data), told before :meth:`fit` and when a checkpoint is loaded. Conditioners whose
        outputs live in diffusion space (an ``offset`` or an alignment over its ``C`` channels, as
        speech's) take ``C`` from here rather than from the data, which a learned encoder changes."""

    def fit(self, dataset: DiffusionDataset) -> None:
        """Prepare from the training set before the model is built (e.g. a vocabulary)."""

    def config(self) -> dict[str, Any]:
        """Options that rebuild this conditioner (saved in ``config.json``)."""
        return {}

    def forward(self, batch: dict[str, Any], x0: Tensor, *, drop: Tensor | None = None) -> Conditioning:
        """Conditioning for a training batch.

        Args:
            batch: The collated dataset items (``batch["text"]`` is a list of str).
            x0: ``[B, C, *spatial]`` the batch in diffusion space (some conditioners align
                to it, as speech does).
            drop: ``[B]`` bool, True where the sample's condition is dropped (classifier-free
                guidance training); drawn by the trainer from its seeded per-step generator,
                so runs are reproducible and equal across process counts. None = keep all.
        """
        return Conditioning()

    def plan(self, prompts: Sequence[str], shape: tuple[int, ...]) -> SamplingPlan:
        """Conditioning (and the null one) for sampling ``prompts``; may change ``shape``."""
        return SamplingPlan(cond=Conditioning(), uncond=None, shape=tuple(shape))


class Writer:
    """Writes data-space tensors as files a person can look at or listen to.

    ``x`` arguments are data space, ``[B, C, *spatial]``, on the CPU.
    Each method returns the paths it wrote.
    """

    def write_samples(
        self, x: Tensor, prompts: Sequence[str], path: Path, lengths: Sequence[int] | None = None
    ) -> list[Path]:
        """Write a batch of samples (a grid, one WAV per sample, one GIF per sample).

        ``lengths`` (optional) is each sample's valid length along the last axis."""
        raise NotImplementedError

    def write_trajectory(
        self, steps: Sequence[int], xt: Tensor, x0: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """Write the reverse process: ``xt`` and ``x0`` are ``[S, B, C, *spatial]`` at
        timesteps ``steps`` (decreasing), decoded to data space."""
        raise NotImplementedError

    def write_forward(
        self, steps: Sequence[int], xt: Tensor, prompts: Sequence[str], path: Path
    ) -> list[Path]:
        """Write the forward process: ``xt`` is ``[S, B, C, *spatial]`` at ``steps``."""
        raise NotImplementedError

    def write_loss_curve(self, history: Sequence[dict[str, float]], path: Path) -> list[Path]:
        """Optional: plot training losses; default writes nothing."""
        return []


class Evaluator:
    """Scores a trained model with checkers independent of the generator."""

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
        """Generate, score, write ``metrics.json`` (and pictures) to ``out_dir``; return metrics."""
        raise NotImplementedError


def default_collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors and list everything else, key by key."""
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        batch[key] = torch.stack(values) if isinstance(values[0], Tensor) else values
    return batch
