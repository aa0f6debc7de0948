from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from tests.model.helpers import small_model
from universal_mfp.data import as_frame, collate_graphs, frame_to_graph, keys
from universal_mfp.data.statistics import average_num_neighbors, energy_scales, fit_element_references
from universal_mfp.training.loss import LossWeights, combine, huber_delta_for, loss_sums
from universal_mfp.training.trainer import TrainerSettings
from universal_mfp.units import EV_PER_A3_TO_GPA


def _frame(symbols, d, fidelity, energy=None, forces=None):
    atoms = Atoms(symbols, positions=[[0, 0, 0], [d, 0, 0], [0, d, 0]][: len(symbols)], cell=np.eye(3) * 8, pbc=True)
    return as_frame(atoms).replace(fidelity=fidelity, energy=energy, forces=forces)


def _batch(frames, model):
    return collate_graphs([frame_to_graph(f, model.config.cutoff, model.fidelities.index(f.fidelity)) for f in frames])


def test_frame_without_forces_adds_nothing_to_force_loss():
    model = small_model()
    with_forces = _frame("CO", 1.2, "pbe", energy=-5.0, forces=np.full((2, 3), 0.3))
    energy_only = _frame("OH", 1.0, "r2scan", energy=-4.0)
    batch = _batch([with_forces, energy_only], model)
    out = model(batch, compute_forces=True, create_graph=True)
    weights = LossWeights().table(model.fidelities)
    sums, counts = loss_sums(out, batch, weights)
    assert float(counts["forces"]) == 6.0  # 2 atoms x 3 components, from the first frame only
    assert float(counts["energy"]) == 2.0
    # any value in the (absent) force labels of the energy-only frame changes nothing
    batch2 = dict(batch)
    batch2[keys.FORCES] = batch[keys.FORCES].clone()
    batch2[keys.FORCES][2:] = 1e3
    sums2, _ = loss_sums(out, batch2, weights)
    assert float(sums2["forces"]) == float(sums["forces"])
    # the energy-only frame's force prediction gets no gradient through the force term
    forces = out[keys.FORCES]
    (grad,) = torch.autograd.grad(sums["forces"], forces, retain_graph=True)
    assert float(grad[2:].abs().max()) == 0.0
    assert float(grad[:2].abs().max()) > 0.0
    # no stress labels -> the stress term has nothing to count
    out_s = model(batch, compute_stress=True)
    _, counts_s = loss_sums(out_s, batch, weights)
    assert float(counts_s["stress"]) == 0.0


def test_per_fidelity_weights_and_combination():
    model = small_model()
    frames = [_frame("CO", 1.2, "pbe", energy=-5.0), _frame("CO", 1.2, "r2scan", energy=-6.0)]
    batch = _batch(frames, model)
    out = model(batch, compute_forces=False)
    error = (out[keys.ENERGY].detach() - batch[keys.ENERGY]) / 2
    weights = LossWeights(energy=1.0, per_fidelity={"r2scan": {"energy": 5.0}}).table(model.fidelities)
    sums, counts = loss_sums(out, batch, weights)
    expected = (1.0 * error[0] ** 2 + 5.0 * error[1] ** 2) / 2
    assert float(combine(sums, counts)) == pytest.approx(float(expected), rel=1e-12)
    with pytest.raises(ValueError, match="unknown loss terms"):
        LossWeights(per_fidelity={"pbe": {"enrgy": 1.0}}).table(("pbe",))


def _huber(error, delta):
    return 0.5 * error**2 if abs(error) < delta else delta * (abs(error) - 0.5 * delta)


def test_huber_threshold_per_term_in_each_terms_unit():
    model = small_model()
    frame = _frame("CO", 1.2, "pbe", energy=-5.0, forces=np.zeros((2, 3))).replace(stress=np.zeros((3, 3)))
    batch = _batch([frame], model)
    # prediction errors: 0.3 eV/atom; one force component 0.2 eV/Å, another 2.0 eV/Å; one stress component 4 GPa
    forces = torch.zeros(2, 3, dtype=torch.float64)
    forces[0, 0], forces[1, 2] = 0.2, 2.0
    stress = torch.zeros(1, 3, 3, dtype=torch.float64)
    stress[0, 1, 1] = 4.0 / EV_PER_A3_TO_GPA
    prediction = {keys.ENERGY: batch[keys.ENERGY].to(torch.float64) + 2 * 0.3, keys.FORCES: forces, keys.STRESS: stress}
    weights = LossWeights(energy=1.0, forces=1.0, stress=1.0).table(model.fidelities)
    deltas = {"energy": 0.1, "forces": 0.5, "stress": 2.0}
    sums, counts = loss_sums(prediction, batch, weights, kind="huber", huber_delta=deltas)
    assert float(sums["energy"]) == pytest.approx(0.1 * (0.3 - 0.05), rel=1e-9)  # linear: beyond 0.1 eV/atom
    assert float(sums["forces"]) == pytest.approx(0.5 * 0.2**2 + 0.5 * (2.0 - 0.25), rel=1e-9)
    assert float(sums["stress"]) == pytest.approx(2.0 * (4.0 - 1.0), rel=1e-9)
    assert (float(counts["energy"]), float(counts["forces"]), float(counts["stress"])) == (1.0, 6.0, 9.0)
    # one number is the same threshold for every term; a large one is half the squared error
    sums_one, _ = loss_sums(prediction, batch, weights, kind="huber", huber_delta=100.0)
    sums_mse, _ = loss_sums(prediction, batch, weights, kind="mse")
    for term in ("energy", "forces", "stress"):
        assert float(sums_one[term]) == pytest.approx(0.5 * float(sums_mse[term]), rel=1e-9)
    assert float(sums_one["energy"]) == pytest.approx(_huber(0.3, 100.0), rel=1e-9)


