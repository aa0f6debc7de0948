"""A new fidelity slot: one more one-hot row in every fidelity-conditioned tensor, initialised from an old one.

The per-fidelity tensors of ``MultiFidelityPotential`` (``is_per_fidelity``) are ``fidelity_bias`` [F, C]
of every fidelity-conditioned ``FidelityLinear`` (which layers depends on ``fidelity_conditioning``),
``fidelity_delta`` [F, H] of a ``linear_delta`` model, ``element_references`` [F, S] and the
``energy_scale`` buffer [F]. A new fidelity is appended as row ``F``, a copy of the row of the fidelity it
starts from, so the old fidelities keep their indices and their predictions do not change at all.

Element references of the new fidelity are refitted on its data by least squares on what the
starting fidelity gets wrong: ``E_new - E_init(x) ≈ Σ_Z n_Z δ_Z`` and ``ref_new[Z] = ref_init[Z] + δ_Z``.
With the copied rows, ``δ`` is exactly the best per-element offset for the starting model, and an
element absent from the new data keeps the starting fidelity's reference (``δ_Z = 0``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from universal_mfp.data.frame import Frame
from universal_mfp.data.statistics import composition_matrix
from universal_mfp.fidelity import fidelity_index, validate_fidelity_name
from universal_mfp.inference import predict_structures
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)


def predict_energies(
    model: MultiFidelityPotential, frames: Sequence[Frame], fidelity: str, *, batch_size: int = 32
) -> np.ndarray:
    """Total energies (eV) the model predicts for ``frames`` at ``fidelity``."""
    was_training = model.training
    model.eval()
    try:  # the one batch prediction path
        with torch.no_grad():
            predictions = predict_structures(
                model,
                frames,
                fidelity=fidelity,
                compute_forces=False,
                compute_stress=False,
                max_structures_per_batch=batch_size,
            )
    finally:
        model.train(was_training)
    return np.array([p.energy for p in predictions], dtype=np.float64)


def fit_reference_shift(
    model: MultiFidelityPotential, frames: Sequence[Frame], init_from: str
) -> tuple[np.ndarray, float]:
    """Least-squares per-element offsets ``δ`` [S] (eV) from fidelity ``init_from`` to the labelled ``frames``.

    Elements absent from the frames get ``δ = 0``. Returns ``(δ, rms)`` where ``rms`` is the RMS per-atom
    energy residual (eV/atom) left after the offsets.

    Raises:
        ValueError: if no frame has an energy.
    """
    labelled = [f for f in frames if f.energy is not None]
    if not labelled:
        raise ValueError("the new fidelity's data has no energies to fit element references on")
    counts = composition_matrix(labelled, model.config.elements)
    residual = np.array([f.energy for f in labelled]) - predict_energies(model, labelled, init_from)
    present = counts.sum(axis=0) > 0
    shift = np.zeros(len(model.config.elements))
    shift[present], *_ = np.linalg.lstsq(counts[:, present], residual, rcond=None)
    left = (residual - counts @ shift) / counts.sum(axis=1)
    return shift, float(np.sqrt(np.mean(left**2)))


def closest_fidelity(model: MultiFidelityPotential, frames: Sequence[Frame]) -> str:
    """The existing fidelity that best fits ``frames`` after refitting element references (ties: the first).

    Each fidelity is scored by the RMS per-atom energy residual left after ``fit_reference_shift``; the
    lowest wins, and a fidelity must beat the earlier ones by more than 0.1 meV/atom to be preferred.
    """
    best, best_rms = model.fidelities[0], float("inf")
    for name in model.fidelities:
        _, rms = fit_reference_shift(model, frames, name)
        logger.info("fidelity %s fits the new data to %.2f meV/atom after refitting references", name, 1000 * rms)
        if rms < best_rms - 1e-4:
            best, best_rms = name, rms
    return best


def add_fidelity(
    model: MultiFidelityPotential,
    name: str,
    *,
    init_from: str,
    reference_shift: np.ndarray | None = None,
) -> MultiFidelityPotential:
    """Return a new model with fidelity ``name`` appended, initialised as a copy of ``init_from``.

    Args:
        model: the trained model (left unchanged).
        name: the new fidelity's name (a lower-case identifier not yet in the model).
        init_from: existing fidelity whose rows the new one copies.
        reference_shift: per-element offsets (eV, shape [S]) added to the copied element references.

    Raises:
        ValueError: if ``name`` exists or is malformed, ``init_from`` is unknown, or the shift has the wrong shape.
    """
    name = validate_fidelity_name(name)
    if name in model.fidelities:
        raise ValueError(f"fidelity {name!r} already exists; the model's fidelities are {list(model.fidelities)}")
    source = fidelity_index(init_from, model.fidelities)
    num_species = len(model.config.elements)
    shift = torch.zeros(num_species, dtype=torch.float64)
    if reference_shift is not None:
        shift = torch.as_tensor(np.asarray(reference_shift, dtype=np.float64))
        if shift.shape != (num_species,):
            raise ValueError(f"reference_shift must have shape ({num_species},), got {tuple(shift.shape)}")
    grown = MultiFidelityPotential(model.config.replace(fidelities=(*model.fidelities, name)))
    grown.to(device=model.device, dtype=model.dtype)
    state = {}
    for key, value in model.state_dict().items():
        target = grown.state_dict()[key]
        if value.shape == target.shape:
            state[key] = value.clone()
            continue
        if not model.is_per_fidelity(key) or target.shape[1:] != value.shape[1:]:
            raise ValueError(f"unexpected tensor {key!r} {tuple(value.shape)} -> {tuple(target.shape)}")
        row = value[source : source + 1].clone()
        if key == "element_references":
            row = (row.double() + shift).to(value.dtype)
        state[key] = torch.cat([value, row], dim=0)
    grown.load_state_dict(state, strict=True)
    grown.train(model.training)
    return grown
