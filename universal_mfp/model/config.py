"""Model configuration: a frozen, JSON-able dataclass with a schema version."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from ase.data import chemical_symbols
from e3nn import o3

from universal_mfp.fidelity import validate_fidelity_name

MODEL_SCHEMA_VERSION = 1
SUPPORTED_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
FIDELITY_CONDITIONING_MODES: tuple[str, ...] = ("all", "readout", "heads", "linear_delta")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Return the torch dtype for ``"float32"``/``"float64"`` (or a torch dtype), else raise ``ValueError``."""
    if isinstance(dtype, torch.dtype):
        if dtype not in SUPPORTED_DTYPES.values():
            raise ValueError(f"unsupported dtype {dtype}; use one of {list(SUPPORTED_DTYPES)}")
        return dtype
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; use one of {list(SUPPORTED_DTYPES)}")
    return SUPPORTED_DTYPES[dtype]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a multi-fidelity potential.

    Attributes:
        elements: atomic numbers the model knows, in embedding order.
        fidelities: fidelity names, in one-hot order.
        cutoff: neighbour cutoff radius, Å.
        num_layers: number of interaction (message-passing) layers.
        hidden_irreps: node features between layers, e.g. ``"32x0e+16x1o+8x2e"``.
        lmax_edge: highest degree of the edge spherical harmonics.
        num_radial_basis: number of Bessel functions for edge lengths.
        cutoff_polynomial_p: exponent of the polynomial envelope (smooth to order p at the cutoff).
        radial_mlp_hidden: hidden widths of the radial network that weights the tensor products.
        readout_hidden: width of the hidden layer of the per-atom energy readout.
        avg_num_neighbors: normalisation of the summed messages (set from the training data).
        fidelity_conditioning: where the fidelity enters. ``"all"`` (SevenNet-MF): every interaction
            layer's linear layers and the readout have one bias row per fidelity. ``"readout"``: the
            interaction layers are shared by all fidelities (one bias row) and only the readout is
            conditioned, so every fidelity sees the same atomic environment features and a fidelity with
            little data cannot learn its own description of structures it has not seen.
            ``"heads"``: shared interaction layers as with ``"readout"``, and each fidelity has its own readout
            weights too (a readout head per fidelity), so fidelities can differ by element and environment.
            ``"linear_delta"``: the whole network is shared and each fidelity adds a linear function of the
            final (scalar) node features to the shared readout, ``y_f(h) = y(h) + w_f · h``: a fidelity
            cannot move environments along the readout's nonlinearity, only add a per-feature correction.
        dtype: default parameter dtype, ``"float32"`` or ``"float64"``.
        schema_version: version of this configuration's layout.
        angular_lmax: highest degree of the angular invariants added to the first node features (0: none);
            see ``model/angular.py``. Degrees 3 and 4 tell fcc from hcp where ``lmax_edge`` 2 cannot.
        angular_channels: radial channels of those invariants.
        pair_repulsion: add a fixed ZBL nuclear repulsion between atoms closer than the sum of their covalent
            radii (``model/repulsion.py``), so the energy rises steeply where two atoms nearly meet.
        pair_repulsion_cutoff_factor: the repulsion's cutoff as a multiple of the sum of the covalent radii.
    """

    elements: tuple[int, ...]
    fidelities: tuple[str, ...]
    cutoff: float = 5.0
    num_layers: int = 3
    hidden_irreps: str = "32x0e+16x1o+8x2e"
    lmax_edge: int = 2
    num_radial_basis: int = 8
    cutoff_polynomial_p: int = 6
    radial_mlp_hidden: tuple[int, ...] = (64, 64)
    readout_hidden: int = 16
    avg_num_neighbors: float = 20.0
    fidelity_conditioning: str = "all"
    dtype: str = "float32"
    schema_version: int = MODEL_SCHEMA_VERSION
    angular_lmax: int = 0
    angular_channels: int = 8
    pair_repulsion: bool = False
    pair_repulsion_cutoff_factor: float = 1.0

    def __post_init__(self) -> None:
        elements = tuple(int(z) for z in self.elements)
        fidelities = tuple(validate_fidelity_name(f) for f in self.fidelities)
        object.__setattr__(self, "elements", elements)
        object.__setattr__(self, "fidelities", fidelities)
        object.__setattr__(self, "radial_mlp_hidden", tuple(int(w) for w in self.radial_mlp_hidden))
        if self.schema_version != MODEL_SCHEMA_VERSION:
            raise ValueError(
                f"model config schema version {self.schema_version} is not supported by this code "
                f"(it reads version {MODEL_SCHEMA_VERSION}); upgrade universal-mfp"
            )
        if not elements:
            raise ValueError("a model needs at least one element")
        if len(set(elements)) != len(elements) or any(not 1 <= z < len(chemical_symbols) for z in elements):
            raise ValueError(f"elements must be distinct atomic numbers 1..118, got {elements}")
        if not fidelities or len(set(fidelities)) != len(fidelities):
            raise ValueError(f"fidelities must be a non-empty list of distinct names, got {fidelities}")
        if self.cutoff <= 0 or self.num_layers < 1 or self.lmax_edge < 0 or self.num_radial_basis < 1:
            raise ValueError("cutoff, num_layers, lmax_edge and num_radial_basis must be positive")
        if self.angular_lmax < 0 or self.angular_channels < 1:
            raise ValueError(
                "angular_lmax must be >= 0 and angular_channels >= 1, "
                f"got {self.angular_lmax} and {self.angular_channels}"
            )
        if self.avg_num_neighbors <= 0:
            raise ValueError(f"avg_num_neighbors must be positive, got {self.avg_num_neighbors}")
        irreps = o3.Irreps(self.hidden_irreps)
        if not any(ir == o3.Irrep("0e") for _, ir in irreps):
            raise ValueError(f"hidden_irreps {self.hidden_irreps!r} needs scalar (0e) channels")
        if self.fidelity_conditioning not in FIDELITY_CONDITIONING_MODES:
            raise ValueError(
                f"unknown fidelity_conditioning {self.fidelity_conditioning!r}; "
                f"use one of {list(FIDELITY_CONDITIONING_MODES)}"
            )
        if not isinstance(self.pair_repulsion, bool):
            raise ValueError(f"pair_repulsion must be true or false, got {self.pair_repulsion!r}")
        if not 0.0 < self.pair_repulsion_cutoff_factor <= 2.0:
            raise ValueError(f"pair_repulsion_cutoff_factor must be in (0, 2], got {self.pair_repulsion_cutoff_factor}")
        resolve_dtype(self.dtype)

    @property
    def element_symbols(self) -> list[str]:
        """Chemical symbols of ``elements``."""
        return [chemical_symbols[z] for z in self.elements]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build a config from ``to_dict`` output; unknown keys and unknown schema versions raise ``ValueError``."""
        data = dict(data)
        version = data.get("schema_version", MODEL_SCHEMA_VERSION)
        if version != MODEL_SCHEMA_VERSION:
            raise ValueError(
                f"model config schema version {version} is not supported by this code "
                f"(it reads version {MODEL_SCHEMA_VERSION}); upgrade universal-mfp"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}")
        for key in ("elements", "fidelities", "radial_mlp_hidden"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)
