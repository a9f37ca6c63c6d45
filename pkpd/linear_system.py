"""Whether a model's equations are a linear system with coefficients constant between events.

A model is *linear* here when, with its derived quantities written out, every right-hand side is

.. math:: \\frac{dy_i}{dt} = \\sum_j A_{ij}\\,y_j + b_i

with :math:`A` and :math:`b` functions of the parameters, covariates and static derived quantities only (not of the
states, not of ``t``). Doses (bolus, zero-order infusions, first-order absorption from a depot state), lag times,
bioavailability and parameter or covariate changes at event times keep such a system linear with piecewise-constant
coefficients, so between two events its solution is a matrix exponential: the one- to three-compartment models
with bolus, infusion or first-order absorption (NONMEM's ADVAN1-4 and 11-12) and any other linear compartmental
model. Outputs may be any function of the states: they are evaluated after the solve.

The decision is read off the expression trees: :math:`A_{ij}` is the symbolic derivative of the i-th right-hand
side by the j-th state, which must not mention a state or ``t``; :math:`b_i` is the right-hand side with every state
set to zero. Nothing is evaluated and nothing is generated from text.

Examples
--------
>>> import pkpd
>>> lin = linearity(pkpd.load_model("pk_2cmt_oral"))
>>> lin.is_linear
True
>>> from pkpd import expressions as ex
>>> ex.to_text(lin.system.matrix[1][1])
'-k10 - k12'
>>> linearity(pkpd.load_model("tmdd")).reason.startswith("d/dt")
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from . import expressions as ex


@dataclass(frozen=True)
class LinearSystem:
    """``dy/dt = A y + b``, as expression trees over the names of the compiled ``q`` vector.

    Attributes
    ----------
    matrix : tuple of tuple of Expr
        ``A[i][j]`` [1/time]: the coefficient of state ``j`` in the right-hand side of state ``i``.
    constant : tuple of Expr
        ``b[i]`` [state unit / time]: the part of the right-hand side of state ``i`` that is not proportional to a
        state (a zero-order input such as a turnover production rate).
    """

    matrix: tuple[tuple[ex.Expr, ...], ...]
    constant: tuple[ex.Expr, ...]


@dataclass(frozen=True)
class Linearity:
    """The verdict of :func:`linearity`: the system when the model is linear, else the reason it is not."""

    system: LinearSystem | None
    reason: str = ""

    @property
    def is_linear(self) -> bool:
        """True when the model's equations are linear with coefficients constant between events."""
        return self.system is not None


def linearity(model) -> Linearity:
    """Decide whether ``model`` is a linear system with coefficients constant between events.

    Parameters
    ----------
    model : pkpd.Model

    Returns
    -------
    Linearity
        ``.system`` (:class:`LinearSystem`) when it is, else ``None`` and ``.reason``, which names the state and
        what makes it nonlinear or time-dependent.

    Examples
    --------
    >>> import pkpd
    >>> linearity(pkpd.load_model("msc_salvadori")).is_linear
    False
    """
    return _linearity(model)


@functools.lru_cache(maxsize=128)
def _linearity(model) -> Linearity:
    ck = model._checked
    states = model.state_names
    state_set = set(states)
    constant_names = set(model.parameter_names) | set(model.covariate_names) | {n for n, _ in ck.static_derived}
    inline: dict[str, ex.Expr] = {}
    for name, tree in ck.dynamic_derived:
        inline[name] = ex.substitute(tree, inline)
    zero = {s: ex.Num(0.0) for s in states}
    rows, constant = [], []
    for s, tree in zip(states, ck.ddt):
        full = ex.substitute(tree, inline)
        if "t" in ex.names(full):
            return Linearity(None, f"d/dt {s} depends on the time t")
        row = []
        for other in states:
            coefficient = ex.differentiate(full, other)
            depends = sorted(ex.names(coefficient) & state_set)
            if depends:
                return Linearity(None, f"d/dt {s} is not linear in the states: its derivative by {other} depends on "
                                       f"{', '.join(depends)}")
            unknown = ex.names(coefficient) - constant_names
            if unknown:  # pragma: no cover - every name of a checked right-hand side is a state, t or a constant
                return Linearity(None, f"d/dt {s}: the coefficient of {other} uses {', '.join(sorted(unknown))}")
            row.append(coefficient)
        rows.append(tuple(row))
        constant.append(_folded(ex.substitute(full, zero)))
    return Linearity(LinearSystem(tuple(rows), tuple(constant)))


_FOLD = {"+": ex.add, "-": ex.sub, "*": ex.mul, "/": ex.div, "**": ex.power}


def _folded(e: ex.Expr) -> ex.Expr:
    """``e`` rebuilt bottom-up with the simplifying constructors (``k * 0 - c * 0`` becomes ``0``)."""
    if isinstance(e, ex.BinOp):
        return _FOLD[e.op](_folded(e.left), _folded(e.right))
    if isinstance(e, ex.Neg):
        return ex.neg(_folded(e.operand))
    if isinstance(e, ex.Call):
        return ex.Call(e.func, tuple(_folded(a) for a in e.args))
    if isinstance(e, ex.Compare):
        return ex.Compare(e.op, _folded(e.left), _folded(e.right))
    return e
