"""Cross-fidelity prior: a loss term that ties a label-poor fidelity to a label-rich one on the latter's frames.

For every training structure of the ``source`` fidelity (e.g. ``pbe``, with thousands of compounds) the
model's energy at the ``target`` fidelity (e.g. ``r2scan``, with elemental crystals and dimers only) is
pulled towards its own source-fidelity energy plus the composition-linear shift ``Δ(c)`` fitted on MP's
paired GGA/r2SCAN energies (``training.composition_shift``):

    prior = weight · ((E_target − stopgrad(E_source)) / N − Δ(c))²

averaged over those structures. The node features are taken without gradient for this term
(``MultiFidelityPotential.energy_with_frozen_features``), so it moves only the readout (with
``fidelity_conditioning: heads``, only the target's own head) and never the source prediction, which has
its own labels; real target labels still decide wherever they exist. Structures with an element the shift
does not cover are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ase.data import chemical_symbols

from universal_mfp.data import keys
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.mp_conventions import electronegativity
from universal_mfp.training.composition_shift import CompositionShift

PRIOR_TERM = "fidelity_prior"


@dataclass(frozen=True)
class FidelityPriorSpec:
    """``training.fidelity_prior`` of a run config: which fidelities, where the shift comes from, the weight.

    The shift ``Δ(c)`` comes from one of:

    - ``table``: MP's paired GGA/r2SCAN energies, fitted composition-linearly (``composition_shift``);
      ``exclude`` lists material ids left out of the fit (e.g. those used to evaluate the target fidelity);
      ``target_element_energies`` is an extxyz of the target fidelity's elemental ground states (one per
      element, ``info["element"]``) that puts the shift on that fidelity's own energy scale;
    - ``element_offsets``: a JSON of measured per-element offsets (``umfp data offsets``: a teacher fidelity
      against the real setup it imitates); elements it has no offset for take its ``default_offset`` when it
      gives one, else structures with them are left out;
    - ``shift_from_references``: ``Δ`` per element is the difference of the model's element references,
      ``ref_target − ref_source``, so the prior ties binding energies (energy minus the references) and always
      agrees with however the references were set (measured offsets, cohesive matches, defaults);
    - none: ``Δ = 0`` for every element (two fidelities on the same energy scale, e.g. a teacher of MP's
      raw GGA(+U) and the real ``pbe``).
    """

    table: Path | None = None
    element_offsets: Path | None = None
    source: str = "pbe"
    target: str = "r2scan"
    weight: float = 1.0
    exclude: tuple[str, ...] = ()
    target_element_energies: Path | None = None
    shift_from_references: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"fidelity_prior.weight must be positive, got {self.weight}")
        if self.source == self.target:
            raise ValueError(f"fidelity_prior: source and target are both {self.source!r}")
        given = [self.table is not None, self.element_offsets is not None, self.shift_from_references]
        if sum(given) > 1:
            raise ValueError("fidelity_prior: give one of 'table', 'element_offsets' and 'shift_from_references'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for a checkpoint's training record: file names, not the paths of this machine."""
        return {
            "table": None if self.table is None else self.table.name,
            "element_offsets": None if self.element_offsets is None else self.element_offsets.name,
            "source": self.source,
            "target": self.target,
            "weight": self.weight,
            "exclude": list(self.exclude),
            "target_element_energies": None
            if self.target_element_energies is None
            else self.target_element_energies.name,
            "shift_from_references": self.shift_from_references,
        }


