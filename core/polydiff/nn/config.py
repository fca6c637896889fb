"""Configuration of the rank-generic UNet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from polydiff.errors import ConfigError
from polydiff.validation import Rule, check_dataclass

POSITIVE_INT = Rule(lo=1)


@dataclass
class UNetConfig:
    """Architecture of :class:`polydiff.UNet`.

    Attributes:
        dims: Spatial rank of the data: 1 (signals, mels over time), 2 (images),
            3 (video ``[B, C, T, H, W]``).
        in_channels: Channels of ``x_t``.
        out_channels: Channels of the prediction (default ``in_channels``).
        cond_channels: Channels of spatially aligned conditioning concatenated to ``x_t``.
        model_channels: Width of the first level.
        channel_mult: Width multiplier per level; ``len(channel_mult)`` levels, each but
            the last followed by a 2x downsampling.
        num_res_blocks: ResBlocks per level (the decoder has one more, as in DDPM).
        attention_levels: Indices of the levels that have self-attention (and
            cross-attention when ``context_dim`` is set); the middle block always has both.
        head_dim: Channels per attention head.
        context_dim: Width of the cross-attention context tokens; None = no cross-attention.
        dropout: Dropout inside ResBlocks.
        norm_groups: Groups of GroupNorm (clamped to divide the channels).
        factorized: dims=3 only: spatial (1x3x3) then temporal (3x1x1) convolutions and
            spatial then temporal attention, downsampling space only (Video Diffusion
            Models). False = full 3x3x3 convolutions, attention over all positions and
            downsampling of time too.
        coord_channels: Append one input channel per spatial axis holding the position along
            it, from -1 to 1 (CoordConv, Liu et al. 2018). Convolutions are translation
            equivariant and attention here has no position embedding, so without these the
            network learns where it is only from the zero padding: prompts that name positions
            ("at the top left") need them.
        pooled_context: Also add the context tokens' masked mean, through a small MLP, to the
            timestep embedding (Imagen's pooled text embedding), so every ResBlock, temporal
            convolutions included, is modulated by the prompt, not only the attention
            levels. Needs ``context_dim``. The MLP's last layer starts at zero.
        frame_embedding: Factorized video: every attention block adds a sinusoidal embedding
            of the frame index to its tokens (zero-initialised projection), so cross-attention
            to the prompt can differ from frame to frame (motion words); see
            :class:`~polydiff.nn.attention.AttentionBlock`.
        frame_modulation: Factorized video: each frame's ResBlocks get their own scale/shift,
            from an embedding of the frame index that meets the pooled prompt (when
            ``pooled_context`` is set) before a nonlinearity
            (:class:`~polydiff.nn.embeddings.FrameModulation`). Attention alone carries the
            frame index to the attention levels; this carries the prompt's motion to every
            ResBlock, frame by frame. The last layer starts at zero.
        frame_norm: Factorized video: GroupNorm statistics per frame (True: each frame is
            normalised as an independent image, which joint image-video training needs) or
            over the whole clip (False: what differs from frame to frame as a whole, such
            as the frame index and the coordinate channel along time, survives the norms).
        gradient_checkpointing: Recompute each block's activations in the backward pass
            while training (less memory, about 30% more compute); no effect on results.
    """

    dims: int = 2
    in_channels: int = 3
    out_channels: int | None = None
    cond_channels: int = 0
    model_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (1,)
    head_dim: int = 32
    context_dim: int | None = None
    dropout: float = 0.0
    norm_groups: int = 32
    factorized: bool = True
    coord_channels: bool = False
    pooled_context: bool = False
    frame_embedding: bool = False
    frame_modulation: bool = False
    frame_norm: bool = True
    gradient_checkpointing: bool = False

    RULES: ClassVar[dict[str, Rule]] = {
        "dims": Rule(choices=(1, 2, 3), text="1, 2 or 3"),
        "in_channels": POSITIVE_INT,
        "out_channels": POSITIVE_INT,
        "cond_channels": Rule(lo=0),
        "model_channels": POSITIVE_INT,
        "channel_mult": POSITIVE_INT,
        "num_res_blocks": POSITIVE_INT,
        "attention_levels": Rule(lo=0),
        "head_dim": POSITIVE_INT,
        "context_dim": POSITIVE_INT,
        "dropout": Rule(lo=0, hi=1, hi_open=True),
        "norm_groups": POSITIVE_INT,
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type and range (raises ConfigError naming the field and the fix);
        lists become tuples."""
        check_dataclass(self, "unet", self.RULES)
        if not self.channel_mult:
            raise ConfigError("unet.channel_mult must list at least one level, got []; e.g. [1,2,2]")
        bad = [i for i in self.attention_levels if i >= len(self.channel_mult)]
        if bad:
            raise ConfigError(
                f"unet.attention_levels {bad} out of range: levels are 0..{len(self.channel_mult) - 1} "
                f"(one per channel_mult entry {list(self.channel_mult)}); drop them or add levels"
            )
