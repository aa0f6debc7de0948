"""Fixtures: the real shared data and a loopback MP API serving documents built from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_data_dir
from tests.data_pipelines.mp_server import MPTestServer, build_documents
from tests.data_pipelines.teacher_helpers import write_small_real_frames


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_data_dir()
    if not (path / "raw").is_dir() or not (path / "frames").is_dir():
        pytest.skip(f"real data not found at {path} (clone the project with ../shared beside it)")
    return path


@pytest.fixture(scope="session")
def small_frames(shared_frames_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few small real frames of each generation seed file (read only by the tests that use it)."""
    return write_small_real_frames(shared_frames_dir, tmp_path_factory.mktemp("real_seeds"))


@pytest.fixture(scope="session")
def mp_documents(shared_dir: Path) -> dict:
    return build_documents(shared_dir)


@pytest.fixture
def mp_server(mp_documents: dict) -> Iterator[MPTestServer]:
    server = MPTestServer(mp_documents).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the public API: no key, no endpoint from the environment."""
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("MP_API_ENDPOINT", raising=False)
