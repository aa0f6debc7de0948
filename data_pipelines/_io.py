"""JSON-lines helpers and short hashes shared by the pipeline stages (atomic writes: ``universal_mfp.files``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from universal_mfp.files import atomic_write_bytes


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line, atomically; return the number of rows."""
    lines = [json.dumps(row, sort_keys=True, separators=(",", ":")) for row in rows]
    atomic_write_bytes(path, ("\n".join(lines) + ("\n" if lines else "")).encode())
    return len(lines)


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSON-lines file.

    Raises:
        ValueError: if a line is not a JSON object, naming the file and line.
    """
    path = Path(path)
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield row


def short_hash(text: str, length: int = 16) -> str:
    """A short, stable hex digest of ``text`` (sha256 prefix)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]
