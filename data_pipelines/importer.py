"""Import extxyz files (the shared real frames, or a user's own DFT data) into dataset shards."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from universal_mfp_pipelines.build_dataset import write_dataset

from universal_mfp.data.frame import Frame
from universal_mfp.data.readers import FUNCTIONAL_INFO_KEYS, read_extxyz

logger = logging.getLogger(__name__)

# Files of ../shared/data/frames that carry no functional label: MP GGA energies (see MANIFEST.md).
KNOWN_FILE_FIDELITIES: dict[str, str] = {
    "mp_pbe_element_polymorphs.extxyz": "pbe",
    "vasp_Si_old_double_relax_frames.extxyz": "pbe",
}
_FILE_FUNCTIONALS = {"mp_pbe_element_polymorphs.extxyz": "GGA", "vasp_Si_old_double_relax_frames.extxyz": "GGA"}


def extxyz_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted list of ``*.extxyz``/``*.xyz`` files."""
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.suffix in (".extxyz", ".xyz")))
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    if not files:
        raise FileNotFoundError(f"no .extxyz/.xyz files in {[str(p) for p in paths]}")
    return files


def read_extxyz_files(
    paths: Sequence[str | Path],
    *,
    fidelity: str | None = None,
    file_fidelities: Mapping[str, str] | None = None,
    fidelity_map: Mapping[str, str] | None = None,
    progress: bool = False,
) -> list[Frame]:
    """Read frames from extxyz files, with a fidelity for each.

    A file's fidelity comes from, in order: ``file_fidelities[file name]``, ``fidelity``, the
    frames' own ``info["functional"]``/``info["run_type"]``, ``KNOWN_FILE_FIDELITIES``.
    """
    overrides = {**KNOWN_FILE_FIDELITIES, **(file_fidelities or {})}
    frames: list[Frame] = []
    for path in tqdm(extxyz_files(paths), desc="read extxyz", unit="file", disable=not progress):
        chosen = (file_fidelities or {}).get(path.name) or fidelity
        try:
            file_frames = read_extxyz(path, fidelity=chosen, fidelity_map=fidelity_map)
        except ValueError:
            if chosen is not None or path.name not in overrides:
                raise
            file_frames = read_extxyz(path, fidelity=overrides[path.name], fidelity_map=fidelity_map)
        for frame in file_frames:
            info: dict[str, Any] = dict(frame.info)
            if not any(info.get(k) for k in FUNCTIONAL_INFO_KEYS) and path.name in _FILE_FUNCTIONALS:
                info["functional"] = _FILE_FUNCTIONALS[path.name]
            info["source"] = path.name
            frames.append(frame.replace(info=info))
    return frames


def import_extxyz(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    fidelity: str | None = None,
    file_fidelities: Mapping[str, str] | None = None,
    fidelity_map: Mapping[str, str] | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Read extxyz files and write them as dataset shards; keyword arguments go to ``write_dataset``."""
    files = extxyz_files(paths)
    frames = read_extxyz_files(
        files, fidelity=fidelity, file_fidelities=file_fidelities, fidelity_map=fidelity_map, progress=progress
    )
    logger.info("import: %d frames from %d files", len(frames), len(files))
    return write_dataset(frames, out_dir, inputs=[str(p) for p in files], progress=progress, **kwargs)
