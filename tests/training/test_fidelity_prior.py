"""The cross-fidelity prior term: its shifts, its value, where its gradient goes, and a run that uses it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from pymatgen.core import Composition

from tests.conftest import shared_data_dir
from tests.model.helpers import small_model
from tests.training.conftest import write_config
from universal_mfp.data import as_frame, collate_graphs, frame_to_graph, keys
from universal_mfp.training import load_run_config, train_from_config
from universal_mfp.training.composition_shift import CompositionShift, element_offsets_shift
from universal_mfp.training.fidelity_prior import FidelityPrior, FidelityPriors, FidelityPriorSpec, build_fidelity_prior

SETTINGS = {"O": ("Fe",), "F": ("Fe",)}
# made-up shifts (eV/atom) for the elements of the small test model: H, Li, C, O, Si, Fe
SHIFT = CompositionShift(
    "pbe",
    "r2scan",
    element_shift={"H": -0.5, "Li": -1.5, "C": -0.7, "O": -2.0, "Si": -3.2, "Fe": -5.7},
    hubbard_shift={"Fe": -2.7},
    hubbard_settings=SETTINGS,
)


def structures():
    li2o = bulk("Li2O", "fluorite", a=4.6)
    fe2o3 = bulk("Fe", "bcc", a=2.9) * (2, 1, 1)  # composition is what the shift sees
    fe2o3 += bulk("O", "sc", a=2.0) * (3, 1, 1)
    fe2o3.positions[2:] += [0.3, 1.2, 1.4]
    return [li2o, bulk("Fe", "bcc", a=2.87), fe2o3, bulk("Si", "diamond", a=5.43)]


def batch_of(atoms_list, model, fidelity="pbe"):
    index = model.fidelities.index(fidelity)
    return collate_graphs([frame_to_graph(as_frame(a), model.config.cutoff, index) for a in atoms_list])


def test_shifts_per_structure_match_the_composition_rule():
    model = small_model("mixed_parity")
    prior = FidelityPrior(model, SHIFT, weight=1.0)
    atoms_list = structures()
    batch = batch_of(atoms_list, model)
    shifts, covered = prior.shifts(model.species(batch[keys.ATOMIC_NUMBERS]), batch[keys.BATCH], len(atoms_list))
    expected = [SHIFT.per_atom(Composition(a.get_chemical_formula())) for a in atoms_list]
    np.testing.assert_allclose(shifts.numpy(), expected, rtol=0, atol=1e-12)
    assert covered.all()
    assert SHIFT.uses_hubbard(Composition("Fe2O3")) and expected[2] != pytest.approx(0.4 * -5.7 + 0.6 * -2.0)


def test_prior_is_zero_when_the_fidelities_differ_by_the_shift():
    """A shared network whose r2scan references are the pbe ones plus the element shifts: E_r2scan - E_pbe is
    exactly Σ δ_el, so the prior vanishes except for the GGA+U term of Fe2O3, which it then measures exactly."""
    model = small_model("linear_delta")
    with torch.no_grad():
        model.fidelity_delta.zero_()
        model.energy_scale.fill_(1.1)
        symbols = model.config.element_symbols
        model.element_references[1] = model.element_references[0] + torch.tensor(
            [SHIFT.element_shift[s] for s in symbols], dtype=model.dtype
        )
    prior = FidelityPrior(model, SHIFT, weight=2.0)
    atoms_list = structures()
    for k, atoms in enumerate(atoms_list):
        batch = batch_of([atoms], model)
        source = model(batch, compute_forces=False)[keys.ENERGY]
        total, count = prior.loss_sum(model, batch, source)
        assert float(count) == 1.0
        expected = 2.0 * (0.4 * 2.7) ** 2 if k == 2 else 0.0
        assert float(total.detach()) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("variant", ["mixed_parity", "heads"])
def test_prior_moves_only_the_target_readout(variant):
    """No gradient reaches the embedding or the interaction layers, nor the pbe readout rows; the r2scan
    readout moves (with heads: only the r2scan head)."""
    model = small_model(variant)
    model.train()
    prior = FidelityPrior(model, SHIFT, weight=1.0)
    batch = batch_of(structures(), model)
    source = model(batch, compute_forces=False)[keys.ENERGY]
    total, count = prior.loss_sum(model, batch, source)
    assert float(count) == 4.0 and float(total) > 0
    total.backward()
    names = [name for name, _ in model.named_parameters()]
    assert any(".radial_network." in name for name in names)
    for name, param in model.named_parameters():
        if not name.startswith("readout") and name != "element_references":
            assert param.grad is None or not param.grad.any(), name
    for name, param in model.named_parameters():
        if (name.startswith("readout") and model.is_per_fidelity(name)) or name == "element_references":
            assert not param.grad[0].any(), name  # pbe row untouched
            if name == "readout_out.fidelity_bias":  # cancels in y - y_isolated: zero up to round-off
                assert param.grad[1].abs().max() < 1e-6, name
            else:
                assert param.grad[1].abs().sum() > 0, name


@pytest.mark.parametrize("variant", ["mixed_parity", "heads"])
def test_prior_on_the_features_of_the_training_pass_equals_its_own_pass(variant):
    """Training hands the prior the node features of its forward pass (one message pass fewer per step): the
    penalty and its gradients are those of the prior's own pass, to round-off, and only the readout moves."""
    model = small_model(variant).double()
    model.train()
    prior = FidelityPrior(model, SHIFT, weight=1.0)
    batch = batch_of(structures(), model)
    out = model(batch, compute_forces=True, compute_stress=True, create_graph=True, return_features=True)
    features = out[keys.NODE_FEATURES]
    assert features.shape[0] == batch[keys.POSITIONS].shape[0] and not features.requires_grad
    gradients = []
    for given in (None, features):
        model.zero_grad()
        total, count = prior.loss_sum(model, batch, out[keys.ENERGY], given)
        total.backward(retain_graph=True)
        gradients.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        assert float(count) == 4.0
    assert set(gradients[0]) == set(gradients[1])
    assert all(name.startswith("readout") or name == "element_references" for name in gradients[1])
    for name, grad in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], grad, rtol=1e-9, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="features for 3 atoms given for a batch of"):
        model.energy_with_frozen_features(batch, 1, features[:3])


