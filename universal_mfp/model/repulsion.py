"""A fixed short-range pair repulsion: the ZBL universal screened nuclear repulsion, cut off smoothly.

Message passing learns energies where its training data has atoms, and atoms closer than about half a bond
length are rare there: a network alone may have no wall at those distances, and a hot MD run can find the hole
behind its learned barrier (two Li atoms of Li2O meeting at 0.35 Å). The Ziegler-Biersack-Littmark potential
(Ziegler, Biersack and Littmark, *The Stopping and Range of Ions in Solids*, 1985) is the screened Coulomb
repulsion of two nuclei, fitted to the repulsion of many atom pairs; it has no parameters to train.

Each pair ``(i, j)`` at distance ``r`` adds ``V(r) = k Z_i Z_j / r · φ(r / a) · u(r / r_max)``, where
``k = e² / 4πε₀``, ``a = 0.8854 a₀ / (Z_i^0.23 + Z_j^0.23)`` the screening length, ``φ`` the ZBL screening
function, and ``u`` the polynomial envelope of ``model/radial.py`` (smooth to order ``p``), which takes the
repulsion to exactly zero at ``r_max = factor · (R_i + R_j)``, a multiple of the sum of the two covalent
radii (Cordero et al. 2008, as in ``ase.data``). Each directed edge gives half of ``V`` to its centre atom, so
the per-atom energies sum to the pair energy and forces and stress come by autograd with the rest. With
``factor`` 1 this is MACE's ``pair_repulsion``, whose network learns to cancel it at bonded distances.

That cancelling is needed because the bare ZBL repulsion is far stronger than DFT's once electrons bond the
pair: on the matbench-discovery dimer curves between 0.4 and 0.6 covalent sums it exceeds the PBE and r2SCAN
energy above dissociation for three dimers in four (median 6 eV against 2 eV). A smaller factor keeps the
term out of everything the data covers instead. The shipped model uses 0.38: the dimer curves stop at 0.40
covalent sums, and the crystals in training at 0.489 or more (``training/add_repulsion.py`` checks this on the
data), so the term is zero on every frame and the network's fit is untouched; Li–Li at 0.5 Å still gets
32 eV.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from torch import nn

from universal_mfp.model.radial import PolynomialCutoff

COULOMB_EV_ANGSTROM = 14.399645  # e² / 4πε₀ in eV·Å
SCREENING_LENGTH_ANGSTROM = 0.46850  # 0.8854 times the Bohr radius
SCREENING_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
SCREENING_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)


class ZBLRepulsion(nn.Module):
    """Per-atom ZBL repulsion energies [N] from atomic numbers and edges; no trainable parameters."""

    def __init__(self, cutoff_factor: float = 1.0, p: int = 6) -> None:
        super().__init__()
        if not 0.0 < cutoff_factor <= 2.0:
            raise ValueError(f"the repulsion's cutoff factor must be in (0, 2], got {cutoff_factor}")
        self.cutoff_factor = float(cutoff_factor)
        self.register_buffer("covalent_radii", torch.tensor(covalent_radii, dtype=torch.float64), persistent=False)
        self.register_buffer("coefficients", torch.tensor(SCREENING_COEFFICIENTS), persistent=False)
        self.register_buffer("exponents", torch.tensor(SCREENING_EXPONENTS), persistent=False)
        self.envelope = PolynomialCutoff(1.0, p)

    def forward(self, atomic_numbers: torch.Tensor, edge_index: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Repulsion energy of each atom (eV, dtype of ``lengths``): half of each of its edges' pair energies.

        Args:
            atomic_numbers: [N] atomic numbers.
            edge_index: [2, E] centre and neighbour of each directed edge (every pair in both directions).
            lengths: [E] edge lengths in Å.
        """
        dtype = lengths.dtype
        atomic = torch.zeros(atomic_numbers.shape[0], dtype=dtype, device=lengths.device)
        radii = self.covalent_radii[atomic_numbers].to(dtype)
        r_max = self.cutoff_factor * (radii[edge_index[0]] + radii[edge_index[1]])
        # only the few edges inside the cutoff (none in most structures) carry energy or gradient
        close = torch.nonzero(lengths < r_max).squeeze(-1)
        if close.numel() == 0:
            return atomic
        centre, neighbour = edge_index[0, close], edge_index[1, close]
        lengths, r_max = lengths[close], r_max[close]
        z_centre, z_neighbour = atomic_numbers[centre].to(dtype), atomic_numbers[neighbour].to(dtype)
        screening = SCREENING_LENGTH_ANGSTROM / (z_centre.pow(0.23) + z_neighbour.pow(0.23))
        x = (lengths / screening).unsqueeze(-1)
        phi = (self.coefficients.to(dtype) * torch.exp(-self.exponents.to(dtype) * x)).sum(-1)
        pair = COULOMB_EV_ANGSTROM * z_centre * z_neighbour / lengths * phi * self.envelope(lengths / r_max)
        return atomic.index_add(0, centre, 0.5 * pair)


__all__ = ["ZBLRepulsion"]
