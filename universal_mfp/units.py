"""Units and stress conventions, in one place.

Internal units are ASE's: energy eV, length Å, forces eV/Å, stress eV/Å³. Stress follows ASE's sign
convention, ``stress = (1/V) dE/dε``: a compressed crystal has negative stress (positive pressure).
Voigt order is ASE's: xx, yy, zz, yz, xz, xy.
"""

from __future__ import annotations

import numpy as np
from ase import units as _ase_units

EV_PER_A3_TO_GPA: float = 1.0 / _ase_units.GPa
GPA_TO_EV_PER_A3: float = _ase_units.GPa
MEV_PER_EV: float = 1000.0
KBAR_TO_EV_PER_A3: float = 0.1 * _ase_units.GPa

# Voigt index pairs in ASE order.
VOIGT_PAIRS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def full_3x3_to_voigt_6(stress: np.ndarray) -> np.ndarray:
    """Convert stress of shape (..., 3, 3) to Voigt (..., 6) in ASE order (symmetrising first)."""
    stress = np.asarray(stress, dtype=float)
    if stress.shape[-2:] != (3, 3):
        raise ValueError(f"expected a (..., 3, 3) stress, got shape {stress.shape}")
    sym = 0.5 * (stress + np.swapaxes(stress, -1, -2))
    return np.stack([sym[..., i, j] for i, j in VOIGT_PAIRS], axis=-1)


def voigt_6_to_full_3x3(voigt: np.ndarray) -> np.ndarray:
    """Convert Voigt stress (..., 6) in ASE order to a symmetric (..., 3, 3) tensor."""
    voigt = np.asarray(voigt, dtype=float)
    if voigt.shape[-1] != 6:
        raise ValueError(f"expected a (..., 6) Voigt stress, got shape {voigt.shape}")
    full = np.zeros((*voigt.shape[:-1], 3, 3))
    for k, (i, j) in enumerate(VOIGT_PAIRS):
        full[..., i, j] = voigt[..., k]
        full[..., j, i] = voigt[..., k]
    return full


def as_stress_3x3(stress: np.ndarray) -> np.ndarray:
    """Return a 3x3 stress from either a Voigt 6-vector, a flat 9-vector or a 3x3 matrix (eV/Å³)."""
    arr = np.asarray(stress, dtype=float)
    if arr.shape == (6,):
        return voigt_6_to_full_3x3(arr)
    if arr.shape in ((9,), (3, 3)):
        return arr.reshape(3, 3)
    raise ValueError(f"stress must have shape (6,), (9,) or (3, 3), got {arr.shape}")


def pressure_gpa(stress_3x3: np.ndarray) -> float:
    """Pressure in GPa from an ASE-convention stress in eV/Å³ (positive when compressed)."""
    return float(-np.trace(np.asarray(stress_3x3)) / 3.0 * EV_PER_A3_TO_GPA)
