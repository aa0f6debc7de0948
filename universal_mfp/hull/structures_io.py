"""Read candidate or reference structures from CIF, POSCAR/CONTCAR/``*.vasp`` and extxyz files, with ids."""

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
# info keys that may carry an id in an extxyz frame, in the order they are consulted
EXTXYZ_ID_KEYS = ("id", "material_id", "mp_id", "task_id", "entry_id", "matpes_id")


def _is_structure_file(path: Path) -> bool:
    name = path.name
    return path.suffix.lower() in EXTXYZ_SUFFIXES + CIF_SUFFIXES + VASP_SUFFIXES or any(
        name.startswith(prefix) for prefix in VASP_NAMES
    )


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


def read_structure_file(path: str | Path) -> list[Frame]:
    """Read every structure of one CIF, POSCAR/CONTCAR/``*.vasp`` or extxyz file, each with ``info["id"]``.

    Ids are the file stem for single-structure files (``<folder>/POSCAR`` for POSCAR/CONTCAR), the
    ``id``/``material_id``/``mp_id``/``task_id``/``entry_id``/``matpes_id`` info of extxyz frames when
    present, else ``<stem>:<index>``.

    Raises:
        ValueError: for an unsupported file type or a disordered CIF.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in EXTXYZ_SUFFIXES:
        return _read_extxyz(path)
    if suffix in CIF_SUFFIXES:
        return _read_cif(path)
    if suffix in VASP_SUFFIXES or any(path.name.startswith(prefix) for prefix in VASP_NAMES):
        return _read_vasp(path)
    raise ValueError(f"{path}: unsupported structure file (use .cif, POSCAR/CONTCAR/.vasp, .extxyz or .xyz)")


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
                raise FileNotFoundError(f"{path}: no .cif, POSCAR/CONTCAR/.vasp, .extxyz or .xyz files in this folder")
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
