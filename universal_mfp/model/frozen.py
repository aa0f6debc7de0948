"""Keys for values cached while parameters are frozen (evaluation copies), invalidated when a parameter changes."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def frozen_key(tensors: Iterable[torch.Tensor]) -> tuple | None:
    """A key that changes when any of ``tensors`` is replaced, moved, cast or changed in place.

    ``None`` when any of them requires grad: values computed from trainable parameters are never cached.
    """
    key = []
    for tensor in tensors:
        if tensor.requires_grad:
            return None
        key.append((tensor.data_ptr(), tensor._version, tensor.dtype, tensor.device))
    return tuple(key)
