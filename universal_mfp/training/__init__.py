"""Multi-fidelity training: masked loss, priors, trainer (single process or torchrun), baselines.

The data rules it uses (splits by material, pairs, the graph dataset, label statistics) live in
``universal_mfp.data``, so the data pipelines need only that layer.
"""

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
