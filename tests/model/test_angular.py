"""Angular invariants: what they tell apart that the l <= 2 network cannot, and that they start as nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from tests.model.helpers import evaluate, random_rotation, rattled_crystal, small_model
from universal_mfp.data import keys
from universal_mfp.model import ModelConfig, build_model

# Mg's nearest-neighbour spacing: fcc and ideal hcp have the same distances out to 5.2 Å (1.63 spacings)
MG_SPACING = 3.2


def _mg(phase: str):
    if phase == "fcc":
        return bulk("Mg", "fcc", a=MG_SPACING * np.sqrt(2))
    return bulk("Mg", "hcp", a=MG_SPACING, c=MG_SPACING * np.sqrt(8 / 3))


def _energy_per_atom(model, atoms) -> float:
    fidelity = len(model.config.fidelities) - 1
    return float(evaluate(model, atoms, fidelity, stress=False)[keys.ENERGY][0]) / len(atoms)


def _mg_model(angular_lmax: int) -> torch.nn.Module:
    config = ModelConfig(
        elements=(12,),
        fidelities=("pbe",),
        cutoff=5.0,
        num_layers=3,
        hidden_irreps="16x0e+8x1o+4x2e",
        lmax_edge=2,
        radial_mlp_hidden=(16,),
        readout_hidden=8,
        fidelity_conditioning="heads",
        avg_num_neighbors=30.0,
        dtype="float64",
        angular_lmax=angular_lmax,
        angular_channels=4,
    )
    model = build_model(config, seed=0)
    if model.angular is not None:
        with torch.no_grad():
            model.angular.output.weight.normal_(generator=torch.Generator().manual_seed(1))
    return model.eval()


def test_degree_two_network_cannot_tell_mg_fcc_from_hcp_and_the_invariants_can():
    """Within 5 Å, fcc and ideal hcp Mg differ only in the l >= 3 moments of the first shell."""
    plain = _mg_model(0)
    assert _energy_per_atom(plain, _mg("fcc")) == pytest.approx(_energy_per_atom(plain, _mg("hcp")), abs=1e-9)
    angular = _mg_model(4)
    assert abs(_energy_per_atom(angular, _mg("fcc")) - _energy_per_atom(angular, _mg("hcp"))) > 1e-3
    # and the invariants themselves: fcc has no l = 3 moment (inversion), hcp has one; l = 4 differ
    for phase, has_l3 in (("fcc", False), ("hcp", True)):
        atoms = _mg(phase)
        batch = _graph(atoms, 5.0)
        power = angular.angular.invariants(*batch).reshape(len(atoms), 4, 4)
        assert torch.all(power[..., :2].abs() < 1e-12)  # l = 1, 2 vanish in both
        assert bool((power[..., 2].abs() > 1e-4).any()) == has_l3


def _graph(atoms, cutoff):
    from universal_mfp.data.neighbors import neighbor_list

    centre, neighbour, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    vectors = atoms.positions[neighbour] - atoms.positions[centre] + shifts @ atoms.cell.array
    vectors = torch.as_tensor(vectors, dtype=torch.float64)
    model = _mg_model(4)
    radial = model.radial(torch.linalg.vector_norm(vectors, dim=1))
    species = torch.zeros(len(atoms), dtype=torch.long)
    return species, torch.as_tensor(np.stack([centre, neighbour])), model.edge_harmonics(vectors), radial


def test_invariants_are_invariant_under_rotation_reflection_and_translation():
    model = small_model("angular", "float64")
    atoms = rattled_crystal()
    moved = atoms.copy()
    rotation = random_rotation(5, proper=False)
    moved.positions = atoms.positions @ rotation.T + np.array([1.0, -2.0, 0.5])
    moved.cell = atoms.cell.array @ rotation.T
    assert _energy_per_atom(model, moved) == pytest.approx(_energy_per_atom(model, atoms), abs=1e-10)


def test_a_network_with_invariants_starts_as_the_one_without():
    """The invariants' output map starts at zero: given the weights of a network without them, a network with
    them is the same function (how ``init_from`` grows a trained network)."""
    without = small_model("heads", "float64")
    grown = build_model(without.config.replace(angular_lmax=4, angular_channels=3), seed=5)
    missing, unexpected = grown.load_state_dict(without.state_dict(), strict=False)
    assert not unexpected and missing and all(name.startswith("angular.") for name in missing)
    grown.eval()
    atoms = rattled_crystal()
    before, after = evaluate(without, atoms), evaluate(grown, atoms)
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=1e-12)


def test_bad_angular_settings_are_refused():
    with pytest.raises(ValueError, match="angular_lmax must be >= 0"):
        ModelConfig(elements=(1,), fidelities=("pbe",), angular_lmax=-1)
    with pytest.raises(ValueError, match="angular_channels >= 1"):
        ModelConfig(elements=(1,), fidelities=("pbe",), angular_lmax=2, angular_channels=0)
