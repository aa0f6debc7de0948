"""``init_from``: a run that starts from a trained checkpoint's weights, with a new optimizer and schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.training.conftest import write_config
from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import load_checkpoint
from universal_mfp.training.config import load_run_config
from universal_mfp.training.init_from import start_from_checkpoint
from universal_mfp.training.run import train_from_config


@pytest.fixture(scope="module")
def parent(small_real_set, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parent")
    summary = train_from_config(
        load_run_config(write_config(folder, small_real_set, epochs=2, train_element_references=False)), resume=False
    )
    return summary.best_model_dir


def _child_config(folder, data_dir, parent_dir, **training):
    path = write_config(folder, data_dir, **training)
    raw = yaml.safe_load(path.read_text())
    raw["init_from"] = str(parent_dir)
    path.write_text(yaml.safe_dump(raw))
    return load_run_config(path)


def test_a_run_starts_from_the_checkpoint_weights_and_records_it(small_real_set, parent, tmp_path):
    # with a vanishing learning rate the continued run must end where its parent did
    config = _child_config(
        tmp_path, small_real_set, parent, epochs=1, learning_rate=1e-12, warmup_steps=0, train_element_references=False
    )
    assert config.init_from == parent
    summary = train_from_config(config, resume=False)
    before = load_file(str(parent / "model.safetensors"))
    after = load_file(str(summary.best_model_dir / "model.safetensors"))
    assert before.keys() == after.keys()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=1e-5, atol=1e-6, msg=key)
    record = load_checkpoint(summary.best_model_dir).metadata["training"]["init_from"]
    assert record["path"] == str(parent)
    assert record["weights_sha256"] == sha256_file(parent / "model.safetensors")
    assert record["settings"]["epochs"] == 2
    assert record["element_references_moved_ev"] == {}  # same data, same fit


def test_the_run_s_own_element_references_replace_the_checkpoint_s(small_real_set, tmp_path):
    """A parent that learned its references: the child starts from its weights but the child's own fit."""
    parent_run = train_from_config(load_run_config(write_config(tmp_path / "p", small_real_set, epochs=1)))
    parent_dir = parent_run.best_model_dir
    config = _child_config(tmp_path / "c", small_real_set, parent_dir, epochs=1, train_element_references=False)
    fitted, record = start_from_checkpoint(_fresh_model(config), parent_dir)
    learned = load_checkpoint(parent_dir).model.element_references
    wanted = _fresh_model(config).element_references
    torch.testing.assert_close(fitted.element_references, wanted)
    moved = record["element_references_moved_ev"]
    symbols = fitted.config.element_symbols
    expected = {
        fidelity: {
            s: round(float(wanted[f, k] - learned[f, k]), 4)
            for k, s in enumerate(symbols)
            if abs(float(wanted[f, k] - learned[f, k])) > 1e-3
        }
        for f, fidelity in enumerate(fitted.config.fidelities)
    }
    assert moved == {k: v for k, v in expected.items() if v} and moved
    parent_weights = load_file(str(parent_dir / "model.safetensors"))
    for key, value in fitted.state_dict().items():
        if key in parent_weights and key != "element_references":
            torch.testing.assert_close(value, parent_weights[key], msg=key)


def _fresh_model(config):
    """The model a run of ``config`` builds before training (references fitted on its training split)."""
    import numpy as np

    from universal_mfp.data.dataset import GraphDataset
    from universal_mfp.model.config import ModelConfig
    from universal_mfp.training.run import normalised_model, ordered_fidelities, read_sources_with_repeats, run_splits

    frames, _ = read_sources_with_repeats(config)
    fidelities = ordered_fidelities(frames)
    elements = tuple(sorted({int(z) for f in frames for z in np.unique(f.numbers)}))
    model_config = ModelConfig(elements=elements, fidelities=fidelities, **config.model)
    splits, isolated, _ = run_splits(config, frames, fidelities, elements, cutoff=model_config.cutoff)
    train = [frames[i] for i in splits["train"]]
    dataset = GraphDataset(train, model_config.cutoff, fidelities)
    return normalised_model(train, dataset, model_config, seed=config.seed, isolated_atoms=isolated)


