from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.core import Lattice, Molecule, Structure

from universal_mfp.data import Frame, as_frame, collate_graphs, frame_from_atoms, frame_to_graph, keys


def test_frame_validation_messages():
    with pytest.raises(ValueError, match="empty structure"):
        Frame(numbers=[], positions=np.zeros((0, 3)), cell=np.eye(3), pbc=True)
    with pytest.raises(ValueError, match=r"non-finite.*atoms \[0\]"):
        Frame(numbers=[1], positions=[[np.inf, 0, 0]], cell=np.eye(3), pbc=True)
    with pytest.raises(ValueError, match="invalid atomic numbers"):
        Frame(numbers=[0], positions=[[0, 0, 0]], cell=np.eye(3), pbc=True)
    with pytest.raises(ValueError, match="zero volume"):
        Frame(numbers=[1], positions=[[0, 0, 0]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True)
    with pytest.raises(ValueError, match=r"forces must have shape \(1, 3\)"):
        Frame(numbers=[1], positions=[[0, 0, 0]], cell=np.eye(3), pbc=True, forces=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="stress must have shape"):
        Frame(numbers=[1], positions=[[0, 0, 0]], cell=np.eye(3), pbc=True, stress=np.zeros(5))


def test_frame_from_atoms_reads_labels_and_voigt_stress():
    atoms = bulk("Si", "diamond", a=5.43)
    voigt = np.array([0.1, 0.2, 0.3, 0.01, 0.02, 0.03])
    atoms.calc = SinglePointCalculator(atoms, energy=-10.5, forces=np.ones((2, 3)), stress=voigt)
    frame = frame_from_atoms(atoms, fidelity="pbe", with_labels=True)
    assert frame.energy == -10.5
    np.testing.assert_array_equal(frame.forces, np.ones((2, 3)))
    assert frame.stress[1, 2] == frame.stress[2, 1] == 0.01
    assert frame.stress[0, 1] == 0.03
    assert frame_from_atoms(atoms).energy is None


def test_pymatgen_structure_and_molecule():
    structure = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    frame = as_frame(structure)
    assert frame.numbers.tolist() == [11, 17] and frame.pbc.all()
    np.testing.assert_allclose(frame.positions[1], [2.0, 2.0, 2.0])
    mol = as_frame(Molecule(["C", "O"], [[0, 0, 0], [1.13, 0, 0]]))
    assert not mol.pbc.any() and mol.cell.sum() == 0
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        as_frame(disordered)
    with pytest.raises(TypeError, match="expected a pymatgen"):
        as_frame("not a structure")


def test_collate_offsets_edges_and_masks_labels():
    a = frame_from_atoms(bulk("Si", "diamond", a=5.43)).replace(energy=-1.0)
    b = as_frame(Atoms("CO", positions=[[0, 0, 0], [1.2, 0, 0]])).replace(forces=np.ones((2, 3)))
    ga, gb = frame_to_graph(a, 3.0, 0), frame_to_graph(b, 3.0, 1)
    batch = collate_graphs([ga, gb])
    assert batch[keys.BATCH].tolist() == [0, 0, 1, 1]
    assert batch[keys.FIDELITY].tolist() == [0, 1]
    ea = ga[keys.EDGE_INDEX].shape[1]
    assert torch.equal(batch[keys.EDGE_INDEX][:, ea:], gb[keys.EDGE_INDEX] + 2)
    assert batch[keys.HAS_ENERGY].tolist() == [True, False]
    assert batch[keys.HAS_FORCES].tolist() == [False, True]
    assert batch[keys.HAS_STRESS].tolist() == [False, False]
    assert batch[keys.POSITIONS].dtype == torch.float64
    assert batch[keys.CELL].shape == (2, 3, 3)
    with pytest.raises(ValueError, match="empty list"):
        collate_graphs([])


def test_non_finite_cells_and_positions_are_refused_by_name():
    import math

    from ase.build import bulk

    from universal_mfp.data.frame import frame_from_atoms
    from universal_mfp.models import load_model

    atoms = bulk("Cu", "fcc", a=3.6)
    bad_cell = atoms.copy()
    bad_cell.cell[0, 0] = math.inf
    with pytest.raises(ValueError, match=r"non-finite \(NaN or inf\) values in the cell"):
        frame_from_atoms(bad_cell)
    bad_positions = atoms * (2, 1, 1)
    bad_positions.positions[1, 2] = math.nan
    with pytest.raises(ValueError, match=r"non-finite \(NaN or inf\) positions for atoms \[1\]"):
        frame_from_atoms(bad_positions)
    calculator = load_model("mf-universal").calculator("pbe")  # the calculator refuses them the same way
    bad_cell.calc = calculator
    with pytest.raises(ValueError, match="values in the cell"):
        bad_cell.get_potential_energy()
