"""The trainer refuses NaN or inf labels, naming the file, the frame and the label."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk

from tests.training.conftest import write_config
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.frame import Frame, check_finite_labels, frame_from_atoms
from universal_mfp.data.shards import write_shard


def _frames(count: int) -> list[Frame]:
    frames = []
    for k in range(count):
        atoms = bulk("Si", "diamond", a=5.43)
        atoms.rattle(0.02, seed=k)
        frame = frame_from_atoms(atoms, fidelity="pbe")
        frames.append(
            frame.replace(
                energy=-10.8 + 0.01 * k,
                forces=np.zeros((2, 3)),
                stress=np.zeros((3, 3)),
                info={"frame_id": f"si-{k}", "source": "test"},
            )
        )
    return frames


@pytest.mark.parametrize(
    ("label", "value"),
    [("energy", math.nan), ("forces", np.full((2, 3), np.inf)), ("stress", np.full((3, 3), np.nan))],
)
def test_graph_dataset_refuses_non_finite_labels(label: str, value: object):
    frames = _frames(3)
    frames[1] = frames[1].replace(**{label: value})
    with pytest.raises(ValueError, match=rf"frame 1 \(si-1\) has non-finite \(NaN or inf\) {label}"):
        GraphDataset(frames, 4.0, ("pbe",))
    check_finite_labels(_frames(3), "clean")  # finite labels pass


def test_training_run_names_the_shard_with_a_nan_label(tmp_path: Path):
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import read_sources

    frames = _frames(4)
    frames[2] = frames[2].replace(energy=math.inf)
    data = tmp_path / "data"
    write_shard(frames, data / "bad.parquet")
    path = write_config(tmp_path, data)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["sources"] = [str(data / "bad.parquet")]
    path.write_text(yaml.safe_dump(raw))
    config = load_run_config(path)
    with pytest.raises(ValueError, match=r"bad\.parquet: frame 2 \(si-2\) has non-finite \(NaN or inf\) energy"):
        read_sources(config)


def test_trainer_stops_when_the_loss_becomes_non_finite(tmp_path: Path):
    """A finite but absurd label (1e200 eV) overflows the squared error: the run stops and names the batch."""
    from universal_mfp.model import ModelConfig
    from universal_mfp.training.baselines import train_model
    from universal_mfp.training.run import normalised_model
    from universal_mfp.training.trainer import NonFiniteLossError, TrainerSettings

    frames = _frames(4)
    frames[3] = frames[3].replace(energy=1e200)
    config = ModelConfig(
        elements=(14,),
        fidelities=("pbe",),
        num_layers=1,
        hidden_irreps="4x0e",
        radial_mlp_hidden=(4,),
        readout_hidden=4,
    )
    settings = TrainerSettings(epochs=1, batch_size=4, learning_rate=0.01, warmup_steps=1, progress=False)
    clean = _frames(4)
    model = normalised_model(clean, GraphDataset(clean, config.cutoff, ("pbe",)), config, seed=0)
    with pytest.raises(NonFiniteLossError, match=r"the loss became inf at step 0.*si-3.*Training stopped"):
        train_model(frames, [], config, settings, tmp_path / "run", initial=model)
    assert not (tmp_path / "run" / "best_model").exists()
