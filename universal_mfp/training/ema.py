"""Exponential moving average of model parameters."""

from __future__ import annotations

import torch
from torch import nn


class ExponentialMovingAverage:
    """Shadow copies of the trainable parameters: ``s <- d s + (1 - d) p`` after every step.

    The effective decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages
    are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current parameters into the average."""
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        for name, param in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].mul_(d).add_(param.detach(), alpha=1.0 - d)

    @torch.no_grad()
    def swap_into(self, model: nn.Module) -> None:
        """Exchange the model's parameters with the averages (call twice to restore)."""
        for name, param in model.named_parameters():
            if name in self.shadow:
                current = param.detach().clone()
                param.copy_(self.shadow[name])
                self.shadow[name].copy_(current)
