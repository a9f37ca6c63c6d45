"""The safe expression language of model files.

Expressions are parsed with Python's :mod:`ast` and converted to a tiny tree of frozen nodes through an allow-list:
numbers, names, ``+ - * / **`` (``^`` is read as a power), unary minus, comparisons inside ``ifelse``, and the
functions in :data:`FUNCTIONS`. Anything else (attributes, subscripts, strings, lambdas, other calls) is rejected
before anything runs: a model file can never execute code. The tree is then

* evaluated with numpy (:func:`evaluate`), vectorised over subjects and times,
* printed as Python source for the compiled engine (:func:`to_source`) and back as text (:func:`to_text`),
* differentiated symbolically (:func:`differentiate`) for the Jacobian used by the stiff solver.

Examples
--------
>>> e = parse("k_in * (1 + emax * R) - k_out * I")
>>> sorted(names(e))
['I', 'R', 'emax', 'k_in', 'k_out']
>>> float(evaluate(e, {"k_in": 1.0, "emax": 2.0, "R": 0.5, "k_out": 0.5, "I": 2.0}))
1.0
>>> to_text(differentiate(e, "R"))
'k_in * emax'
"""

from __future__ import annotations

import ast
import functools
import math
import sys
import unicodedata
from dataclasses import dataclass

import numpy as np

