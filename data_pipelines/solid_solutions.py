"""Ordered mixed crystals of the simple ionic prototypes: rocksalt, antifluorite and corundum.

A mixed crystal shares one sublattice of a prototype equally between two isovalent elements (K and Na on
rocksalt's cations, Cl and Br on its anions, Ga and Al on corundum's cations...), in the prototype's
conventional cell and in a cell twice as long, each with its own arrangement of the two elements. Halide,
chalcogenide and sesquioxide bonds then appear in their own coordination, next to other bonds of the same kind.

This matters most for the binaries that evaluations judge (NaCl, MgO, LiF, Li2O, Al2O3, ...): they are left
out of every source, and for several of them (Al2O3, NaCl) the binary itself is the only charge-balanced
compound of its two elements, so no other binary teaches their bond. A 50/50 mixed crystal holds that bond for
half of its sites and is a different compound (AlGaO3, NaKCl2), never the judged one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal


@dataclass(frozen=True)
class IonicFamily:
    """Elements that can share the sublattices of one prototype: cations of one charge, anions of another."""

    prototype: str
    cations: tuple[str, ...]
    anions: tuple[str, ...]
    cation_charge: int
    anion_charge: int


FAMILIES: tuple[IonicFamily, ...] = (
    IonicFamily("rocksalt", ("Li", "Na", "K", "Rb", "Ag"), ("F", "Cl", "Br", "I"), 1, -1),
    IonicFamily("rocksalt", ("Mg", "Ca", "Sr", "Ba", "Mn", "Fe", "Co", "Ni", "Zn", "Cd"), ("O", "S", "Se"), 2, -2),
    IonicFamily("antifluorite", ("Li", "Na", "K", "Rb"), ("O", "S", "Se", "Te"), 1, -2),
    IonicFamily("corundum", ("Al", "Ga", "In", "Sc", "Ti", "V", "Cr", "Fe", "Rh"), ("O",), 3, -2),
)
# every cell of a prototype: name -> (prototype, repeats along the first lattice vector)
CELLS: dict[str, tuple[str, int]] = {
    "rocksalt8": ("rocksalt", 1),
    "rocksalt16": ("rocksalt", 2),
    "antifluorite12": ("antifluorite", 1),
    "antifluorite24": ("antifluorite", 2),
    "corundum10": ("corundum", 1),
    "corundum20": ("corundum", 2),
}
# corundum (Al2O3): R-3c, hexagonal a = 4.7602 Å, c = 12.9933 Å, Al at z = 0.35216, O at x = 0.30624; its mean
# Al-O bond, 1.913 Å, is the length its cell is scaled from
_CORUNDUM_BOND = 1.913


def _ionic_radius(element: str, charge: int) -> float:
    from pymatgen.core import Species

    radius = Species(element, charge).ionic_radius
    if radius is None:
        raise ValueError(f"no ionic radius for {element}{charge:+d}")
    return float(radius)


def _template(prototype: str, bond: float) -> tuple[Atoms, str, str]:
    """A prototype's cell at cation-anion distance ``bond``, with its cation and anion placeholder symbols.

    Rocksalt and antifluorite: the cubic conventional cell; corundum: the 10-atom primitive cell.
    """
    if prototype == "rocksalt":
        return bulk("NaCl", "rocksalt", a=2 * bond, cubic=True), "Na", "Cl"
    if prototype == "antifluorite":  # fluorite with the roles swapped: cations on F's 8 sites, anions on Ca's 4
        return bulk("CaF2", "fluorite", a=4 * bond / np.sqrt(3), cubic=True), "F", "Ca"
    if prototype == "corundum":
        atoms = crystal(
            ["Al", "O"],
            basis=[(0.0, 0.0, 0.35216), (0.30624, 0.0, 0.25)],
            spacegroup=167,
            cellpar=[4.7602, 4.7602, 12.9933, 90, 90, 120],
            primitive_cell=True,
        )
        atoms.set_cell(atoms.cell * (bond / _CORUNDUM_BOND), scale_atoms=True)
        return atoms, "Al", "O"
    raise ValueError(f"unknown ionic prototype {prototype!r}")


def _family_of(prototype: str, cations: Sequence[str], anions: Sequence[str]) -> IonicFamily:
    for family in FAMILIES:
        if family.prototype == prototype and set(cations) <= set(family.cations) and set(anions) <= set(family.anions):
            return family
    raise ValueError(f"{sorted(set(cations))} with {sorted(set(anions))} do not share one {prototype} family")


@functools.cache
def sublattice_sizes(cell: str) -> tuple[int, int]:
    """The numbers of cation and anion sites of ``cell``."""
    if cell not in CELLS:
        raise ValueError(f"unknown mixed-crystal cell {cell!r}; known: {', '.join(CELLS)}")
    prototype, repeats = CELLS[cell]
    atoms, cation, anion = _template(prototype, 2.0)
    symbols = atoms.get_chemical_symbols()
    return repeats * symbols.count(cation), repeats * symbols.count(anion)


def mixed_crystal(cell: str, cations: Sequence[str], anions: Sequence[str]) -> Atoms:
    """``cell`` with ``cations`` on its cation sites and ``anions`` on its anion sites, in site order.

    The cell is scaled so that its cation-anion distance is the mean of the sums of the ions' radii (Shannon,
    through pymatgen); the driver's relaxation finds the rest.

    Raises:
        ValueError: for an unknown cell, sublattices of the wrong size, or elements that are not one family's.
    """
    n_cations, n_anions = sublattice_sizes(cell)
    if len(cations) != n_cations or len(anions) != n_anions:
        raise ValueError(f"{cell} has {n_cations} cation and {n_anions} anion sites, got {cations}, {anions}")
    prototype, repeats = CELLS[cell]
    family = _family_of(prototype, cations, anions)
    bond = float(
        np.mean([_ionic_radius(e, family.cation_charge) for e in cations])
        + np.mean([_ionic_radius(e, family.anion_charge) for e in anions])
    )
    atoms, cation, anion = _template(prototype, bond)
    atoms = atoms.repeat((repeats, 1, 1))
    symbols = atoms.get_chemical_symbols()
    cation_sites = [k for k, s in enumerate(symbols) if s == cation]
    anion_sites = [k for k, s in enumerate(symbols) if s == anion]
    for sites, elements in ((cation_sites, cations), (anion_sites, anions)):
        for site, element in zip(sites, elements, strict=True):
            symbols[site] = element
    atoms.set_chemical_symbols(symbols)
    return atoms


def host_of(formula: str) -> tuple[IonicFamily, str, str] | None:
    """The family, cation and anion of a binary that is a prototype compound (``Al2O3``: corundum, Al, O).

    ``None`` for any other formula.
    """
    from pymatgen.core import Composition

    composition = Composition(formula)
    if len(composition.elements) != 2:
        return None
    for family in FAMILIES:
        for cation in family.cations:
            for anion in family.anions:
                stoichiometry = {cation: -family.anion_charge, anion: family.cation_charge}
                if Composition(stoichiometry).reduced_formula == composition.reduced_formula:
                    return family, cation, anion
    return None


def all_mixed_sublattices() -> list[tuple[IonicFamily, tuple[str, ...], tuple[str, ...]]]:
    """Every mixed crystal of every family: its cation sublattice shared by two elements, or its anion one.

    As (family, cations, anions), in a fixed order; each of these is a composition of its own.
    """
    out = []
    for family in FAMILIES:
        for k, first in enumerate(family.cations):
            for second in family.cations[k + 1 :]:
                out += [(family, (first, second), (anion,)) for anion in family.anions]
        for k, first in enumerate(family.anions):
            for second in family.anions[k + 1 :]:
                out += [(family, (cation,), (first, second)) for cation in family.cations]
    return out


def shares_a_sublattice_with(
    mixed: tuple[IonicFamily, tuple[str, ...], tuple[str, ...]], host: tuple[IonicFamily, str, str]
) -> bool:
    """Whether a mixed crystal holds the bond of a host binary in the host's prototype (AlGaO3 and Al2O3)."""
    family, cations, anions = mixed
    return family == host[0] and host[1] in cations and host[2] in anions


def shared_equally(elements: Sequence[str], sites: int) -> list[str]:
    """``sites`` sites shared equally by ``elements`` (one or two), the first element's first."""
    if sites % len(elements):
        raise ValueError(f"{sites} sites cannot be shared equally by {list(elements)}")
    return [e for e in elements for _ in range(sites // len(elements))]


def arrange(rng: np.random.Generator, elements: Sequence[str], sites: int) -> list[str]:
    """``sites`` sites shared equally by ``elements`` (one or two), in a random order."""
    placed = shared_equally(elements, sites)
    return [placed[k] for k in rng.permutation(sites)]
