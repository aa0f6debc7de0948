"""Fine-tuning a trained model: a new fidelity slot, frozen parameters down to single rows, replay.

See ``docs/finetuning.md`` for the rules (which fidelity a new one starts from, how its element references
are fitted, what each training mode trains) and a measured demonstration.
"""

from universal_mfp.finetuning.freezing import TRAIN_MODES, RowSplit, trainable_parameters
from universal_mfp.finetuning.run import DEFAULT_SETTINGS, FinetuneResult, finetune, sample_replay
from universal_mfp.finetuning.slots import add_fidelity, closest_fidelity, fit_reference_shift, predict_energies

__all__ = [
    "DEFAULT_SETTINGS",
    "TRAIN_MODES",
    "FinetuneResult",
    "RowSplit",
    "add_fidelity",
    "closest_fidelity",
    "finetune",
    "fit_reference_shift",
    "predict_energies",
    "sample_replay",
    "trainable_parameters",
]
