"""The run configs in ``configs/`` parse, and v1's says what its recipe promises."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from universal_mfp.training.config import load_run_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def _config(name: str):
    return load_run_config(next(p for p in CONFIGS if p.name == name))


def _cycle(parent_name: str, child_name: str, parent_stops_after: int):
    """A cycle and the one it continues: the parent cut after ``parent_stops_after`` epochs, the child starting
    from the parent's model in a run folder of its own."""
    parent, child = _config(parent_name), _config(child_name)
    assert parent.training.stop_after_epochs == parent_stops_after
    assert child.init_from == parent.output_dir / "best_model" and child.output_dir != parent.output_dir
    return parent, child


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(path: Path):
    config = load_run_config(path)
    assert config.data.sources and config.training.epochs >= 1


def test_v1_ties_binding_energies_and_calibrates_every_teacher_element():
    config = _config("mf-universal-v1.yaml")
    assert [(s.source, s.target, s.shift_from_references) for s in config.fidelity_priors] == [
        ("pbe_chgnet", "pbe", True),
        ("r2scan_chgnet", "r2scan", True),
    ]
    teacher = config.data.isolated_atom_energies["r2scan_chgnet"]
    assert teacher.same_as == "r2scan" and teacher.fallback_cohesive_from == "pbe_chgnet"
    assert teacher.offsets is not None and teacher.offsets.is_file()
    assert config.data.max_binding_energy == 20.0


def test_v1_cycle2_continues_cycle1_with_only_the_stated_changes():
    first, second = _cycle("mf-universal-v1.yaml", "mf-universal-v1-cycle2.yaml", 5)
    assert first.init_from is None
    teacher = second.data.isolated_atom_energies["r2scan_chgnet"]
    assert (
        teacher.fallback_from_compounds
        and not first.data.isolated_atom_energies["r2scan_chgnet"].fallback_from_compounds
    )
    assert dataclasses.replace(second.data, isolated_atom_energies=first.data.isolated_atom_energies) == first.data
    assert (
        dataclasses.replace(teacher, fallback_from_compounds=False)
        == first.data.isolated_atom_energies["r2scan_chgnet"]
    )
    assert second.model == first.model and second.fidelity_priors == first.fidelity_priors and second.seed == first.seed
    changed = {k for k, v in second.training.to_dict().items() if first.training.to_dict()[k] != v}
    assert changed == {"epochs", "learning_rate", "stop_after_epochs"}


def test_v1_cycle3_grows_cycle2_by_angular_invariants_and_changes_nothing_else():
    second, third = _cycle("mf-universal-v1-cycle2.yaml", "mf-universal-v1-cycle3.yaml", 1)
    assert third.data == second.data and third.fidelity_priors == second.fidelity_priors
    assert {k: v for k, v in third.model.items() if not k.startswith("angular_")} == second.model
    assert (third.model["angular_lmax"], third.model["angular_channels"]) == (4, 8)
    assert dataclasses.replace(third.training, stop_after_epochs=1) == second.training


def test_v1_cycle4_continues_cycle3_with_a_huber_loss_and_the_polymorphs_and_changes_nothing_else():
    third, fourth = _cycle("mf-universal-v1-cycle3.yaml", "mf-universal-v1-cycle4.yaml", 4)
    assert fourth.model == third.model and fourth.seed == third.seed
    # one source more: the teachers' polymorph supplement, and nothing else in the data
    added = [s for s in fourth.data.sources if s not in third.data.sources]
    assert [s.path.name for s in added] == ["teacher-polymorphs"] and added[0].path.is_dir()
    assert (
        dataclasses.replace(fourth.data, sources=tuple(s for s in fourth.data.sources if s not in added)) == third.data
    )
    # every weight doubled: below the Huber thresholds (half the squared error) the loss is twice cycle 3's
    assert tuple(dataclasses.replace(p, weight=p.weight / 2) for p in fourth.fidelity_priors) == third.fidelity_priors
    settings = fourth.training
    assert (settings.loss_kind, settings.huber_delta) == ("huber", {"energy": 0.1, "forces": 0.5, "stress": 2.0})
    weights = settings.weights
    assert (weights.energy, weights.forces, weights.stress) == (10.0, 2.0, 0.02) and not weights.per_fidelity
    assert dataclasses.replace(third.training.weights, energy=10.0, forces=2.0, stress=0.02) == weights
    changed = {k for k, v in settings.to_dict().items() if third.training.to_dict()[k] != v}
    assert changed == {"loss_kind", "huber_delta", "weights", "grad_clip", "learning_rate"}
    assert settings.grad_clip == 2 * third.training.grad_clip


