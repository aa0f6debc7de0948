"""Formulas given in settings (compositions to leave out of data): checked, then written as reduced formulas."""

from __future__ import annotations

from typing import Any


def reduced_formulas(formulas: Any, *, setting: str) -> tuple[str, ...]:
    """The reduced formula of each of ``formulas`` (``Mg2O2`` -> ``MgO``), in the order given.

    Raises ``ValueError`` naming ``setting`` and the formula when ``formulas`` is not a list or tuple, or when one
    of them is not a chemical formula (unparseable, empty, or holding symbols that are not elements).
    """
    from pymatgen.core import Composition, Element

    if isinstance(formulas, str) or not isinstance(formulas, list | tuple):
        raise ValueError(f"{setting} must be a list of formulas, got {formulas!r}")
    reduced = []
    for formula in formulas:
        try:
            composition = Composition(str(formula))
        except (ValueError, KeyError) as error:
            raise ValueError(f"{setting}: {formula!r} is not a chemical formula ({error})") from error
        if not composition:
            raise ValueError(f"{setting}: {formula!r} is not a chemical formula (it names no element)")
        unknown = [getattr(e, "symbol", str(e)) for e in composition.elements if not isinstance(e, Element)]
        if unknown:
            raise ValueError(f"{setting}: {formula!r} is not a chemical formula (not elements: {unknown})")
        reduced.append(composition.reduced_formula)
    return tuple(reduced)
