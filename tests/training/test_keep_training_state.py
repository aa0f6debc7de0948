"""A long run's state kept in the repository and restored into a fresh run folder resumes the same run."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from tests.hub.helpers import tiny_model
from universal_mfp.training.state_io import latest_state, load_training_state, save_training_state

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "keep_training_state.py"


@pytest.fixture(scope="module")
def keeper():
    spec = importlib.util.spec_from_file_location("keep_training_state", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_with_states(run: Path) -> torch.nn.Module:
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    shadow = {k: v.detach().clone() for k, v in model.named_parameters()}
    for step in (100, 200):
        save_training_state(
            run / "states",
            global_step=step,
            model=model,
            ema_shadow=shadow,
            optimizer=optimizer,
            counters={"epoch": 0, "step_in_epoch": step, "ema_updates": step},
        )
    records = [{"kind": "train", "step": s, "loss": 1.0 / s} for s in range(1, 201)]
    records.append({"kind": "val", "step": 200, "val_loss": 0.1})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return model


def test_keep_then_restore_into_a_fresh_run(keeper, tmp_path):
    model = _run_with_states(tmp_path / "run")
    kept = tmp_path / "kept" / "run"
    assert keeper.keep(tmp_path / "run", kept).name == "step-000000200"
    assert [p.name for p in kept.iterdir() if p.is_dir()] == ["step-000000200"]  # the newest state only
    with gzip.open(kept / "metrics.jsonl.gz", "rt", encoding="utf-8") as handle:
        steps = [(r["kind"], r["step"]) for r in map(json.loads, handle)]
    assert steps == [("train", 50), ("train", 100), ("train", 150), ("train", 200), ("val", 200)]

    fresh = tmp_path / "fresh"
    assert keeper.restore(kept, fresh).name == "step-000000200"
    restored = tiny_model(seed=5)
    optimizer = torch.optim.AdamW(restored.parameters(), lr=1e-3)
    step, _, counters = load_training_state(latest_state(fresh / "states"), model=restored, optimizer=optimizer)
    assert step == 200 and counters["step_in_epoch"] == 200
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    assert len((fresh / "metrics.jsonl").read_text().splitlines()) == 5
    # a run folder with a state of its own is never overwritten by the kept one
    assert keeper.restore(kept, tmp_path / "run") is None


def test_keeping_a_run_without_states_names_the_problem(keeper, tmp_path):
    with pytest.raises(SystemExit, match="holds no complete training state"):
        keeper.keep(tmp_path / "empty", tmp_path / "kept")
    assert keeper.restore(tmp_path / "nothing-kept", tmp_path / "run") is None