def test_v1_cycle5_continues_cycle4_with_the_tetrahedral_alloys_and_a_stress_weight_and_changes_nothing_else():
    fourth, fifth = _cycle("mf-universal-v1-cycle4.yaml", "mf-universal-v1-cycle5.yaml", 4)
    assert fifth.model == fourth.model and fifth.seed == fourth.seed
    assert fifth.fidelity_priors == fourth.fidelity_priors
    added = [s for s in fifth.data.sources if s not in fourth.data.sources]
    assert [s.path.name for s in added] == ["teacher-tetrahedral"] and added[0].path.is_dir()
    assert (
        dataclasses.replace(fifth.data, sources=tuple(s for s in fifth.data.sources if s not in added)) == fourth.data
    )
    assert dataclasses.replace(fourth.training.weights, stress=0.05) == fifth.training.weights
    changed = {k for k, v in fifth.training.to_dict().items() if fourth.training.to_dict()[k] != v}
    assert changed == {"weights", "stop_after_epochs"} and fifth.training.stop_after_epochs == 3


def test_v1_cycle6_continues_cycle5_with_mixed_crystals_without_two_mg_labels_and_a_stress_weight_only():
    fifth, sixth = _cycle("mf-universal-v1-cycle5.yaml", "mf-universal-v1-cycle6.yaml", 3)
    assert sixth.model == fifth.model and sixth.seed == fifth.seed and sixth.fidelity_priors == fifth.fidelity_priors
    assert set(sixth.data.exclude_frames) == set(MG_OUTLIERS) and all(sixth.data.exclude_frames.values())
    added = [s for s in sixth.data.sources if s not in fifth.data.sources]
    assert [s.path.name for s in added] == ["teacher-solid-solutions"] and added[0].path.is_dir()
    kept = tuple(s for s in sixth.data.sources if s not in added)
    assert dataclasses.replace(sixth.data, sources=kept, exclude_frames={}) == fifth.data
    assert dataclasses.replace(fifth.training.weights, stress=0.1) == sixth.training.weights
    changed = {k for k, v in sixth.training.to_dict().items() if fifth.training.to_dict()[k] != v}
    assert changed == {"weights", "epochs", "stop_after_epochs"}
    assert (sixth.training.epochs, sixth.training.stop_after_epochs) == (6, 1)


def test_v1_cycle7_continues_cycle6_with_the_gga_teachers_stresses_at_half_weight_and_changes_nothing_else():
    sixth, seventh = _cycle("mf-universal-v1-cycle6.yaml", "mf-universal-v1-cycle7.yaml", 1)
    assert seventh.model == sixth.model and seventh.seed == sixth.seed
    assert seventh.data == sixth.data and seventh.fidelity_priors == sixth.fidelity_priors
    weights = seventh.training.weights
    assert weights.per_fidelity == {"pbe_chgnet": {"stress": 0.05}}
    assert dataclasses.replace(weights, per_fidelity={}) == sixth.training.weights
    changed = {k for k, v in seventh.training.to_dict().items() if sixth.training.to_dict()[k] != v}
    assert changed == {"weights", "epochs"}  # cut after epoch 0 too, like cycle 6
    assert (seventh.training.epochs, seventh.training.stop_after_epochs) == (5, 1)


