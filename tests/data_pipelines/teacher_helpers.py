"""Small settings and test teachers for the generation and labelling tests."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read, write
from universal_mfp_pipelines.generate import GenerationSettings

REAL_FILES = (
    "mp_gga_task_frames.extxyz",
    "mp_LiFeO_entries.extxyz",
    "mp_pbe_element_polymorphs.extxyz",
    "matpes_element_refs_PBE.extxyz",
)

# a small run: 7 elemental, 2 real, 2 GGA+U-metal and 8 decorated jobs, with every configuration type likely
SMALL_SETTINGS = GenerationSettings(
    seed=3,
    num_decorated=8,
    num_u_focus=2,
    jobs_per_shard=4,
    relax_steps=3,
    md_probability=0.5,
    md_steps=4,
    vacancy_probability=0.5,
    surface_probability=0.3,
    elemental_elements=("Si", "Cu"),
    max_real_structures=2,
)


def plan_of_new_option(settings: GenerationSettings, frames: Path, **unset: None) -> list[dict]:
    """The plan of ``settings``, after checking that the options named in ``unset`` only add jobs to it.

    Without them, the settings key is ``SMALL_SETTINGS``'s and every job of ``SMALL_SETTINGS``'s plan is in
    this one, so plans stored before those options existed are reproduced.
    """
    from universal_mfp_pipelines.generate import build_plan

    jobs = build_plan(settings, frames)
    assert replace(settings, **unset).key() == SMALL_SETTINGS.key()
    old = {(j["kind"], j["prototype"], json.dumps(j["mapping"])) for j in build_plan(SMALL_SETTINGS, frames)}
    assert old <= {(j["kind"], j["prototype"], json.dumps(j["mapping"])) for j in jobs}
    return jobs


def planned_structures(jobs: list[dict], kind: str, frames: Path) -> list[tuple[dict, Any]]:
    """Each job of ``kind`` with its starting structure, checked to be sane and named by the job's prototype."""
    from universal_mfp_pipelines.configurations import is_sane
    from universal_mfp_pipelines.generate import _base_structure

    out = []
    for job in (j for j in jobs if j["kind"] == kind):
        atoms, seed_name = _base_structure(job, str(frames))
        assert seed_name == job["prototype"] and is_sane(atoms)
        out.append((job, atoms))
    return out


def write_small_real_frames(shared_frames_dir: Path, out: Path) -> Path:
    """Copy the first few small real frames of each seed file into ``out`` (a temporary folder)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REAL_FILES:
        frames = [a for a in read(shared_frames_dir / name, ":40") if len(a) <= 8][:3]
        write(out / name, frames, format="extxyz")
    return out


class HarmonicCalculator(Calculator):
    """A pair-spring calculator (energy, forces, stress) that turns NaN for chosen chemistries or raises.

    ``nan_for`` and ``crash_for`` are element symbols: a structure containing one gets a NaN energy or an
    exception.
    """

    implemented_properties = ("energy", "forces", "stress")

    def __init__(self, nan_for: tuple[str, ...] = (), crash_for: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.nan_for = nan_for
        self.crash_for = crash_for
        self.license = "MIT (test calculator)"

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        symbols = set(self.atoms.get_chemical_symbols())
        if symbols & set(self.crash_for):
            raise RuntimeError("test calculator crash")
        positions = self.atoms.positions
        energy = float(0.1 * np.sum(positions**2))
        forces = -0.2 * positions
        if symbols & set(self.nan_for):
            energy = float("nan")
        self.results = {"energy": energy, "forces": forces, "stress": np.zeros(6)}


def nan_for_oxygen() -> HarmonicCalculator:
    """Teacher factory: NaN energies for every structure with oxygen."""
    return HarmonicCalculator(nan_for=("O",))


def crash_for_copper() -> HarmonicCalculator:
    """Teacher factory: raises on every structure with copper."""
    return HarmonicCalculator(crash_for=("Cu",))


def not_a_calculator() -> str:
    """A factory that returns something that is not a calculator."""
    return "nope"


def composition_groups(folder: Path) -> dict[str, dict[str, set]]:
    """Per composition group of a labelled dataset: its splits and its prototypes."""
    out: dict[str, dict[str, set]] = defaultdict(lambda: {"splits": set(), "prototypes": set()})
    for path in sorted(folder.glob("labels-*.parquet")):
        table = pq.read_table(path, columns=["split", "extra_info"])
        splits, extras = table.column("split").to_pylist(), table.column("extra_info").to_pylist()
        for split, extra in zip(splits, extras, strict=True):
            info = json.loads(extra)
            out[info["composition_group"]]["splits"].add(split)
            out[info["composition_group"]]["prototypes"].add(info["prototype"])
    return out
