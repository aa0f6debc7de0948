"""The package version, from the installed distribution's metadata (the one place it is read)."""

from __future__ import annotations

import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DISTRIBUTION = "universal-mfp"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


@cache
def code_version() -> str:
    """The version plus, in a git checkout, the commit (``0.1.0+g1a2b3c4``, ``.dirty`` with local changes).

    Recorded in every checkpoint, so a model says which code made it.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return __version__

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 (fixed git commands on our own checkout)
            ["git", "-C", str(root), *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=10", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if status else ''}"
