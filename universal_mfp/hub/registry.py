"""The model registry: ``registry.json`` (data, shipped with the package) mapping names to checkpoints.

Each entry gives a name, aliases, where the checkpoint lives (a folder bundled under
``universal_mfp/pretrained/`` and/or a Hub ``repo_id`` with a pinned commit ``revision``), the sha256 of every
file, the fidelities, an explicit ``default_fidelity`` (or null), a license and a description. The file is
validated on load; any problem raises ``ValueError`` naming the entry and the field.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from universal_mfp.fidelity import validate_fidelity_name
from universal_mfp.hub.checkpoint import CONFIG_FILE, WEIGHTS_FILE

REGISTRY_SCHEMA_VERSION = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*$")
_ENTRY_KEYS = frozenset(
    {
        "name",
        "aliases",
        "description",
        "license",
        "fidelities",
        "default_fidelity",
        "bundled_path",
        "repo_id",
        "revision",
        "files",
    }
)


def default_registry_path() -> Path:
    """The registry shipped with the package."""
    return Path(__file__).resolve().parent / "registry.json"


def pretrained_root() -> Path:
    """Folder that bundled checkpoints are relative to (``universal_mfp/pretrained``)."""
    return Path(__file__).resolve().parents[1] / "pretrained"


def is_hub_repo_id(text: str) -> bool:
    """True if ``text`` looks like an ``owner/name`` Hub repository id."""
    return bool(_REPO_ID.match(text))


@dataclass(frozen=True)
class RegistryEntry:
    """One registered model (see the module docstring for the fields)."""

    name: str
    aliases: tuple[str, ...]
    description: str
    license: str
    fidelities: tuple[str, ...]
    default_fidelity: str | None
    files: dict[str, str]
    bundled_path: str | None = None
    repo_id: str | None = None
    revision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of this entry (as it appears in ``registry.json``)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "license": self.license,
            "fidelities": list(self.fidelities),
            "default_fidelity": self.default_fidelity,
            "bundled_path": self.bundled_path,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "files": dict(self.files),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegistryEntry:
        """Validate and build an entry.

        Raises:
            ValueError: naming the entry and the offending field.
        """
        if not isinstance(data, Mapping):
            raise ValueError("each registry entry must be an object")
        label = f"registry entry {data.get('name')!r}"
        missing = sorted(_ENTRY_KEYS - {"bundled_path", "repo_id", "revision"} - set(data))
        unknown = sorted(set(data) - _ENTRY_KEYS)
        if missing or unknown:
            raise ValueError(f"{label}: missing keys {missing}, unknown keys {unknown}")
        name, aliases = data["name"], data["aliases"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{label}: invalid name")
        if not isinstance(aliases, list) or not all(isinstance(a, str) and _NAME.match(a) for a in aliases):
            raise ValueError(f"{label}: aliases must be a list of names")
        for key in ("description", "license"):
            if not isinstance(data[key], str) or (key == "license" and not data[key].strip()):
                raise ValueError(f"{label}: {key} must be a {'non-empty ' if key == 'license' else ''}string")
        fidelities = data["fidelities"]
        if not isinstance(fidelities, list) or not fidelities or len(set(fidelities)) != len(fidelities):
            raise ValueError(f"{label}: fidelities must be a non-empty list of distinct names")
        for fidelity in fidelities:
            validate_fidelity_name(fidelity)
        default = data["default_fidelity"]
        if default is not None and default not in fidelities:
            raise ValueError(f"{label}: default_fidelity {default!r} is not one of {fidelities}")
        bundled, repo_id, revision = data.get("bundled_path"), data.get("repo_id"), data.get("revision")
        if bundled is None and repo_id is None:
            raise ValueError(f"{label}: needs a bundled_path and/or a repo_id")
        if bundled is not None:
            pure = PurePosixPath(bundled) if isinstance(bundled, str) else None
            if pure is None or not bundled or pure.is_absolute() or ".." in pure.parts:
                raise ValueError(f"{label}: bundled_path must be a relative path inside universal_mfp/pretrained")
        if repo_id is not None:
            if not isinstance(repo_id, str) or not is_hub_repo_id(repo_id):
                raise ValueError(f"{label}: repo_id must look like 'owner/name'")
            if not isinstance(revision, str) or not _COMMIT.match(revision):
                raise ValueError(f"{label}: a Hub entry needs a pinned revision (a 40-character commit sha)")
        elif revision is not None:
            raise ValueError(f"{label}: revision is only meaningful with a repo_id")
        files = data["files"]
        if not isinstance(files, Mapping) or not {CONFIG_FILE, WEIGHTS_FILE} <= set(files):
            raise ValueError(f"{label}: files must give the sha256 of at least {CONFIG_FILE} and {WEIGHTS_FILE}")
        for filename, digest in files.items():
            pure = PurePosixPath(filename)
            if pure.is_absolute() or ".." in pure.parts or not isinstance(digest, str) or not _SHA256.match(digest):
                raise ValueError(f"{label}: files[{filename!r}] must be a relative name with a lower-case sha256")
        return cls(
            name=name,
            aliases=tuple(aliases),
            description=data["description"],
            license=data["license"],
            fidelities=tuple(fidelities),
            default_fidelity=default,
            files=dict(files),
            bundled_path=bundled,
            repo_id=repo_id,
            revision=revision,
        )


@dataclass(frozen=True)
class Registry:
    """A validated registry: entries by name, and every name and alias mapped to its entry's name."""

    entries: dict[str, RegistryEntry]
    lookup: dict[str, str]
    path: Path

    def names(self) -> list[str]:
        """All names and aliases, sorted."""
        return sorted(self.lookup)

    def get(self, name: str) -> RegistryEntry | None:
        """The entry for a name or alias, or ``None``."""
        key = self.lookup.get(name)
        return None if key is None else self.entries[key]

    def resolve(self, name: str) -> RegistryEntry:
        """The entry for a name or alias.

        Raises:
            ValueError: for an unknown name, listing the available names and the closest matches.
        """
        entry = self.get(name)
        if entry is None:
            raise self.unknown_name_error(name)
        return entry

    def unknown_name_error(self, name: str) -> ValueError:
        """The error for an unknown model name: lists the available names and the closest matches."""
        available = self.names()
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(available) if available else "none registered"
        return ValueError(
            f"unknown model {name!r}: it is not a checkpoint folder, a registered name or an 'owner/name' "
            f"Hub id.{hint} Available models: {listing}"
        )


