"""Checkpoints, the model registry, ``load_model`` and publishing to the Hugging Face Hub."""

from universal_mfp.hub.card import render_card, validate_card
from universal_mfp.hub.checkpoint import CHECKPOINT_SCHEMA_VERSION, Checkpoint, load_checkpoint, save_checkpoint
from universal_mfp.hub.download import ChecksumMismatchError, ModelDownloadError, fetch_files
from universal_mfp.hub.loading import LoadedModel, available_models, load_model
from universal_mfp.hub.publish import PublishResult, publish
from universal_mfp.hub.registry import Registry, RegistryEntry, load_registry

__all__ = [
    "CHECKPOINT_SCHEMA_VERSION",
    "Checkpoint",
    "ChecksumMismatchError",
    "LoadedModel",
    "ModelDownloadError",
    "PublishResult",
    "Registry",
    "RegistryEntry",
    "available_models",
    "fetch_files",
    "load_checkpoint",
    "load_model",
    "load_registry",
    "publish",
    "render_card",
    "save_checkpoint",
    "validate_card",
]
