"""The one reader for structure files: extxyz, CIF, POSCAR/CONTCAR/``*.vasp``, pymatgen JSON and parquet shards.

``umfp predict``, ``umfp screen``, training and fine-tuning all read through ``read_structure_file`` (training
and fine-tuning via ``data.readers.read_frames``, which adds fidelities). Every frame gets an ``info["id"]``.
Labels are kept where the file has them: extxyz energies, forces and stresses, shard labels, and the
uncorrected energy of a pymatgen ``ComputedStructureEntry`` (its run type becomes ``info["functional"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ase.io

from universal_mfp.data.frame import Frame, as_frame, frame_from_atoms

logger = logging.getLogger(__name__)

ID_KEY = "id"  # Frame.info key holding a structure's id
EXTXYZ_SUFFIXES = (".extxyz", ".xyz")
CIF_SUFFIXES = (".cif", ".mcif")
VASP_NAMES = ("POSCAR", "CONTCAR")
VASP_SUFFIXES = (".vasp", ".poscar")
JSON_SUFFIXES = (".json",)
SHARD_SUFFIXES = (".parquet",)
SUPPORTED = ".extxyz, .xyz, .cif, POSCAR/CONTCAR/.vasp, pymatgen .json or .parquet shards"
# info keys that may carry an id in an extxyz frame, in the order they are consulted
EXTXYZ_ID_KEYS = ("id", "material_id", "mp_id", "task_id", "entry_id", "matpes_id")


def _is_structure_file(path: Path) -> bool:
    name = path.name
    suffixes = EXTXYZ_SUFFIXES + CIF_SUFFIXES + VASP_SUFFIXES + JSON_SUFFIXES + SHARD_SUFFIXES
    return path.suffix.lower() in suffixes or any(name.startswith(prefix) for prefix in VASP_NAMES)


def _read_cif(path: Path) -> list[Frame]:
    from pymatgen.io.cif import CifParser

    structures = CifParser(path).parse_structures(primitive=False)
    frames = [as_frame(s) for s in structures]
    if len(frames) == 1:
        return [frames[0].replace(info={ID_KEY: path.stem})]
    return [f.replace(info={ID_KEY: f"{path.stem}:{k}"}) for k, f in enumerate(frames)]


def _read_vasp(path: Path) -> list[Frame]:
    frame = frame_from_atoms(ase.io.read(path, format="vasp"))
    name = f"{path.parent.name}/{path.name}" if path.name in VASP_NAMES and path.parent.name else path.stem
    return [frame.replace(info={ID_KEY: name})]


def _read_extxyz(path: Path) -> list[Frame]:
    frames = []
    for k, atoms in enumerate(ase.io.read(path, index=":", format="extxyz")):
        frame = frame_from_atoms(atoms)
        label = next((atoms.info[key] for key in EXTXYZ_ID_KEYS if atoms.info.get(key) not in (None, "")), None)
        info = dict(frame.info)
        info[ID_KEY] = str(label) if label is not None else f"{path.stem}:{k}"
        frames.append(frame.replace(info=info))
    return frames


def _read_json(path: Path) -> list[Frame]:
    """Pymatgen JSON: a ``Structure`` or ``ComputedStructureEntry`` (``as_dict()``), or a list of them."""
    import json

    from monty.json import MontyDecoder
    from pymatgen.core import Structure
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    try:
        data = json.loads(path.read_text(encoding="utf-8"), cls=MontyDecoder)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a JSON file ({error})") from error
    items = data if isinstance(data, list) else [data]
    frames = []
    for k, item in enumerate(items):
        label = f"{path.stem}:{k}" if len(items) > 1 else path.stem
        if isinstance(item, ComputedStructureEntry):
            frame = as_frame(item.structure).replace(energy=float(item.uncorrected_energy))
            info = {ID_KEY: str(item.entry_id or label)}
            run_type = (item.parameters or {}).get("run_type")
            if run_type:
                info["functional"] = str(run_type)
            frames.append(frame.replace(info=info))
        elif isinstance(item, Structure):
            frames.append(as_frame(item).replace(info={ID_KEY: label}))
        else:
            raise ValueError(
                f"{path}: item {k} is a {type(item).__name__}, not a pymatgen Structure or ComputedStructureEntry"
            )
    return frames


def _read_shard(path: Path) -> list[Frame]:
    from universal_mfp.data.shards import read_shard

    frames = []
    for k, frame in enumerate(read_shard(path)):
        name = frame.info.get(ID_KEY) or frame.info.get("frame_id") or f"{path.stem}:{k}"
        frames.append(frame.replace(info={**frame.info, ID_KEY: str(name)}))
    return frames


def read_structure_file(path: str | Path) -> list[Frame]:
    """Read every structure of one file (extxyz, CIF, POSCAR/CONTCAR/``*.vasp``, pymatgen JSON, parquet shard).

    Each gets an ``info["id"]``: the file stem for single-structure files (``<folder>/POSCAR`` for
    POSCAR/CONTCAR), the ``id``/``material_id``/``mp_id``/``task_id``/``entry_id``/``matpes_id`` info of extxyz
    frames, an entry's ``entry_id``, a shard frame's ``frame_id``, else ``<stem>:<index>``.

    Raises:
        ValueError: for an unsupported file type, a disordered CIF or a JSON that is not pymatgen's.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in EXTXYZ_SUFFIXES:
        return _read_extxyz(path)
    if suffix in CIF_SUFFIXES:
        return _read_cif(path)
    if suffix in JSON_SUFFIXES:
        return _read_json(path)
    if suffix in SHARD_SUFFIXES:
        return _read_shard(path)
    if suffix in VASP_SUFFIXES or any(path.name.startswith(prefix) for prefix in VASP_NAMES):
        return _read_vasp(path)
    raise ValueError(f"{path}: unsupported structure file (use {SUPPORTED})")


