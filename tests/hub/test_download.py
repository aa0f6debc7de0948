"""End-to-end downloads with the real huggingface_hub client against the fake Hub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants, file_download

from tests.hub.helpers import file_hashes, registry_entry, structures, tiny_model, write_registry
from universal_mfp.hub import ChecksumMismatchError, ModelDownloadError
from universal_mfp.hub.checkpoint import CHECKPOINT_FILES
from universal_mfp.inference import predict_structures
from universal_mfp.models import load_model

REPO = "umfp-tests/tiny-mf"


def _publish_folder(hub, folder: Path, repo_id: str = REPO) -> str:
    return hub.add_commit(repo_id, {name: (folder / name).read_bytes() for name in CHECKPOINT_FILES})


def _cache_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "hub").rglob("*") if p.is_file() or p.is_symlink())


def _energies(loaded) -> np.ndarray:
    return np.array([p.energy for p in loaded.predict(structures(), fidelity="r2scan")])


@pytest.fixture
def registry(tmp_path: Path, fake_hub, checkpoint_dir: Path) -> Path:
    commit = _publish_folder(fake_hub, checkpoint_dir)
    entry = registry_entry(
        "tiny-mf-v0.1",
        file_hashes(checkpoint_dir),
        aliases=["tiny-mf"],
        repo_id=REPO,
        revision=commit,
        default_fidelity="r2scan",
    )
    return write_registry(tmp_path / "registry.json", [entry])


def test_first_load_downloads_and_second_load_uses_cache(
    fake_hub, registry, hf_env, checkpoint_dir, reference_energies
):
    loaded = load_model("tiny-mf", registry=registry)
    assert loaded.metadata["source"]["kind"] == "hub"
    assert loaded.path.is_relative_to(hf_env / "hub")  # HF_HOME honoured
    assert file_hashes(loaded.path) == file_hashes(checkpoint_dir)
    np.testing.assert_array_equal(_energies(loaded), reference_energies[0])
    assert fake_hub.file_gets == dict.fromkeys(CHECKPOINT_FILES, 1)
    # Registry default fidelity is used when none is given.
    assert loaded.default_fidelity == "r2scan"
    np.testing.assert_array_equal([p.energy for p in loaded.predict(structures())], reference_energies[0])

    fake_hub.stop()
    again = load_model("tiny-mf-v0.1", registry=registry)
    np.testing.assert_array_equal(_energies(again), reference_energies[0])


def test_hub_id_from_cache_with_server_stopped(fake_hub, checkpoint_dir):
    _publish_folder(fake_hub, checkpoint_dir)
    first = load_model(REPO)
    fake_hub.stop()
    second = load_model(REPO)  # revision "main" resolved through the cached ref
    np.testing.assert_array_equal(_energies(first), _energies(second))


def test_offline_mode_uses_cache_and_makes_no_requests(fake_hub, registry, monkeypatch):
    load_model("tiny-mf", registry=registry)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    before = len(fake_hub.requests)
    load_model("tiny-mf", registry=registry)
    load_model(REPO, revision=fake_hub.resolve(REPO, "main"))
    assert len(fake_hub.requests) == before


def test_offline_mode_without_cache_fails_clearly(fake_hub, registry, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelDownloadError, match="not in the cache and offline mode"):
        load_model("tiny-mf", registry=registry)
    assert fake_hub.requests == []


def _tamper(filename: str, content: bytes) -> bytes:
    if filename != "model.safetensors":
        return content
    data = bytearray(content)
    data[-1] ^= 0xFF  # flip the last byte of the last tensor
    return bytes(data)


def test_tampered_file_rejected_after_one_redownload(fake_hub, registry, hf_env, checkpoint_dir):
    fake_hub.serve_hook = _tamper
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors .* has sha256"):
        load_model("tiny-mf", registry=registry)
    assert fake_hub.file_gets["model.safetensors"] == 2  # re-downloaded once
    cached = {p.name for p in _cache_files(hf_env)}
    assert "model.safetensors" not in cached  # the tampered file was evicted: no snapshot entry...
    weights = (checkpoint_dir / "model.safetensors").read_bytes()
    assert hashlib.sha256(_tamper("model.safetensors", weights)).hexdigest() not in cached  # ...and no blob


def test_tampered_once_then_good_redownload_succeeds(fake_hub, registry, checkpoint_dir):
    served = {"count": 0}

    def tamper_once(filename: str, content: bytes) -> bytes:
        if filename == "model.safetensors" and served["count"] < 2:  # first HEAD + GET
            served["count"] += 1
            return _tamper(filename, content)
        return content

    fake_hub.serve_hook = tamper_once
    loaded = load_model("tiny-mf", registry=registry)
    assert fake_hub.file_gets["model.safetensors"] == 2
    assert file_hashes(loaded.path) == file_hashes(checkpoint_dir)


def _no_partial_files(home: Path, checkpoint_dir: Path) -> None:
    files = _cache_files(home)
    assert not [p for p in files if p.name.endswith(".incomplete")]
    assert not [p for p in files if p.name == "model.safetensors"]
    # Every blob left is a complete file (README.md and config.json were fetched before the weights).
    complete = {name: digest for name, digest in file_hashes(checkpoint_dir).items() if name != "model.safetensors"}
    blobs = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.parent.name == "blobs"}
    assert sorted(blobs.values()) == sorted(complete.values())


def test_truncated_transfer_fails_cleanly(fake_hub, registry, hf_env, monkeypatch, checkpoint_dir):
    fast_time = types.SimpleNamespace(sleep=lambda seconds: None, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(file_download, "time", fast_time)  # skip the client's 1 s pauses between resumes
    fake_hub.faults["model.safetensors"] = "truncate"
    with pytest.raises(ModelDownloadError, match=r"download of 'model\.safetensors'.*failed"):
        load_model("tiny-mf", registry=registry)
    assert fake_hub.file_gets["model.safetensors"] >= 2  # the client tried to resume
    _no_partial_files(hf_env, checkpoint_dir)


def test_wrong_content_length_fails_cleanly(fake_hub, registry, hf_env, checkpoint_dir):
    fake_hub.faults["model.safetensors"] = "short"
    with pytest.raises(ModelDownloadError, match="Consistency check failed"):
        load_model("tiny-mf", registry=registry)
    _no_partial_files(hf_env, checkpoint_dir)


def test_pinned_revision(fake_hub, tmp_path, checkpoint_dir, checkpoint_dir_v2, reference_energies):
    old = _publish_folder(fake_hub, checkpoint_dir)
    new = _publish_folder(fake_hub, checkpoint_dir_v2)
    assert fake_hub.resolve(REPO, "main") == new != old
    assert not np.array_equal(reference_energies[0], reference_energies[7])

    registry = write_registry(
        tmp_path / "registry.json",
        [registry_entry("tiny-old", file_hashes(checkpoint_dir), repo_id=REPO, revision=old)],
    )
    pinned = load_model("tiny-old", registry=registry)
    assert pinned.path.name == old
    assert file_hashes(pinned.path) == file_hashes(checkpoint_dir)
    np.testing.assert_array_equal(_energies(pinned), reference_energies[0])
    assert ("HEAD", f"/{REPO}/resolve/{old}/model.safetensors") in fake_hub.requests
    latest = load_model(REPO)
    assert latest.path.name == new
    np.testing.assert_array_equal(_energies(latest), reference_energies[7])
    with pytest.raises(ValueError, match="pinned to revision"):
        load_model("tiny-old", registry=registry, revision=new)


def test_missing_repo_and_revision_fail_clearly(fake_hub, checkpoint_dir):
    _publish_folder(fake_hub, checkpoint_dir)
    with pytest.raises(ModelDownloadError, match="not found"):
        load_model("umfp-tests/does-not-exist")
    with pytest.raises(ModelDownloadError, match="revision 'v9' not found"):
        load_model(REPO, revision="v9")


def test_hub_id_with_explicit_revision_in_float64(fake_hub, checkpoint_dir, checkpoint_dir_v2):
    old = _publish_folder(fake_hub, checkpoint_dir)
    _publish_folder(fake_hub, checkpoint_dir_v2)
    loaded = load_model(REPO, revision=old, dtype="float64")
    assert loaded.path.name == old
    assert loaded.model.dtype == torch.float64
    expected = predict_structures(tiny_model(seed=0).double(), structures(), fidelity="pbe")
    got = loaded.predict(structures(), fidelity="pbe")
    for a, b in zip(expected, got, strict=True):
        assert a.energy == b.energy
        np.testing.assert_array_equal(a.forces, b.forces)


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json"])
def test_revision_missing_a_checkpoint_file_fails_clearly(fake_hub, tmp_path, checkpoint_dir, missing):
    """A Hub commit without one of the checkpoint files: a clear error naming it, nothing half-loaded."""
    files = {p.name: p.read_bytes() for p in checkpoint_dir.iterdir() if p.is_file() and p.name != missing}
    commit = fake_hub.add_commit(REPO, files)
    with pytest.raises(ModelDownloadError, match=missing.replace(".", r"\.")):
        load_model(REPO, revision=commit)
    registry = write_registry(
        tmp_path / "registry.json",
        [registry_entry("tiny-broken", file_hashes(checkpoint_dir), repo_id=REPO, revision=commit)],
    )
    with pytest.raises(ModelDownloadError, match=missing.replace(".", r"\.")):
        load_model("tiny-broken", registry=registry)
