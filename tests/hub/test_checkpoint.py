"""Checkpoint save/load: bit-identical round trips and strict refusal of anything malformed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.hub.helpers import METRICS, TRAINING, structures, tiny_model
from universal_mfp.hub import load_checkpoint, save_checkpoint
from universal_mfp.inference import predict_structures
from universal_mfp.models import load_model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_identical(tmp_path: Path, dtype: str):
    model = tiny_model(dtype)
    folder = save_checkpoint(model, tmp_path / "ckpt", training=TRAINING, metrics=METRICS)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = load_model(folder, dtype=dtype)
    metadata = json.loads((folder / "config.json").read_text())
    assert metadata["model"]["dtype"] == dtype
    assert metadata["training"] == TRAINING and metadata["metrics"] == METRICS
    refs = model.element_references.double()
    assert metadata["element_references"]["r2scan"]["Si"] == float(refs[1, 1])
    for fidelity in ("pbe", "r2scan"):
        expected = predict_structures(model, structures(), fidelity=fidelity)
        got = loaded.predict(structures(), fidelity=fidelity)
        for a, b in zip(expected, got, strict=True):
            assert a.energy == b.energy
            np.testing.assert_array_equal(a.forces, b.forces)
            if a.stress is None:
                assert b.stress is None
            else:
                np.testing.assert_array_equal(a.stress, b.stress)


@pytest.fixture
def saved(tmp_path: Path, checkpoint_dir: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(checkpoint_dir, folder)
    return folder


def _rewrite_weights(folder: Path, change) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def test_missing_tensor_refused(saved: Path):
    _rewrite_weights(saved, lambda t: t.pop("embedding.weight"))
    with pytest.raises(ValueError, match=r"missing \['embedding.weight'\]"):
        load_checkpoint(saved)


def test_extra_tensor_refused(saved: Path):
    _rewrite_weights(saved, lambda t: t.update({"head.bonus": torch.zeros(3)}))
    with pytest.raises(ValueError, match=r"unexpected \['head.bonus'\]"):
        load_checkpoint(saved)


def test_wrong_shape_and_dtype_refused(saved: Path):
    _rewrite_weights(saved, lambda t: t.update({"embedding.weight": torch.zeros(5, 8)}))
    with pytest.raises(ValueError, match=r"'embedding\.weight' has shape"):
        load_checkpoint(saved)
    _rewrite_weights(saved, lambda t: t.update({"embedding.weight": torch.zeros(2, 8, dtype=torch.float64)}))
    with pytest.raises(ValueError, match=r"'embedding\.weight' has dtype"):
        load_checkpoint(saved)


def test_references_must_agree_with_weights(saved: Path):
    metadata = json.loads((saved / "config.json").read_text())
    metadata["element_references"]["pbe"]["O"] += 1.0
    (saved / "config.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="disagrees with the weights"):
        load_checkpoint(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(checkpoint_schema_version=99), "checkpoint schema version 99 is not supported"),
        (lambda m: m["model"].update(schema_version=7), "model config schema version 7 is not supported"),
        (lambda m: m["model"].update(shiny=True), "unknown model config keys"),
        (lambda m: m.update(extra=1), r"unknown keys \['extra'\]"),
        (lambda m: m.pop("element_references"), r"missing keys \['element_references'\]"),
        (lambda m: m.update(fidelities=["r2scan", "pbe"]), "disagree with the model config"),
    ],
)
def test_bad_config_refused(saved: Path, edit, message: str):
    metadata = json.loads((saved / "config.json").read_text())
    edit(metadata)
    (saved / "config.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=message):
        load_checkpoint(saved)


def test_corrupt_files_refused(saved: Path):
    config = (saved / "config.json").read_text()
    (saved / "config.json").write_text(config[: len(config) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_checkpoint(saved)
    (saved / "config.json").write_text(config)
    weights = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(weights[:-100])
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_checkpoint(saved)
    (saved / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_checkpoint(saved)
    (saved / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"weights .* are missing"):
        load_checkpoint(saved)


def test_never_overwrites_without_permission(tmp_path: Path, checkpoint_dir: Path):
    target = tmp_path / "existing"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    model = tiny_model()
    with pytest.raises(FileExistsError, match="not empty"):
        save_checkpoint(model, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    save_checkpoint(model, target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    empty = tmp_path / "empty"
    empty.mkdir()
    save_checkpoint(model, empty)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "existing"]  # no temporary folders left


def test_failed_save_leaves_nothing(tmp_path: Path):
    with pytest.raises(ValueError, match="JSON-able"):
        save_checkpoint(tiny_model(), tmp_path / "bad", training={"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_code_version_says_which_code_made_it(tmp_path: Path):
    import re
    from importlib.metadata import version

    from universal_mfp import __version__
    from universal_mfp.version import code_version

    assert __version__ == version("universal-mfp")  # one source: the installed distribution's metadata
    folder = save_checkpoint(tiny_model(), tmp_path / "ckpt")
    recorded = json.loads((folder / "config.json").read_text())["code_version"]
    assert recorded == code_version() and recorded.startswith(__version__)
    if (Path(__file__).resolve().parents[2] / ".git").exists():  # a git checkout: the commit is recorded
        assert re.fullmatch(re.escape(__version__) + r"\+g[0-9a-f]{10}(\.dirty)?", recorded), recorded
