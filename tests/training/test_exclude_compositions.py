"""``data.exclude_compositions``: the evaluation materials leave every source, whatever the cell."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ase.build import bulk
from ase.io import write

from tests.training.conftest import write_config
from universal_mfp.data.frame import frame_from_atoms
from universal_mfp.training.config import load_run_config
from universal_mfp.training.run import excluded_compositions, read_sources


def _with_exclusions(path: Path, value) -> Path:
    raw = yaml.safe_load(path.read_text())
    raw["data"]["exclude_compositions"] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def _structures():
    mgo = bulk("MgO", "rocksalt", a=4.21)
    supercell = mgo * (2, 1, 1)  # Mg2O2: the same reduced formula
    li2o = bulk("Li2O", "fluorite", a=4.6)
    mg = bulk("Mg", "hcp", a=3.2, c=5.2)
    si = bulk("Si", "diamond", a=5.43)
    for k, atoms in enumerate((mgo, supercell, li2o, mg, si)):
        atoms.info.update(energy=-5.0 * len(atoms), functional="PBE", material_id=f"mp-{k}")
    return [mgo, supercell, li2o, mg, si]


def test_frames_are_matched_by_reduced_formula():
    frames = [frame_from_atoms(a) for a in _structures()]
    assert excluded_compositions(frames, ["MgO"]).tolist() == [True, True, False, False, False]
    assert excluded_compositions(frames, ["Li2O", "Si"]).tolist() == [False, False, True, False, True]
    assert not excluded_compositions(frames, []).any()


def test_config_drops_them_from_every_source(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    atoms = _structures()
    write(data / "a.extxyz", atoms[:3], format="extxyz")
    write(data / "b.extxyz", atoms[3:], format="extxyz")
    config = load_run_config(write_config(tmp_path, data))
    assert config.data.exclude_compositions == () and len(read_sources(config)) == 5
    config = load_run_config(_with_exclusions(write_config(tmp_path, data), ["Mg2O2", "OLi2"]))
    assert config.data.exclude_compositions == ("MgO", "Li2O")  # written as reduced formulas
    kept = read_sources(config)
    assert sorted(f.info["material_id"] for f in kept) == ["mp-3", "mp-4"]


@pytest.mark.parametrize(
    ("value", "message"), [("MgO", "must be a list"), (["MgO", "Xx3"], "'Xx3' is not a chemical formula")]
)
def test_bad_exclusions_are_refused(tmp_path: Path, value, message):
    data = tmp_path / "data"
    data.mkdir()
    write(data / "a.extxyz", _structures(), format="extxyz")
    with pytest.raises(ValueError, match=message):
        load_run_config(_with_exclusions(write_config(tmp_path, data), value))
