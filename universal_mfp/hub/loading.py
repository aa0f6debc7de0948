"""``load_model``: find a checkpoint by folder, registered name or Hub id, and wrap it for prediction."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from universal_mfp.calculator import MFCalculator
from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import CHECKPOINT_FILES, load_checkpoint
from universal_mfp.hub.download import ChecksumMismatchError, fetch_files
from universal_mfp.hub.registry import RegistryEntry, is_hub_repo_id, load_registry, pretrained_root
from universal_mfp.inference import Prediction, inference_copy, predict_structures, resolve_fidelity
from universal_mfp.model.config import ModelConfig
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded checkpoint, ready for prediction.

    Attributes:
        model: the potential, in evaluation mode on the requested device and dtype.
        metadata: the checkpoint's ``config.json`` plus a ``"source"`` entry saying where it came from.
        path: the checkpoint folder it was read from (a local folder or a Hugging Face cache snapshot).
        default_fidelity: used by ``calculator``/``predict`` when they get no fidelity (may be ``None``).
        name: registry name, Hub id or folder the model was loaded as.
    """

    model: MultiFidelityPotential
    metadata: dict[str, Any]
    path: Path
    default_fidelity: str | None = None
    name: str | None = None

    @property
    def config(self) -> ModelConfig:
        """The model's architecture configuration."""
        return self.model.config

    @property
    def fidelities(self) -> tuple[str, ...]:
        """Fidelity names of the model."""
        return self.model.fidelities

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return self.model.energy_scale.device

    def resolve_fidelity(self, fidelity: str | None = None) -> str:
        """Return ``fidelity``, else the default fidelity; a multi-fidelity model with neither raises ``ValueError``."""
        return resolve_fidelity(self.model, fidelity if fidelity is not None else self.default_fidelity)

    def calculator(
        self,
        fidelity: str | None = None,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        num_threads: int | None = None,
    ) -> MFCalculator:
        """An ASE calculator at one fidelity (device and dtype default to the loaded model's)."""
        return MFCalculator(
            self.model,
            fidelity=self.resolve_fidelity(fidelity),
            device=device or str(self.device),
            dtype=dtype,
            num_threads=num_threads,
        )

    def predict(self, structures: Iterable[Any], *, fidelity: str | None = None, **kwargs: Any) -> list[Prediction]:
        """Batch prediction (``universal_mfp.inference.predict_structures``) at one fidelity."""
        return predict_structures(self.model, structures, fidelity=self.resolve_fidelity(fidelity), **kwargs)


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


def load_model(
    name_or_path: str | Path,
    *,
    fidelity: str | None = None,
    revision: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    cache_dir: str | Path | None = None,
    registry: str | Path | None = None,
) -> LoadedModel:
    """Load a model from a checkpoint folder, a registered name or alias, or an ``owner/name`` Hub id.

    Args:
        name_or_path: checkpoint folder, registry name/alias (``available_models()``), or Hub repository id.
        fidelity: default fidelity for ``.calculator()``/``.predict()``; overrides the registry default.
        revision: branch, tag or commit of a Hub id (registered models are pinned and refuse other revisions).
        device: torch device of the returned model.
        dtype: ``"float32"`` or ``"float64"``.
        cache_dir: Hugging Face cache folder (defaults from ``HF_HUB_CACHE``/``HF_HOME``).
        registry: registry file to use instead of the packaged ``registry.json``.

    Raises:
        ValueError: for an unknown name (listing the available ones), a corrupt or inconsistent checkpoint,
            or an unknown fidelity.
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
    checkpoint = load_checkpoint(folder)
    if entry is not None and tuple(entry.fidelities) != checkpoint.config.fidelities:
        raise ValueError(
            f"registry entry {entry.name!r} lists fidelities {list(entry.fidelities)} but the checkpoint has "
            f"{list(checkpoint.config.fidelities)}"
        )
    default = fidelity if fidelity is not None else (entry.default_fidelity if entry is not None else None)
    if default is not None:
        default = resolve_fidelity(checkpoint.model, default)
    model = inference_copy(checkpoint.model, dtype=dtype, device=device)
    metadata = {**checkpoint.metadata, "source": source}
    return LoadedModel(model=model, metadata=metadata, path=folder, default_fidelity=default, name=text)
