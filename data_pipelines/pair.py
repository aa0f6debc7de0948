"""Pair GGA(+U) and r2SCAN records of the same material, verified with pymatgen's ``StructureMatcher``.

Records are first grouped by reduced formula (and, inside a group, by material id), so the number
of structure comparisons grows with the number of materials, not with its square; groups are
independent and can be matched in parallel processes.

For each material id with records at both fidelities the GGA(+U) and r2SCAN structures are
compared. The outcome, one row per material, is:

- ``matched``: exactly one GGA(+U)/r2SCAN combination matches and (with ``cross_check``) the
  r2SCAN structure matches no GGA(+U) record of another material of the same formula.
- ``ambiguous``: more than one combination matches within the material (``multiple_matches``), or
  the r2SCAN structure also matches another material's GGA(+U) structure
  (``matches_other_material``: duplicate polymorphs in the database).
- ``unmatched``: no r2SCAN record (``no_r2scan_record``), no GGA(+U) record (``no_gga_record``),
  or the structures differ (``structure_mismatch``, with the primitive-cell sizes).

Records without a material id (a user's own data) are paired by structure inside their formula
group: each r2SCAN record with the GGA(+U) records that match it.

Tolerances (``PairingTolerances``) are those emmet uses to group MP tasks into materials:
``ltol=0.2`` (fractional lattice-length tolerance), ``stol=0.3`` (site tolerance, in units of the
average free length per atom), ``angle_tol=5`` degrees, compared on primitive cells
(``primitive_cell=True``), with volumes normalised (``scale=True``: r2SCAN cells are a few percent
smaller than PBE ones), without supercell search, species compared by element only
(``ElementComparator``: no oxidation states or magnetic moments). Primitive cells are computed once
per record; two structures whose primitive cells differ in size are never compared.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from universal_mfp.fidelity import PBE, R2SCAN

logger = logging.getLogger(__name__)

MATCHED, UNMATCHED, AMBIGUOUS = "matched", "unmatched", "ambiguous"


@dataclass(frozen=True)
class PairingTolerances:
    """StructureMatcher settings used for pairing (see the module docstring)."""

    ltol: float = 0.2
    stol: float = 0.3
    angle_tol: float = 5.0
    primitive_cell: bool = True
    scale: bool = True
    cross_check: bool = True


class _Group:
    """The structures of one formula group, with primitive cells and fits memoised."""

    def __init__(self, records: Sequence[dict[str, Any]], tol: PairingTolerances) -> None:
        from pymatgen.analysis.structure_matcher import ElementComparator, StructureMatcher

        self.records = {r["record_id"]: r for r in records}
        self.tol = tol
        self.matcher = StructureMatcher(
            ltol=tol.ltol,
            stol=tol.stol,
            angle_tol=tol.angle_tol,
            primitive_cell=False,  # primitive cells are computed once per record below
            scale=tol.scale,
            attempt_supercell=False,
            comparator=ElementComparator(),
        )
        self._structures: dict[str, Any] = {}
        self._rms: dict[tuple[str, str], tuple[float, float] | None] = {}

    def structure(self, record_id: str) -> Any:
        if record_id not in self._structures:
            from pymatgen.core import Lattice, Structure

            r = self.records[record_id]
            s = Structure(Lattice(r["cell"]), r["numbers"], r["positions"], coords_are_cartesian=True)
            self._structures[record_id] = s.get_primitive_structure() if self.tol.primitive_cell else s
        return self._structures[record_id]

    def rms(self, a: str, b: str) -> tuple[float, float] | None:
        """(rms, max) displacement of a match of records ``a`` and ``b``, or ``None`` if they differ."""
        if (a, b) not in self._rms:
            sa, sb = self.structure(a), self.structure(b)
            result = None
            if len(sa) == len(sb):
                found = self.matcher.get_rms_dist(sa, sb)
                result = None if found is None else (float(found[0]), float(found[1]))
            self._rms[(a, b)] = result
        return self._rms[(a, b)]


def _row(
    group: _Group,
    material_id: str | None,
    status: str,
    reason: str,
    detail: str,
    gga: str | None,
    r2scan: str | None,
    match: tuple[float, float] | None = None,
    others: Iterable[str] = (),
) -> dict[str, Any]:
    recs = group.records
    g, r = (recs.get(gga) if gga else None), (recs.get(r2scan) if r2scan else None)
    any_record = g or r
    e_g = g["energy"] / len(g["numbers"]) if g and g.get("energy") is not None else None
    e_r = r["energy"] / len(r["numbers"]) if r and r.get("energy") is not None else None
    volume_ratio = None
    if g and r:
        v_g = abs(np.linalg.det(np.asarray(g["cell"]))) / len(g["numbers"])
        v_r = abs(np.linalg.det(np.asarray(r["cell"]))) / len(r["numbers"])
        volume_ratio = float(v_r / v_g)
    return {
        "material_id": material_id,
        "formula": any_record["formula"] if any_record else None,
        "status": status,
        "reason": reason,
        "detail": detail,
        "gga_record_id": gga,
        "r2scan_record_id": r2scan,
        "gga_run_type": g["run_type"] if g else None,
        "r2scan_run_type": r["run_type"] if r else None,
        "rms_dist": None if match is None else match[0],
        "max_dist": None if match is None else match[1],
        "volume_ratio": volume_ratio,
        "gga_energy_per_atom": e_g,
        "r2scan_energy_per_atom": e_r,
        "other_matches": sorted(set(others)),
    }


def _pair_material(
    group: _Group, material_id: str, gga: list[str], r2s: list[str], other_gga: dict[str, list[str]]
) -> dict[str, Any]:
    tol = group.tol
    if not r2s:
        return _row(
            group, material_id, UNMATCHED, "no_r2scan_record", "no r2SCAN record for this material", gga[0], None
        )
    if not gga:
        return _row(
            group, material_id, UNMATCHED, "no_gga_record", "no GGA/GGA+U record for this material", None, r2s[0]
        )
    matches = [(g, r, m) for g in gga for r in r2s if (m := group.rms(g, r)) is not None]
    if not matches:
        sizes = sorted({len(group.structure(x)) for x in gga}), sorted({len(group.structure(x)) for x in r2s})
        detail = (
            f"StructureMatcher(ltol={tol.ltol}, stol={tol.stol}, angle_tol={tol.angle_tol}) finds no match; "
            f"primitive cells have {sizes[0]} (GGA) and {sizes[1]} (r2SCAN) sites"
        )
        return _row(group, material_id, UNMATCHED, "structure_mismatch", detail, gga[0], r2s[0])
    if len(matches) > 1:
        g, r, m = min(matches, key=lambda t: t[2][0])
        return _row(
            group,
            material_id,
            AMBIGUOUS,
            "multiple_matches",
            f"{len(matches)} GGA x r2SCAN combinations of this material match",
            g,
            r,
            m,
        )
    g, r, m = matches[0]
    if tol.cross_check:
        others = [
            mid
            for mid, ids in other_gga.items()
            if mid != material_id and any(group.rms(x, r) is not None for x in ids)
        ]
        if others:
            return _row(
                group,
                material_id,
                AMBIGUOUS,
                "matches_other_material",
                f"the r2SCAN structure also matches the GGA structure of {', '.join(sorted(others))}",
                g,
                r,
                m,
                others,
            )
    return _row(group, material_id, MATCHED, "", "", g, r, m)


def pair_group(records: Sequence[dict[str, Any]], tol: PairingTolerances) -> list[dict[str, Any]]:
    """Pair the records of one reduced-formula group (a picklable unit of work)."""
    group = _Group(records, tol)
    by_material: dict[str, dict[str, list[str]]] = defaultdict(lambda: {PBE: [], R2SCAN: []})
    anonymous: dict[str, list[str]] = {PBE: [], R2SCAN: []}
    for r in records:
        if r["fidelity"] not in (PBE, R2SCAN):
            continue
        target = by_material[r["material_id"]] if r.get("material_id") else anonymous
        target[r["fidelity"]].append(r["record_id"])
    other_gga = {mid: sides[PBE] for mid, sides in by_material.items() if sides[PBE]}
    rows = [
        _pair_material(group, mid, sorted(sides[PBE]), sorted(sides[R2SCAN]), other_gga)
        for mid, sides in sorted(by_material.items())
    ]
    used: set[str] = set()
    for r in sorted(anonymous[R2SCAN]):
        hits = [(g, m) for g in sorted(anonymous[PBE]) if (m := group.rms(g, r)) is not None]
        if not hits:
            rows.append(
                _row(
                    group, None, UNMATCHED, "structure_mismatch", "no GGA/GGA+U record of this formula matches", None, r
                )
            )
            continue
        used.update(g for g, _ in hits)
        g, m = min(hits, key=lambda t: t[1][0])
        if len(hits) > 1:
            rows.append(
                _row(
                    group,
                    None,
                    AMBIGUOUS,
                    "multiple_matches",
                    f"{len(hits)} GGA/GGA+U records match",
                    g,
                    r,
                    m,
                    [h for h, _ in hits],
                )
            )
        else:
            rows.append(_row(group, None, MATCHED, "", "", g, r, m))
    for g in sorted(set(anonymous[PBE]) - used):
        rows.append(
            _row(group, None, UNMATCHED, "no_r2scan_record", "no r2SCAN record of this formula matches", g, None)
        )
    return rows


def pair_records(
    records: Iterable[dict[str, Any]],
    tolerances: PairingTolerances | None = None,
    *,
    workers: int = 1,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Pair GGA(+U) and r2SCAN records; return the pairs table rows and a summary.

    Args:
        records: records as in ``records.jsonl`` (``record_id``, ``material_id``, ``fidelity``,
            ``run_type``, ``formula``, ``numbers``, ``positions``, ``cell``, ``energy``). Pass the
            materials' representative records (the thermo entries), not every task.
        tolerances: matcher settings; defaults documented in the module docstring.
        workers: processes; formula groups are distributed among them.
        progress: show a progress bar over formula groups.
    """
    tol = tolerances or PairingTolerances()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    count = 0
    for record in records:
        groups[record["formula"]].append(record)
        count += 1
    ordered = sorted(groups.values(), key=len, reverse=True)  # big groups first balances the pool
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(ordered), desc="pair", unit="formula", disable=not progress)
    if workers == 1:
        for group in ordered:
            rows.extend(pair_group(group, tol))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(pair_group, ordered, [tol] * len(ordered), chunksize=8):
                rows.extend(result)
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - start
    rows.sort(key=lambda row: (row["material_id"] or "", row["gga_record_id"] or "", row["r2scan_record_id"] or ""))
    status = Counter(row["status"] for row in rows)
    summary = {
        "num_records": count,
        "num_formula_groups": len(groups),
        "num_rows": len(rows),
        "status": {key: status.get(key, 0) for key in (MATCHED, AMBIGUOUS, UNMATCHED)},
        "reasons": dict(sorted(Counter(row["reason"] for row in rows if row["reason"]).items())),
        "tolerances": asdict(tol),
        "workers": workers,
        "elapsed_s": round(elapsed, 3),
    }
    logger.info("pairing: %s in %.1f s", summary["status"], elapsed)
    return rows, summary


