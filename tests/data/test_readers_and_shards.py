from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from universal_mfp.data import read_extxyz, read_frames, read_shard, write_shard


def _write_labelled(path, functional):
    frames = []
    for k in range(3):
        atoms = bulk("Si", "diamond", a=5.4 + 0.01 * k)
        atoms.info["functional"] = functional
        atoms.calc = SinglePointCalculator(
            atoms, energy=-10.0 - k, forces=np.full((2, 3), 0.1 * k), stress=np.arange(6) * 1e-3
        )
        frames.append(atoms)
    write(path, frames, format="extxyz")


@pytest.mark.parametrize(
    ("functional", "fidelity"), [("GGA", "pbe"), ("GGA+U", "pbe"), ("PBE", "pbe"), ("r2SCAN", "r2scan")]
)
def test_fidelity_from_info(tmp_path, functional, fidelity):
    path = tmp_path / "f.extxyz"
    _write_labelled(path, functional)
    frames = read_extxyz(path)
    assert [f.fidelity for f in frames] == [fidelity] * 3
    assert frames[2].energy == -12.0
    assert frames[1].info["functional"] == functional


def test_fidelity_mapping_and_errors(tmp_path):
    path = tmp_path / "f.extxyz"
    _write_labelled(path, "CCSD(T)")
    with pytest.raises(ValueError, match=r"frame 0: unknown functional 'CCSD\(T\)'"):
        read_extxyz(path)
    assert read_extxyz(path, fidelity_map={"CCSD(T)": "ccsd_t"})[0].fidelity == "ccsd_t"
    assert read_extxyz(path, fidelity="ccsd_t")[0].fidelity == "ccsd_t"
    with pytest.raises(ValueError, match="invalid fidelity name"):
        read_extxyz(path, fidelity="Not Valid")
    with pytest.raises(FileNotFoundError):
        read_extxyz(tmp_path / "missing.extxyz")


def test_shard_round_trip_and_no_overwrite(tmp_path):
    src = tmp_path / "f.extxyz"
    _write_labelled(src, "r2SCAN")
    frames = read_extxyz(src)
    frames[1] = frames[1].replace(forces=None, stress=None)
    shard = write_shard(frames, tmp_path / "shards" / "part-0.parquet")
    back = read_shard(shard)
    assert len(back) == 3
    for a, b in zip(frames, back, strict=True):
        assert a.fidelity == b.fidelity and a.energy == b.energy
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell, b.cell)
        assert (a.forces is None) == (b.forces is None)
        assert (a.stress is None) == (b.stress is None)
        assert a.info["frame_id"] == b.info["frame_id"]
    np.testing.assert_array_equal(back[2].forces, frames[2].forces)
    with pytest.raises(FileExistsError):
        write_shard(frames, shard)
    assert len(read_frames(tmp_path / "shards")) == 3
    assert {f.fidelity for f in read_frames(tmp_path / "shards", fidelity="pbe_matpes")} == {"pbe_matpes"}
    assert {f.fidelity for f in read_frames(shard, fidelity="pbe_matpes")} == {"pbe_matpes"}
    assert not list((tmp_path / "shards").glob("*.tmp"))


def test_shard_keeps_other_info_and_reads_schema_version_1(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from universal_mfp.data.shards import SHARD_SCHEMA_VERSION, frames_to_table

    src = tmp_path / "f.extxyz"
    _write_labelled(src, "PBE")
    extra = {"matpes_id": "matpes-1", "energy_atomic": -0.826, "pair": "Si-Si", "magmoms": np.zeros(2)}
    frames = [f.replace(info={**f.info, **extra, "not_finite": float("nan")}) for f in read_extxyz(src)]
    back = read_shard(write_shard(frames, tmp_path / "v2.parquet"))
    assert back[0].info["matpes_id"] == "matpes-1"
    assert back[0].info["energy_atomic"] == -0.826
    assert back[0].info["functional"] == "PBE"
    assert "magmoms" not in back[0].info and "not_finite" not in back[0].info  # arrays and NaN are not metadata
    assert SHARD_SCHEMA_VERSION == "2"
    # a version-1 shard has no extra_info column: still readable, ids intact
    table = frames_to_table(frames).drop_columns(["extra_info"])
    table = table.replace_schema_metadata({b"universal_mfp.shard_schema_version": b"1"})
    pq.write_table(table, tmp_path / "v1.parquet")
    old = read_shard(tmp_path / "v1.parquet")
    assert old[2].energy == frames[2].energy and "matpes_id" not in old[2].info
    table = frames_to_table(frames)
    broken = table.set_column(table.column_names.index("extra_info"), "extra_info", pa.array(["{oops"] * 3))
    pq.write_table(broken, tmp_path / "broken.parquet")
    with pytest.raises(ValueError, match="row 0 has malformed extra_info"):
        read_shard(tmp_path / "broken.parquet")
    pq.write_table(
        table.replace_schema_metadata({b"universal_mfp.shard_schema_version": b"9"}), tmp_path / "v9.parquet"
    )
    with pytest.raises(ValueError, match="shard schema version 9 is not supported"):
        read_shard(tmp_path / "v9.parquet")


def test_corrupt_shard_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match="cannot read parquet shard"):
        read_shard(bad)


@pytest.mark.shared_data
def test_reads_all_shared_frames(shared_frames_dir):
    expected = {
        "diatomics_PBE.extxyz": (4555, "pbe", None),
        "diatomics_r2SCAN.extxyz": (3962, "r2scan", None),
        "matpes_element_refs_PBE.extxyz": (89, "pbe", None),
        "matpes_element_refs_r2SCAN.extxyz": (62, "r2scan", None),
        "mp_gga_task_frames.extxyz": (604, "pbe", None),
        "mp_LiFeO_entries.extxyz": (375, "pbe", None),
        "mp_pbe_element_polymorphs.extxyz": (789, "pbe", "pbe"),
        "vasp_Si_old_double_relax_frames.extxyz": (4, "pbe", "pbe"),
    }
    for name, (count, fidelity, explicit) in expected.items():
        frames = read_extxyz(shared_frames_dir / name, fidelity=explicit)
        assert len(frames) == count, name
        assert {f.fidelity for f in frames} == {fidelity}
        assert all(f.energy is not None for f in frames)
    refs = read_extxyz(shared_frames_dir / "matpes_element_refs_r2SCAN.extxyz")
    assert all(f.stress is not None and f.forces is not None for f in refs)
