"""Isolated-atom energies (E0) per fidelity, used as the model's element reference energies.

With the references set to the DFT energy of each free atom, an atom with no neighbours, and a dimer
pulled apart beyond the cutoff, get the DFT energies of the free atoms, and the network learns only
the binding. Each fidelity's E0 come from the first of these that has the element:

- ``file``: a JSON file mapping atomic numbers or symbols to energies in eV, optionally nested under
  ``key`` (e.g. ``{"pbe": {"1": -1.117, ...}}``);
- ``info_key``: a per-frame value of that fidelity's frames, e.g. MatPES's ``info["energy_atomic"]``
  (every frame of one element must agree);
- ``dissociated_dimers``: half the energy of the most separated homonuclear dimer of that fidelity,
  provided it is at least ``cutoff`` apart (the model sees it as two free atoms);
- ``cohesive_from``: another fidelity's E0 moved by the difference between the two fidelities' lowest
  bulk energies per atom of the pure element, i.e. the cohesive energy is taken to be the same in both
  (for a setup whose free-atom energy of that element was never computed);
- ``same_as``: another fidelity's E0, minus the per-element ``offsets`` (an ``umfp data offsets`` JSON of
  ``E_other - E_this`` per atom, its ``default_offset`` for elements it did not measure) when given. For a
  teacher fidelity on the scale of a real one (``pbe_chgnet`` as ``pbe``; ``r2scan_chgnet`` as ``r2scan`` minus
  the MatPES-minus-MP r2SCAN offsets), so the two fidelities' networks learn the same binding energies.
  With ``fallback_cohesive_from``, the elements the offsets did not measure take, instead of the default
  offset, the E0 that gives this fidelity's lowest pure-element bulk the cohesive energy it has at that other
  fidelity (e.g. ``r2scan_chgnet`` from ``pbe_chgnet``: the r2SCAN teacher's binding energy of an element it was
  never calibrated on is taken to be the GGA teacher's); elements that cannot be matched either (the other
  fidelity has no E0 for them) are left to least squares, not given the default offset. With
  ``fallback_from_compounds``, the elements still unmatched (no pure crystal at both fidelities, e.g. because
  all of them fell in the validation split) take the E0 that give the structures both fidelities labelled the
  same binding energies, by a robust least-squares fit over those structures. A default offset is
  only right when the two setups differ by a small amount for every element; for a teacher that extrapolates
  to elements its training data lacked they can differ by tens of eV/atom.

Elements none of these cover keep least-squares references (see ``statistics.fit_element_references``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from universal_mfp.data.frame import Frame
from universal_mfp.data.neighbors import neighbor_list
from universal_mfp.data.pairs import pair_by_geometry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IsolatedAtomSource:
    """Where one fidelity's isolated-atom energies come from (fields are tried in the order listed)."""

    file: Path | None = None
    key: str | None = None
    info_key: str | None = None
    dissociated_dimers: bool = False
    cohesive_from: str | None = None
    same_as: str | None = None
    offsets: Path | None = None
    fallback_cohesive_from: str | None = None
    fallback_from_compounds: bool = False

    def __post_init__(self) -> None:
        given = (self.file, self.info_key, self.dissociated_dimers or None, self.cohesive_from, self.same_as)
        if all(value is None for value in given):
            raise ValueError(
                "an isolated-atom source needs file, info_key, dissociated_dimers, cohesive_from or same_as"
            )
        if self.offsets is not None and self.same_as is None:
            raise ValueError("isolated-atom 'offsets' shift another fidelity's energies; give 'same_as' too")
        if self.fallback_cohesive_from is not None and self.same_as is None:
            raise ValueError("isolated-atom 'fallback_cohesive_from' completes a 'same_as' copy; give 'same_as' too")
        if self.fallback_from_compounds and self.fallback_cohesive_from is None:
            raise ValueError(
                "isolated-atom 'fallback_from_compounds' extends 'fallback_cohesive_from'; give that fidelity too"
            )
        if self.key is not None and self.file is None:
            raise ValueError("isolated-atom 'key' selects a section of 'file'; give the file too")


