"""DiffusionModel: the trainable whole (UNet + conditioner) around a frozen encoder."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from polydiff.diffusion.gaussian import GaussianDiffusion
from polydiff.interfaces import Conditioner, Encoder


class DiffusionModel(nn.Module):
    """Holds ``unet``, ``conditioner`` and ``encoder``; its state dict is the checkpoint.

    ``unet`` is the run's backbone, whichever it is (a UNet, a DiT, ...): the attribute keeps
    its name so that every checkpoint's weights stay ``unet.*``.

    ``forward`` computes the training loss of one batch, so DistributedDataParallel can
    wrap the whole model and synchronise the conditioner's gradients with the UNet's.
    """

    def __init__(
        self, unet: nn.Module, conditioner: Conditioner, encoder: Encoder, diffusion: GaussianDiffusion
    ):
        super().__init__()
        self.unet, self.conditioner, self.encoder = unet, conditioner, encoder
        self.diffusion = diffusion

    def freeze_encoder(self) -> None:
        self.encoder.eval()
        self.encoder.requires_grad_(False)

    def forward(
        self, batch: dict[str, Any], x0: Tensor, t: Tensor, noise: Tensor, drop: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Loss terms of a batch.

        Args:
            batch: Collated items (``batch["text"]``, masks, ...), for the conditioner.
            x0: ``[B, C, *spatial]`` the batch in diffusion space (``encoder.encode(batch["x"])``).
            t: ``[B]`` timesteps; noise: like ``x0``.
            drop: ``[B]`` bool, conditions to drop (classifier-free guidance), or None.
        Returns:
            ``{"loss": total, "diffusion": ..., **aux_losses}``, scalars.
        """
        cond = self.conditioner(batch, x0, drop=drop)
        if cond.offset is not None:
            x0 = x0 - cond.offset
        unet_kwargs = cond.unet_kwargs()
        diffusion_loss = self.diffusion.training_loss(
            lambda x_t, tt: self.unet(x_t, tt, **unet_kwargs), x0, t=t, noise=noise, mask=cond.loss_mask
        )
        terms = {"diffusion": diffusion_loss, **cond.aux_losses}
        terms["loss"] = sum(terms.values())
        return terms
