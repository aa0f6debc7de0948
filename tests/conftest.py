"""Shared fixtures: the real data folder and small model configurations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
