"""Give a trained checkpoint the fixed ZBL pair repulsion, where its training data has no atoms.

The repulsion (``model/repulsion.py``) has no weights. When its cutoff, a multiple of each pair's covalent sum,
lies below the closest pair of every frame the model was trained, validated and tested on, it changes none of
the model's predictions on those data: the fit, the validation errors and every fitted reference stay exactly
what training made them, and the energy gains a wall only where the network was never told anything. Two atoms
of a hot crystal that pass the network's learned barrier then meet that wall instead of a hole behind it.

The check is on the data itself, not on an assumption: ``closest_pair_ratio`` scans every frame, and
``add_pair_repulsion`` refuses a cutoff that reaches a frame's closest pair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import covalent_radii

from universal_mfp.data.frame import Frame
from universal_mfp.data.neighbors import neighbor_list
from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint
from universal_mfp.model.potential import build_model

logger = logging.getLogger(__name__)

# the scan looks for pairs closer than this multiple of their covalent sum (any cutoff worth adding is below it)
SCAN_FACTOR = 1.0


def closest_pair_ratio(frames: Sequence[Frame]) -> tuple[float, str]:
    """The smallest distance over covalent-radius sum of any pair in ``frames``, and the id of its frame.

    Pairs further apart than their covalent sum are not looked at: a frame with none returns ``inf``.

    Raises:
        ValueError: if ``frames`` is empty.
    """
    if not frames:
        raise ValueError("no frames to scan for close pairs")
    radii = np.asarray(covalent_radii)
    best, where = float("inf"), ""
    for index, frame in enumerate(frames):
        if len(frame.numbers) < 2 and not np.asarray(frame.pbc).any():
            continue
        cutoff = SCAN_FACTOR * 2.0 * float(radii[frame.numbers].max())
        i, j, shifts = neighbor_list(frame.positions, frame.cell, frame.pbc, cutoff)
        if not len(i):
            continue
        vectors = frame.positions[j] - frame.positions[i] + shifts @ frame.cell
        ratios = np.linalg.norm(vectors, axis=1) / (radii[frame.numbers[i]] + radii[frame.numbers[j]])
        lowest = float(ratios.min())
        if lowest < best:
            best, where = lowest, str(frame.info.get("frame_id", index))
    return best, where


def add_pair_repulsion(
    checkpoint_dir: str | Path,
    output_dir: str | Path,
    frames: Sequence[Frame],
    cutoff_factor: float,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``checkpoint_dir``'s model with the pair repulsion (cutoff ``cutoff_factor`` covalent sums) added.

    ``frames`` are the data the model was trained and judged on (its run's sources). The new checkpoint keeps
    the weights, references, training record and metrics of the old one (its predictions on those frames are
    the same), and records the change under ``training["pair_repulsion_added"]``, which is also returned.

    Raises:
        ValueError: if the checkpoint already has the repulsion, or a pair of ``frames`` is within the cutoff.
    """
    checkpoint_dir = Path(checkpoint_dir)
    saved = load_checkpoint(checkpoint_dir)
    if saved.config.pair_repulsion:
        raise ValueError(f"{checkpoint_dir} already has a pair repulsion")
    ratio, frame_id = closest_pair_ratio(frames)
    if ratio <= cutoff_factor:
        raise ValueError(
            f"frame {frame_id} has a pair at {ratio:.3f} times its covalent sum, within the cutoff "
            f"{cutoff_factor}: the repulsion would change what the model learned there; choose a factor below it"
        )
    model = build_model(saved.config.replace(pair_repulsion=True, pair_repulsion_cutoff_factor=float(cutoff_factor)))
    model.load_state_dict(saved.model.state_dict())
    record = {
        "checkpoint": str(checkpoint_dir),
        "weights_sha256": sha256_file(checkpoint_dir / WEIGHTS_FILE),
        "cutoff_factor": float(cutoff_factor),
        "frames_scanned": len(frames),
        "closest_pair_ratio": round(ratio, 4),
        "closest_pair_frame": frame_id,
    }
    training = dict(saved.metadata.get("training") or {})
    training["pair_repulsion_added"] = record
    save_checkpoint(
        model, output_dir, training=training, metrics=saved.metadata.get("metrics") or {}, overwrite=overwrite
    )
    logger.info("added the pair repulsion (%.2f covalent sums) to %s in %s", cutoff_factor, checkpoint_dir, output_dir)
    return record


__all__ = ["add_pair_repulsion", "closest_pair_ratio"]
