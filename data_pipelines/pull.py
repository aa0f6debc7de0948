"""Pull GGA/GGA+U and r2SCAN data from the Materials Project into ``records.jsonl``.

Plan of a pull (every request goes through ``MPClient.search``, so it is cached per chunk):

1. Resolve the query to material ids: given ids as they are; chemical systems (and the element
   set's sub-systems) through ``materials/summary`` with ``fields=["material_id"]``.
2. Split the sorted ids into chunks. For each chunk: summary documents (formula, deprecation),
   thermo documents with ``thermo_types=["GGA_GGA+U"]`` and, separately, ``["R2SCAN"]`` (never
   the mixed default).
3. Task documents of the calculations named by the thermo entries (``entry.data.task_id``),
   chunked the same way, for each calculation's final structure and energy.
4. Records (see ``records.py``) are rebuilt from the cached chunks, de-duplicated by
   ``record_id``, and written to ``<out>/records.jsonl`` with ``materials.jsonl`` and
   ``pull_summary.json``.

Re-running an interrupted pull re-uses every finished chunk and fetches only the rest.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from universal_mfp_pipelines._io import short_hash, write_jsonl
from universal_mfp_pipelines.mp_client import MPClient
from universal_mfp_pipelines.records import (
    TASKS_ROUTE,
    THERMO_ROUTE,
    MalformedDocumentError,
    record_from_task_doc,
    records_from_thermo_doc,
)

from universal_mfp.files import atomic_write_json

logger = logging.getLogger(__name__)

SUMMARY_ROUTE = "materials/summary"
THERMO_TYPES: tuple[str, ...] = ("GGA_GGA+U", "R2SCAN")
SUMMARY_FIELDS = ["material_id", "formula_pretty", "chemsys", "nsites", "deprecated"]
THERMO_FIELDS = [
    "material_id",
    "thermo_type",
    "formula_pretty",
    "energy_per_atom",
    "uncorrected_energy_per_atom",
    "energy_above_hull",
    "formation_energy_per_atom",
    "energy_type",
    "entry_types",
    "entries",
]
TASK_FIELDS = ["task_id", "run_type", "task_type", "calc_type", "formula_pretty", "output", "structure"]
MAX_CHEMSYS_PER_REQUEST = 50


@dataclass(frozen=True)
class PullQuery:
    """What to pull: material ids, chemical systems (``Li-Fe-O``) and/or an element set.

    An element set ``("Li", "Fe", "O")`` means every material made only of those elements, i.e. all
    chemical systems spanned by them.
    """

    material_ids: tuple[str, ...] = ()
    chemsys: tuple[str, ...] = ()
    elements: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.material_ids or self.chemsys or self.elements):
            raise ValueError("empty query: give material ids, chemical systems or elements")

    def chemical_systems(self) -> list[str]:
        """Sorted, normalised chemical systems of ``chemsys`` and of every sub-system of ``elements``."""
        systems = {"-".join(sorted(c.split("-"))) for c in self.chemsys}
        unique = sorted(set(self.elements))
        for n in range(1, len(unique) + 1):
            systems.update("-".join(combo) for combo in itertools.combinations(unique, n))
        return sorted(systems)


@dataclass
class PullResult:
    """Where a pull wrote its outputs and what it found."""

    out_dir: Path
    records_path: Path
    num_materials: int
    num_records: int
    records_by_run_type: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _chunk_key(label: str, index: int, items: Iterable[str]) -> str:
    return f"{label}-{index:05d}-{short_hash(','.join(items))}"


def _validate_thermo(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        records_from_thermo_doc(doc)


def _id_aliases(task_id: str) -> list[str]:
    """The spellings under which the API may return an id (``mp-123`` and its AlphaID ``mp-aaaaaaet``)."""
    from emmet.core.mpid import AlphaID

    aliases = [task_id]
    with contextlib.suppress(Exception):  # an id without an AlphaID spelling is matched as given
        alpha = AlphaID(task_id.rsplit("-", maxsplit=1)[-1], padlen=8)
        aliases.append(f"{task_id.rsplit('-', maxsplit=1)[0]}-{str(alpha).rsplit('-', maxsplit=1)[-1]}")
        aliases.append(str(alpha))
    return aliases


def resolve_material_ids(client: MPClient, query: PullQuery) -> list[str]:
    """Sorted unique material ids of the query (summary look-ups are cached)."""
    ids = set(query.material_ids)
    systems = query.chemical_systems()
    for index, group in enumerate(_chunks(systems, MAX_CHEMSYS_PER_REQUEST)):
        docs = client.search(SUMMARY_ROUTE, _chunk_key("ids", index, group), {"chemsys": group}, ["material_id"])
        ids.update(str(doc["material_id"]) for doc in docs)
    return sorted(ids)


def pull(
    client: MPClient,
    query: PullQuery,
    out_dir: str | Path,
    *,
    chunk_size: int = 500,
    thermo_types: Sequence[str] = THERMO_TYPES,
    with_tasks: bool = True,
    progress: bool = True,
) -> PullResult:
    """Pull the query's thermo, summary and task documents and write ``records.jsonl``.

    Args:
        client: the cached, retrying client.
        query: what to pull.
        out_dir: output folder (``records.jsonl``, ``materials.jsonl``, ``pull_summary.json``).
        chunk_size: material (or task) ids per request and per cache file.
        thermo_types: thermo types to request, each separately (default ``GGA_GGA+U`` and ``R2SCAN``).
        with_tasks: also pull the task documents named by the thermo entries.
        progress: show progress bars.

    Raises:
        MPPullError: when a chunk cannot be fetched; chunks fetched so far stay cached.
        ValueError: on an unknown thermo type or a malformed document.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    thermo_types = tuple(thermo_types)
    bad = [t for t in thermo_types if t not in THERMO_TYPES]
    if bad:
        raise ValueError(f"unknown thermo types {bad}: use {list(THERMO_TYPES)} (never the mixed GGA_GGA+U_R2SCAN)")
    out_dir = Path(out_dir)
    material_ids = resolve_material_ids(client, query)
    logger.info("pull: %d materials", len(material_ids))
    chunks = _chunks(material_ids, chunk_size)

    summaries: dict[str, dict[str, Any]] = {}
    thermo_docs: list[dict[str, Any]] = []
    bar = tqdm(total=len(chunks) * (1 + len(thermo_types)), desc="pull materials", unit="req", disable=not progress)
    for index, ids in enumerate(chunks):
        for doc in client.search(
            SUMMARY_ROUTE, _chunk_key("summary", index, ids), {"material_ids": ids}, SUMMARY_FIELDS
        ):
            summaries[str(doc["material_id"])] = doc  # spelled as served; mapped below
        bar.update()
        for thermo_type in thermo_types:
            thermo_docs.extend(
                client.search(
                    THERMO_ROUTE,
                    _chunk_key(thermo_type.replace("+", "p"), index, ids),
                    {"material_ids": ids, "thermo_types": [thermo_type]},
                    THERMO_FIELDS,
                    validate=_validate_thermo,
                )
            )
            bar.update()
    bar.close()

    canonical = {alias: mid for mid in material_ids for alias in _id_aliases(mid)}
    summaries = {
        canonical.get(key, key): {**doc, "material_id": canonical.get(key, key)} for key, doc in summaries.items()
    }
    for doc in thermo_docs:
        doc["material_id"] = canonical.get(str(doc["material_id"]), str(doc["material_id"]))
    records: dict[str, dict[str, Any]] = {}
    skipped: Counter[str] = Counter()
    deprecated = {mid for mid, doc in summaries.items() if doc.get("deprecated")}
    task_material: dict[str, str] = {}
    for doc in thermo_docs:
        if str(doc["material_id"]) in deprecated:
            skipped["deprecated material"] += 1
            continue
        doc_records, doc_skipped = records_from_thermo_doc(doc)
        skipped.update(f"run type {label}" for label in doc_skipped)
        for record in doc_records:
            records.setdefault(record["record_id"], record)
            if record["task_id"]:
                task_material.setdefault(record["task_id"], record["material_id"])

    task_ids = sorted(task_material)
    alias_of = {alias: task_id for task_id in task_ids for alias in _id_aliases(task_id)}

    def validate_tasks(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            record_from_task_doc(doc, None)

    if with_tasks and task_ids:
        task_chunks = _chunks(task_ids, chunk_size)
        for index, ids in enumerate(tqdm(task_chunks, desc="pull tasks", unit="req", disable=not progress)):
            docs = client.search(
                TASKS_ROUTE, _chunk_key("tasks", index, ids), {"task_ids": ids}, TASK_FIELDS, validate=validate_tasks
            )
            for doc in docs:
                task_id = alias_of.get(str(doc["task_id"]))
                if task_id is None:
                    continue  # not one of the requested calculations
                try:
                    record = record_from_task_doc({**doc, "task_id": task_id}, task_material[task_id])
                except MalformedDocumentError as error:
                    raise ValueError(f"{TASKS_ROUTE}: {error}") from error
                if record is None:
                    skipped[f"task run type {doc.get('run_type')}"] += 1
                    continue
                records.setdefault(record["record_id"], record)

    ordered = [records[key] for key in sorted(records)]
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path = out_dir / "records.jsonl"
    write_jsonl(records_path, ordered)
    write_jsonl(out_dir / "materials.jsonl", [summaries[k] for k in sorted(summaries)])
    by_run_type = dict(sorted(Counter(r["run_type"] for r in ordered).items()))
    by_route = dict(sorted(Counter(r["route"] for r in ordered).items()))
    missing = sorted(set(material_ids) - {r["material_id"] for r in ordered if r["route"] == THERMO_ROUTE})
    summary = {
        "query": {
            "material_ids": list(query.material_ids),
            "chemsys": list(query.chemsys),
            "elements": list(query.elements),
        },
        "thermo_types": list(thermo_types),
        "endpoint": client.endpoint,
        "num_materials": len(material_ids),
        "num_records": len(ordered),
        "records_by_run_type": by_run_type,
        "records_by_route": by_route,
        "materials_without_thermo_records": len(missing),
        "skipped": dict(sorted(skipped.items())),
        "chunk_size": chunk_size,
    }
    atomic_write_json(out_dir / "pull_summary.json", summary)
    logger.info("pull: %d records (%s) -> %s", len(ordered), by_run_type, records_path)
    return PullResult(out_dir, records_path, len(material_ids), len(ordered), by_run_type, summary)
