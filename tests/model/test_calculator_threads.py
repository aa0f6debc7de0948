"""MFCalculator's per-calculator thread count: same results, torch's global setting restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.model.helpers import rattled_crystal, small_model
from universal_mfp.calculator import MFCalculator


def test_num_threads_is_applied_per_evaluation_and_restored():
    model = small_model()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(torch.get_num_threads()))
    original = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        atoms = rattled_crystal(seed=5)
        plain = MFCalculator(model, fidelity="r2scan")
        single = MFCalculator(model, fidelity="r2scan", num_threads=1)
        plain.calculate(atoms, ["energy", "forces", "stress"])
        single.calculate(atoms, ["energy", "forces", "stress"])
        assert seen == [3, 1]  # the model ran with the process setting, then with the calculator's
        assert torch.get_num_threads() == 3  # and the process setting is back
    finally:
        torch.set_num_threads(original)
    np.testing.assert_allclose(single.results["forces"], plain.results["forces"], atol=1e-10)
    assert single.results["energy"] == pytest.approx(plain.results["energy"], abs=1e-10)


def test_num_threads_must_be_positive():
    with pytest.raises(ValueError, match="num_threads"):
        MFCalculator(small_model(), fidelity="r2scan", num_threads=0)
