"""Units: parsing with pint and the dimensional check of every model expression.

pint does the unit algebra; this module adds one unit, ``cell`` (plural ``cells``), with a dimension of its own so
that a cell count is never confused with a mass or a plain number. :func:`check` walks an expression tree, verifies
dimensional consistency and returns the tree *rewritten with exact conversion factors* wherever compatible units of
different scale meet (``pg/mL + ng/mL``, ``A / V`` in mg/L declared as ng/mL), so the compiled numbers are always
right.

pint is imported on first use, never at ``import pkpd``.

Examples
--------
>>> from pkpd.expressions import parse, to_text
>>> u = {"A": unit("mg"), "V": unit("L")}
>>> expr, got = check(parse("A / V"), u, unit("ng/mL"))
>>> to_text(expr)
'A / V * 1000'
"""

from __future__ import annotations

import functools
import math
import re

from . import expressions as ex

_DIMENSIONLESS_ALIASES = {"1", "", "dimensionless", "fraction", "ratio", "-"}


class UnitCheckError(ValueError):
    """A unit problem inside one expression (the caller adds the file/section/key)."""


# ---------------------------------------------------------------------------------------------------- unit text
#: Longest unit string accepted.
MAX_UNIT_LENGTH = 100
#: Largest exponent (in absolute value) in a unit string (``L/h/kg**0.75``, ``10**6 cell``).
MAX_UNIT_EXPONENT = 12
_MAX_UNIT_NESTING = 4
_UNIT_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<pow>\*\*|\^)
  | (?P<op>[*/])
  | (?P<open>\()
  | (?P<close>\))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<sign>[-+])
  | (?P<name>%|[^\W\d]\w*)
