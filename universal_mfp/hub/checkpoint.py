"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (weights only) + ``README.md`` (model card).

Saving is atomic and never overwrites a non-empty folder unless asked to. Loading is strict: the JSON
layout, the schema versions, every tensor name, shape and dtype are checked, and any problem raises a
``ValueError`` that names it. No pickles are read or written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ase.data import chemical_symbols
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from universal_mfp.model.config import ModelConfig
from universal_mfp.model.potential import MultiFidelityPotential, build_model

logger = logging.getLogger(__name__)

CHECKPOINT_SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
CHECKPOINT_FILES: tuple[str, ...] = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)

_REQUIRED_KEYS = frozenset({"checkpoint_schema_version", "model", "code_version", "fidelities", "element_references"})
_OPTIONAL_KEYS = frozenset({"training", "metrics"})
_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the model (on CPU, in the dtype it was saved in) and its ``config.json``."""

    model: MultiFidelityPotential
    config: ModelConfig
    metadata: dict[str, Any]
    path: Path


def _element_references(model: MultiFidelityPotential) -> dict[str, dict[str, float]]:
    refs = model.element_references.detach().cpu().double()
    symbols = model.config.element_symbols
    return {
        fidelity: {symbols[s]: float(refs[f, s]) for s in range(len(symbols))}
        for f, fidelity in enumerate(model.fidelities)
    }


def checkpoint_metadata(
    model: MultiFidelityPotential,
    *,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ``config.json`` content for ``model`` (config in the model's current dtype)."""
    from universal_mfp.version import code_version

    dtype_name = _DTYPE_NAMES.get(model.dtype)
    if dtype_name is None:
        raise ValueError(f"cannot save a model in dtype {model.dtype}; use float32 or float64")
    config = model.config.replace(dtype=dtype_name)
    metadata = {
        "checkpoint_schema_version": CHECKPOINT_SCHEMA_VERSION,
        "code_version": code_version(),
        "model": config.to_dict(),
        "fidelities": list(config.fidelities),
        "element_references": _element_references(model),
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
    }
    # Round-trip through JSON now so that a non-JSON-able training summary fails before anything is written.
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"training summary and metrics must be JSON-able with finite numbers: {error}") from error


