"""Equations of state of elemental crystals computed with real DFT (GPAW, PBE): forces and stresses at ``pbe``.

A bulk modulus is the slope of pressure against volume. ``../shared/data`` holds one equilibrium cell per
element and functional (MatPES) and MP's relaxations, but no crystal compressed or expanded at fixed shape, so
the ``pbe`` head can only copy its GGA teacher's curvature, and CHGNet 0.3.0 is soft (Al: 54 GPa, DFT 76.5).
This module computes that curvature with DFT: each element's ground-state crystal from ASE's reference states
(fcc, bcc, hcp or diamond, non-magnetic), scaled isotropically, labelled by plane-wave PBE.

Only forces and stresses are stored as labels. GPAW's energies are relative to its own spin-paired reference
atoms and use other PAW setups than MP's VASP runs, so they sit on another energy scale than ``pbe``; the
stress, a derivative, does not depend on that scale. Each frame keeps GPAW's energy as ``info["dft_energy"]``
(eV) for the record. Frames of one element share a ``material_id``, so all its volumes fall in the same split.

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
DEFAULT_VOLUME_FACTORS = (0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12)


@dataclass(frozen=True)
class DftSettings:
    """Plane-wave PBE settings (GPAW), the same for every element so that the labels form one setup.

    Attributes:
        xc: exchange-correlation functional.
        ecut: plane-wave cutoff, eV (MP: 520).
        kpoint_density: k-points per Å⁻¹ of reciprocal length (ASE's ``kptdensity``, 2π included).
        smearing: Marzari-Vanderbilt smearing width, eV.
        volume_factors: volumes of the scan, as multiples of the reference crystal's volume.
    """

    xc: str = "PBE"
    ecut: float = 520.0
    kpoint_density: float = 5.0
    smearing: float = 0.1
    volume_factors: tuple[float, ...] = field(default=DEFAULT_VOLUME_FACTORS)

    def __post_init__(self) -> None:
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
        """JSON form (stored in every frame and in the manifest)."""
        out = asdict(self)
        out["volume_factors"] = list(self.volume_factors)
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


def eos_structures(symbol: str, volume_factors: Sequence[float] = DEFAULT_VOLUME_FACTORS) -> list[Atoms]:
    """The element's reference crystal scaled isotropically to each volume factor (same fractional positions)."""
    crystal = reference_crystal(symbol)
    kind = reference_states[atomic_numbers[symbol]]["symmetry"]
    out = []
    for factor in volume_factors:
        atoms = crystal.copy()
        atoms.set_cell(crystal.cell.array * float(factor) ** (1.0 / 3.0), scale_atoms=True)
        atoms.info.update(
            material_id=f"dft-eos:{symbol}-{kind}", config_type="eos", volume_factor=float(factor), structure=kind
        )
        out.append(atoms)
    return out


def _import_gpaw() -> Any:
    try:
        import gpaw
    except ImportError as error:
        raise ImportError(
            "DFT equations of state need GPAW (GPL-3.0): pip install gpaw (and its PAW setups)"
        ) from error
    return gpaw


def gpaw_calculator(settings: DftSettings) -> Any:
    """A GPAW plane-wave calculator with ``settings`` (spin-paired, symmetry-reduced k-points, quiet).

    Raises:
        ImportError: if GPAW is not installed.
    """
    gpaw = _import_gpaw()
    return gpaw.GPAW(
        mode=gpaw.PW(settings.ecut),
        xc=settings.xc,
        kpts={"density": settings.kpoint_density, "gamma": True},
        occupations={"name": "marzari-vanderbilt", "width": settings.smearing},
        txt=None,
    )


def gpaw_provenance() -> dict[str, str]:
    """Code, version and license of the DFT labels.

    Raises:
        ImportError: if GPAW is not installed.
    """
    version = str(_import_gpaw().__version__)
    return {"code": "GPAW", "version": version, "license": "GPL-3.0-or-later", "setups": "GPAW PAW"}


def label_structure(atoms: Atoms, calculator: Any, settings: DftSettings) -> Atoms:
    """``atoms`` with the calculator's forces and stress as its labels (no energy label, see the module doc).

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
    out.calc = SinglePointCalculator(out, forces=forces, stress=stress)
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
    calculator_factory: Callable[[DftSettings], Any] = gpaw_calculator,
    provenance: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Compute and write the equation-of-state frames of ``elements`` into ``out_dir/frames/<element>.extxyz``.

    Elements already written with the same settings are skipped. Every element is checked before any
    calculation starts, so a bad name fails at once.

    Raises:
        ValueError: for an unknown or unsupported element, an element already written with other settings, or
            a damaged element file or manifest (named; nothing is overwritten).
    """
    from ase.io import write

    settings = settings or DftSettings()
    if not elements:
        raise ValueError("no elements given")
    structures = {symbol: eos_structures(symbol, settings.volume_factors) for symbol in dict.fromkeys(elements)}
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
        calculator = calculator_factory(settings)  # one per element: nothing carries over between elements
        start = time.perf_counter()
        labelled = [label_structure(atoms, calculator, settings) for atoms in atoms_list]
        seconds = time.perf_counter() - start
        buffer = StringIO()
        write(buffer, labelled, format="extxyz")
        atomic_write_bytes(path, buffer.getvalue().encode())
        # read again just before writing: another process may be computing other elements into the same folder
        manifest = _read_manifest(manifest_path)
        manifest["elements"][symbol] = {"frames": len(labelled), "seconds": round(seconds, 1)}
        manifest.update(settings=settings.as_dict(), provenance=provenance or {})
        atomic_write_json(manifest_path, manifest)
        logger.info("%s: %d volumes in %.0f s", symbol, len(labelled), seconds)
    return manifest
