"""One reader for every structure input: extxyz, CIF, POSCAR, pymatgen JSON and parquet shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.ase import AseAtomsAdaptor

from universal_mfp.data.frame import frame_from_atoms
from universal_mfp.data.readers import read_frames
from universal_mfp.data.shards import write_shard
from universal_mfp.data.structure_files import read_structure_file, read_structures


def _mgo():
    atoms = bulk("MgO", "rocksalt", a=4.21)
    atoms.rattle(0.02, seed=1)
    return atoms


def _write_all_formats(folder: Path) -> dict[str, Path]:
    atoms = _mgo()
    structure = AseAtomsAdaptor.get_structure(atoms)
    paths = {"extxyz": folder / "a.extxyz", "cif": folder / "b.cif", "poscar": folder / "c" / "POSCAR"}
    write(paths["extxyz"], atoms, format="extxyz")
    write(paths["cif"], atoms, format="cif")
    paths["poscar"].parent.mkdir()
    write(paths["poscar"], atoms, format="vasp")
    paths["structure_json"] = folder / "d.json"
    paths["structure_json"].write_text(json.dumps(structure.as_dict()))
    entry = ComputedStructureEntry(structure, -23.5, parameters={"run_type": "GGA"}, entry_id="mp-1265-GGA")
    paths["entry_json"] = folder / "e.json"
    paths["entry_json"].write_text(json.dumps([entry.as_dict()]))
    shard = folder / "shards" / "train-pbe-00000.parquet"
    frame = frame_from_atoms(atoms, fidelity="pbe").replace(energy=-23.4, info={"frame_id": "mgo-0", "source": "test"})
    paths["shard"] = write_shard([frame], shard)
    return paths


def test_every_format_gives_the_same_structure(tmp_path: Path):
    paths = _write_all_formats(tmp_path)
    reference = _mgo()
    for name, path in paths.items():
        (frame,) = read_structure_file(path)
        assert frame.info["id"], name
        assert sorted(frame.numbers.tolist()) == sorted(reference.numbers.tolist()), name
        np.testing.assert_allclose(abs(np.linalg.det(frame.cell)), reference.get_volume(), rtol=1e-6, err_msg=name)
    entry = read_structure_file(paths["entry_json"])[0]
    assert entry.info == {"id": "mp-1265-GGA", "functional": "GGA"} and entry.energy == -23.5
    assert read_structure_file(paths["shard"])[0].info["id"] == "mgo-0"
    assert len(read_structures([tmp_path])) == 6  # the folder: every supported file, recursively


def test_training_reads_the_same_inputs_with_fidelities(tmp_path: Path):
    paths = _write_all_formats(tmp_path)
    (entry,) = read_frames(paths["entry_json"])
    assert entry.fidelity == "pbe" and entry.energy == -23.5  # fidelity from the entry's run type
    (shard,) = read_frames(paths["shard"].parent)
    assert shard.fidelity == "pbe" and shard.energy == -23.4
    (cif,) = read_frames(paths["cif"], fidelity="r2scan")
    assert cif.fidelity == "r2scan" and cif.energy is None
    with pytest.raises(ValueError, match="no fidelity; pass one"):
        read_frames(paths["poscar"])
    with pytest.raises(FileNotFoundError, match="no such data file or folder"):
        read_frames(tmp_path / "missing")


def test_json_that_is_not_pymatgen_is_refused(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"energy": 1.0}))
    with pytest.raises(ValueError, match="not a pymatgen Structure or ComputedStructureEntry"):
        read_structure_file(path)
    path.write_text("{oops")
    with pytest.raises(ValueError, match="not a JSON file"):
        read_structure_file(path)