def _element(label: Any, origin: str) -> int:
    text = str(label).strip()
    if text.isdigit():
        z = int(text)
        if 1 <= z < 119:
            return z
    elif text in atomic_numbers:
        return atomic_numbers[text]
    raise ValueError(f"{origin}: {label!r} is neither an atomic number nor an element symbol")


def energies_from_file(path: Path, key: str | None = None) -> dict[int, float]:
    """Read ``{Z or symbol: eV}`` (optionally under ``key``) from a JSON file."""
    if not path.is_file():
        raise FileNotFoundError(f"no isolated-atom energy file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if key is not None:
        if not isinstance(data, Mapping) or key not in data:
            found = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"{path}: no section {key!r} (found {found})")
        data = data[key]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping from elements to energies")
    out: dict[int, float] = {}
    for label, value in data.items():
        energy = float(value)
        if not np.isfinite(energy):
            raise ValueError(f"{path}: energy of {label!r} is not finite")
        out[_element(label, str(path))] = energy
    return out


def energies_from_info(frames: Sequence[Frame], info_key: str) -> dict[int, float]:
    """Per-element values of ``info[info_key]`` on single-element frames; disagreeing values raise."""
    out: dict[int, float] = {}
    for frame in frames:
        if info_key not in frame.info:
            continue
        elements = np.unique(frame.numbers)
        if len(elements) != 1:
            continue
        z, energy = int(elements[0]), float(frame.info[info_key])
        if z in out and abs(out[z] - energy) > 1e-6:
            raise ValueError(f"info[{info_key!r}] disagrees between frames of element Z={z}: {out[z]} vs {energy}")
        out[z] = energy
    return out


def energies_from_dimers(frames: Sequence[Frame], cutoff: float) -> dict[int, float]:
    """Half the energy of each element's most separated homonuclear dimer that the model sees as two free atoms.

    A dimer qualifies when neither atom (nor a periodic image) has a neighbour within ``cutoff``.
    """
    farthest: dict[int, tuple[float, float]] = {}
    for frame in frames:
        if frame.num_atoms != 2 or frame.energy is None or frame.numbers[0] != frame.numbers[1]:
            continue
        if len(neighbor_list(frame.positions, frame.cell, frame.pbc, cutoff)[0]) > 0:
            continue
        distance = float(np.linalg.norm(frame.positions[1] - frame.positions[0]))
        z = int(frame.numbers[0])
        if z not in farthest or distance > farthest[z][0]:
            farthest[z] = (distance, 0.5 * float(frame.energy))
    return {z: energy for z, (_, energy) in farthest.items()}


# frames with more volume per atom than this (Å^3) are molecules in a box, not bulk
_MAX_BULK_VOLUME_PER_ATOM = 100.0


def lowest_bulk_energies(frames: Sequence[Frame]) -> dict[int, float]:
    """Lowest energy per atom of each element among single-element periodic bulk frames (eV/atom)."""
    out: dict[int, float] = {}
    for frame in frames:
        elements = np.unique(frame.numbers)
        if frame.energy is None or len(elements) != 1 or not frame.pbc.all():
            continue
        if abs(np.linalg.det(frame.cell)) / frame.num_atoms > _MAX_BULK_VOLUME_PER_ATOM:
            continue
        z, energy = int(elements[0]), float(frame.energy) / frame.num_atoms
        out[z] = min(out.get(z, energy), energy)
    return out