#: Functions a model expression may call, with their number of arguments.
FUNCTIONS: dict[str, int] = {
    "exp": 1,
    "log": 1,
    "log10": 1,
    "sqrt": 1,
    "abs": 1,
    "min": 2,
    "max": 2,
    "hill": 3,
    "ifelse": 3,
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
#: Longest expression accepted [characters].
MAX_LENGTH = 10_000
#: Deepest nesting accepted: operators, calls and unary minus, counted along the deepest path of an expression
#: (``a + b + c`` chains count one level per ``+``). Split longer chains with ``[derived]`` quantities.
MAX_DEPTH = 60


class ExpressionError(ValueError):
    """An expression is not in the allowed language (the loader adds the file/section/key)."""


# ---------------------------------------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Num:
    """A numeric literal."""

    value: float


@dataclass(frozen=True)
class Name:
    """A reference to a parameter, covariate, derived quantity, state or ``t``."""

    id: str


@dataclass(frozen=True)
class BinOp:
    """``left op right`` with op one of ``+ - * / **``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    operand: Expr


@dataclass(frozen=True)
class Compare:
    """``left op right`` with op one of ``< <= > >= == !=`` (only inside ``ifelse``)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    """A call of one of :data:`FUNCTIONS`."""

    func: str
    args: tuple[Expr, ...]


Expr = Num | Name | BinOp | Neg | Compare | Call


# ---------------------------------------------------------------------------------------------------------- parse
def parse(text: str) -> Expr:
    """Parse ``text`` into an expression tree, accepting only the allowed language.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"-k_c * C"``. ``^`` is read as ``**``.

    Raises
    ------
    ExpressionError
        Syntax errors and anything outside the allow-list, with the offending piece named.

    Examples
    --------
    >>> parse("2 ^ x")
    BinOp(op='**', left=Num(value=2.0), right=Name(id='x'))
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string; got {type(text).__name__} {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    source = text.replace("^", "**").strip()
    if not source:
        raise ExpressionError("expression is empty")
    if unicodedata.normalize("NFKC", source) != source:
        # Python's parser folds names to NFKC ('ﬁ' -> 'fi'): two spellings would silently be one name
        bad = next(c for c in source if unicodedata.normalize("NFKC", c) != c)
        raise ExpressionError(f"{text!r:.80} contains {bad!r} (U+{ord(bad):04X}), which Unicode normalisation (NFKC) "
                              f"changes to {unicodedata.normalize('NFKC', bad)!r}; write names in that form")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ExpressionError(f"syntax error in {text!r:.200}: {err.msg} (column {err.offset})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"expression nested too deeply (more than {MAX_DEPTH} levels): "
                              f"{text[:60]!r}...") from None
    # every level of nesting takes at least one of these characters: with few of them the walk is not needed
    depth = _depth(tree.body) if sum(map(source.count, "+-*/(<>=!")) > MAX_DEPTH else 0
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nested or chained {depth} levels deep, more than the {MAX_DEPTH} allowed "
                              f"({text[:60]!r}...); split it into [derived] quantities")
    return _convert(tree.body, text, in_condition=False)


def _depth(node: ast.AST) -> int:
    """Nesting depth of operators and calls (iterative: no recursion on untrusted input)."""
    deepest = 0
    stack = [(node, 0)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, ast.BinOp | ast.UnaryOp | ast.Call | ast.Compare | ast.BoolOp):
            d += 1
            deepest = max(deepest, d)
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, d) for child in ast.iter_child_nodes(n))
    return deepest


def _convert(node: ast.AST, text: str, *, in_condition: bool) -> Expr:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"only numbers are allowed as constants in {text!r:.200}; got {node.value!r:.60}")
        try:
            value = float(node.value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            literal = ast.get_source_segment(text.replace("^", "**").strip(), node) or str(node.value)[:30]
            raise ExpressionError(f"number {literal[:30]!r} in {text!r:.200} is not a finite double-precision number "
                                  "(at most about 1.8e308)")
        return Num(value)
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ExpressionError(f"names may not start with '_' in {text!r}; got {node.id!r}")
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id!r} is a function and must be called, in {text!r}")
        return Name(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return BinOp(_BINOPS[type(node.op)], _convert(node.left, text, in_condition=False),
                     _convert(node.right, text, in_condition=False))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _convert(node.operand, text, in_condition=False)
        if isinstance(node.op, ast.UAdd):
            return operand
        return Num(-operand.value) if isinstance(operand, Num) else Neg(operand)
    if isinstance(node, ast.Compare):
        if not in_condition:
            raise ExpressionError(f"comparisons are allowed only as the first argument of ifelse(), in {text!r}")
        if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
            raise ExpressionError(f"use one comparison (<, <=, >, >=, ==, !=) per condition, in {text!r}")
        return Compare(_CMPOPS[type(node.ops[0])], _convert(node.left, text, in_condition=False),
                       _convert(node.comparators[0], text, in_condition=False))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(f"function {called!r} is not allowed in {text!r}; allowed: "
                                  + ", ".join(sorted(FUNCTIONS)))
        if node.keywords:
            raise ExpressionError(f"keyword arguments are not allowed in {text!r}")
        func, nargs = node.func.id, FUNCTIONS[node.func.id]
        if len(node.args) != nargs:
            raise ExpressionError(f"{func}() takes {nargs} argument(s); got {len(node.args)} in {text!r}")
        args = tuple(_convert(a, text, in_condition=(func == "ifelse" and i == 0)) for i, a in enumerate(node.args))
        if func == "ifelse" and not isinstance(args[0], Compare):
            raise ExpressionError(f"the first argument of ifelse() must be a comparison, in {text!r}")
        return Call(func, args)
    try:
        piece = ast.unparse(node)
    except Exception:  # pragma: no cover - ast.unparse handles every node produced by ast.parse
        piece = type(node).__name__
    raise ExpressionError(f"{type(node).__name__} is not allowed in model expressions: {piece!r} in {text!r}")


# ---------------------------------------------------------------------------------------------------------- queries
def names(expr: Expr) -> set[str]:
    """All names an expression refers to."""
    if isinstance(expr, Name):
        return {expr.id}
    if isinstance(expr, Num):
        return set()
    return set().union(*(names(c) for c in _children(expr)))


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, BinOp | Compare):
        return (expr.left, expr.right)
    if isinstance(expr, Neg):
        return (expr.operand,)
    if isinstance(expr, Call):
        return expr.args
    return ()


def substitute(expr: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace names by expressions (used to inline derived quantities)."""
    if isinstance(expr, Name):
        return mapping.get(expr.id, expr)
    if isinstance(expr, Num):
        return expr
    if isinstance(expr, BinOp):
        return BinOp(expr.op, substitute(expr.left, mapping), substitute(expr.right, mapping))
    if isinstance(expr, Compare):
        return Compare(expr.op, substitute(expr.left, mapping), substitute(expr.right, mapping))
    if isinstance(expr, Neg):
        return Neg(substitute(expr.operand, mapping))
    return Call(expr.func, tuple(substitute(a, mapping) for a in expr.args))


# ---------------------------------------------------------------------------------------------------------- print
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4}


