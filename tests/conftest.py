"""Shared fixtures: the real data folder and small model configurations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ase.io import read, write

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Location of the real DFT data (``../shared/data``, or ``$UMFP_SHARED_DATA``)."""
    return Path(os.environ.get("UMFP_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_frames_dir() -> Path:
    """The real extxyz frames; tests that need them skip when the folder is absent."""
    path = shared_data_dir() / "frames"
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (clone the project with ../shared beside it)")
    return path


@pytest.fixture(scope="session")
def small_real_set(shared_frames_dir, tmp_path_factory) -> Path:
    """Real PBE and r2SCAN frames: 4 dimer curves (8 points each) at both fidelities + 6 MatPES crystals."""
    out = tmp_path_factory.mktemp("data")
    for functional in ("PBE", "r2SCAN"):
        frames = [
            a
            for a in read(shared_frames_dir / f"diatomics_{functional}.extxyz", ":")
            if a.info["pair"] in ("H-H", "Li-Li", "O-O", "Si-Si")
        ]
        frames = [a for a in frames if abs(a.get_forces()).max() < 20.0][::5]  # skip the steep repulsive wall
        write(out / f"dimers_{functional}.extxyz", frames, format="extxyz")
    crystals = [
        a
        for a in read(shared_frames_dir / "matpes_element_refs_PBE.extxyz", ":")
        if a.info["element"] in ("H", "Li", "O", "Si")
    ]
    write(out / "crystals_PBE.extxyz", crystals, format="extxyz")
    return out
