"""Structure generation: a deterministic, charge-balanced plan; configurations; resumable shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read
from pymatgen.io.ase import AseAtomsAdaptor
from universal_mfp_pipelines.configurations import (
    is_sane,
    min_distance,
    rattle,
    scaled_volume,
    strain,
    supercell_at_least,
    surface,
    vacancy,
)
from universal_mfp_pipelines.generate import (
    POLYMORPH_ELEMENTS,
    GenerationSettings,
    build_plan,
    generate,
    prototype_registry,
)
from universal_mfp_pipelines.prototypes import TEACHER_ELEMENTS, common_prototypes
from universal_mfp_pipelines.shard_runner import parse_part
from universal_mfp_pipelines.substitution import U_METALS, cation_candidates, decorate, sample_decoration

from tests.conftest import REPO_ROOT
from tests.data_pipelines.teacher_helpers import SMALL_SETTINGS, plan_of_new_option

pytestmark = pytest.mark.shared_data


def _charge(prototype, variant: int) -> int:
    roles = prototype.role_variants[variant]
    return sum(int(roles[str(site.specie)]) for site in prototype.structure)


def test_common_prototypes_are_charge_balanced_and_have_sane_geometry():
    for prototype in common_prototypes():
        assert is_sane(AseAtomsAdaptor.get_atoms(prototype.structure)), prototype.name
        for variant, roles in enumerate(prototype.role_variants):
            if all(isinstance(r, int) for r in roles.values()):
                assert _charge(prototype, variant) == 0, (prototype.name, roles)


def test_spinel_and_laves_have_their_textbook_stoichiometry():
    by_name = {p.name: p for p in common_prototypes()}
    assert by_name["spinel"].structure.composition.reduced_formula == "MgAl2O4"
    assert len(by_name["spinel"].structure) == 14
    assert by_name["laves_c15"].structure.composition.reduced_formula == "MgCu2"


def test_cation_candidates_come_from_substitution_data_and_teachers_know_them():
    divalent = cation_candidates(2)
    assert {"Mg", "Ca", "Fe", "Zn", "Ra"} <= set(divalent)
    assert not {"O", "Cl", "Cm"} & set(divalent)  # no anion, nothing past Pu
    assert set(cation_candidates(3)) <= set(TEACHER_ELEMENTS)


def test_decoration_keeps_charge_and_predicts_a_sensible_volume():
    rocksalt = next(p for p in common_prototypes() if p.name == "rocksalt")
    structure = decorate(rocksalt, 1, {"Na": "Mg", "Cl": "O"})  # variant 1: A(2+) X(2-)
    assert structure.composition.reduced_formula == "MgO"
    a = (4 * structure.volume) ** (1 / 3)
    assert 4.0 < a < 4.5  # MgO: 4.21 Å measured; radius ratios get within a few per cent
    variant, mapping = sample_decoration(rocksalt, np.random.default_rng(0))
    roles = rocksalt.role_variants[variant]
    assert len(set(mapping.values())) == 2
    assert roles["Na"] > 0 > roles["Cl"]


def test_plan_is_deterministic_new_and_charge_balanced(small_frames: Path):
    jobs = build_plan(SMALL_SETTINGS, small_frames)
    assert jobs == build_plan(SMALL_SETTINGS, small_frames)
    assert jobs != build_plan(replace(SMALL_SETTINGS, seed=4), small_frames)
    kinds = Counter(job["kind"] for job in jobs)
    assert kinds == {"elemental": 7, "real": 2, "u_focus": 2, "decorated": 8}
    assert len({job["job_id"] for job in jobs}) == len(jobs)
    registry = prototype_registry(str(small_frames))
    formulas = []
    for job in jobs:
        if job["kind"] not in ("decorated", "u_focus"):
            continue
        prototype = registry[job["prototype"]]
        roles = prototype.role_variants[job["variant"]]
        assert set(job["mapping"].values()) <= set(TEACHER_ELEMENTS)
        if all(isinstance(r, int) for r in roles.values()):
            assert _charge(prototype, job["variant"]) == 0
        structure = decorate(prototype, job["variant"], job["mapping"])
        formulas.append(structure.composition.reduced_formula)
        if job["kind"] == "u_focus":
            elements = set(job["mapping"].values())
            assert elements & set(U_METALS)
            assert elements & {"O", "F"}
    assert len(set(formulas)) == len(formulas)  # every decoration is a new composition


def test_polymorph_jobs_put_each_new_common_composition_in_every_fitting_prototype(small_frames: Path):
    settings = replace(SMALL_SETTINGS, num_polymorph_compositions=12)
    jobs = build_plan(settings, small_frames)
    # the option only adds jobs: every other job, and the settings key of a plan without it, stay as they were
    assert [j for j in jobs if j["kind"] != "polymorph"] != [] and SMALL_SETTINGS.key() == replace(
        settings, num_polymorph_compositions=None
    ).key()
    old = {
        (j["kind"], j["prototype"], j["variant"], json.dumps(j["mapping"]))
        for j in build_plan(SMALL_SETTINGS, small_frames)
    }
    assert old <= {(j["kind"], j["prototype"], j["variant"], json.dumps(j["mapping"])) for j in jobs}
    registry = prototype_registry(str(small_frames))
    by_formula: dict[str, set[tuple[str, tuple[int, ...]]]] = {}
    other_formulas = set()
    for job in jobs:
        if job["kind"] in ("real", "elemental"):
            continue
        prototype = registry[job["prototype"]]
        formula = decorate(prototype, job["variant"], job["mapping"]).composition.reduced_formula
        if job["kind"] != "polymorph":
            other_formulas.add(formula)
            continue
        assert prototype.family == "common" and _charge(prototype, job["variant"]) == 0
        assert set(job["mapping"].values()) <= set(POLYMORPH_ELEMENTS) and len(set(job["mapping"].values())) == 2
        charges = tuple(sorted(prototype.role_variants[job["variant"]].values(), reverse=True))
        by_formula.setdefault(formula, set()).add((job["prototype"], charges))
    assert len(by_formula) == 12 and not set(by_formula) & other_formulas
    fits = {  # the common prototypes with a variant of each charge pair
        (1, -1): {"rocksalt", "cesium_chloride", "zincblende"},
        (2, -2): {"rocksalt", "zincblende", "wurtzite", "nickel_arsenide"},
        (3, -3): {"rocksalt", "zincblende", "wurtzite", "nickel_arsenide"},
        (2, -1): {"fluorite", "rutile", "cadmium_iodide_layered"},
        (4, -2): {"fluorite", "rutile", "cadmium_iodide_layered"},
        (3, -2): {"corundum"},
    }
    for formula, placed in by_formula.items():
        (charges,) = {c for _, c in placed}  # one charge pair per composition
        if charges in fits:
            assert {name for name, _ in placed} == fits[charges], formula
    assert max(len(p) for p in by_formula.values()) >= 3  # polymorphs, not one structure per composition


def test_geometric_configurations():
    rng = np.random.default_rng(1)
    base = bulk("MgO", "rocksalt", a=4.21)
    moved = rattle(base, rng, 0.1)
    assert 0.02 < np.abs(moved.positions - base.positions).mean() < 0.2
    strained = strain(base, rng)
    deformation = np.linalg.solve(base.cell.array, strained.cell.array).T - np.eye(3)
    assert np.abs(np.diag(deformation)).max() <= 0.08 + 1e-12
    assert np.allclose(strained.get_scaled_positions(), base.get_scaled_positions())
    big = supercell_at_least(base, 8)
    assert len(big) >= 8
    squeezed_cell = scaled_volume(base, 0.9)
    assert squeezed_cell.get_volume() == pytest.approx(0.9 * base.get_volume())
    assert np.allclose(squeezed_cell.get_scaled_positions(), base.get_scaled_positions())
    assert np.allclose(squeezed_cell.cell.angles(), base.cell.angles())  # isotropic: the shape is kept
    with pytest.raises(ValueError, match="volume factor"):
        scaled_volume(base, 0.0)
    holes = vacancy(base, rng)
    assert len(holes) == len(supercell_at_least(base, 8)) - 1
    slab = surface(bulk("Cu", "fcc", a=3.61), rng)
    assert slab is not None and slab.pbc.all()
    heights = slab.positions[:, 2]
    assert slab.cell.lengths()[2] - (heights.max() - heights.min()) >= 8.0  # vacuum kept
    squeezed = Atoms("Cu2", positions=[[0, 0, 0], [0.3, 0, 0]], cell=np.eye(3) * 5, pbc=True)
    assert min_distance(squeezed) == pytest.approx(0.3)
    assert not is_sane(squeezed)
    # an elemental gas scaled by its covalent radius: atoms 0.73 Å apart, 0.28 Å^3 per atom
    dense_hydrogen = bulk("H", "hcp", a=0.73, c=1.19)
    assert min_distance(dense_hydrogen) > 0.6
    assert not is_sane(dense_hydrogen)
    assert is_sane(bulk("C", "diamond", a=3.57))  # the densest real solid passes


def test_volume_scans_give_every_crystal_its_equation_of_state(small_frames: Path):
    from universal_mfp_pipelines.generate import job_frames

    factors = (0.88, 0.94, 1.06, 1.12)
    settings = replace(SMALL_SETTINGS, eos_volume_factors=factors)
    jobs = plan_of_new_option(settings, small_frames, eos_volume_factors=None)
    assert len(jobs) == len(build_plan(SMALL_SETTINGS, small_frames))  # the scans add frames, not jobs
    unrelaxed = replace(settings, relax_steps=0)  # no driver: the scans are around the starting crystal
    for kind in ("elemental", "real"):
        job = next(j for j in jobs if j["kind"] == kind)
        frames, dropped = job_frames(job, unrelaxed, str(small_frames))
        base = frames[0]
        scans = [a for a in frames if a.info["config_type"] == "eos"]
        assert not dropped and len(scans) == len(factors)
        for factor, scan in zip(factors, scans, strict=True):
            assert scan.get_volume() == pytest.approx(factor * base.get_volume())
            assert np.allclose(scan.get_scaled_positions(), base.get_scaled_positions())
        ids = [a.info["frame_id"] for a in frames]
        assert len(set(ids)) == len(ids) and all(":eos" in a.info["frame_id"] for a in scans)
    for bad in ((0.9, -0.1), (1.0,), (float("nan"),)):
        with pytest.raises(ValueError, match="eos_volume_factors"):
            GenerationSettings(eos_volume_factors=bad)


def test_part_parsing():
    assert parse_part(None) == (0, 1)
    assert parse_part("2/8") == (1, 8)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ValueError, match="--part"):
            parse_part(bad)


CLI_SETTINGS = GenerationSettings(
    seed=3,
    num_decorated=6,
    num_u_focus=2,
    jobs_per_shard=2,
    relax_steps=3,
    elemental_elements=("Si", "Cu"),
    max_real_structures=2,
)
CLI_ARGS = [
    "--seed",
    "3",
    "--num-decorated",
    "6",
    "--num-u-focus",
    "2",
    "--jobs-per-shard",
    "2",
    "--relax-steps",
    "3",
    "--elements",
    "Si",
    "Cu",
    "--max-real-structures",
    "2",
]


def test_cli_arguments_make_the_settings():
    from universal_mfp_pipelines.cli import build_parser, generation_settings

    parser = build_parser()
    assert generation_settings(parser.parse_args(["generate", "out", *CLI_ARGS])) == CLI_SETTINGS
    args = parser.parse_args(["generate", "out", "--elements", "--num-polymorph-compositions", "5", "--strains", "3"])
    settings = generation_settings(args)
    assert settings.elemental_elements == () and settings.num_polymorph_compositions == 5 and settings.strains == 3
    assert generation_settings(parser.parse_args(["generate", "out", "--eos-volumes", "0.9", "1.1"])) == (
        GenerationSettings(eos_volume_factors=(0.9, 1.1))
    )
    assert generation_settings(parser.parse_args(["generate", "out"])) == GenerationSettings()


def _shard_hashes(folder: Path) -> dict[str, str]:
    return {p.name: json.loads(p.read_text())["sha256"] for p in sorted(folder.glob("structures-*.json"))}


@pytest.fixture(scope="module")
def whole_run(small_frames: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI settings generated in one uninterrupted run: what a killed or split run must reproduce."""
    out = tmp_path_factory.mktemp("whole")
    manifest = generate(out, small_frames, CLI_SETTINGS, progress=False)
    assert manifest["num_shards_done"] == manifest["num_shards"] == 9
    return out


