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
HELPERS = """
#include <math.h>
static double _min(double a, double b) { return a < b ? a : b; }
static double _max(double a, double b) { return a > b ? a : b; }
static double _pw(double x, double n) { return pow(x, n); }
static double _hill(double x, double x50, double n) { return pow(x, n) / (pow(x50, n) + pow(x, n)); }
static double _hillc(double x, double x50n, double n) { return pow(x, n) / (x50n + pow(x, n)); }
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("cprint")
    body = [HELPERS]
    for k, text in enumerate(EXPRESSIONS):
        src = ex.to_source(ex.parse(text), lambda n: n, flavour="c")
        body.append(f"double f{k}(double x, double y, double z) {{ return {src}; }}")
    (d / "exprs.c").write_text("\n".join(body))
    subprocess.run([CC, "-O0", "-shared", "-fPIC", "-o", str(d / "exprs.so"), str(d / "exprs.c"), "-lm"], check=True)
    lib = ctypes.CDLL(str(d / "exprs.so"))
    for k in range(len(EXPRESSIONS)):
        getattr(lib, f"f{k}").restype = ctypes.c_double
        getattr(lib, f"f{k}").argtypes = [ctypes.c_double] * 3
    return lib


@pytest.mark.parametrize("k", range(len(EXPRESSIONS)), ids=EXPRESSIONS)
@pytest.mark.parametrize("point", [(1.5, 2.0, 0.75), (4.0, 0.5, 3.0)])
def test_c_source_computes_the_tree(library, k, point):
    x, y, z = point
    want = float(ex.evaluate(ex.parse(EXPRESSIONS[k]), {"x": x, "y": y, "z": z}))
    got = getattr(library, f"f{k}")(x, y, z)
    assert got == pytest.approx(want, rel=1e-14, abs=1e-300)
