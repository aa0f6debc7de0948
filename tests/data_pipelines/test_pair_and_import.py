"""Pairing diagnostics on real structures; the extxyz importer on all of ../shared/data/frames."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from ase.io import read
from pymatgen.core import Structure
from universal_mfp_pipelines.importer import import_extxyz
from universal_mfp_pipelines.pair import PairingTolerances, pair_records

from universal_mfp.data.readers import read_extxyz, read_frames
from universal_mfp.data.splits import group_key, split_by_group, split_of
from universal_mfp.files import sha256_file


def _record(record_id, material_id, fidelity, structure, energy=-1.0):
    return {
        "record_id": record_id,
        "material_id": material_id,
        "fidelity": fidelity,
        "run_type": "GGA" if fidelity == "pbe" else "r2SCAN",
        "formula": structure.composition.reduced_formula,
        "numbers": [s.specie.Z for s in structure],
        "positions": structure.cart_coords.tolist(),
        "cell": structure.lattice.matrix.tolist(),
        "energy": energy,
    }


@pytest.fixture(scope="module")
def real_structures(shared_dir):
    from pymatgen.io.ase import AseAtomsAdaptor

    with gzip.open(shared_dir / "raw/mp-api/test_files__materials_Li_Fe_V.json.gz") as handle:
        materials = json.load(handle)
    gga = {m["task_id"]: Structure.from_dict(m["structure"]) for m in materials}
    r2scan = {
        a.info["matpes_id"]: AseAtomsAdaptor.get_structure(a)
        for a in read(shared_dir / "frames/matpes_element_refs_r2SCAN.extxyz", ":")
    }
    return gga, r2scan


def test_pairing_diagnostics_on_real_structures(real_structures):
    gga, r2scan = real_structures
    records = [
        _record("g51", "mp-51", "pbe", gga["mp-51"]),
        _record("r51", "mp-51", "r2scan", r2scan["mp-51"]),
        # bcc Fe (mp-13) at r2SCAN vs GGA: also matches mp-1271068, MP's duplicate of bcc Fe
        _record("g13", "mp-13", "pbe", gga["mp-13"]),
        _record("r13", "mp-13", "r2scan", r2scan["mp-13"]),
        _record("g1271068", "mp-1271068", "pbe", gga["mp-1271068"]),
        # fcc Fe (mp-150) at GGA against the bcc r2SCAN structure: a structure mismatch
        _record("g150", "mp-150", "pbe", gga["mp-150"]),
        _record("r150", "mp-150", "r2scan", r2scan["mp-13"]),
        _record("g146", "mp-146", "pbe", gga["mp-146"]),
    ]
    rows, summary = pair_records(records)
    by_id = {row["material_id"]: row for row in rows}
    assert by_id["mp-51"]["status"] == "matched"
    assert by_id["mp-51"]["rms_dist"] == pytest.approx(0.0, abs=1e-6)
    assert by_id["mp-51"]["volume_ratio"] == pytest.approx(
        r2scan["mp-51"].volume / len(r2scan["mp-51"]) / (gga["mp-51"].volume / len(gga["mp-51"]))
    )
    assert (by_id["mp-13"]["status"], by_id["mp-13"]["reason"]) == ("ambiguous", "matches_other_material")
    assert by_id["mp-13"]["other_matches"] == ["mp-1271068"]
    assert (by_id["mp-150"]["status"], by_id["mp-150"]["reason"]) == ("unmatched", "structure_mismatch")
    assert (by_id["mp-146"]["status"], by_id["mp-146"]["reason"]) == ("unmatched", "no_r2scan_record")
    assert summary["status"] == {"matched": 1, "ambiguous": 1, "unmatched": 3}
    assert summary["num_formula_groups"] == 3

    # without the cross-material check, mp-13 pairs cleanly
    rows, _ = pair_records(records, PairingTolerances(cross_check=False))
    assert {r["material_id"]: r["status"] for r in rows}["mp-13"] == "matched"


def test_pairing_without_material_ids(real_structures):
    gga, r2scan = real_structures
    records = [
        _record("g-fe-bcc", None, "pbe", gga["mp-13"]),
        _record("g-fe-bcc-dup", None, "pbe", gga["mp-1271068"]),
        _record("g-fe-fcc", None, "pbe", gga["mp-150"]),
        _record("r-fe-bcc", None, "r2scan", r2scan["mp-13"]),
        _record("g-li", None, "pbe", gga["mp-51"]),
        _record("r-li", None, "r2scan", r2scan["mp-51"]),
    ]
    rows, summary = pair_records(records)
    pairs = {(r["gga_record_id"], r["r2scan_record_id"]): (r["status"], r["reason"]) for r in rows}
    assert pairs[("g-li", "r-li")] == ("matched", "")
    ambiguous = next(r for r in rows if r["r2scan_record_id"] == "r-fe-bcc")
    assert ambiguous["status"] == "ambiguous" and ambiguous["other_matches"] == ["g-fe-bcc", "g-fe-bcc-dup"]
    assert pairs[("g-fe-fcc", None)] == ("unmatched", "no_r2scan_record")
    assert summary["status"] == {"matched": 1, "ambiguous": 1, "unmatched": 1}


def test_import_all_shared_frames(tmp_path, shared_dir):
    frames_dir = shared_dir / "frames"
    manifest = import_extxyz([frames_dir], tmp_path / "ds", fractions=(0.8, 0.1, 0.1))
    source = {}
    for path in sorted(frames_dir.glob("*.extxyz")):
        fidelity = "pbe" if path.name.startswith(("mp_pbe_element", "vasp_Si")) else None
        source.update({f.info["frame_id"]: f for f in read_extxyz(path, fidelity=fidelity)})
    assert len(source) == 10440
    assert manifest["rows"]["total"] == 10440
    assert manifest["rows"]["by_fidelity"] == {"pbe": 4555 + 89 + 375 + 604 + 789 + 4, "r2scan": 3962 + 62}
    for shard in manifest["shards"]:
        assert sha256_file(tmp_path / "ds" / shard["file"]) == shard["sha256"]
    assert sum(s["rows"] for s in manifest["shards"]) == 10440

    frames = read_frames(tmp_path / "ds")
    assert len(frames) == 10440
    splits = {}
    for frame in frames:
        original = source[frame.info["frame_id"]]
        assert frame.fidelity == original.fidelity
        assert np.array_equal(frame.numbers, original.numbers)
        assert np.array_equal(frame.positions, original.positions)
        assert np.array_equal(frame.cell, original.cell)
        assert frame.energy == original.energy
        for name in ("forces", "stress"):
            a, b = getattr(frame, name), getattr(original, name)
            assert (a is None and b is None) or np.array_equal(a, b)
        assert splits.setdefault(group_key(frame), frame.info["split"]) == frame.info["split"]
        # the shard's split is the one the trainer computes for the original frame
        assert frame.info["split"] == split_of(original, val_fraction=0.1, test_fraction=0.1, seed=0)
        assert frame.info.get("material_id") == original.info.get("material_id")  # no invented ids
    # each point of a dimer curve: PBE and r2SCAN in one split; different points spread over the splits
    h2_ids = {key for key, f in source.items() if f.info.get("pair") == "H-H"}
    h2 = [f for f in frames if f.info["frame_id"] in h2_ids]
    assert {f.fidelity for f in h2} == {"pbe", "r2scan"}
    by_distance: dict = {}
    for frame in h2:
        by_distance.setdefault(frame.info["distance"], set()).add(frame.info["split"])
    assert all(len(s) == 1 for s in by_distance.values())
    assert len({f.info["split"] for f in h2}) > 1
    # MatPES crystals keep their ids: the PBE and r2SCAN crystal of one element share a split
    matpes = [f for f in frames if f.info.get("matpes_id")]
    assert len(matpes) == 89 + 62 and all(isinstance(f.info["energy_atomic"], float) for f in matpes)
    functionals = {f.info["frame_id"]: f.info.get("functional") for f in frames}
    assert functionals["mp_pbe_element_polymorphs:0"] == "GGA"
    stats = manifest["statistics"]
    assert stats["r2scan"]["frames_with_forces"] == 3962 + 62
    assert stats["pbe"]["frames_with_stress"] == 89 + 604 + 4

    with pytest.raises(FileExistsError, match="--overwrite"):
        import_extxyz([frames_dir / "vasp_Si_old_double_relax_frames.extxyz"], tmp_path / "ds")
    manifest = import_extxyz([frames_dir / "vasp_Si_old_double_relax_frames.extxyz"], tmp_path / "ds", overwrite=True)
    assert manifest["rows"]["total"] == 4
    assert len(read_frames(tmp_path / "ds")) == 4


def test_build_refuses_foreign_parquet(tmp_path, shared_dir):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds/user.parquet").write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match="no manifest lists"):
        import_extxyz([shared_dir / "frames/vasp_Si_old_double_relax_frames.extxyz"], tmp_path / "ds", overwrite=True)
    assert (tmp_path / "ds/user.parquet").read_bytes() == b"not ours"


def test_training_from_imported_shards_sees_the_same_splits_as_from_the_files(small_real_set, tmp_path):
    """The importer and the trainer share one split rule: shards reproduce the extxyz run's datasets."""
    import yaml

    from tests.training.conftest import write_config
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import read_sources_with_repeats

    files = sorted(small_real_set.glob("*.extxyz"))
    raw = yaml.safe_load(write_config(tmp_path / "a", small_real_set).read_text())
    raw["data"].update(val_fraction=0.25, test_fraction=0.25)
    raw["data"]["sources"] = [{"path": str(p), "fidelity": "pbe_matpes"} if "PBE" in p.name else str(p) for p in files]
    by_file = tmp_path / "a" / "files.yaml"
    by_file.write_text(yaml.safe_dump(raw))
    for path in files:
        import_extxyz([path], tmp_path / "shards" / path.stem, fractions=(0.5, 0.25, 0.25), seed=raw["seed"])
    raw["data"]["sources"] = [
        {"path": str(tmp_path / "shards" / p.stem), "fidelity": "pbe_matpes"}
        if "PBE" in p.name
        else str(tmp_path / "shards" / p.stem)
        for p in files
    ]
    by_shard = tmp_path / "a" / "shards.yaml"
    by_shard.write_text(yaml.safe_dump(raw))

    datasets = []
    for path in (by_file, by_shard):
        config = load_run_config(path)
        frames, _ = read_sources_with_repeats(config)
        splits = split_by_group(frames, val_fraction=0.25, test_fraction=0.25, seed=config.seed)
        datasets.append({name: [frames[i] for i in idx] for name, idx in splits.items()})
    assert {f.fidelity for f in datasets[1]["train"]} == {"pbe_matpes", "r2scan"}
    for name in ("train", "val", "test"):
        assert len(datasets[0][name]) == len(datasets[1][name]) > 0, name
        for a, b in zip(datasets[0][name], datasets[1][name], strict=True):
            assert a.fidelity == b.fidelity and a.energy == b.energy
            assert np.array_equal(a.positions, b.positions) and np.array_equal(a.numbers, b.numbers)
            assert b.info["split"] == name