def to_text(expr: Expr) -> str:
    """Print an expression back in model-file syntax (minimal parentheses)."""
    return _text(expr, lambda n: n, _fmt_num, {}, "model")


def to_source(expr: Expr, name_of, *, flavour: str = "math") -> str:
    """Python source for ``expr``; ``name_of(name)`` gives the code for a name.

    ``flavour`` is ``"math"`` (scalar code, for the numba engine), ``"numpy"`` (array code) or ``"c"`` (a C
    expression, for the native engine; numbers are C doubles). The source comes from the validated tree only, never
    from the file's text.
    """
    return _text(expr, name_of, functools.partial(_code_number, flavour=flavour), {}, flavour)


_NON_FINITE = {"c": ("INFINITY", "NAN"), "math": ("math.inf", "math.nan"), "numpy": ("np.inf", "np.nan")}


def _code_number(v: float, flavour: str) -> str:
    """A number as code: Python's repr of a double (C reads "2" as an int, so always a double there); a value that
    folding made infinite or NaN is spelled with the language's constant (never 'inf', an unknown name)."""
    v = float(v)
    if math.isfinite(v):
        return repr(v)
    inf, nan = _NON_FINITE[flavour]
    if math.isnan(v):
        return nan
    return inf if v > 0 else f"-{inf}"


def _fmt_num(v: float) -> str:
    return repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


def _text(e: Expr, name_of, fmt, _cache, flavour: str, parent: int = 0, right: bool = False) -> str:
    if isinstance(e, Num):
        s = fmt(e.value)
        return f"({s})" if e.value < 0 and parent else s
    if isinstance(e, Name):
        return name_of(e.id)
    if isinstance(e, Neg):
        s = "-" + _text(e.operand, name_of, fmt, _cache, flavour, _PREC["neg"])
        return f"({s})" if parent >= _PREC["neg"] else s
    if isinstance(e, BinOp):
        p = _PREC[e.op]
        if e.op == "**" and flavour == "c":  # C has no power operator; _pw (pkpd._native) has fast paths
            base, power = (_text(a, name_of, fmt, _cache, flavour) for a in (e.left, e.right))
            return f"_pw({base}, {power})"
        if e.op == "**":  # right-associative
            s = (_text(e.left, name_of, fmt, _cache, flavour, p + 1) + " ** "
                 + _text(e.right, name_of, fmt, _cache, flavour, p))
        else:
            s = (_text(e.left, name_of, fmt, _cache, flavour, p) + f" {e.op} "
                 + _text(e.right, name_of, fmt, _cache, flavour, p + 1))
        return f"({s})" if parent > p or (parent == p and right) else s
    if isinstance(e, Compare):
        return f"{_text(e.left, name_of, fmt, _cache, flavour)} {e.op} {_text(e.right, name_of, fmt, _cache, flavour)}"
    args = [_text(a, name_of, fmt, _cache, flavour) for a in e.args]
    if flavour == "model":
        return f"{e.func}({', '.join(args)})"
    if flavour == "c":
        return _c_call(e.func, args)
    lib = "np" if flavour == "numpy" else "math"
    if e.func in ("exp", "log", "log10", "sqrt"):
        return f"{lib}.{e.func}({args[0]})"
    if e.func == "abs":
        return f"{'np.abs' if flavour == 'numpy' else 'abs'}({args[0]})"
    if e.func in ("min", "max"):
        fn = {"min": "np.minimum", "max": "np.maximum"}[e.func] if flavour == "numpy" else e.func
        return f"{fn}({args[0]}, {args[1]})"
    if e.func in ("hill", "hillc"):
        # Negative x (solver noise around zero) is treated as 0 so that non-integer powers stay real.
        # "hillc" is internal (never parsed): its second argument is the precomputed x50 ** n.
        x = f"np.maximum({args[0]}, 0.0)" if flavour == "numpy" else f"max({args[0]}, 0.0)"
        return f"_{e.func}({x}, {args[1]}, {args[2]})"
    cond = args[0]
    if flavour == "numpy":
        return f"np.where({cond}, {args[1]}, {args[2]})"
    return f"(({args[1]}) if ({cond}) else ({args[2]}))"


