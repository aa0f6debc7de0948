"""Model-driven path on a tiny model: self-consistent energies, relaxation, references, MP2020."""

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.ase import AseAtomsAdaptor

from universal_mfp import predict_structures
from universal_mfp.hull import (
    PhaseEnergy,
    RelaxOptions,
    bundled_elemental_references,
    bundled_elements,
    energies_above_hull,
    materials_project_references,
    relax_structures,
    screen_structures,
)
from universal_mfp.mp_conventions import mp2020_corrected_energies

from .structures import candidates, li2o


@pytest.mark.parametrize("fidelity", ["pbe", "r2scan"])
def test_hull_energies_are_the_models_own(tiny_model, fidelity):
    cands = candidates()
    result = screen_structures(tiny_model, cands, fidelity=fidelity)
    direct = predict_structures(tiny_model, cands, fidelity=fidelity, compute_forces=False, compute_stress=False)
    for row, atoms, p in zip(result.rows, cands, direct, strict=True):
        assert row.id == atoms.info["id"]
        assert row.fidelity == fidelity
        assert row.energy_per_atom == pytest.approx(p.energy / len(atoms), abs=1e-5)
        assert row.relaxation_status == "unrelaxed"
    # self-consistency: every reference is the bundled structure evaluated by the same model at the same fidelity
    elements = sorted({s for a in cands for s in a.get_chemical_symbols()})
    refs = bundled_elemental_references(fidelity, elements)
    assert [r.id for r in result.references] == [f.info["id"] for f in refs]
    ref_direct = predict_structures(tiny_model, refs, fidelity=fidelity, compute_forces=False, compute_stress=False)
    for evaluated, p in zip(result.references, ref_direct, strict=True):
        assert evaluated.energy == pytest.approx(p.energy, abs=1e-4)
    # and the hull equals the energy-only hull of exactly those energies
    phases = [PhaseEnergy(a.info["id"], a.get_chemical_formula(), p.energy) for a, p in zip(cands, direct, strict=True)]
    ref_phases = [PhaseEnergy(f.info["id"], f.formula, p.energy) for f, p in zip(refs, ref_direct, strict=True)]
    expected = {p.id: p for p in energies_above_hull(phases, ref_phases)}
    for row in result.rows:
        assert row.e_above_hull == pytest.approx(expected[row.id].e_above_hull, abs=1e-5)
        assert row.formation_energy_per_atom == pytest.approx(expected[row.id].formation_energy_per_atom, abs=1e-5)
        assert row.stable == (row.e_above_hull <= 0)
    assert any(row.stable for row in result.rows)


def test_fidelities_differ_and_choose_their_reference_structures(tiny_model):
    pbe = screen_structures(tiny_model, candidates(), fidelity="pbe")
    r2 = screen_structures(tiny_model, candidates(), fidelity="r2scan")
    assert pbe.rows[0].energy_per_atom != pytest.approx(r2.rows[0].energy_per_atom, abs=1e-3)
    assert "elemental-ref:O-PBE" in {r.id for r in pbe.references}
    assert "elemental-ref:O-r2SCAN" in {r.id for r in r2.references}
    with pytest.raises(ValueError, match="valid fidelities"):
        screen_structures(tiny_model, candidates(), fidelity="hse06")


def test_missing_elements_named(tiny_model):
    assert "Po" not in bundled_elements("r2scan")
    polonium = bulk("Po", "sc", a=3.35)
    with pytest.raises(ValueError, match=r"\['Po'\]"):
        screen_structures(tiny_model, [polonium], fidelity="r2scan")
    with pytest.raises(ValueError, match=r"\['Cu', 'Na'\]"):
        screen_structures(tiny_model, [bulk("NaCu", "rocksalt", a=5.2)], fidelity="pbe", use_bundled_references=False)


def test_relaxation_lowers_energy_and_reports_convergence(tiny_model):
    atoms = bulk("Si", "diamond", a=5.6, cubic=True)
    atoms.rattle(stdev=0.08, seed=1)
    before = atoms.copy()
    [start] = predict_structures(tiny_model, [atoms], fidelity="r2scan", compute_forces=False, compute_stress=False)
    options = RelaxOptions(optimizer="FIRE", fmax=0.02, max_steps=15, max_step=0.1)
    [result] = relax_structures(tiny_model, [atoms], fidelity="r2scan", options=options)
    assert result.energy < start.energy
    assert result.steps > 0
    assert result.converged == (result.fmax < options.fmax)
    assert result.status in ("converged", "not_converged")
    # the input is untouched
    np.testing.assert_array_equal(atoms.positions, before.positions)
    np.testing.assert_array_equal(atoms.cell.array, before.cell.array)
    assert atoms.calc is None
    [short] = relax_structures(tiny_model, [atoms], fidelity="r2scan", options=RelaxOptions("BFGS", 1e-6, 1))
    assert short.steps == 1
    assert not short.converged