def save_checkpoint(
    model: MultiFidelityPotential,
    directory: str | Path,
    *,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    card: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save ``model`` as a checkpoint folder, atomically.

    Args:
        model: the potential to save (any device; weights are written from CPU copies).
        directory: the checkpoint folder to create.
        training: training-data and run summary (JSON-able), copied into ``config.json``.
        metrics: measured metrics ``{fidelity: {split: {metric: value}}}`` (see ``universal_mfp.hub.card``).
        card: model card text for ``README.md``; rendered from the packaged card template when omitted.
        name: model name used in the rendered card (defaults to the folder name).
        overwrite: replace an existing non-empty folder.

    Returns:
        The checkpoint folder.

    Raises:
        FileExistsError: if ``directory`` is not empty and ``overwrite`` is false.
        ValueError: if the training summary or metrics are not JSON-able, or the metrics malformed.
    """
    from universal_mfp.files import atomic_directory
    from universal_mfp.hub.card import render_card_or_minimal

    directory = Path(directory)
    metadata = checkpoint_metadata(model, training=training, metrics=metrics)
    if card is None:
        card = render_card_or_minimal(metadata, name=name or directory.name)
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    with atomic_directory(directory, overwrite=overwrite) as staging:
        (staging / CONFIG_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
    logger.info("saved checkpoint to %s", directory)
    return directory


def _check_element_references(metadata: dict[str, Any], config: ModelConfig) -> None:
    refs = metadata["element_references"]
    symbols = config.element_symbols
    if not isinstance(refs, dict) or sorted(refs) != sorted(config.fidelities):
        raise ValueError(f"config.json: element_references must have one entry per fidelity {list(config.fidelities)}")
    for fidelity, table in refs.items():
        if not isinstance(table, dict) or sorted(table) != sorted(symbols):
            raise ValueError(f"config.json: element_references[{fidelity!r}] must list exactly the elements {symbols}")
        for symbol, value in table.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"config.json: element_references[{fidelity!r}][{symbol!r}] is not a number")


def parse_checkpoint_config(text: str, *, source: str = CONFIG_FILE) -> tuple[dict[str, Any], ModelConfig]:
    """Parse and validate ``config.json`` text; return the metadata dict and the ``ModelConfig``.

    Raises:
        ValueError: on corrupt JSON, missing or unknown keys, an unknown schema version or an invalid model config.
    """
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON (corrupt or truncated): {error}") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"{source} must hold a JSON object, got {type(metadata).__name__}")
    version = metadata.get("checkpoint_schema_version")
    if version != CHECKPOINT_SCHEMA_VERSION:
        raise ValueError(
            f"{source}: checkpoint schema version {version!r} is not supported by this code "
            f"(it reads version {CHECKPOINT_SCHEMA_VERSION}); upgrade universal-mfp"
        )
    missing = sorted(_REQUIRED_KEYS - set(metadata))
    unknown = sorted(set(metadata) - _REQUIRED_KEYS - _OPTIONAL_KEYS)
    if missing or unknown:
        raise ValueError(f"{source}: missing keys {missing}, unknown keys {unknown}")
    if not isinstance(metadata["model"], dict):
        raise ValueError(f"{source}: 'model' must be an object")
    try:
        config = ModelConfig.from_dict(metadata["model"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: invalid model config: {error}") from error
    if list(metadata["fidelities"]) != list(config.fidelities):
        raise ValueError(f"{source}: fidelities {metadata['fidelities']} disagree with the model config")
    _check_element_references(metadata, config)
    for key in _OPTIONAL_KEYS:
        metadata.setdefault(key, {})
        if not isinstance(metadata[key], dict):
            raise ValueError(f"{source}: '{key}' must be an object")
    return metadata, config


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ValueError(f"checkpoint weights {path} are missing")
    try:
        return load_file(str(path), device="cpu")
    except SafetensorError as error:
        raise ValueError(f"{path} is not a valid safetensors file (corrupt or truncated): {error}") from error


def _check_tensors(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: Path) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise ValueError(f"{source}: tensors do not match the model: missing {missing}, unexpected {extra}")
    for key, reference in expected.items():
        tensor = found[key]
        if tuple(tensor.shape) != tuple(reference.shape):
            raise ValueError(
                f"{source}: tensor {key!r} has shape {tuple(tensor.shape)}, the model expects {tuple(reference.shape)}"
            )
        if tensor.dtype != reference.dtype:
            raise ValueError(f"{source}: tensor {key!r} has dtype {tensor.dtype}, the model expects {reference.dtype}")


def _check_references_agree(model: MultiFidelityPotential, metadata: dict[str, Any], source: Path) -> None:
    refs = model.element_references.detach().cpu()
    for f, fidelity in enumerate(model.fidelities):
        for s, z in enumerate(model.config.elements):
            written = torch.tensor(metadata["element_references"][fidelity][chemical_symbols[z]], dtype=refs.dtype)
            if not torch.equal(written, refs[f, s]):
                raise ValueError(
                    f"{source}: element_references[{fidelity!r}][{chemical_symbols[z]!r}] in config.json "
                    f"disagrees with the weights ({float(written)} vs {float(refs[f, s])})"
                )


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Load a checkpoint folder strictly (CPU, saved dtype).

    Raises:
        FileNotFoundError: if ``directory`` is not a folder.
        ValueError: on any missing, corrupt or inconsistent content, naming the problem.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint folder {directory} does not exist")
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{directory} is not a checkpoint: {CONFIG_FILE} is missing")
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{config_path} is not UTF-8 text (corrupt): {error}") from error
    metadata, config = parse_checkpoint_config(text, source=str(config_path))
    weights_path = directory / WEIGHTS_FILE
    tensors = _read_weights(weights_path)
    model = build_model(config, seed=0)
    _check_tensors(model.state_dict(), tensors, weights_path)
    model.load_state_dict(tensors, strict=True)
    _check_references_agree(model, metadata, weights_path)
    if not (directory / CARD_FILE).is_file():
        logger.warning("checkpoint %s has no %s model card", directory, CARD_FILE)
    model.eval()
    return Checkpoint(model=model, config=config, metadata=metadata, path=directory)