class FidelityPrior:
    """The prior term for one model: the shift as per-species tensors and the two fidelity indices."""

    def __init__(self, model: MultiFidelityPotential, shift: CompositionShift, weight: float) -> None:
        for name in (shift.source, shift.target):
            if name not in model.fidelities:
                raise ValueError(f"fidelity_prior: the model has no fidelity {name!r}; it has {list(model.fidelities)}")
        self.source = model.fidelities.index(shift.source)
        self.target = model.fidelities.index(shift.target)
        self.weight = float(weight)
        symbols = model.config.element_symbols
        device = model.device
        self.element_shift = torch.tensor([shift.element_shift.get(s, 0.0) for s in symbols], dtype=torch.float64)
        self.covered = torch.tensor([s in shift.element_shift for s in symbols])
        self.hubbard_shift = torch.tensor([shift.hubbard_shift.get(s, 0.0) for s in symbols], dtype=torch.float64)
        self.electronegativity = torch.tensor([electronegativity(s) for s in symbols], dtype=torch.float64)
        # hubbard[a, s]: species s gets its GGA+U term when a is the structure's most electronegative species
        hubbard = torch.zeros(len(symbols), len(symbols), dtype=torch.bool)
        for a, anion in enumerate(symbols):
            for s, metal in enumerate(symbols):
                hubbard[a, s] = metal in shift.hubbard_settings.get(anion, ())
        self.hubbard = hubbard
        self.to(device)

    def to(self, device: torch.device) -> FidelityPrior:
        """Move the tables to ``device``."""
        for name in ("element_shift", "covered", "hubbard_shift", "electronegativity", "hubbard"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def shifts(
        self, species: torch.Tensor, batch_index: torch.Tensor, num_structures: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Δ`` per atom [B] (eV/atom) of each structure, and whether the shift covers all its elements [B]."""
        counts = torch.zeros(num_structures, dtype=torch.float64, device=species.device)
        counts = counts.index_add(0, batch_index, torch.ones_like(batch_index, dtype=torch.float64))
        electronegativity = self.electronegativity[species]
        top = torch.full((num_structures,), -math.inf, dtype=torch.float64, device=species.device)
        top = top.scatter_reduce(0, batch_index, electronegativity, reduce="amax")
        # the most electronegative species of each structure (ties share one electronegativity, so one element)
        is_top = electronegativity == top[batch_index]
        anion = torch.zeros(num_structures, dtype=torch.long, device=species.device)
        anion = anion.scatter_reduce(0, batch_index[is_top], species[is_top], reduce="amax", include_self=False)
        uses_u = torch.zeros(num_structures, dtype=torch.float64, device=species.device)
        uses_u = uses_u.index_add(0, batch_index, self.hubbard[anion[batch_index], species].to(torch.float64)) > 0
        per_atom = self.element_shift[species] + uses_u[batch_index].to(torch.float64) * self.hubbard_shift[species]
        total = torch.zeros(num_structures, dtype=torch.float64, device=species.device).index_add(
            0, batch_index, per_atom
        )
        uncovered = torch.zeros(num_structures, dtype=torch.float64, device=species.device)
        uncovered = uncovered.index_add(0, batch_index, (~self.covered[species]).to(torch.float64))
        return total / counts.clamp(min=1.0), uncovered == 0

    def loss_sum(
        self,
        model: MultiFidelityPotential,
        batch: Mapping[str, torch.Tensor],
        source_energy: torch.Tensor,
        features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted sum of the prior penalties over the batch's source-fidelity structures, and their count.

        ``features``: the batch's final node features from the same forward pass (saves a message pass).
        """
        species = model.species(batch[keys.ATOMIC_NUMBERS])
        num_structures = batch[keys.FIDELITY].shape[0]
        shift, covered = self.shifts(species, batch[keys.BATCH], num_structures)
        mask = (batch[keys.FIDELITY] == self.source) & covered
        if not bool(mask.any()):
            zero = source_energy.new_zeros(())
            return zero, zero
        target_energy = model.energy_with_frozen_features(dict(batch), self.target, features)
        num_atoms = batch[keys.NUM_ATOMS].to(torch.float64)
        error = (target_energy - source_energy.detach().to(torch.float64)) / num_atoms - shift
        return self.weight * (mask * error.square()).sum(), mask.to(torch.float64).sum()


class FidelityPriors:
    """Several priors as one loss term: their penalties and counts add up."""

    def __init__(self, priors: Sequence[FidelityPrior]) -> None:
        if not priors:
            raise ValueError("FidelityPriors needs at least one prior")
        self.priors = tuple(priors)

    def to(self, device: torch.device) -> FidelityPriors:
        """Move every prior's tables to ``device``."""
        for prior in self.priors:
            prior.to(device)
        return self

    def loss_sum(
        self,
        model: MultiFidelityPotential,
        batch: Mapping[str, torch.Tensor],
        source_energy: torch.Tensor,
        features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed penalties of every prior over the batch, and the summed counts of the structures they cover."""
        total, count = self.priors[0].loss_sum(model, batch, source_energy, features)
        for prior in self.priors[1:]:
            more, more_count = prior.loss_sum(model, batch, source_energy, features)
            total, count = total + more, count + more_count
        return total, count


def references_shift(model: MultiFidelityPotential, *, source: str, target: str) -> CompositionShift:
    """``Δ`` per element = the model's ``ref_target − ref_source`` (eV/atom), for every element of the model.

    Raises:
        ValueError: if the model lacks one of the two fidelities.
    """
    for name in (source, target):
        if name not in model.fidelities:
            raise ValueError(f"fidelity_prior: the model has no fidelity {name!r}; it has {list(model.fidelities)}")
    references = model.element_references.detach().to(torch.float64).cpu()
    difference = references[model.fidelities.index(target)] - references[model.fidelities.index(source)]
    symbols = model.config.element_symbols
    element_shift = {s: float(d) for s, d in zip(symbols, difference.tolist(), strict=True)}
    return CompositionShift(source, target, element_shift, fit={"from_references": 1.0})


def build_fidelity_prior(
    spec: FidelityPriorSpec, model: MultiFidelityPotential
) -> tuple[FidelityPrior, CompositionShift]:
    """Fit the shift the spec describes and make the prior term for ``model``.

    Raises:
        FileNotFoundError: if the table or the elemental-energy file is missing.
        ValueError: if the model lacks one of the two fidelities, or the files hold no usable data.
    """
    from universal_mfp.data.readers import read_frames
    from universal_mfp.training.composition_shift import (
        element_offsets_shift,
        fit_composition_shift,
        read_mp_gga_r2scan_pairs,
    )
    from universal_mfp.training.isolated_atoms import lowest_bulk_energies

    if spec.table is None:
        symbols = model.config.element_symbols
        if spec.shift_from_references:
            shift = references_shift(model, source=spec.source, target=spec.target)
        elif spec.element_offsets is None:
            shift = CompositionShift(spec.source, spec.target, {s: 0.0 for s in symbols}, fit={"zero_shift": 1.0})
        else:
            shift = element_offsets_shift(spec.element_offsets, symbols, source=spec.source, target=spec.target)
        return FidelityPrior(model, shift, spec.weight), shift
    element_energies = None
    if spec.target_element_energies is not None:
        if not spec.target_element_energies.exists():
            raise FileNotFoundError(f"no target elemental energies at {spec.target_element_energies}")
        bulk = lowest_bulk_energies(read_frames(spec.target_element_energies))
        element_energies = {chemical_symbols[z]: energy for z, energy in bulk.items()}
    pairs = read_mp_gga_r2scan_pairs(spec.table, exclude=spec.exclude)
    shift = fit_composition_shift(
        pairs, source=spec.source, target=spec.target, target_element_energies=element_energies
    )
    return FidelityPrior(model, shift, spec.weight), shift
