"""The registry: validation, names and aliases, "did you mean", bundled checkpoints and default fidelities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.hub.helpers import file_hashes, registry_entry, structures, write_registry
from universal_mfp.calculator import MFCalculator
from universal_mfp.hub import ChecksumMismatchError, available_models, load_registry
from universal_mfp.hub import locate as loading_module
from universal_mfp.models import load_model

SHA = "0" * 64
FILES = {"config.json": SHA, "model.safetensors": SHA}


def test_shipped_registry_validates():
    registry = load_registry()
    assert registry.path.name == "registry.json"
    assert available_models() == sorted(registry.entries)


def test_unknown_name_lists_models_and_suggests(tmp_path: Path):
    path = write_registry(
        tmp_path / "r.json",
        [registry_entry("mf-universal-v0.1", FILES, aliases=["mf-universal"], bundled_path="mf-universal-v0.1")],
    )
    assert load_registry(path).resolve("mf-universal").name == "mf-universal-v0.1"
    assert available_models(path) == ["mf-universal-v0.1"]
    with pytest.raises(ValueError, match=r"Did you mean 'mf-universal'.*Available models: mf-universal, mf-uni"):
        load_model("mf-univrsal", registry=path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"default_fidelity": "ccsd"}, "default_fidelity 'ccsd' is not one of"),
        ({"repo_id": "owner/name"}, "pinned revision"),
        ({"repo_id": "owner/name", "revision": "main"}, "pinned revision"),
        ({"files": {"config.json": SHA}}, "files must give the sha256"),
        ({"files": {**FILES, "model.safetensors": "abc"}}, "lower-case sha256"),
        ({"bundled_path": "../escape"}, "bundled_path must be a relative path"),
        ({"license": ""}, "license must be a non-empty string"),
        ({"colour": "blue"}, r"unknown keys \['colour'\]"),
    ],
)
def test_invalid_entries_refused(tmp_path: Path, change: dict, message: str):
    entry = registry_entry("m", FILES, bundled_path="m")
    entry.update(change)
    with pytest.raises(ValueError, match=message):
        load_registry(write_registry(tmp_path / "r.json", [entry]))


def test_structural_problems_refused(tmp_path: Path):
    entry = registry_entry("m", FILES, bundled_path="m")
    del entry["default_fidelity"]
    with pytest.raises(ValueError, match=r"missing keys \['default_fidelity'\]"):
        load_registry(write_registry(tmp_path / "r.json", [entry]))
    twice = [registry_entry("a", FILES, bundled_path="a"), registry_entry("b", FILES, bundled_path="b", aliases=["a"])]
    with pytest.raises(ValueError, match="'a' is used twice"):
        load_registry(write_registry(tmp_path / "r.json", twice))
    (tmp_path / "r.json").write_text(json.dumps({"registry_schema_version": 2, "models": []}))
    with pytest.raises(ValueError, match="registry schema version 2 is not supported"):
        load_registry(tmp_path / "r.json")
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_registry(tmp_path / "r.json")


def test_registered_but_bundled_files_absent(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(loading_module, "pretrained_root", lambda: tmp_path / "pretrained")
    path = write_registry(tmp_path / "r.json", [registry_entry("m", FILES, bundled_path="m-v1")])
    with pytest.raises(FileNotFoundError, match=r"registered as bundled .* not installed"):
        load_model("m", registry=path)


def test_bundled_checkpoint_verified_and_default_fidelity(tmp_path: Path, monkeypatch, checkpoint_dir: Path):
    root = tmp_path / "pretrained"
    shutil.copytree(checkpoint_dir, root / "tiny")
    monkeypatch.setattr(loading_module, "pretrained_root", lambda: root)
    hashes = file_hashes(checkpoint_dir)
    path = write_registry(
        tmp_path / "r.json",
        [
            registry_entry("tiny", hashes, bundled_path="tiny", default_fidelity="pbe"),
            registry_entry("tiny-nodefault", hashes, bundled_path="tiny"),
        ],
    )
    loaded = load_model("tiny", registry=path)
    assert loaded.metadata["source"]["kind"] == "bundled"
    assert loaded.default_fidelity == "pbe"
    pbe = [p.energy for p in loaded.predict(structures(), fidelity="pbe")]
    assert [p.energy for p in loaded.predict(structures())] == pbe
    calc = loaded.calculator()
    assert isinstance(calc, MFCalculator) and calc.fidelity == "pbe"
    atoms = structures()[0]
    atoms.calc = loaded.calculator(fidelity="r2scan")
    r2scan = loaded.predict([structures()[0]], fidelity="r2scan")[0]
    assert atoms.get_potential_energy() == pytest.approx(r2scan.energy, rel=0, abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), r2scan.forces, atol=1e-9)

    plain = load_model("tiny-nodefault", registry=path)
    with pytest.raises(ValueError, match=r"choose one of \['pbe', 'r2scan'\]"):
        plain.predict(structures())
    with pytest.raises(ValueError, match=r"choose one of \['pbe', 'r2scan'\]"):
        plain.calculator()
    with pytest.raises(ValueError, match=r"unknown fidelity 'hse'; valid fidelities are \['pbe', 'r2scan'\]"):
        load_model("tiny-nodefault", registry=path, fidelity="hse")
    assert load_model("tiny-nodefault", registry=path, fidelity="r2scan").default_fidelity == "r2scan"

    (root / "tiny" / "README.md").write_text("tampered card")
    with pytest.raises(ChecksumMismatchError, match=r"README\.md has sha256"):
        load_model("tiny", registry=path)
