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


@functools.lru_cache(maxsize=1)
def registry():
    """The shared pint UnitRegistry, with ``cell`` defined (created once, on first use)."""
    import pint

    from .compile import _cache_dir

    try:
        # pint's own cache of its parsed definitions: 0.03 s instead of 0.17 s to build the registry next time
        ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=str(_cache_dir() / "pint"))
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
    ureg = registry()
    if text.strip().lower() in _DIMENSIONLESS_ALIASES:
        return ureg.dimensionless
    try:
        parsed = ureg.parse_units(text.strip())
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
        raise UnitCheckError(f"cannot convert {fmt(from_unit)} to {fmt(to_unit)} (dimensions "
                             f"{_dim(from_unit)} vs {_dim(to_unit)})") from None
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
    s = f"{u:~}"
    # pint abbreviates litre as "l"; pharmacology writes L (mL, uL)
    s = re.sub(r"(?<![A-Za-z])([munpfkd]?)l(?![A-Za-z])", r"\1L", s)
    return s if s else "1"


def _dim(u) -> str:
    d = str(registry().Quantity(1.0, u).dimensionality)
    return d if d != "dimensionless" else "none"


def _scaled(expr: ex.Expr, k: float) -> ex.Expr:
    if k == 1.0:
        return expr
    if not math.isfinite(k) or k == 0.0:  # pragma: no cover - pint never returns these for real units
        raise UnitCheckError(f"invalid conversion factor {k}")
    return ex.mul(expr, ex.Num(k))


def check(expr: ex.Expr, units: dict, target=None, *, bare_number_unit=None):
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

    Returns
    -------
    (Expr, pint.Unit)
        The rewritten expression and its unit (``target`` when given).

    Raises
    ------
    UnitCheckError
        Incompatible units, with the sub-expression and both units named.
    """
    if isinstance(expr, ex.Num) and bare_number_unit is not None:
        return expr, bare_number_unit
    new, u = _check(expr, units)
    if target is not None:
        if not (isinstance(new, ex.Num) and new.value == 0.0) and not compatible(u, target):
            raise UnitCheckError(f"expression {ex.to_text(expr)!r} has unit {fmt(u)} but {fmt(target)} is "
                                 f"declared (dimensions {_dim(u)} vs {_dim(target)})")
        if not (isinstance(new, ex.Num) and new.value == 0.0):
            new = _scaled(new, factor(u, target))
        u = target
    return new, u


def _zero(e: ex.Expr) -> bool:
    return isinstance(e, ex.Num) and e.value == 0.0


def _check(e: ex.Expr, units: dict):
    ureg = registry()
    one = ureg.dimensionless
    if isinstance(e, ex.Num):
        return e, one
    if isinstance(e, ex.Name):
        if e.id not in units:
            raise UnitCheckError(f"name {e.id!r} has no unit")
        return e, units[e.id]
    if isinstance(e, ex.Neg):
        inner, u = _check(e.operand, units)
        return ex.neg(inner), u
    if isinstance(e, ex.BinOp):
        left, ul = _check(e.left, units)
        if e.op == "**":
            if isinstance(e.right, ex.Num):
                return ex.BinOp("**", left, e.right), ul ** e.right.value
            right, ur = _check(e.right, units)
            left = _to_dimensionless(left, ul, e, "the base of a power with a non-numeric exponent")
            right = _to_dimensionless(right, ur, e, "an exponent")
            return ex.BinOp("**", left, right), one
        right, ur = _check(e.right, units)
        if e.op in "+-":
            right, ul = _same(left, ul, right, ur, e)
            return ex.BinOp(e.op, left, right), ul
        return ex.BinOp(e.op, left, right), (ul * ur if e.op == "*" else ul / ur)
    if isinstance(e, ex.Compare):
        left, ul = _check(e.left, units)
        right, ur = _check(e.right, units)
        right, _ = _same(left, ul, right, ur, e)
        return ex.Compare(e.op, left, right), one
    assert isinstance(e, ex.Call)
    checked = [_check(a, units) for a in e.args]
    args = [a for a, _ in checked]
    us = [u for _, u in checked]
    f = e.func
    if f in ("exp", "log", "log10"):
        return ex.Call(f, (_to_dimensionless(args[0], us[0], e, f"the argument of {f}()"),)), one
    if f == "sqrt":
        return ex.Call(f, (args[0],)), us[0] ** 0.5
    if f == "abs":
        return ex.Call(f, (args[0],)), us[0]
    if f in ("min", "max"):
        b, u = _same(args[0], us[0], args[1], us[1], e)
        return ex.Call(f, (args[0], b)), u
    if f == "hill":
        x50, _ = _same(args[0], us[0], args[1], us[1], e)
        n = _to_dimensionless(args[2], us[2], e, "the Hill coefficient")
        return ex.Call(f, (args[0], x50, n)), one
    # ifelse(cond, a, b)
    b, u = _same(args[1], us[1], args[2], us[2], e)
    return ex.Call(f, (args[0], args[1], b)), u


def _same(left, ul, right, ur, whole):
    """Convert ``right`` to ``left``'s unit (zero literals fit any unit)."""
    if _zero(right):
        return right, ul
    if _zero(left):
        return right, ur
    if not compatible(ul, ur):
        raise UnitCheckError(f"in {ex.to_text(whole)!r}: {ex.to_text(left)!r} is in {fmt(ul)} but "
                             f"{ex.to_text(right)!r} is in {fmt(ur)}; both sides must have the same dimension")
    return _scaled(right, factor(ur, ul)), ul


def _to_dimensionless(e, u, whole, what):
    if not compatible(u, registry().dimensionless):
        raise UnitCheckError(f"in {ex.to_text(whole)!r}: {what} must be dimensionless; {ex.to_text(e)!r} is in "
                             f"{fmt(u)}. Divide it by a parameter in the same unit (e.g. write hill(x, x50, n))")
    return _scaled(e, factor(u, registry().dimensionless))
