"""``data.exclude_frames``: single labels known to be wrong leave the run by frame id, each with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ase.build import bulk
from ase.io import write

from tests.training.conftest import write_config
from universal_mfp.data.frame import frame_from_atoms
from universal_mfp.training.config import load_run_config
from universal_mfp.training.run import excluded_frames, read_sources


def _with_exclusions(path: Path, value) -> Path:
    raw = yaml.safe_load(path.read_text())
    raw["data"]["exclude_frames"] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def _write_sources(folder: Path) -> Path:
    """a.extxyz: three Cu cells; b.extxyz: two Al cells (frame ids ``a:0``..``a:2``, ``b:0``, ``b:1``)."""
    data = folder / "data"
    data.mkdir()
    cu = [bulk("Cu", "fcc", a=a) for a in (3.55, 3.60, 3.65)]
    al = [bulk("Al", "fcc", a=a) for a in (4.0, 4.05)]
    for atoms in (*cu, *al):
        atoms.info.update(energy=-3.5 * len(atoms), functional="PBE")
    write(data / "a.extxyz", cu, format="extxyz")
    write(data / "b.extxyz", al, format="extxyz")
    return data


def test_frames_are_matched_by_id():
    frames = [frame_from_atoms(bulk("Cu", "fcc", a=3.6)) for _ in range(3)]
    for k, frame in enumerate(frames):
        frame.info["frame_id"] = f"x:{k}"
    assert excluded_frames(frames, ["x:1"]).tolist() == [False, True, False]
    assert not excluded_frames(frames, []).any()
    with pytest.raises(ValueError, match=r"no frame of the sources has the id\(s\) \['x:7'\]"):
        excluded_frames(frames, ["x:1", "x:7"])


def test_config_drops_only_the_named_frames(tmp_path: Path):
    data = _write_sources(tmp_path)
    config = load_run_config(write_config(tmp_path, data))
    assert config.data.exclude_frames == {} and len(read_sources(config)) == 5
    reasons = {"a:1": "a label known to be wrong", "b:0": "another one"}
    config = load_run_config(_with_exclusions(write_config(tmp_path, data), reasons))
    assert config.data.exclude_frames == reasons
    assert [f.info["frame_id"] for f in read_sources(config)] == ["a:0", "a:2", "b:1"]


def test_an_id_that_names_no_frame_is_refused(tmp_path: Path):
    data = _write_sources(tmp_path)
    config = load_run_config(_with_exclusions(write_config(tmp_path, data), {"a:9": "typo"}))
    with pytest.raises(ValueError, match=r"\['a:9'\]"):
        read_sources(config)


@pytest.mark.parametrize(
    ("value", "message"),
    [(["a:1"], "must map frame ids to reasons"), ({"a:1": ""}, "frame 'a:1' needs a reason"), ({"a:1": 3}, "a:1")],
)
def test_bad_exclusions_are_refused(tmp_path: Path, value, message):
    data = _write_sources(tmp_path)
    with pytest.raises(ValueError, match=message):
        load_run_config(_with_exclusions(write_config(tmp_path, data), value))
