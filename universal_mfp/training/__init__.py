"""Multi-fidelity training: statistics, masked loss, trainer (single process or torchrun), baselines."""

from universal_mfp.training.config import RunConfig, load_run_config
from universal_mfp.training.loss import LossWeights
from universal_mfp.training.run import RunSummary, train_from_config
from universal_mfp.training.trainer import Trainer, TrainerSettings, TrainResult

__all__ = [
    "LossWeights",
    "RunConfig",
    "RunSummary",
    "TrainResult",
    "Trainer",
    "TrainerSettings",
    "load_run_config",
    "train_from_config",
]
