"""Fidelity conditioning: an equivariant linear layer whose scalar outputs depend on the fidelity.

SevenNet-MF appends the one-hot fidelity to the scalar inputs of the self-interaction and readout
linear layers. For a linear layer, the one-hot's weights contribute exactly one learned vector per
fidelity to the scalar (0e) outputs, so this layer adds ``bias[fidelity]`` to them: the same function,
at the cost of a gather. Vectors and tensors receive no bias, which keeps the layer equivariant.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from universal_mfp.model.fused import FusedLinear


class FidelityLinear(nn.Module):
    """``o3.Linear`` plus a per-fidelity vector added to the scalar (0e) output channels.

    Built with ``num_fidelities=1`` it is shared by all fidelities: its one bias row is added to every node
    whatever the node's fidelity.
    """

    def __init__(self, irreps_in: o3.Irreps | str, irreps_out: o3.Irreps | str, num_fidelities: int) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.linear = o3.Linear(self.irreps_in, self.irreps_out)
        self.fused = FusedLinear(self.linear)  # the same function in fewer operations; ``linear`` keeps the weights
        scalar_channels = []
        for (mul, ir), span in zip(self.irreps_out, self.irreps_out.slices(), strict=True):
            if ir == o3.Irrep("0e"):
                scalar_channels.extend(range(span.start, span.start + mul))
        self.register_buffer("scalar_channels", torch.tensor(scalar_channels, dtype=torch.long), persistent=False)
        fan_in = sum(mul for mul, ir in self.irreps_in if ir == o3.Irrep("0e")) + num_fidelities
        # Initialised like the one-hot's weights in a layer with the one-hot appended to its inputs.
        self.fidelity_bias = nn.Parameter(torch.randn(num_fidelities, len(scalar_channels)) / math.sqrt(fan_in))

    def forward(self, features: torch.Tensor, node_fidelity: torch.Tensor) -> torch.Tensor:
        """Apply the layer to [N, irreps_in.dim] features with per-node fidelity indices [N]."""
        out = self.fused(features, self.linear.weight)
        if self.scalar_channels.numel() == 0:
            return out
        rows = self.fidelity_bias
        bias = rows.expand(out.shape[0], -1) if rows.shape[0] == 1 else rows[node_fidelity]
        return out.index_add(1, self.scalar_channels, bias)


class FidelityDense(nn.Module):
    """A dense layer on scalar features with its own weights and bias per fidelity (a readout head each).

    The weights of every fidelity start equal (one random draw), so the heads differ at first only by their
    biases, like a ``FidelityLinear``, and move apart only as each fidelity's data (or a prior) asks.
    """

    def __init__(self, in_features: int, out_features: int, num_fidelities: int) -> None:
        super().__init__()
        self.in_features = in_features
        weight = torch.randn(in_features, out_features)
        self.fidelity_weight = nn.Parameter(weight.expand(num_fidelities, -1, -1).clone())
        self.fidelity_bias = nn.Parameter(
            torch.randn(num_fidelities, out_features) / math.sqrt(in_features + num_fidelities)
        )

    def forward(self, features: torch.Tensor, node_fidelity: torch.Tensor) -> torch.Tensor:
        """Apply each node's fidelity head to [N, in_features] features; returns [N, out_features]."""
        # one product per head over all nodes: a head's output does not depend on how many heads there are
        first = node_fidelity[:1]
        if first.numel() and bool((node_fidelity == first).all()):  # one fidelity (a calculator's call): its head
            head = int(first)
            return features @ self.fidelity_weight[head] / math.sqrt(self.in_features) + self.fidelity_bias[head]
        every_head = torch.stack([features @ weight for weight in self.fidelity_weight]) / math.sqrt(self.in_features)
        nodes = torch.arange(features.shape[0], device=features.device)
        return every_head[node_fidelity, nodes] + self.fidelity_bias[node_fidelity]
