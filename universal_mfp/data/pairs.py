"""Pair frames of two fidelities computed at the same geometry (for delta learning)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from universal_mfp.data.frame import Frame


def geometry_key(frame: Frame, decimals: int = 4) -> tuple:
    """A hashable key equal for frames with the same atoms, positions, cell and periodicity."""
    return (
        tuple(frame.numbers.tolist()),
        tuple(np.round(frame.positions, decimals).ravel().tolist()),
        tuple(np.round(frame.cell, decimals).ravel().tolist()),
        tuple(frame.pbc.tolist()),
    )


def pair_by_geometry(low: Sequence[Frame], high: Sequence[Frame]) -> list[tuple[int, int]]:
    """Index pairs ``(i_low, i_high)`` of frames with identical geometry (first match of each)."""
    by_key: dict[tuple, int] = {}
    for i, frame in enumerate(low):
        by_key.setdefault(geometry_key(frame), i)
    return [(by_key[key], j) for j, frame in enumerate(high) if (key := geometry_key(frame)) in by_key]


def difference_frame(low: Frame, high: Frame, fidelity: str) -> Frame:
    """A frame labelled with ``high - low`` for every label both carry (the target of a delta model)."""
    return high.replace(
        fidelity=fidelity,
        energy=None if low.energy is None or high.energy is None else high.energy - low.energy,
        forces=None if low.forces is None or high.forces is None else high.forces - low.forces,
        stress=None if low.stress is None or high.stress is None else high.stress - low.stress,
    )