def test_v1_cycle8_continues_cycle7_with_the_volume_scans_and_changes_nothing_else():
    seventh, eighth = _cycle("mf-universal-v1-cycle7.yaml", "mf-universal-v1-cycle8.yaml", 1)
    assert eighth.model == seventh.model and eighth.seed == seventh.seed
    assert eighth.fidelity_priors == seventh.fidelity_priors
    added = [s for s in eighth.data.sources if s not in seventh.data.sources]
    assert [(s.path.name, s.repeat) for s in added] == [("teacher-eos", 2)] and added[0].path.is_dir()
    kept = tuple(s for s in eighth.data.sources if s not in added)
    assert dataclasses.replace(eighth.data, sources=kept) == seventh.data
    changed = {k for k, v in eighth.training.to_dict().items() if seventh.training.to_dict()[k] != v}
    assert changed == {"stop_after_epochs"} and eighth.training.stop_after_epochs is None


def test_v1_cycle9_widens_cycle8_and_changes_nothing_else():
    """Cycle 8 ran to its end; cycle 9 trains the same data and loss on a wider network started from its weights
    (``model/widen.py``: the wider network starts as the same function)."""
    eighth, ninth = _cycle("mf-universal-v1-cycle8.yaml", "mf-universal-v1-cycle9.yaml", None)
    assert ninth.data == eighth.data and ninth.fidelity_priors == eighth.fidelity_priors and ninth.seed == eighth.seed
    widened = {k: (eighth.model[k], v) for k, v in ninth.model.items() if eighth.model[k] != v}
    assert widened == {
        "hidden_irreps": ("64x0e+16x1o+8x2e", "96x0e+24x1o+12x2e"),
        "readout_hidden": (32, 64),
    }
    changed = {k for k, v in ninth.training.to_dict().items() if eighth.training.to_dict()[k] != v}
    assert changed == {"epochs", "stop_after_epochs"}
    assert (ninth.training.epochs, ninth.training.stop_after_epochs) == (4, 2)


def test_v1_cycle10_runs_the_rest_of_cycle9_with_the_dft_volume_scans_and_changes_nothing_else():
    """Cycle 9 was cut after 2 of its 4 epochs; cycle 10 adds the GPAW PBE volume scans (forces and stresses at
    ``pbe``) and runs the last two epochs from the learning rate where cycle 9's schedule stood."""
    ninth, tenth = _cycle("mf-universal-v1-cycle9.yaml", "mf-universal-v1-cycle10.yaml", 2)
    assert tenth.model == ninth.model and tenth.seed == ninth.seed and tenth.fidelity_priors == ninth.fidelity_priors
    added = [s for s in tenth.data.sources if s not in ninth.data.sources]
    assert [(s.path.parent.name, s.path.name, s.fidelity, s.repeat) for s in added] == [
        ("dft-eos-gpaw", "frames", "pbe", 4)
    ]
    assert sorted(p.stem for p in added[0].path.glob("*.extxyz")) == sorted(DFT_EOS_ELEMENTS)
    kept = tuple(s for s in tenth.data.sources if s not in added)
    assert dataclasses.replace(tenth.data, sources=kept) == ninth.data
    changed = {k for k, v in tenth.training.to_dict().items() if ninth.training.to_dict()[k] != v}
    assert changed == {"epochs", "learning_rate", "stop_after_epochs"}
    assert (tenth.training.epochs, tenth.training.learning_rate, tenth.training.stop_after_epochs) == (2, 0.001, None)
    # where cycle 9's cosine schedule stood after 2 of its 4 epochs (warm-up aside): half-way to its final rate
    peak, final = ninth.training.learning_rate, ninth.training.learning_rate * ninth.training.min_learning_rate_factor
    assert tenth.training.learning_rate == pytest.approx(final + (peak - final) / 2, rel=0.03)


def _only_repeats_changed(parent, child) -> list[tuple[str, int, int]]:
    """The sources whose repeat a cycle changed (folder, before, after), once all else is checked unchanged."""
    assert child.model == parent.model and child.seed == parent.seed
    assert child.fidelity_priors == parent.fidelity_priors
    assert dataclasses.replace(child.data, sources=parent.data.sources) == parent.data
    pairs = list(zip(parent.data.sources, child.data.sources, strict=True))
    assert all(dataclasses.replace(b, repeat=a.repeat) == a for a, b in pairs)
    return [(a.path.parent.name, a.repeat, b.repeat) for a, b in pairs if a != b]


