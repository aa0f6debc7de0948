"""Sums over each atom's neighbours of outer products, with a hand-written backward pass, for evaluation.

The angular invariants (``angular.py``) need each atom's moments ``A_i = sum_j w_ij ⊗ Y_ij`` ([K, M] per atom, from
[E, K] weights and [E, M] harmonics). Plain autograd keeps the [E, K, M] products for its backward pass and
reduces them over their short axes, which is slow on CPU; here both passes go through the edges in chunks of a few
MB and the backward gathers the moment gradients once per chunk. Like the memory-lean message pass, the backward
is not itself differentiable: use it for evaluation, not when forces are differentiated again in training.
"""

from __future__ import annotations

from typing import Any

import torch

# numbers per chunk temporary (about 4 MB in float32)
_CHUNK_NUMBERS = 1 << 20


class _NeighbourMoments(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, weights: torch.Tensor, harmonics: torch.Tensor, centre: torch.Tensor, num_nodes: int
    ) -> torch.Tensor:
        ctx.save_for_backward(weights, harmonics, centre)
        num_edges, k = weights.shape
        m = harmonics.shape[1]
        moments = weights.new_zeros(num_nodes, k * m)
        step = max(16, _CHUNK_NUMBERS // (k * m))
        for start in range(0, num_edges, step):
            rows = slice(start, start + step)
            product = weights[rows].unsqueeze(-1) * harmonics[rows].unsqueeze(1)
            moments.index_add_(0, centre[rows], product.view(-1, k * m))
        return moments.view(num_nodes, k, m)

    @staticmethod
    def backward(ctx: Any, grad_moments: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the lean neighbour moments are not twice differentiable; use lean=False when derivatives are "
                "taken with create_graph=True"
            )
        weights, harmonics, centre = ctx.saved_tensors
        need_weights, need_harmonics = ctx.needs_input_grad[:2]
        num_edges, k = weights.shape
        m = harmonics.shape[1]
        grad_flat = grad_moments.reshape(-1, k * m).contiguous()
        grad_weights = torch.empty_like(weights) if need_weights else None
        grad_harmonics = torch.empty_like(harmonics) if need_harmonics else None
        step = max(16, _CHUNK_NUMBERS // (k * m))
        for start in range(0, num_edges, step):
            rows = slice(start, start + step)
            grad = grad_flat.index_select(0, centre[rows]).view(-1, k, m)
            if need_weights:
                grad_weights[rows] = torch.bmm(grad, harmonics[rows].unsqueeze(-1)).view(-1, k)
            if need_harmonics:
                grad_harmonics[rows] = torch.bmm(weights[rows].unsqueeze(1), grad).view(-1, m)
        return grad_weights, grad_harmonics, None, None


def neighbour_moments(
    weights: torch.Tensor, harmonics: torch.Tensor, centre: torch.Tensor, num_nodes: int, *, lean: bool = False
) -> torch.Tensor:
    """``A[i] = sum over edges e with centre i of weights[e] ⊗ harmonics[e]``: [E, K] x [E, M] -> [N, K, M].

    ``lean`` uses the chunked pass with the hand-written backward (first derivatives only); otherwise plain autograd.
    """
    if lean:
        return _NeighbourMoments.apply(weights, harmonics, centre, num_nodes)
    density = weights.unsqueeze(-1) * harmonics.unsqueeze(1)  # [E, K, M]
    moments = density.new_zeros(num_nodes, weights.shape[1], harmonics.shape[1])
    return moments.index_add(0, centre, density)
