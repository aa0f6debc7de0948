"""Start a run from a trained checkpoint (``init_from``): its weights, a fresh optimizer and schedule.

This is a second learning-rate cycle on the same network, the way a long run is continued once its first
schedule has ended: the checkpoint must be the same network (elements, fidelities, every architecture
setting) as the one the run's config and data describe. Its normalisation (element references, energy
scales, neighbour count) comes with it, because its weights were trained against exactly those; where the
run's own data would have fitted other element references, the record says by how much.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch

from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import WEIGHTS_FILE, load_checkpoint
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)

# fitted from the training data, not chosen: the checkpoint's value is kept
FITTED_SETTINGS = frozenset({"avg_num_neighbors"})


def start_from_checkpoint(
    fitted: MultiFidelityPotential, checkpoint_dir: str | Path
) -> tuple[MultiFidelityPotential, dict[str, Any]]:
    """The checkpoint's model, checked against ``fitted`` (the model this run built), and a provenance record.

    Raises:
        FileNotFoundError: if ``checkpoint_dir`` does not exist.
        ValueError: if it is not a readable checkpoint, or its network differs from this run's.
    """
    checkpoint_dir = Path(checkpoint_dir)
    saved = load_checkpoint(checkpoint_dir)
    ours = dataclasses.asdict(fitted.config)
    theirs = dataclasses.asdict(saved.config)
    differ = sorted(k for k in ours.keys() | theirs.keys() if k not in FITTED_SETTINGS and ours.get(k) != theirs.get(k))
    if differ:
        details = "; ".join(f"{k}: checkpoint {theirs.get(k)!r}, this run {ours.get(k)!r}" for k in differ)
        raise ValueError(f"init_from {checkpoint_dir}: not the network this run trains ({details})")
    model = saved.model
    model.train()
    ours_refs = fitted.element_references.detach().double()
    theirs_refs = model.element_references.detach().double()
    both = torch.isfinite(ours_refs) & torch.isfinite(theirs_refs)
    moved = float((ours_refs - theirs_refs)[both].abs().max()) if bool(both.any()) else 0.0
    if moved > 1e-6:
        logger.warning(
            "init_from %s: this run's data fits element references up to %.4g eV from the checkpoint's; "
            "training keeps the checkpoint's",
            checkpoint_dir,
            moved,
        )
    training = saved.metadata.get("training") or {}
    record = {
        "path": str(checkpoint_dir),
        "weights_sha256": sha256_file(checkpoint_dir / WEIGHTS_FILE),
        "settings": training.get("settings"),
        "element_references_max_change_ev": round(moved, 6) if math.isfinite(moved) else None,
        "init_from": training.get("init_from"),  # the checkpoint's own start, if it had one
    }
    return model, record
