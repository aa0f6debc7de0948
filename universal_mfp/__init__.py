"""universal-mfp: a universal multi-fidelity (GGA/PBE + r2SCAN) equivariant interatomic potential."""

from universal_mfp.calculator import MFCalculator
from universal_mfp.data.frame import Frame
from universal_mfp.inference import Prediction, predict_structures
from universal_mfp.model import ModelConfig, MultiFidelityPotential, build_model
from universal_mfp.models import LoadedModel, available_models, load_model
from universal_mfp.version import __version__

__all__ = [
    "Frame",
    "LoadedModel",
    "MFCalculator",
    "ModelConfig",
    "MultiFidelityPotential",
    "Prediction",
    "__version__",
    "available_models",
    "build_model",
    "load_model",
    "predict_structures",
]
