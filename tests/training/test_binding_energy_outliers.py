"""``data.max_binding_energy``: failed labels, far from every real binding energy, leave every split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.io import write

from tests.training.conftest import write_config
from universal_mfp.data.frame import frame_from_atoms
from universal_mfp.training.config import load_run_config
from universal_mfp.training.run import binding_energy_outliers, ordered_fidelities, read_sources, run_splits

# E0 (eV) of the test elements: the binding energy is (E - Σ E0) / N
E0 = {"Si": -0.8, "O": -1.5, "Mg": -0.1}


def _crystals(count: int, rng: np.random.Generator) -> list:
    out = []
    for k in range(count):
        atoms = (bulk("MgO", "rocksalt", a=4.21) if k % 2 else bulk("Si", "diamond", a=5.43)).copy()
        atoms.rattle(0.02, seed=k)
        binding = rng.uniform(-6.0, -2.0)
        e0 = sum(E0[s] for s in atoms.get_chemical_symbols())
        atoms.info.update(energy=e0 + binding * len(atoms), functional="PBE", material_id=f"mp-{k}")
        out.append(atoms)
    return out


def test_outliers_are_the_frames_beyond_the_limit():
    crystals = _crystals(4, np.random.default_rng(0))
    frames = [frame_from_atoms(a, fidelity="pbe").replace(energy=a.info["energy"]) for a in crystals]
    frames.append(frames[0].replace(energy=frames[0].energy + 150.0 * frames[0].num_atoms))  # +150 eV/atom
    frames.append(frames[1].replace(energy=frames[1].energy - 30.0 * frames[1].num_atoms))  # -30 eV/atom
    frames.append(frames[0].replace(energy=None))  # forces only: never an outlier
    elements = (8, 12, 14)
    references = np.array([[E0["O"], E0["Mg"], E0["Si"]]])
    found = binding_energy_outliers(frames, references, elements, ("pbe",), limit=20.0)
    assert found.tolist() == [False] * 4 + [True, True, False]
    # the limit is on |E - Σ ref| / N: with the references off by 5 eV, -6 eV/atom bindings pass a limit of 10
    assert binding_energy_outliers(frames, references - 5.0, elements, ("pbe",), limit=10.0).tolist()[:4] == [False] * 4
    assert binding_energy_outliers(frames, references + 5.0, elements, ("pbe",), limit=10.0)[:4].any()


def _with(path: Path, **data) -> Path:
    raw = yaml.safe_load(path.read_text())
    raw["data"].update(data)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_run_splits_leave_them_out_of_every_split(tmp_path: Path):
    rng = np.random.default_rng(1)
    atoms = _crystals(40, rng)
    for k in (3, 17, 28, 35):  # failed labels, whichever split they fall in
        atoms[k].info["energy"] += 90.0 * len(atoms[k])
    data = tmp_path / "data"
    data.mkdir()
    write(data / "frames.extxyz", atoms, format="extxyz")
    (tmp_path / "e0.json").write_text(json.dumps({"pbe": E0}))
    path = write_config(tmp_path, data)
    config = load_run_config(
        _with(
            path,
            max_binding_energy=20.0,
            isolated_atom_energies={"pbe": {"file": str(tmp_path / "e0.json"), "key": "pbe"}},
        )
    )
    assert config.data.max_binding_energy == 20.0
    frames = read_sources(config)
    fidelities, elements = ordered_fidelities(frames), (8, 12, 14)
    splits, isolated, dropped = run_splits(config, frames, fidelities, elements, cutoff=4.0)
    kept = {int(i) for idx in splits.values() for i in idx}
    ids = {frames[i].info["material_id"] for i in kept}
    assert ids == {f"mp-{k}" for k in range(40)} - {"mp-3", "mp-17", "mp-28", "mp-35"}
    assert sum(dropped.values()) == 4 and set(dropped) == set(splits)
    assert isolated["pbe"] == {8: E0["O"], 12: E0["Mg"], 14: E0["Si"]}
    # without the limit nothing is left out
    plain = load_run_config(_with(path, max_binding_energy=None))
    splits, _, dropped = run_splits(plain, frames, fidelities, elements, cutoff=4.0)
    assert sum(len(idx) for idx in splits.values()) == 40 and dropped == {}


@pytest.mark.parametrize("value", ["high", [20.0]])
def test_bad_limits_are_refused(tmp_path: Path, value):
    data = tmp_path / "data"
    data.mkdir()
    write(data / "frames.extxyz", _crystals(2, np.random.default_rng(2)), format="extxyz")
    with pytest.raises((ValueError, TypeError)):
        load_run_config(_with(write_config(tmp_path, data), max_binding_energy=value))
