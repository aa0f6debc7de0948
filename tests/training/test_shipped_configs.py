"""The run configs in ``configs/`` parse, and v1's says what its recipe promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from universal_mfp.training.config import load_run_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(path: Path):
    config = load_run_config(path)
    assert config.data.sources and config.training.epochs >= 1


def test_v1_ties_binding_energies_and_calibrates_every_teacher_element():
    config = load_run_config(next(p for p in CONFIGS if p.name == "mf-universal-v1.yaml"))
    assert [(s.source, s.target, s.shift_from_references) for s in config.fidelity_priors] == [
        ("pbe_chgnet", "pbe", True),
        ("r2scan_chgnet", "r2scan", True),
    ]
    teacher = config.data.isolated_atom_energies["r2scan_chgnet"]
    assert teacher.same_as == "r2scan" and teacher.fallback_cohesive_from == "pbe_chgnet"
    assert teacher.offsets is not None and teacher.offsets.is_file()
    assert config.data.max_binding_energy == 20.0
