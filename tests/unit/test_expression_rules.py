"""Rules of the expression language that the other expression tests leave unguarded (issue 20, the mutation audit of
``pkpd/expressions.py``): the allow-list's edges (length, nesting depth, Unicode, numbers, operators, calls), its
messages naming the offending piece in the whole text, code payloads that must never run, the evaluation of every
operator and function against Python's own arithmetic, and the tree shapes the rest of pkpd relies on (negative
literals folded into numbers, simplified derivatives with exact zeros).
"""

from __future__ import annotations

import math
import operator
import sys

import numpy as np
import pytest

import pkpd
from pkpd import expressions as ex
from pkpd.errors import ModelFileError
from pkpd.load import dump_model

ALLOWED = "abs, exp, hill, ifelse, log, log10, max, min, sqrt"


def rejected(text) -> str:
    with pytest.raises(ex.ExpressionError) as info:
        ex.parse(text)
    assert type(info.value) is ex.ExpressionError
    return str(info.value)


# ---------------------------------------------------------------------------------------------------- code payloads
def payloads(sentinel) -> list[str]:
    """Expressions that would create ``sentinel`` if any part of them ran as Python."""
    s = str(sentinel)
    return [
        f"__import__('os').system('touch {s}')",
        f"os.system('touch {s}')",
        f"exec(\"open('{s}', 'w')\")",
        f"eval(\"open('{s}', 'w')\")",
        f"open('{s}', 'w')",
        f"(lambda: open('{s}', 'w'))()",
        f"[open('{s}', 'w') for _ in (1,)]",
        f"1 if open('{s}', 'w') else 2",
        f"(f := open('{s}', 'w'))",
        f"f\"{{open('{s}', 'w')}}\"",
        f"ifelse(open('{s}', 'w') < 1, 1, 2)",
        f"exp(*open('{s}', 'w'))",
        f"max(**{{'x': open('{s}', 'w')}})",
        f"exp.__globals__['__builtins__']['open']('{s}', 'w')",
        f"x + ().__class__.__base__.__subclasses__()[0]('{s}')",
        f"hill(x, 1, open('{s}', 'w'))",
        f"-open('{s}', 'w')",
    ]


def test_code_payloads_are_rejected_before_anything_runs(sentinel):
    # the sentinel fixture fails the test if the file exists afterwards: nothing ran, not only "an error was raised"
    for text in payloads(sentinel):
        message = rejected(text)
        assert "not allowed" in message or "only numbers" in message, (text, message)
    assert not sentinel.exists()


def test_a_model_file_whose_equation_is_a_payload_is_refused_at_load(tmp_path, sentinel):
    clean = dump_model(pkpd.load_model("pk_1cmt_iv"))
    assert 'ddt = "-ke * central"' in clean
    for k, text in enumerate(payloads(sentinel)):
        toml = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        path = tmp_path / f"evil{k}.toml"
        path.write_text(clean.replace('ddt = "-ke * central"', f"ddt = {toml}"))
        with pytest.raises(ModelFileError, match=r"\[states\.central\] ddt: "):
            pkpd.load_model(path)
        assert not sentinel.exists(), text


@pytest.mark.parametrize("name", ["__builtins__", "__import__", "_x"])
def test_names_starting_with_an_underscore_are_rejected(name):
    # dunder names are the way from an expression to Python's internals
    text = f"1 + {name}"
    assert rejected(text) == f"names may not start with '_' in {text!r}; got {name!r}"


def test_an_attribute_call_is_rejected_with_its_dotted_name():
    text = "os.system(1)"
    assert rejected(text) == f"function 'os.system' is not allowed in 'os.system(1)'; allowed: {ALLOWED}"
    assert rejected("eval(1)") == f"function 'eval' is not allowed in 'eval(1)'; allowed: {ALLOWED}"


# ---------------------------------------------------------------------------------------------------- the allow-list
@pytest.mark.parametrize("op", ["//", "%", "@", "<<", ">>", "|", "&"])
def test_operators_outside_the_language_are_rejected(op):
    text = f"a {op} b"
    assert rejected(text) == f"BinOp is not allowed in model expressions: {text!r} in {text!r}"


@pytest.mark.parametrize("text,piece", [("not a", "not a"), ("~a", "~a")])
def test_unary_operators_other_than_minus_and_plus_are_rejected(text, piece):
    assert rejected(text) == f"UnaryOp is not allowed in model expressions: {piece!r} in {text!r}"


