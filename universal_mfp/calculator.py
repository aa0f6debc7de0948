"""ASE calculator for the multi-fidelity potential."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from universal_mfp.data.coverage import CoverageWatch, ElementCoverage
from universal_mfp.inference import inference_copy, predict_structures, resolve_fidelity
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.units import full_3x3_to_voigt_6


class MFCalculator(Calculator):
    """ASE calculator: energy, free_energy, forces and stress at one explicit fidelity.

    Args:
        model: a ``MultiFidelityPotential`` (it is copied; the original is never modified).
        fidelity: the fidelity to predict (``"pbe"``, ``"r2scan"``...). Required for a multi-fidelity
            model; an unknown or missing name raises ``ValueError`` listing the valid ones.
        device: torch device for this calculator, e.g. ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"`` or ``"float64"`` for this calculator; defaults to the model's dtype.
        num_threads: torch CPU threads for this calculator's evaluations (the previous setting is restored
            after each one); ``None`` keeps torch's setting. One thread is best when other processes
            already use the cores.
        coverage: the elements the model saw per fidelity in training (``ElementCoverage``); when given, the
            first structure with an element never seen at ``fidelity`` gets one ``CoverageWarning`` per element.

    Stress (ASE Voigt order, eV/Å³) is available for structures periodic in all three directions.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]  # noqa: RUF012

    def __init__(
        self,
        model: MultiFidelityPotential,
        *,
        fidelity: str | None = None,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        num_threads: int | None = None,
        coverage: ElementCoverage | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be a positive integer or None, got {num_threads}")
        self.num_threads = num_threads
        self.fidelity = resolve_fidelity(model, fidelity)
        self.fidelity_index = model.fidelities.index(self.fidelity)
        self.model = inference_copy(model, dtype=dtype, device=device)
        self.device = torch.device(device)
        self.coverage_watch = CoverageWatch(coverage) if coverage is not None else None

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Compute the requested properties for ``atoms``."""
        properties = properties or ["energy"]
        super().calculate(atoms, properties, system_changes)
        periodic = bool(np.all(self.atoms.pbc))
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("stress is only defined for structures periodic in all three directions")
        previous_threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:  # the one batch prediction path, with a batch of one structure
            (prediction,) = predict_structures(
                self.model, [self.atoms], fidelity=self.fidelity, compute_forces=True, compute_stress=periodic
            )
        finally:
            if self.num_threads is not None:
                torch.set_num_threads(previous_threads)
        if self.coverage_watch is not None:  # after the prediction: elements the model lacks have raised
            self.coverage_watch.check(self.fidelity, self.atoms.numbers)
        self.results = {
            "energy": prediction.energy,
            "free_energy": prediction.energy,
            "forces": prediction.forces,
        }
        if periodic:
            self.results["stress"] = full_3x3_to_voigt_6(prediction.stress)
