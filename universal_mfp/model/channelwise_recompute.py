"""Memory-lean messages for evaluation: keep only the inputs, recompute per-edge work in the backward pass.

With plain autograd, every layer keeps its per-edge intermediates (radial-network activations, per-edge
weights, gathered inputs, weighted inputs, couplings: a few thousand numbers per edge) until the force
backward pass. Here the forward pass keeps only its inputs: node features, edge harmonics and either the
per-edge weights or, better, the radial features the weights are computed from (``radial_mlp``). Both passes
work through the edges in chunks whose temporaries stay small (a few MB): each chunk computes its weights
from the radial network, its messages for every block of paths, and in the backward pass the gradients of all
of them, so no tensor of [edges, weights] or [edges, messages] is ever whole, and large structures do not pay
for fresh memory pages on every large temporary. The gradients are written out by hand, from the same
formulas as ``ChannelwiseTensorProduct.forward`` and the radial network; the backward pass is not itself
differentiable (it raises under ``create_graph=True``), so training with forces in the loss uses the plain
autograd path.
"""

from __future__ import annotations

from typing import Any

import torch

from universal_mfp.model import radial_mlp
from universal_mfp.model.channelwise_layout import Block, MessageLayout, split_columns

# numbers per chunk temporary (about 4 MB in float32): small enough to be recycled by the allocator
_CHUNK_NUMBERS = 1 << 20


