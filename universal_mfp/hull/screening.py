"""Model-driven stability screening: evaluate candidates and references with one model at one fidelity.

Every competing phase (candidates and references) gets its energy from the same model at the same
fidelity (``predict_structures``), optionally after relaxing it with that model, so the hull is
self-consistent. The hull itself is ``phase_diagram.energies_above_hull``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from universal_mfp.data.frame import Frame
from universal_mfp.data.structure_files import ID_KEY, with_ids
from universal_mfp.hull.phase_diagram import ConvexHulls, HullPoint, PhaseEnergy, check_elemental_references
from universal_mfp.hull.references import bundled_elemental_references
from universal_mfp.hull.relax import RelaxationResult, RelaxOptions, relax_structures
from universal_mfp.inference import predict_structures, resolve_fidelity
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluatedStructure:
    """A structure after optional relaxation, with the model's total energy (eV) at one fidelity."""

    id: str
    frame: Frame
    energy: float
    relaxation: RelaxationResult | None = None

    @property
    def phase(self) -> PhaseEnergy:
        """The structure as a phase for the hull."""
        return PhaseEnergy(self.id, self.frame.formula, self.energy)


@dataclass(frozen=True)
class ScreeningRow:
    """One candidate's result (energies in eV/atom)."""

    id: str
    formula: str
    chemsys: str
    num_atoms: int
    fidelity: str
    energy_per_atom: float
    formation_energy_per_atom: float
    e_above_hull: float
    stable: bool
    relaxation_status: str
    relax_steps: int | None = None
    relax_fmax: float | None = None
    formation_energy_per_atom_mp2020: float | None = None
    e_above_hull_mp2020: float | None = None


@dataclass
class ScreeningResult:
    """Rows per candidate, the evaluated phases, and the hulls they were placed on."""

    fidelity: str
    rows: list[ScreeningRow]
    candidates: list[EvaluatedStructure]
    references: list[EvaluatedStructure]
    hulls: ConvexHulls
    mp2020_hulls: ConvexHulls | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def e_above_hull(self) -> dict[str, float]:
        """Candidate id -> predicted energy above hull, eV/atom."""
        return {row.id: row.e_above_hull for row in self.rows}


def evaluate_structures(
    model: MultiFidelityPotential,
    frames: Sequence[Frame],
    *,
    fidelity: str,
    relax: RelaxOptions | None = None,
    max_atoms_per_batch: int = 4096,
    progress: bool = False,
) -> list[EvaluatedStructure]:
    """Optionally relax, then compute every structure's energy with ``predict_structures`` at ``fidelity``.

    Energies always come from ``predict_structures`` on the final structures (batched), whether or not
    they were relaxed, so candidates and references share one code path.
    """
    relaxations: list[RelaxationResult | None] = [None] * len(frames)
    finals = list(frames)
    if relax is not None and frames:
        relaxations = list(relax_structures(model, frames, fidelity=fidelity, options=relax, progress=progress))
        finals = [r.frame.replace(info=f.info) for r, f in zip(relaxations, frames, strict=True)]
    predictions = predict_structures(
        model,
        finals,
        fidelity=fidelity,
        compute_forces=False,
        compute_stress=False,
        max_atoms_per_batch=max_atoms_per_batch,
        progress=progress,
    )
    return [
        EvaluatedStructure(id=str(frame.info[ID_KEY]), frame=frame, energy=p.energy, relaxation=r)
        for frame, p, r in zip(finals, predictions, relaxations, strict=True)
    ]


def _needed(references: Sequence[Frame], systems: set[frozenset[str]]) -> list[Frame]:
    """References whose elements fit in at least one candidate chemical system."""
    return [f for f in references if any(frozenset(f.symbols) <= s for s in systems)]


def _row(point: HullPoint, evaluated: EvaluatedStructure, fidelity: str, corrected: HullPoint | None) -> ScreeningRow:
    relaxation = evaluated.relaxation
    return ScreeningRow(
        id=point.id,
        formula=point.formula,
        chemsys=point.chemsys,
        num_atoms=evaluated.frame.num_atoms,
        fidelity=fidelity,
        energy_per_atom=point.energy_per_atom,
        formation_energy_per_atom=point.formation_energy_per_atom,
        e_above_hull=point.e_above_hull,
        stable=point.stable,
        relaxation_status="unrelaxed" if relaxation is None else relaxation.status,
        relax_steps=None if relaxation is None else relaxation.steps,
        relax_fmax=None if relaxation is None else relaxation.fmax,
        formation_energy_per_atom_mp2020=None if corrected is None else corrected.formation_energy_per_atom,
        e_above_hull_mp2020=None if corrected is None else corrected.e_above_hull,
    )


