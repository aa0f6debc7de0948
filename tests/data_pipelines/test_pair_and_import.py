"""Pairing diagnostics on real structures; the extxyz importer on all of ../shared/data/frames."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from ase.io import read
from pymatgen.core import Structure

from data_pipelines._io import sha256_file
from data_pipelines.importer import import_extxyz
from data_pipelines.pair import PairingTolerances, pair_records
from universal_mfp.data.readers import read_extxyz, read_frames


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
        assert splits.setdefault(frame.info["material_id"], frame.info["split"]) == frame.info["split"]
    # a dimer's PBE and r2SCAN curves share one generated id, hence one split
    h2_ids = {key for key, f in source.items() if f.info.get("pair") == "H-H"}
    h2 = [f for f in frames if f.info["frame_id"] in h2_ids]
    assert {f.fidelity for f in h2} == {"pbe", "r2scan"}
    assert len({f.info["material_id"] for f in h2}) == 1 and len({f.info["split"] for f in h2}) == 1
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
