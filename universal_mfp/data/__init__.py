"""Data layer: frames, neighbour lists, graphs, batches, readers and parquet shards."""

from universal_mfp.data.batching import batch_to, collate_graphs
from universal_mfp.data.frame import Frame, as_frame, frame_from_atoms, frame_from_pymatgen
from universal_mfp.data.graph import frame_to_graph
from universal_mfp.data.readers import read_extxyz, read_frames
from universal_mfp.data.shards import read_shard, write_shard

__all__ = [
    "Frame",
    "as_frame",
    "batch_to",
    "collate_graphs",
    "frame_from_atoms",
    "frame_from_pymatgen",
    "frame_to_graph",
    "read_extxyz",
    "read_frames",
    "read_shard",
    "write_shard",
]
