"""``Frame``: one structure with optional labels, the typed object at the data layer's edges.

Everything that enters the package (ASE ``Atoms``, pymatgen ``Structure``/``Molecule``, extxyz files,
parquet shards) becomes a ``Frame`` first; graphs for the model are built from frames only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from universal_mfp.units import as_stress_3x3

MAX_ATOMIC_NUMBER = 118


@dataclass(frozen=True, eq=False)
class Frame:
    """One structure, its fidelity, and whichever labels it has.

    Attributes:
        numbers: atomic numbers, shape (n,).
        positions: Cartesian positions in Å, shape (n, 3).
        cell: lattice vectors as rows in Å, shape (3, 3); zeros for a molecule.
        pbc: periodicity along each lattice vector, shape (3,).
        fidelity: fidelity name of the labels (``None`` for unlabelled input).
        energy: total energy in eV, or ``None``.
        forces: forces in eV/Å, shape (n, 3), or ``None``.
        stress: stress in eV/Å³ (ASE sign convention), shape (3, 3), or ``None``.
        info: ids and provenance (``material_id``, ``task_id``, ``source``, ``functional``...).
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    fidelity: str | None = None
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        n = numbers.shape[0]
        positions = np.asarray(self.positions, dtype=np.float64)
        cell = np.asarray(self.cell, dtype=np.float64)
        pbc = np.asarray(self.pbc, dtype=bool)
        if pbc.shape == ():
            pbc = np.full(3, bool(pbc))
        if n == 0:
            raise ValueError("empty structure: a frame needs at least one atom")
        if positions.shape != (n, 3):
            raise ValueError(f"positions must have shape ({n}, 3) for {n} atoms, got {positions.shape}")
        if cell.shape != (3, 3):
            raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
        if pbc.shape != (3,):
            raise ValueError(f"pbc must have shape (3,), got {pbc.shape}")
        bad = (numbers < 1) | (numbers > MAX_ATOMIC_NUMBER)
        if bad.any():
            raise ValueError(f"invalid atomic numbers {sorted(set(numbers[bad].tolist()))}: expected 1..118")
        if not np.isfinite(positions).all():
            rows = np.unique(np.nonzero(~np.isfinite(positions))[0]).tolist()
            raise ValueError(f"non-finite (NaN or inf) positions for atoms {rows[:10]}")
        if not np.isfinite(cell).all():
            raise ValueError("non-finite (NaN or inf) values in the cell")
        if pbc.any():
            periodic_vectors = cell[pbc]
            lengths = np.linalg.norm(periodic_vectors, axis=1)
            if (lengths < 1e-6).any():
                raise ValueError(f"periodic direction(s) {np.nonzero(pbc)[0].tolist()} have a zero-length cell vector")
            if pbc.all() and abs(np.linalg.det(cell)) < 1e-6:
                raise ValueError("the cell of a periodic structure has (near) zero volume")
        forces = None if self.forces is None else np.asarray(self.forces, dtype=np.float64)
        if forces is not None and forces.shape != (n, 3):
            raise ValueError(f"forces must have shape ({n}, 3), got {forces.shape}")
        stress = None if self.stress is None else as_stress_3x3(self.stress)
        energy = None if self.energy is None else float(self.energy)
        object.__setattr__(self, "numbers", numbers)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "pbc", pbc)
        object.__setattr__(self, "forces", forces)
        object.__setattr__(self, "stress", stress)
        object.__setattr__(self, "energy", energy)
        object.__setattr__(self, "info", dict(self.info))

    @property
    def num_atoms(self) -> int:
        """Number of atoms."""
        return int(self.numbers.shape[0])

    @property
    def formula(self) -> str:
        """Chemical formula in ASE's Hill-like order."""
        return self.to_atoms().get_chemical_formula()

    @property
    def symbols(self) -> list[str]:
        """Chemical symbols of the atoms."""
        return [chemical_symbols[z] for z in self.numbers]

    def to_atoms(self) -> Atoms:
        """Return an ASE ``Atoms`` copy (labels are not attached)."""
        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.info.update(self.info)
        if self.fidelity is not None:
            atoms.info["fidelity"] = self.fidelity
        return atoms

    def replace(self, **changes: Any) -> Frame:
        """Return a copy with some fields replaced."""
        fields = {
            "numbers": self.numbers,
            "positions": self.positions,
            "cell": self.cell,
            "pbc": self.pbc,
            "fidelity": self.fidelity,
            "energy": self.energy,
            "forces": self.forces,
            "stress": self.stress,
            "info": self.info,
        }
        fields.update(changes)
        return Frame(**fields)


