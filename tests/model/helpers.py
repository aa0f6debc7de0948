"""Structures and small models shared by the model and calculator tests."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from universal_mfp.data import as_frame, collate_graphs, frame_to_graph
from universal_mfp.model import ModelConfig, build_model

ELEMENTS = (1, 3, 6, 8, 14, 26)
FIDELITIES = ("pbe", "r2scan")

# Architectures: the default family (even 0e/1o/2e features, fidelity in every layer), one with
# odd-parity channels, higher-degree edge harmonics and the fidelity only in the readout, and a small one
# with a shared network plus a per-fidelity linear readout correction, so the physics contracts are
# checked on every way the fidelity can enter; then the shipped v1 layout: heads, plus the angular invariants
# (degrees 1-4) in the first node features, without and with the ZBL pair repulsion.
ANGULAR = dict(
    num_layers=2,
    hidden_irreps="8x0e+4x1o+2x2e",
    lmax_edge=2,
    fidelity_conditioning="heads",
    angular_lmax=4,
    angular_channels=3,
)
VARIANTS = {
    "even": dict(num_layers=2, hidden_irreps="16x0e+8x1o+4x2e", lmax_edge=2),
    "mixed_parity": dict(
        num_layers=3, hidden_irreps="8x0e+2x0o+4x1o+4x1e+2x2e", lmax_edge=3, fidelity_conditioning="readout"
    ),
    "linear_delta": dict(num_layers=2, hidden_irreps="8x0e+4x1o", lmax_edge=1, fidelity_conditioning="linear_delta"),
    "heads": dict(num_layers=2, hidden_irreps="8x0e+4x1o+2x2e", lmax_edge=2, fidelity_conditioning="heads"),
    "angular": ANGULAR,
    # and the ZBL pair repulsion, its cutoff stretched (1.3 covalent sums) so that the test crystals' pairs
    # (1.2 and more) feel it
    "repulsion": dict(ANGULAR, pair_repulsion=True, pair_repulsion_cutoff_factor=1.3),
}


def small_config(variant: str = "even", dtype: str = "float64", **changes) -> ModelConfig:
    settings = dict(
        elements=ELEMENTS,
        fidelities=FIDELITIES,
        cutoff=4.0,
        radial_mlp_hidden=(16,),
        readout_hidden=8,
        avg_num_neighbors=10.0,
        dtype=dtype,
        **VARIANTS[variant],
    )
    settings.update(changes)
    return ModelConfig(**settings)


def small_model(variant: str = "even", dtype: str = "float64", seed: int = 0, **changes):
    model = build_model(small_config(variant, dtype, **changes), seed=seed)
    num_fidelities = len(model.fidelities)
    refs = torch.linspace(-3.0, -1.0, len(ELEMENTS) * num_fidelities).reshape(num_fidelities, len(ELEMENTS))
    model.set_energy_normalization(refs, torch.linspace(0.7, 1.3, num_fidelities))
    if model.fidelity_delta is not None:  # zero at initialisation: make the fidelities differ
        generator = torch.Generator().manual_seed(seed + 7)
        with torch.no_grad():
            model.fidelity_delta.copy_(0.3 * torch.randn(model.fidelity_delta.shape, generator=generator))
    if model.readout_out.fidelity_bias.ndim == 2 and hasattr(model.readout_out, "fidelity_weight"):
        generator = torch.Generator().manual_seed(seed + 11)  # heads start equal: make them differ
        with torch.no_grad():
            for layer in (model.readout_hidden, model.readout_out):
                weight = layer.fidelity_weight
                weight.add_(0.3 * torch.randn(weight.shape, generator=generator, dtype=weight.dtype))
    if model.angular is not None:  # its output map starts at zero: make the invariants count
        generator = torch.Generator().manual_seed(seed + 13)
        with torch.no_grad():
            weight = model.angular.output.weight
            weight.copy_(0.5 * torch.randn(weight.shape, generator=generator, dtype=weight.dtype))
    model.eval()
    return model


def rattled_crystal(seed: int = 0, repeat: tuple[int, int, int] = (1, 1, 1)) -> Atoms:
    """A two-species periodic crystal in a non-orthogonal cell, rattled off its lattice sites."""
    atoms = bulk("SiC", "zincblende", a=4.36) * repeat
    atoms.numbers[::3] = 8
    atoms.rattle(0.08, seed=seed)
    return atoms


def molecule() -> Atoms:
    return Atoms(
        "CH3OH",
        positions=[
            [0.0, 0.0, 0.0],
            [1.09, 0.0, 0.0],
            [-0.36, 1.03, 0.0],
            [-0.36, -0.51, 0.89],
            [-0.47, -0.67, -1.17],
            [-1.43, -0.6, -1.2],
        ],
        pbc=False,
    )


def batch_of(structures, fidelity_indices, cutoff):
    graphs = [frame_to_graph(as_frame(s), cutoff, f) for s, f in zip(structures, fidelity_indices, strict=True)]
    return collate_graphs(graphs)


def evaluate(model, atoms, fidelity_index=1, *, stress=True):
    batch = batch_of([atoms], [fidelity_index], model.config.cutoff)
    out = model(batch, compute_forces=True, compute_stress=stress)
    return {k: v.detach() for k, v in out.items()}


def random_rotation(seed: int, proper: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q if proper else -q
