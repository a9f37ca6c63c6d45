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


# ---- the unit algebra of every node (mutation audit of units.py) ---------------------------------------------------
U = {"A": "mg", "B": "ug", "V": "L", "C": "ng/mL", "EC50": "mg/L", "h": "1", "k": "1/h", "t": "h", "n": "1"}


def checked(text, target=None, **values):
    units = {k: un.unit(v) for k, v in U.items()}
    tree, got = un.check(parse(text), units, un.unit(target) if target else None)
    env = {"A": 10.0, "B": 500.0, "V": 2.0, "C": 1500.0, "EC50": 3.0, "h": 2.0, "k": 0.5, "t": 4.0, "n": 1.5}
    env.update(values)
    return float(evaluate(tree, env)), got


@pytest.mark.parametrize(("text", "unit", "expected"), [
    ("A ** 2", "mg**2", 100.0),                               # a numeric exponent raises the unit to it
    ("sqrt(A ** 2)", "mg", 10.0),
    ("(C / EC50) ** h", "1", (1.5 / 3.0) ** 2),               # ng/mL over mg/L, converted inside the power
    ("exp(-(B / A))", "1", 2.718281828459045 ** -0.05),       # 500 ug / 10 mg = 0.05
    ("log(B / A)", "1", -2.995732273553991),
    ("log10(A / B)", "1", 1.3010299956639813),                # 10 mg / 500 ug = 20
    ("hill(C, EC50, h)", "1", 1.5**2 / (3.0**2 + 1.5**2)),    # C (ng/mL) in EC50's mg/L
    ("hill(EC50, C, h)", "1", 3.0**2 / (1.5**2 + 3.0**2)),
    ("abs(-A)", "mg", 10.0),
    ("-(A - B)", "mg", -9.5),
    ("A - B", "mg", 9.5),
    ("B - A", "ug", -9500.0),
    ("A * k * t", "mg", 20.0),
    ("A / V - C", "mg/L", 5.0 - 1.5),
    ("0 + A", "mg", 10.0),                                    # a zero literal fits any unit
    ("A + 0", "mg", 10.0),
    ("A ** n", "1", 10.0**1.5),                               # n is a dimensionless name: A must be too... (below)
])
def test_each_node_gets_its_unit_and_conversion(text, unit, expected):
    if text == "A ** n":
        with pytest.raises(un.UnitCheckError, match="base of a power with a non-numeric exponent must be "
                                                    "dimensionless; 'A' is in mg"):
            checked(text)
        value, got = checked("(A / B) ** n")                 # 10 mg / 500 ug = 20, dimensionless
        assert got == un.unit("1") and value == pytest.approx(20.0**1.5, rel=1e-14)
        return
    value, got = checked(text)
    assert un.compatible(got, un.unit(unit)) and un.factor(got, un.unit(unit)) == 1.0, (un.fmt(got), unit)
    assert value == pytest.approx(expected, rel=1e-14)


def test_an_exponent_must_be_dimensionless():
    with pytest.raises(un.UnitCheckError, match="an exponent must be dimensionless; 't' is in h"):
        checked("(A / B) ** t")


@pytest.mark.parametrize(("text", "fragment"), [
    ("exp(A)", "the argument of exp\\(\\) must be dimensionless; 'A' is in mg"),
    ("log10(t)", "the argument of log10\\(\\) must be dimensionless; 't' is in h"),
    ("hill(A, t, h)", "'A' is in mg but 't' is in h"),
    ("hill(A, B, t)", "the Hill coefficient must be dimensionless"),
    ("min(A, t)", "'A' is in mg but 't' is in h"),
    ("ifelse(A < t, 1, 2)", "'A' is in mg but 't' is in h"),
    ("ifelse(A < B, A, t)", "'A' is in mg but 't' is in h"),
    ("A + t", "'A' is in mg but 't' is in h"),
    ("W + 1", "name 'W' has no unit"),
])
def test_incompatible_nodes_are_named(text, fragment):
    with pytest.raises(un.UnitCheckError, match=fragment):
        checked(text)


def test_the_declared_unit_is_checked_and_converted_to():
    assert checked("A / V", "ng/mL")[0] == 5000.0
    assert checked("A", "g")[0] == pytest.approx(0.01, rel=1e-15)
    assert checked("0", "mg/L")[0] == 0.0                   # zero fits any declared unit
    with pytest.raises(un.UnitCheckError, match=r"has unit mg / L but h is declared \(dimensions "
                                                r"\[mass\] / \[length\] \*\* 3 vs \[time\]\)"):
        checked("A / V", "h")
    with pytest.raises(un.UnitCheckError, match=r"dimensions none vs \[time\]"):
        checked("A / B", "h")


def test_a_bare_number_is_read_in_the_unit_given_for_it():
    tree, got = un.check(parse("10"), {}, bare_number_unit=un.unit("mg"))
    assert got == un.unit("mg") and evaluate(tree, {}) == 10.0


def test_conversion_factors_are_inserted_only_where_needed():
    units = {k: un.unit(v) for k, v in U.items()}
    assert parse("A + A") == un.check(parse("A + A"), units)[0]        # same unit: the tree is unchanged
    assert "1000" in str(un.check(parse("A + B"), units, un.unit("ug"))[0])


@pytest.mark.parametrize(("text", "shown"), [("mL", "mL"), ("ng/mL", "ng / mL"), ("L/h", "L / h"), ("1", "1"),
                                             ("pg/cell/h", "pg / cells / h"), ("uL", "µL")])
def test_units_are_shown_as_pharmacology_writes_them(text, shown):
    assert un.fmt(un.unit(text)) == shown


@pytest.mark.parametrize("text", ["1", "", "dimensionless", "fraction", "ratio", "-", " 1 "])
def test_dimensionless_spellings(text):
    assert un.unit(text) == un.unit("1") and un.compatible(un.unit(text), un.unit("mg/mg"))


def test_cells_have_a_dimension_of_their_own():
    assert not un.compatible(un.unit("cell"), un.unit("1"))
    assert un.convert("cells", "cell") == 1.0
    assert un.factor(un.unit("pg/cell"), un.unit("ng/cell")) == 1e-3
    with pytest.raises(un.UnitCheckError, match=r"\[cell_count\] vs \[mass\]"):
        un.factor(un.unit("cell"), un.unit("mg"))


def test_unknown_units_are_refused_with_pint_spellings():
    with pytest.raises(un.UnitCheckError, match="unit 'mgg/L' is not recognised.*'1/h', 'pg/mL'"):
        un.unit("mgg/L")
    with pytest.raises(un.UnitCheckError, match="a unit must be a string; got 3"):
        un.unit(3)


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("min(A / V, C)", {"A": 2.0}, 1.0),                     # A/V = 1 mg/L < C = 1500 ng/mL (1.5 mg/L)
    ("min(C, A / V)", {"A": 2.0}, 1.0),
    ("max(A / V, C)", {"A": 2.0}, 1.5),
    ("max(A / V, C)", {"A": 6.0}, 3.0),
])
def test_min_and_max_compare_both_arguments_in_one_unit(text, values, expected):
    assert checked(text, "mg/L", **values)[0] == pytest.approx(expected, rel=1e-14)


def test_convert_names_a_non_string_unit_on_either_side():
    with pytest.raises(un.UnitCheckError, match="a unit must be a string; got None"):
        un.convert("h", None)
    with pytest.raises(un.UnitCheckError, match="a unit must be a string; got 5"):
        un.convert(5, "h")
