"""Statistics of a teacher-labelled dataset folder (``teach`` output), read straight from its parquet shards."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from ase.data import chemical_symbols
from universal_mfp_pipelines.shard_runner import MANIFEST

from universal_mfp.files import sha256_file


def _table(folder: Path) -> Any:
    import pyarrow as pa

    files = sorted(folder.glob("labels-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder}: no labels-*.parquet shards")
    columns = ["frame_id", "fidelity", "split", "numbers", "energy", "forces", "stress", "extra_info"]
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def verify_manifest(folder: str | Path) -> dict[str, Any]:
    """Check every shard the manifest lists against its sha256; return the manifest.

    Raises:
        ValueError: if a listed shard is missing or its bytes differ from the manifest.
    """
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in manifest["shards"]:
        path = folder / entry["file"]
        if not path.is_file():
            raise ValueError(f"{folder}: the manifest lists {entry['file']}, which is missing")
        if sha256_file(path) != entry["sha256"]:
            raise ValueError(f"{path}: sha256 differs from the manifest (corrupt or changed)")
    return manifest


def dataset_statistics(folder: str | Path) -> dict[str, Any]:
    """Structures, pairs, elements, compositions, arity, configuration types and splits of a labelled folder.

    Counts are per structure (one structure is one row per teacher fidelity) unless they say rows.
    """
    folder = Path(folder)
    table = _table(folder)
    extras = [json.loads(x) if x else {} for x in table.column("extra_info").to_pylist()]
    fidelities = table.column("fidelity").to_pylist()
    splits = table.column("split").to_pylist()
    numbers = table.column("numbers").to_pylist()
    energies = np.asarray(table.column("energy").to_pylist(), dtype=float)
    by_structure: dict[str, list[int]] = defaultdict(list)
    for row, extra in enumerate(extras):
        by_structure[extra["structure_id"]].append(row)
    fidelity_names = sorted(set(fidelities))
    complete = [rows for rows in by_structure.values() if sorted(fidelities[r] for r in rows) == fidelity_names]
    first = [rows[0] for rows in by_structure.values()]
    element_structures: Counter = Counter()
    element_compositions: dict[str, set[str]] = defaultdict(set)
    arity_structures: Counter = Counter()
    group_splits: dict[str, set[str]] = defaultdict(set)
    atoms = []
    for row in first:
        symbols = {chemical_symbols[z] for z in numbers[row]}
        group = extras[row]["composition_group"]
        for symbol in symbols:
            element_structures[symbol] += 1
            element_compositions[symbol].add(group)
        arity_structures[len(symbols)] += 1
        group_splits[group].add(splits[row])
        atoms.append(len(numbers[row]))
    groups = {extras[row]["composition_group"] for row in first}
    # arity from the atoms, not the group text (extxyz reads a formula such as "InF" back as a float)
    arity_of_group = {extras[row]["composition_group"]: len(set(numbers[row])) for row in first}
    arity_compositions = Counter(arity_of_group.values())
    forces_present = sum(1 for f in table.column("forces").to_pylist() if f is not None)
    stress_present = sum(1 for s in table.column("stress").to_pylist() if s is not None)
    return {
        "rows": table.num_rows,
        "structures": len(by_structure),
        "complete_pairs": len(complete),
        "fidelities": fidelity_names,
        "rows_by_fidelity": dict(sorted(Counter(fidelities).items())),
        "rows_with_forces": forces_present,
        "rows_with_stress": stress_present,
        "all_energies_finite": bool(np.isfinite(energies).all()),
        "elements": len(element_structures),
        "structures_per_element": dict(
            sorted(element_structures.items(), key=lambda kv: chemical_symbols.index(kv[0]))
        ),
        "compositions_per_element": {
            el: len(element_compositions[el]) for el in sorted(element_compositions, key=chemical_symbols.index)
        },
        "compositions": len(groups),
        "compositions_by_arity": dict(sorted(arity_compositions.items())),
        "structures_by_arity": dict(sorted(arity_structures.items())),
        "structures_by_config_type": dict(sorted(Counter(extras[r].get("config_type") for r in first).items())),
        "structures_by_job_kind": dict(sorted(Counter(extras[r].get("job_kind") for r in first).items())),
        "structures_by_split": dict(sorted(Counter(splits[r] for r in first).items())),
        "compositions_by_split": dict(sorted(Counter(next(iter(s)) for s in group_splits.values()).items())),
        "compositions_in_more_than_one_split": sum(1 for s in group_splits.values() if len(s) > 1),
        "atoms_per_structure": {
            "mean": float(np.mean(atoms)),
            "median": float(np.median(atoms)),
            "max": int(np.max(atoms)),
        },
    }


def plot_statistics(stats: dict[str, Any], path: str | Path) -> Path:
    """Structures per element (periodic-table order), and structures per arity and configuration type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = plt.figure(figsize=(14, 7))
    top = fig.add_subplot(2, 1, 1)
    elements = list(stats["compositions_per_element"])
    top.bar(range(len(elements)), [stats["compositions_per_element"][e] for e in elements], color="tab:blue")
    top.set_xticks(range(len(elements)))
    top.set_xticklabels(elements, fontsize=7, rotation=90)
    top.set_ylabel("compositions with the element")
    top.set_yscale("log")
    top.set_title(
        f"{stats['structures']} structures x {len(stats['fidelities'])} teachers, "
        f"{stats['compositions']} compositions, {stats['elements']} elements"
    )
    left = fig.add_subplot(2, 2, 3)
    arity = stats["structures_by_arity"]
    left.bar([str(k) for k in arity], list(arity.values()), color="tab:green")
    left.set_xlabel("elements per structure")
    left.set_ylabel("structures")
    right = fig.add_subplot(2, 2, 4)
    configs = stats["structures_by_config_type"]
    right.barh(list(configs), list(configs.values()), color="tab:orange")
    right.set_xlabel("structures")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
