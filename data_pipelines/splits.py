"""Train/val/test split by material id (never by frame), and stable ids for frames without one.

A material's split is a pure function of its id and the seed (a sha256 of ``"<seed>:<id>"``
mapped to [0, 1)), so every frame of a material, at every fidelity, lands in the same split, and
adding materials never moves existing ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ase.formula import Formula

from universal_mfp.data.frame import Frame

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.9, 0.05, 0.05)
AUTO_ID_PREFIX = "auto-"


def validate_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Check train/val/test fractions: three non-negative numbers summing to 1."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(f < 0 for f in values) or abs(sum(values) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    return values  # type: ignore[return-value]


def assign_split(material_id: str, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> str:
    """The split (``train``/``val``/``test``) of a material id."""
    if not material_id:
        raise ValueError("a material id is required to assign a split")
    train, val, _ = validate_fractions(fractions)
    digest = hashlib.sha256(f"{seed}:{material_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < train:
        return "train"
    return "val" if u < train + val else "test"


def stable_material_id(frame: Frame) -> str:
    """An id for a frame that has no material id, stable across runs and fidelities.

    Frames of one calculation (same ``task_id``) share an id; otherwise the id is derived from the
    reduced formula, so e.g. a dimer's PBE and r2SCAN curves, or all polymorphs of an element
    without ids, stay in one split (conservative: no leakage between splits).
    """
    info: Mapping[str, Any] = frame.info
    if info.get("task_id"):
        key = f"task:{info['task_id']}"
    else:
        reduced, _ = Formula.from_list(frame.symbols).reduce()
        key = f"formula:{reduced.format('metal')}"
    return AUTO_ID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]


def material_id_of(frame: Frame) -> str:
    """The frame's material id, or its stable generated id."""
    value = frame.info.get("material_id")
    return str(value) if value else stable_material_id(frame)
