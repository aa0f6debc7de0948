"""DFT side of benchmarks/r2scan_formation_energies.py: MP r2SCAN compounds against MatPES r2SCAN elements."""

from collections import Counter

import numpy as np
import pytest
from ase.data import chemical_symbols

from tests.hull.benchmark_scripts import load_benchmark
from universal_mfp.data.readers import read_extxyz
from universal_mfp.hull.references import bundled_elemental_references
from universal_mfp.training.isolated_atoms import lowest_bulk_energies


def test_mp_r2scan_formation_enthalpies_match_matpes_elements(shared_data):
    script = load_benchmark("r2scan_formation_energies")
    table = script.read_mp_r2scan(shared_data / "raw" / "rxnnet" / "rxnnet_mp_gga_r2scan_energies.csv.gz")
    assert len(table) > 1000
    compounds = script.compounds_with_structures(read_extxyz(shared_data / "frames" / "mp_LiFeO_entries.extxyz"), table)
    assert sorted(f.info["id"] for f in compounds) == ["mp-19306", "mp-1960", "mp-19770", "mp-841"]
    assert sorted(f.formula for f in compounds) == ["Fe4O6", "Fe6O8", "Li2O", "Li4O4"]
    matpes = read_extxyz(shared_data / "frames" / "matpes_element_refs_r2SCAN.extxyz")
    mu = {chemical_symbols[z]: e for z, e in lowest_bulk_energies(matpes).items()}
    for frame in compounds:
        row = table[frame.info["id"]]
        counts = Counter(frame.symbols)
        formation = row["energy"] - sum(n * mu[s] for s, n in counts.items()) / frame.num_atoms
        # MP's r2SCAN formation enthalpy from MP's compound energy and the MatPES r2SCAN elemental energies
        assert formation == pytest.approx(row["formation"], abs=0.003), frame.info["id"]
        assert row["formation"] < -1.5
    # the benchmark's model side uses the bundled r2SCAN ground states: the same MatPES structures
    by_id = {f.info["matpes_id"]: f for f in matpes}
    for reference in bundled_elemental_references("r2scan", ["Li", "Fe", "O"]):
        same = by_id[reference.info["matpes_id"]]
        np.testing.assert_allclose(reference.positions, same.positions, atol=1e-6)
        np.testing.assert_allclose(reference.cell, same.cell, atol=1e-6)