@pytest.mark.parametrize(
    "text,kind,piece",
    [
        ("a if b else c", "IfExp", "a if b else c"),
        ("a and b", "BoolOp", "a and b"),
        ("exp(*a)", "Starred", "*a"),
        ("(a, b)", "Tuple", "(a, b)"),
    ],
)
def test_other_syntax_is_rejected_naming_the_piece(text, kind, piece):
    assert rejected(text) == f"{kind} is not allowed in model expressions: {piece!r} in {text!r}"


@pytest.mark.parametrize(
    "text",
    [
        "x + a // b",
        "a // b + x",
        "-(a // b)",
        "ifelse(a // b < 1, 1, 2)",
        "ifelse(x < a // b, 1, 2)",
        "exp(a // b)",
        "hill(x, 1, a // b)",
    ],
)
def test_a_rejected_piece_anywhere_is_reported_with_the_whole_expression(text):
    # every level passes the whole text down, so the message shows where the piece is
    assert rejected(text) == f"BinOp is not allowed in model expressions: 'a // b' in {text!r}"


@pytest.mark.parametrize("cond", ["a < b < c", "a in b", "a not in b", "a is b", "a is not b"])
def test_a_condition_is_one_of_the_six_comparisons(cond):
    text = f"ifelse({cond}, 1, 2)"
    assert rejected(text) == f"use one comparison (<, <=, >, >=, ==, !=) per condition, in {text!r}"


def test_double_star_keyword_arguments_are_rejected():
    assert rejected("exp(**k)") == "keyword arguments are not allowed in 'exp(**k)'"


@pytest.mark.parametrize(
    "text,got", [("a + 1j", "1j"), ("None", "None"), ("...", "Ellipsis"), ("b'x'", "b'x'"), ("False * a", "False")]
)
def test_only_real_numbers_are_constants(text, got):
    assert rejected(text) == f"only numbers are allowed as constants in {text!r}; got {got}"


@pytest.mark.parametrize(
    "text,literal",
    [
        ("2 ^ 1e999", "1e999"),
        ("x ^ 2 + 1" + "0" * 400, "1" + "0" * 29),  # an integer too large for a double: float() overflows
    ],
)
def test_numbers_beyond_double_precision_are_rejected_naming_the_literal(text, literal):
    assert rejected(text) == (
        f"number {literal!r} in {text!r:.200} is not a finite double-precision number (at most about 1.8e308)"
    )


def test_the_largest_double_is_accepted():
    assert ex.parse("1.7976931348623157e308") == ex.Num(sys.float_info.max)


def test_an_expression_must_be_a_string():
    assert rejected(5) == "an expression must be a string; got int 5"
    assert rejected(None) == "an expression must be a string; got NoneType None"


def test_the_length_limit_is_inclusive():
    at_limit = "x" + " " * (ex.MAX_LENGTH - 1)
    assert len(at_limit) == ex.MAX_LENGTH
    assert ex.parse(at_limit) == ex.Name("x")
    assert rejected(at_limit + " ") == f"expression is longer than {ex.MAX_LENGTH} characters"


def test_surrounding_whitespace_is_ignored_and_blank_text_is_empty():
    assert ex.parse("  \n a + 1 \t ") == ex.parse("a + 1")
    assert rejected(" \n\t ") == "expression is empty"


def test_names_that_unicode_normalisation_would_change_are_rejected_naming_the_character():
    text = "x + \ufb01"  # the ligature 'fi', which Python's parser would read as the name 'fi'
    assert rejected(text) == (
        f"{text!r} contains '\ufb01' (U+FB01), which Unicode normalisation (NFKC) changes "
        "to 'fi'; write names in that form"
    )
    # a name already in normal form is accepted as written
    assert ex.parse("caf\u00e9 * 2") == ex.BinOp("*", ex.Name("caf\u00e9"), ex.Num(2.0))


def chain(levels: int) -> str:
    return " + ".join(["x"] * (levels + 1))


def test_the_depth_limit_is_inclusive_for_chains_calls_and_minus_signs():
    n = ex.MAX_DEPTH
    assert float(ex.evaluate(ex.parse(chain(n)), {"x": 1.0})) == n + 1
    assert rejected(chain(n + 1)) == (
        f"expression nested or chained {n + 1} levels deep, more than the {n} allowed "
        f"({chain(n + 1)[:60]!r}...); split it into [derived] quantities"
    )
    assert "more than the 60 allowed" in rejected(chain(100))
    calls = "exp(" * n + "x" + ")" * n
    assert float(ex.evaluate(ex.parse(calls.replace("exp(", "abs(")), {"x": -2.0})) == 2.0
    ex.parse(calls)
    assert "nested or chained 61 levels deep" in rejected("exp(" + calls + ")")
    minus = "-(" * n + "x" + ")" * n
    assert float(ex.evaluate(ex.parse(minus), {"x": 3.0})) == 3.0  # an even number of minus signs
    assert "nested or chained 61 levels deep" in rejected("-(" + minus + ")")


