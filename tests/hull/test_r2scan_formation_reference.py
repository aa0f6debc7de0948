"""DFT side of benchmarks/r2scan_formation_energies.py: MP r2SCAN compounds against MatPES r2SCAN elements."""

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from universal_mfp.data.readers import read_extxyz

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "r2scan_formation_energies.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("r2scan_formation_energies", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mp_r2scan_formation_enthalpies_match_matpes_elements(shared_data):
    script = _load_script()
    table = script.read_mp_r2scan(shared_data / "raw" / "rxnnet" / "rxnnet_mp_gga_r2scan_energies.csv.gz")
    assert len(table) > 1000
    compounds = script.compounds_with_structures(read_extxyz(shared_data / "frames" / "mp_LiFeO_entries.extxyz"), table)
    assert sorted(f.info["mp_id"] for f in compounds) == ["mp-19306", "mp-1960", "mp-19770", "mp-841"]
    assert sorted(f.formula for f in compounds) == ["Fe4O6", "Fe6O8", "Li2O", "Li4O4"]
    refs = script.elemental_ground_states(
        shared_data / "frames" / "matpes_element_refs_r2SCAN.extxyz", {"Li", "Fe", "O"}
    )
    mu = {s: f.energy / f.num_atoms for s, f in refs.items()}
    for frame in compounds:
        row = table[frame.info["mp_id"]]
        counts = Counter(frame.symbols)
        formation = row["energy"] - sum(n * mu[s] for s, n in counts.items()) / frame.num_atoms
        # MP's r2SCAN formation enthalpy from MP's compound energy and the MatPES r2SCAN elemental energies
        assert formation == pytest.approx(row["formation"], abs=0.003), frame.info["mp_id"]
        assert row["formation"] < -1.5
    with pytest.raises(ValueError, match=r"has no elemental reference for \['Xx'\]"):
        script.elemental_ground_states(shared_data / "frames" / "matpes_element_refs_r2SCAN.extxyz", {"Li", "Xx"})
