"""The bundled default model: registered, verified, loads offline, and predicts what it predicted when bundled."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from universal_mfp import available_models, load_model
from universal_mfp.cli import main as umfp

SNAPSHOT = Path(__file__).parent / "snapshots" / "mf-universal.json"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "candidates.extxyz"


@pytest.fixture(scope="module")
def snapshot():
    return json.loads(SNAPSHOT.read_text())


def _structures(snapshot):
    return {
        name: Atoms(numbers=s["numbers"], positions=s["positions"], cell=s["cell"], pbc=s["pbc"])
        for name, s in snapshot["structures"].items()
    }


FIDELITIES = ("pbe", "r2scan", "pbe_chgnet", "pbe_matpes", "r2scan_chgnet")


def test_registered_with_alias_and_its_fidelities(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # bundled: no network needed
    assert {"mf-universal-v1", "mf-universal-v0.5"} <= set(available_models())
    loaded = load_model("mf-universal")
    assert loaded.metadata["source"]["name"] == "mf-universal-v1"
    assert loaded.fidelities == FIDELITIES
    with pytest.raises(ValueError, match=r"\['pbe', 'r2scan', 'pbe_chgnet', 'pbe_matpes', 'r2scan_chgnet'\]"):
        loaded.calculator()
    assert load_model("mf-universal-v0.5").fidelities == ("pbe", "r2scan", "pbe_matpes")  # still loadable


def test_the_pair_repulsion_is_on_and_walls_off_a_close_pair(snapshot):
    """v1 carries the ZBL repulsion below 0.38 covalent sums: two Li atoms at 0.7 Å cost tens of eV more than
    the network alone gives them."""
    loaded = load_model("mf-universal", dtype="float64")
    assert loaded.model.config.pair_repulsion and loaded.model.config.pair_repulsion_cutoff_factor == 0.38
    pair = _structures(snapshot)["Li2-at-0.7"]
    apart = pair.copy()
    apart.positions[1, 2] = 2.7  # near the Li2 bond length
    close, bonded = loaded.predict([pair, apart], fidelity="r2scan")
    assert close.energy - bonded.energy > 5.0
    assert close.forces[1, 2] > 5.0  # pushing the atoms apart


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_predictions_match_snapshot(snapshot, fidelity):
    loaded = load_model("mf-universal", dtype="float64")
    structures = _structures(snapshot)
    predictions = loaded.predict(list(structures.values()), fidelity=fidelity)
    for name, prediction in zip(structures, predictions, strict=True):
        expected = snapshot["predictions"][fidelity][name]
        assert prediction.energy == pytest.approx(expected["energy"], abs=1e-6), name
        np.testing.assert_allclose(prediction.forces, expected["forces"], atol=1e-6, err_msg=name)
        if expected["stress"] is None:
            assert prediction.stress is None
        else:
            np.testing.assert_allclose(prediction.stress, expected["stress"], atol=1e-8, err_msg=name)


def test_float32_calculator_agrees_with_snapshot(snapshot):
    atoms = _structures(snapshot)["Si16-rattled"]
    atoms.calc = load_model("mf-universal").calculator(fidelity="r2scan")
    assert atoms.get_potential_energy() == pytest.approx(
        snapshot["predictions"]["r2scan"]["Si16-rattled"]["energy"], abs=2e-3
    )


def _screen(tmp_path, fidelity: str, *options: str) -> tuple[dict[str, float], dict[str, float]]:
    """Run ``umfp screen`` on the example candidates; energies above hull and formation energies (eV/atom),
    MP2020-corrected ones with ``--mp2020``."""
    out = tmp_path / f"screening-{fidelity}"
    args = f"screen {EXAMPLES} --model mf-universal --fidelity {fidelity} --output-dir {out} --no-progress"
    assert umfp([*args.split(), *options]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 16
    assert (out / "hulls" / "hull_Si.png").is_file()
    hull = {row["id"]: float(row["e_above_hull"]) for row in rows}  # eV/atom
    column = "formation_energy_per_atom_mp2020" if "--mp2020" in options else "formation_energy_per_atom"
    formation = {row["id"]: float(row[column]) for row in rows}
    return hull, formation


def test_readme_main_job(tmp_path, capsys):
    """The README's main job: screen the example candidates at the r2scan fidelity and print the table.

    The energies above hull are the textbook ones: diamond Si, bcc Fe, fcc Al, fcc Cu and hcp Mg on (or within a
    few meV/atom of) the hull and below their other forms, the close-packed Si phases far above it; MgO, SiC and
    NaCl bound about as MP's r2SCAN binds them (-3.00, -0.30 and -2.04 eV/atom, ``raw/rxnnet``).
    """
    hull, formation = _screen(tmp_path, "r2scan")
    printed = capsys.readouterr().out
    assert "E_hull (meV/atom)" in printed and "Si-diamond" in printed
    assert hull["Si-diamond"] < 0.01 and hull["Si-fcc"] > 0.2 and hull["Si-bcc"] > 0.2
    assert hull["Fe-bcc"] < 0.01 and hull["Fe-bcc"] < hull["Fe-fcc"]
    assert hull["Al-fcc"] < 0.01 and hull["Al-fcc"] < hull["Al-bcc"]
    assert hull["Cu-fcc"] < 0.01 and hull["Cu-fcc"] < hull["Cu-bcc"] and hull["Mg-hcp"] < hull["Mg-fcc"]
    assert formation["MgO-rocksalt"] == pytest.approx(-2.999, abs=0.15)
    assert formation["SiC-zincblende"] == pytest.approx(-0.304, abs=0.15)
    assert formation["NaCl-rocksalt"] == pytest.approx(-2.038, abs=0.15)


def test_pbe_screen_what_it_gets_right(tmp_path):
    """At pbe (MP GGA/GGA+U) the same parts are right: Si, Fe, Al and Cu ordering; with MP2020 corrections the
    compounds are bound as MP binds them (``raw/rxnnet``: MgO −3.05, SiC −0.20, NaCl −2.11 eV/atom), to the
    0.15 eV/atom of the fixed checks, on these unrelaxed cells."""
    hull, formation = _screen(tmp_path, "pbe", "--mp2020")
    assert hull["Si-diamond"] < 0.01 and hull["Si-fcc"] > 0.3 and hull["Si-bcc"] > 0.3
    assert hull["Fe-bcc"] < hull["Fe-fcc"] and hull["Al-fcc"] < hull["Al-bcc"] and hull["Cu-fcc"] < hull["Cu-bcc"]
    assert formation["MgO-rocksalt"] == pytest.approx(-3.054, abs=0.15)
    assert formation["SiC-zincblende"] == pytest.approx(-0.203, abs=0.15)
    assert formation["NaCl-rocksalt"] == pytest.approx(-2.110, abs=0.15)