def test_a_very_long_chain_is_rejected_not_a_crash():
    # deep enough to exhaust Python's own parser on some versions: either way a clear ExpressionError
    assert "60" in rejected(" + ".join(["x"] * 2400))


# ---------------------------------------------------------------------------------------------------- tree shapes
def test_negative_literals_are_numbers():
    # the unit check accepts a power of a quantity with units only for a numeric exponent: V ** -1 must have a
    # number, not a negated number, as exponent
    assert ex.parse("-2") == ex.Num(-2.0)
    assert ex.parse("- -2.5") == ex.Num(2.5)
    assert ex.parse("V ** -1") == ex.BinOp("**", ex.Name("V"), ex.Num(-1.0))
    assert ex.parse("+x") == ex.Name("x")
    assert ex.parse("-x") == ex.Neg(ex.Name("x"))
    assert ex.parse("-(x)") == ex.Neg(ex.Name("x"))
    assert float(ex.evaluate(ex.parse("-2 * x + -(-3)"), {"x": 5.0})) == -7.0


def test_the_simplifying_constructors_fold_the_trivial_cases():
    # derivatives are built from these: a term that is exactly Num(0.0) is dropped (sensitivity equations,
    # Jacobian sparsity), and every node kept is compiled into C and numba code
    x, y, zero, one, m1 = ex.Name("x"), ex.Name("y"), ex.Num(0.0), ex.Num(1.0), ex.Num(-1.0)
    assert ex.add(zero, x) == x and ex.add(x, zero) == x
    assert ex.add(ex.Num(2.0), ex.Num(3.5)) == ex.Num(5.5)
    assert ex.add(x, ex.Neg(y)) == ex.BinOp("-", x, y)
    assert ex.add(x, y) == ex.BinOp("+", x, y)
    assert ex.add(ex.Num(2.0), x) == ex.BinOp("+", ex.Num(2.0), x)
    assert ex.sub(x, zero) == x and ex.sub(zero, x) == ex.Neg(x) and ex.sub(zero, ex.Neg(x)) == x
    assert ex.sub(ex.Num(2.0), ex.Num(3.5)) == ex.Num(-1.5)
    assert ex.sub(x, y) == ex.BinOp("-", x, y)
    assert ex.sub(ex.Num(2.0), x) == ex.BinOp("-", ex.Num(2.0), x)
    assert ex.mul(zero, x) == zero and ex.mul(x, zero) == zero
    assert ex.mul(one, x) == x and ex.mul(x, one) == x
    assert ex.mul(m1, x) == ex.Neg(x) and ex.mul(x, m1) == ex.Neg(x)
    assert ex.mul(ex.Num(2.0), ex.Num(3.5)) == ex.Num(7.0)
    assert ex.mul(ex.Num(2.0), x) == ex.BinOp("*", ex.Num(2.0), x)
    assert ex.div(zero, x) == zero and ex.div(x, one) == x
    assert ex.div(x, ex.Num(2.0)) == ex.BinOp("/", x, ex.Num(2.0))
    assert ex.neg(ex.Num(2.0)) == ex.Num(-2.0) and ex.neg(ex.Neg(x)) == x and ex.neg(x) == ex.Neg(x)
    assert ex.power(x, one) == x and ex.power(x, zero) == one
    assert ex.power(x, ex.Num(2.0)) == ex.BinOp("**", x, ex.Num(2.0))


@pytest.mark.parametrize(
    "text,name,want",
    [
        ("k_in * (1 + emax * R) - k_out * I", "R", "k_in * emax"),  # d/dR by hand: k_in * emax
        ("k * x ** 2", "x", "k * (2 * x)"),
        ("k * x", "x", "k"),
        ("x / 2", "x", "1 / 2"),
        ("-x", "x", "-1"),
        ("x - y", "y", "-1"),
        ("exp(x)", "y", "0"),
    ],
)
def test_derivatives_come_out_simplified(text, name, want):
    assert ex.to_text(ex.differentiate(ex.parse(text), name)) == want


def test_the_derivative_of_what_does_not_depend_on_the_name_is_exactly_zero():
    for text in ("exp(k) * log(V)", "hill(C, EC50, n)", "ifelse(t < 1, a, b)", "max(a, b) - abs(c)"):
        assert ex.differentiate(ex.parse(text), "x") == ex.Num(0.0)