def test_v1_cycle11_reads_the_dft_volume_scans_six_times_as_often_and_changes_nothing_else():
    tenth, eleventh = _cycle("mf-universal-v1-cycle10.yaml", "mf-universal-v1-cycle11.yaml", None)
    assert _only_repeats_changed(tenth, eleventh) == [("dft-eos-gpaw", 4, 24)]
    changed = {k for k, v in eleventh.training.to_dict().items() if tenth.training.to_dict()[k] != v}
    assert changed == {"epochs", "learning_rate"}
    assert (eleventh.training.epochs, eleventh.training.learning_rate) == (1, 0.0005)


def test_v1_cycle12_adds_the_anchored_mg_scans_and_changes_nothing_else():
    eleventh, twelfth = _cycle("mf-universal-v1-cycle11.yaml", "mf-universal-v1-cycle12.yaml", None)
    assert twelfth.model == eleventh.model and twelfth.seed == eleventh.seed
    assert twelfth.fidelity_priors == eleventh.fidelity_priors
    added = [s for s in twelfth.data.sources if s not in eleventh.data.sources]
    assert [(s.path.parent.name, s.fidelity, s.repeat) for s in added] == [
        ("dft-eos-gpaw-matpes-pbe", "pbe_matpes", 48)
    ]
    kept = tuple(s for s in twelfth.data.sources if s not in added)
    assert dataclasses.replace(twelfth.data, sources=kept) == eleventh.data
    changed = {k for k, v in twelfth.training.to_dict().items() if eleventh.training.to_dict()[k] != v}
    assert changed == {"learning_rate"} and twelfth.training.learning_rate == 0.0003


def test_v1_cycle13_reads_the_mg_energies_ten_times_as_often_and_changes_nothing_else():
    twelfth, thirteenth = _cycle("mf-universal-v1-cycle12.yaml", "mf-universal-v1-cycle13.yaml", None)
    assert _only_repeats_changed(twelfth, thirteenth) == [("dft-eos-gpaw-matpes-pbe", 48, 500)]
    assert thirteenth.training == twelfth.training


# the anchored scans: folder -> (fidelity of their labels, the shared file whose Mg ground state anchors them)
ANCHORED_SCANS = {"dft-eos-gpaw-matpes-pbe": ("pbe_matpes", "matpes_element_refs_PBE.extxyz")}


@pytest.mark.parametrize("folder", sorted(ANCHORED_SCANS))
def test_the_anchored_mg_scans_rest_on_a_training_frame_and_order_hcp_below_fcc(folder: str, shared_frames_dir: Path):
    """What cycle 12 adds, read from the committed files: hcp and fcc Mg at three volumes each, one group, energy
    labels GPAW's plus one offset; the anchor is the shared file's Mg ground state, which the importer's split
    (seed 2026, 5 % + 5 %, as scripts/train_mf_universal.sh runs it) puts in training; hcp lies below fcc."""
    import json

    from universal_mfp.data.readers import read_frames
    from universal_mfp.data.splits import group_key, split_of_group

    fidelity, anchor_file = ANCHORED_SCANS[folder]
    root = Path(__file__).resolve().parents[2] / "datasets" / folder
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["settings"]["anchor"] == anchor_file and manifest["settings"]["structures"] == ["hcp", "fcc"]
    frames = read_frames(root / "frames", fidelity=fidelity)
    assert len(frames) == 6 and {group_key(f) for f in frames} == {"composition_group:dft-eos:Mg"}
    assert manifest["settings"]["fixed_kpoint_grid"] is True
    assert split_of_group("composition_group:dft-eos:Mg", val_fraction=0.05, test_fraction=0.05, seed=2026) == "train"
    anchor = manifest["elements"]["Mg"]["anchor"]
    real = read_frames(shared_frames_dir / anchor_file)[anchor["frame"]]
    assert real.info.get("element") == "Mg" and anchor["matpes_id"] == "mp-153"
    assert split_of_group(group_key(real), val_fraction=0.05, test_fraction=0.05, seed=2026) == "train"
    lowest = {}
    for frame in frames:
        offset = frame.info["energy_offset_per_atom"]
        assert offset == pytest.approx(anchor["offset_per_atom"], abs=1e-12)
        assert frame.energy == pytest.approx(frame.info["dft_energy"] + frame.num_atoms * offset, abs=1e-6)
        kind = frame.info["structure"]
        lowest[kind] = min(lowest.get(kind, np.inf), frame.energy / frame.num_atoms)
    assert 0.005 < lowest["fcc"] - lowest["hcp"] < 0.030  # eV/atom; PBE all-electron and experiment: 10-30 meV


