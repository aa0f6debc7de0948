"""Generate crystals for teacher labelling: a deterministic plan of decorated prototypes, run in shards.

``build_plan`` turns a seed into a list of jobs (every teacher element in fcc/bcc/hcp/diamond; the real MP
structures of ../shared/data as they are; charge-balanced decorations of common, AFLOW and real
prototypes, one new composition each; GGA+U metals with O and F). ``generate`` runs the jobs in shards
(``shard_runner``): each job predicts a volume, relaxes briefly with a driver teacher, and derives
configurations (relaxation path, rattles, strains, MD snapshots, vacancies, surfaces). Each shard is an
extxyz file of unlabelled structures whose ``info`` says where every frame comes from; ``teach`` labels them.
The same seed and settings give the same plan and the same structures.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from universal_mfp_pipelines.configurations import (
    is_sane,
    md_snapshots,
    rattle,
    relaxation_path,
    scaled_volume,
    strain,
    supercell_at_least,
    surface,
    vacancy,
)
from universal_mfp_pipelines.prototypes import (
    TEACHER_ELEMENTS,
    Prototype,
    aflow_prototypes,
    common_prototypes,
    elemental_prototypes,
    real_prototypes,
    real_structures,
)
from universal_mfp_pipelines.shard_runner import (
    parse_part,
    pending_shards,
    record_path,
    run_shards,
    shard_stem,
    write_manifest,
)
from universal_mfp_pipelines.solid_solutions import (
    CELLS,
    all_mixed_sublattices,
    arrange,
    host_of,
    mixed_crystal,
    shared_equally,
    shares_a_sublattice_with,
    sublattice_sizes,
)
from universal_mfp_pipelines.substitution import U_METALS, decorate, role_candidates, sample_decoration
from universal_mfp_pipelines.tetrahedral import FRAMEWORKS, sample_tetrahedral_sites, tetrahedral_structure

from universal_mfp.data.formulas import reduced_formulas
from universal_mfp.files import atomic_write_bytes, atomic_write_json, sha256_file

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
PLAN = "plan.json"
PREFIX = "structures"
SUFFIX = ".extxyz"
_U_ANIONS = {"O": -2, "F": -1}


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that decides the generated structures (stored in the plan; a rerun must match it).

    Attributes:
        seed: the one random seed of the plan and of every job.
        num_decorated: decorated prototypes (each a new composition).
        num_u_focus: decorations with a GGA+U metal (Co Cr Fe Mn Mo Ni V W) and O or F.
        jobs_per_shard: jobs per output shard.
        relax_steps: driver relaxation steps per decorated crystal (cell and positions).
        rattles: rattled copies per crystal (amplitude log-uniform in ``rattle_range`` Å).
        strains: strained copies per crystal (normal strain up to 8 %, shear up to 4 %).
        eos_volume_factors: volumes, relative to the relaxed crystal's, of isotropically scaled copies (config
            type ``eos``): an equation of state of every crystal, where the teachers' bulk moduli are learnt
            (``None``: none).
        md_probability: chance of a short Langevin MD run (``md_steps`` steps of 2 fs at 300-2000 K).
        vacancy_probability: chance of a vacancy frame (supercell of at least 8 atoms).
        surface_probability: chance of a low-index slab.
        max_real_atoms: largest real structure taken as it is.
        driver: teacher spec that relaxes and runs MD (its labels are not kept: ``teach`` labels).
        elemental_elements: elements of the fcc/bcc/hcp(/diamond) jobs (``None``: every teacher element).
        max_real_structures: take only the first this many real structures (``None``: all).
        num_polymorph_compositions: binary ionic compositions of common elements (``POLYMORPH_ELEMENTS``), each
            in every common binary prototype that fits its charges (rocksalt, CsCl, zincblende, wurtzite, NiAs,
            fluorite, rutile...): polymorphs of one composition, whose energy differences hulls and formation
            energies rest on (``None``: none).
        num_tetrahedral_compositions: octet-rule alloys of the sp3 family (``tetrahedral``: C, Si, Ge, Sn with
            groups 2/3/5/6), each in zincblende and wurtzite stacking; half hold Si and C (``None``: none).
        num_solid_solution_compositions: 50/50 mixed crystals of rocksalt, antifluorite and corundum
            (``solid_solutions``: one sublattice shared by two isovalent elements), each in two cells; first
            those that share a sublattice with an excluded binary that is such a compound (``None``: none).
        exclude_formulas: compositions no generated job may have (e.g. those a model is judged on); real
            structures are kept as they are (``None``: none).
    """

    seed: int = 0
    num_decorated: int = 5200
    num_u_focus: int = 400
    jobs_per_shard: int = 40
    relax_steps: int = 8
    rattles: int = 2
    rattle_range: tuple[float, float] = (0.01, 0.2)
    strains: int = 1
    eos_volume_factors: tuple[float, ...] | None = None
    md_probability: float = 0.1
    md_steps: int = 20
    md_keep: int = 2
    vacancy_probability: float = 0.1
    surface_probability: float = 0.03
    max_real_atoms: int = 16
    driver: str = "chgnet:0.3.0"
    elemental_elements: tuple[str, ...] | None = None
    max_real_structures: int | None = None
    num_polymorph_compositions: int | None = None
    num_tetrahedral_compositions: int | None = None
    num_solid_solution_compositions: int | None = None
    exclude_formulas: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for factor in self.eos_volume_factors or ():
            if not np.isfinite(factor) or factor <= 0 or factor == 1.0:
                raise ValueError(
                    f"eos_volume_factors must be positive and not 1 (the relaxed crystal is kept anyway), got {factor}"
                )

    def key(self) -> str:
        """A short hash of the settings (unset options left out) and the generator version."""
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        text = json.dumps({**fields, "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reduced_formula(symbols: list[str]) -> str:
    from pymatgen.core import Composition

    return Composition(" ".join(symbols)).reduced_formula


@functools.cache
def prototype_registry(frames_dir: str) -> dict[str, Prototype]:
    """Every seed by name: common, elemental, AFLOW and real prototypes."""
    protos = [*common_prototypes(), *elemental_prototypes(), *aflow_prototypes(), *real_prototypes(frames_dir)]
    registry = {p.name: p for p in protos}
    if len(registry) != len(protos):
        raise ValueError("duplicate prototype names")
    return registry


def _elemental_jobs(elements: tuple[str, ...] | None) -> list[dict[str, Any]]:
    unknown = sorted(set(elements or ()) - set(TEACHER_ELEMENTS))
    if unknown:
        raise ValueError(f"elemental_elements {unknown} are not elements the teachers know")
    jobs = []
    for element in elements if elements is not None else TEACHER_ELEMENTS:
        for name in ("fcc", "bcc", "hcp"):
            jobs.append({"kind": "elemental", "prototype": name, "variant": 0, "mapping": {"Al": element}})
        if element in ("C", "Si", "Ge", "Sn"):
            jobs.append({"kind": "elemental", "prototype": "diamond", "variant": 0, "mapping": {"Al": element}})
    return jobs


def _weighted_choice(rng: np.random.Generator, prototypes: list[Prototype]) -> Prototype:
    weights = np.array([p.weight for p in prototypes], dtype=float)
    return prototypes[int(rng.choice(len(prototypes), p=weights / weights.sum()))]


def _formula_of(prototype: Prototype, mapping: dict[str, str]) -> str:
    return _reduced_formula([mapping.get(str(site.specie), str(site.specie)) for site in prototype.structure])


def _u_focus_jobs(rng: np.random.Generator, ionic: list[Prototype], count: int, seen: set[str]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    attempts = 0
    while len(jobs) < count and attempts < 50 * count:
        attempts += 1
        metal = str(rng.choice(U_METALS))
        anion = str(rng.choice(list(_U_ANIONS)))
        prototype = _weighted_choice(rng, ionic)
        variant = int(rng.integers(len(prototype.role_variants)))
        roles = prototype.role_variants[variant]
        cation_sites = [p for p, r in roles.items() if isinstance(r, int) and r > 0 and metal in role_candidates(r, p)]
        anion_sites = [p for p, r in roles.items() if r == _U_ANIONS[anion]]
        if not cation_sites or not anion_sites:
            continue
        forced = {str(rng.choice(cation_sites)): metal, str(rng.choice(anion_sites)): anion}
        single = replace(prototype, role_variants=(roles,))
        try:
            _, mapping = sample_decoration(single, rng, forced=forced)
        except ValueError:
            continue
        formula = _formula_of(prototype, mapping)
        if formula in seen:
            continue
        seen.add(formula)
        jobs.append({"kind": "u_focus", "prototype": prototype.name, "variant": variant, "mapping": mapping})
    return jobs


# the elements of everyday inorganic chemistry: main group (without noble gases), 3d metals, and the 4d/5d
# metals and lanthanum most common in oxides, halides, carbides and intermetallics
POLYMORPH_ELEMENTS: tuple[str, ...] = (
    *("H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca"),
    *("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br"),
    *("Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I"),
    *("Cs", "Ba", "La", "Hf", "Ta", "W", "Pt", "Au", "Pb", "Bi"),
)


def _binary_ionic_roles(prototypes: list[Prototype]) -> list[tuple[Prototype, int, str, str, int, int]]:
    """Every two-placeholder prototype variant with integer charges.

    Each as (prototype, variant, cation placeholder, anion placeholder, cation charge, anion charge).
    """
    out = []
    for prototype in prototypes:
        for variant, roles in enumerate(prototype.role_variants):
            if len(roles) != 2 or not all(isinstance(r, int) for r in roles.values()):
                continue
            (cation, q), (anion, p) = sorted(roles.items(), key=lambda item: -int(item[1]))
            if int(q) > 0 > int(p):
                out.append((prototype, variant, cation, anion, int(q), int(p)))
    return out


def _new_compositions(
    kind: str,
    count: int,
    seen: set[str],
    draw: Callable[[int], tuple[str, Callable[[], list[dict[str, Any]]]] | None],
) -> list[dict[str, Any]]:
    """The jobs of ``count`` compositions new to the plan (``seen``, updated).

    ``draw(k)`` proposes the k-th composition: its formula and a function that makes its jobs (called only for
    a new formula, so a draw that repeats one uses no further random numbers), or ``None`` for a failed draw.
    """
    jobs: list[dict[str, Any]] = []
    compositions = 0
    attempts = 0
    while compositions < count:
        attempts += 1
        if attempts > 200 * max(count, 1):
            raise RuntimeError(f"only {compositions} new {kind} compositions after {attempts} attempts")
        drawn = draw(compositions)
        if drawn is None or drawn[0] in seen:
            continue
        seen.add(drawn[0])
        compositions += 1
        jobs.extend(drawn[1]())
    return jobs


def _polymorph_jobs(rng: np.random.Generator, common: list[Prototype], count: int, seen: set[str]) -> list[dict]:
    """``count`` binary compositions of ``POLYMORPH_ELEMENTS``, each in every prototype that fits its charges.

    Every composition is new to the plan (``seen``); its polymorphs share one composition group, and so one
    split. Compositions that only one prototype fits are kept too (the prototype is still a common one).
    """
    fitting_by_charges: dict[tuple[int, int], list[tuple[Prototype, int, str, str]]] = {}
    for prototype, variant, c, a, q, p in _binary_ionic_roles(common):
        fitting_by_charges.setdefault((q, p), []).append((prototype, variant, c, a))
    charges = sorted(fitting_by_charges)
    common_set = set(POLYMORPH_ELEMENTS)

    def draw(_: int) -> tuple[str, Callable[[], list[dict[str, Any]]]] | None:
        q, p = charges[int(rng.integers(len(charges)))]
        cations = [e for e in role_candidates(q, "") if e in common_set]
        anions = [e for e in role_candidates(p, "") if e in common_set]
        if not cations or not anions:
            return None
        cation, anion = str(rng.choice(cations)), str(rng.choice(anions))
        if cation == anion:
            return None
        fitting = fitting_by_charges[(q, p)]
        formula = _formula_of(fitting[0][0], {fitting[0][2]: cation, fitting[0][3]: anion})
        return formula, lambda: [
            {"kind": "polymorph", "prototype": prototype.name, "variant": variant, "mapping": {c: cation, a: anion}}
            for prototype, variant, c, a in fitting
        ]

    return _new_compositions("polymorph", count, seen, draw)


def _tetrahedral_jobs(rng: np.random.Generator, count: int, seen: set[str]) -> list[dict[str, Any]]:
    """``count`` new compositions of octet-rule tetrahedral alloys, each in every tetrahedral framework.

    Every other composition holds both Si and C: Si-C is the bond SiC's formation energy rests on, and one the
    other generated and real data (without SiC itself, a composition models are judged on) almost never make.
    A job's ``mapping`` holds its two sublattices in site order (``cations``, ``anions``).
    """

    def draw(index: int) -> tuple[str, Callable[[], list[dict[str, Any]]]]:
        cations, anions = sample_tetrahedral_sites(rng, with_si_c=index % 2 == 0)

        def placed() -> list[dict[str, Any]]:
            jobs = []
            for framework in FRAMEWORKS:
                order = rng.permutation(len(cations)), rng.permutation(len(anions))
                mapping = {"cations": [cations[k] for k in order[0]], "anions": [anions[k] for k in order[1]]}
                jobs.append(
                    {"kind": "tetrahedral", "prototype": f"tetrahedral:{framework}", "variant": 0, "mapping": mapping}
                )
            return jobs

        return _reduced_formula([*cations, *anions]), placed

    return _new_compositions("tetrahedral", count, seen, draw)


def _solid_solution_jobs(
    rng: np.random.Generator, count: int, seen: set[str], excluded: Sequence[str]
) -> list[dict[str, Any]]:
    """``count`` new compositions of 50/50 mixed crystals, each in both cells of its prototype.

    First every mixed crystal that shares a sublattice with one of the ``excluded`` binaries that is a prototype
    compound (Al2O3, NaCl, MgO, LiF, Li2O, Fe2O3: AlGaO3, NaKCl2...), so the bond of a binary left out of the
    data still appears in its own coordination; then the others, in a seeded random order. A job's ``mapping``
    holds its two sublattices in site order (``cations``, ``anions``).

    Raises:
        ValueError: if fewer than ``count`` mixed crystals are new to the plan.
    """
    hosts = [host for host in (host_of(formula) for formula in sorted(excluded)) if host is not None]
    candidates = all_mixed_sublattices()
    near = [m for m in candidates if any(shares_a_sublattice_with(m, host) for host in hosts)]
    others = [m for m in candidates if m not in near]
    jobs: list[dict[str, Any]] = []
    compositions = 0
    for family, cations, anions in [*near, *(others[k] for k in rng.permutation(len(others)))]:
        if compositions == count:
            break
        cells = [cell for cell, (prototype, _) in CELLS.items() if prototype == family.prototype]
        n_cations, n_anions = sublattice_sizes(cells[0])
        formula = _reduced_formula([*shared_equally(cations, n_cations), *shared_equally(anions, n_anions)])
        if formula in seen:
            continue
        seen.add(formula)
        compositions += 1
        for cell in cells:
            n_cations, n_anions = sublattice_sizes(cell)
            mapping = {"cations": arrange(rng, cations, n_cations), "anions": arrange(rng, anions, n_anions)}
            prototype = f"solid_solution:{cell}"
            jobs.append({"kind": "solid_solution", "prototype": prototype, "variant": 0, "mapping": mapping})
    if compositions < count:
        raise ValueError(f"only {compositions} mixed-crystal compositions are new to the plan; {count} were asked for")
    return jobs


def build_plan(settings: GenerationSettings, frames_dir: str | Path) -> list[dict[str, Any]]:
    """The jobs of a generation run, in a fixed order determined by ``settings.seed``.

    Elemental and real jobs first, then GGA+U-metal oxides/fluorides and decorated prototypes, each with a
    composition no earlier job has (and none of ``exclude_formulas``), then (if asked) binary compositions of
    common elements in every fitting prototype, tetrahedral alloys in both stackings and mixed crystals in both
    cells of their prototype; then the list is shuffled with the seed so shards mix cheap and costly jobs. Every
    job has a unique ``job_id``.
    """
    excluded = set(reduced_formulas(settings.exclude_formulas or (), setting="exclude_formulas"))
    rng = np.random.default_rng(settings.seed)
    registry = prototype_registry(str(frames_dir))
    jobs = _elemental_jobs(settings.elemental_elements)
    seen: set[str] = set()
    reals = real_structures(frames_dir, max_atoms=settings.max_real_atoms)
    for count, (ident, structure) in enumerate(reals):
        if settings.max_real_structures is not None and count >= settings.max_real_structures:
            break
        jobs.append({"kind": "real", "prototype": f"real-as-is:{ident}", "variant": 0, "mapping": {}})
        seen.add(structure.composition.reduced_formula)
    seen |= excluded
    families = {
        "common": [p for p in registry.values() if p.family == "common"],
        "aflow": [p for p in registry.values() if p.family == "aflow"],
        "real": [p for p in registry.values() if p.family == "real"],
    }
    family_weights = {"common": 0.55, "aflow": 0.3, "real": 0.15}
    ionic = [p for p in families["common"] if any(isinstance(r, int) for v in p.role_variants for r in v.values())]
    jobs.extend(_u_focus_jobs(rng, ionic, settings.num_u_focus, seen))
    names = list(family_weights)
    probs = np.array([family_weights[n] for n in names])
    decorated = 0
    attempts = 0
    while decorated < settings.num_decorated:
        attempts += 1
        if attempts > 100 * settings.num_decorated:
            raise RuntimeError(f"only {decorated} distinct decorations after {attempts} attempts")
        family = names[int(rng.choice(len(names), p=probs))]
        prototype = _weighted_choice(rng, families[family])
        try:
            variant, mapping = sample_decoration(prototype, rng)
        except ValueError:
            continue
        formula = _formula_of(prototype, mapping)
        if formula in seen:
            continue
        seen.add(formula)
        decorated += 1
        jobs.append({"kind": "decorated", "prototype": prototype.name, "variant": variant, "mapping": mapping})
    if settings.num_polymorph_compositions:
        jobs.extend(_polymorph_jobs(rng, families["common"], settings.num_polymorph_compositions, seen))
    if settings.num_tetrahedral_compositions:
        jobs.extend(_tetrahedral_jobs(rng, settings.num_tetrahedral_compositions, seen))
    if settings.num_solid_solution_compositions:
        jobs.extend(_solid_solution_jobs(rng, settings.num_solid_solution_compositions, seen, sorted(excluded)))
    order = rng.permutation(len(jobs))
    planned = [jobs[k] for k in order]
    for index, job in enumerate(planned):
        job["job_id"] = f"g{settings.seed}-{index:06d}"
    return planned


def load_or_create_plan(out_dir: Path, settings: GenerationSettings, frames_dir: str | Path) -> list[dict[str, Any]]:
    """The folder's plan; created on the first run, checked against ``settings`` on every later run.

    Raises:
        ValueError: if the folder holds a plan made with other settings (its shards would not mix).
    """
    path = out_dir / PLAN
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("settings_key") != settings.key():
            raise ValueError(
                f"{out_dir} holds a plan made with other settings ({stored.get('settings')}); "
                "use another folder or the same settings"
            )
        return stored["jobs"]
    jobs = build_plan(settings, frames_dir)
    atomic_write_json(
        path,
        {
            "settings": asdict(settings),
            "settings_key": settings.key(),
            "generator_version": GENERATOR_VERSION,
            "jobs": jobs,
        },
    )
    return jobs


@functools.cache
def _driver(spec: str) -> Any:
    from universal_mfp_pipelines.teachers import load_teacher

    return load_teacher(spec).calculator


def _base_structure(job: dict[str, Any], frames_dir: str) -> tuple[Atoms, str]:
    from pymatgen.io.ase import AseAtomsAdaptor

    if job["kind"] == "real":
        ident = job["prototype"].split(":", 1)[1]
        structures = dict(real_structures(frames_dir, max_atoms=10_000)) if ident not in _REAL_CACHE else {}
        _REAL_CACHE.update(structures)
        return AseAtomsAdaptor.get_atoms(_REAL_CACHE[ident]), ident
    if job["kind"] == "tetrahedral":
        framework = job["prototype"].split(":", 1)[1]
        return tetrahedral_structure(framework, job["mapping"]["cations"], job["mapping"]["anions"]), job["prototype"]
    if job["kind"] == "solid_solution":
        cell = job["prototype"].split(":", 1)[1]
        return mixed_crystal(cell, job["mapping"]["cations"], job["mapping"]["anions"]), job["prototype"]
    prototype = prototype_registry(frames_dir)[job["prototype"]]
    structure = decorate(prototype, job["variant"], job["mapping"])
    return AseAtomsAdaptor.get_atoms(structure), prototype.name


_REAL_CACHE: dict[str, Any] = {}


def job_frames(job: dict[str, Any], settings: GenerationSettings, frames_dir: str) -> tuple[list[Atoms], Counter]:
    """The configurations of one job, each with its provenance in ``info``; and counts of dropped frames."""
    rng = np.random.default_rng([settings.seed, int(job["job_id"].rsplit("-", 1)[1])])
    atoms, seed_name = _base_structure(job, frames_dir)
    group = _reduced_formula(atoms.get_chemical_symbols())
    dropped: Counter = Counter()
    frames: list[tuple[str, Atoms]] = []
    real = job["kind"] == "real"
    frames.append(("real" if real else "initial", atoms))
    base = atoms
    if not real and settings.relax_steps > 0 and is_sane(atoms):
        path = relaxation_path(atoms, _driver(settings.driver), max_steps=settings.relax_steps)
        if len(path) >= 4:
            frames.append(("relax_path", path[len(path) // 2]))
        if len(path) >= 2:
            frames.append(("relaxed", path[-1]))
            base = path[-1]
    low, high = np.log(settings.rattle_range[0]), np.log(settings.rattle_range[1])
    for _ in range(settings.rattles if not real else 1):
        frames.append(("rattle", rattle(base, rng, float(np.exp(rng.uniform(low, high))))))
    for _ in range(settings.strains):
        frames.append(("strain", strain(base, rng)))
    for factor in settings.eos_volume_factors or ():
        frames.append(("eos", scaled_volume(base, factor)))
    if not real and rng.random() < settings.md_probability and is_sane(base):  # never drive an unphysical cell
        temperature = float(rng.uniform(300.0, 2000.0))
        cell = supercell_at_least(base, 8)
        for snap in md_snapshots(
            cell,
            _driver(settings.driver),
            rng,
            temperature=temperature,
            steps=settings.md_steps,
            keep=settings.md_keep,
        ):
            snap.info["md_temperature"] = round(temperature, 1)
            frames.append(("md", snap))
    if not real and rng.random() < settings.vacancy_probability and len(base) >= 2:
        frames.append(("vacancy", vacancy(base, rng)))
    if not real and rng.random() < settings.surface_probability:
        slab = surface(base, rng)
        if slab is not None:
            frames.append(("surface", slab))
    out = []
    for k, (config, frame) in enumerate(frames):
        clean = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell.array, pbc=frame.pbc)
        if not is_sane(clean):
            dropped[config] += 1
            continue
        clean.info.update(
            {
                "frame_id": f"{job['job_id']}:{k}:{config}",
                "job_id": job["job_id"],
                "config_type": config,
                "composition_group": group,
                "prototype": seed_name,
                "job_kind": job["kind"],
            }
        )
        if "md_temperature" in frame.info:
            clean.info["md_temperature"] = frame.info["md_temperature"]
        out.append(clean)
    return out, dropped


def _extxyz_bytes(frames: list[Atoms]) -> bytes:
    import io

    from ase.io import write

    buffer = io.StringIO()
    write(buffer, frames, format="extxyz")
    return buffer.getvalue().encode()


def generate_shard(
    index: int, *, out_dir: Path, jobs: list[dict[str, Any]], settings: GenerationSettings, frames_dir: str
) -> dict[str, Any]:
    """Generate shard ``index`` (its output file, then its record) and return the record."""
    start = time.perf_counter()
    chunk = jobs[index * settings.jobs_per_shard : (index + 1) * settings.jobs_per_shard]
    frames: list[Atoms] = []
    dropped: Counter = Counter()
    failed: list[dict[str, str]] = []
    for job in chunk:
        try:
            job_out, job_dropped = job_frames(job, settings, frames_dir)
        except Exception as error:  # one bad job (a driver crash, a degenerate decoration) never stops the shard
            logger.warning("job %s (%s) failed: %s", job["job_id"], job["prototype"], error)
            failed.append({"job_id": job["job_id"], "error": f"{type(error).__name__}: {error}"})
            continue
        frames.extend(job_out)
        dropped.update(job_dropped)
    name = f"{shard_stem(PREFIX, index)}{SUFFIX}"
    atomic_write_bytes(out_dir / name, _extxyz_bytes(frames))
    record = {
        "file": name,
        "shard": index,
        "jobs": len(chunk),
        "frames": len(frames),
        "failed_jobs": failed,
        "dropped_frames": dict(dropped),
        "sha256": sha256_file(out_dir / name),
        "seconds": round(time.perf_counter() - start, 2),
        "settings_key": settings.key(),
    }
    atomic_write_json(record_path(out_dir, PREFIX, index), record)
    return record


def generate(
    out_dir: str | Path,
    frames_dir: str | Path,
    settings: GenerationSettings | None = None,
    *,
    workers: int = 1,
    part: str | None = None,
    max_shards: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate (or resume generating) the structures of ``settings`` into ``out_dir``; return the manifest.

    Args:
        out_dir: the generation folder (plan, shards, records, manifest).
        frames_dir: the shared real frames (``../shared/data/frames``).
        settings: what to generate (default ``GenerationSettings()``).
        workers: processes.
        part: ``"i/N"``: only every N-th shard, starting at the i-th (for N independent machines).
        max_shards: stop after this many shards (a resumable piece of the work).
        progress: show a progress bar.
    """
    settings = settings or GenerationSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = load_or_create_plan(out_dir, settings, frames_dir)
    num_shards = (len(jobs) + settings.jobs_per_shard - 1) // settings.jobs_per_shard
    todo = pending_shards(out_dir, PREFIX, SUFFIX, num_shards, parse_part(part))
    if max_shards is not None:
        todo = todo[:max_shards]
    logger.info("generate: %d jobs in %d shards; %d to do in this part", len(jobs), num_shards, len(todo))
    work = functools.partial(generate_shard, out_dir=out_dir, jobs=jobs, settings=settings, frames_dir=str(frames_dir))
    run_shards(work, todo, workers=workers, progress=progress, desc="generate")
    return write_manifest(
        out_dir,
        PREFIX,
        {
            "format": "universal_mfp.generated_structures",
            "settings": asdict(settings),
            "num_shards": num_shards,
            "num_jobs": len(jobs),
        },
    )
