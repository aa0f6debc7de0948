"""Train/validation/test splits by material (never by frame), so no material is on both sides.

A frame's group is its material id, else its calculation (task) id, else its geometry: frames without
ids (e.g. points of a dimer curve) are grouped by structure, so the same geometry computed at two
fidelities always lands in the same split, while different points of one curve may be split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from universal_mfp.data.frame import Frame
from universal_mfp.training.pairs import geometry_key

# info keys that identify the material a frame belongs to, in order of preference
GROUP_KEYS = ("material_id", "matpes_id", "task_id")


def group_key(frame: Frame) -> str:
    """The group a frame is split with: its material id, else its task id, else its geometry."""
    for key in GROUP_KEYS:
        value = frame.info.get(key)
        if value:
            return f"{key}:{value}"
    digest = hashlib.sha256(repr(geometry_key(frame)).encode()).hexdigest()[:16]
    return f"geometry:{digest}"


def _unit_interval(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_group(
    frames: Sequence[Frame], *, val_fraction: float, test_fraction: float, seed: int = 0
) -> dict[str, list[int]]:
    """Indices of ``train``, ``val`` and ``test`` frames, assigned per group by a seeded hash.

    The assignment of a group depends only on its key and the seed, not on the other frames, so
    adding data never moves an existing material between splits.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"invalid split fractions val={val_fraction}, test={test_fraction}")
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for index, frame in enumerate(frames):
        u = _unit_interval(group_key(frame), seed)
        if u < test_fraction:
            splits["test"].append(index)
        elif u < test_fraction + val_fraction:
            splits["val"].append(index)
        else:
            splits["train"].append(index)
    return splits
