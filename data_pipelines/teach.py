"""Label structures with teachers: every structure by every teacher, each teacher a fidelity, in shards.

``teach`` reads the generated structure shards (``generate``), asks each teacher (``teachers``) for energy,
forces and stress, and writes one parquet shard per input shard (``labels-00012.parquet``) whose rows come
in pairs: the same structure at each teacher fidelity, adjacent. A structure on which any teacher fails
(an exception, a NaN or inf, an energy-scale conversion that does not apply) is recorded in the shard's
record and left out, so every structure in the output is an exact pair and no label is ever non-finite.

Each row carries its teacher's provenance (spec, version, sha256 of the weights, license, energy scale)
and its split, computed by the project's one rule from its composition group: all frames of one
composition (and both fidelities of one structure) share a split.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ase import Atoms
from universal_mfp_pipelines.shard_runner import (
    is_done,
    parse_part,
    pending_shards,
    record_path,
    run_shards,
    shard_stem,
    write_manifest,
)
from universal_mfp_pipelines.splits import DEFAULT_FRACTIONS, assign_split, validate_fractions

from universal_mfp.data.coverage import TEACHER_SOURCE_PREFIX
from universal_mfp.data.frame import Frame
from universal_mfp.data.shards import write_shard
from universal_mfp.files import atomic_write_json, sha256_file

logger = logging.getLogger(__name__)

PREFIX = "labels"
SUFFIX = ".parquet"
SETTINGS = "teach.json"
INPUT_PREFIX = "structures"
INPUT_SUFFIX = ".extxyz"
# generation provenance copied from a structure to its labelled rows
_CARRIED_INFO = ("job_id", "config_type", "composition_group", "prototype", "job_kind", "md_temperature")


@functools.cache
def _teacher(spec: str) -> Any:
    from universal_mfp_pipelines.teachers import load_teacher

    return load_teacher(spec)


def composition_group(atoms: Atoms) -> str:
    """The split group of a structure: its ``info["composition_group"]``, else its reduced formula."""
    from pymatgen.core import Composition

    group = atoms.info.get("composition_group")
    return str(group) if group else Composition(atoms.get_chemical_formula()).reduced_formula


def label_structures(
    structures: Sequence[Atoms],
    teachers: Sequence[tuple[str, Any]],
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> tuple[list[Frame], list[dict[str, str]]]:
    """Label every structure with every teacher; return (frames in pairs, failures).

    Args:
        structures: structures with ``info["frame_id"]`` (unique) and optionally ``composition_group``.
        teachers: (fidelity, teacher) pairs; a teacher has ``label(atoms)`` and ``provenance``.
        fractions: train/val/test fractions of the composition-group split.
        seed: split seed.
    """
    from universal_mfp_pipelines.teachers import TeacherError

    fractions = validate_fractions(fractions)
    frames: list[Frame] = []
    failures: list[dict[str, str]] = []
    for index, atoms in enumerate(structures):
        structure_id = str(atoms.info.get("frame_id") or f"structure-{index}")
        group = composition_group(atoms)
        split = assign_split(f"composition_group:{group}", fractions, seed)
        rows = []
        for fidelity, teacher in teachers:
            try:
                label = teacher.label(atoms)
            except TeacherError as error:
                failures.append({"structure_id": structure_id, "fidelity": fidelity, "error": str(error)})
                rows = None
                break
            info: dict[str, Any] = {k: atoms.info[k] for k in _CARRIED_INFO if k in atoms.info}
            info.update(teacher.provenance.as_info())
            info.update(
                {
                    "frame_id": f"{structure_id}:{fidelity}",
                    "structure_id": structure_id,
                    "source": f"{TEACHER_SOURCE_PREFIX}{teacher.provenance.spec}",
                    "composition_group": group,
                    "split": split,
                }
            )
            rows.append(
                Frame(
                    numbers=atoms.numbers,
                    positions=atoms.positions,
                    cell=atoms.cell.array,
                    pbc=atoms.pbc,
                    fidelity=fidelity,
                    energy=label.energy,
                    forces=label.forces,
                    stress=label.stress,
                    info=info,
                )
            )
        if rows:
            frames.extend(rows)
    return frames, failures


def _input_shards(structures_dir: Path) -> list[int]:
    """Indices of the finished generation shards in ``structures_dir``."""
    indices = []
    for path in sorted(structures_dir.glob(f"{INPUT_PREFIX}-*{INPUT_SUFFIX}")):
        index = int(path.stem.rsplit("-", 1)[1])
        if is_done(structures_dir, INPUT_PREFIX, index, INPUT_SUFFIX):
            indices.append(index)
    return indices


def _input_changed(structures_dir: Path, out_dir: Path, index: int) -> bool:
    """Whether a labelled shard was made from other structures than its input shard now holds (then redo it)."""
    record = json.loads(record_path(out_dir, PREFIX, index).read_text())
    source = structures_dir / f"{shard_stem(INPUT_PREFIX, index)}{INPUT_SUFFIX}"
    return record.get("input_sha256") != sha256_file(source)


def teach_shard(
    index: int,
    *,
    structures_dir: Path,
    out_dir: Path,
    teacher_specs: Sequence[tuple[str, str]],
    fractions: Sequence[float],
    seed: int,
) -> dict[str, Any]:
    """Label input shard ``index``; write its parquet shard, then its record; return the record."""
    from ase.io import read

    start = time.perf_counter()
    source = structures_dir / f"{shard_stem(INPUT_PREFIX, index)}{INPUT_SUFFIX}"
    structures = read(source, ":", format="extxyz") if source.stat().st_size else []
    teachers = [(fidelity, _teacher(spec)) for fidelity, spec in teacher_specs]
    frames, failures = label_structures(structures, teachers, fractions=fractions, seed=seed)
    name = f"{shard_stem(PREFIX, index)}{SUFFIX}"
    write_shard(frames, out_dir / name, overwrite=True)
    fidelities = [f for f, _ in teacher_specs]
    record = {
        "file": name,
        "shard": index,
        "input": source.name,
        "input_sha256": sha256_file(source),
        "structures": len(structures),
        "labelled_structures": len(frames) // max(len(fidelities), 1),
        "rows": len(frames),
        "failed": failures,
        "by_split": dict(Counter(str(f.info["split"]) for f in frames[:: max(len(fidelities), 1)])),
        "by_config_type": dict(Counter(str(f.info.get("config_type")) for f in frames[:: max(len(fidelities), 1)])),
        "sha256": sha256_file(out_dir / name),
        "bytes": (out_dir / name).stat().st_size,
        "seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_json(record_path(out_dir, PREFIX, index), record)
    return record


def _settings(teacher_specs: Sequence[tuple[str, str]], fractions: Sequence[float], seed: int) -> dict[str, Any]:
    provenance = {fidelity: asdict(_teacher(spec).provenance) for fidelity, spec in teacher_specs}
    return {
        "teachers": provenance,
        "split": {"by": "composition_group", "fractions": list(fractions), "seed": seed},
    }


def _check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    path = out_dir / SETTINGS
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != settings:
            raise ValueError(
                f"{out_dir} was labelled with other teachers or splits ({path}); use another folder or the same "
                f"teachers: stored {json.dumps(stored['teachers'], sort_keys=True)[:400]}"
            )
    else:
        atomic_write_json(path, settings)


def teach(
    structures_dir: str | Path,
    out_dir: str | Path,
    teacher_specs: Sequence[tuple[str, str]],
    *,
    workers: int = 1,
    part: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    max_shards: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Label the finished generation shards of ``structures_dir`` that ``out_dir`` lacks; return the manifest.

    Raises:
        ValueError: if ``out_dir`` was labelled with other teachers (weights) or another split.
        FileNotFoundError: if ``structures_dir`` holds no finished generation shard.
    """
    structures_dir, out_dir = Path(structures_dir), Path(out_dir)
    fractions = validate_fractions(fractions)
    available = _input_shards(structures_dir)
    if not available:
        raise FileNotFoundError(f"no finished structure shards in {structures_dir}: run 'umfp data generate' first")
    settings = _settings(teacher_specs, fractions, seed)  # loads the teachers: a bad spec fails before any write
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(out_dir, settings)
    i, n = parse_part(part)
    pending = set(pending_shards(out_dir, PREFIX, SUFFIX, max(available) + 1, (i, n)))
    todo = [k for k in available if k % n == i and (k in pending or _input_changed(structures_dir, out_dir, k))]
    if max_shards is not None:
        todo = todo[:max_shards]
    logger.info("teach: %d structure shards ready, %d to label in this part", len(available), len(todo))
    work = functools.partial(
        teach_shard,
        structures_dir=structures_dir,
        out_dir=out_dir,
        teacher_specs=tuple(teacher_specs),
        fractions=tuple(fractions),
        seed=seed,
    )
    run_shards(work, todo, workers=workers, progress=progress, desc="teach")
    return write_manifest(out_dir, PREFIX, {"format": "universal_mfp.teacher_labels", **settings})
