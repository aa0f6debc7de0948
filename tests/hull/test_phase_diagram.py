"""Hand-computed hulls on energies: exact values, no model involved."""

import pytest

from universal_mfp.hull import ConvexHulls, PhaseEnergy, energies_above_hull

# A-B binary with A = Li, B = Na; elements at 0 eV/atom, AB at -1 eV/atom.
# The hull is the line from A (x_B=0, 0) to AB (x_B=1/2, -1) to B (x_B=1, 0).
# A3B (x_B=1/4) sits above the hull point -0.5 eV/atom; at -0.3 eV/atom it is 0.2 eV/atom above.
REFERENCES = [PhaseEnergy("Li-ref", "Li2", 0.0), PhaseEnergy("Na-ref", "Na", 0.0)]


def test_binary_on_and_above_hull():
    candidates = [
        PhaseEnergy("AB", "LiNa", -2.0),  # -1 eV/atom: on the hull
        PhaseEnergy("A3B", "Li3Na", 4 * -0.3),  # 0.2 above
        PhaseEnergy("AB-poly", "Li2Na2", 4 * -0.9),  # polymorph of AB, 0.1 above
        PhaseEnergy("AB3", "LiNa3", 4 * -0.5),  # exactly on the AB-B tie line: 0 above, formation -0.5
    ]
    points = {p.id: p for p in energies_above_hull(candidates, REFERENCES)}
    assert points["AB"].e_above_hull == 0.0
    assert points["AB"].stable
    assert points["AB"].formation_energy_per_atom == pytest.approx(-1.0, abs=1e-12)
    assert points["A3B"].e_above_hull == pytest.approx(0.2, abs=1e-12)
    assert not points["A3B"].stable
    assert points["A3B"].formation_energy_per_atom == pytest.approx(-0.3, abs=1e-12)
    assert points["AB-poly"].e_above_hull == pytest.approx(0.1, abs=1e-12)
    assert points["AB3"].e_above_hull == pytest.approx(0.0, abs=1e-12)
    assert points["AB3"].stable
    assert points["AB"].chemsys == "Li-Na"
    assert points["A3B"].formula == "NaLi3"


def test_non_zero_elemental_energies_shift_formation_not_hull_distance():
    # elements at -2 (Li) and -3 (Na) eV/atom; AB 1 eV/atom below the elements' mean
    refs = [PhaseEnergy("Li-ref", "Li", -2.0), PhaseEnergy("Na-ref", "Na", -3.0)]
    ab = PhaseEnergy("AB", "LiNa", 2 * (-2.5 - 1.0))
    # A3B hull point: 3/4*(-2) + 1/4*(-3) midway to AB... hull at x=1/4 is mean of A (-2) and AB (-3.5) = -2.75
    a3b = PhaseEnergy("A3B", "Li3Na", 4 * (-2.75 + 0.05))
    points = {p.id: p for p in energies_above_hull([ab, a3b], refs)}
    assert points["AB"].formation_energy_per_atom == pytest.approx(-1.0, abs=1e-12)
    assert points["A3B"].e_above_hull == pytest.approx(0.05, abs=1e-12)
    assert points["A3B"].formation_energy_per_atom == pytest.approx(-2.7 - (0.75 * -2 + 0.25 * -3), abs=1e-12)


def test_elemental_polymorphs():
    refs = [PhaseEnergy("Si-a", "Si2", -10.0)]
    cands = [PhaseEnergy("Si-b", "Si8", 8 * -4.9), PhaseEnergy("Si-c", "Si", -5.0)]
    points = {p.id: p for p in energies_above_hull(cands, refs)}
    assert points["Si-b"].e_above_hull == pytest.approx(0.1, abs=1e-12)
    assert points["Si-c"].e_above_hull == 0.0  # degenerate with the reference: on the hull


def test_candidates_compete_or_not():
    refs = REFERENCES
    cands = [PhaseEnergy("AB", "LiNa", -2.0), PhaseEnergy("AB-poly", "LiNa", -1.6)]
    competing = {p.id: p.e_above_hull for p in energies_above_hull(cands, refs)}
    assert competing["AB-poly"] == pytest.approx(0.2)
    alone = {p.id: p.e_above_hull for p in energies_above_hull(cands, refs, candidates_compete=False)}
    assert alone["AB"] == pytest.approx(-1.0)  # below the references-only hull
    assert alone["AB-poly"] == pytest.approx(-0.8)


def test_missing_elements_are_named():
    with pytest.raises(ValueError, match=r"\['Cu', 'O'\]"):
        energies_above_hull([PhaseEnergy("x", "LiCuO2", -10.0)], REFERENCES)
    # a compound containing the element does not replace an elemental reference
    with pytest.raises(ValueError, match=r"\['O'\]"):
        energies_above_hull([PhaseEnergy("x", "Li2O", -10.0)], [*REFERENCES, PhaseEnergy("y", "Na2O", -9.0)])


def test_duplicate_ids_rejected():
    with pytest.raises(ValueError, match="unique"):
        ConvexHulls([PhaseEnergy("a", "Li", 0.0), PhaseEnergy("a", "Na", 0.0)])


def test_ternary_hull_cached_per_system():
    phases = [
        PhaseEnergy("Li", "Li", 0.0),
        PhaseEnergy("Na", "Na", 0.0),
        PhaseEnergy("O", "O2", 0.0),
        PhaseEnergy("Li2O", "Li2O", 3 * -2.0),
        PhaseEnergy("Na2O", "Na2O", 3 * -1.5),
    ]
    hulls = ConvexHulls(phases)
    # LiNaO at x = (1/3, 1/3, 1/3) is the midpoint of Li2O and Na2O: hull energy -1.75 eV/atom
    point = hulls.locate(PhaseEnergy("LiNaO", "LiNaO", 3 * -1.70))
    assert point.e_above_hull == pytest.approx(0.05, abs=1e-12)
    assert hulls.phase_diagram(["O", "Na", "Li"]) is hulls.phase_diagram(["Li", "Na", "O"])
