"""The multi-fidelity equivariant potential."""

from universal_mfp.model.config import MODEL_SCHEMA_VERSION, ModelConfig, resolve_dtype
from universal_mfp.model.potential import MultiFidelityPotential, build_model, count_parameters

__all__ = [
    "MODEL_SCHEMA_VERSION",
    "ModelConfig",
    "MultiFidelityPotential",
    "build_model",
    "count_parameters",
    "resolve_dtype",
]
