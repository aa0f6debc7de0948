"""File-to-file screening (CIF, POSCAR, extxyz in; CSV, JSON, PNG out) and the ``screen`` subcommand."""

import argparse
import csv
import json
import math

import ase.io
import pytest
from pymatgen.io.ase import AseAtomsAdaptor

from universal_mfp.hub.checkpoint import save_checkpoint
from universal_mfp.hull import ScreeningRequest, run_screening, stable_metrics
from universal_mfp.hull.cli import add_screen_parser, resolve_model

from .structures import candidates


@pytest.fixture
def candidate_files(tmp_path):
    folder = tmp_path / "candidates"
    folder.mkdir()
    cands = candidates()
    ase.io.write(folder / "batch.extxyz", cands[:4], format="extxyz")
    AseAtomsAdaptor.get_structure(cands[4]).to(filename=str(folder / "Li2O.cif"))
    (folder / "nacu").mkdir()
    ase.io.write(folder / "nacu" / "POSCAR", cands[5], format="vasp")
    return folder


def _read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_workflow_writes_csv_plots_and_metrics(tiny_model, candidate_files, tmp_path):
    ids = ["SiC", "Si-diamond", "Cu-fcc", "Cu-bcc", "Li2O", "nacu/POSCAR"]
    labels = dict(zip(ids, [0.0, 0.0, 0.0, 0.02, 0.0, 0.3], strict=True))
    labels_path = tmp_path / "labels.csv"
    labels_path.write_text("id,e_above_hull\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    out = tmp_path / "out"
    request = ScreeningRequest(
        candidates=[candidate_files], fidelity="r2scan", output_dir=out, labels=labels_path, progress=False
    )
    summary = run_screening(tiny_model, request, model_name="tiny")
    rows = _read_csv(out / "results.csv")
    assert sorted(r["id"] for r in rows) == sorted(ids)
    for column in ("id", "formula", "energy_per_atom", "formation_energy_per_atom", "e_above_hull", "stable"):
        assert column in rows[0]
    assert {r["relaxation_status"] for r in rows} == {"unrelaxed"}
    assert all(r["stable"] in ("True", "False") for r in rows)
    for chemsys in ("C-Si", "Si", "Cu", "Li-O", "Cu-Na"):
        png = out / "hulls" / f"hull_{chemsys}.png"
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG", chemsys
    # metrics equal the confusion matrix and errors counted by hand from the CSV
    pred = {r["id"]: float(r["e_above_hull"]) for r in rows}
    tp = sum(labels[i] <= 0 and pred[i] <= 0 for i in ids)
    fp = sum(labels[i] > 0 and pred[i] <= 0 for i in ids)
    tn = sum(labels[i] > 0 and pred[i] > 0 for i in ids)
    fn = sum(labels[i] <= 0 and pred[i] > 0 for i in ids)
    metrics = summary["metrics"]
    assert (metrics["TP"], metrics["FP"], metrics["TN"], metrics["FN"]) == (tp, fp, tn, fn)
    assert metrics["MAE"] == pytest.approx(sum(abs(labels[i] - pred[i]) for i in ids) / len(ids), abs=1e-5)
    precision = tp / (tp + fp) if tp + fp else math.nan
    if tp + fp:
        assert metrics["Precision"] == pytest.approx(precision)
        assert metrics["DAF"] == pytest.approx(precision / (4 / 6))
    assert metrics["n_labelled"] == 6
    saved = json.loads((out / "summary.json").read_text())
    assert saved["num_candidates"] == 6
    assert saved["settings"]["fidelity"] == "r2scan"
    reference = stable_metrics([labels[i] for i in ids], [pred[i] for i in ids])
    assert saved["metrics"]["F1"] == pytest.approx(reference["F1"], nan_ok=True)


def test_screen_subcommand(tiny_model, candidate_files, tmp_path):
    parser = argparse.ArgumentParser(prog="umfp")
    add_screen_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    folder = save_checkpoint(tiny_model, tmp_path / "tiny", name="tiny-test")
    args = parser.parse_args(
        [
            "screen", str(candidate_files / "batch.extxyz"), "--model", str(folder), "--fidelity", "pbe",
            "--mp2020", "--output-dir", str(out), "--no-progress", "--no-plots",
        ]
    )  # fmt: skip
    assert args.handler(args) == 0
    rows = _read_csv(out / "results.csv")
    assert len(rows) == 4
    assert "e_above_hull_mp2020" in rows[0]
    assert not (out / "hulls").exists()


def test_resolve_model_through_the_hub(tiny_model, tmp_path):
    folder = save_checkpoint(tiny_model, tmp_path / "ckpt", name="tiny-test")
    model = resolve_model(str(folder))
    assert model.fidelities == ("pbe", "r2scan")
