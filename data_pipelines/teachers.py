"""Teachers: ASE calculators whose labels form a fidelity, with their provenance and energy scale.

A teacher is named by a spec:

- ``chgnet:0.3.0``: CHGNet 0.3.0 from the ``chgnet`` wheel (trained on MPtrj, the Materials Project's
  GGA/GGA+U relaxations). It predicts MP2020-*corrected* energies (measured on MP's Li-Fe-O entries, see
  ``docs/teacher_data.md``), so its energies are put on the raw GGA(+U) scale of the ``pbe`` fidelity by
  taking MP2020's correction back off (``energy_scale="mp_gga_raw"``).
- ``chgnet:r2scan``: CHGNet fine-tuned on MP r2SCAN. MP applies no correction to r2SCAN energies, so its
  energies are stored as they come (``energy_scale="mp_r2scan"``).
- ``sevenn:MODEL[:MODAL]``, e.g. ``sevenn:7net-mf-0:R2SCAN`` (GPL-3.0: for users who accept it).
- ``module:factory``, e.g. ``mypackage.calculators:make_calculator``: any importable callable that
  returns an ASE calculator; its energies are stored as they come.

``chgnet`` and ``sevenn`` are optional extras imported only here, only when such a teacher is asked for.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from universal_mfp.files import sha256_file
from universal_mfp.units import as_stress_3x3

logger = logging.getLogger(__name__)

MP_GGA_RAW = "mp_gga_raw"
MP_R2SCAN = "mp_r2scan"
AS_PREDICTED = "as_predicted"

_CHGNET_MODELS = {"0.3.0": "0.3.0", "r2scan": "r2scan"}
_CHGNET_LICENSE = "BSD-3-Clause (Modified BSD), chgnet wheel"


@dataclass(frozen=True)
class TeacherProvenance:
    """Where a teacher's labels come from.

    Attributes:
        spec: the teacher spec (``chgnet:0.3.0``).
        version: the model's version and the package that ships it (``CHGNet 0.3.0, chgnet 0.4.2``).
        weights_sha256: sha256 of the weights file (``None`` if the factory does not name one).
        license: the license of the weights and code.
        energy_scale: what the stored energies mean: ``mp_gga_raw`` (MP GGA/GGA+U without MP2020),
            ``mp_r2scan`` (MP r2SCAN) or ``as_predicted``.
    """

    spec: str
    version: str
    weights_sha256: str | None
    license: str
    energy_scale: str

    def as_info(self) -> dict[str, str]:
        """Row-level provenance, as the ``info`` entries of a labelled frame."""
        return {f"teacher_{k}" if k != "spec" else "teacher": v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TeacherLabel:
    """One structure's labels: total energy (eV), forces (eV/Å), stress (eV/Å³, ASE sign), on the target scale."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None


class TeacherError(RuntimeError):
    """A teacher failed on one structure (crash or non-finite output); the structure is skipped, not labelled."""


class Teacher:
    """An ASE calculator as a labeller, with provenance and an energy-scale conversion.

    Args:
        calculator: the ASE calculator.
        provenance: where the labels come from.
        energy_shift: optional callable ``(atoms, energy) -> energy`` that puts the calculator's
            energy on the target scale (e.g. MP2020's correction taken off).
    """

    def __init__(
        self,
        calculator: Any,
        provenance: TeacherProvenance,
        energy_shift: Callable[[Atoms, float], float] | None = None,
    ) -> None:
        self.calculator = calculator
        self.provenance = provenance
        self._energy_shift = energy_shift

    def label(self, atoms: Atoms, *, with_stress: bool = True) -> TeacherLabel:
        """Energy, forces and stress of one structure on the target's energy scale.

        Raises:
            TeacherError: if the calculator raises or returns a non-finite number.
        """
        work = atoms.copy()
        work.calc = self.calculator
        want_stress = with_stress and bool(work.pbc.all())
        try:
            energy = float(work.get_potential_energy())
            forces = np.array(work.get_forces(), dtype=np.float64)
            stress = as_stress_3x3(np.array(work.get_stress(), dtype=np.float64)) if want_stress else None
        except Exception as error:  # a teacher may fail on any structure; the caller records and skips it
            raise TeacherError(f"{self.provenance.spec} failed: {type(error).__name__}: {error}") from error
        if not math.isfinite(energy):
            raise TeacherError(f"{self.provenance.spec} returned a non-finite energy ({energy})")
        if not np.isfinite(forces).all():
            raise TeacherError(f"{self.provenance.spec} returned non-finite forces")
        if stress is not None and not np.isfinite(stress).all():
            raise TeacherError(f"{self.provenance.spec} returned a non-finite stress")
        if forces.shape != (len(atoms), 3):
            raise TeacherError(f"{self.provenance.spec} returned forces of shape {forces.shape} for {len(atoms)} atoms")
        if self._energy_shift is not None:
            try:
                energy = float(self._energy_shift(atoms, energy))
            except Exception as error:  # the scale conversion can refuse a composition (e.g. MP2020 does not apply)
                raise TeacherError(f"{self.provenance.spec}: energy-scale conversion failed: {error}") from error
            if not math.isfinite(energy):
                raise TeacherError(f"{self.provenance.spec}: energy-scale conversion gave {energy}")
        return TeacherLabel(energy=energy, forces=forces, stress=stress)


