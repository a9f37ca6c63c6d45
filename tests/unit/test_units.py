"""The unit check inserts exact conversion factors where compatible units meet (issue 20, rules 9 and 14)."""

import pytest

from pkpd import units as un
from pkpd.expressions import evaluate, parse


@pytest.mark.parametrize(("target", "expected"), [("mg/L", 11.0), ("ng/mL", 11000.0), ("g/L", 0.011)])
def test_sum_of_compatible_units_is_converted_to_the_declared_unit(target, expected):
    # 10 mg/L + 1000 ng/mL = 11 mg/L
    units = {"A": un.unit("mg"), "V": un.unit("L"), "base": un.unit("ng/mL")}
    tree, got = un.check(parse("A / V + base"), units, un.unit(target))
    assert got == un.unit(target)
    assert float(evaluate(tree, {"A": 10.0, "V": 1.0, "base": 1000.0})) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("text", "expected"), [("min(A / V, base)", 1.5), ("max(base, A / V)", 2.0),
                                               ("ifelse(A / V > base, A / V, base)", 2.0),
                                               ("ifelse(A / V < base, A / V, base)", 1.5),
                                               ("ifelse(base < A / V, base, A / V)", 1.5)])
def test_functions_of_two_quantities_compare_them_in_one_unit(text, expected):
    # A/V = 2 mg/L against base = 1500 ng/mL = 1.5 mg/L, results in mg/L
    units = {"A": un.unit("mg"), "V": un.unit("L"), "base": un.unit("ng/mL")}
    tree, _ = un.check(parse(text), units, un.unit("mg/L"))
    assert float(evaluate(tree, {"A": 2.0, "V": 1.0, "base": 1500.0})) == pytest.approx(expected, rel=1e-15)


def test_incompatible_units_are_an_error_naming_both():
    units = {"A": un.unit("mg"), "V": un.unit("L"), "t": un.unit("h")}
    with pytest.raises(un.UnitCheckError, match="mg / L.*h|h.*mg / L"):
        un.check(parse("A / V + t"), units)


@pytest.mark.parametrize(("a", "b", "k"), [("day", "h", 24.0), ("h", "min", 60.0), ("mg", "ug", 1000.0),
                                           ("ng", "mg", 1e-6), ("mL", "L", 1e-3), ("week", "day", 7.0)])
def test_convert_gives_the_textbook_factors(a, b, k):
    assert un.convert(a, b) == k
    assert un.convert(b, a) == pytest.approx(1 / k, rel=1e-15)
