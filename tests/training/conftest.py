"""A small real training set and a config writer for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ase.io import read, write


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


def write_config(folder: Path, data_dir: Path, **training) -> Path:
    config = {
        "seed": 3,
        "output_dir": str(folder / "run"),
        "data": {
            "sources": [str(p) for p in sorted(data_dir.glob("*.extxyz"))],
            "val_fraction": 0.2,
            "test_fraction": 0.0,
        },
        "model": {
            "cutoff": 4.0,
            "num_layers": 2,
            "hidden_irreps": "8x0e+4x1o",
            "radial_mlp_hidden": [8],
            "readout_hidden": 8,
        },
        "training": {
            "epochs": 3,
            "batch_size": 8,
            "learning_rate": 0.01,
            "warmup_steps": 2,
            "progress": False,
            **training,
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
