from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import given, settings
from hypothesis import strategies as st

from universal_mfp.data.neighbors import neighbor_list


def _as_set(i, j, shifts):
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, np.rint(shifts).astype(int).tolist()), strict=True))


def _check_against_ase(atoms, cutoff):
    i, j, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    ia, ja, sa = ase_neighbor_list("ijS", atoms, cutoff)
    assert _as_set(i, j, shifts) == _as_set(ia, ja, sa)
    vectors = atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array
    assert (np.linalg.norm(vectors, axis=1) < cutoff).all()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    cutoff=st.floats(1.5, 6.0),
    pbc=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_matches_ase_on_random_triclinic_cells(n, seed, cutoff, pbc):
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(2.0, 6.0, 3)) + rng.uniform(-0.8, 0.8, (3, 3))
    frac = rng.uniform(0, 1, (n, 3))
    atoms = Atoms(numbers=[6] * n, scaled_positions=frac, cell=cell, pbc=pbc)
    distances = atoms.get_all_distances(mic=any(pbc))
    if n > 1 and distances[np.triu_indices(n, 1)].min() < 0.2:
        return
    _check_against_ase(atoms, cutoff)


@pytest.mark.parametrize(
    "atoms",
    [
        bulk("Cu", "fcc", a=3.6),  # one atom, cell smaller than the cutoff
        bulk("Si", "diamond", a=5.43) * (2, 2, 2),
        fcc111("Al", (2, 2, 3), vacuum=5.0),  # slab, periodic in two directions
    ],
    ids=["tiny-cell", "supercell", "slab"],
)
def test_matches_ase_on_crystals(atoms):
    _check_against_ase(atoms, 5.0)


def test_slab_with_zero_vacuum_vector_and_wire():
    slab = fcc111("Al", (2, 2, 3), vacuum=5.0)
    slab.cell[2] = 0.0
    slab.positions[:, 2] += 40.0
    _check_against_ase(slab, 5.0)
    wire = bulk("Cu", "fcc", a=3.6, cubic=True)
    wire.pbc = [True, False, False]
    wire.cell[1] = 0.0
    wire.cell[2] = 0.0
    _check_against_ase(wire, 5.0)


def test_molecule_without_cell():
    mol = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    i, j, shifts = neighbor_list(mol.positions, np.zeros((3, 3)), np.zeros(3, bool), 1.0)
    assert _as_set(i, j, shifts) == [(0, 1, (0, 0, 0)), (0, 2, (0, 0, 0)), (1, 0, (0, 0, 0)), (2, 0, (0, 0, 0))]


def test_overlap_and_bad_cutoff():
    with pytest.raises(ValueError, match="overlapping atoms"):
        neighbor_list(np.zeros((2, 3)), np.eye(3) * 5, np.ones(3, bool), 3.0)
    with pytest.raises(ValueError, match="cutoff must be positive"):
        neighbor_list(np.zeros((1, 3)), np.eye(3) * 5, np.ones(3, bool), 0.0)
