"""Parquet dataset shards: one row per frame, with a fidelity label.

Columns (units as in ``universal_mfp.units``):

=============  =====================  ==========================================================
column         type                   meaning
=============  =====================  ==========================================================
frame_id       string                 unique id of the row (e.g. ``mp-149:task-123:step-4``)
material_id    string, nullable       Materials Project material id (or a user's own id)
task_id        string, nullable       calculation id
source         string                 where the frame came from (file, API route)
functional     string, nullable       the original label: ``GGA``, ``GGA+U``, ``PBE``, ``r2SCAN``...
fidelity       string                 fidelity name (``pbe``, ``r2scan``, ...)
split          string, nullable       ``train`` / ``val`` / ``test`` (assigned per material)
numbers        list<int32>            atomic numbers, length n
positions      list<float64>          Cartesian positions, Å, row-major (n, 3)
cell           list<float64>          lattice vectors as rows, Å, row-major (3, 3)
pbc            list<bool>             periodicity, length 3
energy         float64, nullable      total energy, eV
forces         list<float64>, null    forces, eV/Å, row-major (n, 3)
stress         list<float64>, null    stress, eV/Å³, ASE sign convention, row-major (3, 3)
extra_info     string, nullable       JSON object of the frame's other scalar ``info`` entries
                                      (e.g. ``matpes_id``, ``energy_atomic``, ``pair``, ``distance``)
=============  =====================  ==========================================================

Schema version 2 added ``extra_info``; version-1 shards (without it) are still read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from universal_mfp.data.frame import Frame
from universal_mfp.files import atomic_file

SHARD_SCHEMA_VERSION = "2"
READABLE_SCHEMA_VERSIONS = ("1", "2")
_SCHEMA_METADATA_KEY = b"universal_mfp.shard_schema_version"

SHARD_SCHEMA = pa.schema(
    [
        pa.field("frame_id", pa.string(), nullable=False),
        pa.field("material_id", pa.string()),
        pa.field("task_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("functional", pa.string()),
        pa.field("fidelity", pa.string(), nullable=False),
        pa.field("split", pa.string()),
        pa.field("numbers", pa.list_(pa.int32()), nullable=False),
        pa.field("positions", pa.list_(pa.float64()), nullable=False),
        pa.field("cell", pa.list_(pa.float64()), nullable=False),
        pa.field("pbc", pa.list_(pa.bool_()), nullable=False),
        pa.field("energy", pa.float64()),
        pa.field("forces", pa.list_(pa.float64())),
        pa.field("stress", pa.list_(pa.float64())),
        pa.field("extra_info", pa.string()),
    ],
    metadata={_SCHEMA_METADATA_KEY: SHARD_SCHEMA_VERSION.encode()},
)

_ID_COLUMNS = ("material_id", "task_id", "functional", "split")
_COLUMN_INFO = frozenset(("frame_id", "source", *_ID_COLUMNS))


def _extra_info(info: dict) -> str | None:
    """The info entries without a column of their own, as JSON (scalars only: arrays are not metadata)."""
    extra = {}
    for key, raw in info.items():
        if key in _COLUMN_INFO or raw is None:
            continue
        value = raw.item() if isinstance(raw, np.generic) else raw
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, str | int | float | bool):
            extra[str(key)] = value
    return json.dumps(extra, sort_keys=True) if extra else None


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def frames_to_table(frames: Sequence[Frame]) -> pa.Table:
    """Convert frames to a table with ``SHARD_SCHEMA``.

    Each frame needs a fidelity and ``info["frame_id"]`` and ``info["source"]``; ``material_id``,
    ``task_id``, ``functional`` and ``split`` are read from ``info`` when present.
    """
    columns: dict[str, list] = {name: [] for name in SHARD_SCHEMA.names}
    for k, frame in enumerate(frames):
        if frame.fidelity is None:
            raise ValueError(f"frame {k} has no fidelity; every shard row needs one")
        for required in ("frame_id", "source"):
            if not frame.info.get(required):
                raise ValueError(f"frame {k} has no info[{required!r}]; every shard row needs one")
        columns["frame_id"].append(str(frame.info["frame_id"]))
        columns["source"].append(str(frame.info["source"]))
        for name in _ID_COLUMNS:
            columns[name].append(_optional_str(frame.info.get(name)))
        columns["fidelity"].append(frame.fidelity)
        columns["numbers"].append(frame.numbers.astype(np.int32))
        columns["positions"].append(frame.positions.reshape(-1))
        columns["cell"].append(frame.cell.reshape(-1))
        columns["pbc"].append(frame.pbc.tolist())
        columns["energy"].append(frame.energy)
        columns["forces"].append(None if frame.forces is None else frame.forces.reshape(-1))
        columns["stress"].append(None if frame.stress is None else frame.stress.reshape(-1))
        columns["extra_info"].append(_extra_info(dict(frame.info)))
    return pa.Table.from_pydict(columns, schema=SHARD_SCHEMA)


def write_shard(frames: Sequence[Frame], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write frames to one parquet shard, atomically (temporary file, then rename).

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = frames_to_table(frames)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def _list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (values, offsets, valid) of a list column, without a Python loop over rows."""
    array = table.column(name).combine_chunks()
    valid = ~array.is_null().to_numpy(zero_copy_only=False)
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy(zero_copy_only=False)
    base = offsets[0]
    return values, offsets - base, valid


