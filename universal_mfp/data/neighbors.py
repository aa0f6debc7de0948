"""Periodic neighbour lists (vesin: a compiled cell-list implementation, linear in system size)."""

from __future__ import annotations

import numpy as np
import vesin

# Two atoms closer than this (Å) are treated as overlapping: no physical structure has them and the
# edge direction (and so every equivariant feature) is undefined at zero distance.
MIN_INTERATOMIC_DISTANCE = 0.1


def _search_box(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    """Return a box vesin can bin with: the cell, with non-periodic vectors made non-degenerate.

    Non-periodic directions do not change the neighbours, but vesin's cell list needs a box of
    non-zero volume; when the cell is singular, the non-periodic vectors are replaced by long
    vectors orthogonal to the periodic ones.
    """
    if not pbc.any():
        return np.zeros((3, 3))
    box = cell.copy()
    if pbc.all() or abs(np.linalg.det(box)) > 1e-6:
        return box
    extent = float(np.ptp(positions, axis=0).max()) + 2.0 * cutoff + 1.0
    periodic_vectors = box[pbc]
    _, _, vt = np.linalg.svd(periodic_vectors)
    complement = vt[periodic_vectors.shape[0] :]
    for k, axis in enumerate(np.nonzero(~pbc)[0]):
        box[axis] = extent * complement[k]
    return box


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full (both directions) neighbour list within ``cutoff``.

    Args:
        positions: (n, 3) Cartesian positions in Å.
        cell: (3, 3) lattice vectors as rows in Å.
        pbc: (3,) periodicity flags.
        cutoff: radius in Å.

    Returns:
        ``(i, j, shifts)``: centre indices, neighbour indices (int64) and integer lattice shifts
        (float64, shape (E, 3)) with ``r_ij = x_j - x_i + shifts @ cell``.

    Raises:
        ValueError: if two atoms overlap (closer than ``MIN_INTERATOMIC_DISTANCE``).
    """
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    box = _search_box(positions, np.asarray(cell, dtype=np.float64), pbc, cutoff)
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    periodic = bool(pbc.all()) if pbc.all() or not pbc.any() else pbc.tolist()
    i, j, shifts, distances = calculator.compute(positions, box, periodic, quantities="ijSd")
    close = distances < MIN_INTERATOMIC_DISTANCE
    if close.any():
        k = int(np.argmin(distances))
        raise ValueError(
            f"overlapping atoms: atoms {int(i[k])} and {int(j[k])} are {float(distances[k]):.3g} Å apart "
            f"(minimum {MIN_INTERATOMIC_DISTANCE} Å)"
        )
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.float64)