def test_structures_the_prior_cannot_cover_or_other_fidelities_are_left_out():
    model = small_model("mixed_parity")
    partial = CompositionShift("pbe", "r2scan", {"Li": -1.5, "O": -2.0}, {}, SETTINGS)
    prior = FidelityPrior(model, partial, weight=1.0)
    atoms_list = structures()
    batch = batch_of(atoms_list, model)
    _, covered = prior.shifts(model.species(batch[keys.ATOMIC_NUMBERS]), batch[keys.BATCH], len(atoms_list))
    assert covered.tolist() == [True, False, False, False]
    total, count = prior.loss_sum(model, batch, model(batch, compute_forces=False)[keys.ENERGY])
    assert float(count) == 1.0
    r2scan_batch = batch_of(atoms_list, model, "r2scan")
    total, count = prior.loss_sum(model, r2scan_batch, model(r2scan_batch, compute_forces=False)[keys.ENERGY])
    assert float(count) == 0.0 and float(total) == 0.0
    with pytest.raises(ValueError, match="no fidelity 'ccsd'"):
        FidelityPrior(model, CompositionShift("pbe", "ccsd", {"Li": 1.0}), weight=1.0)


def test_run_with_the_prior(small_real_set, tmp_path):
    table = shared_data_dir() / "raw" / "rxnnet" / "rxnnet_mp_gga_r2scan_energies.csv.gz"
    prior = {"table": str(table), "exclude": ["mp-1960"], "weight": 0.5}
    path = write_config(tmp_path, small_real_set, epochs=1, fidelity_prior=prior)
    config = load_run_config(path)
    assert len(config.fidelity_priors) == 1 and config.fidelity_priors[0].exclude == ("mp-1960",)
    summary = train_from_config(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(record.get("loss_fidelity_prior", 0) > 0 for record in log if record["kind"] == "train")
    saved = CompositionShift.from_dict(json.loads((tmp_path / "run" / "fidelity_prior_shift.json").read_text()))
    assert saved.fit["holdout_mae"] < 0.09 and "Li" in saved.element_shift
    metadata = json.loads((summary.best_model_dir / "config.json").read_text())
    assert metadata["training"]["fidelity_prior"]["weight"] == 0.5
    # the training record says which elements each fidelity saw (dimers of H, Li, O, Si at both; no teacher)
    assert metadata["training"]["coverage"] == {
        "pbe": {"dft": ["H", "Li", "O", "Si"], "teacher": []},
        "r2scan": {"dft": ["H", "Li", "O", "Si"], "teacher": []},
    }


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"table": "x.csv", "element_offsets": "o.json"}, "give one of"),
        ({"element_offsets": "o.json", "shift_from_references": True}, "give one of"),
        ([{"table": "x.csv"}, "o.json"], "must be a mapping"),
        ({"table": "x.csv", "weight": 0.0}, "weight must be positive"),
        ({"table": "x.csv", "source": "pbe", "target": "pbe"}, "both 'pbe'"),
        ({"table": "x.csv", "kind": "linear"}, "unknown keys"),
        ("x.csv", "must be a mapping"),
    ],
)
def test_bad_prior_configs(tmp_path, prior, message):
    (tmp_path / "frames.extxyz").write_text("", encoding="utf-8")  # a source path; parsing does not read it
    path = write_config(tmp_path, tmp_path, fidelity_prior=prior)
    with pytest.raises(ValueError, match=message):
        load_run_config(path)


