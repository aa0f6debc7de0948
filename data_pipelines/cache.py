"""A local cache of raw API responses: one JSON file per (route, chunk), written atomically.

Layout: ``<cache_dir>/<route with '/' as '__'>/<chunk_key>.json`` holding
``{"route", "chunk_key", "params", "fields", "fetched_utc", "data": [doc, ...]}``. A finished
chunk is never downloaded again; a half-written file cannot exist (temporary file + rename). A
file that is nonetheless unreadable (edited by hand, truncated disk) is reported and treated as
missing, so the chunk is fetched again and the file replaced.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from universal_mfp.files import atomic_write_json

logger = logging.getLogger(__name__)

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.+\-]+$")


def _route_dir(route: str) -> str:
    if not route or not _KEY_PATTERN.match(route.replace("/", "__")):
        raise ValueError(f"invalid route name {route!r}")
    return route.strip("/").replace("/", "__")


class ResponseCache:
    """Raw responses keyed by route and chunk.

    Args:
        root: the cache folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, route: str, chunk_key: str) -> Path:
        """File that holds the response of ``route`` for ``chunk_key``."""
        if not _KEY_PATTERN.match(chunk_key):
            raise ValueError(f"invalid chunk key {chunk_key!r}: use letters, digits and . _ + -")
        return self.root / _route_dir(route) / f"{chunk_key}.json"

    def get(self, route: str, chunk_key: str) -> list[dict[str, Any]] | None:
        """The cached documents of a chunk, or ``None`` if the chunk is not (validly) cached."""
        path = self.path(route, chunk_key)
        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("cache file %s is unreadable (%s); the chunk will be fetched again", path, error)
            return None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or payload.get("route") != route or payload.get("chunk_key") != chunk_key:
            logger.warning("cache file %s is not a response of %s/%s; fetching again", path, route, chunk_key)
            return None
        return data

    def put(
        self,
        route: str,
        chunk_key: str,
        data: list[dict[str, Any]],
        *,
        params: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> Path:
        """Store the documents of a chunk atomically and return the file."""
        payload = {
            "route": route,
            "chunk_key": chunk_key,
            "params": params or {},
            "fields": list(fields or []),
            "fetched_utc": datetime.now(timezone.utc).isoformat(),
            "data": data,
        }
        return atomic_write_json(self.path(route, chunk_key), payload)

    def keys(self, route: str) -> list[str]:
        """Chunk keys cached for ``route``, sorted."""
        folder = self.root / _route_dir(route)
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
