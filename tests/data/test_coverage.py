"""Element coverage per fidelity: recorded by training and fine-tuning, shown on the card, warned about."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase.build import bulk

from tests.hub.helpers import tiny_model
from universal_mfp.data.coverage import (
    CoverageWarning,
    CoverageWatch,
    ElementCoverage,
    element_coverage,
    merge_coverage,
)
from universal_mfp.data.frame import Frame
from universal_mfp.hub.card import render_card
from universal_mfp.hub.checkpoint import CONFIG_FILE, save_checkpoint
from universal_mfp.models import load_model


def _frame(symbols_numbers, fidelity, *, teacher=False, energy=-1.0):
    numbers = np.asarray(symbols_numbers)
    info = {"source": "teacher:chgnet:r2scan", "teacher": "chgnet:r2scan"} if teacher else {"source": "matpes"}
    return Frame(
        numbers=numbers,
        positions=np.arange(3 * len(numbers), dtype=float).reshape(-1, 3),
        cell=np.eye(3) * 10.0,
        pbc=np.array([True, True, True]),
        fidelity=fidelity,
        energy=energy,
        info=info,
    )


def test_coverage_separates_dft_from_teacher_and_follows_the_priors():
    frames = [
        _frame([14, 14], "r2scan"),  # real r2SCAN Si
        _frame([8, 8], "pbe"),  # real PBE O
        _frame([12, 8], "r2scan_chgnet", teacher=True),  # teacher MgO
        _frame([3, 9], "r2scan_chgnet", teacher=True, energy=None),  # no label: does not count
    ]
    coverage = element_coverage(frames, {"r2scan": ["r2scan_chgnet"]})
    assert coverage == {
        "pbe": {"dft": ["O"], "teacher": []},
        "r2scan": {"dft": ["Si"], "teacher": ["O", "Mg"]},
        "r2scan_chgnet": {"dft": [], "teacher": ["O", "Mg"]},
    }
    read = ElementCoverage.from_record(coverage)
    assert read.unseen("r2scan", [8, 12, 14, 3]) == [3]
    assert read.unseen("pbe", [8, 12]) == [12]
    assert read.unseen("pbe_matpes", [1]) == [1]  # a fidelity with no record saw nothing


def test_merge_is_the_union():
    merged = merge_coverage(
        {"pbe": {"dft": ["O"], "teacher": ["Mg"]}}, {"pbe": {"dft": ["H", "O"]}, "r2scan": {"dft": ["Si"]}}
    )
    assert merged == {"pbe": {"dft": ["H", "O"], "teacher": ["Mg"]}, "r2scan": {"dft": ["Si"], "teacher": []}}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (["pbe"], "must map each fidelity"),
        ({"pbe": ["O"]}, "must map 'dft'/'teacher'"),
        ({"pbe": {"dft": ["O"], "exact": ["H"]}}, "must map 'dft'/'teacher'"),
        ({"pbe": {"dft": ["Oo"]}}, r"unknown elements \['Oo'\]"),
    ],
)
def test_malformed_records_are_refused(record, message):
    with pytest.raises(ValueError, match=message):
        ElementCoverage.from_record(record)


def test_the_watch_warns_once_per_element_and_fidelity():
    watch = CoverageWatch(ElementCoverage.from_record({"pbe": {"dft": ["O", "Si"]}, "r2scan": {"dft": ["Si"]}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watch.check("r2scan", [8, 14, 8])
        watch.check("r2scan", [8])
    assert [str(w.message)[:37] for w in caught] == ["O was never seen at fidelity 'r2scan'"]
    assert caught[0].category is CoverageWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        watch.check("pbe", [8, 14])  # seen: silent
        watch.check("r2scan", [14, 8])  # already warned: silent


@pytest.fixture
def covered_checkpoint(tmp_path):
    coverage = {"pbe": {"dft": ["O", "Si"], "teacher": []}, "r2scan": {"dft": ["Si"], "teacher": []}}
    folder = save_checkpoint(tiny_model(), tmp_path / "model", training={"coverage": coverage})
    return folder


def test_calculator_and_predict_warn_outside_the_coverage(covered_checkpoint):
    loaded = load_model(covered_checkpoint)
    assert loaded.coverage is not None and loaded.coverage.unseen("r2scan", [8, 14]) == [8]
    silica = bulk("Si", "diamond", a=5.43)
    silica.numbers[1] = 8
    calculator = loaded.calculator("r2scan")
    silica.calc = calculator
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        energy = silica.get_potential_energy()
        silica.positions[0, 0] += 0.01
        silica.get_potential_energy()
    assert [w.category for w in caught] == [CoverageWarning] and "O was never seen" in str(caught[0].message)
    assert np.isfinite(energy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silica.calc = loaded.calculator("pbe")
        silica.get_potential_energy()  # O and Si both seen at pbe
    with pytest.warns(CoverageWarning, match="O was never seen at fidelity 'r2scan'"):
        (prediction,) = loaded.predict([silica], fidelity="r2scan")
    assert prediction.energy == pytest.approx(calculator.get_potential_energy(silica), abs=1e-4)


def test_a_checkpoint_without_coverage_gives_no_warning(tmp_path):
    loaded = load_model(save_checkpoint(tiny_model(), tmp_path / "model"))
    assert loaded.coverage is None
    silica = bulk("Si", "diamond", a=5.43)
    silica.numbers[1] = 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        loaded.predict([silica], fidelity="r2scan")


def test_a_corrupt_coverage_record_names_the_checkpoint(covered_checkpoint):
    path = covered_checkpoint / CONFIG_FILE
    metadata = json.loads(path.read_text())
    metadata["training"]["coverage"] = {"r2scan": {"dft": ["Xx"]}}
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ValueError, match=r"checkpoint .*model.*unknown elements \['Xx'\]"):
        load_model(covered_checkpoint)


def test_the_card_lists_the_coverage(covered_checkpoint):
    metadata = json.loads((covered_checkpoint / CONFIG_FILE).read_text())
    metadata["training"]["coverage"]["r2scan"]["teacher"] = ["O", "Si"]
    card = render_card(metadata, name="tiny")
    assert "| Fidelity | Real DFT | Teacher labels only | Not seen |" in card
    assert "| `pbe` | 2: O, Si | – | – |" in card
    assert "| `r2scan` | 1: Si | 1: O | – |" in card
