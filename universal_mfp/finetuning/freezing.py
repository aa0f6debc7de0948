"""What trains during fine-tuning, down to single rows of the per-fidelity tensors.

Modes:

- ``readout``: only the fine-tuned fidelity's own parameters: its row of every per-fidelity tensor
  (``MultiFidelityPotential.is_per_fidelity``: the ``fidelity_bias`` of the fidelity-conditioned linear
  layers, ``fidelity_delta``, ``element_references``). Every shared weight and every other fidelity's row
  is frozen, so the other fidelities' predictions stay bit-identical.
- ``all-but-embedding``: every shared weight except the species embedding, plus the rows of the
  fine-tuned fidelity and of the fidelities present in the replay data.
- ``all``: the same with the embedding.

Rows that must not change are frozen by splitting the tensor (``torch.nn.utils.parametrize``): during
training the tensor is ``base.index_add(0, rows, delta)`` with ``base`` a frozen buffer and ``delta`` the
only trainable part, so neither gradients nor weight decay nor the EMA can touch the frozen rows. ``delta``
starts at zero, so weight decay pulls the trained rows towards their initial values, not towards zero.
On exit the split is folded back into an ordinary parameter of the original name and shape.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize

from universal_mfp.model.potential import MultiFidelityPotential

TRAIN_MODES: tuple[str, ...] = ("readout", "all-but-embedding", "all")
EMBEDDING_PREFIX = "embedding."


class RowSplit(nn.Module):
    """Parametrization ``value = base.index_add(0, rows, delta)``: only ``rows`` of the tensor can change."""

    def __init__(self, base: torch.Tensor, rows: list[int]) -> None:
        super().__init__()
        self.register_buffer("base", base.detach().clone())
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long, device=base.device))

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        """The full tensor from the trainable rows' offsets."""
        return self.base.index_add(0, self.rows, delta)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        """Offsets of ``rows`` of ``value`` from the frozen base (zero at registration)."""
        return value[self.rows] - self.base[self.rows]


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, attribute = name.rpartition(".")
    return (model.get_submodule(path) if path else model), attribute


@contextmanager
def trainable_parameters(
    model: MultiFidelityPotential, mode: str, fidelities: Collection[str]
) -> Iterator[list[nn.Parameter]]:
    """Split the per-fidelity tensors so only ``fidelities``' rows train; yield the parameters to train.

    Args:
        model: the potential (modified in place while the context is open, restored to plain parameters on exit).
        mode: one of ``TRAIN_MODES``.
        fidelities: fidelities whose own rows may change (in ``readout`` mode, the fine-tuned one only).

    Raises:
        ValueError: for an unknown mode or fidelity.
    """
    if mode not in TRAIN_MODES:
        raise ValueError(f"unknown training mode {mode!r}; use one of {list(TRAIN_MODES)}")
    unknown = sorted(set(fidelities) - set(model.fidelities))
    if unknown:
        raise ValueError(f"unknown fidelities {unknown}; the model's fidelities are {list(model.fidelities)}")
    rows = sorted(model.fidelities.index(f) for f in fidelities)
    split: list[tuple[nn.Module, str]] = []
    trainable: list[nn.Parameter] = []
    for name, param in list(model.named_parameters()):
        if model.is_per_fidelity(name):
            if len(rows) == len(model.fidelities):
                trainable.append(param)
            elif rows:
                owner, attribute = _owner(model, name)
                parametrize.register_parametrization(owner, attribute, RowSplit(param, rows))
                split.append((owner, attribute))
                trainable.append(owner.parametrizations[attribute].original)
        elif mode == "all" or (mode == "all-but-embedding" and not name.startswith(EMBEDDING_PREFIX)):
            trainable.append(param)
    try:
        yield trainable
    finally:
        with torch.no_grad():
            for owner, attribute in split:
                parametrize.remove_parametrizations(owner, attribute, leave_parametrized=True)


def describe_trainable(model: MultiFidelityPotential, mode: str, fidelities: Collection[str]) -> dict[str, object]:
    """JSON-able summary of what a mode trains (for the checkpoint's training summary)."""
    with trainable_parameters(model, mode, fidelities) as params:
        count = sum(p.numel() for p in params)
    shared = {
        "readout": "none",
        "all-but-embedding": "all shared weights except the species embedding",
        "all": "all shared weights",
    }[mode]
    return {
        "mode": mode,
        "trainable_parameters": int(count),
        "shared_weights": shared,
        "per_fidelity_rows": sorted(fidelities, key=model.fidelities.index),
        "frozen_fidelities": [f for f in model.fidelities if f not in fidelities],
    }
