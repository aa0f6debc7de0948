"""Baselines in the same code path as multi-fidelity training, for honest comparisons.

- single fidelity: a model with one fidelity trained on that fidelity's frames only;
- transfer learning: pre-train on the low fidelity, then fine-tune all weights on the high one
  (element references refitted on the high-fidelity data);
- delta learning: a second model learns ``high - low`` on frames computed at both fidelities; the
  prediction is ``low model + delta model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from universal_mfp.data import keys
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.frame import Frame
from universal_mfp.data.pairs import difference_frame, pair_by_geometry
from universal_mfp.data.statistics import energy_scales, fit_element_references
from universal_mfp.model.config import ModelConfig
from universal_mfp.model.potential import MultiFidelityPotential
from universal_mfp.training.fidelity_prior import FidelityPriors, FidelityPriorSpec, build_fidelity_prior
from universal_mfp.training.run import normalised_model
from universal_mfp.training.trainer import Trainer, TrainerSettings


def train_model(
    train_frames: Sequence[Frame],
    val_frames: Sequence[Frame],
    model_config: ModelConfig,
    settings: TrainerSettings,
    output_dir: Path,
    *,
    seed: int = 0,
    initial: MultiFidelityPotential | None = None,
    summary: Mapping[str, Any] | None = None,
    priors: Sequence[FidelityPriorSpec] = (),
) -> MultiFidelityPotential:
    """Train one model (freshly normalised, or continuing from ``initial``) and return its EMA weights.

    ``priors`` adds cross-fidelity prior terms (``training.fidelity_prior`` of a run config) to the loss.
    """
    train = GraphDataset(train_frames, model_config.cutoff, model_config.fidelities)
    val = GraphDataset(val_frames, model_config.cutoff, model_config.fidelities) if val_frames else None
    model = initial if initial is not None else normalised_model(train_frames, train, model_config, seed=seed)
    prior = FidelityPriors([build_fidelity_prior(spec, model)[0] for spec in priors]) if priors else None
    trainer = Trainer(model, train, val, settings, output_dir, training_summary=dict(summary or {}), prior=prior)
    trainer.fit(resume=False)
    return model


def single_fidelity_config(config: ModelConfig, fidelity: str) -> ModelConfig:
    """The same architecture with one fidelity."""
    return config.replace(fidelities=(fidelity,))


def transfer_learning(
    pretrained: MultiFidelityPotential,
    high_train: Sequence[Frame],
    high_val: Sequence[Frame],
    fidelity: str,
    settings: TrainerSettings,
    output_dir: Path,
) -> MultiFidelityPotential:
    """Fine-tune a single-fidelity low-fidelity model on high-fidelity frames (all weights train)."""
    if len(pretrained.fidelities) != 1:
        raise ValueError("transfer learning starts from a single-fidelity model")
    config = pretrained.config.replace(fidelities=(fidelity,))
    model = MultiFidelityPotential(config)
    model.load_state_dict(pretrained.state_dict())
    references, _ = fit_element_references(high_train, config.elements, config.fidelities)
    scales = energy_scales(high_train, config.elements, config.fidelities, references)
    model.set_energy_normalization(torch.as_tensor(references), torch.as_tensor(scales))
    train = GraphDataset(high_train, config.cutoff, config.fidelities)
    val = GraphDataset(high_val, config.cutoff, config.fidelities) if high_val else None
    Trainer(model, train, val, settings, output_dir).fit(resume=False)
    return model


class DeltaPotential(nn.Module):
    """``low(x) + delta(x)``: energies, forces and stress of two single-fidelity models added up."""

    def __init__(self, low: MultiFidelityPotential, delta: MultiFidelityPotential) -> None:
        super().__init__()
        self.low = low
        self.delta = delta
        self.config = delta.config

    @property
    def fidelities(self) -> tuple[str, ...]:
        """The fidelity the sum predicts."""
        return self.delta.fidelities

    @property
    def energy_scale(self) -> torch.Tensor:
        """Device/dtype anchor, like ``MultiFidelityPotential.energy_scale``."""
        return self.delta.energy_scale

    def forward(self, batch: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sum of both models' predictions (both are single-fidelity, so fidelity index 0 for each)."""
        low = self.low(batch, **kwargs)
        delta = self.delta(batch, **kwargs)
        return {
            key: low[key] + delta[key]
            for key in (keys.ENERGY, keys.FORCES, keys.STRESS, keys.ATOMIC_ENERGIES)
            if key in low
        }


def delta_learning(
    low_model: MultiFidelityPotential,
    low_frames: Sequence[Frame],
    high_train: Sequence[Frame],
    high_val: Sequence[Frame],
    fidelity: str,
    model_config: ModelConfig,
    settings: TrainerSettings,
    output_dir: Path,
    *,
    seed: int = 0,
) -> DeltaPotential:
    """Train a delta model on ``high - low`` for the high-fidelity frames that have a low-fidelity twin.

    Raises:
        ValueError: if no high-fidelity training frame has a low-fidelity frame at the same geometry.
    """

    def differences(high: Sequence[Frame]) -> list[Frame]:
        return [difference_frame(low_frames[i], high[j], fidelity) for i, j in pair_by_geometry(low_frames, high)]

    train, val = differences(high_train), differences(high_val)
    if not train:
        raise ValueError("delta learning needs high-fidelity frames with a low-fidelity frame at the same geometry")
    config = single_fidelity_config(model_config, fidelity)
    delta = train_model(train, val, config, replace(settings), output_dir, seed=seed + 1)
    return DeltaPotential(low_model, delta)