def mp2020_correction(atoms: Atoms) -> float:
    """MP2020's total correction (eV) for ``atoms``, run as MP would run it (GGA+U where MP's U rule says so).

    Raises:
        ValueError: where the scheme does not apply (MP2020 refuses the entry).
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry
    from pymatgen.io.ase import AseAtomsAdaptor

    from universal_mfp.mp_conventions import mp2020_compatibility, mp_run_parameters

    structure = AseAtomsAdaptor.get_structure(atoms)
    compat = _compatibility(mp2020_compatibility)
    parameters = mp_run_parameters(structure.composition, compat.u_settings)
    entry = ComputedStructureEntry(structure, 0.0, parameters=parameters)
    processed = compat.process_entry(entry, inplace=False)
    if processed is None:
        raise ValueError(f"MP2020 does not apply to {structure.composition.reduced_formula}")
    return float(processed.energy)


_COMPAT: list[Any] = []


def _compatibility(factory: Callable[[], Any]) -> Any:
    """One MP2020 scheme per process (building it reads pymatgen's YAML files)."""
    if not _COMPAT:
        _COMPAT.append(factory())
    return _COMPAT[0]


def corrected_to_raw(atoms: Atoms, energy: float) -> float:
    """Take MP2020's correction off an MP-compatible (corrected) GGA(+U) energy."""
    return energy - mp2020_correction(atoms)


def _load_chgnet(name: str, spec: str) -> Teacher:
    try:
        import chgnet
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as error:
        raise ImportError(
            f"teacher {spec!r} needs the optional 'chgnet' package: pip install 'universal-mfp[teachers]'"
        ) from error
    if name not in _CHGNET_MODELS:
        raise ValueError(f"unknown CHGNet model {name!r} in {spec!r}; known: {sorted(_CHGNET_MODELS)}")
    model = CHGNet.load(model_name=_CHGNET_MODELS[name], use_device="cpu", verbose=False)
    folder = Path(chgnet.__file__).parent / "pretrained" / _CHGNET_MODELS[name]
    weights = sorted(folder.glob("*.pth.tar"))
    provenance = TeacherProvenance(
        spec=spec,
        version=f"CHGNet {model.version}, chgnet {chgnet.__version__}",
        weights_sha256=sha256_file(weights[0]) if weights else None,
        license=_CHGNET_LICENSE,
        energy_scale=MP_GGA_RAW if name == "0.3.0" else MP_R2SCAN,
    )
    calculator = CHGNetCalculator(model=model, use_device="cpu")
    return Teacher(calculator, provenance, corrected_to_raw if name == "0.3.0" else None)


def _load_sevenn(rest: str, spec: str) -> Teacher:
    try:
        import sevenn
        from sevenn.calculator import SevenNetCalculator
    except ImportError as error:
        raise ImportError(f"teacher {spec!r} needs the 'sevenn' package (GPL-3.0): pip install sevenn") from error
    model, _, modal = rest.partition(":")
    if not model:
        raise ValueError(f"teacher spec {spec!r} names no SevenNet model (e.g. sevenn:7net-mf-0:R2SCAN)")
    calculator = SevenNetCalculator(model, modal=modal or None, device="cpu")
    path = getattr(calculator, "checkpoint_path", None) or getattr(calculator, "model_path", None)
    provenance = TeacherProvenance(
        spec=spec,
        version=f"SevenNet {model}{':' + modal if modal else ''}, sevenn {sevenn.__version__}",
        weights_sha256=sha256_file(Path(path)) if path and Path(path).is_file() else None,
        license="GPL-3.0-only",
        energy_scale=AS_PREDICTED,
    )
    return Teacher(calculator, provenance)


def _load_factory(spec: str) -> Teacher:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"teacher {spec!r}: cannot import module {module_name!r} ({error})") from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"teacher {spec!r}: {module_name} has no callable {attribute!r}")
    calculator = factory()
    if not hasattr(calculator, "get_potential_energy") and not hasattr(calculator, "calculate"):
        raise ValueError(f"teacher {spec!r}: the factory returned {type(calculator).__name__}, not an ASE calculator")
    weights = getattr(calculator, "weights_path", None)
    provenance = TeacherProvenance(
        spec=spec,
        version=str(getattr(module, "__version__", getattr(calculator, "version", "unknown"))),
        weights_sha256=sha256_file(Path(weights)) if weights and Path(weights).is_file() else None,
        license=str(getattr(calculator, "license", "unknown")),
        energy_scale=AS_PREDICTED,
    )
    return Teacher(calculator, provenance)


def load_teacher(spec: str) -> Teacher:
    """The teacher named by ``spec`` (see the module docstring).

    Raises:
        ValueError: for a malformed spec or a factory that does not give an ASE calculator.
        ImportError: if the package a teacher needs is not installed.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"teacher spec {spec!r} is not 'chgnet:0.3.0', 'chgnet:r2scan', 'sevenn:MODEL[:MODAL]' or 'module:factory'"
        )
    kind, _, rest = spec.partition(":")
    if kind == "chgnet":
        return _load_chgnet(rest, spec)
    if kind == "sevenn":
        return _load_sevenn(rest, spec)
    return _load_factory(spec)


def teachers_from_pairs(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """Parse ``FIDELITY=SPEC`` strings (``pbe=chgnet:0.3.0``) into (fidelity, spec) pairs.

    Raises:
        ValueError: for a malformed pair, an invalid fidelity name or a fidelity named twice.
    """
    from universal_mfp.fidelity import validate_fidelity_name

    out: list[tuple[str, str]] = []
    for pair in pairs:
        fidelity, sep, spec = pair.partition("=")
        if not sep or not fidelity or not spec:
            raise ValueError(f"teacher {pair!r}: expected FIDELITY=SPEC, e.g. pbe=chgnet:0.3.0")
        out.append((validate_fidelity_name(fidelity.strip()), spec.strip()))
    names = [f for f, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"a fidelity is named twice among the teachers: {names}")
    if not out:
        raise ValueError("no teacher given: pass --teacher FIDELITY=SPEC at least once")
    return out
