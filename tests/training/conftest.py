"""A config writer for the training tests (the small real training set is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import yaml


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
