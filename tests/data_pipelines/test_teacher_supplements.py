"""The committed polymorph supplement (datasets/teacher-polymorphs).

Intact, paired, polymorphs of common compositions, labelled by the main dataset's teachers, split by its rule.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest
from universal_mfp_pipelines.generate import POLYMORPH_ELEMENTS
from universal_mfp_pipelines.teacher_stats import dataset_statistics, verify_manifest

from tests.conftest import REPO_ROOT

SUPPLEMENT = REPO_ROOT / "datasets" / "teacher-polymorphs"
MAIN = REPO_ROOT / "datasets" / "teacher"


def _groups(folder) -> dict[str, dict[str, set]]:
    """Per composition group: its splits and its prototypes."""
    out: dict[str, dict[str, set]] = defaultdict(lambda: {"splits": set(), "prototypes": set()})
    for path in sorted(folder.glob("labels-*.parquet")):
        table = pq.read_table(path, columns=["split", "extra_info"])
        splits, extras = table.column("split").to_pylist(), table.column("extra_info").to_pylist()
        for split, extra in zip(splits, extras, strict=True):
            info = json.loads(extra)
            out[info["composition_group"]]["splits"].add(split)
            out[info["composition_group"]]["prototypes"].add(info["prototype"])
    return out


@pytest.fixture(scope="module")
def statistics() -> dict:
    verify_manifest(SUPPLEMENT)  # every shard's bytes match the manifest's sha256
    return dataset_statistics(SUPPLEMENT)


def test_every_shard_matches_its_checksum_and_the_folder_is_small(statistics: dict):
    manifest = verify_manifest(SUPPLEMENT)
    assert {entry["file"] for entry in manifest["shards"]} == {p.name for p in SUPPLEMENT.glob("labels-*.parquet")}
    assert sum(p.stat().st_size for p in SUPPLEMENT.iterdir()) < 10 * 2**20


def test_binary_compositions_of_common_elements_every_structure_paired(statistics: dict):
    assert statistics["complete_pairs"] == statistics["structures"] >= 5_000
    assert statistics["all_energies_finite"] and statistics["rows_with_forces"] == statistics["rows"]
    assert set(statistics["compositions_by_arity"]) == {2} and statistics["compositions"] >= 450
    assert set(statistics["structures_by_job_kind"]) == {"polymorph"}
    assert set(statistics["structures_per_element"]) <= set(POLYMORPH_ELEMENTS)


def test_most_compositions_come_in_several_polymorphs_and_none_straddles_splits():
    supplement = _groups(SUPPLEMENT)
    several = sum(1 for g in supplement.values() if len(g["prototypes"]) >= 2)
    assert several >= 0.5 * len(supplement)
    assert all(len(g["splits"]) == 1 for g in supplement.values())
    # a composition in both datasets has the same split in both: the rule depends on the composition only
    main = _groups(MAIN)
    shared = set(main) & set(supplement)
    assert shared and all(main[g]["splits"] == supplement[g]["splits"] for g in shared)


def test_labelled_by_the_main_datasets_teachers_with_its_split():
    supplement = json.loads((SUPPLEMENT / "teach.json").read_text())
    main = json.loads((MAIN / "teach.json").read_text())
    assert supplement["teachers"] == main["teachers"] and supplement["split"] == main["split"]