def isolated_atom_energies(
    frames: Sequence[Frame],
    fidelities: Sequence[str],
    sources: Mapping[str, IsolatedAtomSource],
    *,
    cutoff: float,
) -> dict[str, dict[int, float]]:
    """E0 per fidelity and element from the configured sources (fidelities without a source are left out)."""
    unknown = sorted(set(sources) - set(fidelities))
    if unknown:
        raise ValueError(f"isolated-atom energies given for fidelities {unknown} that the data does not have")
    out: dict[str, dict[int, float]] = {}
    for fidelity in fidelities:
        source = sources.get(fidelity)
        if source is None:
            continue
        own = [f for f in frames if f.fidelity == fidelity]
        found: dict[int, float] = {}
        origins: dict[str, int] = {}
        steps = []
        if source.file is not None:
            steps.append(("file", energies_from_file(source.file, source.key)))
        if source.info_key is not None:
            steps.append((f"info[{source.info_key}]", energies_from_info(own, source.info_key)))
        if source.dissociated_dimers:
            steps.append(("dissociated dimers", energies_from_dimers(own, cutoff)))
        for name, values in steps:
            new = {z: e for z, e in values.items() if z not in found}
            found.update(new)
            origins[name] = len(new)
        out[fidelity] = found
        logger.info("fidelity %s: isolated-atom energies for %d elements %s", fidelity, len(found), origins)
    for fidelity, source in sources.items():  # second pass: needs the other fidelities' E0
        other = source.cohesive_from
        if other is None:
            continue
        if other not in out or other == fidelity:
            raise ValueError(
                f"isolated-atom energies of {fidelity}: cohesive_from {other!r} has no energies of its own"
            )
        matched = _same_cohesive_energy(frames, fidelity, other, out[other])
        new = {z: e for z, e in matched.items() if z not in out[fidelity]}
        out[fidelity].update(new)
        logger.info("fidelity %s: %d isolated-atom energies from cohesive energies at %s", fidelity, len(new), other)
    # third pass: copies of a fidelity's final E0; those completed by a cohesive match after the plain copies
    copies = sorted((s.fallback_cohesive_from is not None, f) for f, s in sources.items() if s.same_as is not None)
    for _, fidelity in copies:
        source = sources[fidelity]
        if source.same_as not in out or source.same_as == fidelity or sources[source.same_as].same_as is not None:
            raise ValueError(
                f"isolated-atom energies of {fidelity}: same_as {source.same_as!r} has no energies of its own"
            )
        shift = _offsets(source.offsets) if source.offsets is not None else {}
        default = shift.pop(0, 0.0)
        fallback: dict[int, float] = {}
        if source.fallback_cohesive_from is not None:
            fallback = _cohesive_matches(frames, out, fidelity, source.fallback_cohesive_from, sources)
        new: dict[int, float] = {}
        for z in sorted(out[source.same_as].keys() | fallback.keys()):
            if z in out[fidelity]:
                continue
            if z in shift and z in out[source.same_as]:
                new[z] = out[source.same_as][z] - shift[z]
            elif z in fallback:
                new[z] = fallback[z]
            elif source.fallback_cohesive_from is None:
                new[z] = out[source.same_as][z] - default
            # else: matched below from compounds, or left to least squares
        paired: dict[int, float] = {}
        if source.fallback_from_compounds:
            other = str(source.fallback_cohesive_from)
            paired = _same_binding_on_shared_structures(frames, fidelity, other, {**out[fidelity], **new}, out[other])
            new.update(paired)
        out[fidelity].update(new)
        measured = sum(z in shift for z in new)
        matched = sum(z in fallback and z not in shift for z in new)
        logger.info(
            "fidelity %s: %d isolated-atom energies as %s (%d with a measured offset, %d by cohesive energy at %s, "
            "%d by binding energies of shared compounds)",
            fidelity,
            len(new),
            source.same_as,
            measured,
            matched,
            source.fallback_cohesive_from,
            len(paired),
        )
    return out


# a structure whose two labels disagree by more than this (eV/atom) after the fit is a failed label: refit without
_PAIR_OUTLIER_EV = 1.0


