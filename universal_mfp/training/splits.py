"""Train/validation/test splits by material (never by frame), so no material is on both sides."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from universal_mfp.data.frame import Frame

# info keys that identify the material (or the system) a frame belongs to, in order of preference
GROUP_KEYS = ("material_id", "pair", "matpes_id", "task_id")


def group_key(frame: Frame) -> str:
    """The material a frame belongs to: its material id, else its dimer pair, else its own frame id."""
    for key in GROUP_KEYS:
        value = frame.info.get(key)
        if value:
            return f"{key}:{value}"
    frame_id = frame.info.get("frame_id")
    if not frame_id:
        raise ValueError("a frame without material_id, pair, task_id or frame_id cannot be assigned to a split")
    return f"frame_id:{frame_id}"


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
