"""Configurations around a crystal: relaxation path, rattles, strains, volume scans, MD, vacancies, surfaces.

Every function is deterministic given its ``numpy`` generator. The ones that move atoms with a driver
(relaxation, MD) take an ASE calculator; the others are pure geometry.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.data import atomic_numbers, covalent_radii

logger = logging.getLogger(__name__)

MIN_DISTANCE = 0.6  # Å: a frame with two atoms closer than this is not a physical configuration
# Å^3 per atom: no solid is denser (diamond 5.7, the densest MP elemental polymorph here 5.6). Denser cells (an
# elemental gas scaled by its covalent radius) give the teachers thousands of neighbours per atom within their
# cutoff: a 20 GB graph, killed by the kernel, not an error.
MIN_VOLUME_PER_ATOM = 3.0


def min_distance(atoms: Atoms) -> float:
    """The shortest interatomic distance under periodic boundary conditions, ``inf`` if none is below 3 Å."""
    if len(atoms) == 1 and not atoms.pbc.any():
        return float("inf")
    from vesin import NeighborList

    cutoff = 3.0
    if atoms.pbc.all():
        nl = NeighborList(cutoff=cutoff, full_list=False)
        distances = nl.compute(atoms.positions, atoms.cell.array, True, quantities="d")
        distances = np.atleast_1d(distances[0] if isinstance(distances, tuple | list) else distances)
    else:
        diff = atoms.positions[:, None] - atoms.positions[None]
        distances = np.linalg.norm(diff, axis=-1)[np.triu_indices(len(atoms), 1)]
    return float(distances.min()) if len(distances) else float("inf")


def is_sane(atoms: Atoms, *, min_fraction: float = 0.5) -> bool:
    """Whether a frame is a physical configuration worth a teacher call.

    No pair of atoms closer than ``MIN_DISTANCE`` or ``min_fraction`` of the smallest covalent bond, and a
    periodic cell of at least ``MIN_VOLUME_PER_ATOM`` per atom.
    """
    if atoms.pbc.all() and atoms.get_volume() / len(atoms) < MIN_VOLUME_PER_ATOM:
        return False
    smallest = 2 * min(covalent_radii[atomic_numbers[s]] for s in set(atoms.get_chemical_symbols()))
    return min_distance(atoms) >= max(MIN_DISTANCE, min_fraction * smallest)


def rattle(atoms: Atoms, rng: np.random.Generator, sigma: float) -> Atoms:
    """Gaussian displacements of standard deviation ``sigma`` (Å) on every atom."""
    out = atoms.copy()
    out.positions = out.positions + rng.normal(0.0, sigma, size=out.positions.shape)
    return out


def strain(atoms: Atoms, rng: np.random.Generator, *, normal: float = 0.08, shear: float = 0.04) -> Atoms:
    """Homogeneous deformation: normal strains up to ``normal``, symmetric shear up to ``shear``; atoms follow."""
    eps = np.diag(rng.uniform(-normal, normal, size=3))
    off = rng.uniform(-shear, shear, size=3)
    eps[0, 1] = eps[1, 0] = off[0]
    eps[0, 2] = eps[2, 0] = off[1]
    eps[1, 2] = eps[2, 1] = off[2]
    out = atoms.copy()
    out.set_cell(out.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return out


def scaled_volume(atoms: Atoms, factor: float) -> Atoms:
    """The crystal scaled isotropically to ``factor`` times its volume; atoms follow (an equation-of-state point)."""
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"a volume factor must be a positive number, got {factor}")
    out = atoms.copy()
    out.set_cell(out.cell.array * factor ** (1.0 / 3.0), scale_atoms=True)
    return out


def supercell_at_least(atoms: Atoms, min_atoms: int) -> Atoms:
    """The smallest diagonal repetition (growing the shortest axis first) with at least ``min_atoms`` atoms."""
    reps = np.ones(3, dtype=int)
    lengths = atoms.cell.lengths()
    while len(atoms) * int(np.prod(reps)) < min_atoms:
        reps[int(np.argmin(lengths * reps))] += 1
    return atoms.repeat(tuple(int(r) for r in reps))


def vacancy(atoms: Atoms, rng: np.random.Generator, *, min_atoms: int = 8) -> Atoms:
    """A supercell of at least ``min_atoms`` atoms with one random atom removed."""
    out = supercell_at_least(atoms, min_atoms)
    del out[int(rng.integers(len(out)))]
    return out


def surface(atoms: Atoms, rng: np.random.Generator, *, max_atoms: int = 24, vacuum: float = 8.0) -> Atoms | None:
    """A low-index slab ((100), (110) or (111)) with ``vacuum`` Å of vacuum, periodic in all directions.

    Returns ``None`` when no slab of at most ``max_atoms`` atoms exists.
    """
    from pymatgen.core.surface import SlabGenerator
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = AseAtomsAdaptor.get_structure(atoms)
    millers = [(1, 0, 0), (1, 1, 0), (1, 1, 1)]
    start = int(rng.integers(len(millers)))
    for miller in millers[start:] + millers[:start]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                slabs = SlabGenerator(structure, miller, min_slab_size=5.0, min_vacuum_size=vacuum, center_slab=True)
                slabs = slabs.get_slabs(symmetrize=False)
            except (ValueError, IndexError, RuntimeError) as error:
                logger.debug("no %s slab: %s", miller, error)
                continue
        for slab in slabs:
            if len(slab) <= max_atoms:
                out = AseAtomsAdaptor.get_atoms(slab.get_orthogonal_c_slab())
                out.pbc = True
                return out
    return None


def relaxation_path(atoms: Atoms, calculator: Any, *, max_steps: int, fmax: float = 0.05) -> list[Atoms]:
    """Relax cell and positions (BFGS on ASE's ``FrechetCellFilter``) for at most ``max_steps`` steps.

    Returns the structure after every step (the first is the input); stops early at ``fmax`` (eV/Å)
    or when a step brings two atoms closer than ``MIN_DISTANCE``.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    work = atoms.copy()
    work.calc = calculator
    path = [atoms.copy()]
    optimizer = BFGS(FrechetCellFilter(work), logfile=None, maxstep=0.2)
    for _ in optimizer.irun(fmax=fmax, steps=max_steps):
        snapshot = work.copy()
        if not is_sane(snapshot) or not np.isfinite(snapshot.positions).all():
            break
        path.append(snapshot)
    # irun yields before the first step too: drop a leading duplicate of the input
    if len(path) > 1 and np.allclose(path[1].positions, path[0].positions) and np.allclose(path[1].cell, path[0].cell):
        path.pop(1)
    return path


def md_snapshots(
    atoms: Atoms,
    calculator: Any,
    rng: np.random.Generator,
    *,
    temperature: float,
    steps: int,
    keep: int,
    timestep_fs: float = 2.0,
) -> list[Atoms]:
    """Langevin NVT dynamics at ``temperature`` K; return ``keep`` evenly spaced snapshots after the start."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    work = atoms.copy()
    work.calc = calculator
    MaxwellBoltzmannDistribution(work, temperature_K=temperature, rng=rng)
    dynamics = Langevin(work, timestep_fs * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
    every = max(1, steps // keep)
    snapshots: list[Atoms] = []
    for step in range(1, steps + 1):
        dynamics.run(1)
        if not is_sane(work):
            break
        if step % every == 0 and len(snapshots) < keep:
            snapshots.append(work.copy())
    return snapshots
