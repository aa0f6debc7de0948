"""Dataset statistics that set the model's normalisation before training.

- Per-fidelity element reference energies, fitted by least squares on each fidelity's own energies
  (``E_total ≈ Σ_Z n_Z ref_f[Z]``).
- A per-fidelity energy scale: the RMS of the force components (or, without forces, the RMS of the
  per-atom energy left after the references).
- The average number of neighbours within the cutoff, which normalises the summed messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from universal_mfp.data.frame import Frame

logger = logging.getLogger(__name__)


def composition_matrix(frames: Sequence[Frame], elements: Sequence[int]) -> np.ndarray:
    """Counts of each element in each frame, shape (len(frames), len(elements))."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(frames), len(elements)))
    for row, frame in enumerate(frames):
        for z, n in zip(*np.unique(frame.numbers, return_counts=True), strict=True):
            if int(z) not in column:
                raise ValueError(
                    f"frame {frame.info.get('frame_id', row)} has element Z={z} outside the model's elements"
                )
            counts[row, column[int(z)]] = n
    return counts


def fit_element_references(
    frames: Sequence[Frame],
    elements: Sequence[int],
    fidelities: Sequence[str],
    fixed: Mapping[str, Mapping[int, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Element reference energies per fidelity: given values where known, least squares for the rest.

    Args:
        frames: labelled frames.
        elements: the model's atomic numbers (columns).
        fidelities: the model's fidelities (rows).
        fixed: per fidelity, known references by atomic number (e.g. isolated-atom energies); the
            least-squares fit then covers only the other elements, on what those values leave unexplained.

    Returns:
        ``(references, fitted)``: references (eV) of shape (F, S) and a boolean (F, S) array telling which
        entries were determined by that fidelity's data. An element a fidelity has no energies for takes
        the reference of the first fidelity that has it, shifted by the mean offset between the two
        fidelities on the elements they share; the fallback is logged.
    """
    references = np.zeros((len(fidelities), len(elements)))
    fitted = np.zeros((len(fidelities), len(elements)), dtype=bool)
    for f, name in enumerate(fidelities):
        known = np.zeros(len(elements), dtype=bool)
        for k, z in enumerate(elements):
            value = (fixed or {}).get(name, {}).get(int(z))
            if value is not None:
                references[f, k], known[k] = float(value), True
        fitted[f] = known
        subset = [fr for fr in frames if fr.fidelity == name and fr.energy is not None]
        if not subset:
            if not known.any():
                logger.warning("fidelity %s has no energies: its references fall back to another fidelity", name)
            continue
        counts = composition_matrix(subset, elements)
        energies = np.array([fr.energy for fr in subset]) - counts[:, known] @ references[f, known]
        free = (counts.sum(axis=0) > 0) & ~known
        if free.any():
            solution, *_ = np.linalg.lstsq(counts[:, free], energies, rcond=None)
            references[f, free] = solution
            fitted[f, free] = True
        if known.any():
            logger.info("fidelity %s: %d references given, %d fitted", name, int(known.sum()), int(free.sum()))
    for f, name in enumerate(fidelities):
        missing = ~fitted[f]
        if not missing.any():
            continue
        for g in range(len(fidelities)):
            if g == f or not fitted[g].any():
                continue
            shared = fitted[f] & fitted[g]
            offset = float(np.mean(references[f, shared] - references[g, shared])) if shared.any() else 0.0
            take = missing & fitted[g]
            references[f, take] = references[g, take] + offset
            missing &= ~take
            logger.info(
                "fidelity %s: %d element references taken from %s (offset %.3f eV)",
                name,
                take.sum(),
                fidelities[g],
                offset,
            )
        if missing.any():
            logger.warning("fidelity %s: no data anywhere for %d elements; their references are 0", name, missing.sum())
    return references, fitted


def energy_scales(
    frames: Sequence[Frame], elements: Sequence[int], fidelities: Sequence[str], references: np.ndarray
) -> np.ndarray:
    """Per-fidelity energy scale (eV): RMS force component, or RMS per-atom residual energy without forces."""
    scales = np.ones(len(fidelities))
    for f, name in enumerate(fidelities):
        subset = [fr for fr in frames if fr.fidelity == name]
        forces = [fr.forces.ravel() for fr in subset if fr.forces is not None]
        if forces:
            rms = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
        else:
            labelled = [fr for fr in subset if fr.energy is not None]
            if not labelled:
                continue
            counts = composition_matrix(labelled, elements)
            residual = (np.array([fr.energy for fr in labelled]) - counts @ references[f]) / counts.sum(axis=1)
            rms = float(np.sqrt(np.mean(residual**2)))
        scales[f] = rms if rms > 1e-6 else 1.0
    return scales


def average_num_neighbors(edge_counts: Sequence[int], atom_counts: Sequence[int]) -> float:
    """Mean number of neighbours per atom over a dataset."""
    atoms = float(np.sum(atom_counts))
    if atoms == 0:
        raise ValueError("no atoms to average over")
    return max(float(np.sum(edge_counts)) / atoms, 1.0)
