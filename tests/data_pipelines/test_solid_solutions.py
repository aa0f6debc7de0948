"""Ordered 50/50 mixed crystals of rocksalt, antifluorite and corundum, and their plan jobs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from pymatgen.core import Composition, Species
from universal_mfp_pipelines.configurations import is_sane
from universal_mfp_pipelines.generate import GenerationSettings, build_plan
from universal_mfp_pipelines.solid_solutions import (
    CELLS,
    FAMILIES,
    all_mixed_sublattices,
    arrange,
    host_of,
    mixed_crystal,
    shares_a_sublattice_with,
    sublattice_sizes,
)

from tests.data_pipelines.teacher_helpers import SMALL_SETTINGS, plan_of_new_option, planned_structures

JUDGED = ("Li2O", "Li2O2", "Fe3O4", "Fe2O3", "MgO", "SiC", "NaCl", "Al2O3", "LiF")
# cell -> (cation sites, anion sites, anions around a cation, cations around an anion)
COORDINATION = {
    "rocksalt8": (4, 4, 6, 6),
    "rocksalt16": (8, 8, 6, 6),
    "antifluorite12": (8, 4, 4, 8),
    "antifluorite24": (16, 8, 4, 8),
    "corundum10": (4, 6, 6, 4),
    "corundum20": (8, 12, 6, 4),
}


@pytest.mark.parametrize("cell", CELLS)
def test_cells_have_the_prototype_coordination_at_the_ionic_bond_length(cell: str):
    n_cations, n_anions, around_cation, around_anion = COORDINATION[cell]
    assert sublattice_sizes(cell) == (n_cations, n_anions)
    cation, anion, charges = {"rocksalt": ("Mg", "O", (2, -2)), "antifluorite": ("Li", "O", (1, -2))}.get(
        CELLS[cell][0], ("Al", "O", (3, -2))
    )
    atoms = mixed_crystal(cell, [cation] * n_cations, [anion] * n_anions)
    assert len(atoms) == n_cations + n_anions and atoms.pbc.all() and is_sane(atoms)
    bond = Species(cation, charges[0]).ionic_radius + Species(anion, charges[1]).ionic_radius
    first, second, distance = neighbor_list("ijd", atoms, 1.15 * bond)
    symbols = np.array(atoms.get_chemical_symbols())
    assert (symbols[first] != symbols[second]).all()  # the nearest neighbours are all on the other sublattice
    counts = np.bincount(first, minlength=len(atoms))
    assert (counts[symbols == cation] == around_cation).all() and (counts[symbols == anion] == around_anion).all()
    assert distance.mean() == pytest.approx(bond, rel=1e-3)


def test_corundum_is_al2o3_at_its_known_volume():
    alumina = mixed_crystal("corundum10", ["Al"] * 4, ["O"] * 6)
    # Al3+ 0.535 Å + O2- 1.40 Å against corundum's mean Al-O bond of 1.913 Å: 42.5 Å^3 per Al2O3 scaled by 1.0115^3
    assert alumina.get_volume() / 2 == pytest.approx(42.47 * (1.935 / 1.913) ** 3, rel=0.01)
    assert Composition(alumina.get_chemical_formula()).reduced_formula == "Al2O3"


def test_elements_sit_on_their_sublattice_in_the_order_given():
    atoms = mixed_crystal("rocksalt8", ["Na", "K", "K", "Na"], ["Cl", "Cl", "Br", "Br"])
    assert Counter(atoms.get_chemical_symbols()) == Counter({"Na": 2, "K": 2, "Cl": 2, "Br": 2})
    reference = mixed_crystal("rocksalt8", ["Na"] * 4, ["Cl"] * 4)
    cation_sites = [k for k, s in enumerate(reference.get_chemical_symbols()) if s == "Na"]
    assert [atoms.get_chemical_symbols()[k] for k in cation_sites] == ["Na", "K", "K", "Na"]


def test_bad_cells_are_refused_with_the_problem_named():
    with pytest.raises(ValueError, match="unknown mixed-crystal cell 'zincblende8'"):
        mixed_crystal("zincblende8", ["Zn"] * 4, ["S"] * 4)
    with pytest.raises(ValueError, match="rocksalt8 has 4 cation and 4 anion sites"):
        mixed_crystal("rocksalt8", ["Na"] * 3, ["Cl"] * 4)
    with pytest.raises(ValueError, match=r"\['Mg', 'Na'\] with \['Cl'\] do not share one rocksalt family"):
        mixed_crystal("rocksalt8", ["Na", "Mg", "Na", "Mg"], ["Cl"] * 4)
    with pytest.raises(ValueError, match="3 sites cannot be shared equally"):
        arrange(np.random.default_rng(0), ["Na", "K"], 3)


def test_hosts_are_the_binaries_that_are_prototype_compounds():
    found = {formula: host_of(formula) for formula in JUDGED}
    hosts = {f: (h[0].prototype, h[1], h[2]) for f, h in found.items() if h is not None}
    assert hosts == {
        "Li2O": ("antifluorite", "Li", "O"),
        "Fe2O3": ("corundum", "Fe", "O"),
        "MgO": ("rocksalt", "Mg", "O"),
        "NaCl": ("rocksalt", "Na", "Cl"),
        "Al2O3": ("corundum", "Al", "O"),
        "LiF": ("rocksalt", "Li", "F"),
    }


def test_every_mixed_crystal_shares_one_side_between_two_isovalent_elements():
    mixed = all_mixed_sublattices()
    assert len(mixed) == len(set(mixed)) == 319
    for family, cations, anions in mixed:
        assert family in FAMILIES and sorted((len(cations), len(anions))) == [1, 2]
        assert set(cations) <= set(family.cations) and set(anions) <= set(family.anions)
        assert len(set(cations)) == len(cations) and len(set(anions)) == len(anions)
    alumina = host_of("Al2O3")
    near = [m for m in mixed if shares_a_sublattice_with(m, alumina)]
    assert sorted(m[1][1] if m[1][0] == "Al" else m[1][0] for m in near) == sorted(
        e for e in alumina[0].cations if e != "Al"
    )  # Al shares corundum's cations with each of the other eight trivalent cations


@pytest.mark.shared_data
def test_plan_puts_each_new_composition_in_both_cells_those_next_to_an_excluded_binary_first(small_frames: Path):
    frames = small_frames
    settings = replace(SMALL_SETTINGS, num_solid_solution_compositions=60, exclude_formulas=JUDGED)
    jobs = plan_of_new_option(settings, frames, num_solid_solution_compositions=None, exclude_formulas=None)
    cells: dict[str, set[str]] = {}
    for job, atoms in planned_structures(jobs, "solid_solution", frames):
        shared = [Counter(job["mapping"][side]) for side in ("cations", "anions")]
        assert sorted(len(c) for c in shared) == [1, 2]  # two elements share one sublattice equally
        assert all(len(set(c.values())) == 1 for c in shared)
        assert Counter(atoms.get_chemical_symbols()) == shared[0] + shared[1]
        cells.setdefault(Composition(atoms.get_chemical_formula()).reduced_formula, set()).add(job["prototype"])
    assert len(cells) == 60 and not set(cells) & set(JUDGED)
    for formula, placed in cells.items():
        prototype = next(CELLS[p.split(":")[1]][0] for p in placed)
        assert placed == {f"solid_solution:{c}" for c, (p, _) in CELLS.items() if p == prototype}, formula
    # first the 46 mixed crystals that share a sublattice with one of the six excluded prototype compounds
    bonds = {"Al2O3": {"Al", "O"}, "Fe2O3": {"Fe", "O"}, "Li2O": {"Li", "O"}, "LiF": {"Li", "F"}}
    bonds |= {"MgO": {"Mg", "O"}, "NaCl": {"Na", "Cl"}}
    near = [f for f in cells if any(pair <= set(Composition(f).chemical_system.split("-")) for pair in bonds.values())]
    assert len(near) == 46
    with pytest.raises(ValueError, match="only 319 mixed-crystal compositions are new to the plan; 400 were asked"):
        build_plan(replace(settings, num_solid_solution_compositions=400), frames)
    assert build_plan(settings, frames) == jobs  # deterministic


def test_cli_argument_for_mixed_crystals():
    from universal_mfp_pipelines.cli import build_parser, generation_settings

    args = build_parser().parse_args(["generate", "out", "--num-solid-solution-compositions", "5"])
    settings = generation_settings(args)
    assert settings == replace(GenerationSettings(), num_solid_solution_compositions=5)
