"""``umfp data offsets``: per-element offsets between a teacher and real elemental DFT, training frames only."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from ase.io import read, write

from tests.conftest import shared_data_dir
from universal_mfp.data.readers import read_extxyz
from universal_mfp.data.splits import split_of

pytest.importorskip("chgnet", reason="teacher tests need the optional chgnet package ([teachers] extra)")

R2SCAN_REFS = "matpes_element_refs_r2SCAN.extxyz"


def test_offsets_are_dft_minus_teacher_per_atom_on_training_frames_only(tmp_path: Path):
    from universal_mfp_pipelines.cli import main
    from universal_mfp_pipelines.teachers import load_teacher

    source = shared_data_dir() / "frames" / R2SCAN_REFS
    frames = read_extxyz(source, fidelity="r2scan")
    splits = [split_of(f, val_fraction=0.05, test_fraction=0.05, seed=2026) for f in frames]
    train = [k for k, s in enumerate(splits) if s == "train" and frames[k].num_atoms <= 4][:3]
    held = [k for k, s in enumerate(splits) if s != "train"][:1]
    assert train and held, "the real file should have both training and held-out elemental frames"
    atoms = read(source, ":")
    small = tmp_path / "refs.extxyz"
    write(small, [atoms[k] for k in train + held], format="extxyz")
    out = tmp_path / "offsets.json"
    assert (
        main(["offsets", str(small), str(out), "--teacher", "chgnet:r2scan", "--fidelities", "r2scan_chgnet", "r2scan"])
        == 0
    )
    table = json.loads(out.read_text())
    teacher = load_teacher("chgnet:r2scan")
    expected = {}
    for k in train:
        frame = frames[k]
        label = teacher.label(frame.to_atoms(), with_stress=False)
        expected[frame.to_atoms().get_chemical_symbols()[0]] = (frame.energy - label.energy) / frame.num_atoms
    assert table["element_offsets"].keys() == expected.keys()
    for element, value in expected.items():
        assert table["element_offsets"][element] == pytest.approx(value, abs=2e-6)
    held_element = frames[held[0]].to_atoms().get_chemical_symbols()[0]
    assert table["held_out_elements"] == [held_element] and held_element not in table["element_offsets"]
    assert table["default_offset"] == pytest.approx(statistics.median(expected.values()), abs=2e-6)
    assert (table["source"], table["target"], table["teacher"]["spec"]) == ("r2scan_chgnet", "r2scan", "chgnet:r2scan")
    assert len(table["teacher"]["weights_sha256"]) == 64


def test_offsets_command_refuses_a_file_without_training_frames(tmp_path: Path):
    from universal_mfp_pipelines.cli import main

    empty = tmp_path / "none.extxyz"
    atoms = read(shared_data_dir() / "frames" / "mp_LiFeO_entries.extxyz", "0")  # not elemental
    write(empty, [atoms], format="extxyz")
    out = tmp_path / "offsets.json"
    assert (
        main(["offsets", str(empty), str(out), "--teacher", "chgnet:r2scan", "--fidelities", "r2scan_chgnet", "r2scan"])
        == 1
    )
    assert not out.exists()
