"""Graphs for training, built once, and a deterministic batch order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from universal_mfp.data.batching import collate_graphs
from universal_mfp.data.frame import Frame, check_finite_labels
from universal_mfp.data.graph import Graph, frame_to_graph
from universal_mfp.fidelity import fidelity_index


class GraphDataset:
    """Frames turned into graphs (neighbour lists computed once) for one model's cutoff and fidelities."""

    def __init__(self, frames: Sequence[Frame], cutoff: float, fidelities: Sequence[str]) -> None:
        self.frames = list(frames)
        check_finite_labels(self.frames, "training data")
        self.graphs: list[Graph] = []
        for k, frame in enumerate(self.frames):
            try:
                index = fidelity_index(frame.fidelity, fidelities)
            except ValueError as error:
                raise ValueError(f"frame {frame.info.get('frame_id', k)}: {error}") from error
            self.graphs.append(frame_to_graph(frame, cutoff, index))

    def repeated(self, counts: Sequence[int]) -> GraphDataset:
        """A dataset in which graph ``k`` appears ``counts[k]`` times (the graphs are shared, not copied)."""
        if len(counts) != len(self.graphs):
            raise ValueError(f"{len(counts)} repeat counts for {len(self.graphs)} graphs")
        out = GraphDataset.__new__(GraphDataset)
        out.frames = [f for f, n in zip(self.frames, counts, strict=True) for _ in range(int(n))]
        out.graphs = [g for g, n in zip(self.graphs, counts, strict=True) for _ in range(int(n))]
        return out

    def __len__(self) -> int:
        return len(self.graphs)

    def edge_and_atom_counts(self) -> tuple[list[int], list[int]]:
        """Edges and atoms per graph."""
        return [g["edge_index"].shape[1] for g in self.graphs], [len(g["positions"]) for g in self.graphs]

    def collate(self, indices: Sequence[int]) -> Graph:
        """Batch of the graphs at ``indices``."""
        return collate_graphs([self.graphs[i] for i in indices])


def epoch_batches(num_items: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True) -> list[np.ndarray]:
    """The global batches of one epoch; the order depends only on (seed, epoch), so a resume replays it."""
    order = np.arange(num_items)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(num_items)
    return [order[k : k + batch_size] for k in range(0, num_items, batch_size)]


def rank_slice(global_batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """The part of a global batch one data-parallel rank evaluates."""
    return global_batch[rank::world_size]
