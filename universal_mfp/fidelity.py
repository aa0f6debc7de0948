"""Fidelity names: which level of theory a label (or a prediction) belongs to.

The canonical fidelities are ``pbe`` (the Materials Project's GGA and GGA+U, which are PBE) and
``r2scan`` (the r2SCAN meta-GGA). A model may carry further fidelities added by fine-tuning; their
names are free-form lower-case identifiers. Every lookup is explicit: an unknown or missing fidelity
raises ``ValueError`` listing the valid names, and nothing ever falls back to another fidelity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

PBE = "pbe"
R2SCAN = "r2scan"
CANONICAL_FIDELITIES: tuple[str, ...] = (PBE, R2SCAN)

# Functional / run-type labels as they appear in MP documents and extxyz ``info["functional"]``.
# Keys are compared case-insensitively.
FUNCTIONAL_TO_FIDELITY: dict[str, str] = {
    "pbe": PBE,
    "gga": PBE,
    "gga+u": PBE,
    "gga_gga+u": PBE,
    "pbe+u": PBE,
    "r2scan": R2SCAN,
    "r2scan+u": R2SCAN,
}

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_+\-]*$")


def validate_fidelity_name(name: str) -> str:
    """Return ``name`` if it is a well-formed fidelity name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid fidelity name {name!r}: use a lower-case identifier such as 'pbe', 'r2scan' or 'ccsd_t'"
        )
    return name


def fidelity_from_functional(functional: str, mapping: Mapping[str, str] | None = None) -> str:
    """Map a functional or run-type label (``GGA``, ``GGA+U``, ``PBE``, ``r2SCAN``...) to a fidelity name.

    Args:
        functional: the label, e.g. ``info["functional"]`` of an extxyz frame or an MP run type.
        mapping: optional user mapping from labels to fidelity names; it is consulted first and
            compared case-insensitively.

    Raises:
        ValueError: if the label is not known, naming the known labels.
    """
    if not isinstance(functional, str) or not functional.strip():
        raise ValueError(f"missing functional label (got {functional!r}); cannot assign a fidelity")
    key = functional.strip().lower()
    if mapping:
        lowered = {k.lower(): v for k, v in mapping.items()}
        if key in lowered:
            return validate_fidelity_name(lowered[key])
    if key in FUNCTIONAL_TO_FIDELITY:
        return FUNCTIONAL_TO_FIDELITY[key]
    known = sorted(set(FUNCTIONAL_TO_FIDELITY) | {k.lower() for k in (mapping or {})})
    raise ValueError(f"unknown functional {functional!r}: known labels are {known}; pass an explicit fidelity mapping")


def fidelity_index(name: str | None, valid: Sequence[str]) -> int:
    """Return the index of fidelity ``name`` among ``valid``.

    Raises:
        ValueError: if ``name`` is missing or not one of ``valid``; the message lists the valid names.
    """
    valid = tuple(valid)
    if name is None:
        raise ValueError(f"a fidelity is required for this model; choose one of {list(valid)}")
    if not isinstance(name, str):
        raise ValueError(f"fidelity must be a string, got {type(name).__name__}; choose one of {list(valid)}")
    key = name.strip().lower()
    if key not in valid:
        alias = FUNCTIONAL_TO_FIDELITY.get(key)
        if alias in valid:
            key = alias
        else:
            raise ValueError(f"unknown fidelity {name!r}; valid fidelities are {list(valid)}")
    return valid.index(key)