def parse_registry(data: Any, *, path: Path) -> Registry:
    """Validate registry JSON content.

    Raises:
        ValueError: on an unknown schema version, a malformed entry or a duplicated name/alias.
    """
    if not isinstance(data, dict) or set(data) != {"registry_schema_version", "models"}:
        raise ValueError(f"{path}: a registry is an object with exactly 'registry_schema_version' and 'models'")
    if data["registry_schema_version"] != REGISTRY_SCHEMA_VERSION:
        raise ValueError(
            f"{path}: registry schema version {data['registry_schema_version']!r} is not supported "
            f"(this code reads version {REGISTRY_SCHEMA_VERSION}); upgrade universal-mfp"
        )
    if not isinstance(data["models"], list):
        raise ValueError(f"{path}: 'models' must be a list")
    entries: dict[str, RegistryEntry] = {}
    lookup: dict[str, str] = {}
    for raw in data["models"]:
        try:
            entry = RegistryEntry.from_dict(raw)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        for key in (entry.name, *entry.aliases):
            if key in lookup:
                raise ValueError(f"{path}: name or alias {key!r} is used twice")
            lookup[key] = entry.name
        entries[entry.name] = entry
    return Registry(entries=entries, lookup=lookup, path=path)


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry file (the packaged ``registry.json`` by default).

    Raises:
        ValueError: if the file is not valid JSON or not a valid registry.
    """
    path = Path(path) if path is not None else default_registry_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    return parse_registry(data, path=path)