def unique_ids(frames: Sequence[Frame]) -> list[Frame]:
    """Return frames whose ``info["id"]`` are unique, suffixing repeats with ``#2``, ``#3``..."""
    seen: dict[str, int] = {}
    out = []
    for frame in frames:
        base = str(frame.info.get(ID_KEY) or f"structure:{len(out)}")
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        out.append(frame if name == frame.info.get(ID_KEY) else frame.replace(info={**frame.info, ID_KEY: name}))
    return out


def structure_files(paths: Iterable[str | Path]) -> list[Path]:
    """The structure files named by ``paths``: files as given, folders expanded (recursively, sorted).

    Raises:
        FileNotFoundError: for a path that does not exist or a folder without structure files.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_structure_file(p))
            if not found:
                raise FileNotFoundError(f"{path}: no structure files ({SUPPORTED}) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such structure file or folder: {path}")
    return files


def read_structures_by_file(paths: Iterable[str | Path]) -> list[tuple[Path, list[Frame]]]:
    """Each structure file of ``paths`` (see ``structure_files``) with its structures.

    Raises:
        FileNotFoundError: for a missing path or a folder without structure files.
        ValueError: for an unsupported or unreadable file, or a file that holds no structure (named).
    """
    out = []
    for path in structure_files(paths):
        try:
            frames = read_structure_file(path)
        except ValueError:
            raise
        except Exception as error:  # a parser's own error on a malformed file: name the file, no traceback
            raise ValueError(f"{path}: cannot read structures ({type(error).__name__}: {error})") from error
        if not frames:
            raise ValueError(f"{path}: the file holds no structures")
        out.append((path, frames))
    return out


def read_structures(paths: Iterable[str | Path]) -> list[Frame]:
    """Read structures from files and folders (folders: every supported file inside, recursively, sorted).

    Raises:
        FileNotFoundError: for a path that does not exist or a folder without structure files.
        ValueError: for an unsupported, unreadable or empty file.
    """
    frames = [frame for _, file_frames in read_structures_by_file(paths) for frame in file_frames]
    logger.info("read %d structures", len(frames))
    return unique_ids(frames)


def with_ids(structures: Iterable[Any], prefix: str) -> list[Frame]:
    """Convert structures (ASE ``Atoms``, pymatgen ``Structure``, ``Frame``) to frames with unique ids.

    An existing ``info["id"]`` (ASE ``Atoms.info`` or ``Frame.info``) is kept; others get ``<prefix>:<index>``.
    """
    frames = []
    for k, structure in enumerate(structures):
        frame = as_frame(structure)
        if not frame.info.get(ID_KEY):
            frame = frame.replace(info={**frame.info, ID_KEY: f"{prefix}:{k}"})
        frames.append(frame)
    return unique_ids(frames)
