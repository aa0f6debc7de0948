"""One message-passing layer: fidelity-conditioned linear, edge tensor product, gate, self-connection."""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn

from universal_mfp.model.channelwise import ChannelwiseTensorProduct
from universal_mfp.model.channelwise_recompute import recomputed_messages
from universal_mfp.model.fidelity_linear import FidelityLinear
from universal_mfp.model.frozen import frozen_key
from universal_mfp.model.fused import FusedGate, FusedLinear
from universal_mfp.model.radial_mlp import radial_matrices

_SCALAR_ACTIVATIONS = {1: torch.nn.functional.silu, -1: torch.tanh}


def _tensor_product_paths(
    irreps_in: o3.Irreps, irreps_sh: o3.Irreps, wanted: o3.Irreps
) -> tuple[o3.Irreps, list[tuple[int, int, int, str, bool]]]:
    """Channel-wise ('uvu') paths from node features x edge harmonics to the irreps in ``wanted``."""
    wanted_irs = {ir for _, ir in wanted}
    mid: list[tuple[int, o3.Irrep]] = []
    instructions = []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in wanted_irs:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    irreps_mid = o3.Irreps(mid)
    irreps_sorted, permutation, _ = irreps_mid.sort()
    instructions = [(i, j, permutation[k], mode, train) for i, j, k, mode, train in instructions]
    return irreps_sorted, instructions


class InteractionBlock(nn.Module):
    """``h' = Gate(Linear2_f(Σ_j TP(Linear1_f(h)_j, Y(r̂_ij); R(|r_ij|)) / avg_neighbors) + SelfConnection(h))``.

    ``Linear1_f`` and ``Linear2_f`` are conditioned on the fidelity (``FidelityLinear``); the tensor
    product weights come from a radial network of the smooth edge-length embedding, so every message
    vanishes smoothly at the cutoff.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps | str,
        irreps_out: o3.Irreps | str,
        irreps_sh: o3.Irreps | str,
        num_radial_basis: int,
        radial_mlp_hidden: tuple[int, ...],
        avg_num_neighbors: float,
        num_fidelities: int,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        irreps_sh = o3.Irreps(irreps_sh)
        irreps_target = o3.Irreps(irreps_out)
        self.avg_num_neighbors = float(avg_num_neighbors)

        self.linear_1 = FidelityLinear(self.irreps_in, self.irreps_in, num_fidelities)
        # keep the 0e paths even if only non-scalars are wanted: the gates are scalars
        irreps_mid, instructions = _tensor_product_paths(self.irreps_in, irreps_sh, irreps_target + "0e")
        self.tensor_product = o3.TensorProduct(
            self.irreps_in,
            irreps_sh,
            irreps_mid,
            instructions,
            shared_weights=False,
            internal_weights=False,
        )
        # the same function as ``tensor_product`` + sum over edges, faster; ``tensor_product`` stays the reference
        # (and keeps the state_dict layout)
        self.messages = ChannelwiseTensorProduct(self.tensor_product)
        self.radial_network = FullyConnectedNet(
            [num_radial_basis, *radial_mlp_hidden, self.tensor_product.weight_numel], torch.nn.functional.silu
        )

        reachable = {ir for _, ir in irreps_mid}
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_target if ir.l == 0 and ir in reachable])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_target if ir.l > 0 and ir in reachable])
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps > 0 else o3.Irreps("")
        self.gate = Gate(
            scalars,
            [_SCALAR_ACTIVATIONS[ir.p] for _, ir in scalars],
            gates,
            [torch.sigmoid] * len(gates),
            gated,
        )
        self.irreps_out = self.gate.irreps_out
        self.linear_2 = FidelityLinear(irreps_mid, self.gate.irreps_in, num_fidelities)
        self.self_connection = o3.Linear(self.irreps_in, self.gate.irreps_in)
        # the same functions as ``self_connection`` and ``gate`` in fewer operations (``fused``); the e3nn modules
        # keep the weights, the activations and the state_dict layout
        self.fused_self_connection = FusedLinear(self.self_connection)
        self.fused_gate = FusedGate(self.gate)
        # frozen radial weights: (frozen_key, folded matrices) for the lean pass; not state
        self._radial_cache: tuple[tuple, list[torch.Tensor]] | None = None

    def _radial_matrices(self) -> list[torch.Tensor]:
        """``radial_matrices`` of the radial network, kept while its weights are frozen and unchanged."""
        key = frozen_key(self.radial_network.parameters())
        if key is None:
            return radial_matrices(self.radial_network)
        if self._radial_cache is None or self._radial_cache[0] != key:
            self._radial_cache = (key, [m.detach() for m in radial_matrices(self.radial_network)])
        return self._radial_cache[1]

    def forward(
        self,
        features: torch.Tensor,
        node_fidelity: torch.Tensor,
        edge_index: torch.Tensor,
        edge_harmonics: torch.Tensor,
        edge_radial: torch.Tensor,
        *,
        recompute: bool = False,
    ) -> torch.Tensor:
        """Update node features [N, irreps_in.dim] -> [N, irreps_out.dim].

        ``recompute`` selects the memory-lean message pass (``channelwise_recompute``), which also evaluates the
        radial network chunk by chunk: for evaluation, not when derivatives are taken with ``create_graph=True``.
        """
        centre, neighbour = edge_index[0], edge_index[1]
        x = self.linear_1(features, node_fidelity)
        if recompute:  # the per-edge weights are computed chunk by chunk inside the message pass
            matrices = self._radial_matrices()
            aggregated = recomputed_messages(self.messages, x, edge_harmonics, edge_radial, centre, neighbour, matrices)
        else:
            weights = self.radial_network(edge_radial)
            aggregated = self.messages(x, edge_harmonics, weights, centre, neighbour)
        aggregated = aggregated / self.avg_num_neighbors
        skip = self.fused_self_connection(features, self.self_connection.weight)
        out = self.linear_2(aggregated, node_fidelity) + skip
        return self.fused_gate(out, self.gate)
