"""The file-to-file screening workflow behind ``umfp screen``: read, screen, write CSV, plots and metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from universal_mfp.data.structure_files import read_structures
from universal_mfp.hull.metrics import metrics_against_labels, read_labels
from universal_mfp.hull.plot import hull_plot_name, plot_hull
from universal_mfp.hull.references import load_mp_entries, materials_project_references, user_references
from universal_mfp.hull.relax import RelaxOptions
from universal_mfp.hull.report import write_json, write_screening_csv
from universal_mfp.hull.screening import ScreeningResult, screen_structures
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)

CSV_NAME = "results.csv"
SUMMARY_NAME = "summary.json"
PLOTS_DIR = "hulls"


@dataclass(frozen=True)
class ScreeningRequest:
    """Everything ``umfp screen`` needs besides the model (see ``hull.cli`` for the meaning of each option)."""

    candidates: list[Path]
    fidelity: str
    output_dir: Path
    references: list[Path] = field(default_factory=list)
    mp_entries: list[Path] = field(default_factory=list)
    use_bundled_references: bool = True
    candidates_compete: bool = True
    relax: bool = False
    optimizer: str = "FIRE"
    fmax: float = 0.05
    max_steps: int = 500
    max_step: float | None = None
    mp2020: bool = False
    labels: Path | None = None
    plots: bool = True
    progress: bool = True
    max_atoms_per_batch: int = 4096


def write_hull_plots(result: ScreeningResult, folder: Path) -> dict[str, str]:
    """One PNG per chemical system of the candidates; returns chemsys -> file (systems of >4 elements skipped)."""
    written = {}
    systems: dict[str, list[str]] = {}
    for row in result.rows:
        systems.setdefault(row.chemsys, []).append(row.id)
    for chemsys, ids in sorted(systems.items()):
        diagram = result.hulls.phase_diagram(chemsys.split("-"))
        path = plot_hull(
            diagram, folder / hull_plot_name(chemsys), highlight=ids, title=f"{chemsys} ({result.fidelity})"
        )
        if path is not None:
            written[chemsys] = str(path)
    return written


def run_screening(model: MultiFidelityPotential, request: ScreeningRequest, *, model_name: str = "") -> dict[str, Any]:
    """Screen the request's candidates with ``model`` and write the outputs; returns the summary written.

    Outputs in ``request.output_dir``: ``results.csv`` (one row per candidate), ``summary.json`` (settings,
    counts, metrics when labels are given, timings) and ``hulls/hull_<chemsys>.png``.
    """
    start = time.perf_counter()
    candidates = read_structures(request.candidates)
    references = user_references(read_structures(request.references)) if request.references else []
    for path in request.mp_entries:
        references += materials_project_references(load_mp_entries(str(path)), fidelity=request.fidelity)
    relax = (
        RelaxOptions(request.optimizer, request.fmax, request.max_steps, request.max_step) if request.relax else None
    )
    result = screen_structures(
        model,
        candidates,
        fidelity=request.fidelity,
        references=references,
        use_bundled_references=request.use_bundled_references,
        relax=relax,
        candidates_compete=request.candidates_compete,
        mp2020=request.mp2020,
        max_atoms_per_batch=request.max_atoms_per_batch,
        progress=request.progress,
    )
    elapsed = time.perf_counter() - start
    output = Path(request.output_dir)
    labels = read_labels(request.labels) if request.labels is not None else None
    csv_path = write_screening_csv(result.rows, output / CSV_NAME, labels=labels)
    summary: dict[str, Any] = {
        "model": model_name,
        "settings": result.settings,
        "num_candidates": len(result.rows),
        "num_stable": sum(row.stable for row in result.rows),
        "num_references": len(result.references),
        "seconds": elapsed,
        "units": "eV/atom",
        "outputs": {"csv": str(csv_path)},
    }
    if request.relax:
        summary["num_not_converged"] = sum(row.relaxation_status == "not_converged" for row in result.rows)
    if labels is not None:
        summary["metrics"] = metrics_against_labels(result.e_above_hull(), labels)
        summary["metrics_definition"] = "matbench-discovery stable_metrics, stable iff e_above_hull <= 0 eV/atom"
    if request.plots:
        summary["outputs"]["plots"] = write_hull_plots(result, output / PLOTS_DIR)
    write_json(summary, output / SUMMARY_NAME)
    return summary
