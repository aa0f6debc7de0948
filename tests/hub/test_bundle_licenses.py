"""``scripts/bundle_model.py`` names the license of every kind of data a run used, read from its config."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from universal_mfp.training.config import load_run_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundler():
    spec = importlib.util.spec_from_file_location("bundle_model", ROOT / "scripts" / "bundle_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_project_dft_scans_are_named_only_where_a_run_used_them(bundler):
    names = ["mp_gga_task_frames.extxyz", "teacher:chgnet:0.3.0"]
    for cycle, uses_scans in (("cycle9", False), ("cycle10", True)):
        config = load_run_config(ROOT / "configs" / f"mf-universal-v1-{cycle}.yaml")
        licenses = bundler.data_licenses(names, [source.path for source in config.data.sources])
        assert ("dft_eos" in licenses) is uses_scans
        assert "teacher" in licenses and set(bundler.DATA_LICENSES) <= set(licenses)
    assert "GPAW" in bundler.DFT_EOS_LICENSE and "GPL-3.0" in bundler.DFT_EOS_LICENSE
    assert set(bundler.data_licenses(["mp_gga_task_frames.extxyz"])) == set(bundler.DATA_LICENSES)