def test_a_fresh_start_is_not_the_parent(small_real_set, parent, tmp_path):
    """The control for the test above: without init_from the same tiny learning rate keeps random weights."""
    config = load_run_config(write_config(tmp_path, small_real_set, epochs=1, learning_rate=1e-12, warmup_steps=0))
    summary = train_from_config(config, resume=False)
    before = load_file(str(parent / "model.safetensors"))
    after = load_file(str(summary.best_model_dir / "model.safetensors"))
    assert any(not torch.allclose(after[k], v, rtol=1e-3, atol=1e-4) for k, v in before.items())


def test_another_network_or_a_missing_checkpoint_is_refused(parent, tmp_path):
    fitted = load_checkpoint(parent).model
    with pytest.raises(ValueError, match=r"not the network this run trains \(hidden_irreps"):
        start_from_checkpoint(_other(fitted, hidden_irreps="8x0e+4x1o+2x2e"), parent)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        start_from_checkpoint(fitted, tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    with pytest.raises(ValueError, match=r"config\.json is missing"):
        start_from_checkpoint(fitted, tmp_path / "broken")


def _other(model, **changes):
    from universal_mfp.model.potential import build_model

    return build_model(model.config.replace(**changes), seed=0)


def test_a_first_cycle_cut_short_keeps_its_schedule(small_real_set, tmp_path):
    """``stop_after_epochs``: the run ends after that epoch, at the learning rate its full schedule has there."""
    from universal_mfp.training.trainer import TrainerSettings, learning_rate_at

    config = load_run_config(write_config(tmp_path, small_real_set, epochs=4, stop_after_epochs=2, warmup_steps=0))
    summary = train_from_config(config, resume=False)
    records = [json.loads(line) for line in (config.output_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert sorted({r["epoch"] for r in records}) == [0, 1]
    steps_per_epoch = len(train) // 2
    total = 4 * steps_per_epoch
    assert train[-1]["lr"] == pytest.approx(learning_rate_at(train[-1]["step"] - 1, total, config.training))
    assert train[-1]["lr"] > 10 * config.training.learning_rate * config.training.min_learning_rate_factor
    assert (summary.best_model_dir / "model.safetensors").is_file()
    train_from_config(config)  # resumed: nothing left to do
    assert len((config.output_dir / "metrics.jsonl").read_text().splitlines()) == len(records)
    with pytest.raises(ValueError, match="stop_after_epochs must be between 1 and epochs"):
        TrainerSettings(epochs=4, stop_after_epochs=5)


def _grown_config(tmp_path, data_dir, parent_dir, **model_changes):
    """A one-epoch run from ``parent_dir`` whose network differs by ``model_changes``."""
    path = write_config(tmp_path, data_dir, epochs=1, train_element_references=False)
    raw = yaml.safe_load(path.read_text())
    raw["init_from"] = str(parent_dir)
    raw["model"].update(model_changes)
    path.write_text(yaml.safe_dump(raw))
    return load_run_config(path)


def _assert_same_function(original, grown):
    """The same energies and forces at every fidelity, on a rattled crystal of an element of the small real set."""
    from tests.model.helpers import rattled_crystal
    from universal_mfp.inference import predict_structures

    atoms = rattled_crystal()
    atoms.numbers[:] = 14
    grown.eval()
    for fidelity in original.config.fidelities:
        (before,) = predict_structures(original, [atoms], fidelity=fidelity)
        (after,) = predict_structures(grown, [atoms], fidelity=fidelity)
        assert after.energy == pytest.approx(before.energy, abs=1e-4)
        np.testing.assert_allclose(after.forces, before.forces, atol=1e-4)


def test_a_run_may_grow_the_checkpoint_by_angular_invariants(small_real_set, parent, tmp_path):
    """A network without the angular invariants grows into one with them and starts as the same function;
    the other way round is refused."""
    from universal_mfp.hub.checkpoint import save_checkpoint

    config = _grown_config(tmp_path, small_real_set, parent, angular_lmax=4)
    grown, record = start_from_checkpoint(_fresh_model(config), parent, seed=config.seed)
    assert record["grown"] == ["angular"] and grown.config.angular_lmax == 4
    _assert_same_function(load_checkpoint(parent).model, grown)
    grown_dir = tmp_path / "grown"
    save_checkpoint(grown, grown_dir)
    with pytest.raises(ValueError, match="not the network this run trains"):
        start_from_checkpoint(
            _fresh_model(load_run_config(write_config(tmp_path / "plain", small_real_set))), grown_dir
        )


def test_a_run_may_widen_the_checkpoint_s_network(small_real_set, parent, tmp_path):
    """A wider run starts from a narrower checkpoint as the same function; a narrower one is refused."""
    from e3nn import o3

    from universal_mfp.hub.checkpoint import save_checkpoint

    original = load_checkpoint(parent).model
    wider = o3.Irreps([(2 * mul, ir) for mul, ir in o3.Irreps(original.config.hidden_irreps)])
    config = _grown_config(
        tmp_path, small_real_set, parent, hidden_irreps=str(wider), readout_hidden=2 * original.config.readout_hidden
    )
    grown, record = start_from_checkpoint(_fresh_model(config), parent, seed=config.seed)
    assert record["grown"] == ["hidden_irreps", "readout_hidden"] and grown.config.hidden_irreps == str(wider)
    _assert_same_function(original, grown)
    save_checkpoint(grown, tmp_path / "wide")
    with pytest.raises(ValueError, match=r"not the network this run trains \(hidden_irreps"):
        start_from_checkpoint(original, tmp_path / "wide")


def test_a_resumed_run_does_not_need_its_start_checkpoint(small_real_set, parent, tmp_path):
    """A run with a saved state resumes from it when the ``init_from`` folder is gone (a fresh clone restoring
    a kept state); without a state the missing checkpoint is still refused."""
    import shutil

    start = tmp_path / "start"
    shutil.copytree(parent, start)
    config = _child_config(tmp_path / "run", small_real_set, start, epochs=1, train_element_references=False)
    first = train_from_config(config, resume=True)
    weights = load_file(str(first.best_model_dir / "model.safetensors"))
    shutil.rmtree(start)
    again = train_from_config(config, resume=True)
    for key, value in load_file(str(again.best_model_dir / "model.safetensors")).items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0, msg=key)
    record = load_checkpoint(again.best_model_dir).metadata["training"]["init_from"]
    assert record == {"checkpoint": str(start), "absent_at_resume": True}
    fresh = _child_config(tmp_path / "fresh", small_real_set, start, epochs=1, train_element_references=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_from_config(fresh, resume=True)


def test_a_run_may_add_the_pair_repulsion_to_the_checkpoint_s_network(small_real_set, parent, tmp_path):
    """The ZBL repulsion has no weights: a run may switch it on over a checkpoint without it (the network is
    unchanged where no pair is within its cutoff), and the record says so; switching it off is refused."""
    from universal_mfp.hub.checkpoint import save_checkpoint

    config = _grown_config(tmp_path, small_real_set, parent, pair_repulsion=True, pair_repulsion_cutoff_factor=0.6)
    added, record = start_from_checkpoint(_fresh_model(config), parent, seed=config.seed)
    assert record["added_terms"] == ["pair_repulsion", "pair_repulsion_cutoff_factor"]
    assert record["grown"] == [] and added.repulsion is not None
    _assert_same_function(load_checkpoint(parent).model, added)  # Si pairs at 0.77 covalent sums or more
    save_checkpoint(added, tmp_path / "repelled")
    assert load_checkpoint(tmp_path / "repelled").config.pair_repulsion_cutoff_factor == 0.6
    with pytest.raises(ValueError, match=r"not the network this run trains \(pair_repulsion"):
        start_from_checkpoint(load_checkpoint(parent).model, tmp_path / "repelled")
