"""Isolated-atom energies as element references: where they come from, and that training keeps them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.io import read

from universal_mfp.data.frame import frame_from_atoms
from universal_mfp.data.statistics import fit_element_references
from universal_mfp.training.isolated_atoms import (
    IsolatedAtomSource,
    energies_from_dimers,
    energies_from_file,
    energies_from_info,
    isolated_atom_energies,
    lowest_bulk_energies,
)


def _frames(path, fidelity):
    return [frame_from_atoms(a, fidelity=fidelity, with_labels=True) for a in read(path, ":")]


def test_energies_from_file_accept_numbers_symbols_and_sections(tmp_path):
    path = tmp_path / "e0.json"
    path.write_text(json.dumps({"pbe": {"1": -1.117, "O": -1.548}, "other": {}}))
    assert energies_from_file(path, "pbe") == {1: -1.117, 8: -1.548}
    path.write_text(json.dumps({"Si": -0.826}))
    assert energies_from_file(path) == {14: -0.826}
    with pytest.raises(ValueError, match="no section 'r2scan'"):
        energies_from_file(path, "r2scan")
    path.write_text(json.dumps({"Xx": 1.0}))
    with pytest.raises(ValueError, match="neither an atomic number nor an element symbol"):
        energies_from_file(path)
    path.write_text(json.dumps({"H": float("nan")}))
    with pytest.raises(ValueError, match="not finite"):
        energies_from_file(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        energies_from_file(path)
    with pytest.raises(FileNotFoundError, match="no isolated-atom energy file"):
        energies_from_file(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="needs file, info_key"):
        IsolatedAtomSource()


def test_real_mp_e0_file_and_matpes_info(shared_frames_dir):
    mp = energies_from_file(shared_frames_dir.parent / "raw" / "mace" / "mp_vasp_e0.json", "pbe")
    assert len(mp) == 87 and mp[8] == pytest.approx(-1.54838784)
    frames = _frames(shared_frames_dir / "matpes_element_refs_PBE.extxyz", "pbe_matpes")
    matpes = energies_from_info(frames, "energy_atomic")
    assert len(matpes) == 89
    si = next(f for f in frames if f.info["element"] == "Si")
    assert matpes[14] == pytest.approx(float(si.info["energy_atomic"]))
    clash = [si, si.replace(info={**si.info, "energy_atomic": float(si.info["energy_atomic"]) + 0.1})]
    with pytest.raises(ValueError, match="disagrees between frames of element Z=14"):
        energies_from_info(clash, "energy_atomic")


def test_dissociated_dimers_use_the_farthest_pair_beyond_the_cutoff(shared_frames_dir):
    frames = _frames(shared_frames_dir / "diatomics_r2SCAN.extxyz", "r2scan")
    oxygen = [f for f in frames if f.info["pair"] == "O-O"]
    farthest = max(oxygen, key=lambda f: float(f.info["distance"]))
    assert float(farthest.info["distance"]) >= 5.0
    assert energies_from_dimers(oxygen, cutoff=5.0) == {8: pytest.approx(0.5 * farthest.energy)}
    assert energies_from_dimers(oxygen, cutoff=float(farthest.info["distance"]) + 0.1) == {}
    # 15 Å boxes: with a cutoff above 7.5 Å each atom sees its own periodic image, so no dimer qualifies
    assert energies_from_dimers(oxygen, cutoff=7.6) == {}


def _bulk(symbol, n, energy_per_atom, fidelity):
    atoms = Atoms(symbol * n, positions=np.random.default_rng(n).uniform(0, 3, (n, 3)), cell=np.eye(3) * 3, pbc=True)
    return frame_from_atoms(atoms, fidelity=fidelity).replace(energy=energy_per_atom * n)


def test_cohesive_energy_transfer_and_fixed_references():
    frames = [
        _bulk("W", 2, -12.96, "pbe"),  # MP legacy bulk W, no free-atom energy in this setup
        _bulk("W", 1, -12.70, "pbe"),
        _bulk("W", 2, -13.0, "pbe_matpes"),
        _bulk("O", 2, -4.9, "pbe_matpes"),
    ]
    sources = {
        "pbe": IsolatedAtomSource(cohesive_from="pbe_matpes"),
        "pbe_matpes": IsolatedAtomSource(info_key="energy_atomic"),
    }
    frames = [f.replace(info={"energy_atomic": {74: -4.57, 8: -1.9}[int(f.numbers[0])]}) for f in frames]
    found = isolated_atom_energies(frames, ("pbe", "pbe_matpes"), sources, cutoff=5.0)
    assert found["pbe_matpes"] == {74: pytest.approx(-4.57), 8: pytest.approx(-1.9)}
    # the same cohesive energy (-13.0 + 4.57) from the lowest pbe bulk energy
    assert found["pbe"] == {74: pytest.approx(-12.96 + 13.0 - 4.57)}
    assert lowest_bulk_energies(frames[:2]) == {74: pytest.approx(-12.96)}
    with pytest.raises(ValueError, match="fidelities \\['r2scan'\\] that the data does not have"):
        isolated_atom_energies(frames, ("pbe",), {"r2scan": IsolatedAtomSource(info_key="x")}, cutoff=5.0)


def test_teacher_fidelity_takes_a_real_fidelitys_energies_minus_offsets(tmp_path):
    """``same_as`` copies the final E0 of another fidelity (after its cohesive pass) less measured offsets."""
    frames = [
        _bulk("W", 2, -12.96, "pbe"),
        _bulk("W", 2, -13.0, "pbe_matpes"),
        _bulk("O", 2, -4.9, "pbe_matpes"),
        _bulk("W", 2, -12.5, "pbe_chgnet"),
        _bulk("W", 2, -12.4, "teacher_r2"),
    ]
    frames = [f.replace(info={"energy_atomic": {74: -4.57, 8: -1.9}[int(f.numbers[0])]}) for f in frames]
    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"element_offsets": {"W": 0.25}, "default_offset": -0.02}))
    sources = {
        "pbe": IsolatedAtomSource(cohesive_from="pbe_matpes"),
        "pbe_matpes": IsolatedAtomSource(info_key="energy_atomic"),
        "pbe_chgnet": IsolatedAtomSource(same_as="pbe"),
        "teacher_r2": IsolatedAtomSource(same_as="pbe_matpes", offsets=offsets),
    }
    fidelities = ("pbe", "pbe_matpes", "pbe_chgnet", "teacher_r2")
    found = isolated_atom_energies(frames, fidelities, sources, cutoff=5.0)
    assert found["pbe_chgnet"] == found["pbe"] == {74: pytest.approx(-12.96 + 13.0 - 4.57)}
    assert found["teacher_r2"] == {74: pytest.approx(-4.57 - 0.25), 8: pytest.approx(-1.9 + 0.02)}
    chained = {**sources, "teacher_r2": IsolatedAtomSource(same_as="pbe_chgnet")}
    with pytest.raises(ValueError, match="same_as 'pbe_chgnet' has no energies of its own"):
        isolated_atom_energies(frames, fidelities, chained, cutoff=5.0)
    with pytest.raises(ValueError, match="give 'same_as' too"):
        IsolatedAtomSource(info_key="energy_atomic", offsets=offsets)
    offsets.write_text("{}")
    with pytest.raises(ValueError, match="no 'element_offsets'"):
        isolated_atom_energies(frames, fidelities, sources, cutoff=5.0)


def test_unmeasured_teacher_elements_take_the_other_teachers_cohesive_energy(tmp_path):
    """``fallback_cohesive_from``: an element without a measured offset gets the E0 that gives the teacher's
    lowest elemental crystal the other fidelity's binding energy, not the default offset (which can be tens of
    eV/atom off for a teacher that never saw the element); one that cannot be matched is left to least squares."""
    frames = [
        _bulk("W", 2, -12.96, "pbe"),
        _bulk("W", 2, -13.0, "r2scan"),
        _bulk("W", 2, -12.5, "pbe_chgnet"),
        _bulk("W", 2, -12.4, "r2scan_chgnet"),
        _bulk("Po", 2, -4.0, "pbe_chgnet"),  # Po: no offset measured; the r2SCAN teacher is on a GGA-like scale
        _bulk("Po", 1, -3.1, "pbe_chgnet"),
        _bulk("Po", 2, -5.0, "r2scan_chgnet"),
        _bulk("Rn", 2, -0.5, "r2scan_chgnet"),  # Rn: no offset and no GGA teacher crystal
        _bulk("At", 2, -3.0, "r2scan_chgnet"),  # At: a GGA teacher crystal but no GGA free-atom energy
        _bulk("At", 2, -2.0, "pbe_chgnet"),
    ]
    e0 = tmp_path / "e0.json"
    e0.write_text(
        json.dumps({"pbe": {"W": -4.57, "Po": -1.0, "Rn": -0.1}, "r2scan": {"W": -8.0, "Po": -60.0, "Rn": -62.0}})
    )
    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"element_offsets": {"W": 0.25}, "default_offset": -0.02}))
    sources = {
        "pbe": IsolatedAtomSource(file=e0, key="pbe"),
        "r2scan": IsolatedAtomSource(file=e0, key="r2scan"),
        "pbe_chgnet": IsolatedAtomSource(same_as="pbe"),
        "r2scan_chgnet": IsolatedAtomSource(same_as="r2scan", offsets=offsets, fallback_cohesive_from="pbe_chgnet"),
    }
    fidelities = ("pbe", "r2scan", "pbe_chgnet", "r2scan_chgnet")
    found = isolated_atom_energies(frames, fidelities, sources, cutoff=5.0)
    # W: measured offset; Po: binding energy of CHGNet 0.3.0's lowest Po crystal (-4.0 - -1.0 = -3.0 eV/atom)
    assert found["r2scan_chgnet"] == {74: pytest.approx(-8.0 - 0.25), 84: pytest.approx(-5.0 - (-4.0 + 1.0))}
    # without the fallback, Po and Rn take the default offset: Po's binding energy would be +55 eV/atom
    plain = {**sources, "r2scan_chgnet": IsolatedAtomSource(same_as="r2scan", offsets=offsets)}
    found = isolated_atom_energies(frames, fidelities, plain, cutoff=5.0)
    assert found["r2scan_chgnet"][84] == pytest.approx(-60.0 + 0.02) and 86 in found["r2scan_chgnet"]
    with pytest.raises(ValueError, match="give 'same_as' too"):
        IsolatedAtomSource(file=e0, fallback_cohesive_from="pbe")
    looped = {**sources, "pbe_chgnet": IsolatedAtomSource(same_as="pbe", fallback_cohesive_from="r2scan_chgnet")}
    with pytest.raises(ValueError, match="is itself completed by a cohesive match"):
        isolated_atom_energies(frames, fidelities, looped, cutoff=5.0)


def _compound(symbols, binding, e0, fidelity, seed=0):
    atoms = Atoms(symbols, cell=np.eye(3) * 4, pbc=True)
    atoms.positions = np.random.default_rng(seed).uniform(0, 4, (len(atoms), 3))
    energy = len(atoms) * binding + sum(e0[s] for s in atoms.get_chemical_symbols())
    return frame_from_atoms(atoms, fidelity=fidelity).replace(energy=energy)


def test_teacher_elements_without_a_pure_crystal_match_binding_energies_of_shared_compounds(tmp_path):
    """An unmeasured element whose pure crystals all fell in another split (Nd here) takes the E0 that gives
    the structures both teachers labelled the same binding energy, by least squares over those structures; a
    failed label (+10 eV/atom) is left out of the fit, and a structure only one teacher labelled is not used."""
    e0 = tmp_path / "e0.json"
    e0.write_text(json.dumps({"pbe": {"W": -4.57, "Nd": -0.3}, "r2scan": {"W": -8.0, "Nd": -30.0}}))
    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"element_offsets": {"W": 0.25}, "default_offset": -0.02}))
    gga = {"W": -4.57, "Nd": -0.3}
    r2scan = {"W": -8.25, "Nd": -29.0}  # W from its measured offset; Nd is what the fit must find
    frames = []
    for seed, (symbols, binding) in enumerate([("NdW", -5.0), ("NdW3", -6.0), ("Nd3W", -4.0), ("Nd2W2", -5.5)]):
        frames.append(_compound(symbols, binding, gga, "pbe_chgnet", seed))
        failed = 10.0 if symbols == "Nd2W2" else 0.0
        frames.append(_compound(symbols, binding + failed, r2scan, "r2scan_chgnet", seed))
    frames.append(_compound("NdW", 3.0, r2scan, "r2scan_chgnet", seed=99))  # no GGA twin
    sources = {
        "pbe": IsolatedAtomSource(file=e0, key="pbe"),
        "r2scan": IsolatedAtomSource(file=e0, key="r2scan"),
        "pbe_chgnet": IsolatedAtomSource(same_as="pbe"),
        "r2scan_chgnet": IsolatedAtomSource(
            same_as="r2scan", offsets=offsets, fallback_cohesive_from="pbe_chgnet", fallback_from_compounds=True
        ),
    }
    fidelities = ("pbe", "r2scan", "pbe_chgnet", "r2scan_chgnet")
    found = isolated_atom_energies(frames, fidelities, sources, cutoff=5.0)
    assert found["r2scan_chgnet"] == {74: pytest.approx(-8.25), 60: pytest.approx(-29.0, abs=1e-9)}
    # without the compounds step, Nd is left to least squares
    cohesive_only = {
        **sources,
        "r2scan_chgnet": IsolatedAtomSource(**{**vars(sources["r2scan_chgnet"]), "fallback_from_compounds": False}),
    }
    assert 60 not in isolated_atom_energies(frames, fidelities, cohesive_only, cutoff=5.0)["r2scan_chgnet"]
    with pytest.raises(ValueError, match="extends 'fallback_cohesive_from'"):
        IsolatedAtomSource(same_as="r2scan", fallback_from_compounds=True)


def test_given_references_are_kept_and_the_rest_fitted():
    rng = np.random.default_rng(1)
    elements = (1, 8, 14)
    true = np.array([-1.1, -4.9, -5.4])
    frames = []
    for _ in range(15):
        numbers = rng.choice(elements, size=rng.integers(1, 6))
        counts = np.array([np.sum(numbers == z) for z in elements])
        atoms = Atoms(numbers=numbers, positions=rng.uniform(0, 6, (len(numbers), 3)), cell=np.eye(3) * 6, pbc=True)
        frames.append(frame_from_atoms(atoms, fidelity="pbe").replace(energy=float(counts @ true)))
    references, fitted = fit_element_references(frames, elements, ("pbe",), fixed={"pbe": {8: -4.9, 14: -5.4}})
    np.testing.assert_allclose(references[0], true, atol=1e-10)
    assert fitted.all()
    # a wrong given value stays as given; the free element absorbs what it can
    references, _ = fit_element_references(frames, elements, ("pbe",), fixed={"pbe": {8: -3.0}})
    assert references[0, 1] == -3.0


def test_fixed_references_do_not_move_in_training(small_real_set, tmp_path):
    from tests.training.conftest import write_config
    from universal_mfp.calculator import MFCalculator
    from universal_mfp.hub.checkpoint import load_checkpoint
    from universal_mfp.training.config import load_run_config
    from universal_mfp.training.run import train_from_config

    path = write_config(tmp_path, small_real_set, epochs=2, train_element_references=False)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["val_fraction"] = 0.0  # every crystal, with its free-atom energy, in training
    raw["data"]["isolated_atom_energies"] = {
        "pbe": {"info_key": "energy_atomic", "dissociated_dimers": True},
        "r2scan": {"dissociated_dimers": True},
    }
    path.write_text(yaml.safe_dump(raw))
    config = load_run_config(path)
    summary = train_from_config(config, resume=False)
    model = load_checkpoint(summary.best_model_dir).model
    refs = model.element_references.detach().double().numpy()
    symbols = model.config.element_symbols
    crystals = {
        a.info["element"]: float(a.info["energy_atomic"]) for a in read(small_real_set / "crystals_PBE.extxyz", ":")
    }
    training = load_checkpoint(summary.best_model_dir).metadata["training"]
    assert training["settings"]["train_element_references"] is False
    for symbol, e0 in crystals.items():
        # float32 model: the given value, rounded once
        assert refs[0, symbols.index(symbol)] == pytest.approx(e0, abs=1e-5)
        # an isolated atom gets its free-atom energy
        atom = Atoms(symbol, positions=[[0, 0, 0]])
        atom.calc = MFCalculator(model, fidelity="pbe")
        assert atom.get_potential_energy() == pytest.approx(e0, abs=1e-4)
