"""Per-element energy offsets between a teacher fidelity and the real DFT setup it imitates.

CHGNet r2SCAN learned MP's r2SCAN (PBE_54 PAW datasets, MP settings); the model's ``r2scan`` fidelity is
MatPES' r2SCAN (PBE_64 PAW datasets). On the same elemental crystal the two setups differ by an energy per
atom that depends on the element (a few meV/atom for most, eV/atom for some lanthanides). Those offsets are
measured here: the teacher labels each real elemental ground state of the target setup (MatPES r2SCAN
``matpes_element_refs_r2SCAN.extxyz``), and

    offset[element] = (E_target_DFT - E_teacher) / N_atoms   (eV/atom)

(the median over the element's frames when the file holds several, e.g. MP's GGA polymorphs of each element:
the teacher's own error on one odd polymorph does not become the offset).

The training prior ``r2scan ≈ r2scan_chgnet + Σ offsets`` reads the JSON this writes. Only the frames the
project's split rule puts in *training* are used (the bundled model's seed and fractions), so no validation
or test energy enters the fit; elements whose ground state is held out get none, and the file's
``default_offset`` (the median of the measured offsets) stands in for them.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from universal_mfp.data.readers import read_extxyz
from universal_mfp.data.splits import split_of
from universal_mfp.fidelity import validate_fidelity_name

logger = logging.getLogger(__name__)

OFFSETS_SCHEMA = 1


def teacher_element_offsets(
    frames_file: Path,
    teacher_spec: str,
    *,
    source: str,
    target: str,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 2026,
) -> dict[str, Any]:
    """Measure ``offset[element]`` on the elemental frames of ``frames_file`` that the split rule trains on.

    ``source`` names the teacher's fidelity (``r2scan_chgnet``), ``target`` the real one (``r2scan``).

    Raises:
        ValueError: if the file holds no single-element frame with an energy in the training split.
    """
    from universal_mfp_pipelines.teachers import TeacherError, load_teacher

    validate_fidelity_name(source)
    validate_fidelity_name(target)
    teacher = load_teacher(teacher_spec)
    frames = read_extxyz(frames_file, fidelity=target)
    measured: dict[str, list[float]] = {}
    held_out: list[str] = []
    failed: dict[str, str] = {}
    for frame in frames:
        symbols = set(frame.to_atoms().get_chemical_symbols())
        if len(symbols) != 1 or frame.energy is None:
            continue
        (element,) = symbols
        if split_of(frame, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed) != "train":
            held_out.append(element)
            continue
        try:
            label = teacher.label(frame.to_atoms(), with_stress=False)
        except TeacherError as error:
            failed[element] = str(error)
            continue
        measured.setdefault(element, []).append((float(frame.energy) - label.energy) / frame.num_atoms)
    offsets = {element: round(float(statistics.median(values)), 6) for element, values in measured.items()}
    if not offsets:
        raise ValueError(f"{frames_file}: no elemental frame with an energy in the training split")
    logger.info("offsets for %d elements; %d held out, %d failed", len(offsets), len(held_out), len(failed))
    return {
        "schema": OFFSETS_SCHEMA,
        "source": source,
        "target": target,
        "frames": frames_file.name,
        "split_rule": {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed},
        "teacher": asdict(teacher.provenance),
        "element_offsets": dict(sorted(offsets.items())),
        "frames_per_element": {element: len(values) for element, values in sorted(measured.items())},
        # for elements without a measured offset (held out or missing): the median of the measured ones
        "default_offset": round(float(statistics.median(offsets.values())), 6),
        "held_out_elements": sorted(set(held_out) - set(offsets)),
        "failed": failed,
    }


def write_offsets(table: dict[str, Any], path: Path) -> Path:
    """Write the offsets JSON atomically."""
    from universal_mfp.files import atomic_write_json

    return atomic_write_json(path, table)


def offsets_main(frames_file: Path, teacher: str, output: Path, fidelities: Sequence[str]) -> Path:
    """The ``umfp data offsets`` command: measure and write the offsets."""
    source, target = fidelities
    return write_offsets(teacher_element_offsets(frames_file, teacher, source=source, target=target), output)