DFT_EOS_ELEMENTS = ["Al", "Cu", "Si", "Mg", "Li", "Na", "K", "Ca", "Be", "C", "Ge", "Ag"]


def test_the_dft_volume_scans_are_pbe_stresses_without_energies_split_by_element():
    """What cycle 10 trains on: every element's scan of seven volumes, forces and stress labels, no energy (GPAW's
    energies are on another scale than MP's), and one group per element so a scan never straddles splits."""
    from universal_mfp.data.readers import read_frames
    from universal_mfp.data.splits import group_key

    folder = Path(__file__).resolve().parents[2] / "datasets" / "dft-eos-gpaw"
    frames = read_frames(folder / "frames", fidelity="pbe")
    assert len(frames) == 7 * len(DFT_EOS_ELEMENTS)
    assert all(f.energy is None and f.forces is not None and f.stress is not None for f in frames)
    groups = {group_key(f) for f in frames}
    assert len(groups) == len(DFT_EOS_ELEMENTS)
    by_group: dict[str, list[float]] = {}
    for frame in frames:
        by_group.setdefault(group_key(frame), []).append(-float(np.trace(frame.stress)) / 3)  # pressure, eV/A^3
    for pressures in by_group.values():  # compressing raises the pressure, at every step of every scan
        assert all(a > b for a, b in itertools.pairwise(pressures)), pressures


# the two MP GGA Mg labels cycle 6 leaves out: frame id -> (atoms in the cell, space group)
MG_OUTLIERS = {"mp_pbe_element_polymorphs:558": (1, "Fm-3m"), "mp_pbe_element_polymorphs:554": (3, "R-3m")}


def test_the_mg_labels_left_out_are_the_rhombohedral_stackings_below_mp_hcp(shared_frames_dir: Path):
    """What the cycle 6 exclusion rests on, read from the real file: among MP's close-packed Mg stackings, hcp
    (2 atoms) lies below dhcp (4 atoms), but the 1-atom fcc and 3-atom Sm-type cells lie below both."""
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    frames = read(shared_frames_dir / "mp_pbe_element_polymorphs.extxyz", ":")

    def cell(index: int) -> tuple[int, str, float]:
        atoms = frames[index]
        assert set(atoms.get_chemical_symbols()) == {"Mg"}
        group = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=0.01).get_space_group_symbol()
        return len(atoms), group, atoms.get_potential_energy() / len(atoms)

    hcp, dhcp = cell(556), cell(557)
    assert hcp[:2] == (2, "P6_3/mmc") and dhcp[:2] == (4, "P6_3/mmc")
    assert 0.003 < dhcp[2] - hcp[2] < 0.005
    energies = {}
    for frame_id, (atoms, group) in MG_OUTLIERS.items():
        natoms, symbol, energy = cell(int(frame_id.split(":")[1]))
        assert (natoms, symbol) == (atoms, group)
        assert -0.010 < energy - hcp[2] < -0.005
        energies[group] = energy - hcp[2]
    # stacking energies with nearest- and next-nearest-layer interactions (ANNNI), relative to hcp: fcc -2 J1,
    # dhcp 2 J2 - J1, Sm-type (9R) (4 J2 - 2 J1) / 3; fitted to fcc and dhcp, it misses the Sm-type cell by 8.6 meV
    j1 = -energies["Fm-3m"] / 2
    j2 = (dhcp[2] - hcp[2] + j1) / 2
    assert (4 * j2 - 2 * j1) / 3 - energies["R-3m"] == pytest.approx(0.0086, abs=0.0002)
