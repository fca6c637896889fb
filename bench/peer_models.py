"""The three UNets compared by ``bench/peers.py``, built at matched parameter counts.

polydiff's ``UNet`` is built from a :class:`Setting`'s architecture; diffusers'
``UNet2DModel`` and denoising-diffusion-pytorch's ``Unet`` get the same number of levels,
channel multipliers and head width, and the base width whose parameter count is closest to
polydiff's (it must come within :data:`TOLERANCE`).

Peers are imported inside the builders only: they are benchmark dependencies (the ``bench``
extra), never needed by polydiff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from polydiff.errors import ConfigError
from polydiff.nn.config import UNetConfig
from polydiff.nn.unet import UNet

#: Largest relative difference of parameter counts accepted as "matched".
TOLERANCE = 0.05
#: Names of the contenders, in table order.
NAMES = ("polydiff", "diffusers", "ddpm-pytorch")


@dataclass(frozen=True)
class Setting:
    """One comparison: image size and batch, and polydiff's architecture (unconditional, RGB).

    Attributes:
        name: Short label, e.g. ``"16x16-b64"``.
        size: Image side; inputs are ``[batch, 3, size, size]``.
        batch: Batch size of training steps and of sampling forwards.
        model_channels, channel_mult, num_res_blocks, attention_levels, head_dim, norm_groups:
            polydiff's :class:`~polydiff.nn.config.UNetConfig` fields.
    """

    name: str
    size: int
    batch: int
    model_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (1,)
    head_dim: int = 32
    norm_groups: int = 8

    def unet_config(self) -> UNetConfig:
        return UNetConfig(
            dims=2,
            in_channels=3,
            model_channels=self.model_channels,
            channel_mult=self.channel_mult,
            num_res_blocks=self.num_res_blocks,
            attention_levels=self.attention_levels,
            head_dim=self.head_dim,
            norm_groups=self.norm_groups,
        )


#: CPU settings: the image plugin's ``quick`` UNet at 16x16 (without its text cross-attention), and its
#: ``full`` UNet at 32x32: the sizes of the field notes' diffusers timings (16x16 batch 64, 32x32 batch 32).
#: GPU settings: the ``full`` UNet at batch 128, and a DDPM-CIFAR-like UNet at 64x64 (four levels, two
#: ResNets per level, attention at 16x16 and 8x8), large enough batches to keep a GPU busy.
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "16x16-b64", size=16, batch=64, model_channels=32, channel_mult=(1, 2), attention_levels=(1,)
        ),
        Setting(
            "32x32-b32", size=32, batch=32, model_channels=48, channel_mult=(1, 2, 2), attention_levels=(1, 2)
        ),
        Setting(
            "32x32-b128",
            size=32,
            batch=128,
            model_channels=48,
            channel_mult=(1, 2, 2),
            attention_levels=(1, 2),
        ),
        Setting(
            "64x64-b64",
            size=64,
            batch=64,
            model_channels=64,
            channel_mult=(1, 2, 2, 2),
            num_res_blocks=2,
            attention_levels=(2, 3),
        ),
    )
}
#: The settings measured by default on each device type.
DEFAULT_SETTINGS: dict[str, tuple[str, ...]] = {
    "cpu": ("16x16-b64", "32x32-b32"),
    "cuda": ("32x32-b128", "64x64-b64"),
}


@dataclass
class Contender:
    """A network under test.

    Attributes:
        name: One of :data:`NAMES`.
        model: The module (its parameters are what the optimizer trains).
        forward: ``(x [B, 3, H, W], t [B] int64) -> [B, 3, H, W]`` predicted noise.
        width: Base channel width chosen to match parameter counts.
        attention: Where the network attends, in words.
    """

    name: str
    model: nn.Module
    forward: Callable[[Tensor, Tensor], Tensor]
    width: int
    attention: str
    notes: list[str] = field(default_factory=list)

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def largest_divisor(width: int, at_most: int) -> int:
    """Largest ``g <= at_most`` dividing ``width`` (GroupNorm groups for every level's width)."""
    return next(g for g in range(min(at_most, width), 0, -1) if width % g == 0)


def _levels(setting: Setting, width: int) -> list[int]:
    return [width * m for m in setting.channel_mult]


def _resolutions(setting: Setting, levels: Iterable[int]) -> str:
    return ", ".join(f"{setting.size >> lvl}x{setting.size >> lvl}" for lvl in levels)


def build_polydiff(setting: Setting) -> Contender:
    """polydiff's UNet: a transformer block (self-attention + feed-forward) at ``attention_levels``
    and in the middle block."""
    model = UNet(setting.unet_config())
    last = len(setting.channel_mult) - 1
    attention = (
        f"self-attention + feed-forward blocks at {_resolutions(setting, setting.attention_levels)} "
        f"and in the middle ({_resolutions(setting, [last])})"
    )
    return Contender("polydiff", model, lambda x, t: model(x, t), setting.model_channels, attention)


def build_diffusers(setting: Setting, width: int) -> Contender:
    """diffusers' ``UNet2DModel`` with ``layers_per_block = num_res_blocks`` (so the decoder has one more
    ResNet per level, like polydiff) and ``Attn*Block2D`` at the same levels."""
    from diffusers import UNet2DModel

    n = len(setting.channel_mult)
    down = tuple("AttnDownBlock2D" if i in setting.attention_levels else "DownBlock2D" for i in range(n))
    up = tuple("AttnUpBlock2D" if i in setting.attention_levels else "UpBlock2D" for i in reversed(range(n)))
    model = UNet2DModel(
        sample_size=setting.size,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(_levels(setting, width)),
        layers_per_block=setting.num_res_blocks,
        down_block_types=down,
        up_block_types=up,
        attention_head_dim=setting.head_dim,
        norm_num_groups=largest_divisor(width, setting.norm_groups),
    )
    attention = (
        f"self-attention (no feed-forward) after each ResNet at "
        f"{_resolutions(setting, setting.attention_levels)} and in the middle"
    )
    return Contender("diffusers", model, lambda x, t: model(x, t).sample, width, attention)


def build_ddpm_pytorch(setting: Setting, width: int) -> Contender:
    """denoising-diffusion-pytorch's ``Unet``: full attention at ``attention_levels`` and in the middle,
    linear attention at the other levels (it has attention at every level), SDPA kernels
    (``flash_attn=True``), two ResNets per level in both halves.

    On a GPU of compute capability above 8.0 its ``Attend`` restricts SDPA to the flash kernel, which
    has no float32 version (float32 inputs fail with "No available kernel"); every ``Attend`` gets its
    CPU backend list instead (flash, math, memory-efficient), so SDPA picks a kernel as it does for
    polydiff and diffusers.
    """
    from denoising_diffusion_pytorch import Unet
    from denoising_diffusion_pytorch.attend import Attend

    widths = _levels(setting, width)
    heads = tuple(max(1, w // setting.head_dim) for w in widths)
    full = tuple(i in setting.attention_levels for i in range(len(widths)))
    model = Unet(
        dim=width,
        dim_mults=setting.channel_mult,
        channels=3,
        attn_dim_head=setting.head_dim,
        attn_heads=heads,
        full_attn=full,
        flash_attn=True,
    )
    for module in model.modules():
        if isinstance(module, Attend) and module.cuda_config is not None:
            module.cuda_config = module.cpu_config
    linear = [i for i in range(len(widths)) if not full[i]]
    attention = f"full attention at {_resolutions(setting, setting.attention_levels)} and in the middle"
    if linear:
        attention += f", linear attention at {_resolutions(setting, linear)}"
    return Contender("ddpm-pytorch", model, lambda x, t: model(x, t), width, attention)


def match_width(
    build: Callable[[int], nn.Module], target: int, widths: Iterable[int] = range(8, 257, 4)
) -> tuple[int, int]:
    """The width in ``widths`` whose ``build(width)`` has the parameter count closest to ``target``.

    Parameter counts must grow with the width (``widths`` ascending): the two widths around ``target``
    are found by bisection. The candidates are built on the ``meta`` device (shapes only, no memory,
    no initialisation). Returns ``(width, parameters)``; raises :class:`~polydiff.errors.ConfigError`
    when even the best one is more than :data:`TOLERANCE` away.
    """
    candidates = list(widths)
    counts: dict[int, int] = {}

    def count(i: int) -> int:
        if i not in counts:
            with torch.device("meta"):
                counts[i] = count_parameters(build(candidates[i]))
        return counts[i]

    lo, hi = 0, len(candidates)  # first index whose count reaches the target lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < target else (lo, mid)
    near = [i for i in (lo - 1, lo) if 0 <= i < len(candidates)]
    best = min(((candidates[i], count(i)) for i in near), key=lambda wn: abs(wn[1] - target), default=None)
    if best is None or abs(best[1] - target) > TOLERANCE * target:
        found = "nothing" if best is None else f"{best[1]:,} parameters at width {best[0]}"
        raise ConfigError(
            f"no width matches {target:,} parameters within {TOLERANCE:.0%} (closest: {found}); "
            f"change the Setting's model_channels."
        )
    return best


#: Each peer's builder and the package it needs (see ``pip install -e '.[bench]'``).
PEERS: dict[str, tuple[Callable[[Setting, int], Contender], str]] = {
    "diffusers": (build_diffusers, "diffusers"),
    "ddpm-pytorch": (build_ddpm_pytorch, "denoising_diffusion_pytorch"),
}


def build_contenders(setting: Setting, log: Callable[[str], object] = print) -> list[Contender]:
    """polydiff and the peers at matched parameter counts, in :data:`NAMES` order.

    A peer whose package cannot be imported is left out, with a note through ``log``.
    """
    ours = build_polydiff(setting)
    target = ours.num_parameters
    # widths from the smallest giving every attention level at least one whole head
    narrowest = min((setting.channel_mult[i] for i in setting.attention_levels), default=1)
    widths = range(max(8, -(-setting.head_dim // narrowest)), 257, 4)
    contenders = [ours]
    for name, (build, package) in PEERS.items():
        try:
            __import__(package)
        except ImportError as e:
            log(f"  skipping {name}: cannot import {package} ({e}); pip install -e '.[bench]'")
            continue
        width, _ = match_width(lambda w, build=build: build(setting, w).model, target, widths)
        contenders.append(build(setting, width))
    return contenders
