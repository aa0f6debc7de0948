"""Memory-lean messages for evaluation: keep only the inputs, recompute per-edge work in the backward pass.

With plain autograd, every layer keeps its per-edge intermediates (gathered inputs, weighted inputs,
couplings: a few thousand numbers per edge) until the force backward pass. Here the forward pass keeps
only its inputs, and both passes work through the edges in chunks whose temporaries stay small (a few
MB), so memory is dominated by the per-edge weights the layer receives, and large structures do not
pay for fresh memory pages on every large temporary. The gradients are written out by hand, from the
same formulas as ``ChannelwiseTensorProduct.forward``; the backward pass is not itself differentiable
(it raises under ``create_graph=True``), so training with forces in the loss uses the plain autograd path.
"""

from __future__ import annotations

from typing import Any

import torch

from universal_mfp.model.channelwise_layout import MessageLayout, channels_last

# numbers per chunk temporary (about 8 MB in float32): small enough to be recycled by the allocator
_CHUNK_NUMBERS = 1 << 21


def _chunk_size(width: int, num_paths: int, dim_in: int, mul: int) -> int:
    per_edge = max(width * mul, num_paths * dim_in * mul, width * num_paths * dim_in)
    return max(16, _CHUNK_NUMBERS // per_edge)


class _RecomputedMessages(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        features: torch.Tensor,
        edge_harmonics: torch.Tensor,
        weights: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
        tp: MessageLayout,
    ) -> torch.Tensor:
        ctx.tp = tp
        ctx.save_for_backward(features, edge_harmonics, weights, centre, neighbour)
        num_nodes, num_edges = features.shape[0], edge_harmonics.shape[0]
        summed = []
        weight_start = 0
        for index, block in enumerate(tp.blocks):
            u, d1, p, width = block.mul, block.dim_in, block.num_paths, block.width
            x_nodes = channels_last(features, block).contiguous()
            matrix = tp.coupling(index, edge_harmonics.dtype)
            block_sum = features.new_zeros(num_nodes, width * u)
            step = _chunk_size(width, p, d1, u)
            for start in range(0, num_edges, step):
                rows = slice(start, start + step)
                x = x_nodes.index_select(0, neighbour[rows])
                count = x.shape[0]
                w = weights[rows, weight_start : weight_start + p * u].reshape(count, p, 1, u)
                weighted = (w * x.unsqueeze(1)).reshape(count, p * d1, u)
                coupling = (edge_harmonics[rows] @ matrix).reshape(count, width, p * d1)
                block_sum.index_add_(0, centre[rows], torch.bmm(coupling, weighted).reshape(count, width * u))
            summed.append(block_sum.reshape(num_nodes, width, u))
            weight_start += p * u
        return tp.arrange(summed)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: these gradients would be differentiated again
            raise RuntimeError(
                "the memory-lean message pass (recompute=True) is not twice differentiable; "
                "use recompute=False when derivatives are taken with create_graph=True"
            )

        tp = ctx.tp
        features, edge_harmonics, weights, centre, neighbour = ctx.saved_tensors
        need_x, need_sh, need_w = ctx.needs_input_grad[:3]
        num_nodes, num_edges = features.shape[0], edge_harmonics.shape[0]
        grad_x = torch.zeros_like(features) if need_x else None
        grad_sh = torch.zeros_like(edge_harmonics) if need_sh else None
        grad_w = torch.empty_like(weights) if need_w else None  # every column is written below
        grad_out = grad_out.contiguous()
        weight_start = 0
        for index, block in enumerate(tp.blocks):
            u, d1, p, width = block.mul, block.dim_in, block.num_paths, block.width
            columns = slice(weight_start, weight_start + p * u)
            weight_start += p * u
            grad_sum = tp.block_gradient(grad_out, block)  # [N, K, u]
            x_nodes = channels_last(features, block).contiguous()
            grad_x_nodes = torch.zeros_like(x_nodes) if need_x else None
            matrix = tp.coupling(index, edge_harmonics.dtype)
            step = _chunk_size(width, p, d1, u)
            for start in range(0, num_edges, step):
                rows = slice(start, start + step)
                neighbours = neighbour[rows]
                x = x_nodes.index_select(0, neighbours)
                count = x.shape[0]
                w = weights[rows, columns].reshape(count, p, 1, u)
                grad_messages = grad_sum.index_select(0, centre[rows])  # [C, K, u]
                if need_sh:
                    weighted = (w * x.unsqueeze(1)).reshape(count, p * d1, u)
                    grad_coupling = torch.bmm(grad_messages, weighted.transpose(1, 2)).reshape(count, -1)
                    grad_sh[rows] += grad_coupling @ matrix.T
                if need_w or need_x:
                    coupling = (edge_harmonics[rows] @ matrix).reshape(count, width, p * d1)
                    grad_weighted = torch.bmm(coupling.transpose(1, 2), grad_messages).reshape(count, p, d1, u)
                    if need_w:
                        grad_w[rows, columns] = (grad_weighted * x.unsqueeze(1)).sum(2).reshape(count, p * u)
                    if need_x:
                        grad_x_nodes.index_add_(0, neighbours, (grad_weighted * w).sum(1))
            if need_x:
                grad_x[:, block.in_start : block.in_start + u * d1] = grad_x_nodes.transpose(1, 2).reshape(
                    num_nodes, u * d1
                )
        return grad_x, grad_sh, grad_w, None, None, None


def recomputed_messages(
    tp: MessageLayout,
    features: torch.Tensor,
    edge_harmonics: torch.Tensor,
    weights: torch.Tensor,
    centre: torch.Tensor,
    neighbour: torch.Tensor,
) -> torch.Tensor:
    """``tp(features, edge_harmonics, weights, centre, neighbour)`` with the memory-lean backward pass."""
    return _RecomputedMessages.apply(features, edge_harmonics, weights, centre, neighbour, tp)
