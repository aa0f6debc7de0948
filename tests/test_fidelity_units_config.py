from __future__ import annotations

import json

import numpy as np
import pytest

from universal_mfp.fidelity import fidelity_from_functional, fidelity_index
from universal_mfp.model import MODEL_SCHEMA_VERSION, ModelConfig
from universal_mfp.units import EV_PER_A3_TO_GPA, full_3x3_to_voigt_6, pressure_gpa, voigt_6_to_full_3x3


def test_fidelity_index_and_messages():
    assert fidelity_index("r2scan", ("pbe", "r2scan")) == 1
    assert fidelity_index("R2SCAN", ("pbe", "r2scan")) == 1
    assert fidelity_index("GGA+U", ("pbe", "r2scan")) == 0
    with pytest.raises(ValueError, match=r"required.*\['pbe', 'r2scan'\]"):
        fidelity_index(None, ("pbe", "r2scan"))
    with pytest.raises(ValueError, match=r"unknown fidelity 'hse'; valid fidelities are \['pbe'\]"):
        fidelity_index("hse", ("pbe",))
    assert fidelity_from_functional("gga") == "pbe"
    with pytest.raises(ValueError, match="missing functional"):
        fidelity_from_functional("")


def test_voigt_round_trip_and_pressure():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    sym = a + a.T
    np.testing.assert_allclose(voigt_6_to_full_3x3(full_3x3_to_voigt_6(sym)), sym)
    v = full_3x3_to_voigt_6(sym)
    assert v[3] == sym[1, 2] and v[4] == sym[0, 2] and v[5] == sym[0, 1]
    compressed = -np.eye(3) * 0.01  # eV/Å³, ASE sign: negative stress = compressed
    assert pressure_gpa(compressed) == pytest.approx(0.01 * EV_PER_A3_TO_GPA)
    assert pytest.approx(160.21766, rel=1e-6) == EV_PER_A3_TO_GPA


def test_config_json_round_trip_and_versioning():
    config = ModelConfig(elements=(8, 1), fidelities=("pbe", "r2scan"), hidden_irreps="8x0e+2x1o")
    data = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="schema version 99 is not supported"):
        ModelConfig.from_dict({**data, "schema_version": 99})
    with pytest.raises(ValueError, match=r"unknown model config keys \['colour'\]"):
        ModelConfig.from_dict({**data, "colour": "blue"})
    assert data["schema_version"] == MODEL_SCHEMA_VERSION
    with pytest.raises(ValueError, match="needs scalar"):
        ModelConfig(elements=(1,), fidelities=("pbe",), hidden_irreps="4x1o")
    with pytest.raises(ValueError, match="distinct names"):
        ModelConfig(elements=(1,), fidelities=("pbe", "pbe"))
    with pytest.raises(ValueError, match="unsupported dtype"):
        ModelConfig(elements=(1,), fidelities=("pbe",), dtype="float16")
    with pytest.raises(AttributeError):
        config.cutoff = 3.0
