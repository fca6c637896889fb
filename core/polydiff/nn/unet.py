"""The UNet every modality uses: one network for 1D signals, 2D images and 3D volumes or video."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from polydiff.errors import ConfigError
from polydiff.nn.attention import AttentionBlock, ContextCache, prepare_context
from polydiff.nn.blocks import Downsample, ResBlock, Upsample
from polydiff.nn.config import SpaceTimeConfig, UNetConfig
from polydiff.nn.embeddings import FrameModulation, TimestepEmbedding
from polydiff.nn.layers import group_norm, make_conv, zero_module

_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_VIDEO_AXIS_NAMES = ("frames", "height", "width")


class EmbedSequential(nn.Sequential):
    """Layers applied in turn, each given the inputs it takes (timestep embedding, context)."""

    def forward(
        self, x: Tensor, emb: Tensor, context: Tensor | ContextCache | None, context_mask: Tensor | None
    ) -> Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, AttentionBlock):
                x = layer(x, context, context_mask)
            else:
                x = layer(x)
        return x


class UNet(nn.Module):
    """Timestep- and context-conditioned UNet over ``x: [B, C, *spatial]`` with 1, 2 or 3 spatial axes.

    Encoder: an input convolution, then per level of ``channel_mult`` ``num_res_blocks``
    ResBlocks (+ attention at ``attention_levels``) and a 2x downsampling (not after the last
    level). Middle: ResBlock, attention, ResBlock. Decoder: per level ``num_res_blocks + 1``
    ResBlocks, each fed the matching encoder activation, and a 2x upsampling. Output:
    GroupNorm, SiLU, zero-initialised convolution, so a fresh UNet predicts zeros.

    Rank 3 is three spatial axes (full 3x3x3 layers) unless ``config.spacetime`` is set: the
    space-time (factorized) UNet for video, which never resamples the frame axis, so any
    number of frames works; at initialisation its temporal layers are identities, i.e. it
    starts as an image UNet applied to each frame (with the default per-frame norms,
    ``spacetime.frame_norm=True``).
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        _validate(config)
        self.config = config
        c = config
        self.dims = c.dims
        spacetime = c.spacetime or SpaceTimeConfig()  # read only when factorized
        self.factorized = c.dims == 3 and c.spacetime is not None
        self.axis_names = _VIDEO_AXIS_NAMES if self.factorized else _AXIS_NAMES[c.dims]
        self.out_channels = c.out_channels or c.in_channels
        #: 2-D on the CPU: activations run channels-last (NHWC), oneDNN's fastest convolution layout
        #: and the one in which the attention blocks' token views need no copy (measured alone and
        #: with the oneDNN linear layers: ``bench/cpu_speedups.py``, docs/research/speed.md). Results
        #: are the same to float32 rounding; the output is returned contiguous. False keeps NCHW.
        self.channels_last_on_cpu = c.dims == 2
        emb_dim = 4 * c.model_channels
        self.time_embed = TimestepEmbedding(c.model_channels, emb_dim)
        self.context_embed = None
        if c.pooled_context:
            self.context_embed = nn.Sequential(
                nn.LayerNorm(c.context_dim),
                nn.Linear(c.context_dim, emb_dim),
                nn.SiLU(),
                zero_module(nn.Linear(emb_dim, emb_dim)),
            )
        self.frame_modulation = None
        if self.factorized and spacetime.frame_modulation:
            prompt_dim = c.context_dim if c.pooled_context else None
            self.frame_modulation = FrameModulation(c.model_channels, emb_dim, prompt_dim)

        shared = {
            "norm_groups": c.norm_groups,
            "factorized": self.factorized,
            "frame_norm": spacetime.frame_norm,
        }
        # res(in_channels, out_channels) and attn(channels) build the blocks of every level.
        res = partial(ResBlock, c.dims, emb_dim=emb_dim, dropout=c.dropout, **shared)
        attn = partial(
            AttentionBlock,
            c.dims,
            head_dim=c.head_dim,
            context_dim=c.context_dim,
            frame_embedding=self.factorized and spacetime.frame_embedding,
            **shared,
        )

        ch = c.model_channels
        extra = c.cond_channels + (c.dims if c.coord_channels else 0)
        in_conv = make_conv(c.dims, c.in_channels + extra, ch, factorized=self.factorized)
        self.input_blocks = nn.ModuleList([EmbedSequential(in_conv)])
        skip_channels = [ch]
        last_level = len(c.channel_mult) - 1
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                layers: list[nn.Module] = [res(ch, mult * c.model_channels)]
                ch = mult * c.model_channels
                if level in c.attention_levels:
                    layers.append(attn(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_channels.append(ch)
            if level != last_level:
                self.input_blocks.append(EmbedSequential(Downsample(c.dims, ch, factorized=self.factorized)))
                skip_channels.append(ch)

        self.middle_block = EmbedSequential(res(ch, ch), attn(ch), res(ch, ch))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mult))):
            for i in range(c.num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), mult * c.model_channels)]
                ch = mult * c.model_channels
                if level in c.attention_levels:
                    layers.append(attn(ch))
                if level != 0 and i == c.num_res_blocks:
                    layers.append(Upsample(c.dims, ch, factorized=self.factorized))
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(
            group_norm(ch, c.norm_groups, per_frame=self.factorized and spacetime.frame_norm),
            nn.SiLU(),
            make_conv(c.dims, ch, self.out_channels, factorized=self.factorized, zero_init=True),
        )

    def prepare_context(self, context: Tensor) -> ContextCache:
        """Every cross-attention's keys and values of ``context: [B, L, context_dim]``, computed once.

        Pass the result as ``forward(..., context=cache)`` in place of the tensor: the same output
        (to float rounding), without projecting the context again in every block of every
        sampling step. Only forwards without autograd use the cache (see
        :class:`~polydiff.nn.attention.ContextCache`); the context mask is passed as before.
        """
        return prepare_context(self, context, self.config.context_dim)

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        context: Tensor | ContextCache | None = None,
        context_mask: Tensor | None = None,
        concat: Tensor | None = None,
    ) -> Tensor:
        """Predict the diffusion target for ``x_t``.

        Args:
            x: ``[B, in_channels, *spatial]`` noisy input.
            t: ``[B]`` timesteps (or one for all), int or float: fractional values are fine.
            context: ``[B, L, context_dim]`` tokens for cross-attention, or their
                :meth:`prepare_context` cache; required iff ``context_dim`` is set.
            context_mask: ``[B, L]`` bool, True where a token is real (None = all real).
            concat: ``[B, cond_channels, *spatial]`` maps concatenated to ``x`` on channels;
                required iff ``cond_channels > 0``.

        Returns:
            ``[B, out_channels, *spatial]``.
        """
        t = torch.as_tensor(t, device=x.device)
        tokens = context.context if isinstance(context, ContextCache) else context  # [B, L, D]
        self._check_inputs(x, t, tokens, context_mask, concat)
        if concat is not None:
            x = torch.cat([x, concat.to(x.dtype)], dim=1)
        if self.config.coord_channels:
            x = torch.cat([x, coordinates(x.shape[0], x.shape[2:], x)], dim=1)
        if context_mask is not None:
            context_mask = context_mask.bool()
        emb = self.time_embed(t.expand(x.shape[0]) if t.ndim == 0 else t)  # [B, E]
        prompt = pooled(tokens, context_mask) if self.context_embed is not None else None
        if prompt is not None:
            emb = emb + self.context_embed(prompt)
        if self.frame_modulation is not None:  # [B, E] -> [B, T, E]
            emb = emb.unsqueeze(1) + self.frame_modulation(x.shape[2], prompt)

        if self.channels_last_on_cpu and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        h, skips = x, []
        for block in self.input_blocks:
            h = self._run(block, h, emb, context, context_mask)
            skips.append(h)
        h = self._run(self.middle_block, h, emb, context, context_mask)
        for block in self.output_blocks:
            h = self._run(block, torch.cat([h, skips.pop()], dim=1), emb, context, context_mask)
        return self.out(h).contiguous()

    def _run(
        self,
        block: EmbedSequential,
        h: Tensor,
        emb: Tensor,
        context: Tensor | ContextCache | None,
        mask: Tensor | None,
    ) -> Tensor:
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, h, emb, context, mask, use_reentrant=False)
        return block(h, emb, context, mask)

    @property
    def downsample_factor(self) -> int:
        """``2 ** (len(channel_mult) - 1)``: spatial sizes must be multiples (factorized frames: any)."""
        return 2 ** (len(self.config.channel_mult) - 1)

    def check_input_shape(self, spatial: Sequence[int]) -> None:
        """Raise :class:`~polydiff.errors.ConfigError` unless ``spatial`` can be downsampled and restored.

        Every axis must be a multiple of :attr:`downsample_factor`, except the frame axis of
        factorized video, which is never downsampled. The message names the nearest sizes that work.
        """
        spatial = tuple(int(s) for s in spatial)
        names = self.axis_names
        if len(spatial) != self.dims:
            raise ConfigError(
                f"UNet(dims={self.dims}) expects {self.dims} spatial axes ({', '.join(names)}); "
                f"got shape {spatial}."
            )
        factor = self.downsample_factor
        downs = len(self.config.channel_mult) - 1
        problems = []
        for name, size in zip(names, spatial):
            if self.factorized and name == "frames":
                continue
            if size % factor or size == 0:
                lower, upper = size // factor * factor, (size // factor + 1) * factor
                sizes = f"{lower} or {upper}" if lower else f"{upper}"
                problems.append(
                    f"{name} {size} is not a multiple of {factor} ({downs} downsamplings); use {sizes}"
                )
        if problems:
            raise ConfigError(
                f"input size {spatial} does not fit the UNet: {'; '.join(problems)} "
                f"(or use fewer levels in UNetConfig.channel_mult)."
            )

    def _check_inputs(
        self, x: Tensor, t: Tensor, context: Tensor | None, context_mask: Tensor | None, concat: Tensor | None
    ) -> None:
        c = self.config
        if x.ndim != self.dims + 2 or x.shape[1] != c.in_channels:
            axes = ", ".join(self.axis_names)
            raise ConfigError(
                f"UNet expects x of shape [B, {c.in_channels}, {axes}] "
                f"(UNetConfig.in_channels={c.in_channels}, dims={self.dims}); got {tuple(x.shape)}."
            )
        self.check_input_shape(x.shape[2:])
        if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != x.shape[0]):
            raise ConfigError(f"t must have shape [B] = [{x.shape[0]}] or be a scalar; got {tuple(t.shape)}.")
        if c.cond_channels and concat is None:
            raise ConfigError(
                f"UNetConfig.cond_channels={c.cond_channels} but forward() got no concat tensor."
            )
        if concat is not None:
            expected = (x.shape[0], c.cond_channels, *x.shape[2:])
            if not c.cond_channels:
                raise ConfigError("forward() got a concat tensor but UNetConfig.cond_channels is 0.")
            if tuple(concat.shape) != expected:
                raise ConfigError(
                    f"concat must have shape {expected} (UNetConfig.cond_channels); "
                    f"got {tuple(concat.shape)}."
                )
        if c.context_dim is None:
            if context is not None:
                raise ConfigError(
                    "forward() got a context but UNetConfig.context_dim is None (no cross-attention)."
                )
            return
        if context is None:
            raise ConfigError(
                f"UNetConfig.context_dim={c.context_dim} but forward() got no context; pass "
                f"[B, L, {c.context_dim}] tokens (a learned null token for unconditional samples)."
            )
        if context.ndim != 3 or context.shape[0] != x.shape[0] or context.shape[2] != c.context_dim:
            raise ConfigError(
                f"context must have shape [{x.shape[0]}, L, {c.context_dim}] (UNetConfig.context_dim); "
                f"got {tuple(context.shape)}."
            )
        if context_mask is not None and tuple(context_mask.shape) != tuple(context.shape[:2]):
            raise ConfigError(
                f"context_mask must have shape {tuple(context.shape[:2])} like context's [B, L]; "
                f"got {tuple(context_mask.shape)}."
            )

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def _validate(c: UNetConfig) -> None:
    """Raise ConfigError for a UNetConfig that cannot build a network."""
    if c.dims not in (1, 2, 3):
        raise ConfigError(f"UNetConfig.dims must be 1, 2 or 3; got {c.dims}.")
    if not c.channel_mult or min(c.channel_mult) < 1:
        raise ConfigError(
            f"UNetConfig.channel_mult needs one positive multiplier per level; got {c.channel_mult}."
        )
    bad = [lvl for lvl in c.attention_levels if not 0 <= lvl < len(c.channel_mult)]
    if bad:
        raise ConfigError(
            f"UNetConfig.attention_levels {bad} out of range: levels are 0..{len(c.channel_mult) - 1} "
            f"(one per channel_mult entry)."
        )
    for name in ("in_channels", "model_channels", "head_dim", "norm_groups"):
        if getattr(c, name) < 1:
            raise ConfigError(f"UNetConfig.{name} must be positive; got {getattr(c, name)}.")
    if c.num_res_blocks < 1:
        raise ConfigError(f"UNetConfig.num_res_blocks must be at least 1; got {c.num_res_blocks}.")
    if c.cond_channels < 0 or (c.out_channels is not None and c.out_channels < 1):
        raise ConfigError("UNetConfig.cond_channels must be >= 0 and out_channels positive (or None).")
    if c.context_dim is not None and c.context_dim < 1:
        raise ConfigError(f"UNetConfig.context_dim must be positive or None; got {c.context_dim}.")
    if c.pooled_context and c.context_dim is None:
        raise ConfigError(
            "UNetConfig.pooled_context needs context tokens to pool: set context_dim "
            "(or pooled_context=False)."
        )
    if c.spacetime is not None and c.dims != 3:
        raise ConfigError(
            f"UNetConfig.spacetime (the space-time UNet for video [B, C, T, H, W]) needs dims=3; "
            f"got dims={c.dims}. Fix: spacetime=None."
        )
    if not 0.0 <= c.dropout < 1.0:
        raise ConfigError(f"UNetConfig.dropout must be in [0, 1); got {c.dropout}.")


def pooled(context: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``context: [B, L, D]`` over its real tokens (``mask: [B, L]`` bool) -> ``[B, D]``."""
    if mask is None:
        return context.mean(dim=1)
    weights = mask.to(context.dtype).unsqueeze(-1)
    return (context * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def coordinates(batch: int, spatial: Sequence[int], like: Tensor) -> Tensor:
    """``[batch, len(spatial), *spatial]``: channel ``i`` holds the position along axis ``i``, -1 to 1."""
    axes = [torch.linspace(-1.0, 1.0, n, device=like.device, dtype=like.dtype) for n in spatial]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return grid.unsqueeze(0).expand(batch, *grid.shape)


def build_unet(**options: Any) -> UNet:
    """The ``unet`` backbone component: ``UNet(UNetConfig(**options))`` (a run's ``unet`` section)."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(UNetConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown unet option(s) {unknown}; known: {', '.join(sorted(known))}")
    return UNet(UNetConfig(**options))
