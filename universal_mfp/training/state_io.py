"""Resumable training state: safetensors (model, EMA, optimizer tensors) + JSON (counters, schedule, history).

States are written as folders ``step-XXXXXXXXX`` under ``<output>/states``, each created atomically, so a
run killed at any moment leaves only complete states behind; the newest one is resumed.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from universal_mfp.files import atomic_directory

logger = logging.getLogger(__name__)

STATE_SCHEMA_VERSION = 1
TENSORS_FILE = "state.safetensors"
JSON_FILE = "state.json"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def save_training_state(
    states_dir: Path,
    *,
    global_step: int,
    model: torch.nn.Module,
    ema_shadow: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    counters: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write one state folder and delete all but the ``keep`` newest."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema_shadow.items()})
    optimizer_tensors, optimizer_json = _optimizer_tensors(optimizer)
    tensors.update(optimizer_tensors)
    document = {
        "state_schema_version": STATE_SCHEMA_VERSION,
        "global_step": global_step,
        "counters": counters,
        "optimizer": optimizer_json,
    }
    target = states_dir / f"step-{global_step:09d}"
    with atomic_directory(target, overwrite=True) as staging:
        save_file(tensors, str(staging / TENSORS_FILE))
        (staging / JSON_FILE).write_text(json.dumps(document, indent=1), encoding="utf-8")
    for old in sorted(states_dir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_state(states_dir: Path) -> Path | None:
    """Newest complete state folder, if any."""
    candidates = sorted(
        p for p in states_dir.glob("step-*") if (p / JSON_FILE).is_file() and (p / TENSORS_FILE).is_file()
    )
    return candidates[-1] if candidates else None


def load_training_state(
    folder: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    """Restore model and optimizer in place from a state folder.

    Returns:
        ``(global_step, ema_shadow, counters)``.

    Raises:
        ValueError: if the state is corrupt, of an unknown version, or does not fit the model.
    """
    try:
        document = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / TENSORS_FILE))
    except (OSError, ValueError) as error:
        raise ValueError(f"{folder}: unreadable training state ({error})") from error
    if document.get("state_schema_version") != STATE_SCHEMA_VERSION:
        raise ValueError(f"{folder}: training state version {document.get('state_schema_version')} is not supported")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{folder}: training state does not fit this model: {error}") from error
    ema_shadow = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state.setdefault(int(index), {})[name] = value
    for index, scalars in document["optimizer"]["scalars"].items():
        optimizer_state.setdefault(int(index), {}).update(scalars)
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": document["optimizer"]["param_groups"]})
    return int(document["global_step"]), ema_shadow, document["counters"]
