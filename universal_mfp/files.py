"""File helpers for every layer: sha256 digests, atomic file and folder writes, staging folders.

The one place for them: checkpoints and downloads (``hub``), dataset shards (``data.shards``), training states
and the data pipelines all write through these, so no reader ever sees a half-written file or folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 digest of a file (symlinks are followed)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed onto ``path``.

    A reader sees either the old file or the complete new one. On any error the temporary file is removed
    and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, flushed, then a rename)."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (sorted keys), atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def staging_folder(target: str | Path) -> Iterator[Path]:
    """Yield a new hidden folder beside ``target``, removed when the block ends, whatever happens.

    It is on the same file system as ``target``, so its files can be renamed into place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_nonempty_dir(path: Path) -> bool:
    """True if ``path`` is a directory with at least one entry."""
    return path.is_dir() and any(path.iterdir())


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` and move it into place when the block succeeds.

    The target is never seen half-written: files are written to a hidden sibling folder that is renamed
    onto ``target`` at the end. On any error the temporary folder is removed and ``target`` is untouched.

    Args:
        target: the folder to create.
        overwrite: replace an existing non-empty ``target``; otherwise that raises ``FileExistsError``.

    Raises:
        FileExistsError: if ``target`` is a non-empty folder and ``overwrite`` is false, or a file.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder")
    if is_nonempty_dir(target) and not overwrite:
        raise FileExistsError(f"{target} exists and is not empty; pass overwrite=True to replace it")
    with staging_folder(target) as staging:
        yield staging
        backup: Path | None = None
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, backup / "old")
        try:
            os.replace(staging, target)
        except OSError:
            if backup is not None:
                os.replace(backup / "old", target)
            raise
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        logger.debug("wrote %s atomically", target)
