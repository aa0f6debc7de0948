"""The committed teacher supplements (datasets/teacher-polymorphs, datasets/teacher-tetrahedral).

Intact, paired, labelled by the main dataset's teachers and split by its rule; polymorphs of common binary
compositions, and octet-rule tetrahedral alloys in both stackings, half of them with Si and C.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymatgen.core import Composition
from universal_mfp_pipelines.generate import POLYMORPH_ELEMENTS
from universal_mfp_pipelines.teacher_stats import dataset_statistics, verify_manifest
from universal_mfp_pipelines.tetrahedral import FRAMEWORKS, VALENCE

from tests.conftest import REPO_ROOT
from tests.data_pipelines.teacher_helpers import composition_groups

MAIN = REPO_ROOT / "datasets" / "teacher"
POLYMORPHS = REPO_ROOT / "datasets" / "teacher-polymorphs"
TETRAHEDRAL = REPO_ROOT / "datasets" / "teacher-tetrahedral"
SUPPLEMENTS = (POLYMORPHS, TETRAHEDRAL)
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
    assert stats["complete_pairs"] == stats["structures"] >= 5_000 and stats["compositions"] >= 450
    assert stats["all_energies_finite"] and stats["rows_with_forces"] == stats["rows"] == stats["rows_with_stress"]


def test_labelled_by_the_main_datasets_teachers_and_split_by_its_rule(supplement: Path):
    teach, main_teach = (json.loads((folder / "teach.json").read_text()) for folder in (supplement, MAIN))
    assert teach["teachers"] == main_teach["teachers"] and teach["split"] == main_teach["split"]
    groups = composition_groups(supplement)
    assert all(len(g["splits"]) == 1 for g in groups.values())
    # a composition in both datasets has the same split in both: the rule depends on the composition only
    main = composition_groups(MAIN)
    shared = set(main) & set(groups)
    assert shared and all(main[g]["splits"] == groups[g]["splits"] for g in shared)


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
