"""Write screening results: one CSV row per candidate, a JSON summary (settings and metrics)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from universal_mfp.hull.screening import ScreeningRow

# CSV columns in order; energies in eV/atom. The *_mp2020 columns are MP2020-corrected GGA values
# (comparison only) and are written only when present.
CSV_COLUMNS = (
    "id",
    "formula",
    "chemsys",
    "num_atoms",
    "fidelity",
    "energy_per_atom",
    "formation_energy_per_atom",
    "e_above_hull",
    "stable",
    "relaxation_status",
    "relax_steps",
    "relax_fmax",
)
MP2020_COLUMNS = ("formation_energy_per_atom_mp2020", "e_above_hull_mp2020")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6f}"
    return value


def write_screening_csv(
    rows: Sequence[ScreeningRow], path: str | Path, *, labels: Mapping[str, float] | None = None
) -> Path:
    """Write one row per candidate; adds ``e_above_hull_label`` when ``labels`` (id -> eV/atom) are given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(CSV_COLUMNS)
    if any(row.e_above_hull_mp2020 is not None for row in rows):
        columns += MP2020_COLUMNS
    if labels is not None:
        columns.append("e_above_hull_label")
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            record = dataclasses.asdict(row)
            if labels is not None:
                record["e_above_hull_label"] = labels.get(row.id)
            writer.writerow({key: _cell(record.get(key)) for key in columns})
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json(data: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``data`` as indented JSON (NaN and inf become ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")
    return path
