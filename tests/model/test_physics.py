"""Physics contracts of the potential, run on every architecture variant in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model.helpers import VARIANTS, batch_of, evaluate, molecule, random_rotation, rattled_crystal, small_model
from universal_mfp.data import keys

# per-dtype tolerances (absolute, in eV, eV/Å, eV/Å³)
TOL = {"float32": 2e-5, "float64": 1e-10}


@pytest.fixture(params=[(v, d) for v in VARIANTS for d in ("float32", "float64")], ids=lambda p: f"{p[0]}-{p[1]}")
def model_and_tol(request):
    variant, dtype = request.param
    return small_model(variant, dtype), TOL[dtype]


def _transform(atoms, rotation, translation):
    moved = atoms.copy()
    moved.positions = atoms.positions @ rotation.T + translation
    moved.cell = atoms.cell.array @ rotation.T
    return moved


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotoinversion"])
def test_energy_invariant_forces_and_stress_equivariant(model_and_tol, proper):
    model, tol = model_and_tol
    atoms = rattled_crystal()
    rotation = random_rotation(3, proper=proper)
    ref = evaluate(model, atoms)
    out = evaluate(model, _transform(atoms, rotation, np.array([0.3, -1.2, 2.5])))
    scale = max(1.0, float(ref[keys.ENERGY].abs().max()))
    assert abs(float(out[keys.ENERGY] - ref[keys.ENERGY])) < tol * 10 * scale
    rot = torch.as_tensor(rotation, dtype=ref[keys.FORCES].dtype)
    torch.testing.assert_close(out[keys.FORCES], ref[keys.FORCES] @ rot.T, atol=tol * 10, rtol=0)
    expected_stress = rot @ ref[keys.STRESS][0] @ rot.T
    torch.testing.assert_close(out[keys.STRESS][0], expected_stress, atol=tol * 10, rtol=0)
    assert float(ref[keys.FORCES].abs().max()) > 1e-3  # a non-trivial check


def test_molecule_invariance(model_and_tol):
    model, tol = model_and_tol
    mol = molecule()
    rotation = random_rotation(11, proper=False)
    ref = evaluate(model, mol, stress=False)
    out = evaluate(model, _transform(mol, rotation, np.array([5.0, 0.0, -3.0])), stress=False)
    assert abs(float(out[keys.ENERGY] - ref[keys.ENERGY])) < tol * 10
    rot = torch.as_tensor(rotation, dtype=ref[keys.FORCES].dtype)
    torch.testing.assert_close(out[keys.FORCES], ref[keys.FORCES] @ rot.T, atol=tol * 10, rtol=0)
    torch.testing.assert_close(
        ref[keys.FORCES].sum(0), torch.zeros(3, dtype=ref[keys.FORCES].dtype), atol=tol * 10, rtol=0
    )


def test_permutation_invariance(model_and_tol):
    model, tol = model_and_tol
    atoms = rattled_crystal(repeat=(2, 1, 1))
    order = np.random.default_rng(0).permutation(len(atoms))
    ref = evaluate(model, atoms)
    out = evaluate(model, atoms[order])
    assert abs(float(out[keys.ENERGY] - ref[keys.ENERGY])) < tol * 10
    torch.testing.assert_close(out[keys.FORCES], ref[keys.FORCES][order], atol=tol * 10, rtol=0)
    torch.testing.assert_close(out[keys.STRESS], ref[keys.STRESS], atol=tol * 10, rtol=0)


def test_translation_and_wrapping_invariance(model_and_tol):
    model, tol = model_and_tol
    atoms = rattled_crystal()
    ref = evaluate(model, atoms)
    shifted = atoms.copy()
    shifted.positions += shifted.cell.array[0] * 1.0 + np.array([0.4, 0.1, -0.7])
    shifted.wrap()
    out = evaluate(model, shifted)
    assert abs(float(out[keys.ENERGY] - ref[keys.ENERGY])) < tol * 10
    torch.testing.assert_close(out[keys.FORCES], ref[keys.FORCES], atol=tol * 10, rtol=0)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forces_are_central_finite_differences(variant):
    model = small_model(variant, "float64")
    atoms = rattled_crystal(seed=5)
    forces = evaluate(model, atoms)[keys.FORCES].numpy()
    h = 1e-5
    for atom in range(len(atoms)):
        for axis in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[atom, axis] += h
            minus.positions[atom, axis] -= h
            e_plus = float(evaluate(model, plus, stress=False)[keys.ENERGY][0])
            e_minus = float(evaluate(model, minus, stress=False)[keys.ENERGY][0])
            assert forces[atom, axis] == pytest.approx(-(e_plus - e_minus) / (2 * h), abs=1e-7)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stress_is_finite_strain_derivative(variant):
    model = small_model(variant, "float64")
    atoms = rattled_crystal(seed=7)
    stress = evaluate(model, atoms)[keys.STRESS][0].numpy()
    volume = atoms.get_volume()
    h = 1e-5
    for i in range(3):
        for j in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[i, j] += sign * h / 2
                strain[j, i] += sign * h / 2
                deformed = atoms.copy()
                deformed.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(float(evaluate(model, deformed, stress=False)[keys.ENERGY][0]))
            derivative = (energies[0] - energies[1]) / (2 * h) / volume
            assert stress[i, j] == pytest.approx(derivative, abs=1e-8)
    assert np.allclose(stress, stress.T, atol=1e-12)


def test_batch_equals_structures_one_by_one(model_and_tol):
    model, tol = model_and_tol
    structures = [rattled_crystal(1), molecule(), rattled_crystal(2, repeat=(1, 2, 1)), rattled_crystal(3)]
    fidelities = [0, 1, 1, 0]
    out = model(batch_of(structures, fidelities, model.config.cutoff), compute_stress=True)
    start = 0
    for k, (atoms, f) in enumerate(zip(structures, fidelities, strict=True)):
        single = evaluate(model, atoms, f, stress=True)
        n = len(atoms)
        assert float(out[keys.ENERGY][k].detach()) == pytest.approx(float(single[keys.ENERGY][0]), abs=tol * 20)
        torch.testing.assert_close(
            out[keys.FORCES][start : start + n].detach(), single[keys.FORCES], atol=tol * 10, rtol=0
        )
        torch.testing.assert_close(out[keys.STRESS][k].detach(), single[keys.STRESS][0], atol=tol * 10, rtol=0)
        start += n


def test_no_gradient_leaks_between_structures():
    model = small_model("even", "float64")
    structures = [rattled_crystal(1), rattled_crystal(2)]
    batch = batch_of(structures, [0, 1], model.config.cutoff)
    positions = batch[keys.POSITIONS].clone().requires_grad_(True)
    batch[keys.POSITIONS] = positions
    out = model(batch, compute_forces=False)
    (grad,) = torch.autograd.grad(out[keys.ENERGY][0], positions)
    n0 = len(structures[0])
    assert float(grad[:n0].abs().max()) > 1e-4
    assert float(grad[n0:].abs().max()) == 0.0


def test_energy_smooth_as_atom_crosses_cutoff():
    from ase import Atoms

    model = small_model("even", "float64")
    cutoff = model.config.cutoff

    def dimer(d):
        out = evaluate(model, Atoms("CO", positions=[[0, 0, 0], [d, 0, 0]], pbc=False), stress=False)
        return float(out[keys.ENERGY][0]), float(out[keys.FORCES][1, 0])

    far_energy, far_force = dimer(cutoff + 1.0)
    assert far_force == 0.0
    for d in (cutoff, cutoff + 1e-6, cutoff + 0.5):  # no interaction at or beyond the cutoff
        assert dimer(d) == (far_energy, 0.0)
    # the p = 6 envelope vanishes as (rc - r)^3 and the Bessel functions as (rc - r), so energy changes
    # go to zero as (rc - r)^4: halving the distance to the cutoff divides them by 16 and the force by 8
    de = {delta: dimer(cutoff - delta)[0] - far_energy for delta in (0.02, 0.01, 1e-4)}
    force = {delta: dimer(cutoff - delta)[1] for delta in (0.02, 0.01)}
    assert abs(de[0.02]) > 1e-9
    assert de[0.02] / de[0.01] == pytest.approx(16.0, rel=0.05)
    assert force[0.02] / force[0.01] == pytest.approx(8.0, rel=0.05)
    assert abs(de[1e-4]) < 1e-12
    # inside the cutoff the pair does interact
    assert abs(dimer(1.2)[0] - far_energy) > 1e-3


def test_isolated_atom_energy_equals_reference(model_and_tol):
    from ase import Atoms

    model, tol = model_and_tol
    for f in range(2):
        for species, z in enumerate(model.config.elements):
            out = evaluate(model, Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]], pbc=False), f, stress=False)
            assert float(out[keys.ENERGY][0]) == pytest.approx(
                float(model.element_references[f, species].detach()), abs=tol
            )
            assert float(out[keys.FORCES].abs().max()) == 0.0


def test_fidelities_give_different_energies(model_and_tol):
    model, _ = model_and_tol
    atoms = rattled_crystal()
    e_pbe = float(evaluate(model, atoms, 0)[keys.ENERGY][0])
    e_r2scan = float(evaluate(model, atoms, 1)[keys.ENERGY][0])
    assert abs(e_pbe - e_r2scan) > 1e-2
    # also the learned (non-reference) part differs, not only the references
    model.set_energy_normalization(torch.zeros_like(model.element_references), torch.ones(2))
    e_pbe = float(evaluate(model, atoms, 0)[keys.ENERGY][0])
    e_r2scan = float(evaluate(model, atoms, 1)[keys.ENERGY][0])
    assert abs(e_pbe - e_r2scan) > 1e-4


def test_fidelity_index_out_of_range_raises():
    model = small_model()
    batch = batch_of([rattled_crystal()], [2], model.config.cutoff)
    with pytest.raises(ValueError, match=r"\['pbe', 'r2scan'\]"):
        model(batch)