def write_offsets(path, offsets, **extra):
    table = {"source": "pbe", "target": "r2scan", "element_offsets": offsets, **extra}
    path.write_text(json.dumps(table), encoding="utf-8")
    return path


def test_measured_element_offsets_become_the_shift(tmp_path):
    model = small_model("heads")
    symbols = model.config.element_symbols
    path = write_offsets(tmp_path / "o.json", {"Li": -0.01, "O": 0.02, "Xe": 4.0})
    shift = element_offsets_shift(path, symbols, source="pbe", target="r2scan")
    assert shift.element_shift == {"Li": -0.01, "O": 0.02}  # only the model's elements
    prior, _ = build_fidelity_prior(FidelityPriorSpec(element_offsets=path), model)
    atoms_list = structures()
    batch = batch_of(atoms_list, model)
    shifts, covered = prior.shifts(model.species(batch[keys.ATOMIC_NUMBERS]), batch[keys.BATCH], len(atoms_list))
    assert covered.tolist() == [True, False, False, False]  # Li2O only: Fe and Si have no offset
    assert float(shifts[0]) == pytest.approx((2 * -0.01 + 0.02) / 3)
    write_offsets(path, {"Li": -0.01, "O": 0.02}, default_offset=-0.5)
    prior, shift = build_fidelity_prior(FidelityPriorSpec(element_offsets=path), model)
    assert shift.element_shift["Fe"] == -0.5 and shift.fit["elements_measured"] == 2.0
    _, covered = prior.shifts(model.species(batch[keys.ATOMIC_NUMBERS]), batch[keys.BATCH], len(atoms_list))
    assert covered.all()


