"""Phase stability: formation energies, energies above hull, relaxation, screening and discovery metrics."""

from universal_mfp.data.structure_files import read_structures
from universal_mfp.hull.metrics import metrics_against_labels, read_labels, stable_metrics
from universal_mfp.hull.phase_diagram import (
    HULL_TOLERANCE,
    STABILITY_THRESHOLD,
    ConvexHulls,
    HullPoint,
    PhaseEnergy,
    energies_above_hull,
)
from universal_mfp.hull.references import (
    bundled_elemental_references,
    bundled_elements,
    materials_project_references,
    user_references,
)
from universal_mfp.hull.relax import RelaxationResult, RelaxOptions, relax_structures
from universal_mfp.hull.screening import (
    EvaluatedStructure,
    ScreeningResult,
    ScreeningRow,
    evaluate_structures,
    screen_structures,
)
from universal_mfp.hull.workflow import ScreeningRequest, run_screening

__all__ = [
    "HULL_TOLERANCE",
    "STABILITY_THRESHOLD",
    "ConvexHulls",
    "EvaluatedStructure",
    "HullPoint",
    "PhaseEnergy",
    "RelaxOptions",
    "RelaxationResult",
    "ScreeningRequest",
    "ScreeningResult",
    "ScreeningRow",
    "bundled_elemental_references",
    "bundled_elements",
    "energies_above_hull",
    "evaluate_structures",
    "materials_project_references",
    "metrics_against_labels",
    "read_labels",
    "read_structures",
    "relax_structures",
    "run_screening",
    "screen_structures",
    "stable_metrics",
    "user_references",
]