def _c_call(func: str, args: list[str]) -> str:
    # C spelling of a call; _min/_max/_hill/_hillc are defined by pkpd._native with Python's semantics
    if func in ("exp", "log", "log10", "sqrt"):
        return f"{func}({args[0]})"
    if func == "abs":
        return f"fabs({args[0]})"
    if func in ("min", "max", "hill", "hillc"):
        if func in ("hill", "hillc"):
            args = [f"_max({args[0]}, 0.0)"] + args[1:]
        return f"_{func}({', '.join(args)})"
    return f"(({args[0]}) ? ({args[1]}) : ({args[2]}))"


# ---------------------------------------------------------------------------------------------------------- evaluate
def _hill(x, x50, n):
    # np.power, not **: for Python-float constants ** gives a complex number where numpy and the compiled engines
    # give NaN (a negative x50 to a fractional n)
    xn = np.power(x, n)
    return xn / (np.power(x50, n) + xn)


_NUMPY_FUNCS = {
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "min": np.minimum,
    "max": np.maximum,
}
_CMP_FUNCS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
              "!=": np.not_equal}
_BIN_FUNCS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}


def evaluate(expr: Expr, env: dict[str, object]):
    """Evaluate ``expr`` with numpy; ``env`` maps names to floats or broadcastable arrays.

    Examples
    --------
    >>> evaluate(parse("hill(x, 2, 1)"), {"x": np.array([0.0, 2.0])})
    array([0. , 0.5])
    """
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Name):
        try:
            return env[expr.id]
        except KeyError:
            raise ExpressionError(f"no value for name {expr.id!r}") from None
    if isinstance(expr, BinOp):
        return _BIN_FUNCS[expr.op](evaluate(expr.left, env), evaluate(expr.right, env))
    if isinstance(expr, Neg):
        return np.negative(evaluate(expr.operand, env))
    if isinstance(expr, Compare):
        return _CMP_FUNCS[expr.op](evaluate(expr.left, env), evaluate(expr.right, env))
    args = [evaluate(a, env) for a in expr.args]
    if expr.func == "hill":
        return _hill(np.maximum(args[0], 0.0), args[1], args[2])
    if expr.func == "ifelse":
        return np.where(args[0], args[1], args[2])
    return _NUMPY_FUNCS[expr.func](*args)


# ---------------------------------------------------------------------------------------------------------- simplify
def _num(e: Expr, v: float) -> bool:
    return isinstance(e, Num) and e.value == v


def add(a: Expr, b: Expr) -> Expr:
    """``a + b`` with trivial simplifications."""
    if _num(a, 0):
        return b
    if _num(b, 0):
        return a
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value + b.value)
    if isinstance(b, Neg):
        return sub(a, b.operand)
    return BinOp("+", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    """``a - b`` with trivial simplifications."""
    if _num(b, 0):
        return a
    if _num(a, 0):
        return neg(b)
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value - b.value)
    return BinOp("-", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    """``a * b`` with trivial simplifications."""
    if _num(a, 0) or _num(b, 0):
        return Num(0.0)
    if _num(a, 1):
        return b
    if _num(b, 1):
        return a
    if _num(a, -1):
        return neg(b)
    if _num(b, -1):
        return neg(a)
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value * b.value)
    return BinOp("*", a, b)


def div(a: Expr, b: Expr) -> Expr:
    """``a / b`` with trivial simplifications."""
    if _num(a, 0):
        return Num(0.0)
    if _num(b, 1):
        return a
    return BinOp("/", a, b)


