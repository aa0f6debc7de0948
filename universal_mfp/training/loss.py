"""Multi-fidelity loss: energy per atom, forces and stress, per-fidelity weights, missing labels masked.

Every label a structure lacks contributes nothing: an r2SCAN frame with an energy only adds to the
energy term only. Each term is a weighted sum over labelled items divided by the number of labelled
items in the (global) batch, so that data-parallel ranks reproduce the single-process loss exactly.
Stress enters in GPa so that its weight is comparable to the other terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from universal_mfp.data import keys
from universal_mfp.units import EV_PER_A3_TO_GPA

TERMS = ("energy", "forces", "stress")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms, per fidelity (fidelities absent from a mapping get the default)."""

    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.1
    per_fidelity: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def table(self, fidelities: Sequence[str]) -> torch.Tensor:
        """Weights as a (F, 3) tensor in ``TERMS`` order."""
        rows = []
        for name in fidelities:
            override = self.per_fidelity.get(name, {})
            unknown = set(override) - set(TERMS)
            if unknown:
                raise ValueError(f"unknown loss terms {sorted(unknown)} for fidelity {name}; use {list(TERMS)}")
            rows.append([float(override.get(t, getattr(self, t))) for t in TERMS])
        return torch.tensor(rows, dtype=torch.float64)


HuberDelta = float | Mapping[str, float]


def huber_delta_for(delta: HuberDelta, term: str) -> float:
    """The Huber threshold of one loss term: one number for every term, or a mapping per term.

    The threshold is in the term's unit: eV/atom (energy), eV/Å (force components), GPa (stress components).
    Errors below it are penalised quadratically (``error²/2``), larger ones linearly, so that a few structures
    with very large errors (failed labels, far-from-equilibrium frames) cannot dominate the gradient.

    Raises:
        ValueError: for a mapping that misses a term or names an unknown one, or a threshold that is not positive.
    """
    if isinstance(delta, Mapping):
        unknown = set(delta) - set(TERMS)
        missing = set(TERMS) - set(delta)
        if unknown or missing:
            raise ValueError(
                f"huber_delta per term needs exactly the terms {list(TERMS)}; "
                f"unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        value = float(delta[term])
    else:
        value = float(delta)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"huber_delta for {term} must be positive and finite, got {value}")
    return value


def _penalty(error: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if kind == "mse":
        return error.square()
    if kind == "huber":
        return torch.nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none", delta=delta)
    raise ValueError(f"unknown loss kind {kind!r}; use 'mse' or 'huber'")


def loss_sums(
    prediction: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    weights: torch.Tensor,
    *,
    kind: str = "mse",
    huber_delta: HuberDelta = 0.01,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted sums of the per-item penalties and the number of labelled items, per term.

    ``huber_delta`` (``kind="huber"`` only) is one threshold for every term or one per term
    (``huber_delta_for``).

    Returns:
        ``(sums, counts)`` keyed by term. ``loss = Σ_t sums[t] / max(counts[t], 1)`` (see ``combine``).
    """
    fidelity = batch[keys.FIDELITY]
    w = weights.to(prediction[keys.ENERGY].device)[fidelity]  # [B, 3]
    num_atoms = batch[keys.NUM_ATOMS].to(torch.float64)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, torch.Tensor] = {}

    has_energy = batch[keys.HAS_ENERGY].to(torch.float64)
    error = (prediction[keys.ENERGY] - batch[keys.ENERGY].to(torch.float64)) / num_atoms
    sums["energy"] = (w[:, 0] * has_energy * _penalty(error, kind, huber_delta_for(huber_delta, "energy"))).sum()
    counts["energy"] = has_energy.sum()

    if keys.FORCES in prediction:
        atom_mask = batch[keys.HAS_FORCES][batch[keys.BATCH]].to(torch.float64)
        atom_weight = w[:, 1][batch[keys.BATCH]] * atom_mask
        error = prediction[keys.FORCES].to(torch.float64) - batch[keys.FORCES].to(torch.float64)
        penalty = _penalty(error, kind, huber_delta_for(huber_delta, "forces"))
        sums["forces"] = (atom_weight.unsqueeze(-1) * penalty).sum()
        counts["forces"] = 3.0 * atom_mask.sum()
    if keys.STRESS in prediction:
        has_stress = (batch[keys.HAS_STRESS] & batch[keys.PBC].all(dim=1)).to(torch.float64)
        error = (prediction[keys.STRESS].to(torch.float64) - batch[keys.STRESS].to(torch.float64)) * EV_PER_A3_TO_GPA
        per_structure = _penalty(error, kind, huber_delta_for(huber_delta, "stress")).sum(dim=(1, 2))
        sums["stress"] = (w[:, 2] * has_stress * per_structure).sum()
        counts["stress"] = 9.0 * has_stress.sum()
    return sums, counts


def combine(sums: Mapping[str, torch.Tensor], counts: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Total loss from (possibly all-reduced) sums and counts."""
    total = None
    for term, value in sums.items():
        part = value / counts[term].clamp(min=1.0)
        total = part if total is None else total + part
    if total is None:
        raise ValueError("no loss terms")
    return total
