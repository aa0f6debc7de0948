"""Reference (competing) phases: bundled elemental ground states, user structures, Materials Project entries.

Only structures are taken from any source; their energies are always recomputed by the model at the
fidelity being screened, so every hull is self-consistent.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import ase.io

from universal_mfp.data.frame import Frame, as_frame, frame_from_atoms
from universal_mfp.data.structure_files import ID_KEY, unique_ids
from universal_mfp.fidelity import PBE, R2SCAN
from universal_mfp.mp_conventions import mp_run_types

logger = logging.getLogger(__name__)

BUNDLED_FILE = "elemental_references.extxyz"
# which bundled ground state each fidelity prefers; the PBE ground state is the fallback for every fidelity
PREFERRED_STRUCTURE_FUNCTIONAL = {R2SCAN: "r2SCAN", PBE: "PBE"}
FALLBACK_STRUCTURE_FUNCTIONAL = "PBE"
SOURCE_KEY = "reference_source"  # Frame.info key naming where a reference came from


@cache
def _bundled_frames() -> tuple[Frame, ...]:
    path = resources.files("universal_mfp.hull") / "data" / BUNDLED_FILE
    with resources.as_file(path) as file:
        return tuple(frame_from_atoms(atoms) for atoms in ase.io.read(file, index=":", format="extxyz"))


def bundled_elements(fidelity: str) -> list[str]:
    """Elements with a bundled elemental reference structure usable at ``fidelity``."""
    return sorted(_select_bundled(fidelity))


def _select_bundled(fidelity: str) -> dict[str, Frame]:
    preferred = PREFERRED_STRUCTURE_FUNCTIONAL.get(fidelity, FALLBACK_STRUCTURE_FUNCTIONAL)
    chosen: dict[str, Frame] = {}
    for functional in (FALLBACK_STRUCTURE_FUNCTIONAL, preferred):
        for frame in _bundled_frames():
            if frame.info["structure_functional"] == functional:
                chosen[frame.symbols[0]] = frame
    return chosen


def bundled_elemental_references(fidelity: str, elements: Iterable[str] | None = None) -> list[Frame]:
    """Bundled elemental ground-state structures (MatPES, see ``hull/data/README.md``) for ``fidelity``.

    At ``r2scan`` the r2SCAN ground state is used where bundled, else the PBE one; other fidelities use the
    PBE ground state. Each frame has ``info["id"] = "elemental-ref:<element>-<functional>"``.

    Args:
        fidelity: the fidelity the references will be evaluated at (selects the structure).
        elements: restrict to these element symbols (all bundled elements when ``None``).

    Raises:
        ValueError: if some requested elements have no bundled reference, naming them.
    """
    chosen = _select_bundled(fidelity)
    wanted = sorted(chosen) if elements is None else sorted(set(elements))
    missing = [el for el in wanted if el not in chosen]
    if missing:
        raise ValueError(
            f"no bundled elemental reference structure for element(s) {missing}; "
            "supply reference structures for them (e.g. --references)"
        )
    frames = []
    for element in wanted:
        frame = chosen[element]
        info = {**frame.info, ID_KEY: f"elemental-ref:{frame.info['ref_id']}", SOURCE_KEY: "bundled"}
        frames.append(frame.replace(info=info))
    return frames


def user_references(structures: Iterable[Any]) -> list[Frame]:
    """User-supplied reference structures (ASE ``Atoms``, pymatgen ``Structure`` or ``Frame``) as frames.

    Existing ``info["id"]`` values are kept (prefixed ``ref:``); others become ``ref:<index>``.
    """
    frames = []
    for k, structure in enumerate(structures):
        frame = as_frame(structure)
        name = frame.info.get(ID_KEY)
        frames.append(frame.replace(info={**frame.info, ID_KEY: f"ref:{name or k}", SOURCE_KEY: "user"}))
    return unique_ids(frames)


def _run_type_of(entry: Any) -> str | None:
    parameters = getattr(entry, "parameters", None) or {}
    run_type = parameters.get("run_type")
    if run_type:
        return str(run_type).upper()
    entry_id = str(getattr(entry, "entry_id", "") or "")
    for candidate in ("R2SCAN", "GGA+U", "GGA"):
        if entry_id.upper().endswith(f"-{candidate}"):
            return candidate
    return None


def materials_project_references(
    entries: Sequence[Any],
    *,
    fidelity: str,
    run_types: Collection[str] | None = None,
) -> list[Frame]:
    """Reference structures from Materials Project entries (e.g. ``ComputedStructureEntry`` from a thermo pull).

    Only the structures are used (the model recomputes the energies). Entries are kept when their run type
    (``entry.parameters["run_type"]`` or the ``-R2SCAN``/``-GGA``/``-GGA+U`` suffix of ``entry_id``) is one of
    ``run_types`` (default: ``R2SCAN`` at the ``r2scan`` fidelity, ``GGA``/``GGA+U`` at ``pbe``); entries of
    other run types are skipped. The MP energy per atom is kept in ``info["mp_energy_per_atom"]`` for
    comparison only.

    Args:
        entries: objects with a ``structure`` (``ComputedStructureEntry``), or bare pymatgen ``Structure``s,
            which are taken as they are.
        fidelity: the fidelity the references will be evaluated at.
        run_types: MP run types to accept; ``None`` for the default of ``fidelity``.

    Raises:
        ValueError: if an entry's run type cannot be determined, or no accepted run type is known for
            ``fidelity``.
    """
    if run_types is None:
        run_types = mp_run_types(fidelity)
        if not run_types:
            raise ValueError(f"no default Materials Project run types for fidelity {fidelity!r}; pass run_types=")
    accepted = {r.upper() for r in run_types}
    frames, skipped = [], 0
    for k, entry in enumerate(entries):
        structure = getattr(entry, "structure", None)
        if structure is None:
            frames.append(as_frame(entry).replace(info={ID_KEY: f"mp:{k}", SOURCE_KEY: "materials_project"}))
            continue
        run_type = _run_type_of(entry)
        if run_type is None:
            raise ValueError(
                f"Materials Project entry {getattr(entry, 'entry_id', k)!r} has no run type (parameters['run_type'] "
                "or an entry_id ending in -R2SCAN/-GGA/-GGA+U); pass run_types= explicitly or plain structures"
            )
        if run_type not in accepted:
            skipped += 1
            continue
        info = {
            ID_KEY: f"mp:{getattr(entry, 'entry_id', None) or k}",
            SOURCE_KEY: "materials_project",
            "mp_run_type": run_type,
            "mp_energy_per_atom": float(entry.energy_per_atom),
        }
        frames.append(as_frame(structure).replace(info=info))
    if skipped:
        logger.info("skipped %d Materials Project entries with run types other than %s", skipped, sorted(accepted))
    return unique_ids(frames)


def load_mp_entries(path: str) -> list[Any]:
    """Load Materials Project entries serialised as JSON (a list of ``ComputedStructureEntry.as_dict()``).

    Reads JSON through ``monty`` (``MontyDecoder``); no pickles.
    """
    from monty.serialization import loadfn

    data = loadfn(path)
    if isinstance(data, dict):
        data = data.get("entries", [data])
    return list(data)
