"""Teacher labelling: both CHGNet teachers end to end, energy scales, provenance, resumption, bad output."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read
from universal_mfp_pipelines.cli import main as data_main
from universal_mfp_pipelines.generate import generate
from universal_mfp_pipelines.teach import teach
from universal_mfp_pipelines.teachers import (
    MP_GGA_RAW,
    MP_R2SCAN,
    load_teacher,
    mp2020_correction,
    teachers_from_pairs,
)

from tests.data_pipelines.teacher_helpers import SMALL_SETTINGS, write_small_real_frames
from universal_mfp.data.readers import read_frames
from universal_mfp.data.splits import group_key

pytestmark = pytest.mark.shared_data
chgnet = pytest.importorskip("chgnet", reason="teacher tests need the optional chgnet package ([teachers] extra)")

TEACHERS = (("pbe_chgnet", "chgnet:0.3.0"), ("r2scan_chgnet", "chgnet:r2scan"))


@pytest.fixture(scope="module")
def generated(shared_frames_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    real = write_small_real_frames(shared_frames_dir, tmp_path_factory.mktemp("real_seeds"))
    out = tmp_path_factory.mktemp("generated")
    manifest = generate(out, real, SMALL_SETTINGS, progress=False)
    assert manifest["num_shards_done"] == manifest["num_shards"]
    return out


@pytest.fixture(scope="module")
def labelled(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("labelled")
    teach(generated, out, TEACHERS, progress=False)
    return out


def test_every_structure_is_an_exact_pair_with_provenance(generated: Path, labelled: Path):
    structures = [a for p in sorted(generated.glob("structures-*.extxyz")) for a in read(p, ":")]
    frames = read_frames(labelled)
    assert len(frames) == 2 * len(structures)  # no failure on real chemistry
    pairs: dict[str, dict[str, object]] = defaultdict(dict)
    for frame in frames:
        pairs[frame.info["structure_id"]][frame.fidelity] = frame
    assert set(pairs) == {a.info["frame_id"] for a in structures}
    weights = {
        "chgnet:0.3.0": next((Path(chgnet.__file__).parent / "pretrained" / "0.3.0").glob("*.pth.tar")),
        "chgnet:r2scan": next((Path(chgnet.__file__).parent / "pretrained" / "r2scan").glob("*.pth.tar")),
    }
    from universal_mfp.files import sha256_file

    for pair in pairs.values():
        gga, r2scan = pair["pbe_chgnet"], pair["r2scan_chgnet"]
        assert np.array_equal(gga.positions, r2scan.positions) and np.array_equal(gga.cell, r2scan.cell)
        assert gga.info["split"] == r2scan.info["split"]
        for frame, spec, scale in ((gga, "chgnet:0.3.0", MP_GGA_RAW), (r2scan, "chgnet:r2scan", MP_R2SCAN)):
            assert frame.info["teacher"] == spec
            assert frame.info["teacher_energy_scale"] == scale
            assert frame.info["teacher_weights_sha256"] == sha256_file(weights[spec])
            assert "BSD" in frame.info["teacher_license"]
            assert np.isfinite(frame.energy) and np.isfinite(frame.forces).all() and np.isfinite(frame.stress).all()
    manifest = json.loads((labelled / "manifest.json").read_text())
    assert manifest["num_shards_done"] == len(list(generated.glob("structures-*.json")))
    assert set(manifest["teachers"]) == {"pbe_chgnet", "r2scan_chgnet"}


def test_splits_follow_the_composition_group(labelled: Path):
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for frame in read_frames(labelled):
        assert group_key(frame) == f"composition_group:{frame.info['composition_group']}"
        splits_of_group[frame.info["composition_group"]].add(frame.info["split"])
    assert all(len(splits) == 1 for splits in splits_of_group.values())


def test_gga_labels_are_raw_chgnet_minus_mp2020_and_r2scan_labels_as_predicted(labelled: Path):
    from chgnet.model import CHGNet
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = [f for f in read_frames(labelled) if f.info.get("config_type") in ("initial", "real")]
    models = {
        "pbe_chgnet": CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False),
        "r2scan_chgnet": CHGNet.load(model_name="r2scan", use_device="cpu", verbose=False),
    }
    checked_correction = False
    for frame in frames[:12]:
        atoms = frame.to_atoms()
        predicted = float(models[frame.fidelity].predict_structure(AseAtomsAdaptor.get_structure(atoms))["e"])
        predicted *= len(atoms)
        if frame.fidelity == "pbe_chgnet":
            correction = mp2020_correction(atoms)
            checked_correction |= abs(correction) > 0.1
            assert frame.energy == pytest.approx(predicted - correction, abs=2e-3 * len(atoms))
        else:
            assert frame.energy == pytest.approx(predicted, abs=2e-3 * len(atoms))
    assert checked_correction  # some frame (an oxide, a GGA+U metal) carried a real correction


def test_rerun_redoes_nothing_and_other_teachers_are_refused(generated: Path, labelled: Path):
    before = {p.name: p.stat().st_mtime_ns for p in labelled.glob("labels-*")}
    teach(generated, labelled, TEACHERS, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in labelled.glob("labels-*")} == before
    with pytest.raises(ValueError, match="other teachers"):
        teach(generated, labelled, (("pbe_chgnet", "chgnet:r2scan"), ("r2scan_chgnet", "chgnet:0.3.0")), progress=False)


def test_a_killed_shard_is_redone(generated: Path, tmp_path: Path, labelled: Path):
    import shutil

    reference = {p.name: json.loads(p.read_text())["sha256"] for p in labelled.glob("labels-*.json")}
    assert len(reference) >= 3
    out = tmp_path / "labels"
    shutil.copytree(labelled, out)
    (out / "labels-00001.json").unlink()  # as if killed after writing the shard, before its record
    (out / "labels-00001.parquet").write_bytes(b"truncated")  # with a broken shard left behind
    (out / ".labels-00002.parquet.abc.tmp").write_bytes(b"partial")  # and a half-written temporary file
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("labels-*") if "00001" not in p.name}
    teach(generated, out, TEACHERS, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("labels-*") if "00001" not in p.name} == kept
    ours = {p.name: json.loads(p.read_text())["sha256"] for p in out.glob("labels-*.json")}
    assert ours == reference
    ids = [f.info["frame_id"] for f in read_frames(out)]
    assert len(ids) == len(set(ids))


def test_a_changed_structure_shard_is_relabelled(generated: Path, tmp_path: Path):
    import shutil

    structures = tmp_path / "structures"
    shutil.copytree(generated, structures)
    out = tmp_path / "labels"
    teach(structures, out, TEACHERS, max_shards=1, progress=False)
    first = structures / "structures-00000.extxyz"
    kept = read(first, ":")[:2]  # the shard regenerated with fewer structures (e.g. a stricter sanity rule)
    from ase.io import write

    write(first, kept, format="extxyz")
    before = (out / "labels-00000.parquet").stat().st_mtime_ns
    teach(structures, out, TEACHERS, max_shards=1, progress=False)
    assert (out / "labels-00000.parquet").stat().st_mtime_ns != before
    assert len(read_frames(out / "labels-00000.parquet")) == 2 * len(kept)


def test_bad_teacher_output_is_recorded_and_never_written(generated: Path, tmp_path: Path):
    specs = (
        ("pbe_test", "tests.data_pipelines.teacher_helpers:nan_for_oxygen"),
        ("r2scan_test", "tests.data_pipelines.teacher_helpers:crash_for_copper"),
    )
    manifest = teach(generated, tmp_path / "bad", specs, progress=False)
    failures = [f for entry in manifest["shards"] for f in entry["failed"]]
    reasons = {f["fidelity"]: f["error"] for f in failures}
    assert "non-finite energy" in reasons["pbe_test"]
    assert "test calculator crash" in reasons["r2scan_test"]
    frames = read_frames(tmp_path / "bad")
    assert frames, "structures without O or Cu are still labelled"
    for frame in frames:
        assert not {"O", "Cu"} & set(frame.symbols)
        assert np.isfinite(frame.energy)
    failed_ids = {f["structure_id"] for f in failures}
    assert not failed_ids & {f.info["structure_id"] for f in frames}


def test_teacher_specs_are_checked():
    assert teachers_from_pairs(["pbe=chgnet:0.3.0", " r2scan = chgnet:r2scan"]) == [
        ("pbe", "chgnet:0.3.0"),
        ("r2scan", "chgnet:r2scan"),
    ]
    for bad, message in (
        (["chgnet:0.3.0"], "FIDELITY=SPEC"),
        (["Bad Name=chgnet:0.3.0"], "invalid fidelity"),
        (["a=chgnet:0.3.0", "a=chgnet:r2scan"], "twice"),
        ([], "no teacher"),
    ):
        with pytest.raises(ValueError, match=message):
            teachers_from_pairs(bad)
    for spec, message in (
        ("chgnet", "is not"),
        ("chgnet:9.9", "unknown CHGNet model"),
        ("no_such_module_xyz:f", "cannot import"),
        ("tests.data_pipelines.teacher_helpers:not_a_calculator", "not an ASE calculator"),
    ):
        with pytest.raises(ValueError, match=message):
            load_teacher(spec)


def test_cli_reports_a_bad_teacher_in_one_line(generated: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    code = data_main(["--no-progress", "teach", str(generated), str(tmp_path / "x"), "--teacher", "pbe=chgnet:7"])
    assert code == 1
    assert "unknown CHGNet model" in caplog.text
    assert not (tmp_path / "x").exists()


def test_teacher_stress_is_the_strain_derivative_of_its_energy():
    teacher = load_teacher("chgnet:r2scan")
    atoms = bulk("MgO", "rocksalt", a=4.3)
    atoms.rattle(0.05, seed=2)
    stress = teacher.label(atoms).stress
    h = 1e-3  # the teacher is float32: a larger step keeps round-off below the tolerance
    numeric = np.zeros((3, 3))
    for i, j in ((0, 0), (1, 1), (0, 1)):
        energies = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sign * h / (1 if i == j else 2)
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            energies.append(teacher.label(strained).energy)
        numeric[i, j] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()  # dE/dh = V sigma_ij
    for i, j in ((0, 0), (1, 1), (0, 1)):
        assert stress[i, j] == pytest.approx(numeric[i, j], abs=3e-4)
    assert abs(stress[0, 0]) > 1e-3  # strained away from equilibrium: the check has something to compare


def test_gga_teacher_is_on_the_raw_mp_scale_on_real_mp_entries(shared_frames_dir: Path):
    """MP Li-Fe-O entries: CHGNet 0.3.0 predicts MP2020-corrected energies; the teacher stores raw ones."""
    entries = [a for a in read(shared_frames_dir / "mp_LiFeO_entries.extxyz", ":") if len(a) <= 10]
    hubbard = [a for a in entries if a.info["is_hubbard"]][:8]
    assert len(hubbard) == 8
    teacher = load_teacher("chgnet:0.3.0")
    raw_errors, corrected_errors, label_errors, correction_errors = [], [], [], []
    for atoms in hubbard:
        n = len(atoms)
        dft_raw = atoms.get_potential_energy()
        dft_corrected = dft_raw + atoms.info["correction"]
        probe = atoms.copy()
        probe.calc = teacher.calculator
        predicted = probe.get_potential_energy()  # CHGNet as it comes
        raw_errors.append(abs(predicted - dft_raw) / n)
        corrected_errors.append(abs(predicted - dft_corrected) / n)
        label_errors.append(abs(teacher.label(atoms).energy - dft_raw) / n)
        correction_errors.append(abs(mp2020_correction(atoms) - atoms.info["correction"]) / n)
    assert np.mean(corrected_errors) < 0.06 < 0.5 < np.mean(raw_errors)  # CHGNet predicts corrected energies
    assert np.mean(label_errors) < 0.06  # the stored label is on MP's raw GGA+U scale
    assert np.max(correction_errors) < 0.01  # our MP2020 correction is MP's