def test_screen_with_relaxation_reports_status(tiny_model):
    cands = candidates()[:2]
    result = screen_structures(
        tiny_model, cands, fidelity="r2scan", relax=RelaxOptions(fmax=0.05, max_steps=8, max_step=0.1)
    )
    relaxed_frames = [c.frame for c in result.candidates]
    direct = predict_structures(
        tiny_model, relaxed_frames, fidelity="r2scan", compute_forces=False, compute_stress=False
    )
    start = predict_structures(tiny_model, cands, fidelity="r2scan", compute_forces=False, compute_stress=False)
    for row, c, p, before, original in zip(result.rows, result.candidates, direct, start, cands, strict=True):
        assert row.relaxation_status == ("converged" if row.relax_fmax < 0.05 else "not_converged")
        assert row.relax_steps == c.relaxation.steps and 0 < row.relax_steps <= 8
        assert row.energy_per_atom == pytest.approx(p.energy / c.frame.num_atoms, abs=1e-5)
        # the relaxation moved the structure (atoms or cell) and lowered its energy
        moved = np.abs(c.frame.positions - original.positions).max() + np.abs(c.frame.cell - original.cell[:]).max()
        assert moved > 1e-4
        assert p.energy < before.energy
    assert all(r.relaxation is not None for r in result.references)


def test_invalid_relax_options():
    with pytest.raises(ValueError, match="optimizer"):
        RelaxOptions(optimizer="LBFGS-ish")
    with pytest.raises(ValueError, match="fmax"):
        RelaxOptions(fmax=0)


def _entry(atoms, energy, entry_id, run_type=None):
    parameters = {"run_type": run_type} if run_type else {}
    return ComputedStructureEntry(
        AseAtomsAdaptor.get_structure(atoms), energy, entry_id=entry_id, parameters=parameters
    )


def test_materials_project_references_by_run_type(tiny_model):
    entries = [
        _entry(bulk("NaCu", "cesiumchloride", a=3.3), -5.0, "mp-1-R2SCAN"),
        _entry(bulk("NaCu", "rocksalt", a=5.0), -5.5, "mp-2-GGA"),
        _entry(bulk("Cu", "fcc", a=3.6), -4.0, "mp-3", run_type="r2SCAN"),
    ]
    r2 = materials_project_references(entries, fidelity="r2scan")
    assert [f.info["id"] for f in r2] == ["mp:mp-1-R2SCAN", "mp:mp-3"]
    assert r2[0].info["mp_energy_per_atom"] == pytest.approx(-2.5)
    assert [f.info["id"] for f in materials_project_references(entries, fidelity="pbe")] == ["mp:mp-2-GGA"]
    with pytest.raises(ValueError, match="no run type"):
        materials_project_references([_entry(bulk("Cu"), -4.0, "mp-4")], fidelity="r2scan")
    # used as competing phases: the model's energy (not MP's) enters the hull
    result = screen_structures(tiny_model, [bulk("NaCu", "rocksalt", a=5.2)], fidelity="r2scan", references=r2)
    ref_ids = {r.id for r in result.references}
    assert {"mp:mp-1-R2SCAN", "mp:mp-3"} <= ref_ids
    [mp1] = [r for r in result.references if r.id == "mp:mp-1-R2SCAN"]
    [p] = predict_structures(tiny_model, [r2[0]], fidelity="r2scan", compute_forces=False, compute_stress=False)
    assert mp1.energy == pytest.approx(p.energy, abs=1e-5)


def test_mp2020_only_for_gga(tiny_model):
    with pytest.raises(ValueError, match="pbe"):
        screen_structures(tiny_model, candidates(), fidelity="r2scan", mp2020=True)
    from universal_mfp.data.frame import as_frame

    oxide, silicon = as_frame(li2o()), as_frame(bulk("Si", "diamond", a=5.47))
    corrected = mp2020_corrected_energies([oxide, silicon], [-10.0, -10.0], fidelity="pbe")
    n_oxygen = int((oxide.numbers == 8).sum())
    assert corrected[0] == pytest.approx(-10.0 - 0.687 * n_oxygen, abs=0.01)  # MP2020 oxide correction
    assert corrected[1] == -10.0
    result = screen_structures(tiny_model, candidates(), fidelity="pbe", mp2020=True)
    li2o_row = next(r for r in result.rows if r.id == "Li2O")
    assert li2o_row.formation_energy_per_atom_mp2020 < li2o_row.formation_energy_per_atom
    si_row = next(r for r in result.rows if r.id == "Si-diamond")
    assert si_row.e_above_hull_mp2020 == pytest.approx(si_row.e_above_hull, abs=1e-9)