def non_finite_labels(frame: Frame) -> list[str]:
    """The names of a frame's labels that hold NaN or inf (``energy``, ``forces``, ``stress``)."""
    bad = []
    if frame.energy is not None and not np.isfinite(frame.energy):
        bad.append("energy")
    if frame.forces is not None and not np.isfinite(frame.forces).all():
        bad.append("forces")
    if frame.stress is not None and not np.isfinite(frame.stress).all():
        bad.append("stress")
    return bad


def check_finite_labels(frames: Sequence[Frame], source: str) -> None:
    """Refuse frames with NaN or inf labels, naming the source, the frame and the label.

    Raises:
        ValueError: for the first frame with a non-finite energy, force or stress.
    """
    for index, frame in enumerate(frames):
        bad = non_finite_labels(frame)
        if bad:
            ident = frame.info.get("frame_id", index)
            raise ValueError(
                f"{source}: frame {index} ({ident}) has non-finite (NaN or inf) {', '.join(bad)}; "
                "refusing to train on it: fix or drop that frame"
            )


def frame_from_atoms(atoms: Atoms, *, fidelity: str | None = None, with_labels: bool = False) -> Frame:
    """Build a ``Frame`` from ASE ``Atoms``.

    Args:
        atoms: the structure.
        fidelity: fidelity name to attach.
        with_labels: read energy, forces and stress from the attached calculator (as written by
            ``ase.io`` for extxyz) when present.
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
    energy = forces = stress = None
    if with_labels and atoms.calc is not None:
        results = getattr(atoms.calc, "results", {})
        energy = results.get("energy")
        forces = results.get("forces")
        stress = results.get("stress")
    if with_labels and stress is None and "stress" in atoms.info:
        stress = atoms.info["stress"]
    info = {k: v for k, v in atoms.info.items() if k != "stress"}
    return Frame(
        numbers=atoms.get_atomic_numbers(),
        positions=atoms.get_positions(),
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        fidelity=fidelity,
        energy=energy,
        forces=forces,
        stress=stress,
        info=info,
    )


def frame_from_pymatgen(structure: Any, *, fidelity: str | None = None) -> Frame:
    """Build a ``Frame`` from a pymatgen ``Structure`` (periodic) or ``Molecule`` (non-periodic)."""
    from pymatgen.core import Molecule, Structure

    if isinstance(structure, Structure):
        if not structure.is_ordered:
            raise ValueError("disordered pymatgen Structure: order it (e.g. OrderDisorderedStructureTransformation)")
        return Frame(
            numbers=[site.specie.Z for site in structure],
            positions=structure.cart_coords,
            cell=structure.lattice.matrix,
            pbc=structure.lattice.pbc,
            fidelity=fidelity,
        )
    if isinstance(structure, Molecule):
        if not structure.is_ordered:
            raise ValueError("disordered pymatgen Molecule is not supported")
        return Frame(
            numbers=[site.specie.Z for site in structure],
            positions=structure.cart_coords,
            cell=np.zeros((3, 3)),
            pbc=[False, False, False],
            fidelity=fidelity,
        )
    raise TypeError(f"expected a pymatgen Structure or Molecule, got {type(structure).__name__}")


def as_frame(structure: Any, *, fidelity: str | None = None) -> Frame:
    """Convert an ASE ``Atoms``, pymatgen ``Structure``/``Molecule`` or ``Frame`` to a ``Frame``."""
    if isinstance(structure, Frame):
        return structure if fidelity is None else structure.replace(fidelity=fidelity)
    if isinstance(structure, Atoms):
        return frame_from_atoms(structure, fidelity=fidelity)
    return frame_from_pymatgen(structure, fidelity=fidelity)
