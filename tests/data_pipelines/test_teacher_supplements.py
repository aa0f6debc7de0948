"""The committed teacher supplements (datasets/teacher-polymorphs, -tetrahedral, -solid-solutions, -eos).

Intact, paired, labelled by the main dataset's teachers and split by its rule; polymorphs of common binary
compositions, octet-rule tetrahedral alloys in both stackings, half of them with Si and C, 50/50 mixed
crystals of rocksalt, antifluorite and corundum in two cells each, and volume scans of elemental crystals and
mixed crystals that carry the teachers' bulk moduli.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pymatgen.core import Composition
from universal_mfp_pipelines.generate import POLYMORPH_ELEMENTS
from universal_mfp_pipelines.solid_solutions import CELLS, FAMILIES, all_mixed_sublattices, host_of
from universal_mfp_pipelines.splits import assign_split
from universal_mfp_pipelines.teacher_stats import dataset_statistics, verify_manifest
from universal_mfp_pipelines.tetrahedral import FRAMEWORKS, VALENCE

from tests.conftest import REPO_ROOT
from tests.data_pipelines.teacher_helpers import composition_groups

MAIN = REPO_ROOT / "datasets" / "teacher"
POLYMORPHS = REPO_ROOT / "datasets" / "teacher-polymorphs"
TETRAHEDRAL = REPO_ROOT / "datasets" / "teacher-tetrahedral"
SOLID_SOLUTIONS = REPO_ROOT / "datasets" / "teacher-solid-solutions"
EOS = REPO_ROOT / "datasets" / "teacher-eos"
SUPPLEMENTS = (POLYMORPHS, TETRAHEDRAL, SOLID_SOLUTIONS, EOS)
# the fewest structures and compositions each supplement holds
SIZES = {POLYMORPHS: (5_000, 450), TETRAHEDRAL: (5_000, 450), SOLID_SOLUTIONS: (2_000, 190), EOS: (3_000, 130)}
EOS_FACTORS = (0.88, 0.92, 0.96, 1.04, 1.08, 1.12)
# the compositions the fixed checks and the r2SCAN formation-energy goal judge (configs' exclude_compositions)
JUDGED = ("Li2O", "Li2O2", "Fe3O4", "Fe2O3", "MgO", "SiC", "NaCl", "Al2O3", "LiF")


@pytest.fixture(scope="module", params=SUPPLEMENTS, ids=lambda p: p.name)
def supplement(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.fixture(scope="module")
def statistics() -> dict[Path, dict]:
    return {folder: dataset_statistics(folder) for folder in SUPPLEMENTS}


def test_every_shard_matches_its_checksum_and_the_folder_is_small(supplement: Path):
    manifest = verify_manifest(supplement)  # every shard's bytes match the manifest's sha256
    assert {entry["file"] for entry in manifest["shards"]} == {p.name for p in supplement.glob("labels-*.parquet")}
    assert sum(p.stat().st_size for p in supplement.iterdir()) < 10 * 2**20


def test_every_structure_is_paired_with_finite_labels(supplement: Path, statistics: dict[Path, dict]):
    stats = statistics[supplement]
    structures, compositions = SIZES[supplement]
    assert stats["complete_pairs"] == stats["structures"] >= structures and stats["compositions"] >= compositions
    assert stats["all_energies_finite"] and stats["rows_with_forces"] == stats["rows"] == stats["rows_with_stress"]


def test_labelled_by_the_main_datasets_teachers_and_split_by_its_rule(supplement: Path):
    teach, main_teach = (json.loads((folder / "teach.json").read_text()) for folder in (supplement, MAIN))
    assert teach["teachers"] == main_teach["teachers"] and teach["split"] == main_teach["split"]
    groups = composition_groups(supplement)
    rule = teach["split"]
    assert all(
        g["splits"] == {assign_split(f"composition_group:{n}", rule["fractions"], rule["seed"])}
        for n, g in groups.items()
    )
    # so a composition in both datasets has the same split in both: the rule depends on the composition only
    main = composition_groups(MAIN)
    assert all(main[g]["splits"] == groups[g]["splits"] for g in set(main) & set(groups))


def test_polymorphs_are_binary_compositions_of_common_elements_most_in_several_prototypes(
    statistics: dict[Path, dict],
):
    stats = statistics[POLYMORPHS]
    assert set(stats["compositions_by_arity"]) == {2}
    assert set(stats["structures_by_job_kind"]) == {"polymorph"}
    assert set(stats["structures_per_element"]) <= set(POLYMORPH_ELEMENTS)
    groups = composition_groups(POLYMORPHS)
    assert sum(1 for g in groups.values() if len(g["prototypes"]) >= 2) >= 0.5 * len(groups)


def test_tetrahedral_alloys_come_in_both_stackings_half_with_silicon_and_carbon_and_none_judged(
    statistics: dict[Path, dict],
):
    stats = statistics[TETRAHEDRAL]
    assert set(stats["structures_by_job_kind"]) == {"tetrahedral"}
    assert set(stats["structures_per_element"]) <= set(VALENCE)
    groups = composition_groups(TETRAHEDRAL)
    both = {f"tetrahedral:{f}" for f in FRAMEWORKS}
    assert sum(1 for g in groups.values() if g["prototypes"] == both) >= 0.9 * len(groups)
    with_si_c = [g for g in groups if {"Si", "C"} <= {str(e) for e in Composition(g).elements}]
    assert len(with_si_c) >= 0.45 * len(groups)
    assert not {Composition(g).reduced_formula for g in groups} & set(JUDGED)


def test_mixed_crystals_share_one_sublattice_come_in_both_cells_and_hold_the_judged_bonds(
    statistics: dict[Path, dict],
):
    stats = statistics[SOLID_SOLUTIONS]
    assert set(stats["structures_by_job_kind"]) == {"solid_solution"}
    assert set(stats["structures_per_element"]) <= {e for f in FAMILIES for e in (*f.cations, *f.anions)}
    groups = composition_groups(SOLID_SOLUTIONS)
    cells = {p: {f"solid_solution:{c}" for c, (q, _) in CELLS.items() if q == p} for p, _ in CELLS.values()}
    assert all(g["prototypes"] in cells.values() for g in groups.values())
    assert sum(1 for g in groups.values() if len(g["prototypes"]) == 2) >= 0.9 * len(groups)
    assert not {Composition(g).reduced_formula for g in groups} & set(JUDGED)
    assert all(len(Composition(g).elements) == 3 for g in groups)
    # every mixed crystal that shares a sublattice with a judged binary is there (46 of them)
    hosts = [h for h in (host_of(f) for f in JUDGED) if h is not None]
    near = [m for m in all_mixed_sublattices() if any(m[0] == h[0] and h[1] in m[1] and h[2] in m[2] for h in hosts)]
    formulas = {Composition(g).reduced_formula for g in groups}
    assert len(near) == 46 and all(
        Composition(" ".join((*m[1], *m[2]))).chemical_system in {Composition(f).chemical_system for f in formulas}
        for m in near
    )


def _volume_scans(folder: Path) -> dict[tuple[str, str, str], list[tuple[float, float]]]:
    """Per (composition group, prototype, fidelity): (volume, energy) of the scanned crystal and its scans.

    The scanned crystal is the relaxed one, or the starting one when the driver found nothing to relax.
    """
    frames: dict[tuple[str, str, str], dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(folder.glob("labels-*.parquet")):
        for row in pq.read_table(path, columns=["fidelity", "cell", "energy", "extra_info"]).to_pylist():
            info = json.loads(row["extra_info"])
            volume = abs(np.linalg.det(np.asarray(row["cell"], dtype=float).reshape(3, 3)))
            key = (info["composition_group"], info["prototype"], row["fidelity"])
            frames[key][info["config_type"]].append((volume, row["energy"]))
    return {
        key: [*(by_type.get("relaxed") or by_type.get("initial", [])), *by_type["eos"]]
        for key, by_type in frames.items()
        if "eos" in by_type
    }


def test_volume_scans_cover_every_teacher_element_and_carry_the_teachers_bulk_moduli(
    statistics: dict[Path, dict], small_frames: Path
):
    from ase.eos import EquationOfState
    from ase.units import GPa
    from universal_mfp_pipelines.configurations import is_sane
    from universal_mfp_pipelines.generate import _base_structure, _elemental_jobs

    stats = statistics[EOS]
    assert set(stats["structures_by_job_kind"]) == {"elemental", "solid_solution"}
    scans = _volume_scans(EOS)
    full = {key for key, points in scans.items() if len(points) == 1 + len(EOS_FACTORS)}
    scanned = {str(e) for group, prototype, _ in full if prototype in ("fcc", "bcc", "hcp") for e in Composition(group)}
    # every element whose starting crystal is a physical one (the gases' guesses from covalent radii are denser
    # than any solid, so the generator drops them: H, He, Ne and F)
    startable = {
        job["mapping"]["Al"]
        for job in _elemental_jobs(None)
        if job["prototype"] in ("fcc", "bcc", "hcp") and is_sane(_base_structure(job, str(small_frames))[0])
    }
    assert scanned == startable and len(scanned) >= 88
    for key in full:  # each scan is its relaxed crystal's volume times the factors
        volumes = sorted(v for v, _ in scans[key])
        relaxed = volumes[len(EOS_FACTORS) // 2]
        assert np.allclose(volumes, sorted([relaxed, *(f * relaxed for f in EOS_FACTORS)]), rtol=1e-6)
    # fcc Al's bulk modulus from each teacher's labels here, against the same teacher's on the ideal cell (ASE
    # equation of state, docs/training_v1.md, cycle 7): CHGNet 0.3.0 54.1 GPa, CHGNet r2SCAN 65.0
    for fidelity, teacher_gpa in (("pbe_chgnet", 54.1), ("r2scan_chgnet", 65.0)):
        volumes, energies = zip(*sorted(scans["Al", "fcc", fidelity]), strict=True)
        _, _, modulus = EquationOfState(list(volumes), list(energies), eos="birchmurnaghan").fit()
        assert modulus / GPa == pytest.approx(teacher_gpa, rel=0.1), fidelity
