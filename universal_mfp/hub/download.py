"""Download checkpoint files from the Hugging Face Hub into its cache, verified by sha256.

Downloads go through ``huggingface_hub.hf_hub_download``, which writes each file to a process-unique
temporary file and renames it into the cache, so a failed transfer never leaves a partial file behind.
``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_HOME`` are read when a download starts (not
only when ``huggingface_hub`` was imported). A file whose sha256 does not match is evicted from the cache and
downloaded once more; a second mismatch raises ``ChecksumMismatchError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from universal_mfp.files import sha256_file

logger = logging.getLogger(__name__)

_TRUE = {"1", "on", "yes", "true"}

try:  # huggingface_hub >= 1.0 transports over httpx2, whose errors are not OSErrors
    import httpx2

    _TRANSFER_ERRORS: tuple[type[Exception], ...] = (OSError, httpx2.HTTPError)
except ImportError:  # pragma: no cover - older huggingface_hub uses requests (errors are OSErrors)
    _TRANSFER_ERRORS = (OSError,)


class ModelDownloadError(OSError):
    """A checkpoint could not be fetched from the Hub or found in the cache."""


class ChecksumMismatchError(ValueError):
    """A downloaded file does not have the sha256 recorded in the registry."""


@dataclass(frozen=True)
class HubSettings:
    """Where to download from and to, resolved from arguments and the environment at call time."""

    endpoint: str
    cache_dir: Path
    offline: bool


def hub_settings(cache_dir: str | Path | None = None, endpoint: str | None = None) -> HubSettings:
    """Resolve the Hub endpoint, cache folder and offline mode.

    Arguments win over the environment (``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HOME``, ``HF_HUB_OFFLINE``),
    which wins over the values ``huggingface_hub`` read at import time.
    """
    env = os.environ
    endpoint = (endpoint or env.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    if cache_dir is None:
        if env.get("HF_HUB_CACHE"):
            cache_dir = env["HF_HUB_CACHE"]
        elif env.get("HF_HOME"):
            cache_dir = Path(env["HF_HOME"]) / "hub"
        else:
            cache_dir = constants.HF_HUB_CACHE
    offline_env = env.get("HF_HUB_OFFLINE")
    offline = offline_env.strip().lower() in _TRUE if offline_env is not None else bool(constants.HF_HUB_OFFLINE)
    return HubSettings(endpoint=endpoint, cache_dir=Path(cache_dir).expanduser(), offline=offline)


def _evict(pointer: Path) -> None:
    """Remove a cached file: the snapshot entry and the blob it points to."""
    blob = pointer.resolve()
    pointer.unlink(missing_ok=True)
    if blob != pointer:
        blob.unlink(missing_ok=True)
    logger.debug("evicted %s from the cache", pointer)


def _download_one(repo_id: str, filename: str, revision: str, settings: HubSettings, *, force: bool = False) -> Path:
    from universal_mfp.version import __version__

    where = f"{filename!r} of {repo_id}@{revision} (endpoint {settings.endpoint}, cache {settings.cache_dir})"
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=settings.cache_dir,
            endpoint=settings.endpoint,
            local_files_only=settings.offline,
            force_download=force,
            library_name="universal-mfp",
            library_version=__version__,
        )
    except LocalEntryNotFoundError as error:
        reason = "offline mode (HF_HUB_OFFLINE) is on" if settings.offline else "the Hub could not be reached"
        raise ModelDownloadError(f"{where} is not in the cache and {reason}: {error}") from error
    except RepositoryNotFoundError as error:
        raise ModelDownloadError(f"Hub repository {repo_id!r} not found (or not accessible): {error}") from error
    except RevisionNotFoundError as error:
        raise ModelDownloadError(f"revision {revision!r} not found in {repo_id!r}: {error}") from error
    except EntryNotFoundError as error:
        raise ModelDownloadError(f"{where}: the file does not exist in the repository") from error
    except _TRANSFER_ERRORS as error:
        raise ModelDownloadError(
            f"download of {where} failed ({type(error).__name__}: {error}); nothing partial was kept in the cache"
        ) from error
    return Path(path)


def fetch_files(
    repo_id: str,
    revision: str,
    filenames: Sequence[str],
    *,
    sha256: Mapping[str, str] | None = None,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download (or find in the cache) files of one repository revision; return their snapshot folder.

    Args:
        repo_id: ``owner/name`` of a model repository.
        revision: branch, tag or commit sha.
        filenames: files to fetch (top level of the repository).
        sha256: expected digests by filename; each listed file is verified before it is returned.
        cache_dir: Hugging Face cache folder (defaults from ``HF_HUB_CACHE``/``HF_HOME``).
        endpoint: Hub endpoint (defaults from ``HF_ENDPOINT``).

    Raises:
        ModelDownloadError: if a file can be neither downloaded nor found in the cache.
        ChecksumMismatchError: if a file still mismatches its sha256 after one re-download.
    """
    settings = hub_settings(cache_dir, endpoint)
    folders = set()
    for filename in filenames:
        path = _download_one(repo_id, filename, revision, settings)
        expected = (sha256 or {}).get(filename)
        if expected is not None:
            actual = sha256_file(path)
            if actual != expected and not settings.offline:
                logger.warning("sha256 mismatch for %s of %s@%s; downloading it again", filename, repo_id, revision)
                _evict(path)
                path = _download_one(repo_id, filename, revision, settings, force=True)
                actual = sha256_file(path)
            if actual != expected:
                _evict(path)
                raise ChecksumMismatchError(
                    f"{filename} of {repo_id}@{revision} has sha256 {actual}, expected {expected}; "
                    "the file was removed from the cache and not loaded"
                )
        folders.add(path.parent)
    if len(folders) != 1:
        raise ModelDownloadError(f"files of {repo_id}@{revision} resolved to different snapshots {sorted(folders)}")
    return folders.pop()