""", re.VERBOSE)


def check_unit_text(text: str) -> str:
    """Check a unit string against pkpd's unit grammar before any of it reaches pint; return it stripped.

    The grammar: unit names (letters, digits, ``_``; ``%``), numbers of at most 15 digits with exponents up to
    e±30, ``*``, ``/`` or a space between factors, parentheses (up to 4 deep), and powers ``**``/``^`` whose exponent
    is a number or a ``(p/q)`` fraction of at most :data:`MAX_UNIT_EXPONENT` in size (never a power of a power). At
    most :data:`MAX_UNIT_LENGTH` characters. Anything else (``10**10**10``, calls, attributes, strings) is refused at
    once: pint evaluates the numbers in a unit string, and a huge power hangs it.

    Raises
    ------
    UnitCheckError
        Naming what is not allowed.

    Examples
    --------
    >>> check_unit_text(" L/h/kg**0.75 ")
    'L/h/kg**0.75'
    >>> check_unit_text("mg*10**10**10")
    Traceback (most recent call last):
    ...
    pkpd.units.UnitCheckError: unit 'mg*10**10**10': a power of a power is not allowed
    """
    if not isinstance(text, str):
        raise UnitCheckError(f"a unit must be a string; got {text!r}")
    stripped = text.strip()
    if len(stripped) > MAX_UNIT_LENGTH:
        raise UnitCheckError(f"unit {stripped[:40]!r}...: longer than {MAX_UNIT_LENGTH} characters")
    tokens = []
    pos = 0
    while pos < len(stripped):
        m = _UNIT_TOKEN.match(stripped, pos)
        if m is None:
            raise UnitCheckError(f"unit {stripped!r}: character {stripped[pos]!r} is not allowed in a unit (use unit "
                                 "names, numbers, '*', '/', '**' and parentheses, e.g. 'pg/mL', 'L/h/kg**0.75')")
        if m.lastgroup != "space":
            tokens.append((m.lastgroup, m.group()))
        pos = m.end()
    _UnitGrammar(stripped, tokens).parse()
    return stripped


class _UnitGrammar:
    """Recursive-descent check of unit tokens: product := power ((op)? power)*; power := atom (pow exponent)?"""

    def __init__(self, text: str, tokens: list[tuple[str, str]]):
        self.text, self.tokens, self.i, self.depth = text, tokens, 0, 0

    def fail(self, why: str):
        raise UnitCheckError(f"unit {self.text!r}: {why}")

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> None:
        if not self.tokens:
            self.fail("empty unit (write '1' for dimensionless)")
        self.product()
        if self.i != len(self.tokens):
            self.fail(f"unexpected {self.tokens[self.i][1]!r}")

    def product(self) -> None:
        self.power()
        while self.peek() in ("op", "name", "number", "open"):
            if self.peek() == "op":
                self.take()
            self.power()

    def power(self) -> None:
        kind, value = self.atom()
        if self.peek() == "pow":
            self.take()
            exponent = self.exponent()
            if kind == "number" and abs(math.log10(max(float(value), 1e-300))) * abs(exponent) > 60:
                self.fail(f"{value} ** {exponent:g} is too large a number")
            if self.peek() == "pow":
                self.fail("a power of a power is not allowed")

    def atom(self) -> tuple[str, str]:
        kind = self.peek()
        if kind == "name":
            return self.take()
        if kind == "number":
            _, value = self.take()
            self.check_number(value)
            return "number", value
        if kind == "open":
            self.take()
            self.depth += 1
            if self.depth > _MAX_UNIT_NESTING:
                self.fail(f"parentheses nested more than {_MAX_UNIT_NESTING} deep")
            self.product()
            if self.peek() != "close":
                self.fail("unbalanced parentheses")
            self.take()
            self.depth -= 1
            return "group", ""
        self.fail("expected a unit name, a number or '('" + (f", got {self.tokens[self.i][1]!r}" if kind else
                                                                 " at the end"))

    def check_number(self, value: str) -> float:
        mantissa, _, exp = value.lower().partition("e")
        if len(mantissa.replace(".", "")) > 15 or (exp and abs(int(exp)) > 30):
            self.fail(f"number {value!r} is too long or too large (at most 15 digits and e±30)")
        return float(value)

    def exponent(self) -> float:
        grouped = self.peek() == "open"
        if grouped:
            self.take()
        sign = 1.0
        if self.peek() == "sign":
            sign = -1.0 if self.take()[1] == "-" else 1.0
        if self.peek() != "number":
            self.fail("an exponent must be a number or a fraction such as (1/3)")
        value = self.check_number(self.take()[1])
        if grouped and self.peek() == "op" and self.tokens[self.i][1] == "/":
            self.take()
            if self.peek() != "number":
                self.fail("an exponent fraction must be (p/q) with numbers p and q")
            denominator = self.check_number(self.take()[1])
            if denominator == 0:
                self.fail("an exponent fraction divides by zero")
            value /= denominator
        if grouped:
            if self.peek() != "close":
                self.fail("an exponent in parentheses must be a number or a fraction (p/q)")
            self.take()
        if abs(value) > MAX_UNIT_EXPONENT:
            self.fail(f"exponent {sign * value:g} is larger than {MAX_UNIT_EXPONENT}")
        return sign * value


@functools.lru_cache(maxsize=1)
def registry():
    """The shared pint UnitRegistry, with ``cell`` defined (created once, on first use)."""
    import pint

    from ._cache import subdir

    try:
        # pint's own cache of its parsed definitions (pickles: loading one runs code): 0.03 s instead of 0.17 s to
        # build the registry next time. It lives only in a verified folder of pkpd's cache (pkpd._cache).
        ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=str(subdir("pint")))
    except Exception:  # an unwritable cache folder (or an older pint): build it without
        ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.define("cell = [cell_count] = cells")
    return ureg


@functools.lru_cache(maxsize=512)
def unit(text: str):
    """Parse a unit string (``"1"`` is dimensionless) into a pint Unit.

    Raises
    ------
    UnitCheckError
        The unit is not known, with close matches where pint has any.

    Examples
    --------
    >>> str(unit("pg/cell/h"))
    'picogram / cell / hour'
    """
    if not isinstance(text, str):
        raise UnitCheckError(f"a unit must be a string; got {text!r}")
    if text.strip().lower() in _DIMENSIONLESS_ALIASES:
        return registry().dimensionless
    text = check_unit_text(text)  # before pint sees any of it
    ureg = registry()
    try:
        parsed = ureg.parse_units(text)
    except Exception as err:  # pint raises several types (UndefinedUnitError, DefinitionSyntaxError, ...)
        bad = getattr(err, "unit_names", None) or [text]
        bad = bad[0] if isinstance(bad, list | tuple) else bad
        raise UnitCheckError(f"unit {text!r} is not recognised ({bad!r} is unknown); use pint spellings such as "
                             "'1/h', 'pg/mL', 'cell', 'mg/kg', 'nmol/L' or '1' for dimensionless") from None
    return parsed


def factor(from_unit, to_unit) -> float:
    """Multiplier converting a number in ``from_unit`` to ``to_unit``; UnitCheckError if incompatible."""
    if from_unit == to_unit:
        return 1.0
    ureg = registry()
    try:
        k = float(ureg.Quantity(1.0, from_unit).to(to_unit).magnitude)
    except Exception:
        k = None
    if k is None or not math.isfinite(k) or k == 0.0:
        if k is not None or compatible(from_unit, to_unit):  # units of one dimension too far apart in scale
            raise UnitCheckError(f"cannot convert {fmt(from_unit)} to {fmt(to_unit)}: the units have the same "
                                 f"dimension ({_dim(to_unit)}), but the conversion factor between them is out of the "
                                 "range of a floating-point number")
        raise UnitCheckError(f"cannot convert {fmt(from_unit)} to {fmt(to_unit)} (dimensions "
                             f"{_dim(from_unit)} vs {_dim(to_unit)})")
    # pint's float arithmetic gives 999.9999999999999 for mg/L -> ng/mL; 15 significant digits are exact for
    # decimal factors and within 1e-15 of the true value otherwise.
    return float(f"{k:.15g}")


# Exact size of common units in a base unit of their dimension: converting among these needs no pint, which costs
# 0.3 s to import (a simulation's dose and time units are almost always among them). Checked against pint in tests.
_SIMPLE: dict[str, tuple[str, float]] = {
    **{u: ("time", 1.0) for u in ("s", "sec", "second", "seconds")},
    **{u: ("time", 60.0) for u in ("min", "minute", "minutes")},
    **{u: ("time", 3600.0) for u in ("h", "hr", "hour", "hours")},
    **{u: ("time", 86400.0) for u in ("d", "day", "days")},
    **{u: ("time", 604800.0) for u in ("week", "weeks")},
    "kg": ("mass", 1e3), "g": ("mass", 1.0), "mg": ("mass", 1e-3), "ug": ("mass", 1e-6), "µg": ("mass", 1e-6),
    "ng": ("mass", 1e-9), "pg": ("mass", 1e-12),
    "mol": ("substance", 1.0), "mmol": ("substance", 1e-3), "umol": ("substance", 1e-6),
    "µmol": ("substance", 1e-6), "nmol": ("substance", 1e-9), "pmol": ("substance", 1e-12),
    "L": ("volume", 1.0), "mL": ("volume", 1e-3), "uL": ("volume", 1e-6),
    "cell": ("cell", 1.0), "cells": ("cell", 1.0),
}


def convert(from_text: str, to_text: str) -> float:
    """``factor(unit(from_text), unit(to_text))``: the multiplier from one unit string to another.

    Common units (:data:`_SIMPLE`: h, min, day, mg, ug, ng, nmol, mL, cell...) are converted from a table, without
    importing pint; anything else goes through pint. Raises UnitCheckError when the units are incompatible.

    Examples
    --------
    >>> convert("day", "h"), convert("mg", "ug")
    (24.0, 1000.0)
    """
    if not (isinstance(from_text, str) and isinstance(to_text, str)):
        return factor(unit(from_text), unit(to_text))  # unit() names the problem
    a, b = from_text.strip(), to_text.strip()
    sa, sb = _SIMPLE.get(a), _SIMPLE.get(b)
    if sa and sb and sa[0] == sb[0]:
        # the same 15-significant-digit rounding as factor()
        return 1.0 if a == b else float(f"{sa[1] / sb[1]:.15g}")
    return factor(unit(a), unit(b))


def compatible(a, b) -> bool:
    """Whether two units have the same dimensionality."""
    return registry().Quantity(1.0, a).dimensionality == registry().Quantity(1.0, b).dimensionality


def fmt(u) -> str:
    """Short, readable form of a unit (``'pg / mL'``, ``'1'`` for dimensionless)."""
    if isinstance(u, _Opaque):
        return "?"
    s = f"{u:~}"
    # pint abbreviates litre as "l"; pharmacology writes L (mL, uL)
    s = re.sub(r"(?<![A-Za-z])([munpfkd]?)l(?![A-Za-z])", r"\1L", s)
    return s if s else "1"


def _dim(u) -> str:
    if isinstance(u, _Opaque):
        return "?"
    d = str(registry().Quantity(1.0, u).dimensionality)
    return d if d != "dimensionless" else "none"


# ---------------------------------------------------------------------------------------------------- algebras
class Algebra:
    """pint's unit algebra for checking a model, recording every answer the check depends on.

    A model's check asks two kinds of question of the units: are two units compatible, and by what factor does one
    convert to the other. :attr:`transcript` lists the answers in order; :class:`Replay` gives them back, so that a
    later process re-runs the very same check on the model's freshly parsed equations without pint
    (:mod:`pkpd._check_cache`): the cache saves the dimensional analysis, never the equations.
    """

    def __init__(self):
        self.transcript: list[bool | float] = []

    def unit(self, text: str):
        """The unit of a unit string."""
        return unit(text)

    @property
    def one(self):
        """The dimensionless unit."""
        return registry().dimensionless

    def compatible(self, a, b) -> bool:
        """Whether ``a`` and ``b`` have the same dimension (recorded)."""
        answer = bool(compatible(a, b))
        self.transcript.append(answer)
        return answer

    def factor(self, a, b) -> float:
        """Multiplier from ``a`` to ``b`` (recorded)."""
        k = factor(a, b)
        self.transcript.append(k)
        return k


class _Opaque:
    """A unit whose value is not known (replayed checks need only the recorded answers)."""

    def __mul__(self, other):
        return self

    __rmul__ = __truediv__ = __rtruediv__ = __pow__ = __mul__

    def __format__(self, spec: str) -> str:
        return "?"


class TranscriptError(ValueError):
    """A replayed check asked a question that the transcript does not answer."""


class Replay:
    """The unit algebra of a recorded check (:class:`Algebra`): gives back the recorded answers in order, without
    pint. Unit strings are still checked against the grammar (:func:`check_unit_text`)."""

    def __init__(self, transcript: list):
        self._answers = list(transcript)
        self._next = 0
        self.one = _Opaque()

    def unit(self, text: str):
        """An opaque unit (the string is checked against the grammar)."""
        if not (isinstance(text, str) and text.strip().lower() in _DIMENSIONLESS_ALIASES):
            check_unit_text(text)
        return self.one

    def _take(self, kind: type):
        if self._next >= len(self._answers):
            raise TranscriptError("the transcript ended early")
        value = self._answers[self._next]
        if type(value) is not kind or (kind is float and not (math.isfinite(value) and value != 0.0)):
            raise TranscriptError(f"answer {self._next} is not a {kind.__name__}")
        self._next += 1
        return value

    def compatible(self, a, b) -> bool:
        """The next recorded compatibility answer."""
        return self._take(bool)

    def factor(self, a, b) -> float:
        """The next recorded conversion factor."""
        return self._take(float)

    def finish(self) -> None:
        """Raise unless every recorded answer was used."""
        if self._next != len(self._answers):
            raise TranscriptError("the transcript is longer than the check")


def _scaled(expr: ex.Expr, k: float) -> ex.Expr:
    if k == 1.0:
        return expr
    if not math.isfinite(k) or k == 0.0:  # pragma: no cover - pint never returns these for real units
        raise UnitCheckError(f"invalid conversion factor {k}")
    return ex.mul(expr, ex.Num(k))


def check(expr: ex.Expr, units: dict, target=None, *, bare_number_unit=None, algebra=None):
    """Check dimensional consistency of ``expr`` and insert conversion factors.

    Parameters
    ----------
    expr : Expr
        Parsed expression.
    units : dict[str, pint.Unit]
        Unit of every name the expression may use (``t`` included).
    target : pint.Unit, optional
        The declared unit of the result; the result is converted to it.
    bare_number_unit : pint.Unit, optional
        If the whole expression is a bare number, it is read in this unit (``initial = "10"``).
    algebra : Algebra or Replay, optional
        Who answers the unit questions (default: pint, :class:`Algebra`).

    Returns
    -------
    (Expr, pint.Unit)
        The rewritten expression and its unit (``target`` when given).

    Raises
    ------
    UnitCheckError
        Incompatible units, with the sub-expression and both units named.
    """
    alg = Algebra() if algebra is None else algebra
    if isinstance(expr, ex.Num) and bare_number_unit is not None:
        return expr, bare_number_unit
    new, u = _check(expr, units, alg)
    if target is not None:
        if not (isinstance(new, ex.Num) and new.value == 0.0) and not alg.compatible(u, target):
            raise UnitCheckError(f"expression {ex.to_text(expr)!r} has unit {fmt(u)} but {fmt(target)} is "
                                 f"declared (dimensions {_dim(u)} vs {_dim(target)})")
        if not (isinstance(new, ex.Num) and new.value == 0.0):
            new = _scaled(new, alg.factor(u, target))
        u = target
    return new, u


def _zero(e: ex.Expr) -> bool:
    return isinstance(e, ex.Num) and e.value == 0.0


def _check(e: ex.Expr, units: dict, alg):
    one = alg.one
    if isinstance(e, ex.Num):
        return e, one
    if isinstance(e, ex.Name):
        if e.id not in units:
            raise UnitCheckError(f"name {e.id!r} has no unit")
        return e, units[e.id]
    if isinstance(e, ex.Neg):
        inner, u = _check(e.operand, units, alg)
        return ex.neg(inner), u
    if isinstance(e, ex.BinOp):
        left, ul = _check(e.left, units, alg)
        if e.op == "**":
            if isinstance(e.right, ex.Num):
                return ex.BinOp("**", left, e.right), ul ** e.right.value
            right, ur = _check(e.right, units, alg)
            left = _to_dimensionless(left, ul, e, "the base of a power with a non-numeric exponent", alg)
            right = _to_dimensionless(right, ur, e, "an exponent", alg)
            return ex.BinOp("**", left, right), one
        right, ur = _check(e.right, units, alg)
        if e.op in "+-":
            right, ul = _same(left, ul, right, ur, e, alg)
            return ex.BinOp(e.op, left, right), ul
        return ex.BinOp(e.op, left, right), (ul * ur if e.op == "*" else ul / ur)
    if isinstance(e, ex.Compare):
        left, ul = _check(e.left, units, alg)
        right, ur = _check(e.right, units, alg)
        right, _ = _same(left, ul, right, ur, e, alg)
        return ex.Compare(e.op, left, right), one
    assert isinstance(e, ex.Call)
    checked = [_check(a, units, alg) for a in e.args]
    args = [a for a, _ in checked]
    us = [u for _, u in checked]
    f = e.func
    if f in ("exp", "log", "log10"):
        return ex.Call(f, (_to_dimensionless(args[0], us[0], e, f"the argument of {f}()", alg),)), one
    if f == "sqrt":
        return ex.Call(f, (args[0],)), us[0] ** 0.5
    if f == "abs":
        return ex.Call(f, (args[0],)), us[0]
    if f in ("min", "max"):
        b, u = _same(args[0], us[0], args[1], us[1], e, alg)
        return ex.Call(f, (args[0], b)), u
    if f == "hill":
        x50, _ = _same(args[0], us[0], args[1], us[1], e, alg)
        n = _to_dimensionless(args[2], us[2], e, "the Hill coefficient", alg)
        return ex.Call(f, (args[0], x50, n)), one
    # ifelse(cond, a, b)
    b, u = _same(args[1], us[1], args[2], us[2], e, alg)
    return ex.Call(f, (args[0], args[1], b)), u


def _same(left, ul, right, ur, whole, alg):
    """Convert ``right`` to ``left``'s unit (zero literals fit any unit)."""
    if _zero(right):
        return right, ul
    if _zero(left):
        return right, ur
    if not alg.compatible(ul, ur):
        raise UnitCheckError(f"in {ex.to_text(whole)!r}: {ex.to_text(left)!r} is in {fmt(ul)} but "
                             f"{ex.to_text(right)!r} is in {fmt(ur)}; both sides must have the same dimension")
    return _scaled(right, alg.factor(ur, ul)), ul


def _to_dimensionless(e, u, whole, what, alg):
    if not alg.compatible(u, alg.one):
        raise UnitCheckError(f"in {ex.to_text(whole)!r}: {what} must be dimensionless; {ex.to_text(e)!r} is in "
                             f"{fmt(u)}. Divide it by a parameter in the same unit (e.g. write hill(x, x50, n))")
    return _scaled(e, alg.factor(u, alg.one))
