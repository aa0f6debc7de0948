"""Structure relaxation with ASE (FIRE or BFGS) and a Fréchet cell filter, convergence reported per structure."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE

from universal_mfp.calculator import MFCalculator
from universal_mfp.data.frame import Frame, as_frame
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)

OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS}


@dataclass(frozen=True)
class RelaxOptions:
    """How to relax.

    Attributes:
        optimizer: ``"FIRE"`` or ``"BFGS"`` (ASE).
        fmax: convergence threshold on the largest force, eV/Å (with the cell filter, the largest
            generalised force, which includes the stress times the cell volume).
        max_steps: optimizer steps before giving up (the structure is then reported as not converged).
        max_step: largest displacement per step, Å (the optimizer's ``maxstep``); ``None`` for its default.
        relax_cell: relax the cell too (``FrechetCellFilter``) for structures periodic in all directions.
    """

    optimizer: str = "FIRE"
    fmax: float = 0.05
    max_steps: int = 500
    max_step: float | None = None
    relax_cell: bool = True

    def __post_init__(self) -> None:
        name = self.optimizer.upper()
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
        object.__setattr__(self, "optimizer", name)
        if self.fmax <= 0:
            raise ValueError(f"fmax must be positive, got {self.fmax}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.max_step is not None and self.max_step <= 0:
            raise ValueError(f"max_step must be positive, got {self.max_step}")


@dataclass(frozen=True)
class RelaxationResult:
    """Outcome of one relaxation.

    Attributes:
        frame: the relaxed structure (a new object; the input is never modified).
        energy: total energy of the relaxed structure from the optimizer's calculator, eV.
        converged: whether the largest (generalised) force fell below ``fmax`` within ``max_steps``.
        steps: optimizer steps taken.
        fmax: largest (generalised) force at the end, eV/Å.
    """

    frame: Frame
    energy: float
    converged: bool
    steps: int
    fmax: float

    @property
    def status(self) -> str:
        """``"converged"`` or ``"not_converged"``."""
        return "converged" if self.converged else "not_converged"


def relax_atoms(atoms: Atoms, calculator: MFCalculator, options: RelaxOptions) -> RelaxationResult:
    """Relax a copy of ``atoms`` with ``calculator``; ``atoms`` itself is left untouched."""
    work = atoms.copy()
    work.calc = calculator
    periodic = bool(np.all(work.pbc))
    target: Any = FrechetCellFilter(work) if options.relax_cell and periodic else work
    kwargs: dict[str, Any] = {"logfile": None}
    if options.max_step is not None:
        kwargs["maxstep"] = options.max_step
    optimizer = OPTIMIZERS[options.optimizer](target, **kwargs)
    optimizer.run(fmax=options.fmax, steps=options.max_steps)
    forces = target.get_forces()
    final_fmax = float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0
    energy = float(work.get_potential_energy())
    relaxed = Atoms(numbers=work.numbers, positions=work.positions, cell=work.cell.array, pbc=work.pbc)
    relaxed.info.update(atoms.info)
    return RelaxationResult(
        frame=as_frame(relaxed),
        energy=energy,
        converged=final_fmax < options.fmax,
        steps=int(optimizer.nsteps),
        fmax=final_fmax,
    )


def relax_structures(
    model: MultiFidelityPotential,
    structures: Sequence[Any],
    *,
    fidelity: str | None,
    options: RelaxOptions | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> list[RelaxationResult]:
    """Relax structures (ASE ``Atoms``, pymatgen ``Structure`` or ``Frame``) with the model at one fidelity.

    Inputs are copied, never modified. Structures that do not converge are returned as they are after
    ``max_steps`` with ``converged=False``.
    """
    options = options or RelaxOptions()
    calculator = MFCalculator(model, fidelity=fidelity, device=device)
    iterator: Iterable[Any] = structures
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(structures, desc="relax", unit="structure")
    results = []
    for structure in iterator:
        atoms = structure.copy() if isinstance(structure, Atoms) else as_frame(structure).to_atoms()
        atoms.calc = None
        results.append(relax_atoms(atoms, calculator, options))
    not_converged = sum(not r.converged for r in results)
    if not_converged:
        logger.warning(
            "%d of %d relaxations did not converge (fmax %.3g eV/Å)", not_converged, len(results), options.fmax
        )
    return results