def pairing_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that represent materials: thermo entries (tasks are calculations, not materials)."""
    return [r for r in records if r.get("route") != "materials/tasks"]


def write_pairs(
    rows: list[dict[str, Any]], summary: dict[str, Any], out_dir: str | Path, *, overwrite: bool = False
) -> Path:
    """Write ``pairs.parquet`` and ``pairs_summary.json`` into ``out_dir``.

    Raises:
        FileExistsError: if ``pairs.parquet`` exists and ``overwrite`` is false.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from universal_mfp.files import atomic_write_bytes, atomic_write_json

    out_dir = Path(out_dir)
    path = out_dir / "pairs.parquet"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    schema = pa.schema(
        [
            ("material_id", pa.string()),
            ("formula", pa.string()),
            ("status", pa.string()),
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("gga_record_id", pa.string()),
            ("r2scan_record_id", pa.string()),
            ("gga_run_type", pa.string()),
            ("r2scan_run_type", pa.string()),
            ("rms_dist", pa.float64()),
            ("max_dist", pa.float64()),
            ("volume_ratio", pa.float64()),
            ("gga_energy_per_atom", pa.float64()),
            ("r2scan_energy_per_atom", pa.float64()),
            ("other_matches", pa.list_(pa.string())),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    atomic_write_json(out_dir / "pairs_summary.json", summary)
    return path