def _mp2020_hulls(
    candidates: Sequence[EvaluatedStructure], references: Sequence[EvaluatedStructure], fidelity: str, compete: bool
) -> tuple[ConvexHulls, list[PhaseEnergy]]:
    from universal_mfp.mp_conventions import mp2020_corrected_energies

    everything = list(candidates) + list(references)
    energies = mp2020_corrected_energies(
        [e.frame for e in everything], [e.energy for e in everything], fidelity=fidelity
    )
    phases = [PhaseEnergy(e.id, e.phase.composition, x) for e, x in zip(everything, energies, strict=True)]
    usable = [p for p in phases if not math.isnan(p.energy)]
    pool = usable if compete else usable[len(candidates) :]
    return ConvexHulls(pool), phases[: len(candidates)]


def screen_structures(
    model: MultiFidelityPotential,
    candidates: Iterable[Any],
    *,
    fidelity: str | None,
    references: Iterable[Any] = (),
    use_bundled_references: bool = True,
    relax: RelaxOptions | None = None,
    candidates_compete: bool = True,
    mp2020: bool = False,
    max_atoms_per_batch: int = 4096,
    progress: bool = False,
) -> ScreeningResult:
    """Energies above hull of candidates, from the model's own energies for every competing phase.

    Args:
        model: the potential.
        candidates: structures to screen (ASE ``Atoms``, pymatgen ``Structure``, ``Frame``); ids come from
            ``info["id"]`` or default to ``candidate:<index>``.
        fidelity: fidelity for every energy (required for a multi-fidelity model).
        references: further competing phases as structures (user sets, ``materials_project_references``).
        use_bundled_references: add the bundled elemental ground states for every element of the candidates.
        relax: relax candidates and references with these options before evaluating (``None``: no relaxation).
        candidates_compete: include candidates in the hull (see ``energies_above_hull``).
        mp2020: also report MP2020-corrected formation energies and energies above hull (``pbe`` only),
            in separate ``*_mp2020`` columns.
        max_atoms_per_batch: batch size for ``predict_structures``.
        progress: show progress bars.

    Raises:
        ValueError: for elements without any elemental reference (named), an unknown fidelity, elements the
            model lacks, or ``mp2020`` at a fidelity other than ``pbe``.
    """
    fidelity_name = resolve_fidelity(model, fidelity)
    if mp2020 and fidelity_name != "pbe":
        raise ValueError(f"MP2020 corrections apply to the 'pbe' fidelity only, not {fidelity_name!r}")
    candidate_frames = with_ids(candidates, "candidate")
    if not candidate_frames:
        raise ValueError("no candidate structures to screen")
    systems = {frozenset(f.symbols) for f in candidate_frames}
    elements = sorted(set().union(*systems))
    reference_frames = with_ids(references, "ref")
    if use_bundled_references:
        reference_frames += bundled_elemental_references(fidelity_name, elements)
    reference_frames = _needed(reference_frames, systems)
    clash = {f.info[ID_KEY] for f in candidate_frames} & {f.info[ID_KEY] for f in reference_frames}
    if clash:
        raise ValueError(f"candidate and reference ids overlap: {sorted(clash)[:10]}")
    # fail before any model evaluation when an element has no elemental phase at all
    check_elemental_references(
        [PhaseEnergy(str(f.info[ID_KEY]), f.formula, 0.0) for f in candidate_frames],
        [PhaseEnergy(str(f.info[ID_KEY]), f.formula, 0.0) for f in reference_frames]
        + ([PhaseEnergy(str(f.info[ID_KEY]), f.formula, 0.0) for f in candidate_frames] if candidates_compete else []),
    )
    logger.info(
        "screening %d candidates in %d chemical systems against %d references at fidelity %s",
        len(candidate_frames),
        len(systems),
        len(reference_frames),
        fidelity_name,
    )
    evaluated = evaluate_structures(
        model,
        candidate_frames + reference_frames,
        fidelity=fidelity_name,
        relax=relax,
        max_atoms_per_batch=max_atoms_per_batch,
        progress=progress,
    )
    cands, refs = evaluated[: len(candidate_frames)], evaluated[len(candidate_frames) :]
    pool = [e.phase for e in refs] + ([e.phase for e in cands] if candidates_compete else [])
    hulls = ConvexHulls(pool)
    corrected_hulls, corrected_phases = (None, None)
    if mp2020:
        corrected_hulls, corrected_phases = _mp2020_hulls(cands, refs, fidelity_name, candidates_compete)
    rows = []
    for k, candidate in enumerate(cands):
        corrected = None
        if corrected_hulls is not None and corrected_phases is not None:
            phase = corrected_phases[k]
            if not math.isnan(phase.energy):
                corrected = corrected_hulls.locate(phase)
        rows.append(_row(hulls.locate(candidate.phase), candidate, fidelity_name, corrected))
    settings = {
        "fidelity": fidelity_name,
        "relax": None if relax is None else relax.__dict__.copy(),
        "candidates_compete": candidates_compete,
        "use_bundled_references": use_bundled_references,
        "num_references": len(refs),
        "mp2020": mp2020,
    }
    return ScreeningResult(fidelity_name, rows, cands, refs, hulls, corrected_hulls, settings)
