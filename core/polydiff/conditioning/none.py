"""The null conditioner: unconditional generation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from polydiff.interfaces import Conditioner, Conditioning, SamplingPlan


class NullConditioner(Conditioner):
    """Gives the UNet nothing; prompts are ignored (kept only as labels)."""

    def forward(self, batch: dict[str, Any], x0: Tensor, *, drop: Tensor | None = None) -> Conditioning:
        return Conditioning()

    def plan(self, prompts: Sequence[str], shape: tuple[int, ...]) -> SamplingPlan:
        return SamplingPlan(cond=Conditioning(), uncond=None, shape=tuple(shape))
