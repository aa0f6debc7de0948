"""Formation energies and energies above hull from total energies, with pymatgen ``PhaseDiagram``.

This module knows nothing about models: it takes compositions and total energies (eV), so hulls can
be checked exactly by hand. One phase diagram is built per chemical system of the candidates, from
every phase whose elements are a subset of that system (PatchedPhaseDiagram-style), and cached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

logger = logging.getLogger(__name__)

# |e_above_hull| below this (eV/atom) is reported as exactly 0: removes qhull round-off on hull phases.
HULL_TOLERANCE = 1e-8
# classify-stable threshold of matbench-discovery: stable when e_above_hull <= 0 eV/atom.
STABILITY_THRESHOLD = 0.0


@dataclass(frozen=True)
class PhaseEnergy:
    """A phase with a total energy: a candidate or a competing reference.

    Attributes:
        id: identifier, unique among the phases of one calculation.
        composition: the composition of the cell the energy belongs to.
        energy: total energy of that cell, eV.
    """

    id: str
    composition: Composition
    energy: float

    def __post_init__(self) -> None:
        composition = Composition(self.composition)
        if composition.num_atoms <= 0:
            raise ValueError(f"phase {self.id!r}: empty composition")
        object.__setattr__(self, "composition", composition)
        object.__setattr__(self, "energy", float(self.energy))

    @property
    def energy_per_atom(self) -> float:
        """Energy per atom, eV/atom."""
        return self.energy / self.composition.num_atoms

    @property
    def chemsys(self) -> str:
        """Chemical system, elements sorted alphabetically and joined by ``-``."""
        return chemsys_of(self.composition)


@dataclass(frozen=True)
class HullPoint:
    """Where one candidate sits relative to the convex hull of its chemical system (energies in eV/atom).

    Attributes:
        id: the candidate's id.
        formula: reduced formula.
        chemsys: chemical system of the phase diagram used.
        energy_per_atom: total energy per atom.
        formation_energy_per_atom: relative to the lowest-energy elemental phases of the hull.
        e_above_hull: distance to the hull (0 on the hull; negative only when candidates do not compete and
            the candidate lies below the hull of the references).
        stable: ``e_above_hull <= STABILITY_THRESHOLD``.
    """

    id: str
    formula: str
    chemsys: str
    energy_per_atom: float
    formation_energy_per_atom: float
    e_above_hull: float
    stable: bool


def chemsys_of(composition: Composition) -> str:
    """Return the chemical system of a composition, e.g. ``"Fe-Li-O"``."""
    return "-".join(sorted(el.symbol for el in composition.elements))


def _elements(composition: Composition) -> frozenset[str]:
    return frozenset(el.symbol for el in composition.elements)


def check_elemental_references(candidates: Iterable[PhaseEnergy], pool: Iterable[PhaseEnergy]) -> None:
    """Raise ``ValueError`` naming every element of ``candidates`` without a pure-element phase in ``pool``."""
    needed = set().union(*(_elements(c.composition) for c in candidates))
    available = {next(iter(_elements(p.composition))) for p in pool if len(p.composition.elements) == 1}
    missing = sorted(needed - available)
    if missing:
        raise ValueError(
            f"no elemental reference phase for element(s) {missing}: add reference structures for "
            f"{', '.join(missing)} (bundled elemental references, --references, or Materials Project entries)"
        )


class ConvexHulls:
    """Convex hulls of a set of phases, built lazily per chemical system and cached.

    Args:
        phases: every competing phase (references, and candidates when they compete).
    """

    def __init__(self, phases: Sequence[PhaseEnergy]) -> None:
        ids = [p.id for p in phases]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"phase ids must be unique; duplicated: {duplicates[:10]}")
        self.phases = list(phases)
        self._entries = {p.id: PDEntry(p.composition, p.energy, name=p.id) for p in self.phases}
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    def phase_diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        """Return the phase diagram of every phase whose elements are a subset of ``elements``.

        Raises:
            ValueError: if an element has no pure-element phase, naming the element(s).
        """
        system = frozenset(elements)
        if system not in self._diagrams:
            members = [p for p in self.phases if _elements(p.composition) <= system]
            missing = sorted(
                system - {next(iter(_elements(p.composition))) for p in members if len(p.composition.elements) == 1}
            )
            if missing:
                raise ValueError(f"no elemental reference phase for element(s) {missing} in system {sorted(system)}")
            self._diagrams[system] = PhaseDiagram([self._entries[p.id] for p in members])
            logger.debug("built phase diagram %s from %d phases", "-".join(sorted(system)), len(members))
        return self._diagrams[system]

    def locate(self, phase: PhaseEnergy) -> HullPoint:
        """Formation energy and energy above hull of ``phase`` in the hull of its own chemical system.

        ``phase`` need not be one of the hull's phases; if it is not, it may lie below the hull and get a
        negative ``e_above_hull``.
        """
        diagram = self.phase_diagram(_elements(phase.composition))
        entry = self._entries.get(phase.id)
        if entry is None or entry.composition != phase.composition or entry.energy != phase.energy:
            entry = PDEntry(phase.composition, phase.energy, name=phase.id)
        _, e_above_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        e_above_hull = float(e_above_hull)
        if abs(e_above_hull) < HULL_TOLERANCE:
            e_above_hull = 0.0
        return HullPoint(
            id=phase.id,
            formula=phase.composition.reduced_formula,
            chemsys=phase.chemsys,
            energy_per_atom=phase.energy_per_atom,
            formation_energy_per_atom=float(diagram.get_form_energy_per_atom(entry)),
            e_above_hull=e_above_hull,
            stable=e_above_hull <= STABILITY_THRESHOLD,
        )


def energies_above_hull(
    candidates: Sequence[PhaseEnergy],
    references: Sequence[PhaseEnergy],
    *,
    candidates_compete: bool = True,
) -> list[HullPoint]:
    """Formation energy per atom and energy above hull of every candidate.

    Args:
        candidates: the phases to place relative to the hull.
        references: competing phases (elements and compounds) at the same level of theory.
        candidates_compete: include the candidates in the hull (every competing phase counts, so a candidate
            can be above the hull because of another candidate). With ``False`` the hull is built from the
            references only, as in matbench-discovery, and a candidate below it gets a negative value.

    Raises:
        ValueError: if an element of a candidate has no pure-element phase among the competing phases,
            naming the element(s), or if phase ids are not unique.
    """
    pool = list(references) + (list(candidates) if candidates_compete else [])
    check_elemental_references(candidates, pool)
    hulls = ConvexHulls(pool)
    return [hulls.locate(candidate) for candidate in candidates]