@pytest.mark.slow
def test_generation_killed_mid_run_resumes_without_loss_or_duplicates(small_frames: Path, whole_run: Path, tmp_path):
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "universal_mfp_pipelines",
        "--no-progress",
        "generate",
        str(out),
        "--frames-dir",
        str(small_frames),
        *CLI_ARGS,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and len(list(out.glob("structures-*.json"))) < 2:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(out.glob("structures-*.json")))
    assert 2 <= done_before < 9

    from universal_mfp_pipelines.cli import main

    assert main(command[3:]) == 0  # the same command, resumed in this process
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_shards_done"] == 9
    assert _shard_hashes(out) == _shard_hashes(whole_run)  # same structures, bit for bit
    ids = [a.info["frame_id"] for p in sorted(out.glob("structures-*.extxyz")) for a in read(p, ":")]
    assert len(ids) == len(set(ids)) == sum(entry["frames"] for entry in manifest["shards"])
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.slow
def test_parts_split_the_shards_and_merge_to_the_whole(small_frames: Path, whole_run: Path, tmp_path: Path):
    from universal_mfp_pipelines.cli import main

    out = tmp_path / "parts"
    for part in ("1/2", "2/2"):
        assert (
            main(["--no-progress", "generate", str(out), "--frames-dir", str(small_frames), *CLI_ARGS, "--part", part])
            == 0
        )
        done = sorted(int(p.stem.rsplit("-", 1)[1]) for p in out.glob("structures-*.json"))
        if part == "1/2":
            assert done == [0, 2, 4, 6, 8]
    assert main(["--no-progress", "manifest", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_shards_done"] == 9
    assert _shard_hashes(out) == _shard_hashes(whole_run)  # the parts together are the whole run, bit for bit
    configs = Counter(a.info["config_type"] for p in out.glob("structures-*.extxyz") for a in read(p, ":"))
    assert {"initial", "relaxed", "rattle", "strain", "real"} <= set(configs)
    # a plan made with other settings is refused, not mixed in
    assert main(["--no-progress", "generate", str(out), "--frames-dir", str(small_frames), *CLI_ARGS[:-1], "3"]) == 1
