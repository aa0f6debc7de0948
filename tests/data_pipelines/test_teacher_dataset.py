"""The committed teacher dataset (datasets/teacher): intact, large, diverse, paired and split without leaks."""

from __future__ import annotations

import json

import pytest
from universal_mfp_pipelines.teacher_stats import dataset_statistics, verify_manifest

from tests.conftest import REPO_ROOT

DATASET = REPO_ROOT / "datasets" / "teacher"


@pytest.fixture(scope="module")
def statistics() -> dict:
    verify_manifest(DATASET)  # every shard's bytes match the manifest's sha256
    return dataset_statistics(DATASET)


def test_every_shard_matches_its_checksum_and_the_folder_is_small():
    manifest = verify_manifest(DATASET)
    listed = {entry["file"] for entry in manifest["shards"]}
    assert listed == {p.name for p in DATASET.glob("labels-*.parquet")}
    assert sum(p.stat().st_size for p in DATASET.iterdir()) < 50 * 2**20


def test_size_and_coverage(statistics: dict):
    assert statistics["complete_pairs"] == statistics["structures"] >= 30_000
    assert statistics["elements"] >= 85
    assert statistics["compositions"] >= 5_000
    assert statistics["compositions_by_arity"].get(4, 0) >= 500  # quaternaries too
    assert statistics["all_energies_finite"]
    assert statistics["rows_with_forces"] == statistics["rows"]


def test_no_composition_straddles_splits(statistics: dict):
    assert statistics["compositions_in_more_than_one_split"] == 0
    assert set(statistics["compositions_by_split"]) == {"train", "val", "test"}


def test_teachers_are_recorded_with_their_energy_scales():
    teachers = json.loads((DATASET / "teach.json").read_text())["teachers"]
    assert teachers["pbe_chgnet"]["spec"] == "chgnet:0.3.0"
    assert teachers["pbe_chgnet"]["energy_scale"] == "mp_gga_raw"
    assert teachers["r2scan_chgnet"]["spec"] == "chgnet:r2scan"
    assert teachers["r2scan_chgnet"]["energy_scale"] == "mp_r2scan"
    assert all(len(t["weights_sha256"]) == 64 for t in teachers.values())
