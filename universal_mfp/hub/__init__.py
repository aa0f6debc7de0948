"""Checkpoints: stored and checked (safetensors + JSON), found by name (registry, Hub), published to the Hub.

Loading a model for prediction is ``universal_mfp.load_model`` (``universal_mfp.models``).
"""

from universal_mfp.hub.card import render_card, validate_card
from universal_mfp.hub.checkpoint import CHECKPOINT_SCHEMA_VERSION, Checkpoint, load_checkpoint, save_checkpoint
from universal_mfp.hub.download import ChecksumMismatchError, ModelDownloadError, fetch_files
from universal_mfp.hub.locate import LocatedCheckpoint, available_models, locate_checkpoint
from universal_mfp.hub.publish import PublishResult, publish
from universal_mfp.hub.registry import Registry, RegistryEntry, load_registry

__all__ = [
    "CHECKPOINT_SCHEMA_VERSION",
    "Checkpoint",
    "ChecksumMismatchError",
    "LocatedCheckpoint",
    "ModelDownloadError",
    "PublishResult",
    "Registry",
    "RegistryEntry",
    "available_models",
    "fetch_files",
    "load_checkpoint",
    "load_registry",
    "locate_checkpoint",
    "publish",
    "render_card",
    "save_checkpoint",
    "validate_card",
]
