"""Equations of state of elemental crystals computed with real DFT (GPAW; PBE or r2SCAN): forces and stresses.

A bulk modulus is the slope of pressure against volume. ``../shared/data`` holds one equilibrium cell per
element and functional (MatPES) and MP's relaxations, but no crystal compressed or expanded at fixed shape, so
the ``pbe`` head can only copy its GGA teacher's curvature, and CHGNet 0.3.0 is soft (Al: 54 GPa, DFT 76.5).
This module computes that curvature with DFT: each element's ground-state crystal from ASE's reference states
(fcc, bcc, hcp or diamond, non-magnetic), scaled isotropically, labelled by plane-wave PBE (or r2SCAN).

By default only forces and stresses are stored as labels. GPAW's energies are relative to its own spin-paired
reference atoms and use other PAW setups than MP's VASP runs, so they sit on another energy scale than ``pbe``;
the stress, a derivative, does not depend on that scale. Each frame keeps GPAW's energy as
``info["dft_energy"]`` (eV) for the record. Frames of one element share a ``material_id``, so all its volumes
fall in the same split.

Energy differences between structures of one element are on no other scale, though: with ``structures``
(several crystals of each element, e.g. hcp and fcc Mg, at the same volumes per atom) and an ``anchor`` (an
extxyz of real elemental DFT on the target setup, such as MatPES's r2SCAN ground states), GPAW also computes
the anchor file's lowest frame of the element with the same settings, and every scan frame gets the energy
label ``dft_energy + n * (E_anchor - E_gpaw(anchor)) / n_anchor``: GPAW's energy differences, placed on the
anchor's scale by one offset per element. Anchored scans need ``fixed_kpoint_grid`` (one k-point grid per
crystal's scan: where a metal's grid steps between volumes its energy jumps by meV/atom). The anchor must be a
training frame of the run that uses the labels (the manifest names it). With ``structures`` all crystals of an
element share one ``composition_group``, so they fall in the same split.

One extxyz file per element (``<out>/frames/<element>.extxyz``, a folder a training source can name) is
written atomically once all its volumes are done, and ``<out>/manifest.json`` records settings, code and
seconds. A rerun skips the elements already written with the same settings (a resumable piece of work) and
refuses to mix settings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers, reference_states

from universal_mfp.files import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FRAMES = "frames"
SETTINGS_KEY = "dft_settings"
# Ground states that are spin-polarised; a spin-paired calculation would give them the wrong curvature.
MAGNETIC = frozenset({"Cr", "Mn", "Fe", "Co", "Ni", "O", "Gd"})
CRYSTALS = frozenset({"fcc", "bcc", "hcp", "diamond"})
# GPAW's names of the functionals (r2SCAN from libxc); the frames' ``functional`` is the key
FUNCTIONALS = {"PBE": "PBE", "r2SCAN": "MGGA_X_R2SCAN+MGGA_C_R2SCAN"}
DEFAULT_VOLUME_FACTORS = (0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12)


@dataclass(frozen=True)
class DftSettings:
    """Plane-wave DFT settings (GPAW), the same for every element so that the labels form one setup.

    Attributes:
        xc: exchange-correlation functional, ``PBE`` or ``r2SCAN``.
        ecut: plane-wave cutoff, eV (MP: 520).
        kpoint_density: k-points per Å⁻¹ of reciprocal length (ASE's ``kptdensity``, 2π included).
        smearing: Marzari-Vanderbilt smearing width, eV.
        volume_factors: volumes of the scan, as multiples of the reference crystal's volume.
        structures: crystals to scan for every element (at the reference crystal's volumes per atom); empty:
            the element's reference crystal only.
        mixer_beta: density-mixing weight of the SCF (None: GPAW's default; r2SCAN needs about 0.05, its SCF
            diverges at GPAW's default in plane-wave mode).
        anchor: file name of the frames that place the energies on a real setup's scale (see the module doc);
            None: no energy labels.
        fixed_kpoint_grid: one k-point grid for every volume of a crystal's scan, the one ``kpoint_density``
            gives its smallest volume. Without it each volume gets its own grid, and where the grid steps
            (Mg at 3 % expansion) a metal's energy jumps by a few meV/atom; stresses hardly notice, energy
            differences do, so an anchor needs it.
    """

    xc: str = "PBE"
    ecut: float = 520.0
    kpoint_density: float = 5.0
    smearing: float = 0.1
    volume_factors: tuple[float, ...] = field(default=DEFAULT_VOLUME_FACTORS)
    structures: tuple[str, ...] = ()
    mixer_beta: float | None = None
    anchor: str | None = None
    fixed_kpoint_grid: bool = False

    def __post_init__(self) -> None:
        if self.anchor is not None and not self.fixed_kpoint_grid:
            raise ValueError("energy labels (an anchor) need fixed_kpoint_grid: one k-point grid per scan")
        if self.xc not in FUNCTIONALS:
            raise ValueError(f"xc must be one of {sorted(FUNCTIONALS)}, got {self.xc!r}")
        structures = tuple(str(kind) for kind in self.structures)
        unknown = sorted(set(structures) - CRYSTALS)
        if unknown or len(set(structures)) != len(structures):
            raise ValueError(f"structures must be distinct ones of {sorted(CRYSTALS)}, got {list(structures)}")
        object.__setattr__(self, "structures", structures)
        if self.mixer_beta is not None and not (math.isfinite(self.mixer_beta) and 0 < self.mixer_beta <= 1):
            raise ValueError(f"mixer_beta must be in (0, 1], got {self.mixer_beta!r}")
        factors = tuple(float(f) for f in self.volume_factors)
        if not factors or any(not math.isfinite(f) or not 0.5 <= f <= 1.5 for f in factors):
            raise ValueError(f"volume factors must be finite numbers in [0.5, 1.5], got {list(self.volume_factors)}")
        if len(set(factors)) != len(factors):
            raise ValueError(f"volume factors repeat: {list(factors)}")
        object.__setattr__(self, "volume_factors", factors)
        for name in ("ecut", "kpoint_density", "smearing"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def as_dict(self) -> dict[str, Any]:
        """JSON form (stored in every frame and in the manifest); options left at their default are omitted."""
        out = asdict(self)
        out["volume_factors"] = list(self.volume_factors)
        out["structures"] = list(self.structures)
        for key in ("structures", "mixer_beta", "anchor", "fixed_kpoint_grid"):
            if not out[key]:
                del out[key]
        return out


def reference_crystal(symbol: str) -> Atoms:
    """The element's ground-state crystal from ASE's reference states (primitive cell, experimental spacing).

    Raises:
        ValueError: for an unknown element, a magnetic ground state, or a reference state that is not fcc,
            bcc, hcp or diamond (molecular crystals, complex structures).
    """
    if symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}")
    if symbol in MAGNETIC:
        raise ValueError(f"{symbol}: its ground state is magnetic; these spin-paired scans would be wrong for it")
    state = reference_states[atomic_numbers[symbol]]
    kind = state.get("symmetry") if state else None
    if kind not in CRYSTALS:
        raise ValueError(f"{symbol}: ASE's reference state is {kind!r}, not one of {sorted(CRYSTALS)}")
    return bulk(symbol)


def crystal_at_reference_volume(symbol: str, kind: str) -> Atoms:
    """The element as an fcc, bcc, hcp or diamond crystal with the volume per atom of its reference crystal.

    The reference crystal itself where ``kind`` is its structure; hcp otherwise with the ideal c/a.

    Raises:
        ValueError: as ``reference_crystal``, or for a structure that is not one of ``CRYSTALS``.
    """
    reference = reference_crystal(symbol)
    if kind not in CRYSTALS:
        raise ValueError(f"{symbol}: unknown structure {kind!r}, not one of {sorted(CRYSTALS)}")
    if kind == reference_states[atomic_numbers[symbol]]["symmetry"]:
        return reference
    volume = reference.get_volume() / len(reference)
    if kind == "hcp":
        c_over_a = math.sqrt(8.0 / 3.0)
        a = (4.0 * volume / (math.sqrt(3.0) * c_over_a)) ** (1.0 / 3.0)
        return bulk(symbol, "hcp", a=a, c=c_over_a * a)
    atoms_per_cube = {"fcc": 4, "bcc": 2, "diamond": 8}[kind]
    return bulk(symbol, kind, a=(atoms_per_cube * volume) ** (1.0 / 3.0))


def eos_structures(
    symbol: str, volume_factors: Sequence[float] = DEFAULT_VOLUME_FACTORS, structures: Sequence[str] = ()
) -> list[Atoms]:
    """Each crystal (default: the reference one) scaled isotropically to each volume factor (same fractions).

    With ``structures``, all crystals of the element share the ``composition_group`` ``dft-eos:<element>``.
    """
    reference_kind = reference_states[atomic_numbers[symbol]]["symmetry"] if symbol in atomic_numbers else None
    out = []
    for kind in structures or (reference_kind,):
        crystal = crystal_at_reference_volume(symbol, kind)
        for factor in volume_factors:
            atoms = crystal.copy()
            atoms.set_cell(crystal.cell.array * float(factor) ** (1.0 / 3.0), scale_atoms=True)
            atoms.info.update(
                material_id=f"dft-eos:{symbol}-{kind}", config_type="eos", volume_factor=float(factor), structure=kind
            )
            if structures:
                atoms.info["composition_group"] = f"dft-eos:{symbol}"
            out.append(atoms)
    return out


def anchor_frame(frames: Sequence[Atoms], symbol: str, source: str) -> tuple[int, Atoms]:
    """The lowest-energy-per-atom frame of the pure element in ``frames`` (its index and the frame).

    Raises:
        ValueError: if ``source`` has no frame of the element with a finite energy.
    """
    best: tuple[float, int, Atoms] | None = None
    for index, atoms in enumerate(frames):
        if set(atoms.get_chemical_symbols()) != {symbol}:
            continue
        calc = atoms.calc
        if calc is None or "energy" not in getattr(calc, "results", {}):
            continue  # a frame without an energy cannot anchor one
        energy = float(calc.results["energy"]) / len(atoms)
        if math.isfinite(energy) and (best is None or energy < best[0]):
            best = (energy, index, atoms)
    if best is None:
        raise ValueError(f"{source} has no frame of pure {symbol} with an energy to anchor its energies")
    return best[1], best[2]


def _import_gpaw() -> Any:
    try:
        import gpaw
    except ImportError as error:
        raise ImportError(
            "DFT equations of state need GPAW (GPL-3.0): pip install gpaw (and its PAW setups)"
        ) from error
    return gpaw


def kpoint_grid(atoms_list: Sequence[Atoms], density: float) -> tuple[int, int, int]:
    """The Monkhorst-Pack grid ``density`` gives the densest cell of ``atoms_list`` (as GPAW rounds it)."""
    from ase.calculators.calculator import kptdensity2monkhorstpack

    grids = np.array([kptdensity2monkhorstpack(atoms, density, False) for atoms in atoms_list])
    return tuple(int(n) for n in grids.max(axis=0))  # type: ignore[return-value]


def gpaw_calculator(settings: DftSettings, grid: tuple[int, int, int] | None = None) -> Any:
    """A GPAW plane-wave calculator with ``settings`` (spin-paired, symmetry-reduced k-points, quiet).

    ``grid``: a fixed gamma-centred k-point grid; None: ``settings.kpoint_density`` for each structure.

    Raises:
        ImportError: if GPAW is not installed.
    """
    gpaw = _import_gpaw()
    extra: dict[str, Any] = {}
    if settings.mixer_beta is not None:
        extra["mixer"] = gpaw.Mixer(settings.mixer_beta, 5, 50)
    return gpaw.GPAW(
        mode=gpaw.PW(settings.ecut),
        xc=FUNCTIONALS[settings.xc],
        kpts={"size": grid, "gamma": True} if grid else {"density": settings.kpoint_density, "gamma": True},
        occupations={"name": "marzari-vanderbilt", "width": settings.smearing},
        txt=None,
        **extra,
    )


def gpaw_provenance() -> dict[str, str]:
    """Code, version and license of the DFT labels.

    Raises:
        ImportError: if GPAW is not installed.
    """
    version = str(_import_gpaw().__version__)
    return {"code": "GPAW", "version": version, "license": "GPL-3.0-or-later", "setups": "GPAW PAW"}


def label_structure(
    atoms: Atoms, calculator: Any, settings: DftSettings, *, energy_offset_per_atom: float | None = None
) -> Atoms:
    """``atoms`` with the calculator's forces and stress as labels; with an offset also an energy label.

    The energy label is ``dft_energy + n * energy_offset_per_atom`` (see the module doc).

    Raises:
        ValueError: if the calculation returns a non-finite number.
    """
    work = atoms.copy()
    work.calc = calculator
    energy = float(work.get_potential_energy())
    forces = np.array(work.get_forces(), dtype=np.float64)
    stress = np.array(work.get_stress(voigt=True), dtype=np.float64)
    if not (math.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()):
        raise ValueError(f"{atoms.get_chemical_formula()}: the DFT calculation returned a non-finite number")
    out = atoms.copy()
    out.info.update(dft_energy=energy, functional=settings.xc, **{SETTINGS_KEY: json.dumps(settings.as_dict())})
    labels: dict[str, Any] = {"forces": forces, "stress": stress}
    if energy_offset_per_atom is not None:
        labels["energy"] = energy + len(atoms) * energy_offset_per_atom
        out.info["energy_offset_per_atom"] = energy_offset_per_atom
    out.calc = SinglePointCalculator(out, **labels)
    return out


def _written_settings(path: Path) -> str | None:
    from ase.io import read

    try:
        first = read(path, index=0, format="extxyz")
    except Exception as error:  # a damaged file: say which, and leave it for the user to inspect
        raise ValueError(
            f"{path} cannot be read ({type(error).__name__}: {error}); move it away to recompute"
        ) from error
    return first.info.get(SETTINGS_KEY)


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"elements": {}}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); move it away to rebuild it") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("elements"), dict):
        raise ValueError(f"{path} has no 'elements' table; move it away to rebuild it")
    return manifest


def run_eos(
    out_dir: str | Path,
    elements: Sequence[str],
    settings: DftSettings | None = None,
    *,
    calculator_factory: Callable[[DftSettings, tuple[int, int, int] | None], Any] = gpaw_calculator,
    provenance: dict[str, str] | None = None,
    anchor_path: str | Path | None = None,
) -> dict[str, Any]:
    """Compute and write the equation-of-state frames of ``elements`` into ``out_dir/frames/<element>.extxyz``.

    Elements already written with the same settings are skipped. Every element is checked before any
    calculation starts, so a bad name fails at once. With ``anchor_path`` (an extxyz; its file name must be
    ``settings.anchor``) the frames also get energy labels (see the module doc).

    Raises:
        ValueError: for an unknown or unsupported element, an element already written with other settings, a
            damaged element file or manifest (named; nothing is overwritten), an anchor file that is not the
            settings' or has no frame of an element.
    """
    from ase.io import read, write

    settings = settings or DftSettings()
    if not elements:
        raise ValueError("no elements given")
    structures = {
        symbol: eos_structures(symbol, settings.volume_factors, settings.structures)
        for symbol in dict.fromkeys(elements)
    }
    anchors: dict[str, tuple[int, Atoms]] = {}
    if (anchor_path is None) != (settings.anchor is None) or (
        anchor_path is not None and Path(anchor_path).name != settings.anchor
    ):
        raise ValueError(f"the anchor file {anchor_path} is not the settings' anchor {settings.anchor!r}")
    if anchor_path is not None:
        try:
            anchor_frames = read(anchor_path, index=":")
        except Exception as error:
            raise ValueError(f"anchor file {anchor_path} cannot be read ({type(error).__name__}: {error})") from error
        anchors = {symbol: anchor_frame(anchor_frames, symbol, str(anchor_path)) for symbol in structures}
    out = Path(out_dir)
    frames_dir = out / FRAMES
    frames_dir.mkdir(parents=True, exist_ok=True)
    wanted = json.dumps(settings.as_dict())
    manifest_path = out / MANIFEST
    manifest = _read_manifest(manifest_path)
    for symbol in structures:
        path = frames_dir / f"{symbol}.extxyz"
        if path.is_file() and _written_settings(path) != wanted:
            raise ValueError(f"{path} was computed with other settings; use another folder or remove it yourself")
    for symbol, atoms_list in structures.items():
        path = frames_dir / f"{symbol}.extxyz"
        if path.is_file():
            logger.info("%s: already computed, skipped", symbol)
            continue
        start = time.perf_counter()
        record: dict[str, Any] = {}
        offset = None
        if symbol in anchors:
            index, anchor = anchors[symbol]
            calculator = calculator_factory(settings, kpoint_grid([anchor], settings.kpoint_density))
            computed = label_structure(anchor, calculator, settings).info["dft_energy"] / len(anchor)
            real = float(anchor.get_potential_energy()) / len(anchor)
            offset = real - computed
            record["anchor"] = {
                "frame": index,
                "atoms": len(anchor),
                "energy_per_atom": real,
                "dft_energy_per_atom": computed,
                "offset_per_atom": offset,
                **{key: anchor.info[key] for key in ("matpes_id", "material_id", "task_id") if key in anchor.info},
            }
        labelled = []
        for kind in dict.fromkeys(atoms.info["structure"] for atoms in atoms_list):
            scan = [atoms for atoms in atoms_list if atoms.info["structure"] == kind]
            grid = kpoint_grid(scan, settings.kpoint_density) if settings.fixed_kpoint_grid else None
            if grid:
                record.setdefault("kpoint_grids", {})[kind] = list(grid)
            # a new calculator per crystal: nothing carries over between elements or structures
            calculator = calculator_factory(settings, grid)
            labelled += [label_structure(atoms, calculator, settings, energy_offset_per_atom=offset) for atoms in scan]
        seconds = time.perf_counter() - start
        buffer = StringIO()
        write(buffer, labelled, format="extxyz")
        atomic_write_bytes(path, buffer.getvalue().encode())
        # read again just before writing: another process may be computing other elements into the same folder
        manifest = _read_manifest(manifest_path)
        manifest["elements"][symbol] = {"frames": len(labelled), "seconds": round(seconds, 1), **record}
        manifest.update(settings=settings.as_dict(), provenance=provenance or {})
        atomic_write_json(manifest_path, manifest)
        logger.info("%s: %d frames in %.0f s", symbol, len(labelled), seconds)
    return manifest