def neg(a: Expr) -> Expr:
    """``-a`` with trivial simplifications."""
    if isinstance(a, Num):
        return Num(-a.value)
    if isinstance(a, Neg):
        return a.operand
    return Neg(a)


def power(a: Expr, b: Expr) -> Expr:
    """``a ** b`` with trivial simplifications."""
    if _num(b, 1):
        return a
    if _num(b, 0):
        return Num(1.0)
    return BinOp("**", a, b)


# ---------------------------------------------------------------------------------------------------------- derivative
def differentiate(expr: Expr, name: str) -> Expr:
    """Symbolic derivative of ``expr`` with respect to ``name`` (names not equal to ``name`` are constants).

    ``min``/``max``/``abs``/``ifelse`` are differentiated piecewise (the derivative of the active branch), which is
    what a Newton iteration needs.

    Examples
    --------
    >>> to_text(differentiate(parse("k * x ** 2"), "x"))
    'k * (2 * x)'
    """
    if isinstance(expr, Num):
        return Num(0.0)
    if isinstance(expr, Name):
        return Num(1.0 if expr.id == name else 0.0)
    if name not in names(expr):
        return Num(0.0)
    if isinstance(expr, Neg):
        return neg(differentiate(expr.operand, name))
    if isinstance(expr, BinOp):
        a, b = expr.left, expr.right
        da, db = differentiate(a, name), differentiate(b, name)
        if expr.op == "+":
            return add(da, db)
        if expr.op == "-":
            return sub(da, db)
        if expr.op == "*":
            return add(mul(da, b), mul(a, db))
        if expr.op == "/":
            return sub(div(da, b), div(mul(a, db), power(b, Num(2.0))))
        # a ** b
        if _num(db, 0):
            if isinstance(b, Num):
                return mul(mul(b, power(a, Num(b.value - 1.0))), da)
            return mul(mul(b, power(a, sub(b, Num(1.0)))), da)
        # general case: d(a^b) = a^b * (db * log(a) + b * da / a); at a = 0 (hill of a state still at 0), a^b is 0
        # for every b > 0 and so is its derivative in b: log of at least the smallest normal double keeps 0 * log(0)
        # from giving NaN there
        log_a = Call("log", (Call("max", (a, Num(sys.float_info.min))),))
        return mul(expr, add(mul(db, log_a), div(mul(b, da), a)))
    assert isinstance(expr, Call)
    f, args = expr.func, expr.args
    if f == "exp":
        return mul(expr, differentiate(args[0], name))
    if f == "log":
        return div(differentiate(args[0], name), args[0])
    if f == "log10":
        return div(differentiate(args[0], name), mul(args[0], Num(math.log(10.0))))
    if f == "sqrt":
        return div(differentiate(args[0], name), mul(Num(2.0), expr))
    if f == "abs":
        sign = Call("ifelse", (Compare(">=", args[0], Num(0.0)), Num(1.0), Num(-1.0)))
        return mul(sign, differentiate(args[0], name))
    if f in ("min", "max"):
        op = "<=" if f == "min" else ">="
        return Call("ifelse", (Compare(op, args[0], args[1]), differentiate(args[0], name),
                               differentiate(args[1], name)))
    if f == "ifelse":
        return Call("ifelse", (args[0], differentiate(args[1], name), differentiate(args[2], name)))
    # hill(x, x50, n) = x^n / (x50^n + x^n), x clipped at 0
    x, x50, n = args
    xc = Call("max", (x, Num(0.0)))
    expanded = div(power(xc, n), add(power(x50, n), power(xc, n)))
    # below 0 the input is clipped and hill is 0, flat: its derivative is 0 there (the chain rule would give
    # 0 ** (n - 1) * 0 = inf * 0 = NaN for n < 1, a NaN Jacobian for a state a little below 0)
    return Call("ifelse", (Compare(">=", x, Num(0.0)), differentiate(expanded, name), Num(0.0)))
