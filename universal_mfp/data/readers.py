"""Read labelled frames from extxyz files and parquet shards, assigning each frame a fidelity."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ase.io import read as ase_read

from universal_mfp.data.frame import Frame, frame_from_atoms
from universal_mfp.fidelity import fidelity_from_functional, validate_fidelity_name

logger = logging.getLogger(__name__)

# info keys that name a frame's level of theory, in the order they are consulted
FUNCTIONAL_INFO_KEYS = ("functional", "run_type")


def read_extxyz(
    path: str | Path,
    *,
    fidelity: str | None = None,
    fidelity_map: Mapping[str, str] | None = None,
) -> list[Frame]:
    """Read every frame of an extxyz file with its labels (energy, forces, stress where present).

    Each frame's fidelity is ``fidelity`` when given, else derived from ``info["functional"]`` (or
    ``info["run_type"]``) through ``fidelity_map`` and the built-in names (``PBE``/``GGA``/``GGA+U``
    -> ``pbe``, ``r2SCAN`` -> ``r2scan``).

    Raises:
        ValueError: if a frame's fidelity cannot be determined, naming the frame.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such extxyz file: {path}")
    if fidelity is not None:
        validate_fidelity_name(fidelity)
    frames = []
    for index, atoms in enumerate(ase_read(path, index=":", format="extxyz")):
        frame_fidelity = fidelity
        if frame_fidelity is None:
            label = next((atoms.info[k] for k in FUNCTIONAL_INFO_KEYS if atoms.info.get(k)), None)
            if label is None:
                raise ValueError(
                    f"{path.name} frame {index}: no info['functional'] or info['run_type']; "
                    "pass fidelity= for the whole file"
                )
            try:
                frame_fidelity = fidelity_from_functional(str(label), fidelity_map)
            except ValueError as error:
                raise ValueError(f"{path.name} frame {index}: {error}") from error
        frame = frame_from_atoms(atoms, fidelity=frame_fidelity, with_labels=True)
        info = dict(frame.info)
        info.setdefault("source", path.name)
        info.setdefault("frame_id", f"{path.stem}:{index}")
        for key in FUNCTIONAL_INFO_KEYS:
            if atoms.info.get(key):
                info.setdefault("functional", str(atoms.info[key]))
                break
        material_id = info.get("material_id") or info.get("mp_id") or info.get("entry_id")
        if material_id is not None:
            info.setdefault("material_id", str(material_id))
        frames.append(frame.replace(info=info))
    logger.info("read %d frames from %s", len(frames), path)
    return frames


def read_frames(
    path: str | Path,
    *,
    fidelity: str | None = None,
    fidelity_map: Mapping[str, str] | None = None,
) -> list[Frame]:
    """Read labelled frames from a file or folder: extxyz, parquet shards, CIF, POSCAR, pymatgen JSON.

    extxyz frames keep their labels and take their fidelity from ``info["functional"]``; shards carry
    theirs; the other formats go through the one structure reader (``data.structure_files``), where only a
    ``ComputedStructureEntry`` has a label (its uncorrected energy, fidelity from its run type). A folder is
    read as its parquet shards when it has any, else as every structure file in it. ``fidelity`` overrides
    every frame's fidelity; ``fidelity_map`` maps functional and run-type labels to fidelities.

    Raises:
        FileNotFoundError: for a missing path, or a folder without shards or structure files.
        ValueError: for an unsupported format, or a frame whose fidelity cannot be determined (named).
    """
    from universal_mfp.data.structure_files import read_structure_file, structure_files

    path = Path(path)
    if fidelity is not None:
        validate_fidelity_name(fidelity)
    if path.suffix in (".extxyz", ".xyz") and not path.is_dir():
        return read_extxyz(path, fidelity=fidelity, fidelity_map=fidelity_map)
    if path.is_dir() and any(path.glob("*.parquet")):
        files = sorted(path.glob("*.parquet"))
    elif path.is_dir():
        files = structure_files([path])
    elif path.exists():
        files = [path]
    else:
        raise FileNotFoundError(f"no such data file or folder: {path}")
    frames = []
    for file in files:
        if file.suffix in (".extxyz", ".xyz"):
            frames.extend(read_extxyz(file, fidelity=fidelity, fidelity_map=fidelity_map))
            continue
        for frame in read_structure_file(file):
            chosen = fidelity or frame.fidelity
            if chosen is None:
                label = frame.info.get("functional")
                if not label:
                    raise ValueError(f"{file} ({frame.info.get('id')}): no fidelity; pass one for this source")
                chosen = fidelity_from_functional(str(label), fidelity_map)
            frames.append(frame.replace(fidelity=chosen))
    return frames
