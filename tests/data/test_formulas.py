"""Formulas in settings: written as reduced formulas, and anything that is not a formula refused by name."""

from __future__ import annotations

import pytest

from universal_mfp.data.formulas import reduced_formulas


def test_formulas_are_reduced_in_the_order_given():
    assert reduced_formulas(["Mg2O2", "OLi2", "Si4C4", "Fe"], setting="s") == ("MgO", "Li2O", "SiC", "Fe")
    assert reduced_formulas(("NaCl",), setting="s") == ("NaCl",) and reduced_formulas([], setting="s") == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("MgO", r"my\.setting must be a list of formulas, got 'MgO'"),
        (["MgO", "Xx3"], r"my\.setting: 'Xx3' is not a chemical formula \(not elements: \['Xx'\]\)"),
        (["MgO", ""], r"my\.setting: '' is not a chemical formula"),
        (["Mg(O"], r"my\.setting: 'Mg\(O' is not a chemical formula"),
    ],
)
def test_what_is_not_a_formula_is_refused_with_the_setting_named(value, message):
    with pytest.raises(ValueError, match=message):
        reduced_formulas(value, setting="my.setting")
