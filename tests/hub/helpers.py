"""Tiny models, checkpoints and structures for the hub and CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from universal_mfp.files import sha256_file
from universal_mfp.model import ModelConfig, build_model
from universal_mfp.model.potential import MultiFidelityPotential

METRICS = {
    "pbe": {"val": {"energy_mae": 21.5, "forces_mae": 55.0}, "test": {"energy_mae": 23.1, "forces_mae": 57.2}},
    "r2scan": {
        "val": {"energy_mae": 18.4, "forces_mae": 48.9, "stress_mae": 0.41},
        "test": {"energy_mae": 19.0, "forces_mae": 50.3, "stress_mae": 0.44},
    },
}
TRAINING = {"dataset": "mp-pbe-r2scan-pairs", "num_frames": {"pbe": 1200, "r2scan": 800}, "epochs": 3}


def tiny_config(dtype: str = "float32") -> ModelConfig:
    return ModelConfig(
        elements=(8, 14),
        fidelities=("pbe", "r2scan"),
        num_layers=2,
        hidden_irreps="8x0e+4x1o",
        radial_mlp_hidden=(16,),
        readout_hidden=8,
        cutoff=4.0,
        dtype=dtype,
    )


def tiny_model(dtype: str = "float32", seed: int = 0) -> MultiFidelityPotential:
    model = build_model(tiny_config(dtype), seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    references = torch.randn(2, 2, generator=generator, dtype=torch.float64) * 3.0
    model.set_energy_normalization(references, torch.tensor([0.7, 1.3]))
    # Perturb the fidelity biases so the two heads really differ.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("fidelity_bias"):
                parameter.add_(
                    0.1 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64).to(parameter)
                )
    return model


def structures() -> list[Atoms]:
    silicon = bulk("Si", "diamond", a=5.43)
    silicon.rattle(0.05, seed=1)
    quartz_like = Atoms(
        "SiO2",
        positions=[[0.0, 0.0, 0.0], [1.6, 0.1, 0.0], [-0.4, 1.5, 0.2]],
        cell=np.eye(3) * 4.5,
        pbc=True,
    )
    molecule = Atoms("SiO", positions=[[0.0, 0.0, 0.0], [1.55, 0.05, 0.0]])
    return [silicon, quartz_like, molecule]


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())}


def write_registry(path: Path, models: list[dict]) -> Path:
    path.write_text(json.dumps({"registry_schema_version": 1, "models": models}), encoding="utf-8")
    return path


def registry_entry(name: str, files: dict[str, str], **changes) -> dict:
    entry = {
        "name": name,
        "aliases": [],
        "description": "tiny test model",
        "license": "mit",
        "fidelities": ["pbe", "r2scan"],
        "default_fidelity": None,
        "bundled_path": None,
        "repo_id": None,
        "revision": None,
        "files": files,
    }
    entry.update(changes)
    return entry
