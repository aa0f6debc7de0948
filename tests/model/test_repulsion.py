"""The fixed ZBL pair repulsion: its values, its cutoff, and its place in the potential's energy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.data import covalent_radii

from tests.model.helpers import batch_of, evaluate, rattled_crystal, small_model
from universal_mfp.data import keys
from universal_mfp.model import ModelConfig
from universal_mfp.model.repulsion import ZBLRepulsion


def _zbl_by_hand(z1: int, z2: int, r: float) -> float:
    """The ZBL universal potential (Ziegler, Biersack, Littmark 1985, eq. 2-59 and 2-60), in eV, without cutoff."""
    a = 0.8854 * 0.529177 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = (
        0.1818 * math.exp(-3.2 * x)
        + 0.5099 * math.exp(-0.9423 * x)
        + 0.2802 * math.exp(-0.4029 * x)
        + 0.02817 * math.exp(-0.2016 * x)
    )
    return 14.399645 * z1 * z2 / r * phi


def _pair_energy(repulsion: ZBLRepulsion, z1: int, z2: int, r: float) -> float:
    numbers = torch.tensor([z1, z2])
    edges = torch.tensor([[0, 1], [1, 0]])
    lengths = torch.full((2,), r, dtype=torch.float64)
    return float(repulsion(numbers, edges, lengths).sum())


@pytest.mark.parametrize(("z1", "z2", "r"), [(3, 3, 0.5), (3, 3, 0.35), (1, 8, 0.2), (26, 8, 0.6), (55, 55, 1.0)])
def test_deep_inside_the_cutoff_it_is_the_published_zbl_potential(z1, z2, r):
    repulsion = ZBLRepulsion(cutoff_factor=1.0).double()
    expected = _zbl_by_hand(z1, z2, r)
    r_max = covalent_radii[z1] + covalent_radii[z2]
    envelope = 1 - 28 * (r / r_max) ** 6 + 48 * (r / r_max) ** 7 - 21 * (r / r_max) ** 8
    # the fit's coefficients are quoted to 4 digits in the book: agreement to 0.1 %
    assert _pair_energy(repulsion, z1, z2, r) == pytest.approx(expected * envelope, rel=1e-3)


def test_li_li_at_half_an_angstrom_is_a_wall_of_tens_of_ev():
    # the shipped cutoff (0.38 covalent sums, 0.97 Å for Li-Li): 32 eV at 0.5 Å, 6 eV at 0.7 Å
    repulsion = ZBLRepulsion(cutoff_factor=0.38).double()
    assert _pair_energy(repulsion, 3, 3, 0.5) == pytest.approx(31.9, abs=0.2)
    assert _pair_energy(repulsion, 3, 3, 0.7) == pytest.approx(6.3, abs=0.1)
    assert _pair_energy(repulsion, 3, 3, 0.98) == 0.0


def test_it_vanishes_smoothly_at_its_cutoff():
    repulsion = ZBLRepulsion(cutoff_factor=0.6).double()
    r_max = 0.6 * 2 * covalent_radii[3]
    assert _pair_energy(repulsion, 3, 3, r_max) == 0.0
    assert _pair_energy(repulsion, 3, 3, r_max + 0.3) == 0.0
    # energy and slope go to zero as the cutoff is approached from inside, as the cube and square of the gap
    values = []
    for gap in (1e-3, 2e-3):
        length = torch.full((2,), r_max - gap, dtype=torch.float64, requires_grad=True)
        energy = repulsion(torch.tensor([3, 3]), torch.tensor([[0, 1], [1, 0]]), length).sum()
        (slope,) = torch.autograd.grad(energy, length)
        values.append((float(energy), float(slope.sum())))
    assert 0 < values[0][0] < 1e-7 and abs(values[0][1]) < 1e-4
    assert values[1][0] / values[0][0] == pytest.approx(8.0, rel=0.01)
    assert values[1][1] / values[0][1] == pytest.approx(4.0, rel=0.01)
    assert _pair_energy(repulsion, 3, 3, 0.8 * r_max) > 0.0


def test_each_directed_edge_gives_half_the_pair_to_its_centre():
    repulsion = ZBLRepulsion(cutoff_factor=1.0).double()
    numbers = torch.tensor([3, 8, 3])
    edges = torch.tensor([[0, 1], [1, 0]])  # atom 2 has no close neighbour
    atomic = repulsion(numbers, edges, torch.full((2,), 0.7, dtype=torch.float64))
    half = 0.5 * _pair_energy(repulsion, 3, 8, 0.7)
    torch.testing.assert_close(atomic, torch.tensor([half, half, 0.0], dtype=torch.float64))


def test_a_bad_cutoff_factor_is_refused():
    with pytest.raises(ValueError, match="cutoff factor must be in"):
        ZBLRepulsion(cutoff_factor=0.0)
    with pytest.raises(ValueError, match="pair_repulsion_cutoff_factor must be in"):
        ModelConfig(elements=(3,), fidelities=("pbe",), pair_repulsion=True, pair_repulsion_cutoff_factor=-1.0)
    with pytest.raises(ValueError, match="pair_repulsion must be true or false"):
        ModelConfig(elements=(3,), fidelities=("pbe",), pair_repulsion="yes")


def _with_and_without(factor: float):
    plain = small_model("angular")
    repelled = small_model("angular", pair_repulsion=True, pair_repulsion_cutoff_factor=factor)
    repelled.load_state_dict(plain.state_dict())
    repelled.eval()
    return plain, repelled


def test_the_potential_adds_the_pair_energy_at_every_fidelity_and_nothing_beyond_it():
    plain, repelled = _with_and_without(0.6)
    dimer = Atoms("LiO", positions=[[0, 0, 0], [0, 0, 0.6]], pbc=False)
    expected = _pair_energy(ZBLRepulsion(cutoff_factor=0.6).double(), 3, 8, 0.6)
    assert expected > 10.0
    for fidelity in range(len(plain.fidelities)):
        difference = (
            evaluate(repelled, dimer, fidelity, stress=False)[keys.ENERGY]
            - evaluate(plain, dimer, fidelity, stress=False)[keys.ENERGY]
        )
        assert float(difference) == pytest.approx(expected, rel=1e-9)
    # the test crystal's closest pair is at 1.2 times its covalent sum: no change at all
    crystal = rattled_crystal()
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        torch.testing.assert_close(evaluate(repelled, crystal)[key], evaluate(plain, crystal)[key], rtol=0, atol=0)


def test_forces_and_stress_of_a_close_pair_are_the_energy_s_derivatives():
    _, repelled = _with_and_without(1.3)
    atoms = rattled_crystal(repeat=(2, 1, 1))
    atoms.positions[1] = atoms.positions[0] + np.array([0.45, 0.35, 0.3])  # an O-C pair at 0.64 Å
    out = evaluate(repelled, atoms)
    assert float(out[keys.FORCES].abs().max()) > 10.0  # the wall dominates
    step = 1e-5
    for atom, axis in [(0, 0), (1, 2), (3, 1)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * step
            energies.append(float(evaluate(repelled, moved, stress=False)[keys.ENERGY]))
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert float(out[keys.FORCES][atom, axis]) == pytest.approx(numeric, rel=1e-6, abs=1e-6)
    strain = np.zeros((3, 3))
    strain[0, 1] = strain[1, 0] = step
    energies = []
    for sign in (1, -1):
        deformed = atoms.copy()
        deformed.set_cell(atoms.cell.array @ (np.eye(3) + sign * strain), scale_atoms=True)
        energies.append(float(evaluate(repelled, deformed, stress=False)[keys.ENERGY]))
    numeric_stress = (energies[0] - energies[1]) / (2 * 2 * step) / atoms.get_volume()
    assert float(out[keys.STRESS][0, 0, 1]) == pytest.approx(numeric_stress, rel=1e-6, abs=1e-8)


def test_the_frozen_feature_energy_includes_it():
    """The cross-fidelity prior compares fidelities' energies: both sides must carry the repulsion."""
    _, repelled = _with_and_without(1.3)
    atoms = rattled_crystal()
    atoms.positions[1] = atoms.positions[0] + np.array([0.45, 0.35, 0.3])
    batch = batch_of([atoms], [1], repelled.config.cutoff)
    full = repelled(batch, compute_forces=False)[keys.ENERGY]
    frozen = repelled.energy_with_frozen_features(batch, 1)
    torch.testing.assert_close(frozen.detach(), full.detach(), rtol=1e-12, atol=1e-9)