def _same_binding_on_shared_structures(
    frames: Sequence[Frame],
    fidelity: str,
    other: str,
    known: Mapping[int, float],
    other_e0: Mapping[int, float],
) -> dict[int, float]:
    """E0 of ``fidelity`` for elements ``known`` lacks, from structures labelled at both fidelities.

    For an element with no pure-element crystal at both fidelities (a composition group that fell in another
    split, say), the E0 are those that give the structures both fidelities labelled the same binding energy
    on average: least squares over those structures (per atom), with every other element's E0 fixed, without
    the structures that a least-absolute-deviations fit leaves more than ``_PAIR_OUTLIER_EV`` eV/atom apart
    (failed labels).
    """
    own = [f for f in frames if f.fidelity == fidelity and f.energy is not None]
    others = [f for f in frames if f.fidelity == other and f.energy is not None]
    rows: list[tuple[dict[int, int], float, int]] = []
    for i, j in pair_by_geometry(others, own):
        frame, twin = own[j], others[i]
        zs, counts = np.unique(frame.numbers, return_counts=True)
        composition = {int(z): int(n) for z, n in zip(zs, counts, strict=True)}
        unknown = {z: n for z, n in composition.items() if z not in known}
        if not unknown or any(z not in other_e0 for z in composition):
            continue
        own_binding = float(frame.energy) - sum(n * known[z] for z, n in composition.items() if z in known)
        other_binding = float(twin.energy) - sum(n * other_e0[z] for z, n in composition.items())
        rows.append((unknown, own_binding - other_binding, frame.num_atoms))
    if not rows:
        return {}
    elements = sorted({z for unknown, _, _ in rows for z in unknown})
    column = {z: k for k, z in enumerate(elements)}
    matrix = np.zeros((len(rows), len(elements)))
    target = np.zeros(len(rows))
    for i, (unknown, value, num_atoms) in enumerate(rows):
        for z, n in unknown.items():
            matrix[i, column[z]] = n / num_atoms
        target[i] = value / num_atoms
    # least absolute deviations (iteratively reweighted) finds the bulk of the structures despite failed labels;
    # least squares on the structures it leaves within _PAIR_OUTLIER_EV gives the E0
    weights = np.ones(len(rows))
    for _ in range(50):
        root = np.sqrt(weights)
        robust = np.linalg.lstsq(matrix * root[:, None], target * root, rcond=None)[0]
        weights = 1.0 / np.maximum(np.abs(matrix @ robust - target), 1e-4)
    keep = np.abs(matrix @ robust - target) <= _PAIR_OUTLIER_EV
    solution = np.linalg.lstsq(matrix[keep], target[keep], rcond=None)[0]
    solved = {z: float(solution[column[z]]) for z in elements if (matrix[keep][:, column[z]] > 0).any()}
    logger.info(
        "%s: E0 of %s from %d structures shared with %s (%d left out as failed labels)",
        fidelity,
        [chemical_symbols[z] for z in solved],
        int(keep.sum()),
        other,
        int((~keep).sum()),
    )
    return solved


def _cohesive_matches(
    frames: Sequence[Frame],
    out: Mapping[str, Mapping[int, float]],
    fidelity: str,
    other: str,
    sources: Mapping[str, IsolatedAtomSource],
) -> dict[int, float]:
    """E0 of ``fidelity`` that give its lowest pure-element bulk the cohesive energy it has at ``other``."""
    if other == fidelity or other not in out:
        raise ValueError(f"isolated-atom energies of {fidelity}: fallback_cohesive_from {other!r} has no energies")
    if sources.get(other) is not None and sources[other].fallback_cohesive_from is not None:
        raise ValueError(
            f"isolated-atom energies of {fidelity}: fallback_cohesive_from {other!r} is itself completed by a "
            "cohesive match; name a fidelity whose energies are final"
        )
    return _same_cohesive_energy(frames, fidelity, other, out[other])


def _same_cohesive_energy(
    frames: Sequence[Frame], fidelity: str, other: str, other_e0: Mapping[int, float]
) -> dict[int, float]:
    """E0 of ``fidelity`` that give its lowest pure-element bulk the cohesive energy of ``other``'s lowest bulk.

    The cohesive energy at ``other`` is its lowest bulk energy per atom minus ``other_e0``.
    """
    own_bulk = lowest_bulk_energies([f for f in frames if f.fidelity == fidelity])
    other_bulk = lowest_bulk_energies([f for f in frames if f.fidelity == other])
    common = own_bulk.keys() & other_bulk.keys() & other_e0.keys()
    return {z: own_bulk[z] - (other_bulk[z] - other_e0[z]) for z in common}


def _offsets(path: Path) -> dict[int, float]:
    """Per-element offsets (eV/atom) by atomic number from an offsets JSON; key 0 holds ``default_offset``."""
    from universal_mfp.training.composition_shift import read_element_offsets

    table = read_element_offsets(path)
    out = {_element(label, str(path)): float(value) for label, value in table["element_offsets"].items()}
    if table.get("default_offset") is not None:
        out[0] = float(table["default_offset"])
    return out
