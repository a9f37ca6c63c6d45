"""Printing expressions: model text with minimal parentheses, and Python source in the scalar and array flavours
(issue 20 mutation audit of expressions.py).

The expected values are written in each test from the expression itself (plain Python/numpy arithmetic), never
taken from pkpd. The two Python flavours are evaluated where they are meant to run: the scalar ("math") source with
``math`` and the builtins ``min``/``max``/``abs`` only, the array ("numpy") source on arrays with ``np`` only, so a
source that borrows the other flavour's functions fails to run (``max`` of an array, a Python ``if`` on an array).
The C flavour is tested in test_c_printing.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pkpd import expressions as ex

# text as written -> text printed back (minimal parentheses, integers without ".0")
TEXTS = [
    ("a - (b - c)", "a - (b - c)"),
    ("a - b - c", "a - b - c"),
    ("(a - b) - c", "a - b - c"),
    ("a / (b * c)", "a / (b * c)"),
    ("a * b / c", "a * b / c"),
    ("(a + b) * c", "(a + b) * c"),
    ("2 ** 3 ** 2", "2 ** 3 ** 2"),
    ("(2 ** 3) ** 2", "(2 ** 3) ** 2"),
    ("-x ** 2", "-x ** 2"),
    ("(-x) ** 2", "(-x) ** 2"),
    ("(-2) ** 2", "(-2) ** 2"),
    ("-2", "-2"),
    ("-x", "-x"),
    ("- -x", "-(-x)"),
    ("x * -2", "x * (-2)"),
    ("-(x - y) * z", "-(x - y) * z"),
    ("2 * x + 2.5", "2 * x + 2.5"),
    ("1e20 * x", "1e+20 * x"),
    ("ifelse(x < y, 1, 2)", "ifelse(x < y, 1, 2)"),
    ("hill(x, 2, 3) + min(x, y) - max(x, 0)", "hill(x, 2, 3) + min(x, y) - max(x, 0)"),
]


@pytest.mark.parametrize("text, printed", TEXTS, ids=[t for t, _ in TEXTS])
def test_model_text_has_minimal_parentheses(text, printed):
    assert ex.to_text(ex.parse(text)) == printed


def test_a_negative_base_keeps_its_parentheses_in_the_value():
    # (-2) ** 2 = 4, but -2 ** 2 = -4 in Python: the printed text must read back to the same value
    tree = ex.BinOp("**", ex.Num(-2.0), ex.Num(2.0))
    assert eval(ex.to_text(tree)) == 4.0  # noqa: S307 - a fixed literal printed by pkpd
    assert ex.to_source(tree, str) == "(-2.0) ** 2.0"


def _hill(x, x50, n):
    return x**n / (x50**n + x**n)


# expression, its value written out in Python (numpy functions, so the same lambda serves scalars and arrays)
CASES = [
    ("exp(-x) + log(y) + log10(z) + sqrt(x)", lambda x, y, z: np.exp(-x) + np.log(y) + np.log10(z) + np.sqrt(x)),
    ("abs(y - 3) * 2", lambda x, y, z: np.abs(y - 3) * 2),
    ("min(x, y) - max(y, z)", lambda x, y, z: np.minimum(x, y) - np.maximum(y, z)),
    ("hill(x, y, z)", lambda x, y, z: _hill(x, y, z)),
    ("hill(x - 2, y, 2)", lambda x, y, z: _hill(np.maximum(x - 2, 0.0), y, 2)),
    ("ifelse(x < y, x, y) + ifelse(z >= 1, 10, 20)",
     lambda x, y, z: np.where(x < y, x, y) + np.where(z >= 1, 10, 20)),
    ("x - (y - z) * (-2) ** 2", lambda x, y, z: x - (y - z) * 4.0),
    ("-(x - y) / z ** -1", lambda x, y, z: -(x - y) * z),
    ("2 ** 3 ** 2 * x", lambda x, y, z: 512.0 * x),
]
X = np.array([0.5, 1.5, 4.0])
Y = np.array([2.0, 0.75, 3.0])
Z = np.array([0.8, 3.0, 1.0])


@pytest.mark.parametrize("text, value", CASES, ids=[t for t, _ in CASES])
def test_scalar_source_runs_with_math_and_builtins_only(text, value):
    src = ex.to_source(ex.parse(text), lambda n: n)           # the default flavour: "math"
    assert ex.to_source(ex.parse(text), lambda n: n, flavour="math") == src
    for k in range(X.size):
        namespace = {"__builtins__": {"max": max, "min": min, "abs": abs}, "math": math, "_hill": _hill,
                     "x": float(X[k]), "y": float(Y[k]), "z": float(Z[k])}
        got = eval(src, namespace)  # noqa: S307 - code printed by pkpd from a fixed expression
        assert got == pytest.approx(float(value(X[k], Y[k], Z[k])), rel=1e-13)


@pytest.mark.parametrize("text, value", CASES, ids=[t for t, _ in CASES])
def test_array_source_runs_on_arrays_with_numpy_only(text, value):
    src = ex.to_source(ex.parse(text), lambda n: n, flavour="numpy")
    namespace = {"__builtins__": {}, "np": np, "_hill": _hill, "x": X, "y": Y, "z": Z}
    got = eval(src, namespace)  # noqa: S307 - code printed by pkpd from a fixed expression
    np.testing.assert_allclose(got, value(X, Y, Z), rtol=1e-13)


@pytest.mark.parametrize("flavour, inf, nan, namespace", [
    ("math", "math.inf", "math.nan", {"math": math}),
    ("numpy", "np.inf", "np.nan", {"np": np}),
    ("c", "INFINITY", "NAN", None),
])
def test_non_finite_constants_are_spelled_in_the_flavour(flavour, inf, nan, namespace):
    # a constant that folding made infinite or NaN: never the bare word 'inf' (an unknown name)
    assert ex.to_source(ex.Num(math.inf), str, flavour=flavour) == inf
    assert ex.to_source(ex.Num(-math.inf), str, flavour=flavour) == f"-{inf}"
    assert ex.to_source(ex.Num(math.nan), str, flavour=flavour) == nan
    assert ex.to_source(ex.Num(2.0), str, flavour=flavour) == "2.0"
    if namespace is not None:
        assert eval(ex.to_source(ex.Num(-math.inf), str, flavour=flavour), namespace) == -math.inf  # noqa: S307
    assert ex.to_source(ex.Num(math.inf), str) == "math.inf"  # the default flavour is the scalar one
