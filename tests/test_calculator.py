"""ASE calculator and batch prediction: fidelity validation, bad input, MD and relaxation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE
from pymatgen.io.ase import AseAtomsAdaptor

from tests.model.helpers import evaluate, molecule, rattled_crystal, small_model
from universal_mfp import MFCalculator, predict_structures
from universal_mfp.data import keys
from universal_mfp.units import full_3x3_to_voigt_6


@pytest.fixture(scope="module")
def model():
    return small_model("even", "float64")


def test_fidelity_is_required_and_validated(model):
    with pytest.raises(ValueError, match=r"required.*\['pbe', 'r2scan'\]"):
        MFCalculator(model)
    with pytest.raises(ValueError, match=r"unknown fidelity 'scan'.*\['pbe', 'r2scan'\]"):
        MFCalculator(model, fidelity="scan")
    with pytest.raises(ValueError, match=r"\['pbe', 'r2scan'\]"):
        predict_structures(model, [rattled_crystal()])
    # run-type aliases resolve to their fidelity
    assert MFCalculator(model, fidelity="r2SCAN").fidelity == "r2scan"
    assert MFCalculator(model, fidelity="GGA").fidelity == "pbe"


def test_single_fidelity_model_needs_no_fidelity():
    single = small_model("even", "float64", fidelities=("pbe",))
    assert MFCalculator(single).fidelity == "pbe"


def test_calculator_matches_model_and_does_not_modify_it(model):
    atoms = rattled_crystal()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    atoms.calc = MFCalculator(model, fidelity="r2scan", dtype="float32")
    energy = atoms.get_potential_energy()
    ref = evaluate(model, atoms, 1)
    assert energy == pytest.approx(float(ref[keys.ENERGY][0]), abs=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), ref[keys.FORCES].numpy(), atol=1e-4)
    np.testing.assert_allclose(atoms.get_stress(), full_3x3_to_voigt_6(ref[keys.STRESS][0].numpy()), atol=1e-6)
    assert atoms.get_potential_energy(force_consistent=True) == energy
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]) and tensor.dtype == torch.float64
    assert all(p.requires_grad for p in model.parameters())


def test_float64_calculator_agrees_with_float32(model):
    atoms = rattled_crystal()
    e64 = MFCalculator(model, fidelity="pbe", dtype="float64").get_potential_energy(atoms)
    e32 = MFCalculator(model, fidelity="pbe", dtype="float32").get_potential_energy(atoms)
    assert e64 == pytest.approx(e32, abs=1e-4)
    assert e64 != e32


def test_batch_prediction_matches_calculator(model):
    structures = [rattled_crystal(1), molecule(), rattled_crystal(2, repeat=(2, 1, 1))]
    predictions = predict_structures(model, structures, fidelity="r2scan", max_atoms_per_batch=10)
    for atoms, pred in zip(structures, predictions, strict=True):
        calc = MFCalculator(model, fidelity="r2scan")
        assert pred.energy == pytest.approx(calc.get_potential_energy(atoms), abs=1e-9)
        np.testing.assert_allclose(pred.forces, calc.get_forces(atoms), atol=1e-9)
        assert pred.num_atoms == len(atoms)
        assert pred.energy_per_atom == pytest.approx(pred.energy / len(atoms))
    assert predictions[1].stress is None  # the molecule
    np.testing.assert_allclose(
        full_3x3_to_voigt_6(predictions[0].stress),
        MFCalculator(model, fidelity="r2scan").get_stress(structures[0]),
        atol=1e-10,
    )


def test_pymatgen_structure_gives_same_result_as_ase(model):
    atoms = rattled_crystal()
    structure = AseAtomsAdaptor.get_structure(atoms)
    from_pmg, from_ase = predict_structures(model, [structure, atoms], fidelity="pbe")
    assert from_pmg.energy == pytest.approx(from_ase.energy, abs=1e-10)
    np.testing.assert_allclose(from_pmg.forces, from_ase.forces, atol=1e-10)


def test_unknown_element_names_it(model):
    atoms = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match=r"elements \['Cu'\] are not supported.*knows \['H', 'Li'"):
        MFCalculator(model, fidelity="pbe").get_potential_energy(atoms)


def test_nan_positions_rejected(model):
    atoms = rattled_crystal()
    atoms.positions[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*atoms \[1\]"):
        MFCalculator(model, fidelity="pbe").get_potential_energy(atoms)


def test_empty_structure_rejected(model):
    with pytest.raises(ValueError, match="empty structure"):
        MFCalculator(model, fidelity="pbe").get_potential_energy(Atoms(cell=np.eye(3) * 5, pbc=True))


def test_overlapping_atoms_rejected(model):
    atoms = Atoms("CO", positions=[[0, 0, 0], [0.0, 0.0, 0.01]], cell=np.eye(3) * 6, pbc=True)
    with pytest.raises(ValueError, match=r"overlapping atoms: atoms \d and \d are 0.01 Å apart"):
        MFCalculator(model, fidelity="pbe").get_potential_energy(atoms)


def test_periodic_structure_with_degenerate_cell_rejected(model):
    atoms = Atoms("C", positions=[[0, 0, 0]], cell=np.zeros((3, 3)), pbc=True)
    with pytest.raises(ValueError, match="zero-length cell vector"):
        MFCalculator(model, fidelity="pbe").get_potential_energy(atoms)


def test_non_periodic_molecule_has_energy_forces_but_no_stress(model):
    mol = molecule()
    mol.calc = MFCalculator(model, fidelity="r2scan")
    energy = mol.get_potential_energy()
    forces = mol.get_forces()
    assert np.isfinite(energy) and np.isfinite(forces).all()
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10)
    with pytest.raises(PropertyNotImplementedError, match="periodic in all three directions"):
        mol.get_stress()
    # the same molecule in a large periodic box (no image within the cutoff) has the same energy
    boxed = mol.copy()
    boxed.cell = np.eye(3) * 20.0
    boxed.pbc = True
    assert MFCalculator(model, fidelity="r2scan").get_potential_energy(boxed) == pytest.approx(energy, abs=1e-10)


def test_cell_smaller_than_cutoff_matches_supercell(model):
    # a one-atom-wide cell much smaller than the 4 Å cutoff: periodic images are neighbours of each other
    primitive = Atoms(
        "C", positions=[[0.1, 0.2, 0.3]], cell=[[1.6, 0.0, 0.0], [0.3, 1.7, 0.0], [0.2, 0.1, 1.8]], pbc=True
    )
    primitive = primitive.repeat((2, 1, 1))
    primitive.positions[1] += [0.05, -0.03, 0.02]
    supercell = primitive.repeat((2, 3, 2))
    calc = MFCalculator(model, fidelity="pbe")
    e_prim = calc.get_potential_energy(primitive) / len(primitive)
    f_prim = calc.get_forces(primitive)
    s_prim = calc.get_stress(primitive)
    calc_super = MFCalculator(model, fidelity="pbe")
    assert calc_super.get_potential_energy(supercell) / len(supercell) == pytest.approx(e_prim, abs=1e-10)
    np.testing.assert_allclose(calc_super.get_forces(supercell), np.tile(f_prim, (12, 1)), atol=1e-9)
    np.testing.assert_allclose(calc_super.get_stress(supercell), s_prim, atol=1e-10)
    assert np.abs(f_prim).max() > 1e-4


def test_md_conserves_energy(model):
    atoms = rattled_crystal(seed=2, repeat=(2, 2, 2))
    atoms.calc = MFCalculator(model, fidelity="r2scan", dtype="float64")
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    e0 = atoms.get_total_energy()
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.run(40)
    drift = abs(atoms.get_total_energy() - e0) / len(atoms)
    assert drift < 1e-4
    assert np.abs(atoms.get_momenta().sum(axis=0)).max() < 1e-8


def test_fire_relaxation_with_cell_filter(model):
    atoms = rattled_crystal(seed=4)
    atoms.calc = MFCalculator(model, fidelity="pbe", dtype="float64")
    e_start = atoms.get_potential_energy()
    optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
    converged = optimizer.run(fmax=0.01, steps=400)
    assert converged
    assert atoms.get_potential_energy() < e_start
    assert np.abs(atoms.get_forces()).max() < 0.01
    assert np.abs(atoms.get_stress()).max() * atoms.get_volume() < 0.01 * 3
