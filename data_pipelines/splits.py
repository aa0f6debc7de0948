"""The dataset builder's split: the project's one split rule (``universal_mfp.data.splits``).

Every frame is assigned by its group (material id, else MatPES id, else task id, else geometry) and the
seed, so every frame of a material, and the same geometry at every fidelity, lands in the same split,
adding materials never moves existing ones, and the trainer computes the same split for frames read
straight from extxyz files.
"""

from __future__ import annotations

from collections.abc import Sequence

from universal_mfp.data.splits import SPLITS, split_of_group

__all__ = ["DEFAULT_FRACTIONS", "SPLITS", "assign_split", "validate_fractions"]

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.9, 0.05, 0.05)


def validate_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Check train/val/test fractions: three non-negative numbers summing to 1."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(f < 0 for f in values) or abs(sum(values) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    return values  # type: ignore[return-value]


def assign_split(group: str, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> str:
    """The split (``train``/``val``/``test``) of a group key (``universal_mfp.data.splits.group_key``)."""
    _, val, test = validate_fractions(fractions)
    return split_of_group(group, val_fraction=val, test_fraction=test, seed=seed)