def _chunk_size(blocks: tuple[Block, ...], widths: list[int]) -> int:
    """Edges per chunk: the largest per-edge temporary of any block or radial layer fits ``_CHUNK_NUMBERS``."""
    per_edge = max(
        [max(b.width * b.mul, b.num_paths * b.dim_in * b.mul, b.width * b.num_paths * b.dim_in) for b in blocks]
        + widths
    )
    return max(16, _CHUNK_NUMBERS // per_edge)


def _couple(coupling: torch.Tensor, weighted: torch.Tensor, width: int) -> torch.Tensor:
    """Messages [C, K u] from couplings [C, K P d1] and weighted inputs [C, P d1, u].

    A block with one output component (every path ends in a scalar) is a weighted sum over ``P d1``: done
    elementwise, as a batch of 1-row matrix products costs several times more.
    """
    count, depth, u = weighted.shape
    if width == 1:
        if depth == 1:
            return (coupling * weighted.view(count, u)).view(count, u)
        return (coupling.unsqueeze(-1) * weighted).sum(1)
    return torch.bmm(coupling.view(count, width, depth), weighted).view(count, width * u)


def _coupling_gradient(grad_messages: torch.Tensor, weighted: torch.Tensor) -> torch.Tensor:
    """Gradient [C, K P d1] of the couplings, from the message gradients [C, K, u] and weighted inputs."""
    count, width, _ = grad_messages.shape
    if width == 1:
        return (grad_messages * weighted).sum(-1)
    return torch.bmm(grad_messages, weighted.transpose(1, 2)).view(count, -1)


def _weighted_gradient(coupling: torch.Tensor, grad_messages: torch.Tensor) -> torch.Tensor:
    """Gradient [C, P d1, u] of the weighted inputs, from the couplings [C, K P d1] and message gradients."""
    count, width, _ = grad_messages.shape
    if width == 1:
        return coupling.unsqueeze(-1) * grad_messages
    return torch.bmm(coupling.view(count, width, -1).transpose(1, 2), grad_messages)


def _block_inputs(
    block: Block,
    x_block: torch.Tensor,
    matrix: torch.Tensor,
    weights: torch.Tensor,
    harmonics: torch.Tensor,
    senders: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One block's per-edge work on one chunk: gathered inputs, weighted inputs [C, P d1, u] and couplings."""
    u, d1, p = block.mul, block.dim_in, block.num_paths
    count = weights.shape[0]
    x = x_block.index_select(0, senders).view(count, 1, d1, u)
    w = weights[:, block.weight_start : block.weight_start + p * u].reshape(count, p, 1, u)
    return x, (w * x).reshape(count, p * d1, u), harmonics @ matrix


class _RecomputedMessages(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        features: torch.Tensor,
        edge_harmonics: torch.Tensor,
        edge_inputs: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
        tp: MessageLayout,
        *matrices: torch.Tensor,
    ) -> torch.Tensor:
        ctx.tp = tp
        ctx.save_for_backward(features, edge_harmonics, edge_inputs, centre, neighbour, *matrices)
        matrices_list = list(matrices)
        num_nodes, num_edges = features.shape[0], edge_harmonics.shape[0]
        blocks = tp.blocks
        in_sizes = [b.dim_in * b.mul for b in blocks]
        x_blocks = split_columns(tp.inputs_by_block(features), in_sizes)
        couplings = [tp.coupling(index, edge_harmonics.dtype) for index in range(len(blocks))]
        sums = [features.new_zeros(num_nodes, b.width * b.mul) for b in blocks]
        step = _chunk_size(blocks, [m.shape[1] for m in matrices])
        keep = num_edges <= step and any(ctx.needs_input_grad)  # one chunk: keep its work rather than redo it
        ctx.kept = None
        for start in range(0, num_edges, step):
            rows = slice(start, start + step)
            harmonics, senders, receivers = edge_harmonics[rows], neighbour[rows], centre[rows]
            weights, pre_activations = radial_mlp.forward_chunk(edge_inputs[rows], matrices_list)
            kept = []
            for index, block in enumerate(blocks):
                work = _block_inputs(block, x_blocks[index], couplings[index], weights, harmonics, senders)
                sums[index].index_add_(0, receivers, _couple(work[2], work[1], block.width))
                if keep:
                    kept.append(work)
            if keep:
                ctx.kept = (weights, pre_activations, kept)
        return tp.output_from_blocks(torch.cat(sums, dim=1) if len(sums) > 1 else sums[0])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: these gradients would be differentiated again
            raise RuntimeError(
                "the memory-lean message pass (recompute=True) is not twice differentiable; "
                "use recompute=False when derivatives are taken with create_graph=True"
            )

        tp = ctx.tp
        features, edge_harmonics, edge_inputs, centre, neighbour, *matrices = ctx.saved_tensors
        saved, ctx.kept = ctx.kept, None
        need_x, need_sh, need_inputs = ctx.needs_input_grad[:3]
        need_matrices = any(ctx.needs_input_grad[6:])
        num_nodes, num_edges = features.shape[0], edge_harmonics.shape[0]
        blocks = tp.blocks
        grad_sh = torch.zeros_like(edge_harmonics) if need_sh else None
        grad_inputs = torch.empty_like(edge_inputs) if need_inputs else None  # every row is written below
        grad_matrices = [torch.zeros_like(m) for m in matrices] if need_matrices else None
        need_w = need_inputs or need_matrices
        in_sizes = [b.dim_in * b.mul for b in blocks]
        x_blocks = [] if saved is not None else split_columns(tp.inputs_by_block(features), in_sizes)
        grad_x_blocks = [features.new_zeros(num_nodes, size) for size in in_sizes] if need_x else None
        out_sizes = [b.width * b.mul for b in blocks]
        grad_blocks = split_columns(tp.output_gradient_by_block(grad_out), out_sizes)
        couplings = [tp.coupling(index, edge_harmonics.dtype) for index in range(len(blocks))]
        step = _chunk_size(blocks, [m.shape[1] for m in matrices])
        for start in range(0, num_edges, step):
            rows = slice(start, start + step)
            inputs, receivers, senders = edge_inputs[rows], centre[rows], neighbour[rows]
            if saved is None:
                weights, pre_activations = radial_mlp.forward_chunk(inputs, matrices)
            else:
                weights, pre_activations, kept = saved
            count = weights.shape[0]
            grad_weights = torch.empty_like(weights) if need_w else None
            for index, block in enumerate(blocks):
                u, d1, p, width = block.mul, block.dim_in, block.num_paths, block.width
                columns = slice(block.weight_start, block.weight_start + p * u)
                if saved is None:
                    x, weighted, coupling = _block_inputs(
                        block, x_blocks[index], couplings[index], weights, edge_harmonics[rows], senders
                    )
                else:
                    x, weighted, coupling = kept[index]
                grad_messages = grad_blocks[index].index_select(0, receivers).view(count, width, u)
                if need_sh:
                    grad_sh[rows] += _coupling_gradient(grad_messages, weighted) @ couplings[index].T
                if need_w or need_x:
                    grad_weighted = _weighted_gradient(coupling, grad_messages).view(count, p, d1, u)
                    if need_w:
                        grad_w = grad_weighted * x
                        grad_weights[:, columns] = (grad_w if d1 == 1 else grad_w.sum(2)).reshape(count, p * u)
                    if need_x:
                        w = weights[:, columns].reshape(count, p, 1, u)
                        grad_x_blocks[index].index_add_(0, senders, (grad_weighted * w).sum(1).view(count, d1 * u))
            if need_w:
                grad_chunk = radial_mlp.backward_chunk(
                    grad_weights, inputs, pre_activations, matrices, grad_matrices, need_inputs
                )
                if need_inputs:
                    grad_inputs[rows] = grad_chunk
        grad_features = None
        if need_x:
            grad_features = tp.input_gradient(torch.cat(grad_x_blocks, dim=1) if len(blocks) > 1 else grad_x_blocks[0])
        return grad_features, grad_sh, grad_inputs, None, None, None, *(grad_matrices or [None] * len(matrices))


def recomputed_messages(
    tp: MessageLayout,
    features: torch.Tensor,
    edge_harmonics: torch.Tensor,
    edge_inputs: torch.Tensor,
    centre: torch.Tensor,
    neighbour: torch.Tensor,
    radial_matrices: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """``tp(features, edge_harmonics, weights, centre, neighbour)`` with the memory-lean backward pass.

    With ``radial_matrices`` (``radial_mlp.radial_matrices`` of a radial network), ``edge_inputs`` are the
    radial features [E, in] and the per-edge weights are that network's output, computed chunk by chunk;
    without, ``edge_inputs`` are the weights [E, weight_numel] themselves.
    """
    matrices = radial_matrices or []
    return _RecomputedMessages.apply(features, edge_harmonics, edge_inputs, centre, neighbour, tp, *matrices)
