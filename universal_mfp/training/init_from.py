"""Start a run from a trained checkpoint (``init_from``): its weights, a fresh optimizer and schedule.

This is a second learning-rate cycle on the same network, the way a long run is continued once its first
schedule has ended: the checkpoint must be the same network (elements, fidelities, every architecture
setting) as the one the run's config and data describe, or that network without a part that starts as
nothing (``GROWABLE``), which the run then adds and trains, or a narrower one (``GROWABLE_WIDTHS``: fewer
channels in ``hidden_irreps`` or ``readout_hidden``), whose weights the run copies into its wider network so
that it starts as the same function (``model/widen.py``), or that network without a fixed term the run
switches on (``ADDABLE_TERMS``: the pair repulsion). Its energy scales and neighbour normalisation come
with it, because its weights were trained against exactly those. The element references are the run's own
(its isolated-atom energies and fit): they are data, and a run may correct them; the record lists every
reference that moved, and training re-learns the binding energies of those elements.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import WEIGHTS_FILE, load_checkpoint
from universal_mfp.model.potential import MultiFidelityPotential, build_model
from universal_mfp.model.widen import GROWABLE_WIDTHS, widen, widening_differences

logger = logging.getLogger(__name__)

# fitted from the training data, not chosen: the checkpoint's value is kept
FITTED_SETTINGS = frozenset({"avg_num_neighbors"})
REFERENCE_TOLERANCE_EV = 1e-3
# settings a run may change from its checkpoint, and the module each adds (whose output starts at zero)
GROWABLE = {"angular_lmax": "angular", "angular_channels": "angular"}
# fixed terms without weights a run may switch on (a checkpoint without them gains them; never the reverse):
# the network then trains on with the term in its energy
ADDABLE_TERMS = frozenset({"pair_repulsion", "pair_repulsion_cutoff_factor"})


def start_from_checkpoint(
    fitted: MultiFidelityPotential, checkpoint_dir: str | Path, *, seed: int = 0
) -> tuple[MultiFidelityPotential, dict[str, Any]]:
    """The checkpoint's model, checked against ``fitted`` (the model this run built), and a provenance record.

    The run may grow the checkpoint's network by parts that start as nothing (``GROWABLE``: the angular
    invariants of a checkpoint without them), or widen it (``GROWABLE_WIDTHS``); the new parts are initialised
    with ``seed``. One run does one of the two.

    Raises:
        FileNotFoundError: if ``checkpoint_dir`` does not exist.
        ValueError: if it is not a readable checkpoint, or its network differs from this run's.
    """
    checkpoint_dir = Path(checkpoint_dir)
    saved = load_checkpoint(checkpoint_dir)
    ours = dataclasses.asdict(fitted.config)
    theirs = dataclasses.asdict(saved.config)
    differ = sorted(k for k in ours.keys() | theirs.keys() if k not in FITTED_SETTINGS and ours.get(k) != theirs.get(k))
    adds_repulsion = bool(ours.get("pair_repulsion")) and not theirs.get("pair_repulsion")
    added = [k for k in differ if k in ADDABLE_TERMS] if adds_repulsion else []
    differ = [k for k in differ if k not in added]
    grows = set(differ) <= set(GROWABLE) and theirs.get("angular_lmax") == 0
    widens = bool(differ) and set(differ) <= set(GROWABLE_WIDTHS)
    if widens:
        try:
            widening_differences(saved.config, fitted.config.replace(avg_num_neighbors=saved.config.avg_num_neighbors))
        except ValueError:
            widens = False
    if differ and not (grows or widens):
        details = "; ".join(f"{k}: checkpoint {theirs.get(k)!r}, this run {ours.get(k)!r}" for k in differ)
        raise ValueError(f"init_from {checkpoint_dir}: not the network this run trains ({details})")
    model = build_model(fitted.config.replace(avg_num_neighbors=saved.config.avg_num_neighbors), seed=seed)
    if widens:
        grown = widen(saved.model, model)
        logger.info("init_from %s: widened the network (%s), starting as the same function", checkpoint_dir, grown)
    else:
        missing, unexpected = model.load_state_dict(saved.model.state_dict(), strict=False)
        grown = sorted({name.split(".", 1)[0] for name in missing})
        if unexpected or any(part not in GROWABLE.values() for part in grown):
            raise ValueError(
                f"init_from {checkpoint_dir}: weights do not fit (missing {missing}, unexpected {unexpected})"
            )
        if grown:
            logger.info("init_from %s: grew the network by %s, which starts as nothing", checkpoint_dir, grown)
    if added:
        logger.info("init_from %s: added %s to the checkpoint's network", checkpoint_dir, added)
    model.train()
    fitted_refs = fitted.element_references.detach().to(model.element_references)
    change = (fitted_refs - model.element_references.detach()).double()
    moved: dict[str, dict[str, float]] = {}
    for f, fidelity in enumerate(model.config.fidelities):
        for k, symbol in enumerate(model.config.element_symbols):
            value = float(change[f, k])
            if not math.isfinite(value) or abs(value) > REFERENCE_TOLERANCE_EV:
                moved.setdefault(fidelity, {})[symbol] = round(value, 4)
    if moved:
        logger.warning("init_from %s: element references moved from the checkpoint's (eV): %s", checkpoint_dir, moved)
    model.set_energy_normalization(fitted_refs, model.energy_scale.detach().clone())
    training = saved.metadata.get("training") or {}
    record = {
        "path": str(checkpoint_dir),
        "weights_sha256": sha256_file(checkpoint_dir / WEIGHTS_FILE),
        "settings": training.get("settings"),
        "element_references_moved_ev": moved,
        "grown": grown,
        "added_terms": added,
        "init_from": training.get("init_from"),  # the checkpoint's own start, if it had one
    }
    return model, record
