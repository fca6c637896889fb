"""Configuration of the rank-generic diffusion transformer (:class:`polydiff.nn.dit.DiT`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from polydiff.errors import ConfigError
from polydiff.validation import Rule, check_dataclass

POSITIVE_INT = Rule(lo=1)


@dataclass
class DiTConfig:
    """Architecture of :class:`polydiff.nn.dit.DiT` (Peebles & Xie 2023, with cross-attention).

    Attributes:
        dims: Spatial rank of the data: 1, 2 or 3 (``[B, C, T, H, W]`` video).
        in_channels: Channels of ``x_t`` (filled in from the encoder).
        out_channels: Channels of the prediction (default ``in_channels``).
        cond_channels: Channels concatenated to ``x_t`` (filled in from the conditioner).
        context_dim: Width of the context tokens (filled in from the conditioner); None = no
            cross-attention.
        patch_size: Patch extent per spatial axis; one value applies to every axis, otherwise one
            per axis (video: e.g. ``[1, 4, 4]``). Every spatial size must be a multiple.
        hidden_size: Width of the tokens.
        depth: Transformer blocks.
        head_dim: Channels per attention head.
        mlp_ratio: Hidden width of the feed-forward layers, in multiples of ``hidden_size``.
        pooled_context: Add the context tokens' masked mean (through an MLP) to the timestep
            embedding that drives adaLN, besides the cross-attention. Needs ``context_dim``.
        gradient_checkpointing: Recompute each block's activations in the backward pass.
    """

    dims: int = 2
    in_channels: int = 3
    out_channels: int | None = None
    cond_channels: int = 0
    context_dim: int | None = None
    patch_size: tuple[int, ...] = (2,)
    hidden_size: int = 128
    depth: int = 6
    head_dim: int = 32
    mlp_ratio: float = 4.0
    pooled_context: bool = True
    gradient_checkpointing: bool = False

    RULES: ClassVar[dict[str, Rule]] = {
        "dims": Rule(choices=(1, 2, 3), text="1, 2 or 3"),
        "in_channels": POSITIVE_INT,
        "out_channels": POSITIVE_INT,
        "cond_channels": Rule(lo=0),
        "context_dim": POSITIVE_INT,
        "patch_size": POSITIVE_INT,
        "hidden_size": POSITIVE_INT,
        "depth": POSITIVE_INT,
        "head_dim": POSITIVE_INT,
        "mlp_ratio": Rule(lo=0, lo_open=True),
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (one-line ConfigError naming it and the fix); lists become tuples."""
        check_dataclass(self, "backbone", self.RULES)
        if len(self.patch_size) not in (1, self.dims):
            raise ConfigError(
                f"backbone.patch_size {list(self.patch_size)} must hold one size or one per spatial axis "
                f"({self.dims}); e.g. [2] or {[2] * self.dims}"
            )
        if self.hidden_size % self.head_dim:
            fit = self.hidden_size // self.head_dim * self.head_dim or self.head_dim
            raise ConfigError(
                f"backbone.hidden_size={self.hidden_size} is not a multiple of backbone.head_dim="
                f"{self.head_dim}; use hidden_size {fit}"
            )
        if self.pooled_context and self.context_dim is None:
            # no context to pool (an unconditional run): nothing to add, not an error
            self.pooled_context = False

    @property
    def patches(self) -> tuple[int, ...]:
        """``patch_size`` with one entry per spatial axis."""
        return tuple(self.patch_size) * self.dims if len(self.patch_size) == 1 else tuple(self.patch_size)
