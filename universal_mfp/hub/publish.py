"""Publish a checkpoint folder to the Hugging Face Hub with a rendered, validated model card."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

from universal_mfp.files import sha256_file
from universal_mfp.hub.card import DEFAULT_LICENSE, render_card, validate_card
from universal_mfp.hub.checkpoint import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from universal_mfp.hub.download import hub_settings
from universal_mfp.hub.registry import RegistryEntry, is_hub_repo_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    """Outcome of ``publish``: the commit, the files uploaded (with sha256) and the registry entry to paste."""

    repo_id: str
    commit_sha: str
    files: dict[str, str]
    registry_entry: dict[str, Any]
    card: str


def stage_upload(
    checkpoint_dir: str | Path,
    staging_dir: str | Path,
    *,
    repo_id: str,
    license_id: str | None = None,
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Validate a checkpoint and write the exact upload set into ``staging_dir``.

    The set is ``config.json`` and ``model.safetensors`` copied unchanged plus a freshly rendered and
    validated ``README.md``.

    Returns:
        ``(sha256 by filename, card text, checkpoint metadata)``.

    Raises:
        ValueError: if the checkpoint is invalid or its card fails validation (e.g. no metrics).
    """
    checkpoint_dir, staging_dir = Path(checkpoint_dir), Path(staging_dir)
    checkpoint = load_checkpoint(checkpoint_dir)
    name = repo_id.rsplit("/", maxsplit=1)[-1]
    card = render_card(checkpoint.metadata, name=name, load_name=repo_id, license_id=license_id)
    try:
        validate_card(card)
    except ValueError as error:
        raise ValueError(f"cannot publish {checkpoint_dir}: its model card is incomplete: {error}") from error
    for filename in (CONFIG_FILE, WEIGHTS_FILE):
        shutil.copyfile(checkpoint_dir / filename, staging_dir / filename)
    (staging_dir / CARD_FILE).write_text(card, encoding="utf-8")
    files = {p.name: sha256_file(p) for p in sorted(staging_dir.iterdir())}
    return files, card, checkpoint.metadata


def publish(
    checkpoint_dir: str | Path,
    repo_id: str,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    *,
    license_id: str | None = None,
    aliases: tuple[str, ...] = (),
) -> PublishResult:
    """Render the card, create the repository if needed and upload the checkpoint in one commit.

    Args:
        checkpoint_dir: a checkpoint folder with measured metrics in its ``config.json``.
        repo_id: ``owner/name`` of the Hub model repository (created if missing).
        revision: branch to commit to (created if missing); defaults to ``main``.
        private: create the repository as private.
        token: Hub token (defaults to the stored login / ``HF_TOKEN``).
        endpoint: Hub endpoint (defaults to ``HF_ENDPOINT``).
        license_id: license for the card and registry entry (defaults to the training summary's or ``cc-by-4.0``).
        aliases: aliases for the registry entry.

    Returns:
        The commit sha, the uploaded files with their sha256, the registry entry to paste and the card.

    Raises:
        ValueError: for an invalid repo id, checkpoint or card, or when offline mode is on.
    """
    if not is_hub_repo_id(repo_id):
        raise ValueError(f"repo_id must look like 'owner/name', got {repo_id!r}")
    settings = hub_settings(endpoint=endpoint)
    if settings.offline:
        raise ValueError("cannot publish while offline mode (HF_HUB_OFFLINE) is on")
    api = HfApi(endpoint=settings.endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="umfp-publish-") as staging:
        files, card, metadata = stage_upload(checkpoint_dir, staging, repo_id=repo_id, license_id=license_id)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        from universal_mfp.version import __version__

        name = repo_id.rsplit("/", maxsplit=1)[-1]
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=staging,
            revision=revision,
            repo_type="model",
            commit_message=f"Upload {name} checkpoint (universal-mfp {__version__})",
        )
    commit_sha = str(info.oid)
    front_license = validate_card(card)["license"]
    entry = RegistryEntry(
        name=name,
        aliases=tuple(aliases),
        description=str(metadata["training"].get("description", "Multi-fidelity interatomic potential")),
        license=str(front_license or DEFAULT_LICENSE),
        fidelities=tuple(metadata["fidelities"]),
        default_fidelity=None,
        files=files,
        repo_id=repo_id,
        revision=commit_sha,
    )
    registry_entry = RegistryEntry.from_dict(entry.to_dict()).to_dict()
    logger.info("published %s at commit %s", repo_id, commit_sha)
    return PublishResult(repo_id=repo_id, commit_sha=commit_sha, files=files, registry_entry=registry_entry, card=card)
