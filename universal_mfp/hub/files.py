"""File helpers for checkpoints and downloads: sha256 digests and atomic folder writes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 digest of a file (symlinks are followed)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


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
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
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
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
