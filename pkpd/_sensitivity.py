"""Forward sensitivity equations, generated symbolically (private; used by :mod:`pkpd.fit`).

For a model ``dy/dt = f(t, y, theta)`` with outputs ``g(t, y, theta)``, the sensitivities ``S = dy/dtheta`` obey

    dS/dt = (df/dy) S + df/dtheta,      S(t0) = d y0 / dtheta,

and the output sensitivities are ``dg/dtheta = (dg/dy) S + dg/dtheta``. :func:`sensitivity_model` writes these
equations as a new :class:`~pkpd.model.Model` (the original states first, then one state per pair (state,
parameter), and one output per pair (fitted output, parameter)), which the ordinary compiler and integrator solve:
nothing in the engine knows about sensitivities. Derived quantities stay named: each derived quantity ``D`` gets
a companion ``D__d__theta`` holding its total derivative along the trajectory, so the expressions stay short.

The augmented model is built from the *checked* (unit-converted) expression trees of the original, so every
quantity in it is declared dimensionless; a covariate with unit 1/time (always 1.0) keeps the time derivatives
dimensionally right.

Dose events are the original model's (built by :func:`pkpd.simulation.build_events`); when a dose's bioavailability
depends on an estimated parameter, :func:`dose_jumps` gives the matching jumps of the sensitivity states.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from . import expressions as ex
from .errors import FitError, PkpdError
from .model import Covariate, Derived, Model, Output, Parameter, State

RATE_COVARIATE = "per_time_unit_"


@dataclass(frozen=True, eq=False)
class SensitivityModel:
    """An augmented model and the layout of its states and outputs (private)."""

    model: Model
    base: Model
    parameters: tuple[str, ...]          # the parameters differentiated against (estimated ones)
    outputs: tuple[str, ...]             # the outputs whose sensitivities are recorded
    state_index: np.ndarray              # (n_states, n_par): index of S[state, par] among the augmented states
    output_index: np.ndarray             # (n_outputs, n_par): index of d output / d par among augmented outputs
    value_output_index: np.ndarray       # (n_outputs,): index of the output itself among augmented outputs


def _name(kind: str, a: str, b: str) -> str:
    # within the name-length limit whatever the names of the model (the augmented model is internal: its names are
    # never shown, and generated code holds indices, not names)
    name = f"{kind}{a}__d__{b}"
    return name if len(name) <= 128 else kind + hashlib.sha256(f"{a}\0{b}".encode()).hexdigest()[:24]


def _sum(terms: list[ex.Expr]) -> ex.Expr:
    """A balanced sum (depth log2 of the number of terms, not the number of terms)."""
    while len(terms) > 1:
        terms = [ex.add(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0] if terms else ex.Num(0.0)


@functools.lru_cache(maxsize=32)
def sensitivity_model(model: Model, parameters: tuple[str, ...], outputs: tuple[str, ...]) -> SensitivityModel:
    """Build the forward-sensitivity model of ``model`` for ``parameters``, recording ``outputs`` and their
    derivatives."""
    ck = model._checked
    states = model.state_names
    static = dict(ck.static_derived)
    dynamic = dict(ck.dynamic_derived)
    derived_order = [n for n, _ in ck.static_derived] + [n for n, _ in ck.dynamic_derived]
    # the declaration order matters for dependencies; the checked lists keep each group's order, and a static
    # quantity never uses a dynamic one, so "static first, then dynamic" is a valid order
    trees = {**static, **dynamic}
    used = set(model.parameter_names) | set(model.covariate_names) | set(states) | set(trees) | {"t"}
    if RATE_COVARIATE in used:  # pragma: no cover - a model would have to use our reserved name
        raise ValueError(f"model uses the reserved name {RATE_COVARIATE!r}")

    def total(tree: ex.Expr, p: str) -> ex.Expr:
        """Total derivative of ``tree`` with respect to parameter ``p`` along the trajectory."""
        terms = [ex.differentiate(tree, p)]
        for s in states:
            d = ex.differentiate(tree, s)
            if d != ex.Num(0.0):
                terms.append(ex.mul(d, ex.Name(_name("S_", s, p))))
        for n in derived_order:
            if n in ex.names(tree):
                d = ex.differentiate(tree, n)
                if d != ex.Num(0.0):
                    terms.append(ex.mul(d, ex.Name(_name("D_", n, p))))
        return _sum([t for t in terms if t != ex.Num(0.0)])

    text = ex.to_text
    params = tuple(Parameter(p.name, p.value, "1", p.bounds) for p in model.parameters)
    covs = tuple(Covariate(c.name, "1", c.value) for c in model.covariates) + (
        Covariate(RATE_COVARIATE, f"1/{model.time_unit}", 1.0),)
    # order: static quantities, their derivatives, dynamic quantities, their derivatives (each in declaration
    # order), so that every expression only uses what is declared before it
    static_names = [n for n, _ in ck.static_derived]
    dynamic_names = [n for n, _ in ck.dynamic_derived]
    ordered = []
    for group in (static_names, dynamic_names):
        ordered += [Derived(n, text(trees[n]), "1") for n in group]
        ordered += [Derived(_name("D_", n, p), text(total(trees[n], p)), "1") for n in group for p in parameters]

    rate = ex.Name(RATE_COVARIATE)
    new_states = []
    for s, init, f in zip(states, ck.initial, ck.ddt):
        new_states.append(State(s, "1", text(init), text(ex.mul(f, rate))))
    for s, init, f in zip(states, ck.initial, ck.ddt):
        for p in parameters:
            new_states.append(State(_name("S_", s, p), "1", text(total(init, p)), text(ex.mul(total(f, p), rate))))
    out_trees = dict(zip(model.output_names, ck.outputs))
    new_outputs = [Output(o, text(out_trees[o]), "1") for o in outputs]
    for o in outputs:
        for p in parameters:
            new_outputs.append(Output(_name("O_", o, p), text(total(out_trees[o], p)), "1"))
    try:
        aug = Model(name=f"{model.name}_sens" if len(model.name) <= 123 else "sensitivity_model",
                    time_unit=model.time_unit, parameters=params, states=tuple(new_states),
                    outputs=tuple(new_outputs), covariates=covs, derived=tuple(ordered),
                    description=f"forward sensitivities of {model.name} for {', '.join(parameters)}")
    except PkpdError as err:
        raise FitError(f"gradient='sensitivity' is not available for model {model.name!r}: its sensitivity equations "
                       f"are beyond the limits of a model ({err}); use gradient='finite-difference'") from None
    ns, npar, no = len(states), len(parameters), len(outputs)
    state_index = ns + np.arange(ns * npar).reshape(ns, npar)
    output_index = no + np.arange(no * npar).reshape(no, npar)
    return SensitivityModel(aug, model, tuple(parameters), tuple(outputs), state_index, output_index,
                            np.arange(no))


def dose_factor_derivatives(model: Model, parameters: tuple[str, ...]) -> list[list[ex.Expr | None]]:
    """Per dose target, per parameter: d(log F)/d parameter as a tree of parameters and covariates, or None when
    F does not depend on it."""
    ck = model._checked
    inline: dict[str, ex.Expr] = {}
    for n, tree in ck.static_derived:
        inline[n] = ex.substitute(tree, inline)
    out = []
    for tree in ck.dose_factor:
        full = ex.substitute(tree, inline)
        row = []
        for p in parameters:
            d = ex.differentiate(full, p)
            row.append(None if d == ex.Num(0.0) else ex.div(d, full))
        out.append(row)
    return out


def dose_dependence(model: Model, parameters: tuple[str, ...]) -> dict[str, set[str]]:
    """Which estimated parameters each dose target's lag, rate and duration expressions depend on."""
    ck = model._checked
    inline: dict[str, ex.Expr] = {}
    for n, tree in ck.static_derived:
        inline[n] = ex.substitute(tree, inline)
    out = {}
    for d, lag, rate, dur, factor in zip(model.doses, ck.dose_lag, ck.dose_rate, ck.dose_duration, ck.dose_factor):
        used = set()
        for tree in (lag, rate, dur):
            if tree is not None:
                used |= ex.names(ex.substitute(tree, inline))
        out[d.name] = (used & set(parameters), ex.names(ex.substitute(factor, inline)) & set(parameters))
    return out
