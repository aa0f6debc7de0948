"""Models by name: ``load_model`` and the ``LoadedModel`` it returns (calculator and batch prediction).

It takes a checkpoint folder, a registered name or alias, or a Hub id; ``hub.locate_checkpoint`` finds the
files and ``available_models`` lists the registered names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from universal_mfp.calculator import MFCalculator
from universal_mfp.data.coverage import CoverageWatch, ElementCoverage
from universal_mfp.data.frame import as_frame
from universal_mfp.hub.checkpoint import load_checkpoint
from universal_mfp.hub.locate import available_models, locate_checkpoint
from universal_mfp.inference import Prediction, inference_copy, predict_structures, resolve_fidelity
from universal_mfp.model.config import ModelConfig
from universal_mfp.model.potential import MultiFidelityPotential

logger = logging.getLogger(__name__)

__all__ = ["LoadedModel", "available_models", "load_model"]


@dataclass(frozen=True)
class LoadedModel:
    """A loaded checkpoint, ready for prediction.

    Attributes:
        model: the potential, in evaluation mode on the requested device and dtype.
        metadata: the checkpoint's ``config.json`` plus a ``"source"`` entry saying where it came from.
        path: the checkpoint folder it was read from (a local folder or a Hugging Face cache snapshot).
        default_fidelity: used by ``calculator``/``predict`` when they get no fidelity (may be ``None``).
        name: registry name, Hub id or folder the model was loaded as.
        coverage: the elements the model saw per fidelity in DFT and teacher labels (from the checkpoint's
            training record; ``None`` when it has none). ``calculator`` and ``predict`` warn once per element
            and fidelity (``CoverageWarning``) when they predict outside it.
    """

    model: MultiFidelityPotential
    metadata: dict[str, Any]
    path: Path
    default_fidelity: str | None = None
    name: str | None = None
    coverage: ElementCoverage | None = None
    _coverage_watch: CoverageWatch | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.coverage is not None:
            object.__setattr__(self, "_coverage_watch", CoverageWatch(self.coverage))

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
        return self.model.device

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
            coverage=self.coverage,
        )

    def predict(self, structures: Iterable[Any], *, fidelity: str | None = None, **kwargs: Any) -> list[Prediction]:
        """Batch prediction (``universal_mfp.inference.predict_structures``) at one fidelity."""
        name = self.resolve_fidelity(fidelity)
        frames = [as_frame(s) for s in structures]
        predictions = predict_structures(self.model, frames, fidelity=name, **kwargs)
        if self._coverage_watch is not None:  # after the prediction: elements the model lacks have raised
            for frame in frames:
                self._coverage_watch.check(name, frame.numbers)
        return predictions


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
    located = locate_checkpoint(name_or_path, revision=revision, cache_dir=cache_dir, registry=registry)
    entry = located.entry
    checkpoint = load_checkpoint(located.folder)
    if entry is not None and tuple(entry.fidelities) != checkpoint.config.fidelities:
        raise ValueError(
            f"registry entry {entry.name!r} lists fidelities {list(entry.fidelities)} but the checkpoint has "
            f"{list(checkpoint.config.fidelities)}"
        )
    default = fidelity if fidelity is not None else (entry.default_fidelity if entry is not None else None)
    if default is not None:
        default = resolve_fidelity(checkpoint.model, default)
    model = inference_copy(checkpoint.model, dtype=dtype, device=device)
    metadata = {**checkpoint.metadata, "source": located.source}
    try:
        coverage = ElementCoverage.from_metadata(metadata)
    except ValueError as error:
        raise ValueError(f"checkpoint {located.folder}: {error}") from error
    return LoadedModel(
        model=model,
        metadata=metadata,
        path=located.folder,
        default_fidelity=default,
        name=str(name_or_path),
        coverage=coverage,
    )
