"""Fine-tuning: a new fidelity slot, frozen parameters (bit-for-bit), replay, checkpoints, the CLI."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.data import chemical_symbols

from tests.model.helpers import rattled_crystal, small_model
from universal_mfp.cli import main as umfp_main
from universal_mfp.data import as_frame, keys
from universal_mfp.data.coverage import element_coverage
from universal_mfp.data.dataset import GraphDataset
from universal_mfp.data.readers import read_extxyz
from universal_mfp.finetuning import (
    add_fidelity,
    closest_fidelity,
    finetune,
    fit_reference_shift,
    predict_energies,
    sample_replay,
    trainable_parameters,
)
from universal_mfp.hub.checkpoint import load_checkpoint, save_checkpoint
from universal_mfp.model import ModelConfig
from universal_mfp.models import load_model
from universal_mfp.training.baselines import train_model
from universal_mfp.training.trainer import TrainerSettings

PAIRS = ("H-H", "Li-Li", "O-O", "Si-Si")
SETTINGS = TrainerSettings(epochs=4, batch_size=8, learning_rate=0.01, warmup_steps=1, ema_decay=0.5, progress=False)
NEW = "my_dft"


def _dimers(path: Path) -> list:
    frames = [f for f in read_extxyz(path) if f.info["pair"] in PAIRS and np.abs(f.forces).max() < 20.0]
    return frames[::5]


@pytest.fixture(scope="module")
def data(shared_frames_dir):
    """Real frames: PBE and r2SCAN dimers (4 elements) for the base model, r2SCAN crystals as new data."""
    pbe = _dimers(shared_frames_dir / "diatomics_PBE.extxyz")
    r2scan = _dimers(shared_frames_dir / "diatomics_r2SCAN.extxyz")
    elements = {1, 3, 8, 14}
    crystals = [
        f
        for f in read_extxyz(shared_frames_dir / "matpes_element_refs_r2SCAN.extxyz")
        if set(f.numbers.tolist()) <= elements and f.num_atoms <= 8
    ]
    new = [f.replace(fidelity=NEW, forces=None, stress=None) for f in r2scan[1::3] + crystals]  # energies only
    return {"pbe": pbe, "r2scan": r2scan, "new": new}


@pytest.fixture(scope="module")
def base_dir(data, tmp_path_factory) -> Path:
    """A tiny two-fidelity model trained briefly on real dimers, saved as a checkpoint folder."""
    config = ModelConfig(
        elements=(1, 3, 8, 14),
        fidelities=("pbe", "r2scan"),
        num_layers=2,
        hidden_irreps="8x0e+4x1o",
        radial_mlp_hidden=(8,),
        readout_hidden=8,
    )
    root = tmp_path_factory.mktemp("base")
    model = train_model(data["pbe"] + data["r2scan"][::2], [], config, replace(SETTINGS, epochs=2), root / "run")
    coverage = element_coverage(data["pbe"] + data["r2scan"][::2])
    return save_checkpoint(model, root / "base", training={"description": "tiny test model", "coverage": coverage})


def _predict(model, frames, fidelity):
    frames = [f.replace(fidelity=fidelity) for f in frames]
    batch = GraphDataset(frames, model.config.cutoff, model.fidelities).collate(range(len(frames)))
    out = model(batch, compute_forces=True, create_graph=False)
    return out[keys.ENERGY].detach(), out[keys.FORCES].detach()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adding_a_fidelity_leaves_old_predictions_bit_identical(base_dir, data, dtype):
    model = load_checkpoint(base_dir).model.to(getattr(torch, dtype))
    frames = data["pbe"][:6] + data["new"][-3:]
    shift, _ = fit_reference_shift(model, data["new"], "r2scan")
    grown = add_fidelity(model, NEW, init_from="r2scan", reference_shift=shift)
    assert grown.fidelities == ("pbe", "r2scan", NEW)
    assert grown.dtype == model.dtype
    for fidelity in ("pbe", "r2scan"):
        for before, after in zip(_predict(model, frames, fidelity), _predict(grown, frames, fidelity), strict=True):
            assert torch.equal(before, after)
    # the new slot starts as the init fidelity plus the refitted per-element offsets
    energy, forces = _predict(grown, frames, NEW)
    init_energy, init_forces = _predict(model, frames, "r2scan")
    counts = np.array([[np.sum(f.numbers == z) for z in (1, 3, 8, 14)] for f in frames])
    tol = 1e-4 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(energy.numpy(), init_energy.numpy() + counts @ shift, rtol=tol, atol=tol)
    assert torch.equal(forces, init_forces)
    with pytest.raises(ValueError, match="already exists"):
        add_fidelity(grown, NEW, init_from="pbe")
    with pytest.raises(ValueError, match="valid fidelities"):
        add_fidelity(model, NEW, init_from="hse06")


def test_row_split_freezes_rows_and_folds_back(base_dir):
    model = load_checkpoint(base_dir).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with trainable_parameters(model, "readout", ["r2scan"]) as params:
        assert all(p.shape[0] == 1 for p in params)  # only r2scan's rows, as offsets
        with torch.no_grad():
            for p in params:
                p.add_(1.0)
        assert torch.equal(model.element_references[0], before["element_references"][0])
    assert sorted(model.state_dict()) == sorted(before)  # plain parameters again, same names
    assert torch.equal(model.element_references[0], before["element_references"][0])
    assert torch.equal(model.element_references[1], before["element_references"][1] + 1.0)
    assert isinstance(model.element_references, torch.nn.Parameter)


@pytest.mark.parametrize(
    ("conditioning", "own_tensor", "shared"),
    [
        ("readout", "readout_out.fidelity_bias", "interactions.0.linear_1.fidelity_bias"),
        ("linear_delta", "fidelity_delta", "readout_out.fidelity_bias"),
        ("heads", "readout_hidden.fidelity_weight", "interactions.0.linear_1.fidelity_bias"),
    ],
)
def test_slots_and_freezing_with_shared_layers(conditioning, own_tensor, shared):
    """Shared layers (one bias row) stay one row when a fidelity is added, and train as shared weights."""
    model = small_model(fidelity_conditioning=conditioning)
    crystal = rattled_crystal(seed=2)
    frames = [as_frame(crystal, fidelity=f) for f in ("pbe", "r2scan")]
    grown = add_fidelity(model, NEW, init_from="r2scan")
    assert grown.state_dict()[shared].shape == model.state_dict()[shared].shape
    assert model.state_dict()[shared].shape[0] == 1 and not grown.is_per_fidelity(shared)
    assert grown.state_dict()[own_tensor].shape[0] == 3 and grown.is_per_fidelity(own_tensor)
    for fidelity in ("pbe", "r2scan"):
        for before, after in zip(_predict(model, frames, fidelity), _predict(grown, frames, fidelity), strict=True):
            assert torch.equal(before, after)
    for new, old in zip(_predict(grown, frames, NEW), _predict(model, frames, "r2scan"), strict=True):
        assert torch.equal(new, old)

    before = {k: v.clone() for k, v in grown.state_dict().items()}
    per_fidelity = [n for n, _ in grown.named_parameters() if grown.is_per_fidelity(n)]
    with trainable_parameters(grown, "readout", [NEW]) as params:
        assert all(p.shape[0] == 1 for p in params)
        assert len(params) == len(per_fidelity)  # the new fidelity's row of each per-fidelity tensor
        with torch.no_grad():
            for p in params:
                p.add_(1.0)
    after = grown.state_dict()
    assert torch.equal(after[shared], before[shared])
    assert torch.equal(after[own_tensor][:2], before[own_tensor][:2])
    assert torch.equal(after[own_tensor][2], before[own_tensor][2] + 1.0)
    with trainable_parameters(grown, "all-but-embedding", [NEW]) as params:
        assert any(p is grown.get_parameter(shared) for p in params)  # a shared weight, trained whole


def test_readout_finetune_new_fidelity_energy_only(base_dir, data, tmp_path):
    base = load_checkpoint(base_dir).model
    old_state = {k: v.clone() for k, v in base.state_dict().items()}
    result = finetune(base_dir, data["new"], NEW, tmp_path / "ft", train="readout", settings=SETTINGS)
    model = result.model
    assert model.fidelities == ("pbe", "r2scan", NEW)
    # frozen parameters and the old fidelities' rows are bit-identical; the new rows trained
    for key, old in old_state.items():
        new = model.state_dict()[key]
        if new.shape == old.shape:
            assert torch.equal(new, old), key
        else:
            assert torch.equal(new[:2], old), key
    assert not torch.equal(model.element_references[2], model.element_references[1])
    assert not torch.equal(model.readout_out.fidelity_bias[2], model.readout_out.fidelity_bias[1])
    for fidelity in ("pbe", "r2scan"):
        for before, after in zip(
            _predict(base, data["pbe"][:5], fidelity), _predict(model, data["pbe"][:5], fidelity), strict=True
        ):
            assert torch.equal(before, after)
    # energy-only data trains: the energy loss goes down, no force term
    losses = [r["loss_energy"] for r in result.history if r["kind"] == "train"]
    assert "loss_forces" not in result.history[0]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    summary = result.summary
    expected_init = closest_fidelity(load_checkpoint(base_dir).model, data["new"])
    assert summary["finetune"]["new"] and summary["finetune"]["init_from"] == expected_init
    assert summary["trained"]["mode"] == "readout" and summary["trained"]["frozen_fidelities"] == ["pbe", "r2scan"]
    assert summary["data"]["train"][NEW]["frames"] == len(data["new"])
    assert summary["data"]["train"][NEW]["with_forces"] == 0

    # a normal checkpoint: loads through load_model, predicts at the new fidelity, card lists it
    loaded = load_model(tmp_path / "ft")
    assert loaded.fidelities == ("pbe", "r2scan", NEW)
    predictions = loaded.predict([f.to_atoms() for f in data["new"][-2:]], fidelity=NEW)
    assert [p.fidelity for p in predictions] == [NEW, NEW]
    energies = predict_energies(loaded.model, data["new"][-2:], NEW)
    np.testing.assert_allclose(energies, predict_energies(model, data["new"][-2:], NEW), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\['pbe', 'r2scan', 'my_dft'\]"):
        loaded.calculator(fidelity="hse06")
    card = (tmp_path / "ft" / "README.md").read_text(encoding="utf-8")
    assert f"`{NEW}`" in card and "| my_dft | train |" in card and "readout" in card
    assert loaded.metadata["training"]["base_model"]["fidelities"] == ["pbe", "r2scan"]
    # what the base saw, plus the new fidelity's elements as DFT
    coverage = loaded.metadata["training"]["coverage"]
    assert coverage["pbe"]["dft"] == coverage["r2scan"]["dft"] == ["H", "Li", "O", "Si"]
    new_numbers = sorted({int(z) for f in data["new"] for z in f.numbers})
    assert coverage[NEW] == {"dft": [chemical_symbols[z] for z in new_numbers], "teacher": []}


def test_all_but_embedding_with_replay(base_dir, data, tmp_path):
    base = load_checkpoint(base_dir).model
    replay = sample_replay(data["pbe"], count=10, seed=1)
    result = finetune(
        base_dir,
        data["new"],
        NEW,
        tmp_path / "ft",
        train="all-but-embedding",
        init_from="pbe",
        replay=replay,
        val_frames=data["new"][:4],
        settings=replace(SETTINGS, epochs=2),
    )
    model = result.model
    assert torch.equal(model.embedding.weight, base.embedding.weight)
    assert not torch.equal(model.readout_out.linear.weight, base.readout_out.linear.weight)
    # pbe is replayed, so its rows may adapt; r2scan is absent, so its rows are frozen
    assert not torch.equal(model.element_references[0], base.element_references[0])
    assert torch.equal(model.element_references[1], base.element_references[1])
    assert torch.equal(model.interactions[0].linear_1.fidelity_bias[1], base.interactions[0].linear_1.fidelity_bias[1])
    assert result.summary["replay"]["pbe"]["frames"] == 10
    assert result.summary["finetune"]["init_from"] == "pbe"
    assert result.summary["trained"]["per_fidelity_rows"] == ["pbe", NEW]
    assert set(result.metrics) == {"pbe", NEW} and "replay" in result.metrics["pbe"] and "val" in result.metrics[NEW]
    assert "forces_mae" in result.metrics["pbe"]["replay"]


def test_existing_fidelity_readout_keeps_the_others(base_dir, data, tmp_path):
    base = load_checkpoint(base_dir).model
    frames = [f.replace(fidelity="r2scan") for f in data["new"]]
    result = finetune(
        base_dir, frames, "r2scan", tmp_path / "ft", train="readout", settings=replace(SETTINGS, epochs=1)
    )
    assert result.model.fidelities == ("pbe", "r2scan")
    assert not result.summary["finetune"]["new"]
    for key, old in base.state_dict().items():
        new = result.model.state_dict()[key]
        if key.endswith(("fidelity_bias", "element_references")):
            assert torch.equal(new[0], old[0]), key
        else:
            assert torch.equal(new, old), key
    with pytest.raises(ValueError, match="only applies to a new fidelity"):
        finetune(base_dir, frames, "r2scan", tmp_path / "x", init_from="pbe", settings=SETTINGS)
    with pytest.raises(ValueError, match="unknown training mode"):
        finetune(base_dir, frames, "r2scan", tmp_path / "x", train="head", settings=SETTINGS)
    with pytest.raises(FileExistsError):
        finetune(base_dir, frames, "r2scan", tmp_path / "ft", settings=SETTINGS)


def test_closest_fidelity_and_replay_sampling(base_dir, data):
    model = load_checkpoint(base_dir).model
    # frames labelled by the model's own r2scan energies plus a per-element offset fit r2scan exactly, and
    # pbe only up to the structure-dependent pbe-r2scan difference: r2scan wins although pbe comes first
    frames = data["r2scan"][::4]
    for fidelity in model.fidelities:
        energies, _ = _predict(model, frames, fidelity)
        labelled = [
            f.replace(fidelity=NEW, energy=float(e) + 0.3 * float((f.numbers == 1).sum()), forces=None)
            for f, e in zip(frames, energies, strict=True)
        ]
        assert closest_fidelity(model, labelled) == fidelity
    assert closest_fidelity(model, data["new"][:1]) == "pbe"  # one frame fits exactly at every fidelity: the first
    frames = data["pbe"]
    assert len(sample_replay(frames, fraction=0.25, seed=0)) == round(0.25 * len(frames))
    assert sample_replay(frames, count=5, seed=3) == sample_replay(frames, count=5, seed=3)
    assert len(sample_replay(frames)) == len(frames)
    with pytest.raises(ValueError, match="not both"):
        sample_replay(frames, fraction=0.1, count=3)


def test_cli_finetune(base_dir, data, shared_frames_dir, tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    images = []
    for frame in data["r2scan"][1::3]:  # with forces: --energy-only drops them
        atoms = frame.to_atoms()
        atoms.calc = SinglePointCalculator(atoms, energy=frame.energy, forces=frame.forces)
        images.append(atoms)
    new_file = tmp_path / "new.extxyz"
    write(new_file, images, format="extxyz")
    code = umfp_main(
        [
            "finetune",
            str(new_file),
            "--model",
            str(base_dir),
            "--fidelity",
            NEW,
            "--energy-only",
            "--epochs",
            "1",
            "--replay",
            str(shared_frames_dir / "matpes_element_refs_PBE.extxyz"),
            "--replay-count",
            "3",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    loaded = load_model(tmp_path / "out")
    assert loaded.fidelities == ("pbe", "r2scan", NEW)
    assert loaded.metadata["training"]["data"]["train"][NEW]["with_forces"] == 0
