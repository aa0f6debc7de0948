"""The Materials Project's conventions, in one place: run types, the U rule, MP2020 corrections.

- Run types: MP spells them in several ways (``R2SCAN`` in thermo ids, ``r2SCAN`` in ``RunType``);
  ``normalise_run_type`` gives the canonical spelling, and each maps to a fidelity through the one label table
  ``fidelity.FUNCTIONAL_TO_FIDELITY`` (``mp_run_types`` lists the MP run types of a fidelity).
- The U rule: MP runs GGA+U with its U values when the most electronegative element is O or F and a U applies
  to some element, GGA otherwise (``mp_hubbards``, ``mp_run_parameters``).
- MP2020 corrections (for GGA/GGA+U energies only, for comparison with Materials Project GGA hulls; never
  applied to r2SCAN energies). The model's ``pbe`` fidelity is trained on MP's mixed GGA/GGA+U energies,
so a prediction is treated as the run MP would do for that composition: GGA+U with MP's U values when the
most electronegative element is O or F and a U applies to some element, GGA otherwise.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from universal_mfp.fidelity import FUNCTIONAL_TO_FIDELITY, PBE

if TYPE_CHECKING:
    from universal_mfp.data.frame import Frame

logger = logging.getLogger(__name__)

# the canonical spelling of each MP run type the project uses, by its upper-case form
MP_RUN_TYPES: dict[str, str] = {
    "GGA": "GGA",
    "GGA+U": "GGA+U",
    "PBE": "PBE",
    "PBE+U": "PBE+U",
    "R2SCAN": "r2SCAN",
    "R2SCAN+U": "r2SCAN+U",
}

MP2020_LABEL = "mp2020"  # suffix of every corrected column, so corrected values are never mistaken for raw ones


def normalise_run_type(label: Any) -> str | None:
    """Canonical run-type label (``GGA``, ``GGA+U``, ``r2SCAN``...), or ``None`` if not a fidelity we use."""
    if label is None:
        return None
    text = str(getattr(label, "value", label)).strip()
    return MP_RUN_TYPES.get(text.upper())


def mp_run_types(fidelity: str) -> tuple[str, ...]:
    """The MP run types (upper case) whose calculations belong to ``fidelity`` (empty for other fidelities)."""
    return tuple(key for key, label in MP_RUN_TYPES.items() if FUNCTIONAL_TO_FIDELITY.get(label.lower()) == fidelity)


def mp2020_compatibility() -> Any:
    """The MP2020 correction scheme of pymatgen, without POTCAR checks (predictions have no POTCARs)."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def electronegativity(symbol: str) -> float:
    """Pauling electronegativity, ``-1`` for elements without one (noble gases), as MP's U rule ranks them."""
    with warnings.catch_warnings():  # pymatgen warns for elements without a Pauling value
        warnings.simplefilter("ignore", UserWarning)
        value = Element(symbol).X
    return value if not math.isnan(value) else -1.0


def most_electronegative(composition: Composition) -> str:
    """The symbol of the most electronegative element of ``composition``."""
    return max((el.symbol for el in composition.elements), key=electronegativity)


def mp_hubbards(composition: Composition, u_settings: dict) -> dict[str, float]:
    """U values MP would use for ``composition`` (empty for a plain GGA run)."""
    settings = u_settings.get(most_electronegative(composition), {})
    return {el.symbol: float(settings[el.symbol]) for el in composition.elements if settings.get(el.symbol, 0)}


def mp_run_parameters(composition: Composition, u_settings: dict) -> dict[str, Any]:
    """The entry parameters of the run MP would do for ``composition``: GGA+U with MP's U values, else GGA."""
    hubbards = mp_hubbards(composition, u_settings)
    return {"run_type": "GGA+U" if hubbards else "GGA", "hubbards": hubbards, "is_hubbard": bool(hubbards)}


def mp2020_corrected_energies(frames: Sequence[Frame], energies: Sequence[float], *, fidelity: str) -> list[float]:
    """Total energies (eV) with MP2020 corrections; ``nan`` where the scheme does not apply.

    Raises:
        ValueError: if ``fidelity`` is not ``pbe`` (MP2020 corrects GGA/GGA+U energies only).
    """
    if fidelity != PBE:
        raise ValueError(
            f"MP2020 corrections apply to GGA/GGA+U ({PBE!r}) energies only, not to fidelity {fidelity!r}; "
            "r2SCAN energies are never corrected"
        )
    if len(frames) != len(energies):
        raise ValueError(f"{len(frames)} frames but {len(energies)} energies")
    compat = mp2020_compatibility()
    corrected = []
    for frame, energy in zip(frames, energies, strict=True):
        structure = Structure(frame.cell, frame.symbols, frame.positions, coords_are_cartesian=True)
        parameters = mp_run_parameters(structure.composition, compat.u_settings)
        entry = ComputedStructureEntry(structure, float(energy), parameters=parameters)
        processed = compat.process_entry(entry, inplace=False)
        if processed is None:
            logger.warning("MP2020 does not apply to %s (%s)", frame.info.get("id"), structure.formula)
            corrected.append(math.nan)
        else:
            corrected.append(float(processed.energy))
    return corrected
