"""Adding the fixed pair repulsion to a trained checkpoint, below the closest pair of its data."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.data import covalent_radii

from tests.model.helpers import rattled_crystal, small_model
from universal_mfp.data import as_frame
from universal_mfp.files import sha256_file
from universal_mfp.hub.checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint
from universal_mfp.inference import predict_structures
from universal_mfp.training.add_repulsion import add_pair_repulsion, closest_pair_ratio


def _dimer(symbol: str, distance: float) -> Atoms:
    return Atoms(f"{symbol}2", positions=[[0, 0, 0], [0, 0, distance]], pbc=False)


def test_the_closest_pair_is_found_across_frames_and_periodic_images():
    iron = bulk("Fe", "bcc", a=2.87)  # one atom: its closest pairs are its own images, 2.485 Å away
    frames = [as_frame(iron), as_frame(_dimer("Li", 1.5)), as_frame(Atoms("O", pbc=False))]
    frames[1].info["frame_id"] = "dimers:1"
    ratio, frame_id = closest_pair_ratio(frames)
    assert ratio == pytest.approx(1.5 / (2 * covalent_radii[3]))
    assert frame_id == "dimers:1"
    assert closest_pair_ratio(frames[:1])[0] == pytest.approx(2.87 * np.sqrt(3) / 2 / (2 * covalent_radii[26]))
    assert closest_pair_ratio([as_frame(_dimer("Li", 4.0))])[0] == float("inf")  # beyond the covalent sum
    with pytest.raises(ValueError, match="no frames"):
        closest_pair_ratio([])


@pytest.fixture
def trained(tmp_path):
    folder = tmp_path / "trained"
    save_checkpoint(small_model("angular", dtype="float32"), folder, training={"epochs": 3})
    return folder


def test_the_repulsion_changes_nothing_on_the_data_and_walls_off_what_is_closer(trained, tmp_path):
    data = [rattled_crystal(seed=s) for s in range(3)] + [_dimer("C", 0.5 * 2 * covalent_radii[6])]
    record = add_pair_repulsion(trained, tmp_path / "repelled", [as_frame(a) for a in data], 0.45)
    assert record["cutoff_factor"] == 0.45 and record["frames_scanned"] == 4
    assert record["closest_pair_ratio"] == pytest.approx(0.5)
    assert record["weights_sha256"] == sha256_file(trained / WEIGHTS_FILE)
    before, after = load_checkpoint(trained), load_checkpoint(tmp_path / "repelled")
    assert after.config == before.config.replace(pair_repulsion=True, pair_repulsion_cutoff_factor=0.45)
    assert after.metadata["training"]["epochs"] == 3
    assert after.metadata["training"]["pair_repulsion_added"] == record
    for fidelity in before.config.fidelities:
        for old, new in zip(
            predict_structures(before.model, data, fidelity=fidelity),
            predict_structures(after.model, data, fidelity=fidelity),
            strict=True,
        ):
            assert new.energy == old.energy
            np.testing.assert_array_equal(new.forces, old.forces)
    close = [_dimer("C", 0.3 * 2 * covalent_radii[6])]  # 0.46 Å: inside the cutoff
    (old,) = predict_structures(before.model, close, fidelity="pbe")
    (new,) = predict_structures(after.model, close, fidelity="pbe")
    assert new.energy - old.energy > 5.0  # eV: the wall
    assert new.forces[1, 2] - old.forces[1, 2] > 10.0  # eV/Å, pushing the atoms apart


def test_a_cutoff_reaching_the_data_or_a_second_repulsion_is_refused(trained, tmp_path):
    data = [as_frame(_dimer("C", 0.5 * 2 * covalent_radii[6]))]
    data[0].info["frame_id"] = "diatomics:7"
    with pytest.raises(ValueError, match=r"frame diatomics:7 has a pair at 0\.500 times its covalent sum"):
        add_pair_repulsion(trained, tmp_path / "out", data, 0.6)
    assert not (tmp_path / "out").exists()
    add_pair_repulsion(trained, tmp_path / "out", data, 0.4)
    with pytest.raises(ValueError, match="already has a pair repulsion"):
        add_pair_repulsion(tmp_path / "out", tmp_path / "again", data, 0.3)
    with pytest.raises(FileExistsError):  # what is there is kept unless asked
        add_pair_repulsion(trained, tmp_path / "out", data, 0.3)
    assert load_checkpoint(tmp_path / "out").config.pair_repulsion_cutoff_factor == 0.4
