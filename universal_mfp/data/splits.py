"""Train/validation/test splits by material (never by frame), so no material is on both sides.

A frame's group is its composition group (teacher-labelled generated crystals: every frame derived from
one composition, at every fidelity), else its material id, else its MatPES id, else its calculation (task) id, else its
geometry: frames without ids (e.g. points of a dimer curve) are grouped by structure, so the same
geometry computed at two fidelities always lands in the same split, while different points of one
curve may be split.

This is the one split rule of the project: the dataset builder (``universal_mfp_pipelines``) writes it into the
shards' ``split`` column, and the trainer keeps a frame's assigned split, or computes the same rule for
frames that have none.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from universal_mfp.data.frame import Frame
from universal_mfp.data.pairs import geometry_key

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")

# info keys that identify the material a frame belongs to, in order of preference
GROUP_KEYS = ("composition_group", "material_id", "matpes_id", "task_id")


def group_key(frame: Frame) -> str:
    """The group a frame is split with: the first of ``GROUP_KEYS`` it has, else its geometry."""
    for key in GROUP_KEYS:
        value = frame.info.get(key)
        if value:
            return f"{key}:{value}"
    digest = hashlib.sha256(repr(geometry_key(frame)).encode()).hexdigest()[:16]
    return f"geometry:{digest}"


def _unit_interval(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Validation and test fractions: each in [0, 1), together below 1."""
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"invalid split fractions val={val_fraction}, test={test_fraction}")


def split_of_group(key: str, *, val_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """The split of a group key: ``test`` below ``test_fraction`` of a seeded hash, then ``val``, then ``train``.

    The result depends only on the key and the seed, not on the other frames, so adding data never moves an
    existing material between splits.
    """
    check_fractions(val_fraction, test_fraction)
    u = _unit_interval(key, seed)
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def split_of(frame: Frame, *, val_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """The split of a frame's group (``group_key``), see ``split_of_group``."""
    return split_of_group(group_key(frame), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)


def split_by_group(
    frames: Sequence[Frame],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
    use_assigned: bool = True,
) -> dict[str, list[int]]:
    """Indices of ``train``, ``val`` and ``test`` frames.

    With ``use_assigned``, a frame whose ``info["split"]`` is already one of ``SPLITS`` (a dataset shard)
    keeps it; every other frame gets ``split_of``.
    """
    check_fractions(val_fraction, test_fraction)
    splits: dict[str, list[int]] = {name: [] for name in SPLITS}
    assigned = 0
    for index, frame in enumerate(frames):
        given = frame.info.get("split") if use_assigned else None
        if given in SPLITS:
            assigned += 1
            splits[str(given)].append(index)
        else:
            splits[split_of(frame, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)].append(index)
    if assigned:
        logger.info("%d of %d frames keep the split assigned in their dataset", assigned, len(frames))
    return splits
