from __future__ import annotations

import numpy as np
import pytest

from universal_mfp.data import keys
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.pairs import difference_frame, pair_by_geometry
from universal_mfp.data.readers import read_extxyz
from universal_mfp.model import ModelConfig
from universal_mfp.training.baselines import delta_learning, single_fidelity_config, train_model, transfer_learning
from universal_mfp.training.trainer import TrainerSettings

SETTINGS = TrainerSettings(epochs=2, batch_size=8, learning_rate=0.01, warmup_steps=1, progress=False)


def _config(frames):
    elements = tuple(sorted({int(z) for f in frames for z in f.numbers}))
    return ModelConfig(
        elements=elements,
        fidelities=("pbe", "r2scan"),
        cutoff=4.0,
        num_layers=2,
        hidden_irreps="8x0e+4x1o",
        radial_mlp_hidden=(8,),
        readout_hidden=8,
    )


def test_real_diatomics_pair_by_geometry(shared_frames_dir):
    pbe = read_extxyz(shared_frames_dir / "diatomics_PBE.extxyz")
    r2scan = read_extxyz(shared_frames_dir / "diatomics_r2SCAN.extxyz")
    pairs = pair_by_geometry(pbe, r2scan)
    assert 0.99 * len(r2scan) < len(pairs) <= len(r2scan)  # nearly every r2SCAN dimer has a PBE twin
    for i, j in pairs[::500]:
        assert pbe[i].info["pair"] == r2scan[j].info["pair"]
        assert pbe[i].info["distance"] == pytest.approx(r2scan[j].info["distance"])
        diff = difference_frame(pbe[i], r2scan[j], "r2scan")
        assert diff.energy == pytest.approx(r2scan[j].energy - pbe[i].energy)
        np.testing.assert_allclose(diff.forces, r2scan[j].forces - pbe[i].forces)


def test_transfer_and_delta_baselines_run_in_the_same_code_path(small_real_set, tmp_path):
    pbe = read_extxyz(small_real_set / "dimers_PBE.extxyz") + read_extxyz(small_real_set / "crystals_PBE.extxyz")
    r2scan = read_extxyz(small_real_set / "dimers_r2SCAN.extxyz")
    config = _config(pbe + r2scan)
    low = train_model(pbe, [], single_fidelity_config(config, "pbe"), SETTINGS, tmp_path / "low")
    assert low.fidelities == ("pbe",)
    tl = transfer_learning(low, r2scan[::2], r2scan[1::2], "r2scan", SETTINGS, tmp_path / "tl")
    assert tl.fidelities == ("r2scan",)
    assert (tmp_path / "tl" / "best_model" / "model.safetensors").is_file()
    delta = delta_learning(low, pbe, r2scan[::2], r2scan[1::2], "r2scan", config, SETTINGS, tmp_path / "delta")
    # the delta prediction is exactly the low-fidelity model plus the delta model
    batch = GraphDataset(r2scan[:3], config.cutoff, ("r2scan",)).collate([0, 1, 2])
    total = delta(batch, compute_forces=True, create_graph=False)
    low_out = low({**batch, keys.FIDELITY: batch[keys.FIDELITY] * 0}, compute_forces=True, create_graph=False)
    delta_out = delta.delta(batch, compute_forces=True, create_graph=False)
    np.testing.assert_allclose(total[keys.ENERGY].detach(), (low_out[keys.ENERGY] + delta_out[keys.ENERGY]).detach())
    np.testing.assert_allclose(total[keys.FORCES].detach(), (low_out[keys.FORCES] + delta_out[keys.FORCES]).detach())
    with pytest.raises(ValueError, match="same geometry"):
        delta_learning(low, pbe[:1], r2scan[5:9], [], "r2scan", config, SETTINGS, tmp_path / "none")
