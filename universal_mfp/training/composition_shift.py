"""The composition-linear energy difference between two fidelities, fitted on paired MP energies.

The Materials Project lists, for about 1,200 materials, both the GGA/GGA+U and the r2SCAN energy of the
same material (``raw/rxnnet``: energies per atom, no structures). With MP2020's corrections taken off the
GGA(+U) energy, the difference per atom is close to linear in the composition once each U metal gets an
extra term for GGA+U runs:

    Δ(c) = E_r2SCAN(c) − E_GGA(+U)(c) ≈ Σ_el x_el δ_el + Σ_{el with U} x_el δᵁ_el · [MP runs c with GGA+U]

(x: atomic fractions). On held-out materials the fit is off by about 0.07 eV/atom, against 0.15 eV/atom
between GGA and r2SCAN formation energies: it carries most of what r2SCAN changes about compound energetics.
``training.fidelity_prior`` uses it as a prior for a fidelity that has no compound labels.

The r2SCAN energies are moved to the target fidelity's own elemental energies where those are given
(MP's and MatPES' r2SCAN differ by up to a few eV/atom for some lanthanides, Ba and I: different PAW).
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Composition

logger = logging.getLogger(__name__)

_HYDRATE = re.compile(r"^(\d+)(.+)$")


@dataclass(frozen=True)
class PairedEnergy:
    """One material's energies per atom (eV/atom) at two fidelities, MP2020 corrections removed."""

    material_id: str
    composition: Composition
    hubbard: bool  # MP ran the low fidelity as GGA+U
    source_energy: float
    target_energy: float
    target_formation: float


