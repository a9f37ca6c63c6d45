"""Properties of the expression language over generated expression trees (issue 20, mutation audit).

Every transformation of a tree must keep its value: the simplifying constructors (``add``, ``mul``...), the symbolic
derivative (against central finite differences of the evaluated expression), substitution, printing back to model
text (and parsing again) and printing to Python source (numpy and scalar flavours, evaluated here with numpy/math
and an independent Hill function). The trees use every operator and function of the language. The numerical
properties run a fixed (derandomised) set of examples, so that the suite gives the same verdict on every run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pkpd import expressions as ex

NAMES = ("x", "y", "z")
leaves = st.one_of(st.sampled_from([ex.Num(v) for v in (0.0, 1.0, -1.0, 2.0, 0.5, 3.7)]),
                   st.sampled_from([ex.Name(n) for n in NAMES]))


def _extend(children):
    binop = st.builds(ex.BinOp, st.sampled_from(["+", "-", "*", "/"]), children, children)
    power = st.builds(ex.BinOp, st.just("**"), children, st.sampled_from([ex.Num(v) for v in (2.0, 3.0, 0.5, -1.0)]))
    unary = st.builds(ex.Neg, children)
    one = st.builds(lambda f, a: ex.Call(f, (a,)), st.sampled_from(["exp", "log", "log10", "sqrt", "abs"]), children)
    two = st.builds(lambda f, a, b: ex.Call(f, (a, b)), st.sampled_from(["min", "max"]), children, children)
    hill = st.builds(lambda a, b, n: ex.Call("hill", (a, b, n)), children, children,
                     st.sampled_from([ex.Num(1.0), ex.Num(2.5), ex.Name("z")]))
    cond = st.builds(ex.Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children, children)
    ifelse = st.builds(lambda c, a, b: ex.Call("ifelse", (c, a, b)), cond, children, children)
    return st.one_of(binop, power, unary, one, two, hill, ifelse)


trees = st.recursive(leaves, _extend, max_leaves=8)
points = st.fixed_dictionaries({n: st.floats(min_value=0.3, max_value=3.0) for n in NAMES})


def value(tree, env) -> float:
    with np.errstate(all="ignore"):
        try:
            out = np.asarray(ex.evaluate(tree, {k: np.float64(v) for k, v in env.items()}))
        except (ValueError, OverflowError, ZeroDivisionError):  # Python-float constants: 0.0 ** -1
            return math.nan
    # a negative base to a fractional power of Python-float constants is complex: outside the model domain
    return math.nan if np.iscomplexobj(out) else float(out)


def close(a: float, b: float, rtol: float = 1e-9) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= rtol * max(abs(a), abs(b), 1e-300)


@settings(derandomize=True)
@given(trees, trees, points)
def test_simplifying_constructors_keep_the_value(a, b, env):
    va, vb = value(a, env), value(b, env)
    assume(all(math.isfinite(v) and abs(v) < 1e6 for v in (va, vb)))
    with np.errstate(all="ignore"):
        expected = {ex.add: va + vb, ex.sub: va - vb, ex.mul: va * vb, ex.neg: -va}
        if vb != 0:
            expected[ex.div] = va / vb
        if va > 0 and abs(vb) < 5:
            expected[ex.power] = va ** vb
    for build, want in expected.items():
        got = value(build(a) if build is ex.neg else build(a, b), env)
        assert close(got, want, 1e-12), build.__name__


def subtrees(tree):
    yield tree
    for child in (getattr(tree, "left", None), getattr(tree, "right", None), getattr(tree, "operand", None),
                  *getattr(tree, "args", ())):
        if child is not None:
            yield from subtrees(child)


def in_domain(tree, env) -> bool:
    """Every sub-expression finite, and every Hill function with a positive x50 and n (as a model has them)."""
    for s in subtrees(tree):
        if isinstance(s, ex.Compare):
            continue
        if not math.isfinite(value(s, env)):
            return False
        if isinstance(s, ex.Call) and s.func == "hill" and not (value(s.args[1], env) > 0 < value(s.args[2], env)):
            return False
    return True


def differentiable(tree, env, name) -> bool:
    """Away from the singular points of sqrt and of fractional powers at 0, and from a Hill function whose input (at
    or below 0) and exponent both depend on the variable (0/0 in the chain rule; no model writes one)."""
    for s in subtrees(tree):
        if isinstance(s, ex.Call) and s.func == "sqrt" and not value(s.args[0], env) > 1e-9:
            return False
        if (isinstance(s, ex.BinOp) and s.op == "**" and value(s.right, env) < 1
                and not abs(value(s.left, env)) > 1e-9):
            return False
        if (isinstance(s, ex.Call) and s.func == "hill" and value(s.args[0], env) <= 0
                and name in ex.names(s.args[0]) and name in ex.names(s.args[2])):
            return False
    return True


@settings(max_examples=200, derandomize=True)
@given(trees, points, st.sampled_from(NAMES))
def test_the_derivative_equals_central_differences(tree, env, name):
    f0 = value(tree, env)
    assume(math.isfinite(f0) and abs(f0) < 1e6)
    assume(in_domain(tree, env))
    assume(differentiable(tree, env, name))
    h = 1e-6 * env[name]

    def at(dx):
        return value(tree, {**env, name: env[name] + dx})

    right, left = (at(h) - f0) / h, (f0 - at(-h)) / h
    assume(all(math.isfinite(v) for v in (right, left)))
    # a kink (abs, min, max, ifelse, hill at 0) within h: the one-sided slopes differ, skip that point
    assume(abs(right - left) <= 1e-3 * max(1.0, abs(right), abs(left)))
    central = (at(h) - at(-h)) / (2 * h)
    derivative = value(ex.differentiate(tree, name), env)
    assert derivative == pytest.approx(central, rel=1e-4, abs=1e-4 * max(1.0, abs(f0)))


@given(trees, trees, points)
def test_substitution_is_evaluation_with_the_substituted_value(tree, replacement, env):
    v = value(replacement, env)
    assume(math.isfinite(v))
    got = value(ex.substitute(tree, {"x": replacement}), env)
    want = value(tree, {**env, "x": v})
    assert close(got, want, 1e-12)


@given(trees, points)
def test_model_text_round_trip_keeps_the_value(tree, env):
    again = ex.parse(ex.to_text(tree))
    assert close(value(again, env), value(tree, env), 1e-12)
    assert ex.names(again) == ex.names(tree)


def _hill(x, x50, n):  # independent of pkpd's: x^n / (x50^n + x^n)
    return x**n / (x50**n + x**n)


@settings(derandomize=True)
@given(trees, points)
def test_python_sources_evaluate_like_the_tree(tree, env):
    want = value(tree, env)
    assume(in_domain(tree, env))
    numpy_src = ex.to_source(tree, lambda n: f"env[{n!r}]", flavour="numpy")
    math_src = ex.to_source(tree, lambda n: f"env[{n!r}]", flavour="math")
    namespace = {"np": np, "math": math, "env": {k: np.float64(v) for k, v in env.items()}, "_hill": _hill,
                 "max": max, "min": min, "abs": abs}
    assume(math.isfinite(want))
    got = []
    for src in (numpy_src, math_src):
        with np.errstate(all="ignore"):
            try:
                out = eval(src, namespace)  # noqa: S307 - code printed by pkpd from a generated tree
            except (ValueError, OverflowError, ZeroDivisionError):
                out = math.nan              # math and Python floats raise where numpy gives nan/inf
        got.append(math.nan if np.iscomplexobj(out) else float(out))
    assert close(got[0], want, 1e-12)
    if math.isfinite(got[1]):
        assert close(got[1], want, 1e-12)


def test_the_hill_coefficient_derivative_at_zero_input_is_zero():
    # found by the property above: d hill(x, x50, n)/dn was 0 * log(0) = NaN at x = 0 (a state before its first
    # dose), which made forward sensitivities of an estimated Hill coefficient NaN. The closed form is
    # hill (1 - hill) log(x / x50) for x > 0, and 0 at x = 0 (hill is 0 for every n > 0).
    tree = ex.differentiate(ex.parse("hill(x, x50, n)"), "n")
    x = np.array([0.0, 0.5, 1.0, 4.0])
    with np.errstate(all="raise"):
        got = ex.evaluate(tree, {"x": x, "x50": np.float64(2.0), "n": np.float64(1.5)})
    h = x[1:] ** 1.5 / (2.0**1.5 + x[1:] ** 1.5)
    np.testing.assert_allclose(got, np.r_[0.0, h * (1 - h) * np.log(x[1:] / 2.0)], rtol=1e-12)


def test_the_hill_derivative_below_zero_input_is_zero():
    # found by the derivative property: with n < 1, d hill(x, x50, n)/dx at a slightly negative x (a state below 0
    # by solver noise, clipped to 0) was 0 ** (n - 1) * 0 = NaN, a NaN Jacobian for the stiff solver; hill is 0 and
    # flat there, so its derivative is 0 (and at x > 0 it is n x^(n-1) x50^n / (x50^n + x^n)^2)
    tree = ex.differentiate(ex.parse("hill(x, x50, n)"), "x")
    x = np.array([-1e-12, -0.5, 0.5, 2.0])
    with np.errstate(all="ignore"):
        got = ex.evaluate(tree, {"x": x, "x50": np.float64(1.0), "n": np.float64(0.5)})
    xp = x[2:]
    np.testing.assert_allclose(got, np.r_[0.0, 0.0, 0.5 * xp**-0.5 / (1 + xp**0.5) ** 2], rtol=1e-12)
