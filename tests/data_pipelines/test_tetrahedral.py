"""Ordered tetrahedral alloys: octet-rule fillings of the zincblende and wurtzite cells, and their plan jobs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase.data import atomic_numbers, covalent_radii
from ase.neighborlist import neighbor_list
from pymatgen.core import Composition
from universal_mfp_pipelines.configurations import is_sane
from universal_mfp_pipelines.generate import GenerationSettings, build_plan
from universal_mfp_pipelines.tetrahedral import (
    FRAMEWORKS,
    VALENCE,
    follows_octet_rule,
    sample_tetrahedral_sites,
    tetrahedral_structure,
)

from tests.data_pipelines.teacher_helpers import SMALL_SETTINGS, plan_of_new_option, planned_structures

JUDGED = ("Li2O", "Li2O2", "Fe3O4", "Fe2O3", "MgO", "SiC", "NaCl", "Al2O3", "LiF")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_atom_has_four_neighbours_on_the_other_sublattice_at_the_covalent_bond_length(framework: str):
    cations, anions = ("Si", "Si", "Ge", "Si"), ("C", "C", "C", "Si")
    cell = tetrahedral_structure(framework, cations, anions)
    assert len(cell) == 8 and cell.pbc.all() and is_sane(cell)
    assert Counter(cell.get_chemical_symbols()) == Counter(cations + anions)
    first, _, distance = neighbor_list("ijd", cell, 2.3)
    radius = {e: covalent_radii[atomic_numbers[e]] for e in ("Si", "Ge", "C")}
    bond = np.mean([radius[e] for e in cations]) + np.mean([radius[e] for e in anions])
    assert np.allclose(distance, bond, atol=1e-9)  # ideal tetrahedra (c/a = sqrt(8/3), u = 3/8)
    assert np.bincount(first, minlength=8).tolist() == [4] * 8
    # one element per sublattice: every bond joins the two
    binary = tetrahedral_structure(framework, ("Ge",) * 4, ("C",) * 4)
    first, second = neighbor_list("ij", binary, 2.3)
    symbols = np.array(binary.get_chemical_symbols())
    assert len(first) == 32 and (symbols[first] != symbols[second]).all()


def test_cubic_and_hexagonal_silicon_carbide_have_the_known_lattice():
    cubic = tetrahedral_structure("zincblende8", ("Si",) * 4, ("C",) * 4)
    bond = covalent_radii[14] + covalent_radii[6]
    assert cubic.cell.lengths() == pytest.approx([4 * bond / np.sqrt(3)] * 3)  # 4.32 Å (3C-SiC: 4.36)
    hexagonal = tetrahedral_structure("wurtzite8", ("Si",) * 4, ("C",) * 4)
    assert hexagonal.get_volume() == pytest.approx(cubic.get_volume())  # the same tetrahedra, stacked otherwise


def test_octet_rule():
    assert follows_octet_rule(("Al",) * 4, ("N",) * 4)
    assert follows_octet_rule(("Si", "Si", "Ge", "Si"), ("C",) * 4)
    assert follows_octet_rule(("Ga", "Ga", "Si", "Si"), ("As", "As", "C", "C"))
    assert follows_octet_rule(("Zn", "Ga", "Ga", "Ga"), ("N", "N", "N", "O"))  # 2+9 = 11 below, 15+6 = 21 above
    assert not follows_octet_rule(("Al",) * 4, ("O",) * 4)  # 36 electrons in 8 atoms
    assert not follows_octet_rule(("N",) * 4, ("Al",) * 4)  # an anion on the cation sublattice
    assert not follows_octet_rule(("Mg", "Si", "Si", "Si"), ("P", "C", "C", "C"))  # 31 electrons


def test_sampled_fillings_follow_the_octet_rule():
    rng = np.random.default_rng(0)
    free = [sample_tetrahedral_sites(rng) for _ in range(300)]
    focused = [sample_tetrahedral_sites(rng, with_si_c=True) for _ in range(100)]
    for cations, anions in free + focused:
        assert len(cations) == len(anions) == 4 and follows_octet_rule(cations, anions)
        assert 2 <= len(set(cations) | set(anions)) <= 4
    assert all({"Si", "C"} <= set(c) | set(a) for c, a in focused)
    assert sum({"Si", "C"} <= set(c) | set(a) for c, a in free) < 100
    used = set().union(*(set(c) | set(a) for c, a in free))
    assert used == set(VALENCE)  # every tetrahedral former turns up


def test_bad_cells_are_refused_with_the_problem_named():
    with pytest.raises(ValueError, match="unknown tetrahedral framework 'rocksalt'"):
        tetrahedral_structure("rocksalt", ("Si",) * 4, ("C",) * 4)
    with pytest.raises(ValueError, match="4 sites per sublattice"):
        tetrahedral_structure("zincblende8", ("Si",) * 3, ("C",) * 4)
    with pytest.raises(ValueError, match=r"\['Fe'\] are not tetrahedral formers"):
        tetrahedral_structure("wurtzite8", ("Fe",) * 4, ("C",) * 4)


@pytest.mark.shared_data
def test_plan_puts_each_new_composition_in_both_stackings_and_none_of_the_excluded(small_frames: Path):
    frames = small_frames
    settings = replace(SMALL_SETTINGS, num_tetrahedral_compositions=40, exclude_formulas=JUDGED)
    jobs = plan_of_new_option(settings, frames, num_tetrahedral_compositions=None, exclude_formulas=None)
    stackings: dict[str, set[str]] = {}
    for job, atoms in planned_structures(jobs, "tetrahedral", frames):
        assert follows_octet_rule(job["mapping"]["cations"], job["mapping"]["anions"])
        formula = Composition(atoms.get_chemical_formula()).reduced_formula
        stackings.setdefault(formula, set()).add(job["prototype"])
    assert len(stackings) == 40 and not set(stackings) & set(JUDGED)
    assert sum(set(Composition(f).chemical_system.split("-")) >= {"Si", "C"} for f in stackings) >= 20
    assert all(placed == {f"tetrahedral:{f}" for f in FRAMEWORKS} for placed in stackings.values())
    assert build_plan(settings, frames) == jobs  # deterministic


def test_excluded_formulas_must_be_formulas(tmp_path: Path):
    for bad, problem in (
        ("Xx2", r"is not a chemical formula \(not elements: \['Xx'\]\)"),
        ("", "is not a chemical formula"),
    ):
        settings = replace(SMALL_SETTINGS, exclude_formulas=("SiC", bad))
        with pytest.raises(ValueError, match=f"exclude_formulas: '{bad}' {problem}"):
            build_plan(settings, tmp_path)  # refused before any seed is read


def test_cli_arguments_for_tetrahedral_alloys():
    from universal_mfp_pipelines.cli import build_parser, generation_settings

    args = build_parser().parse_args(
        ["generate", "out", "--num-tetrahedral-compositions", "7", "--exclude-formulas", "SiC,MgO", "LiF"]
    )
    settings = generation_settings(args)
    assert settings.num_tetrahedral_compositions == 7 and settings.exclude_formulas == ("SiC", "MgO", "LiF")
    assert settings == replace(
        GenerationSettings(), num_tetrahedral_compositions=7, exclude_formulas=settings.exclude_formulas
    )