@pytest.mark.parametrize(
    ("delta", "message"),
    [
        ({"energy": 0.1, "forces": 0.5}, "missing \\['stress'\\]"),
        ({"energy": 0.1, "forces": 0.5, "stress": 2.0, "virial": 1.0}, "unknown \\['virial'\\]"),
        ({"energy": 0.0, "forces": 0.5, "stress": 2.0}, "huber_delta for energy must be positive"),
        (float("nan"), "must be positive"),
    ],
)
def test_bad_huber_thresholds_are_refused_by_name(delta, message):
    with pytest.raises(ValueError, match=message):
        huber_delta_for(delta, "energy")
    with pytest.raises(ValueError, match=message):
        TrainerSettings(loss_kind="huber", huber_delta=delta)


def test_reference_fit_is_exact_on_constructed_data():
    rng = np.random.default_rng(0)
    elements = (1, 8, 14)
    true = {"pbe": np.array([-1.1, -4.9, -5.4]), "r2scan": np.array([-1.6, -7.3, -8.2])}
    frames = []
    for fidelity, refs in true.items():
        for _ in range(12):
            numbers = rng.choice(elements, size=rng.integers(1, 6))
            counts = np.array([np.sum(numbers == z) for z in elements])
            positions = rng.uniform(0, 6, (len(numbers), 3))
            frames.append(
                as_frame(Atoms(numbers=numbers, positions=positions, cell=np.eye(3) * 6, pbc=True)).replace(
                    fidelity=fidelity, energy=float(counts @ refs)
                )
            )
    references, fitted = fit_element_references(frames, elements, ("pbe", "r2scan"))
    np.testing.assert_allclose(references[0], true["pbe"], atol=1e-10)
    np.testing.assert_allclose(references[1], true["r2scan"], atol=1e-10)
    assert fitted.all()
    # no energies of an element at one fidelity: taken from the other, shifted by the mean offset
    no_si = [f for f in frames if not (f.fidelity == "r2scan" and 14 in f.numbers)]
    references, fitted = fit_element_references(no_si, elements, ("pbe", "r2scan"))
    assert not fitted[1, 2]
    offset = np.mean(true["r2scan"][:2] - true["pbe"][:2])
    assert references[1, 2] == pytest.approx(true["pbe"][2] + offset, abs=1e-9)
    # scales: RMS force component, or per-atom residual energy without forces
    exact = np.stack([true["pbe"], true["r2scan"]])
    scales = energy_scales(frames, elements, ("pbe", "r2scan"), exact)
    np.testing.assert_allclose(scales, [1.0, 1.0])  # exact references: zero residual -> default scale
    shifted = exact + np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])  # r2scan residual of exactly 0.5 eV/atom
    np.testing.assert_allclose(energy_scales(frames, elements, ("pbe", "r2scan"), shifted), [1.0, 0.5])
    assert average_num_neighbors([10, 20], [5, 5]) == 3.0


def test_training_reduces_training_loss(small_real_set, tmp_path):
    from tests.training.conftest import write_config
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import train_from_config

    config = load_run_config(write_config(tmp_path, small_real_set, epochs=8, learning_rate=0.02))
    summary = train_from_config(config, resume=False)
    records = [r for r in summary_records(config.output_dir) if r["kind"] == "train"]
    first = [r["loss"] for r in records if r["epoch"] == 0]
    last = [r["loss"] for r in records if r["epoch"] == 7]
    assert sum(last) / len(last) < 0.5 * sum(first) / len(first)
    assert set(summary.metrics) == {"pbe", "r2scan"}
    assert summary.metrics["r2scan"]["train"]["energy_mae"] < 1000.0  # meV/atom, starting from ~eV errors
    assert (summary.best_model_dir / "model.safetensors").is_file()


def summary_records(run_dir):
    import json

    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_split_keeps_materials_and_geometries_together():
    from universal_mfp.data.splits import split_by_group

    frames = []
    for k in range(40):
        atoms = Atoms("CO", positions=[[0, 0, 0], [1.0 + 0.05 * k, 0, 0]], cell=np.eye(3) * 8, pbc=True)
        for fidelity in ("pbe", "r2scan"):  # the same geometry at two fidelities, no ids
            frames.append(as_frame(atoms).replace(fidelity=fidelity, info={"frame_id": f"{fidelity}:{k}"}))
    for k in range(40):  # a relaxation trajectory of one material: several frames, one material id
        atoms = Atoms("Si2", positions=[[0, 0, 0], [2.3 + 0.01 * (k % 4), 0, 0]], cell=np.eye(3) * 8, pbc=True)
        frames.append(as_frame(atoms).replace(fidelity="pbe", info={"material_id": f"mp-{k // 4}", "frame_id": str(k)}))
    splits = split_by_group(frames, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert sorted(i for idx in splits.values() for i in idx) == list(range(len(frames)))
    where = {i: name for name, idx in splits.items() for i in idx}
    for k in range(40):  # twins together
        assert where[2 * k] == where[2 * k + 1]
    for m in range(10):  # materials together
        assert len({where[80 + 4 * m + j] for j in range(4)}) == 1
    assert all(len(idx) > 0 for idx in splits.values())
    # adding frames never moves existing ones
    more = split_by_group(frames + frames[:3], val_fraction=0.2, test_fraction=0.2, seed=1)
    assert all(where[i] == name for name, idx in more.items() for i in idx if i < len(frames))
