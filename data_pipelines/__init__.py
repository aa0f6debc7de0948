"""From the Materials Project (and extxyz files) to training shards.

Stages, each a module with one job:

- ``mp_client``: a thin, retrying, caching wrapper over ``mp_api.client.MPRester``.
- ``pull``: GGA/GGA+U and r2SCAN thermo, summary and task documents -> ``records.jsonl``.
- ``pair``: GGA(+U) <-> r2SCAN pairs of the same material, verified with ``StructureMatcher``.
- ``build_dataset``: records or frames -> parquet shards, split by material, statistics, manifest.
- ``importer``: extxyz files -> the same shards.
- ``prototypes``, ``substitution``, ``configurations``: seed crystals, charge-balanced decoration, and the
  configurations around a crystal (relaxation path, rattles, strains, MD, vacancies, surfaces).
- ``generate``: a seeded plan of crystals run in resumable shards -> unlabelled structures.
- ``teachers``: ASE-calculator teachers (CHGNet 0.3.0, CHGNet r2SCAN, SevenNet, any factory) with provenance
  and energy scales; ``teach``: every structure labelled by every teacher, one fidelity each.
- ``shard_runner``: resumable shards, worker processes, ``--part i/N`` and manifests that merge.
- ``teacher_stats``: statistics and integrity of a labelled folder.
- ``cli``: ``python -m universal_mfp_pipelines pull|pair|build|import|all|generate|teach|manifest``.
"""

from universal_mfp_pipelines.build_dataset import build_dataset, write_dataset
from universal_mfp_pipelines.importer import import_extxyz
from universal_mfp_pipelines.mp_client import MPClient, MPPullError
from universal_mfp_pipelines.pair import PairingTolerances, pair_records
from universal_mfp_pipelines.pull import PullQuery, pull

__all__ = [
    "MPClient",
    "MPPullError",
    "PairingTolerances",
    "PullQuery",
    "build_dataset",
    "import_extxyz",
    "pair_records",
    "pull",
    "write_dataset",
]
