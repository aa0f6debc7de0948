"""Edge messages of an interaction layer: gather, channel-wise ('uvu') tensor product, scatter-sum.

``ChannelwiseTensorProduct`` computes exactly what ``e3nn.o3.TensorProduct`` (every instruction ``'uvu'``
with per-edge weights, second input of multiplicity one) followed by a sum over each node's edges
computes, in fewer and larger operations:

* node features are handled channels-last (``[.., 2l+1, u]``), so every per-edge operation runs over
  contiguous channels;
* all paths that start from the same input irrep are done together: the inputs are multiplied by the
  weights of each path (``[E, P, 2l1+1, u]``), the Clebsch-Gordan coefficients (times e3nn's path
  normalisation) of those paths form one constant block-diagonal matrix, so one matrix product with
  the edge harmonics gives the per-edge coupling ``[E, K, P (2l1+1)]`` and one batched matrix product
  gives every message of those paths; one ``index_add`` then sums them on their centre atoms;
* the rearrangements from e3nn's layouts and back are one column gather each, on nodes (after the sum), not on
  edges;
* autograd keeps the gathered inputs, the weighted inputs and the small coupling per edge, never the
  messages themselves.

It holds no parameters and only non-persistent buffers, so a model's ``state_dict`` does not change.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from universal_mfp.model.channelwise_layout import Block, split_columns
from universal_mfp.model.channelwise_recompute import recomputed_messages


class ChannelwiseTensorProduct(nn.Module):
    """Sum over edges of ``TP(x[neighbour], Y_edge; w_edge)`` for a channel-wise e3nn ``TensorProduct``.

    Args:
        tensor_product: an ``o3.TensorProduct`` whose instructions are all ``'uvu'`` with weights, with
            unshared (per-edge) weights and multiplicity-one irreps in its second input. Only its irreps,
            instructions and path normalisation are read.
    """

    def __init__(self, tensor_product: o3.TensorProduct) -> None:
        super().__init__()
        tp = tensor_product
        if tp.shared_weights or any(mul != 1 for mul, _ in tp.irreps_in2):
            raise ValueError("expected per-edge weights and multiplicity-one edge irreps")
        if any(ins.connection_mode != "uvu" or not ins.has_weight for ins in tp.instructions):
            raise ValueError("every instruction must be a weighted 'uvu' path")
        self.irreps_in = tp.irreps_in1
        self.irreps_out = tp.irreps_out
        self.weight_numel = tp.weight_numel
        dim_sh = tp.irreps_in2.dim
        in_starts = [s.start for s in tp.irreps_in1.slices()]
        sh_slices = tp.irreps_in2.slices()

        weight_starts, offset = [], 0
        for ins in tp.instructions:
            weight_starts.append(offset)
            offset += tp.irreps_in1[ins.i_in1].mul * tp.irreps_in2[ins.i_in2].mul

        covered = [0] * len(tp.irreps_out)
        blocks = []
        for a, (mul, ir_in) in enumerate(tp.irreps_in1):
            paths = [(k, ins) for k, ins in enumerate(tp.instructions) if ins.i_in1 == a]
            if not paths:
                continue
            starts = [weight_starts[k] for k, _ in paths]
            if starts != list(range(starts[0], starts[0] + mul * len(paths), mul)):
                raise ValueError("the paths of one input irrep must have contiguous weights")
            dims_out = [tp.irreps_out[ins.i_out].ir.dim for _, ins in paths]
            width = sum(dims_out)
            d1 = ir_in.dim
            coupling = torch.zeros(dim_sh, width, len(paths), d1, dtype=torch.float64)
            outputs, k0 = [], 0
            for q, (_, ins) in enumerate(paths):
                l2, l3 = tp.irreps_in2[ins.i_in2].ir.l, tp.irreps_out[ins.i_out].ir.l
                w3j = o3.wigner_3j(ir_in.l, l2, l3, dtype=torch.float64) * ins.path_weight  # [i, j, k]
                coupling[sh_slices[ins.i_in2], k0 : k0 + dims_out[q], q, :] = w3j.permute(1, 2, 0)
                outputs.append((ins.i_out, k0, dims_out[q]))
                covered[ins.i_out] += 1
                k0 += dims_out[q]
            self.register_buffer(f"coupling_{len(blocks)}", coupling.reshape(dim_sh, -1), persistent=False)
            blocks.append(Block(in_starts[a], mul, d1, len(paths), starts[0], width, tuple(outputs)))
        if any(c != 1 for c, (mul, _) in zip(covered, tp.irreps_out, strict=True) if mul > 0):
            raise ValueError("every output irrep must be written by exactly one path")
        self._blocks = tuple(blocks)
        self._out_slices = tuple(self.irreps_out.slices())
        # the lean pass keeps every block's inputs [N, d1 u] and sums [N, K u] side by side in one matrix each;
        # these column orders move between those matrices and e3nn's layouts in one gather each
        input_order, output_order = [], []
        for block in blocks:
            columns = torch.arange(block.in_start, block.in_start + block.mul * block.dim_in)
            input_order.append(columns.reshape(block.mul, block.dim_in).T.reshape(-1))
            output_order.append(self._block_output_columns(block))
        inputs = torch.cat(input_order) if input_order else torch.zeros(0, dtype=torch.long)
        outputs = torch.cat(output_order) if output_order else torch.zeros(0, dtype=torch.long)
        self.register_buffer("input_order", inputs, persistent=False)
        self.register_buffer("output_order", torch.argsort(outputs), persistent=False)
        self.register_buffer("output_gradient_order", outputs, persistent=False)
        self.input_dim = tp.irreps_in1.dim

    def _block_output_columns(self, block: Block) -> torch.Tensor:
        """For each entry of the block's sum [K, u], its column in e3nn's output layout."""
        columns = torch.zeros(block.width, block.mul, dtype=torch.long)
        for i_out, k0, d3 in block.outputs:
            start = self._out_slices[i_out].start
            columns[k0 : k0 + d3] = torch.arange(start, start + block.mul * d3).reshape(block.mul, d3).T
        return columns.reshape(-1)

    def inputs_by_block(self, features: torch.Tensor) -> torch.Tensor:
        """Node features [N, irreps_in.dim] -> every block's input [N, 2 l1 + 1, u], flat, side by side."""
        return features.index_select(1, self.input_order)

    def input_gradient(self, grad_by_block: torch.Tensor) -> torch.Tensor:
        """The inverse of ``inputs_by_block`` for gradients (zero on inputs no path reads)."""
        grad = grad_by_block.new_zeros(grad_by_block.shape[0], self.input_dim)
        return grad.index_copy_(1, self.input_order, grad_by_block)

    def output_from_blocks(self, sums: torch.Tensor) -> torch.Tensor:
        """Every block's node sums [N, K, u], flat and side by side -> [N, irreps_out.dim] in e3nn's layout."""
        return sums.index_select(1, self.output_order)

    def output_gradient_by_block(self, grad: torch.Tensor) -> torch.Tensor:
        """The inverse of ``output_from_blocks``: [N, irreps_out.dim] -> every block's [N, K, u], side by side."""
        return grad.index_select(1, self.output_gradient_order)

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The groups of paths, one per input irrep that has paths."""
        return self._blocks

    def coupling(self, index: int, dtype: torch.dtype) -> torch.Tensor:
        """Constant [dim_sh, K * P * (2 l1 + 1)] matrix of block ``index``: edge harmonics -> coupling."""
        return getattr(self, f"coupling_{index}").to(dtype)

    def forward(
        self,
        features: torch.Tensor,
        edge_harmonics: torch.Tensor,
        weights: torch.Tensor,
        centre: torch.Tensor,
        neighbour: torch.Tensor,
        *,
        recompute: bool = False,
    ) -> torch.Tensor:
        """Messages summed on their centre atom.

        Args:
            features: node features [N, irreps_in.dim].
            edge_harmonics: [E, irreps_in2.dim] spherical harmonics of the edge directions.
            weights: [E, weight_numel] per-edge path weights (e3nn's layout).
            centre: [E] atom receiving each message.
            neighbour: [E] atom sending it.
            recompute: keep only the inputs for the backward pass and recompute the per-edge
                intermediates there, in chunks of edges (much less memory, faster for large
                structures). Its backward pass cannot itself be differentiated: use it only when the
                derivatives are not needed with ``create_graph=True``.

        Returns:
            [N, irreps_out.dim]: ``Σ_{edges e of i} TP(features[neighbour_e], Y_e; w_e)`` in e3nn's layout.
        """
        if recompute:
            return recomputed_messages(self, features, edge_harmonics, weights, centre, neighbour)
        num_nodes, num_edges = features.shape[0], edge_harmonics.shape[0]
        inputs = split_columns(self.inputs_by_block(features), [b.dim_in * b.mul for b in self._blocks])
        block_weights = weights.split([block.num_paths * block.mul for block in self._blocks], dim=1)
        sums = []
        for index, (block, x_block, w) in enumerate(zip(self._blocks, inputs, block_weights, strict=True)):
            u, d1, p, width = block.mul, block.dim_in, block.num_paths, block.width
            x = x_block.index_select(0, neighbour).view(num_edges, 1, d1, u)
            weighted = (w.reshape(num_edges, p, 1, u) * x).reshape(num_edges, p * d1, u)
            coupling = edge_harmonics @ self.coupling(index, edge_harmonics.dtype)
            messages = torch.bmm(coupling.reshape(num_edges, width, p * d1), weighted).view(num_edges, width * u)
            sums.append(messages.new_zeros(num_nodes, width * u).index_add(0, centre, messages))
        return self.output_from_blocks(torch.cat(sums, dim=1) if len(sums) > 1 else sums[0])
