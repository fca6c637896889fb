"""Classifier-free guidance (Ho & Salimans 2022) as a model function for any sampler."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from polydiff.diffusion.gaussian import ModelFn
from polydiff.errors import ConfigError
from polydiff.interfaces import Conditioning

UNetLike = Callable[..., Tensor]


def _expand_batch(value: Tensor, batch: int, field: str) -> Tensor:
    if value.shape[0] == batch:
        return value
    if value.shape[0] == 1:
        return value.expand(batch, *value.shape[1:])
    raise ConfigError(f"Conditioning.{field} has batch {value.shape[0]} but x_t has {batch}.")


def _stack_context(cond: Conditioning, uncond: Conditioning, batch: int) -> tuple[Tensor, Tensor]:
    """Concatenate two contexts ``[B, L1, D]``, ``[B, L2, D]`` -> ``[2B, max(L1, L2), D]`` and their
    masks ``[2B, max(L1, L2)]`` bool, zero-padding the shorter one with masked-out tokens."""
    contexts, masks = [], []
    for c in (cond, uncond):
        assert c.context is not None
        context = _expand_batch(c.context, batch, "context")
        mask = c.context_mask
        if mask is None:
            mask = torch.ones(context.shape[:2], dtype=torch.bool, device=context.device)
        contexts.append(context)
        masks.append(_expand_batch(mask.bool(), batch, "context_mask"))
    length = max(c.shape[1] for c in contexts)
    contexts = [F.pad(c, (0, 0, 0, length - c.shape[1])) for c in contexts]
    masks = [F.pad(m, (0, length - m.shape[1]), value=False) for m in masks]
    return torch.cat(contexts), torch.cat(masks)


def _can_batch(cond: Conditioning, uncond: Conditioning) -> bool:
    """One batched forward is possible when each input is given for both or for neither."""
    return (cond.context is None) == (uncond.context is None) and (cond.concat is None) == (
        uncond.concat is None
    )


def _with_cached_context(unet: UNetLike, kwargs: dict[str, Tensor | None]) -> dict[str, object]:
    """``kwargs`` with the context replaced by ``unet.prepare_context(context)`` where the network
    offers it (the UNet: cross-attention keys and values projected once per sampling call)."""
    prepare = getattr(unet, "prepare_context", None)
    if prepare is None or kwargs.get("context") is None:
        return dict(kwargs)
    return kwargs | {"context": prepare(kwargs["context"])}


def cfg_model_fn(unet: UNetLike, cond: Conditioning, uncond: Conditioning | None, scale: float) -> ModelFn:
    """A model function that applies classifier-free guidance.

    ``out = uncond_out + scale * (cond_out - uncond_out)`` on the raw network output; this
    is the same guidance whether the network predicts eps, x0 or v (each is affine in the
    others for a fixed ``x_t``). ``scale = 1`` is the conditional model, ``0`` the
    unconditional one. Both halves run in one forward of batch ``2B``: contexts of different
    lengths are zero-padded and masked out through ``context_mask``; when only one side has a
    context or a concat input, two forwards are made instead.

    The conditioning is fixed for the model function's life, so its network inputs are built at
    the first call (per batch size) and reused; a network with ``prepare_context`` (the UNet)
    gets the context as a cache of every cross-attention's keys and values, projected once
    instead of at every step (used without autograd only; see
    :class:`polydiff.nn.attention.ContextCache`).

    Args:
        unet: Called as ``unet(x [B, C, *s], t [B], context=, context_mask=, concat=)``.
        cond: Conditioning of the prompts (tensors with batch ``B`` or 1).
        uncond: Null conditioning, or None for no guidance (the conditional model alone).
        scale: Guidance scale ``w``.

    Returns:
        ``model_fn(x_t [B, C, *s], t [B]) -> [B, C, *s]``.
    """
    if uncond is None or scale == 1.0 or scale == 0.0:
        only = cond if uncond is None or scale == 1.0 else uncond
        prepared: dict[str, object] = {}

        def single(x: Tensor, t: Tensor) -> Tensor:
            if not prepared:
                prepared.update(_with_cached_context(unet, only.unet_kwargs()))
            return unet(x, t, **prepared)

        return single

    inputs: dict[int, list[dict[str, object]]] = {}  # batch -> kwargs of each forward

    def build(batch: int) -> list[dict[str, object]]:
        if not _can_batch(cond, uncond):
            return [_with_cached_context(unet, c.unet_kwargs()) for c in (cond, uncond)]
        kwargs: dict[str, Tensor | None] = {"context": None, "context_mask": None, "concat": None}
        if cond.context is not None:
            kwargs["context"], kwargs["context_mask"] = _stack_context(cond, uncond, batch)
        if cond.concat is not None and uncond.concat is not None:
            kwargs["concat"] = torch.cat(
                [_expand_batch(cond.concat, batch, "concat"), _expand_batch(uncond.concat, batch, "concat")]
            )
        return [_with_cached_context(unet, kwargs)]

    def guided(x: Tensor, t: Tensor) -> Tensor:
        batch = x.shape[0]
        if batch not in inputs:
            inputs[batch] = build(batch)
        forwards = inputs[batch]
        if len(forwards) == 2:
            out_cond, out_uncond = (unet(x, t, **kwargs) for kwargs in forwards)
        else:
            out_cond, out_uncond = unet(torch.cat([x, x]), torch.cat([t, t]), **forwards[0]).chunk(2)
        return out_uncond + scale * (out_cond - out_uncond)

    return guided
