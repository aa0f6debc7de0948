"""The umfp command: models, predict (CSV and extxyz) and publish."""

# ruff: noqa: F811 - the hub fixtures are imported and then requested by name

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write

from tests.hub.conftest import checkpoint_dir, fake_hub, hf_env  # noqa: F401 - shared fixtures
from tests.hub.helpers import file_hashes, registry_entry, structures, write_registry
from universal_mfp.cli import main
from universal_mfp.models import load_model
from universal_mfp.units import full_3x3_to_voigt_6


def test_models_lists_registry(tmp_path: Path, capsys, checkpoint_dir: Path):
    assert main(["models"]) == 0
    assert "mf-universal-v1 (aliases: mf-universal)" in capsys.readouterr().out  # the packaged registry
    entry = registry_entry(
        "tiny-v0.1", file_hashes(checkpoint_dir), aliases=["tiny"], bundled_path="tiny", default_fidelity="r2scan"
    )
    path = write_registry(tmp_path / "r.json", [entry])
    assert main(["models", "--registry", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tiny-v0.1 (aliases: tiny)" in out
    assert "fidelities: pbe, r2scan; default fidelity: r2scan" in out
    assert "bundled:tiny" in out


@pytest.fixture
def structure_file(tmp_path: Path) -> Path:
    path = tmp_path / "structures.extxyz"
    write(str(path), structures())
    return path


def test_predict_csv_and_extxyz(tmp_path: Path, structure_file: Path, checkpoint_dir: Path, capsys):
    expected = load_model(checkpoint_dir).predict(read(str(structure_file), index=":"), fidelity="r2scan")
    out_csv = tmp_path / "out.csv"
    args = ["predict", str(structure_file), "--model", str(checkpoint_dir), "--fidelity", "r2scan"]
    assert main([*args, "--output", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == len(expected) == 3
    for row, pred in zip(rows, expected, strict=True):
        assert row["fidelity"] == "r2scan"
        assert float(row["energy_eV"]) == pred.energy
        assert float(row["energy_per_atom_eV"]) == pred.energy_per_atom
        assert int(row["num_atoms"]) == pred.num_atoms
        assert float(row["max_force_eV_per_A"]) == float(np.linalg.norm(pred.forces, axis=1).max())
        if pred.stress is None:
            assert row["stress_xx_eV_per_A3"] == ""
        else:
            voigt = [float(row[f"stress_{c}_eV_per_A3"]) for c in ("xx", "yy", "zz", "yz", "xz", "xy")]
            np.testing.assert_array_equal(voigt, full_3x3_to_voigt_6(pred.stress))

    out_xyz = tmp_path / "out.extxyz"
    assert main([*args, "--output", str(out_xyz), "--dtype", "float64"]) == 0
    expected64 = load_model(checkpoint_dir, dtype="float64").predict(
        read(str(structure_file), index=":"), fidelity="r2scan"
    )
    frames = read(str(out_xyz), index=":")
    assert len(frames) == 3
    for atoms, pred in zip(frames, expected64, strict=True):
        assert atoms.get_potential_energy() == pytest.approx(pred.energy, rel=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), pred.forces, atol=1e-7)
        assert atoms.info["fidelity"] == "r2scan"
        if pred.stress is not None:
            np.testing.assert_allclose(atoms.get_stress(), full_3x3_to_voigt_6(pred.stress), atol=1e-7)
    assert "wrote 3 predictions (r2scan)" in capsys.readouterr().out


def test_predict_errors_are_reported(structure_file: Path, checkpoint_dir: Path, capsys):
    assert main(["predict", str(structure_file), "--model", str(checkpoint_dir)]) == 1
    assert "choose one of ['pbe', 'r2scan']" in capsys.readouterr().err
    assert main(["predict", str(structure_file), "--model", "no-such-model"]) == 1
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_publish_prints_commit_and_entry(fake_hub, checkpoint_dir: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_credential")
    card = tmp_path / "card.md"
    code = main(["publish", str(checkpoint_dir), "--repo-id", "umfp-tests/cli-tiny", "--save-card", str(card)])
    assert code == 0
    out = capsys.readouterr().out
    commit = fake_hub.repos["umfp-tests/cli-tiny"].refs["main"]
    assert f"commit: {commit}" in out
    entry = json.loads(out[out.index("{") :])
    assert entry["revision"] == commit and entry["repo_id"] == "umfp-tests/cli-tiny"
    assert card.read_text() == fake_hub.uploads[-1]["files"]["README.md"].decode()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Inputs every structure-reading subcommand must refuse, with the message that names the problem."""
    readme = tmp_path / "README.md"
    readme.write_text("# not a structure\n")
    unknown = tmp_path / "cell.foo"
    unknown.write_text("x\n")
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    broken = tmp_path / "broken.cif"
    broken.write_text("data_x\n_cell_length_a 3.0\nloop_\n_atom_site_label\n")
    folder = tmp_path / "no-structures"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing\n")
    return {
        "missing": (tmp_path / "missing.cif", "no such structure file or folder"),
        "unknown format": (readme, "unsupported structure file"),
        "unknown extension": (unknown, "unsupported structure file"),
        "empty": (empty, "empty.extxyz"),
        "unreadable": (broken, "broken.cif"),
        "empty folder": (folder, "no structure files"),
    }


@pytest.mark.parametrize("command", ["predict", "screen"])
def test_bad_structure_inputs_give_one_clear_line(tmp_path: Path, checkpoint_dir: Path, capsys, command):
    """Each input error: exit 1, one line on stderr naming the problem, no traceback, no output files."""
    for name, (path, message) in _bad_inputs(tmp_path).items():
        out = tmp_path / f"out-{command}-{name.replace(' ', '_')}"
        args = [command, str(path), "--model", str(checkpoint_dir), "--fidelity", "r2scan"]
        args += ["--output", f"{out}.csv"] if command == "predict" else ["--output-dir", str(out), "--no-plots"]
        assert main(args) == 1, name
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith(f"umfp {command}: error:"), (name, lines)
        assert "Traceback" not in captured.err and captured.out == ""
        assert not Path(f"{out}.csv").exists() and not out.exists(), name


@pytest.mark.parametrize("command", ["predict", "screen"])
def test_unknown_fidelity_is_refused_before_any_output(
    tmp_path: Path, structure_file: Path, checkpoint_dir: Path, capsys, command
):
    out = tmp_path / "out"
    args = [command, str(structure_file), "--model", str(checkpoint_dir), "--fidelity", "hse06"]
    args += ["--output", f"{out}.csv"] if command == "predict" else ["--output-dir", str(out), "--no-plots"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unknown fidelity 'hse06'" in err and "Traceback" not in err
    assert not Path(f"{out}.csv").exists() and not out.exists()


def test_screen_takes_dtype_and_device(tmp_path: Path, structure_file: Path, checkpoint_dir: Path):
    results = {}
    for dtype in ("float32", "float64"):
        out = tmp_path / dtype
        args = ["screen", str(structure_file), "--model", str(checkpoint_dir), "--fidelity", "r2scan"]
        assert main([*args, "--dtype", dtype, "--device", "cpu", "--output-dir", str(out), "--no-plots"]) == 0
        results[dtype] = list(csv.DictReader((out / "results.csv").open()))
    assert len(results["float32"]) == 3
    for low, high in zip(results["float32"], results["float64"], strict=True):
        assert float(low["energy_per_atom"]) == pytest.approx(float(high["energy_per_atom"]), abs=1e-4)
    with pytest.raises(SystemExit) as usage:
        main(["screen", str(structure_file), "--model", str(checkpoint_dir), "--fidelity", "r2scan", "--dtype", "half"])
    assert usage.value.code == 2


def test_train_and_finetune_input_errors_give_one_clear_line(tmp_path: Path, checkpoint_dir: Path, capsys):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("data: [\n")
    cases = [
        (["train", str(tmp_path / "missing.yaml")], "no such config file"),
        (["train", str(bad_yaml)], "not valid YAML at line"),
        (
            [
                "finetune",
                str(tmp_path / "missing.extxyz"),
                "--model",
                str(checkpoint_dir),
                "--fidelity",
                "r2scan",
                "--output-dir",
                str(tmp_path / "ft"),
            ],
            "missing.extxyz",
        ),
    ]
    for args, message in cases:
        assert main(args) == 1, args
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err, lines
    assert not (tmp_path / "ft").exists()