@dataclass(frozen=True)
class CompositionShift:
    """``Δ(c)`` per atom (eV/atom) from ``source`` to ``target`` fidelity: per-element and GGA+U terms."""

    source: str
    target: str
    element_shift: Mapping[str, float]
    hubbard_shift: Mapping[str, float] = field(default_factory=dict)
    hubbard_settings: Mapping[str, Sequence[str]] = field(default_factory=dict)  # anion -> metals with a U
    fit: Mapping[str, float] = field(default_factory=dict)

    def uses_hubbard(self, composition: Composition) -> bool:
        """Whether MP would run ``composition`` with GGA+U (the rule of ``mp_conventions.mp_hubbards``)."""
        from universal_mfp.mp_conventions import most_electronegative

        anion = most_electronegative(composition)
        metals = self.hubbard_settings.get(anion, ())
        return any(el.symbol in metals for el in composition.elements)

    def per_atom(self, composition: Composition | str) -> float:
        """``Δ`` (eV/atom) of a composition.

        Raises:
            ValueError: for an element the fit has no shift for.
        """
        composition = Composition(composition)
        missing = sorted(el.symbol for el in composition.elements if el.symbol not in self.element_shift)
        if missing:
            raise ValueError(f"no {self.source}->{self.target} shift for elements {missing}")
        hubbard = self.uses_hubbard(composition)
        total = 0.0
        for el in composition.elements:
            fraction = composition.get_atomic_fraction(el)
            total += fraction * self.element_shift[el.symbol]
            if hubbard:
                total += fraction * self.hubbard_shift.get(el.symbol, 0.0)
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "source": self.source,
            "target": self.target,
            "element_shift": dict(self.element_shift),
            "hubbard_shift": dict(self.hubbard_shift),
            "hubbard_settings": {k: list(v) for k, v in self.hubbard_settings.items()},
            "fit": dict(self.fit),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompositionShift:
        """Inverse of ``to_dict``."""
        try:
            return cls(
                source=str(data["source"]),
                target=str(data["target"]),
                element_shift={str(k): float(v) for k, v in data["element_shift"].items()},
                hubbard_shift={str(k): float(v) for k, v in data.get("hubbard_shift", {}).items()},
                hubbard_settings={str(k): tuple(v) for k, v in data.get("hubbard_settings", {}).items()},
                fit=dict(data.get("fit", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"not a composition shift: {error}") from error


def parse_formula(formula: str) -> Composition:
    """A composition from an MP formula, including hydrates written with ``·`` (e.g. ``CuSO4·5H2O``)."""
    total = Composition()
    for part in formula.split("·"):
        match = _HYDRATE.match(part)
        total += Composition(match.group(2)) * int(match.group(1)) if match else Composition(part)
    return total


def read_mp_gga_r2scan_pairs(path: str | Path, *, exclude: Iterable[str] = ()) -> list[PairedEnergy]:
    """Materials with both an MP GGA(+U) and an r2SCAN energy in the rxnnet table, MP2020 corrections removed.

    ``e_gga_gga_u`` is MP2020 corrected; the correction MP2020 gives that composition is taken off again, so
    ``source_energy`` is the raw GGA(+U) energy the ``pbe`` fidelity is trained on. Rows whose id is in
    ``exclude`` are left out.

    Raises:
        FileNotFoundError: if the table is missing.
        ValueError: if it lacks the expected columns or holds no usable row.
    """
    from pymatgen.entries.computed_entries import ComputedEntry

    from universal_mfp.mp_conventions import mp2020_compatibility, mp_run_parameters

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no MP GGA/r2SCAN energy table at {path}")
    excluded = set(exclude)
    compat = mp2020_compatibility()
    needed = {"likely_mpid", "formula", "e_gga_gga_u", "e_r2scan", "hf_r2scan"}
    pairs = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not needed <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: expected columns {sorted(needed)}, found {reader.fieldnames}")
        for row in reader:
            if row["likely_mpid"] in excluded or not (row["e_gga_gga_u"] and row["e_r2scan"] and row["hf_r2scan"]):
                continue
            try:
                composition = parse_formula(row["formula"])
            except ValueError:
                logger.debug("skipping unparsable formula %r", row["formula"])
                continue
            run = mp_run_parameters(composition, compat.u_settings)
            natoms = composition.num_atoms
            corrected = float(row["e_gga_gga_u"]) * natoms
            with warnings.catch_warnings():  # pymatgen warns per entry about oxidation-state guesses
                warnings.simplefilter("ignore", UserWarning)
                entry = ComputedEntry(composition, corrected, parameters=run)
                processed = compat.process_entry(entry, inplace=False)
            if processed is None:
                continue
            correction = processed.energy - corrected  # what MP2020 adds to a raw energy of this composition
            pairs.append(
                PairedEnergy(
                    material_id=row["likely_mpid"],
                    composition=composition,
                    hubbard=run["is_hubbard"],
                    source_energy=(corrected - correction) / natoms,
                    target_energy=float(row["e_r2scan"]),
                    target_formation=float(row["hf_r2scan"]),
                )
            )
    if not pairs:
        raise ValueError(f"{path}: no material with both energies")
    return pairs


def fit_composition_shift(
    pairs: Sequence[PairedEnergy],
    *,
    source: str,
    target: str,
    target_element_energies: Mapping[str, float] | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 0,
) -> CompositionShift:
    """Least-squares ``Δ(c)`` on ``pairs``.

    The reported holdout error is from a refit without a random ``holdout_fraction`` of the materials; the
    returned shift uses them all.

    ``target_element_energies`` (eV/atom by symbol) are the target fidelity's own elemental energies: each
    element's shift moves by the difference from the elemental energies the table's formation energies imply,
    and elements without one are dropped. Their table energies may be on another scale: against the MatPES-style
    r2SCAN free-atom energies, the Bi, Pb and Tl shifts were off by tens of eV/atom, offsets no structure
    supports.
    """
    if len(pairs) < 2:
        raise ValueError("need at least two paired materials to fit a shift")
    from universal_mfp.mp_conventions import mp2020_compatibility

    compat = mp2020_compatibility()
    settings = {anion: tuple(sorted(m for m, u in metals.items() if u)) for anion, metals in compat.u_settings.items()}
    elements = sorted({el.symbol for p in pairs for el in p.composition.elements})
    hubbard_metals = sorted({m for metals in settings.values() for m in metals} & set(elements))
    columns = elements + [f"U:{m}" for m in hubbard_metals]

    def row(pair: PairedEnergy) -> list[float]:
        x = [pair.composition.get_atomic_fraction(el) for el in elements]
        return x + [pair.composition.get_atomic_fraction(m) if pair.hubbard else 0.0 for m in hubbard_metals]

    design = np.array([row(p) for p in pairs])
    delta = np.array([p.target_energy - p.source_energy for p in pairs])
    order = np.random.default_rng(seed).permutation(len(pairs))
    held = order[: round(holdout_fraction * len(pairs))]
    kept = np.setdiff1d(order, held)
    coeffs, *_ = np.linalg.lstsq(design[kept], delta[kept], rcond=None)
    holdout_mae = float(np.mean(np.abs(design[held] @ coeffs - delta[held]))) if len(held) else math.nan
    coeffs, *_ = np.linalg.lstsq(design, delta, rcond=None)
    train_mae = float(np.mean(np.abs(design @ coeffs - delta)))
    element_shift = dict(zip(elements, coeffs[: len(elements)].tolist(), strict=True))
    hubbard_shift = dict(zip(hubbard_metals, coeffs[len(elements) :].tolist(), strict=True))
    moved = 0
    if target_element_energies:
        # the table's own elemental energies: E(c) - Hf(c) = Σ x_el E_el holds exactly for every row
        implied, *_ = np.linalg.lstsq(
            design[:, : len(elements)], np.array([p.target_energy - p.target_formation for p in pairs]), rcond=None
        )
        for el, energy in zip(elements, implied, strict=True):
            if el in target_element_energies:
                element_shift[el] += float(target_element_energies[el]) - float(energy)
                moved += 1
            else:
                del element_shift[el]
                hubbard_shift.pop(el, None)
    fit = {"materials": len(pairs), "columns": len(columns), "train_mae": train_mae, "holdout_mae": holdout_mae}
    fit["elements_on_target_scale"] = moved
    fit["elements_dropped"] = len(elements) - len(element_shift)
    logger.info(
        "%s->%s shift: %d materials, %d elements, MAE %.3f eV/atom (holdout %.3f)",
        source,
        target,
        len(pairs),
        len(elements),
        train_mae,
        holdout_mae,
    )
    return CompositionShift(source, target, element_shift, hubbard_shift, settings, fit)


def read_element_offsets(path: Path) -> dict:
    """Read and check an offsets JSON (``umfp data offsets``).

    It holds ``element_offsets`` (finite numbers by symbol), and ``source``, ``target`` and ``default_offset``.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it is not an offsets table or holds a non-finite offset.
    """
    import json
    import math

    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no element offsets file at {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a JSON file ({error})") from error
    offsets = table.get("element_offsets") if isinstance(table, dict) else None
    if not isinstance(offsets, dict) or not offsets:
        raise ValueError(f"{path}: no 'element_offsets' mapping")
    default = table.get("default_offset")
    values = {**offsets, **({"default_offset": default} if default is not None else {})}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{path}: {name} is not a finite number ({value!r})")
    return table


def element_offsets_shift(path: Path, symbols: Sequence[str], *, source: str, target: str) -> CompositionShift:
    """A per-element shift from a measured offsets JSON (``read_element_offsets``), for the model's ``symbols``.

    Elements without a measured offset take the file's ``default_offset`` when it has one (else the shift does
    not cover them and the prior leaves their structures out).

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it is not an offsets table, holds a non-finite offset, or is for other fidelities.
    """
    table = read_element_offsets(path)
    if (table.get("source"), table.get("target")) != (source, target):
        raise ValueError(
            f"{path}: offsets are {table.get('source')}->{table.get('target')}, the prior asks for {source}->{target}"
        )
    offsets, default = table["element_offsets"], table.get("default_offset")
    shift = {s: float(offsets[s]) for s in symbols if s in offsets}
    if default is not None:
        shift.update({s: float(default) for s in symbols if s not in offsets})
    fit = {"elements_measured": float(sum(s in offsets for s in symbols)), "elements_covered": float(len(shift))}
    return CompositionShift(source, target, shift, fit=fit)
