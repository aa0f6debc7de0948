"""Write training shards: parquet files with ``universal_mfp.data.shards.SHARD_SCHEMA``.

``write_dataset`` takes frames from any source (MP records, extxyz files), assigns each its split
by the project's one rule (``universal_mfp.data.splits``: material id, else MatPES id, else task
id, else geometry), writes shards named
``<split>-<fidelity>-<index>.parquet`` (all in one folder, so ``read_frames(folder)`` reads them),
per-fidelity statistics and a ``manifest.json`` with each shard's row count and sha256.

An existing output is never replaced silently: a folder that already holds shards or a manifest is
refused unless ``overwrite=True``, and even then only files listed in the old manifest are
replaced (parquet files it does not list are left alone and the build refuses).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from universal_mfp_pipelines._io import read_jsonl
from universal_mfp_pipelines.records import record_to_frame
from universal_mfp_pipelines.splits import DEFAULT_FRACTIONS, SPLITS, assign_split, validate_fractions
from universal_mfp_pipelines.stats import fidelity_statistics

from universal_mfp.data.frame import Frame
from universal_mfp.data.shards import SHARD_SCHEMA_VERSION, write_shard
from universal_mfp.data.splits import group_key
from universal_mfp.files import atomic_write_json, sha256_file, staging_folder

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "universal_mfp.dataset"
DEFAULT_ROWS_PER_SHARD = 20_000


def _check_output(out_dir: Path, overwrite: bool) -> list[Path]:
    """Files of a previous build to replace; raise if the folder holds anything else we would clobber."""
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a folder")
    manifest_path = out_dir / MANIFEST
    parquet = sorted(out_dir.glob("*.parquet"))
    if not parquet and not manifest_path.exists():
        return []
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds a dataset ({len(parquet)} parquet files); pass --overwrite to replace it "
            "or choose another folder"
        )
    listed: set[str] = set()
    if manifest_path.exists():
        import json

        try:
            listed = {entry["file"] for entry in json.loads(manifest_path.read_text())["shards"]}
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{manifest_path} is not a dataset manifest; refusing to overwrite") from error
    foreign = [p.name for p in parquet if p.name not in listed]
    if foreign:
        raise FileExistsError(
            f"{out_dir} holds parquet files no manifest lists ({foreign[:5]}); refusing to overwrite them"
        )
    return [out_dir / name for name in sorted(listed)] + ([manifest_path] if manifest_path.exists() else [])


def write_dataset(
    frames: Sequence[Frame],
    out_dir: str | Path,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    overwrite: bool = False,
    inputs: Iterable[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Split frames by material id and write shards, statistics and ``manifest.json``; return the manifest.

    Raises:
        FileExistsError: if ``out_dir`` holds a dataset and ``overwrite`` is false.
        ValueError: on duplicate ``frame_id`` values or a frame without fidelity/source.
    """
    fractions = validate_fractions(fractions)
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
    out_dir = Path(out_dir)
    to_replace = _check_output(out_dir, overwrite)

    duplicates = [k for k, n in Counter(str(f.info.get("frame_id")) for f in frames).items() if n > 1]
    if duplicates:
        raise ValueError(f"duplicate frame ids {duplicates[:5]}: every frame needs a unique info['frame_id']")

    groups = [group_key(frame) for frame in frames]
    splits = [assign_split(group, fractions, seed) for group in groups]
    labelled = [frame.replace(info={**frame.info, "split": split}) for frame, split in zip(frames, splits, strict=True)]

    buckets: dict[tuple[str, str], list[Frame]] = defaultdict(list)
    for frame, split in zip(labelled, splits, strict=True):
        buckets[(split, str(frame.fidelity))].append(frame)

    with staging_folder(out_dir) as staging:
        shards = []
        keys = sorted(buckets, key=lambda k: (SPLITS.index(k[0]), k[1]))
        total = sum((len(buckets[k]) + rows_per_shard - 1) // rows_per_shard for k in keys)
        bar = tqdm(total=total, desc="write shards", unit="shard", disable=not progress)
        for split, fidelity in keys:
            bucket = buckets[(split, fidelity)]
            for index, start in enumerate(range(0, len(bucket), rows_per_shard)):
                name = f"{split}-{fidelity}-{index:05d}.parquet"
                path = write_shard(bucket[start : start + rows_per_shard], staging / name)
                shards.append(
                    {
                        "file": name,
                        "split": split,
                        "fidelity": fidelity,
                        "rows": len(bucket[start : start + rows_per_shard]),
                        "bytes": path.stat().st_size,
                        "sha256": sha256_file(path),
                    }
                )
                bar.update()
        bar.close()
        statistics = fidelity_statistics(labelled, splits)
        manifest = {
            "format": MANIFEST_FORMAT,
            "shard_schema_version": SHARD_SCHEMA_VERSION,
            "created_utc": datetime.now(timezone.utc).isoformat(),
            "inputs": list(inputs),
            "split": {
                "by": "composition_group|material_id|matpes_id|task_id|geometry",
                "fractions": dict(zip(SPLITS, fractions, strict=True)),
                "seed": seed,
            },
            "rows": {
                "total": len(labelled),
                "by_split": {s: splits.count(s) for s in SPLITS},
                "by_fidelity": dict(sorted(Counter(str(f.fidelity) for f in labelled).items())),
            },
            "groups": len(set(groups)),
            "shards": shards,
            "statistics": statistics,
        }
        atomic_write_json(staging / "statistics.json", statistics)
        atomic_write_json(staging / MANIFEST, manifest)
        for old in to_replace:
            old.unlink(missing_ok=True)
        (out_dir / "statistics.json").unlink(missing_ok=True) if to_replace else None
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir()):
            item.replace(out_dir / item.name)
    logger.info("dataset: %d frames in %d shards -> %s", len(labelled), len(shards), out_dir)
    return manifest


def frames_from_records(records: Iterable[dict[str, Any]]) -> list[Frame]:
    """Frames of pulled records; a thermo entry whose calculation was also pulled as a task is dropped.

    Both describe the same calculation (same ``task_id`` and fidelity); the task record is kept.
    """
    records = list(records)
    task_keys = {(r["fidelity"], r["task_id"]) for r in records if r["route"] == "materials/tasks"}
    kept = [
        r
        for r in records
        if r["route"] == "materials/tasks" or not r.get("task_id") or (r["fidelity"], r["task_id"]) not in task_keys
    ]
    dropped = len(records) - len(kept)
    if dropped:
        logger.info("build: %d thermo entries duplicate a pulled task and are not repeated", dropped)
    return [record_to_frame(r) for r in kept]


def build_dataset(
    records_path: str | Path,
    out_dir: str | Path,
    **kwargs: Any,
) -> dict[str, Any]:
    """Build shards from a pull's ``records.jsonl``; keyword arguments go to ``write_dataset``."""
    records_path = Path(records_path)
    if records_path.is_dir():
        records_path = records_path / "records.jsonl"
    if not records_path.is_file():
        raise FileNotFoundError(f"no records file at {records_path}: run the pull stage first")
    frames = frames_from_records(read_jsonl(records_path))
    if not frames:
        raise ValueError(f"{records_path} holds no records")
    return write_dataset(frames, out_dir, inputs=[str(records_path)], **kwargs)
