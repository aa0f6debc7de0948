"""Records: one structure + total energy + run type, normalised from MP thermo entries and task docs.

A record is a plain JSON object (one line of ``records.jsonl``)::

    record_id    "thermo:mp-13:GGA" or "task:mp-1440949"
    material_id  MP material id (or None)
    task_id      the calculation that produced it (or None)
    run_type     "GGA", "GGA+U", "r2SCAN" or "r2SCAN+U": the original label, always kept
    fidelity     "pbe" (GGA, GGA+U) or "r2scan" (universal_mfp.fidelity)
    route        "materials/thermo" or "materials/tasks"
    formula      reduced formula
    numbers      atomic numbers
    positions    Cartesian positions, Å, (n, 3)
    cell         lattice vectors as rows, Å, (3, 3)
    energy       total energy in eV, *uncorrected* (raw DFT; no MP2020 correction)
    correction   the MP correction of a thermo entry, eV (kept for reference, never applied)

Forces and stress are not served by the thermo and tasks routes, so records carry energies only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from universal_mfp.data.frame import Frame
from universal_mfp.fidelity import fidelity_from_functional
from universal_mfp.mp_conventions import normalise_run_type

logger = logging.getLogger(__name__)

THERMO_ROUTE = "materials/thermo"
TASKS_ROUTE = "materials/tasks"


class MalformedDocumentError(ValueError):
    """A document lacks what a record needs (structure, energy, run type)."""


def _structure_arrays(structure: Any, where: str) -> dict[str, Any]:
    from pymatgen.core import Structure

    if not isinstance(structure, dict):
        raise MalformedDocumentError(f"{where}: no structure")
    try:
        s = Structure.from_dict(structure)
    except Exception as error:
        raise MalformedDocumentError(f"{where}: unreadable structure ({error})") from error
    if not s.is_ordered:
        raise MalformedDocumentError(f"{where}: disordered structure")
    return {
        "numbers": [int(site.specie.Z) for site in s],
        "positions": np.asarray(s.cart_coords, dtype=float).tolist(),
        "cell": np.asarray(s.lattice.matrix, dtype=float).tolist(),
        "formula": s.composition.reduced_formula,
    }


def _thermo_entry_run_type(key: str, entry: dict[str, Any]) -> str | None:
    candidates = [key, (entry.get("parameters") or {}).get("run_type"), (entry.get("data") or {}).get("run_type")]
    entry_id = str(entry.get("entry_id") or "")
    if "-" in entry_id:
        candidates.append(entry_id.rsplit("-", 1)[-1])
    for label in candidates:
        run_type = normalise_run_type(label)
        if run_type is not None:
            return run_type
    return None


def records_from_thermo_doc(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of every entry of one ThermoDoc, and the run types that were skipped.

    The entry's own run type is kept (a ``GGA_GGA+U`` document holds either a ``GGA`` or a
    ``GGA+U`` entry). Energies are the entry's uncorrected energy.

    Raises:
        MalformedDocumentError: if an entry has no structure or energy.
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    material_id = str(doc["material_id"])
    entries = doc.get("entries")
    if not isinstance(entries, dict):
        raise MalformedDocumentError(f"thermo doc {material_id}: no 'entries'")
    records, skipped = [], []
    for key, entry in sorted(entries.items()):
        where = f"thermo doc {material_id} entry {key}"
        if not isinstance(entry, dict):
            raise MalformedDocumentError(f"{where}: not an object")
        run_type = _thermo_entry_run_type(key, entry)
        if run_type is None:
            skipped.append(str(key))
            continue
        try:
            parsed = ComputedStructureEntry.from_dict(entry)
        except Exception as error:
            raise MalformedDocumentError(f"{where}: unreadable entry ({error})") from error
        arrays = _structure_arrays(parsed.structure.as_dict(), where)
        task_id = (entry.get("data") or {}).get("task_id")
        records.append(
            {
                "record_id": f"thermo:{material_id}:{run_type}",
                "material_id": material_id,
                "task_id": None if task_id is None else str(task_id),
                "run_type": run_type,
                "fidelity": fidelity_from_functional(run_type),
                "route": THERMO_ROUTE,
                "thermo_type": str(doc.get("thermo_type")),
                "energy": float(parsed.uncorrected_energy),
                "correction": float(parsed.correction),
                **arrays,
            }
        )
    return records, skipped


def record_from_task_doc(doc: dict[str, Any], material_id: str | None) -> dict[str, Any] | None:
    """The record of a task's final structure and total energy, or ``None`` for an unused run type.

    Raises:
        MalformedDocumentError: if the task has no energy or structure.
    """
    task_id = str(doc["task_id"])
    run_type = normalise_run_type(doc.get("run_type"))
    if run_type is None:
        return None
    output = doc.get("output") or {}
    energy = output.get("energy")
    if energy is None:
        raise MalformedDocumentError(f"task {task_id}: no output.energy")
    structure = output.get("structure") or doc.get("structure")
    arrays = _structure_arrays(structure, f"task {task_id}")
    return {
        "record_id": f"task:{task_id}",
        "material_id": material_id,
        "task_id": task_id,
        "run_type": run_type,
        "fidelity": fidelity_from_functional(run_type),
        "route": TASKS_ROUTE,
        "task_type": None if doc.get("task_type") is None else str(doc.get("task_type")),
        "energy": float(energy),
        "correction": None,
        **arrays,
    }


def record_to_frame(record: dict[str, Any]) -> Frame:
    """A ``Frame`` (with shard ids in ``info``) from a record."""
    return Frame(
        numbers=record["numbers"],
        positions=record["positions"],
        cell=record["cell"],
        pbc=[True, True, True],
        fidelity=record["fidelity"],
        energy=record["energy"],
        info={
            "frame_id": record["record_id"],
            "material_id": record.get("material_id"),
            "task_id": record.get("task_id"),
            "source": f"mp-api:{record['route']}",
            "functional": record["run_type"],
        },
    )
