"""Run a folder's numbered shards: resumable, in worker processes, as independent parts, with a manifest.

The generation and labelling stages both work in shards. A shard is done when its output file *and* its
record (``<stem>.json``, written after the file, atomically) exist; a rerun skips done shards and redoes
the rest, so a kill loses at most the shards in flight and duplicates nothing. ``--part i/N`` takes the
shards whose index is ``i - 1`` modulo ``N``, so N machines (or batch jobs) split the work without talking
to each other; ``manifest.json`` is rebuilt from the records of whatever shards a folder holds, so the
folders of the parts merge by copying their files together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from universal_mfp.files import atomic_write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def parse_part(text: str | None) -> tuple[int, int]:
    """``"i/N"`` (1-based) -> (i - 1, N); ``None`` -> (0, 1).

    Raises:
        ValueError: unless 1 <= i <= N.
    """
    if text is None:
        return 0, 1
    index, sep, total = str(text).partition("/")
    try:
        i, n = int(index), int(total)
    except ValueError:
        raise ValueError(f"--part {text!r}: expected i/N, e.g. 2/8") from None
    if not sep or not 1 <= i <= n:
        raise ValueError(f"--part {text!r}: expected i/N with 1 <= i <= N")
    return i - 1, n


def shard_stem(prefix: str, index: int) -> str:
    """The file stem of shard ``index``: ``<prefix>-00012``."""
    return f"{prefix}-{index:05d}"


def record_path(folder: Path, prefix: str, index: int) -> Path:
    """Where shard ``index``'s record (its manifest entry) lives."""
    return folder / f"{shard_stem(prefix, index)}.json"


def is_done(folder: Path, prefix: str, index: int, suffix: str) -> bool:
    """A shard is done when both its output and its record exist and the record names that output."""
    record = record_path(folder, prefix, index)
    output = folder / f"{shard_stem(prefix, index)}{suffix}"
    if not (record.is_file() and output.is_file()):
        return False
    try:
        entry = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return entry.get("file") == output.name


def pending_shards(folder: Path, prefix: str, suffix: str, num_shards: int, part: tuple[int, int]) -> list[int]:
    """Shard indices of this part that are not done yet."""
    i, n = part
    return [k for k in range(num_shards) if k % n == i and not is_done(folder, prefix, k, suffix)]


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(threads: int) -> None:
    """Limit torch and BLAS to ``threads`` threads.

    BLAS threads matter: ASE's cell filter solves many 3x3 systems, and a multi-threaded BLAS shared by
    several worker processes makes each solve milliseconds long (six times slower generation, measured).
    """
    import torch

    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variables set before the workers start do the same there
        return
    threadpool_limits(threads)


@contextlib.contextmanager
def _limited_threads(threads: int) -> Iterator[None]:
    """``_init_worker``'s limits inside this process, undone afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(threads)
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(before)


def run_shards(
    work: Callable[[int], dict[str, Any]],
    indices: Sequence[int],
    *,
    workers: int = 1,
    progress: bool = True,
    desc: str = "shards",
    threads_per_worker: int = 1,
) -> list[dict[str, Any]]:
    """Call ``work(index)`` for every index, in ``workers`` processes; return the records in completion order.

    ``work`` must write its shard and record itself (so a finished shard survives a later crash) and be a
    picklable top-level callable (e.g. a ``functools.partial``).
    """
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(indices), desc=desc, unit="shard", disable=not progress)
    if workers <= 1 or len(indices) <= 1:
        with _limited_threads(max(threads_per_worker, 1)):
            for index in indices:
                records.append(work(index))
                bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
        os.environ.update({name: str(threads_per_worker) for name in _THREAD_VARIABLES})  # inherited at spawn
        try:
            with context.Pool(workers, initializer=_init_worker, initargs=(threads_per_worker,)) as pool:
                for record in pool.imap_unordered(work, indices):
                    records.append(record)
                    bar.update()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    bar.close()
    return records


def write_manifest(folder: Path, prefix: str, header: dict[str, Any]) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from the records of every shard in ``folder``; return it."""
    entries = []
    for path in sorted(folder.glob(f"{prefix}-*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: unreadable shard record ({error})") from error
        if (folder / str(entry.get("file"))).is_file():
            entries.append(entry)
    manifest = {
        **header,
        "updated_utc": datetime.now(timezone.utc).isoformat(),
        "num_shards_done": len(entries),
        "shards": entries,
    }
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def total(entries: Iterable[dict[str, Any]], key: str) -> int:
    """Sum of an integer field over shard records."""
    return sum(int(entry.get(key, 0)) for entry in entries)
