"""Concatenate graphs of different sizes and fidelities into one batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from universal_mfp.data import keys
from universal_mfp.data.graph import Graph


def collate_graphs(graphs: Sequence[Graph]) -> Graph:
    """Concatenate single-structure graphs into one batch.

    Atom and edge tensors are concatenated, edge indices are offset by the atoms before them and
    ``batch`` numbers each atom's structure.
    """
    if len(graphs) == 0:
        raise ValueError("cannot collate an empty list of graphs")
    batch: Graph = {}
    counts = torch.cat([g[keys.NUM_ATOMS] for g in graphs])
    offsets = torch.cumsum(counts, 0) - counts
    edge_index = [g[keys.EDGE_INDEX] + offsets[k] for k, g in enumerate(graphs)]
    batch[keys.EDGE_INDEX] = torch.cat(edge_index, dim=1)
    batch[keys.BATCH] = torch.repeat_interleave(torch.arange(len(graphs)), counts)
    for key in graphs[0]:
        if key in (keys.EDGE_INDEX, keys.BATCH):
            continue
        batch[key] = torch.cat([g[key] for g in graphs], dim=0)
    return batch


def batch_to(batch: Graph, device: torch.device | str) -> Graph:
    """Move every tensor of a batch to ``device`` (dtypes unchanged)."""
    return {k: v.to(device) for k, v in batch.items()}
