"""Decorate prototypes with new elements: charge-balanced, chemically plausible substitutions.

An ionic placeholder with oxidation state q is replaced by an element that occurs with that same
oxidation state in pymatgen's substitution data (ICSD statistics), so every decoration keeps the seed's
charge balance. Where the seed's own species is in that data, substitutes are drawn in proportion to the
square root of pymatgen's substitution probability (plausible first, but every candidate keeps a chance);
otherwise uniformly. Intermetallic placeholders draw from element classes (transition metals, p-block
metals...). The decorated crystal gets a volume from pymatgen's radius-ratio volume predictor.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from functools import cache

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from pymatgen.core import Element, Species, Structure
from universal_mfp_pipelines.prototypes import ELEMENT_CLASSES, TEACHER_ELEMENTS, Prototype, Role

logger = logging.getLogger(__name__)

ANIONS: dict[int, tuple[str, ...]] = {
    -1: ("F", "Cl", "Br", "I", "H"),
    -2: ("O", "S", "Se", "Te"),
    -3: ("N", "P", "As"),
    -4: ("C", "Si"),
}
# elements of the substitution data that are not used as cations of generated ionic crystals
_NOT_CATIONS = frozenset(["H", "C", "N", "O", "F", "P", "S", "Se", "Cl", "Br", "I", "Kr", "Xe"])
# teacher elements missing from pymatgen's substitution data, added as cations by their one common state
_EXTRA_CATIONS = {"Pm": 3, "Fr": 1, "Ra": 2}
# the metals MP runs with GGA+U in oxides and fluorides
U_METALS: tuple[str, ...] = ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W")


@cache
def _substitution_probability() -> object:
    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionProbability

    return SubstitutionProbability()


@cache
def cation_candidates(charge: int) -> tuple[str, ...]:
    """Teacher elements seen with oxidation state ``charge`` > 0 in pymatgen's substitution data (plus Pm, Fr, Ra)."""
    species = _substitution_probability().species  # type: ignore[attr-defined]
    known = set(TEACHER_ELEMENTS)
    found = {s.symbol for s in species if s.oxi_state == charge and s.symbol not in _NOT_CATIONS and s.symbol in known}
    found |= {el for el, q in _EXTRA_CATIONS.items() if q == charge}
    return tuple(sorted(found, key=lambda el: atomic_numbers[el]))


def role_candidates(role: Role, placeholder: str) -> tuple[str, ...]:
    """The elements a placeholder with ``role`` may become.

    Raises:
        ValueError: for a role with no candidates.
    """
    if isinstance(role, int):
        found = cation_candidates(role) if role > 0 else ANIONS.get(role, ())
    elif role == "any":
        found = TEACHER_ELEMENTS
    elif role == "keep":
        found = (placeholder,)
    else:
        found = ELEMENT_CLASSES.get(role, ())
    if not found:
        raise ValueError(f"no element can take role {role!r} (placeholder {placeholder})")
    return found


def _weights(placeholder: str, role: Role, candidates: tuple[str, ...]) -> np.ndarray:
    """Sampling weights: sqrt of pymatgen's substitution probability where the seed species is known."""
    uniform = np.full(len(candidates), 1.0 / len(candidates))
    if not isinstance(role, int):
        return uniform
    table = _substitution_probability()
    source = Species(placeholder, role)
    if source not in table.species:  # type: ignore[attr-defined]
        return uniform
    probs = []
    for element in candidates:
        target = Species(element, role)
        known = target in table.species  # type: ignore[attr-defined]
        probs.append(table.prob(source, target) if known else 0.0)  # type: ignore[attr-defined]
    weights = np.sqrt(np.asarray(probs))
    weights = weights / weights.sum() if weights.sum() > 0 else uniform
    return 0.8 * weights + 0.2 * uniform  # every candidate keeps a chance: coverage of the periodic table


def sample_decoration(
    prototype: Prototype,
    rng: np.random.Generator,
    *,
    forced: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    """Draw a role variant and a distinct element for every placeholder; return (variant index, mapping).

    ``forced`` fixes some placeholders (e.g. a GGA+U metal on a cation site); a forced element must be a
    candidate of its role.

    Raises:
        ValueError: if a forced element does not fit its role, or the roles cannot be filled with distinct
            elements.
    """
    variant = int(rng.integers(len(prototype.role_variants)))
    roles = prototype.role_variants[variant]
    mapping: dict[str, str] = {}
    for placeholder in sorted(roles, key=lambda p: (p not in (forced or {}), p)):
        role = roles[placeholder]
        candidates = role_candidates(role, placeholder)
        if forced and placeholder in forced:
            if forced[placeholder] not in candidates:
                raise ValueError(
                    f"{forced[placeholder]} cannot take role {role!r} of {placeholder} in {prototype.name}"
                )
            mapping[placeholder] = forced[placeholder]
            continue
        free = tuple(c for c in candidates if c not in mapping.values())
        if not free:
            raise ValueError(f"{prototype.name}: no distinct element left for {placeholder} (role {role!r})")
        weights = _weights(placeholder, role, candidates)
        keep = np.array([c in free for c in candidates])
        weights = weights * keep
        mapping[placeholder] = str(rng.choice(candidates, p=weights / weights.sum()))
    return variant, mapping


def _radius(element: str) -> float:
    return float(covalent_radii[atomic_numbers[element]])


def decorate(prototype: Prototype, variant: int, mapping: Mapping[str, str]) -> Structure:
    """The prototype with its placeholders replaced and its volume predicted for the new elements.

    The volume comes from pymatgen's ``RLSVolumePredictor`` (ionic radii for ionic roles, atomic radii
    otherwise) against the seed; where it cannot (elements without tabulated radii), the cell is scaled by
    the ratio of covalent radii.
    """
    from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor

    roles = prototype.role_variants[variant]
    seed = prototype.structure.copy()
    ionic = all(isinstance(roles[str(el)], int) for el in seed.composition.elements)
    new = seed.copy()
    new.replace_species({Element(p): Element(e) for p, e in mapping.items() if p != e})
    volume = None
    if ionic:
        try:
            ref = seed.copy()
            ref.add_oxidation_state_by_element({p: roles[p] for p in roles})
            target = ref.copy()
            target.replace_species(
                {Species(p, roles[p]): Species(mapping[p], roles[p]) for p in roles if p != mapping[p]}
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                volume = RLSVolumePredictor(check_isostructural=False, use_bv=False).predict(target, ref)
        except (ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError) as error:
            logger.debug("volume predictor failed for %s: %s", mapping, error)
            volume = None
    if volume is None or not np.isfinite(volume) or volume <= 0:
        ratio = np.mean([_radius(mapping[str(site.specie)]) / _radius(str(site.specie)) for site in seed])
        volume = seed.volume * ratio**3
    new.scale_lattice(float(volume))
    return new
