"""Names of every tensor in a batch, with shape and unit.

A batch is a plain ``dict[str, torch.Tensor]``. ``N`` is the number of atoms in the batch, ``E`` the
number of directed edges, ``B`` the number of structures. Positions, cell and labels enter as float64;
the model casts them to its own dtype.
"""

from __future__ import annotations

# --- per atom -----------------------------------------------------------------------------------
POSITIONS = "positions"  # [N, 3] float, Å, Cartesian
ATOMIC_NUMBERS = "atomic_numbers"  # [N] int64
BATCH = "batch"  # [N] int64, index of the structure each atom belongs to
FORCES = "forces"  # [N, 3] float, eV/Å (label); predictions use the same key

# --- per edge -----------------------------------------------------------------------------------
EDGE_INDEX = "edge_index"  # [2, E] int64; row 0 = centre atom i (receives), row 1 = neighbour j (sends)
EDGE_SHIFTS = "edge_shifts"  # [E, 3] float, integer lattice translations: r_ij = x_j - x_i + S @ cell

# --- per structure ------------------------------------------------------------------------------
CELL = "cell"  # [B, 3, 3] float, Å, lattice vectors as rows (zeros for a non-periodic molecule)
PBC = "pbc"  # [B, 3] bool
NUM_ATOMS = "num_atoms"  # [B] int64
FIDELITY = "fidelity"  # [B] int64, index into the model's fidelity names
ENERGY = "energy"  # [B] float, eV, total energy of the cell (label); predictions use the same key
STRESS = "stress"  # [B, 3, 3] float, eV/Å³, ASE sign convention (label); predictions use the same key
HAS_ENERGY = "has_energy"  # [B] bool, the structure carries an energy label
HAS_FORCES = "has_forces"  # [B] bool, the structure carries force labels
HAS_STRESS = "has_stress"  # [B] bool, the structure carries a stress label

# --- model outputs only -------------------------------------------------------------------------
ATOMIC_ENERGIES = "atomic_energies"  # [N] float, eV, per-atom energy contributions
NODE_FEATURES = "node_features"  # [N, F] float, final scalar node features (prediction only, no gradient)

PER_ATOM_KEYS: frozenset[str] = frozenset({POSITIONS, ATOMIC_NUMBERS, BATCH, FORCES, ATOMIC_ENERGIES})
PER_EDGE_KEYS: frozenset[str] = frozenset({EDGE_INDEX, EDGE_SHIFTS})
PER_STRUCTURE_KEYS: frozenset[str] = frozenset(
    {CELL, PBC, NUM_ATOMS, FIDELITY, ENERGY, STRESS, HAS_ENERGY, HAS_FORCES, HAS_STRESS}
)
