"""The radial network of an interaction layer as plain matrices, evaluated and differentiated by hand in chunks.

An e3nn ``FullyConnectedNet`` with a SiLU activation and no biases computes, for edge features ``R``,

    h_1 = c silu(R W_0 / sqrt(n_0)),  h_{k+1} = c silu(h_k W_k / sqrt(n_k)),  w = h_L W_L / sqrt(n_L),

with ``c`` e3nn's second-moment normalisation of SiLU and ``n_k`` the input width of layer k. Folding the
constants into the matrices, ``A_0 = W_0 / sqrt(n_0)`` and ``A_k = c W_k / sqrt(n_k)`` for k >= 1, it is

    w = silu(... silu(R A_0) ...) A_L,

the same function up to float32 round-off. ``radial_matrices`` builds the ``A_k`` from the network's weights
(differentiably, so parameter gradients still reach the weights); ``forward_chunk`` and ``backward_chunk``
evaluate and differentiate that product on one chunk of edges. The memory-lean message pass uses them to
compute each chunk's per-edge weights where it needs them, so the [edges, weights] tensor (the largest per-edge
tensor of an evaluation) never exists whole.
"""

from __future__ import annotations

import torch
from e3nn.nn import FullyConnectedNet


def radial_matrices(network: FullyConnectedNet) -> list[torch.Tensor]:
    """The folded matrices ``A_0 .. A_L`` of ``network``: the network is ``silu(... silu(R A_0) ...) A_L``.

    Raises:
        ValueError: if a hidden layer's activation is not e3nn's normalised SiLU or the output layer has one.
    """
    layers = list(network)
    matrices, carried = [], 1.0  # carried: the factor the previous layer's output was multiplied by
    for k, layer in enumerate(layers):
        last = k == len(layers) - 1
        act = layer.act
        if last:
            if act is not None:
                raise ValueError("the radial network's output layer must have no activation")
            scale = carried / (layer.h_in * layer.var_in / layer.var_out) ** 0.5
        else:
            if getattr(act, "f", None) is not torch.nn.functional.silu:
                raise ValueError(f"the radial network's hidden layers must use SiLU, got {act!r}")
            scale = carried / (layer.h_in * layer.var_in) ** 0.5
            carried = (1.0 if act._is_id else act.cst) * layer.var_out**0.5
        matrices.append(layer.weight * scale)
    return matrices


def forward_chunk(inputs: torch.Tensor, matrices: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``silu(... silu(inputs A_0) ...) A_L`` and the pre-activations of the hidden layers (for the backward)."""
    hidden, pre_activations = inputs, []
    for matrix in matrices[:-1]:
        pre = hidden @ matrix
        pre_activations.append(pre)
        hidden = torch.nn.functional.silu(pre)
    return (hidden @ matrices[-1] if matrices else hidden), pre_activations


def backward_chunk(
    grad_out: torch.Tensor,
    inputs: torch.Tensor,
    pre_activations: list[torch.Tensor],
    matrices: list[torch.Tensor],
    grad_matrices: list[torch.Tensor] | None,
    need_inputs: bool,
) -> torch.Tensor | None:
    """Back-propagate ``grad_out`` [C, out] through ``forward_chunk``.

    Adds each matrix's gradient into ``grad_matrices`` (when given) and returns the inputs' gradient
    [C, in] (when ``need_inputs``).
    """
    grad = grad_out
    for k in range(len(matrices) - 1, -1, -1):
        if grad_matrices is not None:
            layer_input = torch.nn.functional.silu(pre_activations[k - 1]) if k > 0 else inputs
            grad_matrices[k] += layer_input.T @ grad
        if k == 0 and not need_inputs:
            return None
        grad = grad @ matrices[k].T
        if k > 0:
            pre = pre_activations[k - 1]
            sigmoid = torch.sigmoid(pre)
            grad = grad * (sigmoid * (1.0 + pre * (1.0 - sigmoid)))
    return grad
