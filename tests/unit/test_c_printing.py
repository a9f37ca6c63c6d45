"""Expressions printed as C compute what the expression tree computes (issue 20 mutation audit of expressions.py).

Each expression is printed with ``to_source(..., flavour="c")``, compiled here with the system C compiler into a
small library whose helpers (_pw, _min, _max, _hill, _hillc) are written in this test from their definitions,
called through ctypes, and compared with ``evaluate`` (numpy). Covers every operator and function, negative
literals, precedence and associativity (``-x ** 2``, ``a - (b - c)``, ``2 ** 3 ** 2``) and integer-looking literals
(C would divide 1/2 as integers).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest

from pkpd import expressions as ex

CC = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")

EXPRESSIONS = [
    "1/2 + x", "x - (y - z)", "x - y - z", "x / (y / z)", "x / y / z", "-x ** 2", "(-x) ** 2", "2 ** 3 ** 2",
    "x ** -1", "-(x - y) * z", "exp(-x) + log(y) + log10(z) + sqrt(x) + abs(y - 3)", "min(x, y) - max(y, z)",
    "hill(x, y, z)", "hill(x - 5, y, 2)", "ifelse(x < y, x, y) + ifelse(x >= 1, 10, 20)",
    "ifelse(x == x, 1, 0) + ifelse(x != y, 2, 0) + ifelse(y <= x, 4, 0) + ifelse(z > y, 8, 0)",
    "x * (y + z) - -3.5", "x ** 0.5 * y ** 2.5 / z ** 3",
]
# the internal Hill call (pkpd.compile's rewrite of hill with parameter x50 and n): second argument x50 ** n
HILLC = ex.Call("hillc", (ex.BinOp("-", ex.Name("x"), ex.Num(2.0)), ex.BinOp("**", ex.Name("y"), ex.Name("z")),
                          ex.Name("z")))
HELPERS = """
#include <math.h>
static double _min(double a, double b) { return a < b ? a : b; }
static double _max(double a, double b) { return a > b ? a : b; }
static double _pw(double x, double n) { return pow(x, n); }
static double _hill(double x, double x50, double n) { return pow(x, n) / (pow(x50, n) + pow(x, n)); }
static double _hillc(double x, double x50n, double n) { return pow(x, n) / (x50n + pow(x, n)); }
"""


def _compile(directory) -> ctypes.CDLL:
    """Print every expression as C (with the code under test) and compile them into one library."""
    body = [HELPERS]
    for k, text in enumerate(EXPRESSIONS):
        src = ex.to_source(ex.parse(text), lambda n: n, flavour="c")
        body.append(f"double f{k}(double x, double y, double z) {{ return {src}; }}")
    body.append(f"double hillc(double x, double y, double z) {{ return {ex.to_source(HILLC, str, flavour='c')}; }}")
    (directory / "exprs.c").write_text("\n".join(body))
    subprocess.run([CC, "-O0", "-shared", "-fPIC", "-o", str(directory / "exprs.so"), str(directory / "exprs.c"),
                    "-lm"], check=True)
    lib = ctypes.CDLL(str(directory / "exprs.so"))
    for name in [f"f{k}" for k in range(len(EXPRESSIONS))] + ["hillc"]:
        getattr(lib, name).restype = ctypes.c_double
        getattr(lib, name).argtypes = [ctypes.c_double] * 3
    return lib


def test_c_sources_compute_the_trees(tmp_path):
    # one test (one compile) for all expressions, so that printing is exercised by the test that checks it (a
    # module-scoped fixture would print everything once, before the tests that check the values)
    lib = _compile(tmp_path)
    wrong = []
    for point in [(1.5, 2.0, 0.75), (4.0, 0.5, 3.0)]:
        x, y, z = point
        for k, text in enumerate(EXPRESSIONS):
            want = float(ex.evaluate(ex.parse(text), {"x": x, "y": y, "z": z}))
            got = getattr(lib, f"f{k}")(x, y, z)
            if got != pytest.approx(want, rel=1e-14, abs=1e-300):
                wrong.append(f"{text} at {point}: C {got!r}, tree {want!r}")
        # the internal Hill call: x clamped at 0 as in hill, second argument x50 ** n
        xc = max(x - 2.0, 0.0)
        want = xc**z / (y**z + xc**z)
        if lib.hillc(x, y, z) != pytest.approx(want, rel=1e-14, abs=1e-300):
            wrong.append(f"hillc at {point}: C {lib.hillc(x, y, z)!r}, expected {want!r}")
    assert not wrong, "\n".join(wrong)
