"""From a ``Frame`` to the tensors of one structure (a graph with periodic edges)."""

from __future__ import annotations

import numpy as np
import torch

from universal_mfp.data import keys
from universal_mfp.data.frame import Frame
from universal_mfp.data.neighbors import neighbor_list

Graph = dict[str, torch.Tensor]


def frame_to_graph(frame: Frame, cutoff: float, fidelity_index: int = 0) -> Graph:
    """Build the tensors of one structure: atoms, periodic edges within ``cutoff``, labels and masks.

    Per-structure tensors have a leading dimension of 1 so that graphs concatenate into batches.
    Missing labels are stored as zeros with their ``has_*`` mask set to ``False``.
    """
    i, j, shifts = neighbor_list(frame.positions, frame.cell, frame.pbc, cutoff)
    n = frame.num_atoms
    has_energy = frame.energy is not None
    has_forces = frame.forces is not None
    has_stress = frame.stress is not None
    f64 = torch.float64
    return {
        keys.POSITIONS: torch.from_numpy(frame.positions.copy()),
        keys.ATOMIC_NUMBERS: torch.from_numpy(frame.numbers.copy()),
        keys.BATCH: torch.zeros(n, dtype=torch.long),
        keys.EDGE_INDEX: torch.from_numpy(np.stack([i, j])),
        keys.EDGE_SHIFTS: torch.from_numpy(shifts),
        keys.CELL: torch.from_numpy(frame.cell.copy()).unsqueeze(0),
        keys.PBC: torch.from_numpy(frame.pbc.copy()).unsqueeze(0),
        keys.NUM_ATOMS: torch.tensor([n], dtype=torch.long),
        keys.FIDELITY: torch.tensor([fidelity_index], dtype=torch.long),
        keys.ENERGY: torch.tensor([frame.energy if has_energy else 0.0], dtype=f64),
        keys.FORCES: torch.from_numpy(frame.forces.copy()) if has_forces else torch.zeros(n, 3, dtype=f64),
        keys.STRESS: (
            torch.from_numpy(frame.stress.copy()).unsqueeze(0) if has_stress else torch.zeros(1, 3, 3, dtype=f64)
        ),
        keys.HAS_ENERGY: torch.tensor([has_energy]),
        keys.HAS_FORCES: torch.tensor([has_forces]),
        keys.HAS_STRESS: torch.tensor([has_stress]),
    }
