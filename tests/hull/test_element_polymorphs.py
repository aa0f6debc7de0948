"""DFT side of benchmarks/element_polymorphs_hull.py on the real MP elemental polymorphs."""

from collections import defaultdict

import pytest

from tests.hull.benchmark_scripts import load_benchmark


def test_dft_hull_of_element_polymorphs(shared_data):
    script = load_benchmark("element_polymorphs_hull")
    frames = script.read_polymorphs(shared_data / "frames" / "mp_pbe_element_polymorphs.extxyz")
    assert len(frames) == 789
    hull = script.dft_e_above_hull(frames)
    by_element = defaultdict(list)
    for frame in frames:
        by_element[frame.symbols[0]].append((frame.energy / frame.num_atoms, frame.info["id"]))
    for element, items in by_element.items():
        lowest = min(e for e, _ in items)
        ground = min(items)[1]
        assert hull[ground] == 0.0, element
        for energy, key in items:
            # for one element the hull distance is exactly the energy per atom above the lowest polymorph
            assert hull[key] == pytest.approx(energy - lowest, abs=1e-7), (element, key)
            if energy - lowest > 1e-6:
                assert hull[key] > 0.0
    assert sum(value > 0 for value in hull.values()) > 600