# ---------------------------------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize(
    "op,py",
    [
        ("+", operator.add),
        ("-", operator.sub),
        ("*", operator.mul),
        ("/", operator.truediv),
        ("**", operator.pow),
        ("^", operator.pow),
    ],
)
def test_each_operator_evaluates_as_python_does(op, py):
    tree = ex.parse(f"a {op} b")
    for a, b in ((7.0, 2.0), (2.0, 7.0), (1.5, -0.5)):
        assert float(ex.evaluate(tree, {"a": a, "b": b})) == py(a, b)
    got = ex.evaluate(tree, {"a": np.array([7.0, 2.0]), "b": np.array([2.0, 7.0])})
    np.testing.assert_array_equal(got, [py(7.0, 2.0), py(2.0, 7.0)])
    assert float(ex.evaluate(ex.parse(f"-(a {op} b)"), {"a": 7.0, "b": 2.0})) == -py(7.0, 2.0)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_each_comparison_selects_the_branch_python_would(op):
    tree = ex.parse(f"ifelse(a {op} b, yes, no)")
    for a in (1.0, 2.0, 3.0):
        want = 10.0 if eval(f"{a} {op} 2.0") else 20.0  # noqa: S307 - Python's own comparison of two numbers
        assert float(ex.evaluate(tree, {"a": a, "b": 2.0, "yes": 10.0, "no": 20.0})) == want
    a = np.array([1.0, 2.0, 3.0])
    yes, no = np.array([10.0, 11.0, 12.0]), np.array([20.0, 21.0, 22.0])
    want = [yes[i] if eval(f"{a[i]} {op} 2.0") else no[i] for i in range(3)]  # noqa: S307
    np.testing.assert_array_equal(ex.evaluate(tree, {"a": a, "b": 2.0, "yes": yes, "no": no}), want)


@pytest.mark.parametrize(
    "func,py", [("exp", math.exp), ("log", math.log), ("log10", math.log10), ("sqrt", math.sqrt), ("abs", abs)]
)
def test_each_function_of_one_argument_evaluates_as_math_does(func, py):
    tree = ex.parse(f"{func}(x)")
    for x in (0.25, 2.0, 7.5):
        assert float(ex.evaluate(tree, {"x": x})) == pytest.approx(py(x), rel=1e-15)
    assert float(ex.evaluate(ex.parse("abs(x)"), {"x": -3.0})) == 3.0


def test_min_and_max_are_elementwise():
    a, b = np.array([1.0, 5.0, 3.0]), np.array([4.0, 2.0, 3.0])
    np.testing.assert_array_equal(ex.evaluate(ex.parse("min(a, b)"), {"a": a, "b": b}), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ex.evaluate(ex.parse("max(a, b)"), {"a": a, "b": b}), [4.0, 5.0, 3.0])
    assert float(ex.evaluate(ex.parse("max(a, 0) + min(a, 0)"), {"a": -2.5})) == -2.5


def test_hill_by_hand():
    # hill(x, x50, n) = x**n / (x50**n + x**n)
    h = ex.parse("hill(x, x50, n)")
    assert float(ex.evaluate(h, {"x": 3.0, "x50": 1.0, "n": 2.0})) == pytest.approx(9.0 / 10.0, rel=1e-15)
    assert float(ex.evaluate(h, {"x": 1.0, "x50": 3.0, "n": 2.0})) == pytest.approx(1.0 / 10.0, rel=1e-15)
    assert float(ex.evaluate(h, {"x": 2.0, "x50": 2.0, "n": 3.7})) == pytest.approx(0.5, rel=1e-15)
    assert float(ex.evaluate(h, {"x": 4.0, "x50": 2.0, "n": 0.5})) == pytest.approx(2.0 / (2**0.5 + 2.0), rel=1e-15)
    got = ex.evaluate(h, {"x": np.array([-1.0, 0.0, 1.0, 3.0]), "x50": 1.0, "n": 2.0})
    np.testing.assert_allclose(got, [0.0, 0.0, 0.5, 0.9], rtol=1e-15)


def test_a_name_without_a_value_is_reported():
    with pytest.raises(ex.ExpressionError, match=r"^no value for name 'k'$"):
        ex.evaluate(ex.parse("x * k"), {"x": 1.0})


# ---------------------------------------------------------------------------------------------------- derivatives
def central(tree, env: dict, name: str, h: float = 1e-6) -> float:
    hi = float(ex.evaluate(tree, env | {name: env[name] + h}))
    lo = float(ex.evaluate(tree, env | {name: env[name] - h}))
    return (hi - lo) / (2 * h)


