"""Fixtures: tiny checkpoints, an isolated Hugging Face environment and the fake Hub server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants

from tests.hub.fake_hub import FakeHub
from tests.hub.helpers import METRICS, TRAINING, structures, tiny_model
from universal_mfp.hub import save_checkpoint
from universal_mfp.inference import predict_structures


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float32 tiny checkpoint with metrics (read-only for tests)."""
    return save_checkpoint(
        tiny_model(), tmp_path_factory.mktemp("ckpt") / "tiny-mf", training=TRAINING, metrics=METRICS
    )


@pytest.fixture(scope="session")
def checkpoint_dir_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second checkpoint with different weights (a later revision)."""
    return save_checkpoint(
        tiny_model(seed=7), tmp_path_factory.mktemp("ckpt2") / "tiny-mf", training=TRAINING, metrics=METRICS
    )


@pytest.fixture(scope="session")
def reference_energies() -> dict[int, np.ndarray]:
    """r2scan energies of ``structures()`` from the in-memory tiny models (seed -> energies)."""
    return {
        seed: np.array([p.energy for p in predict_structures(tiny_model(seed=seed), structures(), fidelity="r2scan")])
        for seed in (0, 7)
    }


@pytest.fixture
def hf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate the Hugging Face environment: HF_HOME in tmp_path, online, no token, quiet."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    return home


@pytest.fixture
def fake_hub(hf_env: Path, monkeypatch: pytest.MonkeyPatch):
    """A running fake Hub on 127.0.0.1 with HF_ENDPOINT pointing at it; stopped at teardown."""
    hub = FakeHub()
    endpoint = hub.start()
    # Only the environment variable: universal_mfp reads HF_ENDPOINT when it downloads, so this also checks that
    # it honours an endpoint set after huggingface_hub was imported (constants.ENDPOINT keeps its import value).
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    yield hub
    hub.stop()
