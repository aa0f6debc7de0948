"""Ordered tetrahedral alloys: the diamond and lonsdaleite lattices decorated by the octet rule.

Carbides, nitrides, phosphides and arsenides of the sp3 family (SiC, AlN, GaAs, ZnS and their alloys) rest on
bonds the ionic prototypes rarely make: Si-C, Ge-C, B-N, Al-C... A tetrahedral composition fills the two
sublattices of an 8-site cell with elements of groups 2-6 so that the cell holds four valence electrons per
atom (the octet rule of tetrahedral semiconductors): cations (fewer than four valence electrons) only on the
first sublattice, anions (more than four) only on the second, group-14 elements on either, so a cell may hold
Si-Si and C-C bonds as well as Si-C. Each composition is placed in both frameworks, cubic (zincblende, 3C) and
hexagonal (wurtzite, 2H) stacking: the two polytypes of one composition, like SiC's 3C and 2H.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii

# valence electrons of the elements that form tetrahedral (sp3) compounds
VALENCE: dict[str, int] = {
    **{"Be": 2, "Mg": 2, "Zn": 2, "Cd": 2},
    **{"B": 3, "Al": 3, "Ga": 3, "In": 3},
    **{"C": 4, "Si": 4, "Ge": 4, "Sn": 4},
    **{"N": 5, "P": 5, "As": 5, "Sb": 5},
    **{"O": 6, "S": 6, "Se": 6, "Te": 6},
}
FRAMEWORKS: tuple[str, ...] = ("zincblende8", "wurtzite8")
SITES_PER_SUBLATTICE = 4
_MAX_ATTEMPTS = 10_000


def _bond_length(cations: Sequence[str], anions: Sequence[str]) -> float:
    """A first guess of the mean bond length: the sum of the sublattices' mean covalent radii (Å)."""

    def mean_radius(elements: Sequence[str]) -> float:
        return float(np.mean([covalent_radii[atomic_numbers[e]] for e in elements]))

    return mean_radius(cations) + mean_radius(anions)


def tetrahedral_structure(framework: str, cations: Sequence[str], anions: Sequence[str]) -> Atoms:
    """The 8-atom cell of ``framework`` with ``cations`` on its first sublattice and ``anions`` on its second.

    The lattice constant is set from the covalent radii (ideal geometry, c/a = sqrt(8/3) and u = 3/8 for
    wurtzite); the driver's relaxation finds the rest.

    Raises:
        ValueError: for an unknown framework, a sublattice without four sites, or an element outside ``VALENCE``.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown tetrahedral framework {framework!r}; known: {', '.join(FRAMEWORKS)}")
    if len(cations) != SITES_PER_SUBLATTICE or len(anions) != SITES_PER_SUBLATTICE:
        raise ValueError(f"a tetrahedral cell has {SITES_PER_SUBLATTICE} sites per sublattice, got {cations}, {anions}")
    unknown = sorted((set(cations) | set(anions)) - set(VALENCE))
    if unknown:
        raise ValueError(f"elements {unknown} are not tetrahedral formers ({', '.join(VALENCE)})")
    bond = _bond_length(cations, anions)
    if framework == "zincblende8":
        cell = bulk("ZnS", "zincblende", a=4.0 * bond / np.sqrt(3.0), cubic=True)
    else:
        c = 8.0 * bond / 3.0
        cell = bulk("ZnO", "wurtzite", a=c / np.sqrt(8.0 / 3.0), c=c, u=0.375, orthorhombic=True)
    symbols = cell.get_chemical_symbols()
    first = [k for k, s in enumerate(symbols) if s == "Zn"]
    second = [k for k, s in enumerate(symbols) if s != "Zn"]
    for k, element in zip(first, cations, strict=True):
        symbols[k] = element
    for k, element in zip(second, anions, strict=True):
        symbols[k] = element
    cell.set_chemical_symbols(symbols)
    return cell


def follows_octet_rule(cations: Sequence[str], anions: Sequence[str]) -> bool:
    """Four valence electrons per atom, cations (valence <= 4) on the first sublattice, anions (>= 4) on the second."""
    if any(VALENCE[e] > 4 for e in cations) or any(VALENCE[e] < 4 for e in anions):
        return False
    return sum(VALENCE[e] for e in (*cations, *anions)) == 4 * (len(cations) + len(anions))


def sample_tetrahedral_sites(
    rng: np.random.Generator, *, with_si_c: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A random octet-rule filling of the two sublattices with 2-4 distinct elements, in random site order.

    ``with_si_c``: the filling holds both Si and C (otherwise its elements are drawn without preference).

    Raises:
        RuntimeError: if no filling is found (never, for the elements of ``VALENCE``).
    """
    pool = sorted(VALENCE, key=lambda e: atomic_numbers[e])
    for _ in range(_MAX_ATTEMPTS):
        size = int(rng.integers(2, 5))
        species = {"Si", "C"} if with_si_c else set()
        others = [e for e in pool if e not in species]
        species |= {str(e) for e in rng.choice(others, size=max(size - len(species), 0), replace=False)}
        on_first = sorted((e for e in species if VALENCE[e] <= 4), key=pool.index)
        on_second = sorted((e for e in species if VALENCE[e] >= 4), key=pool.index)
        if not on_first or not on_second:
            continue
        cations = tuple(str(e) for e in rng.choice(on_first, size=SITES_PER_SUBLATTICE))
        anions = tuple(str(e) for e in rng.choice(on_second, size=SITES_PER_SUBLATTICE))
        if set(cations) | set(anions) == species and follows_octet_rule(cations, anions):
            return cations, anions
    raise RuntimeError("no octet-rule filling found")