@pytest.mark.parametrize(
    "text,env,name,want",
    [
        # worked out by hand; each point away from a kink, where central differences agree
        ("abs(x * x - 2)", {"x": 1.0}, "x", -2.0),  # inside negative: -(2x)
        ("abs(x * x - 2)", {"x": 2.0}, "x", 4.0),
        ("abs(3 - x)", {"x": 5.0}, "x", 1.0),
        ("log10(x * x)", {"x": 2.0}, "x", 1.0 / math.log(10.0)),  # 2x / (x^2 ln 10)
        ("log10(3 * x)", {"x": 0.5}, "x", 1.0 / (0.5 * math.log(10.0))),
        ("min(x * x, 3 * x)", {"x": 1.0}, "x", 2.0),  # x^2 < 3x: the first argument is active
        ("min(x * x, 3 * x)", {"x": 4.0}, "x", 3.0),
        ("min(3 * x, x * x)", {"x": 1.0}, "x", 2.0),
        ("max(x * x, 3 * x)", {"x": 1.0}, "x", 3.0),
        ("max(x * x, 3 * x)", {"x": 4.0}, "x", 8.0),
        ("max(3 * x, x * x)", {"x": 4.0}, "x", 8.0),
        ("min(a, 5 * x)", {"a": 1.0, "x": 2.0}, "x", 0.0),
        ("min(a, 5 * x)", {"a": 1.0, "x": 0.1}, "x", 5.0),
        ("ifelse(x < 2, x * x, 3 * x)", {"x": 1.0}, "x", 2.0),
        ("ifelse(x < 2, x * x, 3 * x)", {"x": 3.0}, "x", 3.0),
        ("ifelse(y < 2, x * x, 3 * x)", {"x": 5.0, "y": 1.0}, "x", 10.0),
        ("ifelse(y < 2, x * x, 3 * x)", {"x": 5.0, "y": 3.0}, "x", 3.0),
        ("ifelse(y < 2, x * x, 3 * x)", {"x": 5.0, "y": 1.0}, "y", 0.0),
        ("hill(x, 2, 3)", {"x": 1.0}, "x", 3 * 8 / 81),  # n x50^n x^(n-1) / (x50^n + x^n)^2
        ("hill(1, x, 3)", {"x": 2.0}, "x", -3 * 4 / 81),  # -n x^(n-1) / (x^n + 1)^2
        ("hill(x, 2, 3)", {"x": 0.5}, "x", 24 * 0.25 / 8.125**2),  # 24 x^2 / (8 + x^3)^2, between the clip and 1
        ("hill(x, 2, 3)", {"x": -1.0}, "x", 0.0),  # clipped at 0: flat
    ],
)
def test_derivatives_of_every_function_by_hand_and_by_central_differences(text, env, name, want):
    tree = ex.parse(text)
    got = float(ex.evaluate(ex.differentiate(tree, name), env))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert got == pytest.approx(central(tree, env, name), rel=1e-6, abs=1e-9)


def test_derivatives_at_a_kink_take_the_first_argument_or_the_right_side():
    # the convention of differentiate at a tie: min/max the first argument's derivative, abs the right derivative
    # (sign of x >= 0): a Newton iteration only needs one of the one-sided derivatives
    at = {"x": 1.0, "y": 1.0}
    for func in ("min", "max"):
        tree = ex.parse(f"{func}(2 * x, 2 * y)")
        assert float(ex.evaluate(ex.differentiate(tree, "x"), at)) == 2.0
        assert float(ex.evaluate(ex.differentiate(tree, "y"), at)) == 0.0
    assert float(ex.evaluate(ex.differentiate(ex.parse("abs(3 * x)"), "x"), {"x": 0.0})) == 3.0


def test_hill_of_constants_outside_its_domain_is_nan_not_complex():
    # a negative x50 to a fractional n: NaN as numpy's power and the compiled engines give, not Python's complex
    # number; the round trip of hill(0, -(1), 2.5) through the text (which folds -(1) into the constant -1) found it
    with np.errstate(invalid="ignore"):
        got = ex.evaluate(ex.parse("hill(x, -1, 2.5)"), {"x": 0.5})
        assert not np.iscomplexobj(got) and math.isnan(float(got))
        folded = ex.evaluate(ex.parse("ifelse(0 < 1, 0, hill(0, -1, 2.5))"), {})
        unfolded = ex.evaluate(
            ex.Call(
                "ifelse",
                (
                    ex.Compare("<", ex.Num(0.0), ex.Num(1.0)),
                    ex.Num(0.0),
                    ex.Call("hill", (ex.Num(0.0), ex.Neg(ex.Num(1.0)), ex.Num(2.5))),
                ),
            ),
            {},
        )
    assert not np.iscomplexobj(folded) and float(folded) == float(unfolded) == 0.0
