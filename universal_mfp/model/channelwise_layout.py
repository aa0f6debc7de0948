"""The layout shared by the two message passes of ``ChannelwiseTensorProduct`` (plain and memory-lean).

A ``Block`` is the set of paths leaving one input irrep; both passes hold every block's inputs
``[N, 2 l1 + 1, u]`` and node sums ``[N, K, u]`` flat, side by side, and ``split_columns`` takes them apart;
``MessageLayout`` is what the memory-lean pass needs from the tensor product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class Block:
    """The paths leaving one input irrep: where they read and write."""

    in_start: int  # first column of the input irrep in the node features
    mul: int  # its multiplicity u
    dim_in: int  # 2 l1 + 1
    num_paths: int  # P
    weight_start: int  # first weight column of its paths (they are contiguous, P * u columns)
    width: int  # K: summed output dimensions of its paths
    outputs: tuple[tuple[int, int, int], ...]  # per path: (output irrep index, first k, 2 l3 + 1)


class MessageLayout(Protocol):
    """The parts of ``ChannelwiseTensorProduct`` that the memory-lean pass reads."""

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The blocks, in input order."""
        ...

    def coupling(self, index: int, dtype: torch.dtype) -> torch.Tensor:
        """Block ``index``'s constant coupling matrix (Clebsch-Gordan times normalisation) in ``dtype``."""
        ...

    def inputs_by_block(self, features: torch.Tensor) -> torch.Tensor:
        """Node features -> every block's input [N, 2 l1 + 1, u], flat, side by side (in block order)."""
        ...

    def input_gradient(self, grad_by_block: torch.Tensor) -> torch.Tensor:
        """The inverse of ``inputs_by_block`` for gradients."""
        ...

    def output_from_blocks(self, sums: torch.Tensor) -> torch.Tensor:
        """Every block's node sums [N, K, u], flat and side by side -> e3nn's output layout."""
        ...

    def output_gradient_by_block(self, grad: torch.Tensor) -> torch.Tensor:
        """The inverse of ``output_from_blocks`` for gradients."""
        ...


def split_columns(matrix: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Column blocks of ``matrix``, each contiguous (rows of a strided view gather several times slower)."""
    return [part.contiguous() for part in matrix.split(sizes, dim=1)]
