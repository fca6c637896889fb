"""Exponential moving average of a model's trainable weights."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * param`` after each optimizer step.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` so early averages are not
    dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        pairs = [
            (self.shadow[name], p.detach()) for name, p in model.named_parameters() if name in self.shadow
        ]
        if not pairs:  # nothing trainable (and _foreach_lerp_ refuses empty lists)
            return
        shadows, params = [s for s, _ in pairs], [p for _, p in pairs]
        # one multi-tensor call instead of a lerp per tensor, as timm's EMA does (1.2-1.3x on the CPU for the
        # peers benchmark's UNets; on CUDA one kernel launch per few hundred tensors)
        torch._foreach_lerp_(shadows, params, 1.0 - d)

    def state_dict(self) -> dict[str, Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}...")
        for name in self.shadow:
            self.shadow[name].copy_(state[name])
