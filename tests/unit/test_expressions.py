"""The allow-list expression language: parsing, printing, evaluation and symbolic derivatives."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkpd import expressions as ex


@pytest.mark.parametrize("text", ["a + b * c", "-(a - b) / c", "a ** 2", "exp(-k * t)", "hill(P, EC50, h)",
                                  "ifelse(t < 24, a, b)", "max(a, 0) + min(b, 1)", "log10(x) + sqrt(y) + abs(z)"])
def test_text_round_trip(text):
    tree = ex.parse(text)
    assert ex.parse(ex.to_text(tree)) == tree


def test_caret_is_power():
    assert ex.parse("a ^ 2") == ex.parse("a ** 2")


@pytest.mark.parametrize("code,fragment", [
    ("__import__('os')", "not allowed"),
    ("a.b", "Attribute"),
    ("a[0]", "Subscript"),
    ("'x'", "only numbers"),
    ("lambda: 1", "Lambda"),
    ("eval('1')", "function 'eval' is not allowed"),
    ("a < b", "comparisons are allowed only"),
    ("exp(x, y)", "takes 1 argument"),
    ("ifelse(a, b, c)", "must be a comparison"),
    ("_secret + 1", "may not start with '_'"),
    ("a +", "syntax error"),
    ("", "empty"),
    ("True + 1", "only numbers"),
    ("exp", "must be called"),
])
def test_rejected(code, fragment):
    with pytest.raises(ex.ExpressionError, match=fragment):
        ex.parse(code)


def test_evaluate_vectorised():
    tree = ex.parse("ifelse(t >= 1, a * exp(-t), 0)")
    t = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(ex.evaluate(tree, {"t": t, "a": 2.0}), [0.0, 2 * math.exp(-1), 2 * math.exp(-2)])


def test_hill_treats_negative_input_as_zero():
    assert ex.evaluate(ex.parse("hill(x, 1, 1.5)"), {"x": -1e-12}) == 0.0


NAMES = ["x", "y"]
FUNCS = ["exp", "log", "sqrt", "hill"]


def _expressions():
    leaf = st.one_of(st.sampled_from(NAMES), st.floats(0.5, 3.0).map(lambda v: f"{v:.3f}"))

    def extend(children):
        return st.one_of(
            st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
                lambda p: f"({p[0]} {p[1]} {p[2]})"),
            children.map(lambda c: f"exp(0.1 * {c})"),
            children.map(lambda c: f"log(1 + {c} * {c})"),
            children.map(lambda c: f"sqrt(1 + {c} * {c})"),
            st.tuples(children, children).map(lambda p: f"hill(1 + {p[0]} * {p[0]}, 2, 1.5)"),
            children.map(lambda c: f"({c}) ** 2"),
        )

    return st.recursive(leaf, extend, max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(_expressions(), st.floats(0.5, 2.0), st.floats(0.5, 2.0))
def test_derivative_matches_central_differences(text, x, y):
    tree = ex.parse(text)
    env = {"x": x, "y": y}
    with np.errstate(all="ignore"):
        f0 = ex.evaluate(tree, env)
        if not np.isfinite(f0) or abs(f0) > 1e8:
            return
        for name in NAMES:
            d = float(ex.evaluate(ex.differentiate(tree, name), env))
            h = 1e-6 * max(1.0, abs(env[name]))
            hi = float(ex.evaluate(tree, env | {name: env[name] + h}))
            lo = float(ex.evaluate(tree, env | {name: env[name] - h}))
            fd = (hi - lo) / (2 * h)
            assert d == pytest.approx(fd, rel=1e-4, abs=1e-4 * max(1.0, abs(f0)))


# ---------------------------------------------------------------------------------------------------------- units
def test_the_unit_table_converts_exactly_as_pint():
    # pkpd.units.convert skips pint for common units: every pair must give pint's factor, bit for bit
    from pkpd import units as un

    names = list(un._SIMPLE)
    for a in names:
        for b in names:
            if un._SIMPLE[a][0] == un._SIMPLE[b][0]:
                assert un.convert(a, b) == un.factor(un.unit(a), un.unit(b)), (a, b)
            else:
                with pytest.raises(un.UnitCheckError):
                    un.convert(a, b)


def test_convert_falls_back_to_pint_and_names_bad_units():
    from pkpd import units as un

    assert un.convert("mg/kg", "ug/kg") == 1000.0
    assert un.convert(" h ", "min") == 60.0
    with pytest.raises(un.UnitCheckError, match="'flurbs' is not recognised"):
        un.convert("flurbs", "h")
    with pytest.raises(un.UnitCheckError, match=r"cannot convert .* \(dimensions \[length\] vs \[time\]\)"):
        un.convert("furlongs", "h")
    with pytest.raises(un.UnitCheckError, match="must be a string"):
        un.convert(None, "h")


def test_c_source_prints_doubles_and_c_calls():
    # generated C must never do integer division (1/2 == 0 in C) and spells the functions as C does
    tree = ex.parse("1/2 + x ** 2 + abs(x) + min(x, 3) + ifelse(x < 1, 2, 3) + hill(x, 2, 1.5)")
    src = ex.to_source(tree, lambda n: n, flavour="c")
    assert "1.0 / 2.0" in src and "_pw(x, 2.0)" in src and "fabs(x)" in src and "_min(x, 3.0)" in src
    assert "((x < 1.0) ? (2.0) : (3.0))" in src and "_hill(_max(x, 0.0), 2.0, 1.5)" in src


def test_derivative_of_a_constant_power_is_finite_where_the_base_is_zero():
    # d/dx (x**2 + 3 x**3) = 2x + 9x**2: 0 at x = 0 (a state before the first dose); the general rule
    # a**b * (b' log a + b a'/a) would give 0 * inf = NaN there
    d = ex.differentiate(ex.parse("x ** 2 + 3 * x ** 3"), "x")
    for x in (0.0, -1.5, 2.0):
        assert float(ex.evaluate(d, {"x": x})) == pytest.approx(2 * x + 9 * x**2, rel=1e-14, abs=0.0)
