"""Radial basis for edge lengths: Bessel functions times a smooth polynomial cutoff envelope."""

from __future__ import annotations

import math

import torch
from torch import nn


class BesselBasis(nn.Module):
    """``sqrt(2/rc) sin(n π r / rc) / r`` for n = 1..num_basis, with trainable frequencies."""

    def __init__(self, cutoff: float, num_basis: int = 8) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.prefactor = math.sqrt(2.0 / self.cutoff)
        self.frequencies = nn.Parameter(torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        """Map lengths [E] to [E, num_basis]."""
        x = lengths.unsqueeze(-1) / self.cutoff
        return self.prefactor * torch.sin(self.frequencies * x) / lengths.unsqueeze(-1)


class PolynomialCutoff(nn.Module):
    """Envelope that is 1 at r = 0 and goes to 0 at the cutoff with p continuous derivatives."""

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = float(p)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        """Map lengths [E] to envelope values [E] (zero beyond the cutoff)."""
        p = self.p
        x = lengths / self.cutoff
        envelope = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * x.pow(p)
            + p * (p + 2.0) * x.pow(p + 1.0)
            - p * (p + 1.0) / 2.0 * x.pow(p + 2.0)
        )
        return envelope * (x < 1.0).to(lengths.dtype)


class RadialEmbedding(nn.Module):
    """Bessel basis times the cutoff envelope: [E] lengths -> [E, num_basis] smooth edge features."""

    def __init__(self, cutoff: float, num_basis: int, p: int) -> None:
        super().__init__()
        self.basis = BesselBasis(cutoff, num_basis)
        self.envelope = PolynomialCutoff(cutoff, p)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        """Embed edge lengths."""
        return self.basis(lengths) * self.envelope(lengths).unsqueeze(-1)
