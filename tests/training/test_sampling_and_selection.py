"""Per-source oversampling (``repeat``) and the choice of the best epoch (``selection_metric``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml


def _config(folder: Path, data_dir: Path, *, crystal_repeat: int, **training) -> Path:
    from tests.training.conftest import write_config

    path = write_config(folder, data_dir, **training)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["sources"] = [
        {"path": p, "repeat": crystal_repeat} if p.endswith("crystals_PBE.extxyz") else p
        for p in raw["data"]["sources"]
    ]
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repeat_is_read_per_source(small_real_set, tmp_path):
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import read_sources_with_repeats

    config = load_run_config(_config(tmp_path, small_real_set, crystal_repeat=3))
    frames, repeats = read_sources_with_repeats(config)
    assert len(frames) == len(repeats)
    crystals = np.array([f.stress is not None for f in frames])  # only the crystals carry a stress
    assert crystals.sum() == 4
    assert set(repeats[crystals].tolist()) == {3}
    assert set(repeats[~crystals].tolist()) == {1}


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_repeat_is_refused_with_the_source_named(tmp_path, bad):
    from universal_mfp.training.config import parse_run_config

    raw = {"output_dir": "run", "data": {"sources": [{"path": "frames.extxyz", "repeat": bad}]}}
    with pytest.raises(ValueError, match=r"frames\.extxyz: repeat must be a whole number"):
        parse_run_config(raw, base_dir=tmp_path)


def test_repeated_dataset_shares_graphs_and_checks_counts(small_real_set):
    from universal_mfp.data.dataset import GraphDataset
    from universal_mfp.data.readers import read_frames

    frames = read_frames(small_real_set / "crystals_PBE.extxyz")
    dataset = GraphDataset(frames, cutoff=4.0, fidelities=("pbe",))
    repeated = dataset.repeated([2, 1, 0, 3])
    assert len(repeated) == 6
    assert repeated.graphs[0] is dataset.graphs[0] and repeated.graphs[1] is dataset.graphs[0]
    assert [g is dataset.graphs[3] for g in repeated.graphs[3:]] == [True, True, True]
    with pytest.raises(ValueError, match="3 repeat counts for 4 graphs"):
        dataset.repeated([1, 1, 1])


def test_selection_score():
    from universal_mfp.training.trainer import TrainerSettings, selection_score

    errors = {"pbe": {"energy_mae": 10.0, "forces_mae": 900.0}, "r2scan": {"energy_mae": 30.0}, "x": {"n_energy": 0}}
    assert selection_score("loss", 0.5, errors) == 0.5
    assert selection_score("energy_mae", 0.5, errors) == 20.0
    assert selection_score("last", 0.5, errors, epoch=7) < selection_score("last", 0.1, errors, epoch=6)
    with pytest.raises(ValueError, match="needs validation structures with energies"):
        selection_score("energy_mae", 0.5, {"pbe": {"forces_mae": 1.0}})
    with pytest.raises(ValueError, match="selection_metric must be one of"):
        TrainerSettings(selection_metric="force_mae")


def test_energy_selection_and_oversampling_in_a_real_run(small_real_set, tmp_path):
    from universal_mfp.hub.checkpoint import load_checkpoint
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import train_from_config

    config = load_run_config(
        _config(tmp_path, small_real_set, crystal_repeat=3, epochs=4, selection_metric="energy_mae", batch_size=4)
    )
    summary = train_from_config(config, resume=False)
    records = [json.loads(line) for line in (config.output_dir / "metrics.jsonl").read_text().splitlines()]
    validations = [r for r in records if r["kind"] == "val"]
    scores = [r["score"] for r in validations]
    for record in validations:
        maes = [v["energy_mae"] for v in record["errors"].values() if "energy_mae" in v]
        assert record["score"] == pytest.approx(float(np.mean(maes)))
        assert record["selection_metric"] == "energy_mae"
    training = load_checkpoint(summary.best_model_dir).metadata["training"]
    assert training["best_epoch"] == int(np.argmin(scores))
    # the crystals are the only frames with a stress; each one in training is seen 3 times per epoch
    counts = training["splits"]["train"]
    plain = sum(v["frames"] for v in counts.values())
    crystals = sum(v["with_stress"] for v in counts.values())
    assert crystals > 0
    assert training["train_samples_per_epoch"] == plain + 2 * crystals
    assert training["source_repeats"] == {"crystals_PBE.extxyz": 3}
    train_steps = sum(1 for r in records if r["kind"] == "train" and r["epoch"] == 0)
    assert train_steps == int(np.ceil(training["train_samples_per_epoch"] / 4))
