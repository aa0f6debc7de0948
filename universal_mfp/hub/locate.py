"""Find a checkpoint folder by local path, registered name (bundled or pinned Hub files) or Hub id.

``hub`` finds, checks and stores checkpoints; building a model for prediction from what it finds is
``universal_mfp.models.load_model``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import CHECKPOINT_FILES
from universal_mfp.hub.download import ChecksumMismatchError, fetch_files
from universal_mfp.hub.registry import RegistryEntry, is_hub_repo_id, load_registry, pretrained_root

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocatedCheckpoint:
    """A checkpoint folder on this machine, where it came from, and its registry entry (if registered)."""

    folder: Path
    source: dict[str, Any]
    entry: RegistryEntry | None = None


def available_models(registry: str | Path | None = None) -> list[str]:
    """Names of the registered models (aliases are listed by ``umfp models``)."""
    return sorted(load_registry(registry).entries)


def _verify_folder(folder: Path, sha256: dict[str, str], name: str) -> None:
    for filename, expected in sha256.items():
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"bundled checkpoint {name!r}: {path} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumMismatchError(f"bundled checkpoint {name!r}: {path} has sha256 {actual}, expected {expected}")


def _locate_registered(
    entry: RegistryEntry, revision: str | None, cache_dir: str | Path | None
) -> tuple[Path, dict[str, Any]]:
    if revision is not None and revision != entry.revision:
        raise ValueError(
            f"registered model {entry.name!r} is pinned to revision {entry.revision}; to load another revision, "
            f"load the Hub id {entry.repo_id!r} with revision=..."
        )
    if entry.bundled_path is not None:
        folder = pretrained_root() / entry.bundled_path
        if folder.is_dir():
            _verify_folder(folder, entry.files, entry.name)
            return folder, {"kind": "bundled", "name": entry.name, "path": str(folder)}
        if entry.repo_id is None:
            raise FileNotFoundError(
                f"model {entry.name!r} is registered as bundled at {folder}, but those files are not installed "
                "and the entry has no Hub repo_id to download from"
            )
        logger.info("bundled files of %s are absent; downloading from %s", entry.name, entry.repo_id)
    if entry.repo_id is None or entry.revision is None:  # guaranteed by registry validation
        raise ValueError(f"registry entry {entry.name!r} has no location")
    folder = fetch_files(entry.repo_id, entry.revision, list(entry.files), sha256=entry.files, cache_dir=cache_dir)
    return folder, {"kind": "hub", "name": entry.name, "repo_id": entry.repo_id, "revision": entry.revision}


def locate_checkpoint(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    registry: str | Path | None = None,
) -> LocatedCheckpoint:
    """The checkpoint folder for a folder, a registered name or alias, or an ``owner/name`` Hub id.

    Registered files are checked against their sha256 (bundled) or downloaded pinned to them (Hub).

    Raises:
        ValueError: for an unknown name (listing the available ones) or a revision that does not apply.
        ChecksumMismatchError: if a registered file does not match its sha256 (after one re-download).
        ModelDownloadError: if the files can be neither downloaded nor found in the cache.
        FileNotFoundError: if a registered bundled checkpoint is not installed and cannot be downloaded.
    """
    text = str(name_or_path)
    local = Path(text).expanduser()
    entry: RegistryEntry | None = None
    if local.exists():
        if revision is not None:
            raise ValueError(f"revision={revision!r} only applies to Hub models, not the local folder {local}")
        folder, source = local, {"kind": "local", "path": str(local.resolve())}
    else:
        table = load_registry(registry)
        entry = table.get(text)
        if entry is not None:
            folder, source = _locate_registered(entry, revision, cache_dir)
        elif is_hub_repo_id(text):
            rev = revision or "main"
            folder = fetch_files(text, rev, CHECKPOINT_FILES, cache_dir=cache_dir)
            source = {"kind": "hub", "repo_id": text, "revision": rev, "commit": folder.name}
            logger.info("loaded %s@%s without pinned sha256 (not a registered model)", text, rev)
        else:
            raise table.unknown_name_error(text)
    return LocatedCheckpoint(folder=folder, source=source, entry=entry)
