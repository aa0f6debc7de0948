"""Angular invariants of each atom's neighbourhood: a power spectrum that enters the first node features.

The interaction layers carry features up to ``lmax_edge`` (2 in the shipped models). Features of degree
l <= 2 cannot tell some first neighbour shells apart: fcc and ideal hcp have the same distances out to
1.63 nearest-neighbour spacings, and their first shells have the same l = 1 and l = 2 moments (zero), so a
5 Å network sees Mg fcc and hcp as one structure. Their l = 3 and l = 4 moments differ (the Steinhardt
order parameters q3 and q4), as do those of bcc, fcc and hcp generally.

For each atom i, radial channel k and degree l = 1..``lmax``, with w_k(z_j) a learned weight of the
neighbour's element, R_k a learned combination of the smooth radial basis (zero at the cutoff) and Y_l the
edge's spherical harmonics (computed once per evaluation by the model, ``model/harmonics.py``),

    A_ikl = sum_j R_k(r_ij) w_k(z_j) Y_l(r_ij / |r_ij|) / sqrt(avg_num_neighbors),
    P_ikl = |A_ikl|^2                              (invariant under rotations and reflections),

the power spectrum of the atom's neighbour density (SOAP; ACE's B-basis of correlation order 2). A linear map
of P (no bias) is added to the element embedding, so an atom without neighbours keeps exactly its embedding.
That map starts at zero: a network with these invariants starts as the same function as one without, and can
take over the weights of one trained without them (``init_from``).
"""

from __future__ import annotations

import torch
from torch import nn

from universal_mfp.model.neighbour_density import neighbour_moments


class AngularInvariants(nn.Module):
    """[N] species and [E] edges -> [N, num_scalars] additions to the first node features.

    The edges come as their spherical harmonics of degrees 0..l [E, (l + 1)^2] for some l >= ``lmax``
    (``EdgeHarmonics``' column order, e3nn's): degrees 1..``lmax`` are the columns 1 .. (lmax + 1)^2 - 1.
    """

    def __init__(
        self, lmax: int, channels: int, num_radial_basis: int, num_species: int, num_scalars: int, avg_neighbors: float
    ) -> None:
        super().__init__()
        if lmax < 1 or channels < 1:
            raise ValueError(f"angular invariants need lmax >= 1 and channels >= 1, got {lmax} and {channels}")
        self.lmax = lmax
        self.channels = channels
        self.norm = float(avg_neighbors) ** -0.5
        self.radial = nn.Linear(num_radial_basis, channels, bias=False)
        nn.init.normal_(self.radial.weight)  # unit weights: invariants of order 0.1 to 1 in ordered first shells
        self.species_weight = nn.Embedding(num_species, channels)
        nn.init.ones_(self.species_weight.weight)
        # degree l occupies columns [l^2 - 1, (l + 1)^2 - 1) of the harmonics without degree 0
        columns = torch.cat([torch.full((2 * degree + 1,), degree - 1) for degree in range(1, lmax + 1)])
        self.register_buffer("degree_of_column", columns, persistent=False)
        self.output = nn.Linear(channels * lmax, num_scalars, bias=False)
        nn.init.zeros_(self.output.weight)

    def invariants(
        self,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_harmonics: torch.Tensor,
        edge_radial: torch.Tensor,
        *,
        lean: bool = False,
    ) -> torch.Tensor:
        """The power spectrum P [N, channels * lmax] (channel-major).

        Args:
            species: [N] species indices.
            edge_index: [2, E] centre and neighbour of each edge.
            edge_harmonics: [E, (l + 1)^2] spherical harmonics of the edge directions, degrees 0..l, l >= lmax.
            edge_radial: [E, num_radial_basis] radial basis of the edge lengths.
            lean: sum over neighbours with the chunked pass and hand-written backward (``neighbour_density``):
                for evaluation, not when derivatives are taken with ``create_graph=True``.

        Raises:
            ValueError: if ``edge_harmonics`` stops below degree ``lmax``.
        """
        needed = (self.lmax + 1) ** 2
        if edge_harmonics.ndim != 2 or edge_harmonics.shape[1] < needed:
            raise ValueError(
                f"angular invariants of lmax {self.lmax} need edge harmonics [E, >= {needed}], "
                f"got {tuple(edge_harmonics.shape)}"
            )
        num_nodes = species.shape[0]
        centre, neighbour = edge_index[0], edge_index[1]
        weights = self.radial(edge_radial) * self.species_weight(species[neighbour])  # [E, K]
        harmonics = edge_harmonics[:, 1:needed]  # [E, M], degrees 1..lmax
        moments = neighbour_moments(weights, harmonics, centre, num_nodes, lean=lean) * self.norm  # [N, K, M]
        power = moments.new_zeros(num_nodes, self.channels, self.lmax)
        power = power.index_add(2, self.degree_of_column, moments * moments)
        return power.reshape(num_nodes, self.channels * self.lmax)

    def forward(self, *inputs: torch.Tensor, lean: bool = False) -> torch.Tensor:
        """The addition to each atom's embedding [N, num_scalars]; ``inputs`` and ``lean`` as for ``invariants``."""
        return self.output(self.invariants(*inputs, lean=lean))