def test_shift_from_references_ties_binding_energies():
    """``shift_from_references``: Δ = ref_target − ref_source per element, so a model whose two fidelities have the
    same binding energy (energy minus references) on every structure pays no prior at all."""
    model = small_model("linear_delta")
    with torch.no_grad():
        model.fidelity_delta.zero_()
        model.energy_scale.fill_(0.9)
        offsets = torch.tensor([0.3, -1.2, 2.5, -0.4, 7.0, -20.0], dtype=model.dtype)
        model.element_references[1] = model.element_references[0] + offsets
    prior, shift = build_fidelity_prior(FidelityPriorSpec(shift_from_references=True), model)
    assert shift.element_shift == pytest.approx(dict(zip(model.config.element_symbols, offsets.tolist(), strict=True)))
    assert shift.fit == {"from_references": 1.0}
    for atoms in structures():
        batch = batch_of([atoms], model)
        total, count = prior.loss_sum(model, batch, model(batch, compute_forces=False)[keys.ENERGY])
        assert float(count) == 1.0 and float(total.detach()) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():  # a binding energy that differs by 0.1 eV/atom costs weight x 0.01
        model.element_references[1, 0] += 0.1  # H: not in these structures ...
        model.element_references[1, 1] += 0.1  # ... Li is
    batch = batch_of([structures()[0]], model)
    total, _ = prior.loss_sum(model, batch, model(batch, compute_forces=False)[keys.ENERGY])
    assert float(total.detach()) == pytest.approx((2 / 3 * 0.1) ** 2, rel=1e-6)
    with pytest.raises(ValueError, match="no fidelity 'r2scan_chgnet'"):
        build_fidelity_prior(FidelityPriorSpec(target="r2scan_chgnet", shift_from_references=True), model)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a JSON file"),
        (json.dumps({"source": "pbe", "target": "r2scan"}), "no 'element_offsets'"),
        (json.dumps({"source": "pbe", "target": "r2scan", "element_offsets": {"Li": "x"}}), "Li is not a finite"),
        (json.dumps({"source": "pbe", "target": "r2scan", "element_offsets": {"Li": float("nan")}}), "not a finite"),
        (json.dumps({"source": "r2scan", "target": "pbe", "element_offsets": {"Li": 0.1}}), "r2scan->pbe"),
    ],
)
def test_bad_offsets_files_are_refused(tmp_path, content, message):
    path = tmp_path / "o.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        element_offsets_shift(path, ("Li",), source="pbe", target="r2scan")
    with pytest.raises(FileNotFoundError, match="no element offsets file"):
        element_offsets_shift(tmp_path / "missing.json", ("Li",), source="pbe", target="r2scan")


def test_zero_shift_prior_and_several_priors_add_up():
    """Without a table or offsets the prior pulls the target onto the source (Δ = 0); two priors sum."""
    model = small_model("heads")
    zero, shift = build_fidelity_prior(FidelityPriorSpec(), model)
    assert set(shift.element_shift.values()) == {0.0} and len(shift.element_shift) == len(model.config.element_symbols)
    batch = batch_of(structures(), model)
    source = model(batch, compute_forces=False)[keys.ENERGY]
    target = model(batch_of(structures(), model, "r2scan"), compute_forces=False)[keys.ENERGY]
    total, count = zero.loss_sum(model, batch, source)
    expected = ((target - source).detach().double() / batch[keys.NUM_ATOMS]).square().sum()
    assert float(count) == 4.0 and float(total) == pytest.approx(float(expected), rel=1e-9) and float(total) > 0
    other = FidelityPrior(model, SHIFT, weight=0.5)
    both, both_count = FidelityPriors([zero, other]).loss_sum(model, batch, source)
    single, _ = other.loss_sum(model, batch, source)
    assert float(both_count) == 8.0 and float(both) == pytest.approx(float(total) + float(single), rel=1e-9)


def test_a_list_of_priors_in_the_config(tmp_path):
    (tmp_path / "frames.extxyz").write_text("", encoding="utf-8")
    priors = [{"table": "x.csv"}, {"source": "pbe_chgnet", "target": "pbe", "weight": 0.3}]
    config = load_run_config(write_config(tmp_path, tmp_path, fidelity_prior=priors))
    assert [p.source for p in config.fidelity_priors] == ["pbe", "pbe_chgnet"]
    assert config.fidelity_priors[1].table is None and config.fidelity_priors[1].weight == 0.3
