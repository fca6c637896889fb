"""Configuration of the rank-generic UNet."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

from polydiff.errors import ConfigError
from polydiff.validation import Rule, check_dataclass

POSITIVE_INT = Rule(lo=1)


@dataclass
class SpaceTimeConfig:
    """The space-time UNet for video ``[B, C, T, H, W]`` (Video Diffusion Models, Ho et al. 2022).

    With this section set (``unet.spacetime``, rank-3 data only), the first spatial axis is
    time: spatial (1x3x3) then temporal (3x1x1) convolutions, spatial then temporal attention,
    and downsampling of space only, so any number of frames works. At initialisation the
    temporal layers are identities: it starts as an image UNet applied to each frame. Without
    it (``unet.spacetime = null``, the default) rank 3 means three spatial axes (a volume
    ``[B, C, D, H, W]``): full 3x3x3 convolutions, attention over all positions, every axis
    downsampled.

    Attributes:
        frame_embedding: Every attention block adds a sinusoidal embedding of the frame index
            to its tokens (zero-initialised projection), so cross-attention to the prompt can
            differ from frame to frame (motion words); see
            :class:`~polydiff.nn.attention.AttentionBlock`.
        frame_modulation: Each frame's ResBlocks get their own scale/shift, from an embedding
            of the frame index that meets the pooled prompt (when ``unet.pooled_context`` is
            set) before a nonlinearity (:class:`~polydiff.nn.embeddings.FrameModulation`).
            Attention alone carries the frame index to the attention levels; this carries the
            prompt's motion to every ResBlock, frame by frame. The last layer starts at zero.
        frame_norm: GroupNorm statistics per frame (True: each frame is normalised as an
            independent image, which joint image-video training needs) or over the whole clip
            (False: what differs from frame to frame as a whole, such as the frame index and
            the coordinate channel along time, survives the norms).
    """

    frame_embedding: bool = False
    frame_modulation: bool = False
    frame_norm: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type (raises ConfigError naming ``unet.spacetime.FIELD``)."""
        check_dataclass(self, "unet.spacetime", {})

    @classmethod
    def parse(cls, value: Any) -> SpaceTimeConfig | None:
        """``unet.spacetime`` as written in a preset, ``--set`` or ``config.json``: a mapping of
        fields, True (the defaults), False or None (no space-time UNet), or an instance."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = [f.name for f in dataclasses.fields(cls)]
            bad = sorted(set(value) - set(known))
            if bad:
                close = [m for name in bad for m in difflib.get_close_matches(name, known, n=1)]
                hint = f" Did you mean {', '.join(repr(m) for m in close)}?" if close else ""
                raise ConfigError(f"unknown unet.spacetime field(s) {bad}.{hint} Known: {', '.join(known)}.")
            return cls(**value)
        raise ConfigError(
            f"unet.spacetime must be a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}, "
            f"true (the defaults) or null (no space-time UNet), got {value!r}; "
            "e.g. --set unet.spacetime=true or --set 'unet.spacetime={\"frame_norm\": false}'"
        )


#: Fields of the UNet section before the space-time options had their own section (format 1
#: configs, written before polydiff 0.2): ``factorized`` (default True) chose the space-time
#: UNet for ``dims=3``; the others are now fields of :class:`SpaceTimeConfig`.
LEGACY_SPACETIME_FIELDS = ("factorized", "frame_embedding", "frame_modulation", "frame_norm")


def upgrade_legacy_unet(unet: dict[str, Any]) -> dict[str, Any]:
    """A ``unet`` section of a ``config.json`` with the flat video fields, as this version reads
    it: ``dims=3`` with ``factorized`` true (or absent: its old default) becomes
    ``spacetime={frame_embedding, frame_modulation, frame_norm}``; otherwise the flags had no
    effect and are dropped. A section without them is returned unchanged (a new dict)."""
    unet = dict(unet)
    legacy = {name: unet.pop(name) for name in LEGACY_SPACETIME_FIELDS if name in unet}
    if legacy and "spacetime" not in unet:
        if unet.get("dims") == 3 and legacy.get("factorized", True):
            unet["spacetime"] = {k: v for k, v in legacy.items() if k != "factorized"}
        else:
            unet["spacetime"] = None
    return unet


@dataclass
class UNetConfig:
    """Architecture of :class:`polydiff.UNet`.

    Attributes:
        dims: Spatial rank of the data: 1 (signals, mels over time), 2 (images), 3 (three
            spatial axes ``[B, C, D, H, W]``: volumes; video sets ``spacetime`` too). The
            modality's rank fills it.
        in_channels: Channels of ``x_t``. Filled in when the model is built, from the
            encoder's latent shape (what a preset or ``--set`` gives is overwritten).
        out_channels: Channels of the prediction (default ``in_channels``).
        cond_channels: Channels of spatially aligned conditioning concatenated to ``x_t``.
            Filled in when the model is built, from the conditioner (``concat_channels``).
        model_channels: Width of the first level.
        channel_mult: Width multiplier per level; ``len(channel_mult)`` levels, each but
            the last followed by a 2x downsampling.
        num_res_blocks: ResBlocks per level (the decoder has one more, as in DDPM).
        attention_levels: Indices of the levels that have self-attention (and
            cross-attention when ``context_dim`` is set); the middle block always has both.
        head_dim: Channels per attention head.
        context_dim: Width of the cross-attention context tokens; None = no cross-attention.
            Filled in when the model is built, from the conditioner (``context_dim``).
        dropout: Dropout inside ResBlocks.
        norm_groups: Groups of GroupNorm (clamped to divide the channels).
        coord_channels: Append one input channel per spatial axis holding the position along
            it, from -1 to 1 (CoordConv, Liu et al. 2018). Convolutions are translation
            equivariant and attention here has no position embedding, so without these the
            network learns where it is only from the zero padding: prompts that name positions
            ("at the top left") need them.
        pooled_context: Also add the context tokens' masked mean, through a small MLP, to the
            timestep embedding (Imagen's pooled text embedding), so every ResBlock, temporal
            convolutions included, is modulated by the prompt, not only the attention
            levels. Needs ``context_dim``. The MLP's last layer starts at zero.
        spacetime: The space-time UNet for video (rank 3 only): see :class:`SpaceTimeConfig`.
            None (default) = full 3-D layers over three spatial axes. In presets and ``--set``
            a mapping of its fields (``--set unet.spacetime.frame_norm=false`` sets one), true
            for its defaults, null for none.
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
    coord_channels: bool = False
    pooled_context: bool = False
    spacetime: SpaceTimeConfig | None = None
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
        self.spacetime = SpaceTimeConfig.parse(self.spacetime)
        check_dataclass(self, "unet", self.RULES)
        if self.spacetime is not None:
            self.spacetime.validate()
            if self.dims != 3:
                raise ConfigError(
                    f"unet.spacetime (the space-time UNet for video [B, C, T, H, W]) needs rank-3 "
                    f"data, got unet.dims={self.dims}; drop it: --set unet.spacetime=null"
                )
        if not self.channel_mult:
            raise ConfigError("unet.channel_mult must list at least one level, got []; e.g. [1,2,2]")
        bad = [i for i in self.attention_levels if i >= len(self.channel_mult)]
        if bad:
            raise ConfigError(
                f"unet.attention_levels {bad} out of range: levels are 0..{len(self.channel_mult) - 1} "
                f"(one per channel_mult entry {list(self.channel_mult)}); drop them or add levels"
            )