def table_to_frames(table: pa.Table, *, source_name: str = "table") -> list[Frame]:
    """Convert a table with ``SHARD_SCHEMA`` columns back to frames."""
    missing = [name for name in SHARD_SCHEMA.names if name not in table.column_names and name != "extra_info"]
    if missing:
        raise ValueError(f"{source_name}: not a universal_mfp shard, missing columns {missing}")
    numbers, num_off, _ = _list_column(table, "numbers")
    positions, pos_off, _ = _list_column(table, "positions")
    cells, cell_off, _ = _list_column(table, "cell")
    pbcs, pbc_off, _ = _list_column(table, "pbc")
    forces, f_off, f_valid = _list_column(table, "forces")
    stresses, s_off, s_valid = _list_column(table, "stress")
    energy = table.column("energy").to_pylist()
    scalars = {name: table.column(name).to_pylist() for name in ("frame_id", "source", "fidelity", *_ID_COLUMNS)}
    extras = table.column("extra_info").to_pylist() if "extra_info" in table.column_names else [None] * table.num_rows
    frames = []
    for r in range(table.num_rows):
        n = int(num_off[r + 1] - num_off[r])
        if pos_off[r + 1] - pos_off[r] != 3 * n:
            raise ValueError(f"{source_name}: row {r} has {n} atoms but {pos_off[r + 1] - pos_off[r]} position values")
        info = {name: scalars[name][r] for name in ("frame_id", "source", *_ID_COLUMNS) if scalars[name][r] is not None}
        if extras[r]:
            try:
                extra = json.loads(extras[r])
            except json.JSONDecodeError as error:
                raise ValueError(f"{source_name}: row {r} has malformed extra_info ({error})") from error
            if not isinstance(extra, dict):
                raise ValueError(f"{source_name}: row {r} extra_info is not a JSON object")
            info = {**extra, **info}
        frames.append(
            Frame(
                numbers=numbers[num_off[r] : num_off[r + 1]],
                positions=positions[pos_off[r] : pos_off[r + 1]].reshape(n, 3),
                cell=cells[cell_off[r] : cell_off[r + 1]].reshape(3, 3),
                pbc=pbcs[pbc_off[r] : pbc_off[r + 1]],
                fidelity=scalars["fidelity"][r],
                energy=energy[r],
                forces=forces[f_off[r] : f_off[r + 1]].reshape(n, 3) if f_valid[r] else None,
                stress=stresses[s_off[r] : s_off[r + 1]].reshape(3, 3) if s_valid[r] else None,
                info=info,
            )
        )
    return frames


def read_shard(path: str | Path) -> list[Frame]:
    """Read one parquet shard into frames.

    Raises:
        ValueError: if the file is not a shard of a known schema version, or a row is inconsistent.
    """
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path}: cannot read parquet shard ({error})") from error
    version = (table.schema.metadata or {}).get(_SCHEMA_METADATA_KEY)
    if version is not None and version.decode() not in READABLE_SCHEMA_VERSIONS:
        raise ValueError(
            f"{path}: shard schema version {version.decode()} is not supported"
            f" (this code reads {', '.join(READABLE_SCHEMA_VERSIONS)})"
        )
    return table_to_frames(table, source_name=str(path))
