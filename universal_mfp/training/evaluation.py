"""Per-fidelity errors of a model on a dataset (energy per atom, forces, stress)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from universal_mfp.data import keys
from universal_mfp.data.batching import batch_to
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.training.distributed import DistributedContext, all_reduce_sum
from universal_mfp.training.loss import TERMS, HuberDelta, combine, loss_sums
from universal_mfp.units import EV_PER_A3_TO_GPA, MEV_PER_EV

# accumulated per fidelity: [abs sum, square sum, count] for energy (meV/atom), forces (meV/Å), stress (GPa)
_QUANTITIES = ("energy", "forces", "stress")


@dataclass(frozen=True)
class Evaluation:
    """Per-fidelity errors and, when loss weights were given, the loss over the whole set."""

    errors: dict[str, dict[str, float]]
    loss: float | None = None


def error_metrics(errors: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Only the MAE/RMSE entries of ``errors`` (drops the label counts), for model cards."""
    return {
        fidelity: {k: v for k, v in values.items() if k.endswith(("_mae", "_rmse"))}
        for fidelity, values in errors.items()
        if any(k.endswith(("_mae", "_rmse")) for k in values)
    }


def evaluate_errors(
    model: MultiFidelityPotential,
    dataset: GraphDataset,
    *,
    indices: Sequence[int] | None = None,
    batch_size: int = 32,
    context: DistributedContext | None = None,
    loss_weights: torch.Tensor | None = None,
    loss_kind: str = "mse",
    huber_delta: HuberDelta = 0.01,
) -> Evaluation:
    """MAE and RMSE per fidelity: ``{fidelity: {"energy_mae": meV/atom, "forces_mae": meV/Å, "stress_mae": GPa, ...}}``.

    Only labelled items count; each fidelity also reports how many structures had each label
    (``n_energy``, ``n_forces``, ``n_stress``). Under data parallelism every rank evaluates a share and
    the sums are all-reduced. With ``loss_weights`` (F, 3) the training loss over the set is computed too.
    """
    context = context or DistributedContext()
    order = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    order = order[context.rank :: context.world_size]
    num_fidelities = len(model.fidelities)
    sums = torch.zeros(num_fidelities, len(_QUANTITIES), 3, dtype=torch.float64)
    structures = torch.zeros(num_fidelities, len(_QUANTITIES), dtype=torch.float64)
    loss_parts = torch.zeros(2, len(TERMS), dtype=torch.float64)  # sums, counts
    device = model.device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            batch = batch_to(dataset.collate(order[start : start + batch_size]), device)
            out = model(
                batch, compute_forces=True, compute_stress=bool(batch[keys.HAS_STRESS].any()), create_graph=False
            )
            if loss_weights is not None:
                term_sums, term_counts = loss_sums(out, batch, loss_weights, kind=loss_kind, huber_delta=huber_delta)
                for t, term in enumerate(TERMS):
                    if term in term_sums:
                        loss_parts[0, t] += term_sums[term].detach().cpu()
                        loss_parts[1, t] += term_counts[term].detach().cpu()
            fid = batch[keys.FIDELITY].cpu()
            e_err = ((out[keys.ENERGY].detach() - batch[keys.ENERGY]) / batch[keys.NUM_ATOMS]).cpu() * MEV_PER_EV
            has_e = batch[keys.HAS_ENERGY].cpu()
            f_err = (out[keys.FORCES].detach().double() - batch[keys.FORCES]).cpu() * MEV_PER_EV
            atom_fid = fid[batch[keys.BATCH].cpu()]
            atom_has_f = batch[keys.HAS_FORCES].cpu()[batch[keys.BATCH].cpu()]
            has_s = (batch[keys.HAS_STRESS] & batch[keys.PBC].all(dim=1)).cpu()
            for f in range(num_fidelities):
                sel = has_e & (fid == f)
                err = e_err[sel]
                sums[f, 0] += torch.stack([err.abs().sum(), err.square().sum(), torch.tensor(float(err.numel()))])
                structures[f, 0] += float(sel.sum())
                sel_atoms = atom_has_f & (atom_fid == f)
                err = f_err[sel_atoms]
                sums[f, 1] += torch.stack([err.abs().sum(), err.square().sum(), torch.tensor(float(err.numel()))])
                structures[f, 1] += float((batch[keys.HAS_FORCES].cpu() & (fid == f)).sum())
                if keys.STRESS in out:
                    sel = has_s & (fid == f)
                    err = (out[keys.STRESS].detach().double() - batch[keys.STRESS]).cpu()[sel] * EV_PER_A3_TO_GPA
                    sums[f, 2] += torch.stack([err.abs().sum(), err.square().sum(), torch.tensor(float(err.numel()))])
                    structures[f, 2] += float(sel.sum())
    finally:
        model.train(was_training)
    all_reduce_sum(sums, context)
    all_reduce_sum(structures, context)
    all_reduce_sum(loss_parts, context)
    report: dict[str, dict[str, float]] = {}
    for f, name in enumerate(model.fidelities):
        entry: dict[str, float] = {}
        for q, quantity in enumerate(_QUANTITIES):
            count = float(sums[f, q, 2])
            entry[f"n_{quantity}"] = int(structures[f, q])
            if count > 0:
                entry[f"{quantity}_mae"] = float(sums[f, q, 0]) / count
                entry[f"{quantity}_rmse"] = float(np.sqrt(float(sums[f, q, 1]) / count))
        report[name] = entry
    loss = None
    if loss_weights is not None:
        present = [t for t in range(len(TERMS)) if loss_parts[1, t] > 0]
        loss = (
            float(combine({TERMS[t]: loss_parts[0, t] for t in present}, {TERMS[t]: loss_parts[1, t] for t in present}))
            if present
            else 0.0
        )
    return Evaluation(errors=report, loss=loss)
