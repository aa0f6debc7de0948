"""Per-fidelity statistics of a set of frames (counts, elements, energies, forces, stress)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from universal_mfp.data.frame import Frame


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    return {
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def fidelity_statistics(frames: Sequence[Frame], splits: Sequence[str]) -> dict[str, Any]:
    """Statistics per fidelity.

    Args:
        frames: the frames.
        splits: the split of each frame (same order).

    Returns:
        ``{fidelity: {frames, materials, atoms, frames_by_split, functionals, elements,
        energy_per_atom (eV/atom mean/std/min/max), frames_with_forces, force_rms (eV/Å),
        frames_with_stress, stress_abs_max (eV/Å³)}}``.
    """
    if len(frames) != len(splits):
        raise ValueError(f"{len(frames)} frames but {len(splits)} splits")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, frame in enumerate(frames):
        groups[str(frame.fidelity)].append(index)
    result: dict[str, Any] = {}
    for fidelity, indices in sorted(groups.items()):
        elements: Counter[str] = Counter()
        energies, force_sq, n_force_values, stress_max = [], 0.0, 0, 0.0
        with_forces = with_stress = atoms = 0
        materials = set()
        for i in indices:
            frame = frames[i]
            atoms += frame.num_atoms
            materials.add(frame.info.get("material_id"))
            elements.update(chemical_symbols[z] for z in set(frame.numbers.tolist()))
            if frame.energy is not None:
                energies.append(frame.energy / frame.num_atoms)
            if frame.forces is not None:
                with_forces += 1
                force_sq += float(np.square(frame.forces).sum())
                n_force_values += frame.forces.size
            if frame.stress is not None:
                with_stress += 1
                stress_max = max(stress_max, float(np.abs(frame.stress).max()))
        result[fidelity] = {
            "frames": len(indices),
            "materials": len(materials),
            "atoms": atoms,
            "frames_by_split": dict(sorted(Counter(splits[i] for i in indices).items())),
            "functionals": dict(sorted(Counter(str(frames[i].info.get("functional")) for i in indices).items())),
            "elements": dict(sorted(elements.items())),
            "energy_per_atom": _summary(energies),
            "frames_with_energy": len(energies),
            "frames_with_forces": with_forces,
            "force_rms": float(np.sqrt(force_sq / n_force_values)) if n_force_values else None,
            "frames_with_stress": with_stress,
            "stress_abs_max": stress_max if with_stress else None,
        }
    return result
