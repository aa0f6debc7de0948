"""A thin wrapper over ``mp_api.client.MPRester``: API key, endpoint, explicit fields, retries, cache.

Every call names its route (``materials/summary``, ``materials/thermo``, ``materials/tasks``), the
search criteria and the fields it needs. The raw documents of each chunk are stored in a
``ResponseCache`` before they are used, so an interrupted pull resumes where it stopped and never
downloads a finished chunk twice. Failures (HTTP errors, timeouts, malformed JSON, documents
without their primary key) are retried with exponential backoff; when the retries are exhausted an
``MPPullError`` names the route, the chunk and the last error, and nothing is written to the cache.

The client is always given search criteria, so ``MPRester`` never takes its S3 open-data path.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from universal_mfp_pipelines.cache import ResponseCache

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
API_KEY_ENV = "MP_API_KEY"
ENDPOINT_ENV = "MP_API_ENDPOINT"
API_KEY_LENGTH = 32

# Route -> the primary key every returned document must carry.
PRIMARY_KEYS = {
    "materials/summary": "material_id",
    "materials/thermo": "material_id",
    "materials/tasks": "task_id",
}

_CLIENT_ERROR = re.compile(r"status code (4\d\d)")


class MPPullError(RuntimeError):
    """A Materials Project request failed for good (after retries) or cannot succeed."""


class MissingAPIKeyError(MPPullError):
    """No usable Materials Project API key."""


def resolve_api_key(api_key: str | None = None) -> str:
    """Return the API key from the argument or ``$MP_API_KEY``.

    Raises:
        MissingAPIKeyError: if there is none, or it is not 32 characters long.
    """
    key = api_key or os.environ.get(API_KEY_ENV, "")
    key = key.strip()
    if not key:
        raise MissingAPIKeyError(
            f"no Materials Project API key: set ${API_KEY_ENV} (a 32-character key from "
            "https://next-gen.materialsproject.org/api) or pass --api-key"
        )
    if len(key) != API_KEY_LENGTH:
        raise MissingAPIKeyError(
            f"the Materials Project API key must be {API_KEY_LENGTH} characters, got {len(key)}; check ${API_KEY_ENV}"
        )
    return key


def resolve_endpoint(endpoint: str | None = None) -> str:
    """Return the API endpoint from the argument, ``$MP_API_ENDPOINT`` or the public default."""
    value = endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    return value if value.endswith("/") else value + "/"


def _retryable(error: Exception) -> bool:
    """Client errors (HTTP 4xx other than 429, invalid fields) will not go away by retrying."""
    if "invalid fields requested" in str(error):
        return False
    match = _CLIENT_ERROR.search(str(error))
    return not (match and match.group(1) != "429")


class MPClient:
    """Cached, retrying access to the Materials Project API.

    Args:
        cache_dir: folder of the raw-response cache.
        api_key: MP API key; default ``$MP_API_KEY``.
        endpoint: API endpoint; default ``$MP_API_ENDPOINT`` or ``https://api.materialsproject.org/``.
        max_attempts: attempts per request (first try included).
        backoff: first retry delay in seconds; doubles on every retry.
        backoff_max: upper bound of a single delay, seconds.
        sleep: the sleep function (tests pass a recorder).
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        api_key: str | None = None,
        endpoint: str | None = None,
        max_attempts: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if backoff < 0 or backoff_max < 0:
            raise ValueError("backoff delays must be non-negative")
        self.cache = ResponseCache(cache_dir)
        self.api_key = resolve_api_key(api_key)
        self.endpoint = resolve_endpoint(endpoint)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._rester: Any = None
        self.requests_made = 0

    # -- the MPRester -------------------------------------------------------------------------

    def _get_rester(self) -> Any:
        if self._rester is None:
            from mp_api.client import MPRester

            self._rester = MPRester(
                api_key=self.api_key,
                endpoint=self.endpoint,
                use_document_model=False,  # keep the raw documents; they are cached as served
                mute_progress_bars=True,
                notify_db_version=False,
            )
        return self._rester

    def _route_rester(self, route: str) -> Any:
        rester = self._get_rester()
        resters = {
            "materials/summary": lambda: rester.materials.summary,
            "materials/thermo": lambda: rester.materials.thermo,
            "materials/tasks": lambda: rester.materials.tasks,
        }
        if route not in resters:
            raise ValueError(f"unsupported route {route!r}; known routes are {sorted(resters)}")
        return resters[route]()

    # -- requests ------------------------------------------------------------------------------

    def _search_once(self, route: str, criteria: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
        self.requests_made += 1
        docs = self._route_rester(route).search(**criteria, fields=list(fields), chunk_size=1000)
        if not isinstance(docs, list):
            raise ValueError(f"malformed response: expected a list of documents, got {type(docs).__name__}")
        key = PRIMARY_KEYS[route]
        for index, doc in enumerate(docs):
            if not isinstance(doc, dict) or not doc.get(key):
                raise ValueError(f"malformed response: document {index} has no {key!r}")
        return docs

    def search(
        self,
        route: str,
        chunk_key: str,
        criteria: dict[str, Any],
        fields: list[str],
        validate: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the documents of one chunk, from the cache or from the API.

        Args:
            route: ``materials/summary``, ``materials/thermo`` or ``materials/tasks``.
            chunk_key: a name unique to this route and criteria (the cache key).
            criteria: keyword arguments of the route's ``search`` (never empty).
            fields: the document fields to request (never all fields).
            validate: optional check of the documents before they are cached; it raises
                ``ValueError`` on a malformed document (which is then retried, never cached).

        Raises:
            MPPullError: if every attempt failed, or the server rejected the request (HTTP 4xx).
        """
        if not criteria:
            raise ValueError("search criteria are required (without them MPRester downloads whole collections)")
        if not fields:
            raise ValueError("fields are required: request only what the pipeline uses")
        cached = self.cache.get(route, chunk_key)
        if cached is not None:
            logger.debug("cache hit %s/%s (%d docs)", route, chunk_key, len(cached))
            return cached
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                docs = self._search_once(route, criteria, fields)
                if validate is not None:
                    validate(docs)
            except MissingAPIKeyError:
                raise
            except Exception as error:  # any transport or parse failure is retried
                last_error = error
                if not _retryable(error):
                    raise MPPullError(f"{route} chunk {chunk_key}: the server rejected the request: {error}") from error
                if attempt < self.max_attempts:
                    delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
                    logger.warning(
                        "%s chunk %s: attempt %d/%d failed (%s); retrying in %.2f s",
                        route,
                        chunk_key,
                        attempt,
                        self.max_attempts,
                        _one_line(error),
                        delay,
                    )
                    self._sleep(delay)
                continue
            self.cache.put(route, chunk_key, docs, params=_jsonable(criteria), fields=fields)
            return docs
        kind = "malformed response" if isinstance(last_error, ValueError) else "request failed"
        raise MPPullError(
            f"{route} chunk {chunk_key}: {kind} after {self.max_attempts} attempts at {self.endpoint}: "
            f"{_one_line(last_error)}"
        ) from last_error


def _one_line(error: Exception | None) -> str:
    text = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
    text = " ".join(text.split())
    return text if len(text) < 400 else text[:400] + "..."


def _jsonable(criteria: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in criteria.items()}
