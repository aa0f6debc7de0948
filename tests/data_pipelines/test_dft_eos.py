"""``umfp data dft-eos``: equations of state of elemental crystals labelled by real DFT (forces and stress)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import read
from ase.units import GPa
from universal_mfp_pipelines.dft_eos import (
    DftSettings,
    eos_structures,
    kpoint_grid,
    label_structure,
    reference_crystal,
    run_eos,
)

from universal_mfp.data.readers import read_frames

FACTORS = (0.94, 0.97, 1.0, 1.03, 1.06)


class CountingEMT:
    """A factory of real EMT calculators that counts how often it is asked (EMT: Al, Cu, Ag, Au, Ni, Pd, Pt)."""

    def __init__(self) -> None:
        self.calls = 0
        self.grids: list[tuple[int, int, int] | None] = []

    def __call__(self, settings: DftSettings, grid: tuple[int, int, int] | None = None) -> EMT:
        self.calls += 1
        self.grids.append(grid)
        return EMT()


def test_scans_scale_the_reference_crystal_isotropically_and_share_one_group():
    structures = eos_structures("Mg", FACTORS)
    reference = reference_crystal("Mg")
    assert [round(a.get_volume() / reference.get_volume(), 12) for a in structures] == list(FACTORS)
    for atoms in structures:
        np.testing.assert_allclose(atoms.get_scaled_positions(), reference.get_scaled_positions(), atol=1e-12)
        np.testing.assert_allclose(atoms.cell.cellpar()[3:], reference.cell.cellpar()[3:], atol=1e-9)  # same shape
    assert {a.info["material_id"] for a in structures} == {"dft-eos:Mg-hcp"}
    assert [a.info["volume_factor"] for a in structures] == list(FACTORS)


def test_stress_labels_give_the_bulk_modulus_of_the_energies_and_no_energy_label(tmp_path: Path):
    settings = DftSettings(volume_factors=FACTORS)
    run_eos(tmp_path, ["Cu"], settings, calculator_factory=CountingEMT(), provenance={"code": "EMT"})
    frames = read_frames(tmp_path / "frames", fidelity="pbe")  # the folder, as a training source reads it
    assert len(frames) == len(FACTORS)
    assert all(f.energy is None and f.stress is not None and f.forces is not None for f in frames)
    volumes = np.array([abs(np.linalg.det(f.cell)) for f in frames])
    pressures = np.array([-np.trace(f.stress) / 3 for f in frames])  # eV/Å³
    assert pressures[0] > 0 > pressures[-1]  # compressed pushes out, expanded pulls in
    energies = []
    for atoms in read(tmp_path / "frames" / "Cu.extxyz", ":"):
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        assert atoms.info["dft_energy"] == pytest.approx(energies[-1], abs=1e-9)  # kept for the record
    energy_of_volume = np.polynomial.Polynomial.fit(volumes, energies, 4)
    np.testing.assert_allclose(pressures, -energy_of_volume.deriv()(volumes), atol=0.05 * GPa)
    middle = volumes[2]
    from_energy = middle * energy_of_volume.deriv(2)(middle) / GPa
    from_stress = -np.polynomial.Polynomial.fit(volumes, pressures, 2).deriv()(middle) * middle / GPa
    assert from_stress == pytest.approx(from_energy, rel=0.02)
    assert 100 < from_stress < 200  # EMT's Cu, DFT ~140 GPa


def test_reruns_skip_finished_elements_and_refuse_other_settings(tmp_path: Path):
    factory = CountingEMT()
    settings = DftSettings(volume_factors=FACTORS)
    run_eos(tmp_path, ["Al"], settings, calculator_factory=factory)
    before = (tmp_path / "frames" / "Al.extxyz").read_bytes()
    manifest = run_eos(tmp_path, ["Al", "Ag"], settings, calculator_factory=factory)
    assert factory.calls == 2 and set(manifest["elements"]) == {"Al", "Ag"}
    assert (tmp_path / "frames" / "Al.extxyz").read_bytes() == before
    with pytest.raises(ValueError, match="other settings"):
        run_eos(tmp_path, ["Al"], DftSettings(ecut=400.0, volume_factors=FACTORS), calculator_factory=factory)
    assert (tmp_path / "frames" / "Al.extxyz").read_bytes() == before and factory.calls == 2


@pytest.mark.parametrize(
    ("elements", "message"),
    [(["Xx"], "unknown element"), (["Fe"], "magnetic"), (["N"], "reference state"), ([], "no elements")],
)
def test_bad_elements_fail_before_any_calculation(tmp_path: Path, elements: list[str], message: str):
    factory = CountingEMT()
    with pytest.raises(ValueError, match=message):
        run_eos(tmp_path, ["Al", *elements] if elements else [], calculator_factory=factory)
    assert factory.calls == 0 and not (tmp_path / "frames" / "Al.extxyz").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"volume_factors": (0.9, math.nan)}, "volume factors must be"),
        ({"volume_factors": (0.9, 0.9)}, "repeat"),
        ({"volume_factors": ()}, "volume factors must be"),
        ({"ecut": -1.0}, "ecut must be a positive"),
        ({"xc": "SCAN"}, "xc must be one of"),
        ({"structures": ("fcc", "fcc")}, "structures must be distinct"),
        ({"structures": ("rocksalt",)}, "structures must be distinct"),
        ({"mixer_beta": 0.0}, "mixer_beta must be"),
        ({"anchor": "refs.extxyz"}, "need fixed_kpoint_grid"),
    ],
)
def test_settings_refuse_nonsense(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        DftSettings(**kwargs)


def test_a_failed_calculation_is_an_error_that_names_the_structure():
    class Broken(EMT):
        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            self.results["stress"] = self.results["stress"] * np.nan

    with pytest.raises(ValueError, match=r"Al.*non-finite"):
        label_structure(eos_structures("Al", (1.0,))[0], Broken(), DftSettings())


def test_gpaw_stress_is_minus_the_volume_derivative_of_its_energy(tmp_path: Path):
    pytest.importorskip("gpaw", reason="the DFT labeller needs the optional GPAW package")
    from universal_mfp_pipelines.dft_eos import gpaw_calculator

    factors = (0.99, 1.0, 1.01)
    settings = DftSettings(ecut=250.0, kpoint_density=2.0, volume_factors=factors)
    run_eos(tmp_path, ["Li"], settings, calculator_factory=gpaw_calculator)
    atoms = read(tmp_path / "frames" / "Li.extxyz", ":")
    volumes = [a.get_volume() for a in atoms]
    energies = [a.info["dft_energy"] for a in atoms]
    pressure_fd = -(energies[2] - energies[0]) / (volumes[2] - volumes[0])
    pressure = -np.trace(atoms[1].get_stress(voigt=False)) / 3
    assert pressure == pytest.approx(pressure_fd, abs=0.02 * GPa)


def test_the_command_names_a_bad_element_and_writes_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    from universal_mfp_pipelines.cli import main

    assert main(["dft-eos", str(tmp_path / "out"), "--elements", "Al,Fe"]) == 1
    assert "Fe" in caplog.text or "GPAW" in caplog.text  # the element, or the missing code with its install hint
    assert not list(tmp_path.glob("out/frames/*.extxyz"))


def test_a_damaged_manifest_or_element_file_is_named_and_left_alone(tmp_path: Path):
    factory = CountingEMT()
    settings = DftSettings(volume_factors=FACTORS)
    run_eos(tmp_path, ["Al"], settings, calculator_factory=factory)
    (tmp_path / "manifest.json").write_text('{"elements": {"Al": ')
    with pytest.raises(ValueError, match=r"manifest\.json is not valid JSON"):
        run_eos(tmp_path, ["Al", "Cu"], settings, calculator_factory=factory)
    assert (tmp_path / "manifest.json").read_text() == '{"elements": {"Al": '
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "frames" / "Al.extxyz").write_text("1\nLattice=\n")
    with pytest.raises(ValueError, match=r"Al\.extxyz cannot be read"):
        run_eos(tmp_path, ["Al"], settings, calculator_factory=factory)
    assert (tmp_path / "frames" / "Al.extxyz").read_text() == "1\nLattice=\n" and factory.calls == 1


def test_several_structures_share_each_volume_per_atom_and_one_group():
    scans = eos_structures("Mg", FACTORS, ("hcp", "fcc", "bcc"))
    assert len(scans) == 3 * len(FACTORS)
    by_kind = {kind: [a for a in scans if a.info["structure"] == kind] for kind in ("hcp", "fcc", "bcc")}
    reference = reference_crystal("Mg")
    np.testing.assert_allclose(by_kind["hcp"][2].cell.array, reference.cell.array)  # Mg's own hcp, its c/a
    for kind, atoms_list in by_kind.items():
        volumes = [a.get_volume() / len(a) for a in atoms_list]
        np.testing.assert_allclose(volumes, np.array(FACTORS) * reference.get_volume() / len(reference))
        assert {a.info["material_id"] for a in atoms_list} == {f"dft-eos:Mg-{kind}"}
    assert {a.info["composition_group"] for a in scans} == {"dft-eos:Mg"}
    fcc_hcp = eos_structures("Cu", (1.0,), ("hcp",))[0]  # not Cu's own structure: the ideal c/a
    assert fcc_hcp.cell.cellpar()[2] / fcc_hcp.cell.cellpar()[0] == pytest.approx(math.sqrt(8 / 3))


def _anchor_file(path: Path, shift: float) -> Path:
    """Real elemental frames on a setup shifted from EMT's by ``shift`` eV/atom: Cu fcc, a higher Cu bcc, Al."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for atoms in (bulk("Cu", "bcc", a=2.87), bulk("Cu", "fcc", a=3.61) * (2, 1, 1), bulk("Al", "fcc", a=4.05)):
        atoms.calc = EMT()
        energy = atoms.get_potential_energy() + shift * len(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path


def test_an_anchor_puts_the_energy_differences_on_its_scale(tmp_path: Path):
    anchor = _anchor_file(tmp_path / "refs.extxyz", shift=2.5)
    settings = DftSettings(
        volume_factors=FACTORS, structures=("fcc", "bcc"), anchor="refs.extxyz", fixed_kpoint_grid=True
    )
    factory = CountingEMT()
    manifest = run_eos(tmp_path / "out", ["Cu"], settings, calculator_factory=factory, anchor_path=anchor)
    # the anchor, then one calculator per crystal on the grid of its smallest volume
    scans = eos_structures("Cu", FACTORS, ("fcc", "bcc"))
    assert factory.grids == [
        kpoint_grid([read(anchor, 1)], 5.0),
        kpoint_grid(scans[:1], 5.0),
        kpoint_grid(scans[len(FACTORS) : len(FACTORS) + 1], 5.0),
    ]
    assert manifest["elements"]["Cu"]["kpoint_grids"] == {"fcc": [16, 16, 16], "bcc": [16, 16, 16]}
    record = manifest["elements"]["Cu"]["anchor"]
    assert record["frame"] == 1 and record["atoms"] == 2  # the lowest Cu frame per atom: fcc, not bcc
    assert record["offset_per_atom"] == pytest.approx(2.5, abs=1e-9)
    assert manifest["settings"]["anchor"] == "refs.extxyz" and manifest["settings"]["structures"] == ["fcc", "bcc"]
    frames = read(tmp_path / "out" / "frames" / "Cu.extxyz", ":")
    assert len(frames) == 2 * len(FACTORS)
    for atoms in frames:
        expected = atoms.info["dft_energy"] + 2.5 * len(atoms)
        assert atoms.get_potential_energy() == pytest.approx(expected, abs=1e-9)
        atoms.calc = EMT()
        assert atoms.info["dft_energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    loaded = read_frames(tmp_path / "out" / "frames", fidelity="r2scan")
    assert all(f.energy is not None and f.stress is not None for f in loaded)
    assert {f.info["composition_group"] for f in loaded} == {"dft-eos:Cu"}


def test_a_bad_anchor_is_named_before_any_calculation(tmp_path: Path):
    anchor = _anchor_file(tmp_path / "refs.extxyz", shift=0.0)
    factory = CountingEMT()
    settings = DftSettings(volume_factors=FACTORS, structures=("fcc",), anchor="refs.extxyz", fixed_kpoint_grid=True)
    with pytest.raises(ValueError, match=r"refs\.extxyz has no frame of pure Ag"):
        run_eos(tmp_path / "out", ["Cu", "Ag"], settings, calculator_factory=factory, anchor_path=anchor)
    with pytest.raises(ValueError, match="not the settings' anchor"):
        run_eos(tmp_path / "out", ["Cu"], DftSettings(volume_factors=FACTORS), anchor_path=anchor)
    with pytest.raises(ValueError, match="not the settings' anchor"):
        run_eos(tmp_path / "out", ["Cu"], settings, calculator_factory=factory)
    (tmp_path / "broken.extxyz").write_text("2\nLattice=\n")
    broken = DftSettings(volume_factors=FACTORS, anchor="broken.extxyz", fixed_kpoint_grid=True)
    with pytest.raises(ValueError, match=r"anchor file .*broken\.extxyz cannot be read"):
        run_eos(tmp_path / "out", ["Cu"], broken, calculator_factory=factory, anchor_path=tmp_path / "broken.extxyz")
    assert factory.calls == 0 and not list((tmp_path / "out").glob("frames/*.extxyz"))


def test_a_fixed_grid_is_the_densest_of_the_scan_where_the_density_grid_steps():
    """Mg's hcp scan: by density alone the grid steps between 1.00 and 1.03 of the volume (a few meV/atom of
    energy in a metal); the fixed grid is the one of the smallest cell, at least as dense everywhere."""
    from ase.calculators.calculator import kptdensity2monkhorstpack

    scan = eos_structures("Mg", FACTORS)
    own = [tuple(kptdensity2monkhorstpack(a, 5.0, False)) for a in scan]
    assert len(set(own)) > 1
    fixed = kpoint_grid(scan, 5.0)
    assert fixed == own[0] and all(all(f >= o for f, o in zip(fixed, grid, strict=True)) for grid in own)
