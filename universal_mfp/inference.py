"""Batch prediction: evaluate many structures of different sizes in a few forward passes."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from universal_mfp.data import keys
from universal_mfp.data.batching import batch_to, collate_graphs
from universal_mfp.data.frame import Frame, as_frame
from universal_mfp.data.graph import frame_to_graph
from universal_mfp.fidelity import fidelity_index
from universal_mfp.model.config import resolve_dtype
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """Prediction for one structure (eV, eV/Å, eV/Å³ with ASE's stress sign).

    ``stress`` is ``None`` for a structure that is not periodic in all three directions, or when it was
    not asked for; ``forces`` is ``None`` when not asked for.
    """

    energy: float
    num_atoms: int
    fidelity: str
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None

    @property
    def energy_per_atom(self) -> float:
        """Energy per atom, eV/atom."""
        return self.energy / self.num_atoms


def inference_copy(
    model: MultiFidelityPotential, *, dtype: str | torch.dtype | None, device: str
) -> MultiFidelityPotential:
    """Return an evaluation-mode copy of ``model`` in ``dtype`` on ``device`` with frozen parameters.

    The caller's model is never modified.
    """
    target_dtype = model.dtype if dtype is None else resolve_dtype(dtype)
    clone = copy.deepcopy(model).to(device=torch.device(device), dtype=target_dtype)
    clone.eval()
    clone.requires_grad_(False)
    return clone


def resolve_fidelity(model: MultiFidelityPotential, fidelity: str | None) -> str:
    """Return the validated fidelity name; a single-fidelity model needs none, a multi-fidelity one does."""
    valid = model.fidelities
    if fidelity is None and len(valid) == 1:
        return valid[0]
    return valid[fidelity_index(fidelity, valid)]


def _chunks(frames: Sequence[Frame], max_atoms: int, max_structures: int) -> Iterator[list[int]]:
    current: list[int] = []
    atoms = 0
    for k, frame in enumerate(frames):
        if current and (atoms + frame.num_atoms > max_atoms or len(current) >= max_structures):
            yield current
            current, atoms = [], 0
        current.append(k)
        atoms += frame.num_atoms
    if current:
        yield current


def predict_structures(
    model: MultiFidelityPotential,
    structures: Iterable[Any],
    *,
    fidelity: str | None = None,
    compute_forces: bool = True,
    compute_stress: bool = True,
    max_atoms_per_batch: int = 4096,
    max_structures_per_batch: int = 256,
    progress: bool = False,
) -> list[Prediction]:
    """Evaluate structures (ASE ``Atoms``, pymatgen ``Structure``/``Molecule`` or ``Frame``) in batches.

    The model is used as given (its dtype and device); wrap it with ``inference_copy`` first to change
    them. Structures are grouped into batches of at most ``max_atoms_per_batch`` atoms.

    Raises:
        ValueError: for a missing or unknown fidelity, an element the model lacks, or invalid structures.
    """
    fidelity_name = resolve_fidelity(model, fidelity)
    index = model.fidelities.index(fidelity_name)
    frames = [as_frame(s) for s in structures]
    device = model.device
    results: list[Prediction | None] = [None] * len(frames)
    chunks = list(_chunks(frames, max_atoms_per_batch, max_structures_per_batch))
    iterator: Iterable[list[int]] = chunks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(chunks, desc="predict", unit="batch")
    for chunk in iterator:
        graphs = [frame_to_graph(frames[k], model.config.cutoff, index) for k in chunk]
        batch = batch_to(collate_graphs(graphs), device)
        out = model(batch, compute_forces=compute_forces, compute_stress=compute_stress, create_graph=False)
        energy = out[keys.ENERGY].detach().cpu().numpy()
        forces = out[keys.FORCES].detach().cpu().double().numpy() if compute_forces else None
        stress = out[keys.STRESS].detach().cpu().double().numpy() if compute_stress else None
        periodic = batch[keys.PBC].all(dim=1).cpu().numpy()
        start = 0
        for position, k in enumerate(chunk):
            n = frames[k].num_atoms
            results[k] = Prediction(
                energy=float(energy[position]),
                num_atoms=n,
                fidelity=fidelity_name,
                forces=None if forces is None else forces[start : start + n].copy(),
                stress=stress[position].copy() if stress is not None and periodic[position] else None,
            )
            start += n
    return [r for r in results if r is not None]
