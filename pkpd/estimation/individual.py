r"""fit(): maximum-likelihood estimation of model parameters from biomarker data (pooled or one fit per subject).

Data come in the NONMEM layout (read by :func:`pkpd.nonmem.read_nonmem`): dose records, observation records with
``DV``, ``DVID`` naming each observation's output, ``LLOQ``/``BLQ`` (or ``CENS``) for values below the limit of
quantification, and covariate columns such as ``WT``. Every observation is matched to a model output; each output
has its own residual error model (:mod:`pkpd.error_models`).

The objective is :math:`-2\log L` (the "objective function value", OFV), *including* every constant:
:math:`n \log 2\pi` for the quantified observations and, for log-normal errors, the Jacobian
:math:`2\sum \log y`, so OFVs of different error models fitted to the same data can be compared (NONMEM's OFV
omits :math:`n \log 2\pi`). AIC is OFV + 2k and BIC is OFV + k log n, with k the number of estimated parameters
and n the number of observations that contribute (censored ones count under M3 and M4, not under M1).

How the fit works
-----------------
* Parameters whose lower bound (from the model file) is >= 0 are estimated on the log scale, the others on the
  natural scale; error-model parameters always on the log scale. Estimates never leave the model's bounds.
* Pooled fits (one parameter set for every subject) solve all subjects in *one* compiled batch call per
  evaluation; the finite-difference derivatives solve all perturbed parameter sets in that same single call.
  ``gradient="sensitivity"`` integrates the forward sensitivity equations instead (generated symbolically and
  compiled once per model and set of estimated parameters, then cached on disk).
* ``method="least_squares"`` (default) minimises the OFV written as a sum of squares (scipy's trust-region
  reflective method through lmfit) with the derivatives above; any other lmfit method (``"nelder"``, ``"powell"``,
  ``"lbfgsb"``, ``"bfgs"``, ``"differential_evolution"``, ...) minimises the OFV directly.
* A solver failure inside the objective never stops the fit: that evaluation gets a large penalty and is counted
  (``FitResult.n_solver_failures``).
* The covariance matrix is twice the inverse Hessian of the OFV (observed information, by central differences of
  the OFV, every perturbed parameter set solved in one batch call). When the Hessian is not positive definite,
  the expected (Fisher) information is used instead and the result says so; when that is singular too (or cannot
  be computed), no standard errors are given and the message says which parameters the data cannot inform.

References
----------
Beal SL (2001) Ways to fit a PK model with some data below the quantification limit. J Pharmacokinet Pharmacodyn
28:481-504. Raue A et al. (2009) Structural and practical identifiability analysis of partially observed dynamical
models by exploiting the profile likelihood. Bioinformatics 25:1923-1929.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import expressions as ex
from .. import units as un
from .._arguments import check_level
from ..compile import compile_model
from ..dosing import Infusion
from ..error_models import CENSORING, ERROR_MODELS, M1, M3, M4
from ..errors import DataError, DosingError, FitError, PkpdError, did_you_mean
from ..model import Model
from ..settings import SolverSettings
from .data import _Data, _observations
from .likelihood import _Evaluation, _Likelihood

__all__ = ["FitResult", "SubjectFits", "fit"]

_LOG_2PI = math.log(2.0 * math.pi)
_Z95 = 1.959963984540054  # standard normal 97.5 % quantile
_CHI2_95 = 3.841458820694124  # chi-square(1) 95 % quantile: profile-likelihood threshold
_B_MARGIN = 2.0 * math.log(1e3)  # see _Likelihood: the log-normaliser residuals start at this squared value
_GRADIENTS = ("finite-difference", "sensitivity")
_LEAST_SQUARES = ("least_squares",)
_GRADIENT_METHODS = ("lbfgsb", "bfgs", "cg", "tnc", "slsqp", "newton")
# the global methods that draw random numbers: each run is given a seed drawn from the fit's generator, so that a fit
# with a seed is repeatable (lmfit otherwise leaves them to numpy's global random state)
_RANDOM_METHODS = ("differential_evolution", "basinhopping", "dual_annealing")
# global methods find the basin; their own stopping rules (and lmfit's polish in its transformed parameters) can stop
# short of its minimum, so least squares refines their best point
_GLOBAL_METHODS = (*_RANDOM_METHODS, "shgo")
_METHODS = ("least_squares", "leastsq", "nelder", "powell", "lbfgsb", "bfgs", "cg", "tnc", "cobyla", "slsqp",
            "differential_evolution", "basinhopping", "dual_annealing", "shgo")


# ====================================================================================================== layout
@dataclass(frozen=True, eq=False)
class _ErrorSlot:
    """One output's error model and where its parameters sit in the internal vector (private)."""

    output: str
    template: object                       # an error model (starting or fixed values)
    slots: tuple[tuple[str, int], ...]     # (parameter name, index in the internal vector) of the estimated ones

    def model_at(self, x: np.ndarray):
        if not self.slots:
            return self.template
        return dataclasses.replace(self.template, **{n: float(np.exp(x[i])) for n, i in self.slots})


@dataclass(frozen=True, eq=False)
class _Layout:
    """Which parameters are estimated, on which scale, within which bounds (private).

    The internal vector holds the structural parameters first (model order of ``estimate``), then the
    error-model parameters (output order of ``error``); ``kinds`` says which each is (``"structural"`` or
    ``"error"``), ``log`` marks those estimated as log(value).
    """

    model: Model
    names: tuple[str, ...]
    units: tuple[str, ...]
    kinds: tuple[str, ...]
    log: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    x0: np.ndarray
    struct_index: np.ndarray
    errors: tuple[_ErrorSlot, ...]
    prior: object = None          # pkpd.priors.IndividualPriorTerms of a MAP fit, or None

    @property
    def n_struct(self) -> int:
        return int(self.struct_index.size)

    def natural(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(over="ignore"):
            return np.where(self.log, np.exp(x), x)


def _check_error_models(model: Model, error: Mapping) -> None:
    """Every key of ``error`` is an output of the model and every value an error model (fit and fit_population)."""
    for out, em in error.items():
        if out not in model.output_names:
            raise FitError(f"error: unknown output {out!r} of model {model.name!r}."
                           + did_you_mean(str(out), model.output_names))
        if out in model.endpoint_names:
            kind = next(o.type for o in model.outputs if o.name == out)
            raise FitError(f"error[{out!r}]: output {out!r} is a {kind} endpoint, which declares its own likelihood "
                           "in the model file; remove it from error")
        if not isinstance(em, ERROR_MODELS):
            raise FitError(f"error[{out!r}]: expected an error model (Additive, Proportional, Combined or LogNormal "
                           f"from pkpd); got {em!r}")


def _layout(model: Model, estimate, error: Mapping) -> _Layout:
    if isinstance(estimate, str):
        estimate = [estimate]
    try:
        estimate = list(estimate)
    except TypeError:
        raise FitError(f"estimate: expected a list of parameter names; got {type(estimate).__name__}") from None
    names_model = model.parameter_names
    seen = set()
    for name in estimate:
        if not isinstance(name, str) or name not in names_model:
            raise FitError(f"estimate: unknown parameter {name!r} of model {model.name!r}."
                           + did_you_mean(str(name), names_model))
        if name in seen:
            raise FitError(f"estimate: parameter {name!r} is listed twice")
        seen.add(name)
    if error is None and model.endpoint_names:
        error = {}   # only clinical endpoints, which bring their own likelihood
    if not isinstance(error, Mapping) or (not error and not model.endpoint_names):
        raise FitError("error: give one error model per fitted output, e.g. error={'IL10': pkpd.Proportional(cv=0.2)}"
                       f"; outputs of {model.name!r}: {', '.join(model.output_names)}")
    _check_error_models(model, error)
    order = [n for n in names_model if n in seen]
    names, units, kinds, log, lower, upper, x0 = [], [], [], [], [], [], []
    for name in order:
        p = model.parameter(name)
        lo, hi = p.bounds
        if not lo <= p.value <= hi:  # bounds are plausible ranges; fitting is where they are enforced
            raise FitError(f"estimate: parameter {name!r} starts at {p.value:g} {p.unit}, outside its bounds "
                           f"[{lo:g}, {hi:g}], and estimates stay within the bounds; start inside them "
                           f"(model.with_parameters({name}=...)) or widen them (model.with_bounds({name}=(low, high)))")
        names.append(name)
        units.append(p.unit)
        kinds.append("structural")
        if lo >= 0:
            if p.value <= 0:
                raise FitError(f"estimate: parameter {name!r} starts at {p.value:g} but is estimated on the log "
                               f"scale (its lower bound is {lo:g}); give a positive starting value with "
                               f"model.with_parameters({name}=...)")
            log.append(True)
            with np.errstate(divide="ignore"):
                lower.append(float(np.log(lo)) if lo > 0 else -np.inf)
            upper.append(math.log(hi) if math.isfinite(hi) else np.inf)
            x0.append(math.log(p.value))
        else:
            log.append(False)
            lower.append(lo)
            upper.append(hi)
            x0.append(p.value)
    slots = []
    outputs = [o for o in model.output_names if o in error]
    for out in outputs:
        em = error[out]
        own = []
        for pname in em.parameter_names:
            if pname in em.fixed:
                continue
            value = getattr(em, pname)
            own.append((pname, len(names)))
            names.append(f"{out}.{pname}")
            units.append(model.unit_of(out) if pname == "sd" else "1")
            kinds.append("error")
            log.append(True)
            # generous finite bounds (differential evolution needs them; least squares never comes close)
            lower.append(math.log(value) - math.log(1e6))
            upper.append(math.log(value) + math.log(1e6))
            x0.append(math.log(value))
        slots.append(_ErrorSlot(out, em, tuple(own)))
    if not names:
        raise FitError("nothing to estimate: list parameters in estimate=[...] or leave some error-model parameters "
                       "free (not fixed)")
    struct_index = np.array([names_model.index(n) for n in order], dtype=np.int64)
    return _Layout(model, tuple(names), tuple(units), tuple(kinds), np.array(log), np.array(lower, dtype=float),
                   np.array(upper, dtype=float), np.array(x0, dtype=float), struct_index, tuple(slots))


# ====================================================================================================== predictions
class _Problem:
    """Data + model + layout: predictions in one compiled batch call, and the likelihood (private)."""

    def __init__(self, layout: _Layout, data: _Data, blq, settings: SolverSettings, gradient: str):
        from ..simulation import build_events, merge_events

        self.layout, self.data, self.blq = layout, data, blq
        self.settings = dataclasses.replace(settings, on_failure="mark")
        self.model = layout.model
        self.cm = compile_model(self.model)
        self.base = np.array([p.value for p in self.model.parameters], dtype=float)
        engine_outputs = self.cm.model.output_names   # the declared outputs, then endpoint helpers
        self.out_index = np.array([engine_outputs.index(o) for o in data.outputs], dtype=np.int64)
        self.lik = _Likelihood(data, layout, blq)
        if layout.prior is not None:
            layout.prior.reset(layout.x0)
            self.lik.set_prior(layout.prior)
        self.n_failures = 0
        self.n_evaluations = 0
        est = set(layout.names[:layout.n_struct])
        dep = _dose_dependence(self.model, tuple(sorted(est)))
        self.events_depend = any(a or b for a, b in dep.values())
        q0 = self._q(self.base[None, :], 1)
        try:
            events = build_events(self.cm, data.regimens, q0, data.explicit)
        except DosingError as err:    # per-kg doses without a WT column were refused by _check_weights already
            raise DataError(f"doses: {err}") from None
        self.events0 = None if self.events_depend else merge_events(events, data.covariate_events)
        self.gradient = gradient
        self.gradient_note = ""
        self.sens = None
        if gradient == "sensitivity":
            reason = _sensitivity_unsupported(self.model, data, est, dep)
            if reason:
                self.gradient = "finite-difference"
                self.gradient_note = f"sensitivities unavailable ({reason}); finite differences used"
            else:
                from .._sensitivity import sensitivity_model

                self.sens = sensitivity_model(self.model, tuple(layout.names[:layout.n_struct]), data.outputs)
                self.cm_sens = compile_model(self.sens.model)
        x0 = layout.x0
        self.h = np.where(layout.log, 1e-3, 1e-3 * np.maximum(np.abs(x0), 1e-2))[:layout.n_struct]

    # -- parameters
    def params(self, Xs: np.ndarray) -> np.ndarray:
        """Full parameter rows (k, n_params) from internal structural rows (k, n_struct)."""
        Xs = np.atleast_2d(Xs)
        P = np.tile(self.base, (Xs.shape[0], 1))
        if self.layout.n_struct:
            P[:, self.layout.struct_index] = self.layout.natural(
                np.concatenate([Xs, np.zeros((Xs.shape[0], len(self.layout.names) - self.layout.n_struct))],
                               axis=1))[:, :self.layout.n_struct]
        return P

    def _q(self, P: np.ndarray, k: int, cm=None, extra_cov=0):
        cm = cm or self.cm
        n_s = self.data.n_subjects
        pv = np.repeat(P, n_s, axis=0)
        cv = np.tile(self.data.covariates, (k, 1))
        if extra_cov:
            cv = np.hstack([cv, np.ones((cv.shape[0], extra_cov))])
        with np.errstate(all="ignore"):
            return cm.build_q(pv, cv)

    def _events(self, q, k):
        from ..simulation import EventTable, build_events, merge_events

        if self.events0 is not None:
            e = self.events0
            return EventTable(np.tile(e.time, (k, 1)), np.tile(e.kind, (k, 1)), np.tile(e.index, (k, 1)),
                              np.tile(e.value, (k, 1)), np.tile(e.count, k))
        with np.errstate(all="ignore"):
            return merge_events(build_events(self.cm, self.data.regimens * k, q, self.data.explicit),
                                 self.data.covariate_events)

    def start(self, events, k) -> np.ndarray:
        """Where each of the ``k`` copies of the subjects starts [model time unit]: its first record or its first
        event, whichever is earlier."""
        first = np.where(events.count > 0, events.time[:, 0], np.inf)
        return np.minimum(np.tile(self.data.times[:, 0], k), first)

    def _run(self, cm, q, y0, events, k, grid=None):
        """The ``k`` copies of the subjects solved from their start, to the data's times or, given ``grid``, to
        those shared times [model time unit] (rows before a subject's start hold its value after the events
        there)."""
        from ..simulation import run_batch

        d = self.data
        if grid is None:
            tt, pre, n_out = np.tile(d.times, (k, 1)), np.tile(d.pre, (k, 1)), np.tile(d.n_times, k)
        else:
            tt, pre, n_out = grid[None, :], np.zeros((1, grid.size), dtype=np.int64), np.array([grid.size])
        with np.errstate(all="ignore"):
            return run_batch(cm, q, y0, events, tt, pre, n_out, self.start(events, k), self.settings,
                             keep_states=False)

    def predictions(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions (k, n_obs) at internal structural rows ``Xs`` (k, n_struct), and which rows solved."""
        Xs = np.atleast_2d(np.asarray(Xs, dtype=float))
        k = Xs.shape[0]
        n_s = self.data.n_subjects
        self.n_evaluations += k
        P = self.params(Xs)
        d = self.data
        if d.records is not None:   # steady-state doses or resets: simulated record by record
            out, solved = d.records.predictions(self.cm, np.repeat(P, n_s, axis=0), np.tile(np.arange(n_s), k),
                                                self.settings)
            out = out.reshape(k, n_s, out.shape[1], -1)
            F = out[:, d.subject, d.records.position, self.out_index[d.output]]
            ok = solved.reshape(k, n_s).all(axis=1) & np.all(np.isfinite(F), axis=1)
            self.n_failures += int(np.count_nonzero(~ok))
            return F, ok
        q = self._q(P, k)
        good = np.all(np.isfinite(q), axis=1)
        if not good.all():  # solve a harmless stand-in for rows whose parameters give non-finite values
            q0 = self._q(self.base[None, :], 1)
            q = np.where(good[:, None], q, q0[np.arange(q.shape[0]) % n_s])
        with np.errstate(all="ignore"):
            y0 = self.cm.initial_state(q)
        finite = np.all(np.isfinite(y0), axis=1)
        if not finite.all():
            good &= finite
            y0 = np.where(finite[:, None], y0, 0.0)
        try:
            events = self._events(q, k)
        except (DosingError, PkpdError):
            self.n_failures += k
            return np.full((k, self.data.dv.size), np.nan), np.zeros(k, dtype=bool)
        sol = self._run(self.cm, q, y0, events, k)
        good &= sol["status"] == 0
        out = sol["outputs"].reshape(k, n_s, self.data.times.shape[1], -1)
        d = self.data
        F = out[:, d.subject, d.time_index, self.out_index[d.output]]
        ok = good.reshape(k, n_s).all(axis=1) & np.all(np.isfinite(F), axis=1)
        self.n_failures += int(np.count_nonzero(~ok))
        return F, ok

    def derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """Predictions (n_obs,) and their derivatives (n_obs, n_struct) with respect to the internal structural
        parameters, at ``x`` (internal, all parameters)."""
        p_s = self.layout.n_struct
        xs = np.asarray(x, dtype=float)[:p_s]
        if p_s == 0:
            F, ok = self.predictions(xs[None, :])
            return F[0], np.zeros((F.shape[1], 0)), bool(ok[0])
        if self.sens is not None:
            return self._sensitivities(xs)
        h = self.h
        rows = np.vstack([xs, xs + np.diag(h), xs - np.diag(h)])
        F, ok = self.predictions(rows)
        if not ok[0]:
            return F[0], None, False
        dF = np.empty((F.shape[1], p_s))
        for j in range(p_s):
            up, down = ok[1 + j], ok[1 + p_s + j]
            if up and down:
                dF[:, j] = (F[1 + j] - F[1 + p_s + j]) / (2 * h[j])
            elif up:
                dF[:, j] = (F[1 + j] - F[0]) / h[j]
            elif down:
                dF[:, j] = (F[0] - F[1 + p_s + j]) / h[j]
            else:
                dF[:, j] = 0.0
        return F[0], dF, True

    def _sensitivities(self, xs: np.ndarray):
        sm = self.sens
        p_s = self.layout.n_struct
        self.n_evaluations += 1
        P = self.params(xs[None, :])
        q = self._q(P, 1)
        qa = self._q(P, 1, self.cm_sens, extra_cov=1)  # the extra covariate: 1/time unit, always 1.0
        with np.errstate(all="ignore"):
            y0 = self.cm_sens.initial_state(qa)
        if not (np.all(np.isfinite(qa)) and np.all(np.isfinite(y0))):
            self.n_failures += 1
            return np.full(self.data.dv.size, np.nan), None, False
        try:
            events = self._events(q, 1)
        except (DosingError, PkpdError):
            self.n_failures += 1
            return np.full(self.data.dv.size, np.nan), None, False
        events = _sensitivity_jumps(self, events, q)
        sol = self._run(self.cm_sens, qa, y0, events, 1)
        d = self.data
        out = sol["outputs"]
        F = out[d.subject, d.time_index, sm.value_output_index[d.output]]
        dF = out[d.subject[:, None], d.time_index[:, None], sm.output_index[d.output]]
        scale = np.where(self.layout.log[:p_s], P[0, self.layout.struct_index], 1.0)
        dF = dF * scale[None, :]
        ok = bool(np.all(sol["status"] == 0) and np.all(np.isfinite(F)) and np.all(np.isfinite(dF)))
        if not ok:
            self.n_failures += 1
        return F, dF, ok


def _dose_dependence(model: Model, estimated: tuple[str, ...]):
    from .._sensitivity import dose_dependence

    return dose_dependence(model, estimated)


def _sensitivity_unsupported(model: Model, data: _Data, est: set, dep) -> str:
    """Why the sensitivity equations cannot give exact derivatives here ('' when they can)."""
    if data.covariate_events is not None:
        return "time-varying covariates"
    if data.records is not None:
        return "steady-state doses or resets"
    if data.endpoint_records is not None:
        return "clinical endpoint outputs"
    for target, (timing, factor) in dep.items():
        if timing:
            return f"the lag, rate or duration of dose target {target!r} depends on {', '.join(sorted(timing))}"
        if factor:
            d = model.dose_target(target)
            if sum(1 for x in model.doses if x.target == d.target) > 1:
                return f"several dose targets feed state {d.target!r} and the bioavailability is estimated"
            for reg in data.regimens:
                for adm in reg:
                    name = adm.target if adm.target is not None else model.doses[0].name
                    if name == target and isinstance(adm, Infusion) and (adm.rate is not None or adm.modelled):
                        return (f"an infusion given by rate into {target!r} lasts AMT*F/rate, which depends on the "
                                "estimated bioavailability")
    return ""


def _sensitivity_jumps(problem: _Problem, events, q: np.ndarray):
    """Add the jumps of the sensitivity states at doses whose bioavailability depends on an estimated parameter."""
    from .._sensitivity import dose_factor_derivatives
    from ..simulation import EventTable

    model = problem.model
    names = problem.layout.names[:problem.layout.n_struct]
    derivs = dose_factor_derivatives(model, tuple(names))
    if all(d is None for row in derivs for d in row):
        return events
    env = problem.cm.env(q)
    state_of = {}
    for k, d in enumerate(model.doses):
        if any(x is not None for x in derivs[k]):
            state_of[model.state_names.index(d.target)] = k
    n = q.shape[0]
    rows = []
    for s in range(n):
        evs = []
        for e in range(int(events.count[s])):
            t, kind, idx, val = events.time[s, e], events.kind[s, e], events.index[s, e], events.value[s, e]
            evs.append((t, kind, idx, val))
            if kind in (0, 1) and idx in state_of:
                k = state_of[idx]
                sub = {name: np.asarray(v)[s:s + 1] for name, v in env.items()}
                for j, tree in enumerate(derivs[k]):
                    if tree is None:
                        continue
                    with np.errstate(all="ignore"):
                        dlog = float(np.asarray(ex.evaluate(tree, sub), dtype=float).reshape(-1)[0])
                    evs.append((t, kind, int(problem.sens.state_index[idx, j]), val * dlog))
        rows.append(evs)
    width = max(1, max(len(r) for r in rows))
    time = np.full((n, width), np.inf)
    kind = np.zeros((n, width), dtype=np.int64)
    index = np.zeros((n, width), dtype=np.int64)
    value = np.zeros((n, width))
    count = np.zeros(n, dtype=np.int64)
    for s, evs in enumerate(rows):
        count[s] = len(evs)
        for k, (t, kk, ii, vv) in enumerate(evs):
            time[s, k], kind[s, k], index[s, k], value[s, k] = t, kk, ii, vv
    return EventTable(time, kind, index, value, count)


# ====================================================================================================== optimisation
class _Objective:
    """What the optimiser sees (private): the OFV or its residuals as functions of the free internal parameters.

    ``fixed`` maps internal indices to values held fixed (profile likelihood). Results at the last points are
    cached, since optimisers ask for the value and the derivatives at the same point separately. A point where
    the model cannot be solved or the likelihood cannot be evaluated gets a penalty far above anything seen.
    """

    def __init__(self, problem: _Problem, x_full: np.ndarray, fixed: Mapping[int, float] | None = None):
        self.problem = problem
        self.fixed = dict(fixed or {})
        self.free = np.array([i for i in range(x_full.size) if i not in self.fixed], dtype=np.int64)
        self.template = np.array(x_full, dtype=float)
        for i, v in self.fixed.items():
            self.template[i] = v
        self._cache: dict[bytes, tuple] = {}
        self.worst_cost = 1.0
        self.worst_ofv = 1.0
        self.best = (math.inf, None)  # best valid OFV seen, and its full x
        self.last_problem = ""

    def full(self, x_free: np.ndarray) -> np.ndarray:
        x = self.template.copy()
        x[self.free] = x_free
        return x

    def _point(self, x_free, derivatives: bool):
        key = np.asarray(x_free, dtype=float).tobytes()
        hit = self._cache.get(key)
        if hit is not None and (hit[1] is not None or not derivatives):
            return hit
        x = self.full(x_free)
        p = self.problem
        p_s = p.layout.n_struct
        if derivatives:
            F, dF, ok = p.derivatives(x)
        else:
            Fk, okk = p.predictions(x[None, :p_s])
            F, dF, ok = Fk[0], None, bool(okk[0])
        if ok:
            ev = p.lik.evaluate(F, dF, x, residuals=True)
        else:
            ev = _Evaluation()
            ev.problem = "the ODE solver failed"
        if ev.valid:
            cost = float(ev.r @ ev.r)
            self.worst_cost = max(self.worst_cost, abs(cost))
            self.worst_ofv = max(self.worst_ofv, abs(ev.ofv))
            if ev.ofv < self.best[0]:
                self.best = (ev.ofv, x.copy())
        else:
            self.last_problem = ev.problem
        if len(self._cache) > 8:
            self._cache.clear()
        entry = (ev, dF if ok else None, F)
        self._cache[key] = entry
        return entry

    # least squares
    def residual(self, x_free) -> np.ndarray:
        ev = self._point(x_free, derivatives=False)[0]
        if ev.valid:
            return ev.r
        n = self.problem.lik.n_r
        return np.full(n, math.sqrt(_penalty(self.worst_cost) / max(n, 1)))

    def jacobian(self, x_free) -> np.ndarray:
        ev = self._point(x_free, derivatives=True)[0]
        if ev.valid and ev.J is not None:
            return ev.J[:, self.free]
        return np.zeros((self.problem.lik.n_r, self.free.size))

    # scalar
    def value(self, x_free) -> float:
        ev = self._point(x_free, derivatives=False)[0]
        return ev.ofv if ev.valid else _penalty(self.worst_ofv)

    def gradient(self, x_free) -> np.ndarray:
        ev = self._point(x_free, derivatives=True)[0]
        if ev.valid and ev.grad is not None:
            return ev.grad[self.free]
        return np.zeros(self.free.size)


def _penalty(worst: float) -> float:
    """The value given to a point that cannot be evaluated: 1000 times the worst value seen plus 10^6, at most the
    largest float, so that it stays above every value seen and finite (an optimiser refuses an infinite value, and a
    valid objective near 1e306 made 1000 times it overflow)."""
    return min(1e3 * worst + 1e6, sys.float_info.max)


@dataclass(frozen=True)
class _Run:
    x: np.ndarray
    ofv: float
    converged: bool
    message: str
    nfev: int


def _minimise(obj: _Objective, x0_free: np.ndarray, method: str, max_evaluations: int | None,
              lower: np.ndarray, upper: np.ndarray, seed: int | None = None) -> _Run:
    """One local optimisation through lmfit (private); ``seed`` seeds the methods of ``_RANDOM_METHODS``."""
    import lmfit

    params = lmfit.Parameters()
    for i, (v, lo, hi) in enumerate(zip(x0_free, lower, upper)):
        params.add(f"x{i}", value=float(np.clip(v, lo, hi)), min=float(lo), max=float(hi))
    n = len(x0_free)

    def vec(p) -> np.ndarray:
        return np.array([p[f"x{i}"].value for i in range(n)], dtype=float)

    kws: dict = {}
    if method == "least_squares":
        fcn = lambda p: obj.residual(vec(p))
        kws = dict(jac=lambda p, *a, **k: obj.jacobian(vec(p)), x_scale="jac", ftol=1e-10, xtol=1e-10, gtol=1e-10)
    elif method == "leastsq":
        fcn = lambda p: obj.residual(vec(p))
        kws = dict(ftol=1e-10, xtol=1e-10)
    else:
        fcn = lambda p: obj.value(vec(p))
        if method in _GRADIENT_METHODS:
            kws = dict(jac=lambda p, *a, **k: obj.gradient(vec(p)))
    if method in _RANDOM_METHODS:
        kws["seed"] = seed
    if max_evaluations is not None:
        kws["max_nfev"] = int(max_evaluations)
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            res = lmfit.minimize(fcn, params, method=method, calc_covar=False, **kws)
        except ValueError as err:
            raise FitError(f"method {method!r}: {err}") from None
    x = vec(res.params)
    ev = obj._point(x, derivatives=False)[0]
    message = str(getattr(res, "message", "") or "")
    notes = sorted({str(w.message).split("\n")[0] for w in caught})
    if notes:
        message += " (lmfit: " + "; ".join(notes) + ")"
    converged = bool(getattr(res, "success", False)) and ev.valid
    if method == "least_squares" and getattr(res, "status", 1) == 0:
        converged = False
    return _Run(x=x, ofv=ev.ofv if ev.valid else math.inf, converged=converged, message=message.strip(),
                nfev=int(getattr(res, "nfev", 0)))


def _optimise(problem: _Problem, x0: np.ndarray, method: str, max_evaluations, fixed=None,
              rng: np.random.Generator | None = None) -> tuple[_Run, _Objective]:
    """Minimise from ``x0`` (full internal vector); for least squares, re-centre the log-normaliser constants
    and restart when they came close to their floor (so the sum of squares stays the OFV). A method that draws
    random numbers is seeded from ``rng`` (nothing is drawn for the others); a global method's best point is then
    refined by least squares, kept where it lowers the OFV."""
    seed = int(rng.integers(2**32)) if method in _RANDOM_METHODS and rng is not None else None
    layout = problem.layout
    obj = _Objective(problem, x0, fixed)
    free = obj.free
    x_free = x0[free]
    if method in ("least_squares", "leastsq"):
        F, ok = problem.predictions(x0[None, :layout.n_struct])
        if ok[0]:
            problem.lik.reset_constants(F[0], x0)
    run = None
    for _attempt in range(4):
        run = _minimise(obj, x_free, method, max_evaluations, layout.lower[free], layout.upper[free], seed)
        if method not in ("least_squares", "leastsq"):
            break
        ev, _, F = obj._point(run.x, derivatives=False)
        if not (ev.valid and ev.clipped):
            break
        problem.lik.reset_constants(F, obj.full(run.x))
        obj._cache.clear()
        x_free = run.x
    if method in _GLOBAL_METHODS and math.isfinite(run.ofv):
        local, local_obj = _optimise(problem, obj.full(run.x), "least_squares", max_evaluations, fixed)
        if local.ofv <= run.ofv:
            message = f"{method}: {run.message or 'stopped'}; refined by least squares: {local.message}"
            return dataclasses.replace(local, message=message, nfev=run.nfev + local.nfev), local_obj
    return run, obj


def _starts(layout: _Layout, n_starts: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The starting points: the model's values, then uniform draws inside the bounds (log-uniform for
    log-scale parameters; error parameters within a factor 10 of their starting value)."""
    starts = [layout.x0.copy()]
    for _ in range(n_starts - 1):
        x = layout.x0.copy()
        for i in range(x.size):
            lo, hi = layout.lower[i], layout.upper[i]
            if layout.kinds[i] == "error":
                lo, hi = x[i] - math.log(10.0), x[i] + math.log(10.0)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                span = 2.0 if layout.log[i] else max(1.0, abs(x[i]))
                lo = lo if math.isfinite(lo) else x[i] - span
                hi = hi if math.isfinite(hi) else x[i] + span
            x[i] = rng.uniform(lo, hi)
        starts.append(x)
    return starts


# ====================================================================================================== covariance
def _hessian(problem: _Problem, x: np.ndarray, fixed: Sequence[int] = (), *, gradient: bool = False):
    """Hessian of the OFV in internal coordinates by central differences; every perturbed structural parameter
    set is solved in one batch call, and the error-model parameters need no solving at all. With ``gradient``,
    also the central-difference gradient from the same points: ``(H, why, g)``."""
    layout = problem.layout
    p_s, n = layout.n_struct, len(layout.names)
    free = [i for i in range(n) if i not in set(fixed)]
    fs = [i for i in free if i < p_s]
    fe = [i for i in free if i >= p_s]
    h = np.empty(n)
    h[:p_s] = problem.h
    h[p_s:] = 1e-4
    xs = x[:p_s]
    rows = [xs]
    where: dict = {(): 0}
    for j in fs:
        for sj in (1, -1):
            r = xs.copy()
            r[j] += sj * h[j]
            where[((j, sj),)] = len(rows)
            rows.append(r)
    for a, j in enumerate(fs):
        for k in fs[a + 1:]:
            for sj in (1, -1):
                for sk in (1, -1):
                    r = xs.copy()
                    r[j] += sj * h[j]
                    r[k] += sk * h[k]
                    where[((j, sj), (k, sk))] = len(rows)
                    rows.append(r)
    F, ok = problem.predictions(np.array(rows))
    if not ok.all():
        return None, "the model could not be solved at some of the points needed for the Hessian"

    def ofv(key, shifts=()):
        xe = x.copy()
        for i, sgn in tuple(key) + tuple(shifts):   # the structural shifts matter to a prior (MAP fits) only
            xe[i] += sgn * h[i]
        ev = problem.lik.evaluate(F[where[key]], None, xe, residuals=False)
        return ev.ofv if ev.valid else math.nan

    H = np.zeros((n, n))
    f0 = ofv(())
    for j in fs:
        H[j, j] = (ofv(((j, 1),)) - 2 * f0 + ofv(((j, -1),))) / h[j] ** 2
    for a, j in enumerate(fs):
        for k in fs[a + 1:]:
            v = (ofv(((j, 1), (k, 1))) - ofv(((j, 1), (k, -1))) - ofv(((j, -1), (k, 1)))
                 + ofv(((j, -1), (k, -1)))) / (4 * h[j] * h[k])
            H[j, k] = H[k, j] = v
    for j in fs:
        for e in fe:
            v = (ofv(((j, 1),), ((e, 1),)) - ofv(((j, 1),), ((e, -1),)) - ofv(((j, -1),), ((e, 1),))
                 + ofv(((j, -1),), ((e, -1),))) / (4 * h[j] * h[e])
            H[j, e] = H[e, j] = v
    for a, e in enumerate(fe):
        H[e, e] = (ofv((), ((e, 1),)) - 2 * f0 + ofv((), ((e, -1),))) / h[e] ** 2
        for e2 in fe[a + 1:]:
            v = (ofv((), ((e, 1), (e2, 1))) - ofv((), ((e, 1), (e2, -1))) - ofv((), ((e, -1), (e2, 1)))
                 + ofv((), ((e, -1), (e2, -1)))) / (4 * h[e] * h[e2])
            H[e, e2] = H[e2, e] = v
    H = H[np.ix_(free, free)]
    if not np.all(np.isfinite(H)):
        return (None, "the likelihood could not be evaluated at some of the points needed for the Hessian") + (
            (None,) if gradient else ())
    if not gradient:
        return H, ""
    g = np.zeros(n)
    for j in fs:
        g[j] = (ofv(((j, 1),)) - ofv(((j, -1),))) / (2 * h[j])
    for e in fe:
        g[e] = (ofv((), ((e, 1),)) - ofv((), ((e, -1),))) / (2 * h[e])
    return H, "", g[free]


def _polish(problem: _Problem, run: _Run):
    """Newton steps on the OFV (Hessian and gradient by central differences) from a converged least-squares run.

    Used for fits with clinical endpoint records: the least-squares stopping rule (relative change of the cost)
    stops a little before the optimum, and these likelihoods are smooth enough for Newton to finish in one or two
    steps. Returns the run at the polished point and the Hessian there (for the covariance step), or None when a
    step was refused (the covariance step then computes its own).
    """
    layout = problem.layout
    x, ofv = run.x.copy(), run.ofv
    for _ in range(4):
        H, _, g = _hessian(problem, x, gradient=True)
        if H is None or not _positive_definite(H):
            return dataclasses.replace(run, x=x, ofv=ofv), None
        step = -np.linalg.solve(H, g)
        if np.max(np.abs(step)) < 1e-8:   # at the optimum to the precision of the differences: H is its Hessian
            return dataclasses.replace(run, x=x, ofv=ofv), H
        trial = np.clip(x + step, layout.lower, layout.upper)
        F, ok = problem.predictions(trial[None, :layout.n_struct])
        if not ok[0]:
            break
        ev = problem.lik.evaluate(F[0], None, trial, residuals=False)
        if not (ev.valid and ev.ofv <= ofv + 1e-12 * max(1.0, abs(ofv))):
            break
        x, ofv = trial, ev.ofv
    return dataclasses.replace(run, x=x, ofv=ofv), None


def _on_an_empty_category(problem: _Problem, run: _Run) -> _Run:
    """The run, not converged, when an ordinal category no record has puts the optimum on the edge of decreasing
    intercepts (:meth:`pkpd._endpoint_data.EndpointRecords.empty_category_note`)."""
    note = problem.lik.records.empty_category_note(problem.layout.model)
    if not note:
        return run
    return dataclasses.replace(run, converged=False, message=f"{run.message}; {note}" if not run.converged and
                               run.message else note)


def _fisher(problem: _Problem, x: np.ndarray) -> np.ndarray | None:
    """Expected information of the OFV (Gauss-Newton form), 2 J'J."""
    F, dF, ok = problem.derivatives(x)
    if not ok or dF is None:
        return None
    ev = problem.lik.evaluate(F, dF, x, residuals=True, fisher=True)
    if not ev.valid:
        return None
    return 2.0 * ev.J.T @ ev.J


def _positive_definite(H: np.ndarray, rcond: float = 1e-12) -> bool:
    d = np.sqrt(np.abs(np.diag(H)))
    if H.size == 0:
        return True
    if not np.all(d > 0):
        return False
    w = np.linalg.eigvalsh(H / np.outer(d, d))
    return bool(w[0] > rcond * max(w[-1], 1.0))


def _covariance(problem: _Problem, x: np.ndarray, hessian: np.ndarray | None = None
                ) -> tuple[np.ndarray | None, np.ndarray | None, str, str]:
    """(covariance of the internal parameters, Hessian used, method, message); ``hessian``: one already computed
    at ``x``."""
    H, why = (hessian, "") if hessian is not None else _hessian(problem, x)
    if H is not None and _positive_definite(H):
        return 2.0 * np.linalg.inv(H), H, "hessian", ""
    reason = why or "the Hessian of the -2 log-likelihood is not positive definite at the estimate"
    info = _fisher(problem, x)
    if info is not None and _positive_definite(info):
        return (2.0 * np.linalg.inv(info), info, "fisher",
                f"{reason}; standard errors come from the expected (Fisher) information instead, and may be "
                "optimistic")
    M = H if H is not None else info
    names = _null_space_names(M, problem.layout.names) if M is not None else []
    which = f" ({', '.join(names)} cannot be told apart by these data)" if names else ""
    expected = "is singular too" if info is not None else "could not be computed there either"
    return (None, M, "none", f"{reason}, and the expected information {expected}{which}: no standard errors. "
            "See identifiability(result); fix some of these parameters or add informative data")


def _null_space_names(M: np.ndarray, names: Sequence[str], rcond: float = 1e-8) -> list[str]:
    d = np.sqrt(np.abs(np.diag(M)))
    d = np.where(d > 0, d, 1.0)
    w, v = np.linalg.eigh(M / np.outer(d, d))
    small = w <= rcond * max(w[-1], 1.0)
    if not small.any():
        small = np.zeros_like(w, dtype=bool)
        small[0] = True
    load = np.abs(v[:, small]).max(axis=1)
    out = [names[i] for i in np.flatnonzero(load > 0.2)]
    out += [names[i] for i in np.flatnonzero(np.diag(M) <= 0) if names[i] not in out]
    return out


# ====================================================================================================== results
@dataclass(frozen=True, eq=False)
class _Context:
    """What later analyses (profiles, bootstrap, predictions) need from a fit (private)."""

    problem: _Problem
    x: np.ndarray
    cov_x: np.ndarray | None
    information: np.ndarray | None
    method: str
    max_evaluations: int | None


@dataclass(frozen=True, eq=False)
class FitResult:
    """The result of :func:`fit`: estimates with their uncertainty, the objective and the status of the fit.

    Printed in a notebook it shows the parameter table (estimate, unit, SE, RSE %, 95 % CI); :meth:`to_dataframe`
    and :meth:`to_csv` export it. A fit that did not converge, or whose covariance could not be computed, says so
    in :attr:`message` and in its display, and shows no standard errors it does not have (NaN).

    Attributes
    ----------
    model_name : str
    model : Model
        The model with the estimates as parameter values (the others unchanged).
    names : tuple[str, ...]
        Estimated parameters: the structural ones (model order), then the error-model ones as
        ``"<output>.<parameter>"`` (e.g. ``"IL10.cv"``).
    estimates, se, rse_percent, ci_low, ci_high : dict[str, float]
        Estimate, standard error, relative standard error [%] and 95 % confidence interval, on the natural scale
        [the parameter's unit]. For parameters estimated on the log scale the CI is ``exp(log(estimate) +/- 1.96
        SE_log)`` (asymmetric) and the SE comes from the delta method. NaN when unavailable.
    units, scale : dict[str, str]
        Unit of each parameter; ``"log"`` or ``"linear"``, the scale it was estimated on.
    covariance, correlation : ndarray, shape (k, k)
        On the natural scale, in the order of ``names`` (NaN when unavailable).
    error : dict[str, error model]
        The fitted error model of each output.
    blq : M1, M3 or M4
        How observations below the LLOQ were handled.
    objective : float
        -2 log-likelihood at the estimate, constants included (see the module docstring).
    aic, bic : float
        ``objective + 2k`` and ``objective + k log(n_obs)``.
    n_obs, n_censored, n_dropped, n_subjects, n_parameters : int
        Observations contributing to the likelihood, how many of them are censored (M3/M4), BLQ observations
        dropped (M1), subjects, estimated parameters (k).
    converged : bool
        Whether the optimiser reports convergence.
    message : str
        The optimiser's message, plus notes on bounds reached, covariance fallbacks and solver failures.
    covariance_method : {"hessian", "fisher", "none"}
    method, gradient : str
        Optimiser and derivative method used.
    n_evaluations, n_solver_failures : int
        Parameter sets solved (each perturbed set counts), and how many of those the solver failed on.
    starts : tuple[tuple[float, bool], ...]
        Objective and convergence of each start (multi-start), the chosen one being the lowest objective.
    priors : dict[str, prior]
        The priors of a MAP fit (``fit(..., priors=...)``), by parameter; empty for maximum likelihood.
    prior_sd_ratio : dict[str, float]
        Posterior SD / prior SD on the prior's scale, per parameter with a prior: near 1, the estimate comes mainly
        from the prior; near 0, from the data.
    prior_objective : float
        -2 log prior at the estimate (part of ``objective`` in a MAP fit; 0 without priors).

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(m, data, estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.1)})
    >>> print(res)  # doctest: +ELLIPSIS
    FitResult of 'pk_1cmt_iv': converged; -2LL = ... (n_obs = 6, 3 parameters, AIC ..., BIC ...)
    name     estimate  unit  SE  ...
    CL       2.8...    L/h   ...
    ...
    >>> list(res.to_dataframe().columns)
    ['name', 'estimate', 'unit', 'se', 'rse_percent', 'ci_low', 'ci_high']
    """

    model_name: str
    model: Model = field(repr=False)
    names: tuple[str, ...]
    estimates: dict[str, float]
    se: dict[str, float]
    rse_percent: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    units: dict[str, str]
    scale: dict[str, str]
    covariance: np.ndarray = field(repr=False)
    correlation: np.ndarray = field(repr=False)
    error: dict = field(repr=False)
    blq: object
    objective: float
    aic: float
    bic: float
    n_obs: int
    n_censored: int
    n_dropped: int
    n_subjects: int
    n_parameters: int
    converged: bool
    message: str
    covariance_method: str
    method: str
    gradient: str
    n_evaluations: int
    n_solver_failures: int
    starts: tuple = ()
    priors: dict = field(default_factory=dict, repr=False)
    prior_sd_ratio: dict = field(default_factory=dict, repr=False)
    prior_objective: float = 0.0
    _context: _Context = field(default=None, repr=False, compare=False)

    @property
    def outputs(self) -> dict[str, str]:
        """The fitted outputs and their units."""
        if self._context is None:   # loaded from a file: the error models name the fitted outputs
            return {o: self.model.unit_of(o) for o in self.error}
        return {o: self.model.unit_of(o) for o in self._context.problem.data.fitted_outputs}

    @property
    def time_unit(self) -> str:
        """Unit of ``TIME`` in the data (and in :meth:`diagnostics` and :meth:`predict`)."""
        return self._data("time_unit").problem.data.time_unit

    def _data(self, what: str) -> _Context:
        # fits read back by pkpd.fit_files carry estimates and covariance, not the data
        if self._context is None:
            raise FitError(f"{what}: this FitResult was loaded from a file, which holds the estimates and their "
                           "covariance but not the data; redo the fit with pkpd.fit for this")
        return self._context

    # -- files
    def save(self, path):
        """Write the fit to a JSON file (estimates, covariance, status; see :mod:`pkpd.fit_files`)."""
        from ..fit_files import save_fit

        return save_fit(self, path)

    @classmethod
    def load(cls, path, *, model: Model | None = None) -> FitResult:
        """Read a fit written by :meth:`save` (validated field by field; nothing in the file is executed)."""
        from ..fit_files import load_fit

        out = load_fit(path, model=model)
        if not isinstance(out, cls):
            raise FitError(f"{path}: holds a {type(out).__name__}, not a FitResult; use pkpd.fit_files.load_fit")
        return out

    # -- tables
    def to_dataframe(self):
        """The parameter table: columns ``name, estimate, unit, se, rse_percent, ci_low, ci_high`` (pandas)."""
        import pandas as pd

        return pd.DataFrame({
            "name": list(self.names),
            "estimate": [self.estimates[n] for n in self.names],
            "unit": [self.units[n] for n in self.names],
            "se": [self.se[n] for n in self.names],
            "rse_percent": [self.rse_percent[n] for n in self.names],
            "ci_low": [self.ci_low[n] for n in self.names],
            "ci_high": [self.ci_high[n] for n in self.names],
        })

    def to_csv(self, path) -> None:
        """Write :meth:`to_dataframe` to a CSV file, each number with 10 significant digits."""
        try:
            self.to_dataframe().to_csv(path, index=False, float_format="%.10g")
        except OSError as err:
            raise PkpdError(f"{os.fspath(path)}: cannot write the parameter table ({err.strerror or err})") from None

    def summary(self) -> dict:
        """Objective (-2 log-likelihood), AIC, BIC, n_obs, convergence and a few more as a plain dict, keys spelled
        as ``pkpd fit`` writes them to summary.json (``objective, AIC, BIC, n_obs, converged, ...``)."""
        return {"model": self.model_name, "objective": self.objective, "AIC": self.aic, "BIC": self.bic,
                "n_obs": self.n_obs, "n_censored": self.n_censored, "n_subjects": self.n_subjects,
                "n_parameters": self.n_parameters, "converged": self.converged, "message": self.message,
                "covariance_method": self.covariance_method, "method": self.method, "gradient": self.gradient,
                "blq": type(self.blq).__name__, "n_solver_failures": self.n_solver_failures}

    def _status(self) -> str:
        return "converged" if self.converged else "NOT CONVERGED"

    def __repr__(self) -> str:
        what = "-2 log(L x prior)" if self.priors else "-2LL"
        head = (f"FitResult of {self.model_name!r}: {self._status()}; {what} = {self.objective:.4f} (n_obs = "
                f"{self.n_obs}, {self.n_parameters} parameters, AIC {self.aic:.2f}, BIC {self.bic:.2f})")
        rows = [("name", "estimate", "unit", "SE", "RSE %", "95 % CI")]
        for n in self.names:
            rows.append((n, _fmt(self.estimates[n]), self.units[n], _fmt(self.se[n]), _fmt(self.rse_percent[n], 3),
                         f"[{_fmt(self.ci_low[n])}, {_fmt(self.ci_high[n])}]"))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        if self.message:
            lines.append(f"note: {self.message}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td><b>{esc(n)}</b></td><td>{_fmt(self.estimates[n])}</td><td>{esc(self.units[n])}</td>"
            f"<td>{_fmt(self.se[n])}</td><td>{_fmt(self.rse_percent[n], 3)}</td>"
            f"<td>[{_fmt(self.ci_low[n])}, {_fmt(self.ci_high[n])}]</td></tr>" for n in self.names)
        colour = "#070" if self.converged else "#b00"
        note = f"<p style='color:#b00'>{esc(self.message)}</p>" if self.message else ""
        return (f"<div><b>Fit</b> of {esc(self.model_name)}: <span style='color:{colour}'><b>{self._status()}"
                f"</b></span>; &minus;2LL = {self.objective:.4f}, AIC = {self.aic:.2f}, BIC = {self.bic:.2f}; "
                f"{self.n_obs} observations ({self.n_censored} censored, BLQ: {type(self.blq).__name__}), "
                f"{self.n_subjects} subject(s){note}<table><tr><th>parameter</th><th>estimate</th><th>unit</th>"
                f"<th>SE</th><th>RSE %</th><th>95 % CI</th></tr>{rows}</table></div>")

    # -- predictions and diagnostics
    def diagnostics(self):
        """One row per observation: ``ID, TIME, output, DV, LLOQ, BLQ, PRED, IPRED, RES, WRES`` (pandas).

        ``PRED`` is the prediction with the estimated parameters (the same for every subject of a pooled fit, so
        ``IPRED`` equals it here; see :class:`SubjectFits` for individual fits). ``RES = DV - PRED``; ``WRES`` is
        ``(DV - PRED) / SD`` (on the log scale for log-normal errors), NaN for censored observations. ``TIME`` is in
        the data's time unit.
        """
        return _diagnostics(self._data("diagnostics"))

    def predict(self, times=None, *, n_samples: int = 0, seed=None, level: float = 0.95):
        """Predictions for every subject of the data on a time grid, optionally with a band from parameter
        uncertainty.

        Parameters
        ----------
        times : array_like, optional
            Times [data time unit]; default 200 points from the earliest subject's start to the last
            observation. Each subject is simulated as the fit simulates it (from its first record or first
            dose, whichever is earlier, with its covariate changes), so a time before its start has no
            prediction (NaN).
        n_samples : int
            Parameter sets drawn from the estimates' approximate normal distribution (on the estimation scale)
            to form the band (0: no band). Needs the covariance.
        seed : int or numpy Generator, optional
        level : float
            Coverage of the band (0.95: 2.5th to 97.5th percentiles).

        Returns
        -------
        pandas.DataFrame
            Columns ``ID, TIME, output, PRED`` and, with samples, ``lower, upper``.
        """
        return _predict(self._data("predict"), times, n_samples, seed, level)

    def plot(self, **kwargs):
        """Individual fits with observations and a band from parameter uncertainty; see
        :func:`pkpd.plots.plot_individual_fits`."""
        from ..plots import plot_individual_fits

        return plot_individual_fits(self, **kwargs)


def _fmt(v: float, digits: int = 4) -> str:
    if v is None or not np.isfinite(v):
        return "NaN" if v is None or np.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}g}"


def _natural_scale(values: np.ndarray, log) -> np.ndarray:
    """d(natural value)/d(internal value) of each parameter: the value where it is estimated as its log, else 1."""
    return np.where(log, values, 1.0)


def _natural_se(se_x: np.ndarray, values: np.ndarray, log) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors on the natural scale (delta method) and RSE [%] from those of the internal parameters."""
    se = se_x * np.abs(_natural_scale(values, log))
    with np.errstate(all="ignore"):
        return se, 100.0 * se / np.abs(values)


def _result(problem: _Problem, run: _Run, starts, cov_info, method: str, max_evaluations) -> FitResult:
    layout, data = problem.layout, problem.data
    x = run.x
    cov_x, info, cov_method, cov_message = cov_info
    names = layout.names
    k = len(names)
    values = layout.natural(x)
    scale = _natural_scale(values, layout.log)
    if cov_x is not None:
        se_x = np.sqrt(np.maximum(np.diag(cov_x), 0.0))
        cov = cov_x * np.outer(scale, scale)
        d = np.where(se_x > 0, se_x, np.nan)
        corr = cov_x / np.outer(d, d)
    else:
        se_x = np.full(k, np.nan)
        cov = np.full((k, k), np.nan)
        corr = np.full((k, k), np.nan)
    se, rse = _natural_se(se_x, values, layout.log)
    with np.errstate(all="ignore"):
        lo = np.where(layout.log, np.exp(x - _Z95 * se_x), values - _Z95 * se)
        hi = np.where(layout.log, np.exp(x + _Z95 * se_x), values + _Z95 * se)
    p_s = layout.n_struct
    params = tuple(dataclasses.replace(p, value=float(values[list(names).index(p.name)])) if p.name in names[:p_s]
                   else p for p in layout.model.parameters)
    fitted = dataclasses.replace(layout.model, parameters=params)
    errors = {s.output: s.model_at(x) for s in layout.errors}
    n_cens = int(data.censored.sum())
    n_obs = data.n_observations
    notes = []
    if run.message and not run.converged:
        notes.append(run.message)
    elif not run.converged:
        notes.append("the optimiser did not report convergence")
    for i in range(k):
        for bound, word in ((layout.lower[i], "lower"), (layout.upper[i], "upper")):
            if math.isfinite(bound) and abs(x[i] - bound) <= 1e-6 * max(1.0, abs(bound)):
                edge = float(np.exp(bound)) if layout.log[i] else float(bound)
                notes.append(f"{names[i]} is at its {word} bound ({edge:.4g} {layout.units[i]}): the estimate is "
                             f"limited by the bound"
                             + (f"; widen it with model.with_bounds({names[i]}=(low, high)) if that is plausible"
                                if i < p_s else ""))
    if cov_message:
        notes.append(cov_message)
    if problem.gradient_note:
        notes.append(problem.gradient_note)
    if problem.n_failures:
        notes.append(f"the ODE solver failed on {problem.n_failures} of {problem.n_evaluations} parameter sets tried "
                     "(penalised, the fit went on)")
    prior = layout.prior
    ratios, prior_ofv = {}, 0.0
    if prior is not None:
        ratios = prior.sd_ratio(dict(zip(names, values.tolist())), dict(zip(names, se.tolist())))
        prior_ofv = float(prior.evaluate(x, k)[0])
        mostly = [n for n, v in ratios.items() if v >= 0.7]
        notes.append("maximum a posteriori" + (f"; informed mainly by the prior (posterior/prior SD >= 0.7): "
                                                f"{', '.join(mostly)}" if mostly else ""))
    ctx = _Context(problem, x, cov_x, info, method, max_evaluations)
    return FitResult(
        model_name=layout.model.name, model=fitted, names=names,
        estimates=dict(zip(names, values.tolist())), se=dict(zip(names, se.tolist())),
        rse_percent=dict(zip(names, rse.tolist())), ci_low=dict(zip(names, lo.tolist())),
        ci_high=dict(zip(names, hi.tolist())), units=dict(zip(names, layout.units)),
        scale={n: "log" if lg else "linear" for n, lg in zip(names, layout.log)}, covariance=cov, correlation=corr,
        error=errors, blq=problem.blq, objective=run.ofv, aic=run.ofv + 2 * k, bic=run.ofv + k * math.log(n_obs),
        n_obs=n_obs, n_censored=n_cens, n_dropped=data.dropped, n_subjects=data.n_subjects, n_parameters=k,
        converged=run.converged, message="; ".join(notes), covariance_method=cov_method, method=method,
        gradient=problem.gradient, n_evaluations=problem.n_evaluations, n_solver_failures=problem.n_failures,
        starts=tuple(starts), priors=dict(prior.priors) if prior is not None else {}, prior_sd_ratio=ratios,
        prior_objective=prior_ofv, _context=ctx)


@dataclass(frozen=True, eq=False)
class SubjectFits:
    """The result of :func:`fit` with ``per_subject=True``: one :class:`FitResult` per subject, failures kept apart.

    Attributes
    ----------
    results : dict[ID, FitResult]
        The subjects whose fit could be done (check each one's ``converged``).
    failures : dict[ID, str]
        The subjects whose fit could not be done, with the reason; the others are unaffected.
    model_name : str

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> t = np.array([1.0, 4, 12, 24])
    >>> rows = []
    >>> for sid, cl in ((1, 2.5), (2, 3.5)):
    ...     conc = 100 / 32 * np.exp(-cl / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99])
    ...     rows += [dict(ID=sid, TIME=0, EVID=1, AMT=100, AMTU="mg", DV=np.nan)]
    ...     rows += [dict(ID=sid, TIME=ti, EVID=0, AMT=0, DV=c) for ti, c in zip(t, conc)]
    >>> fits = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), pd.DataFrame(rows), estimate=["CL"],
    ...                 error={"conc": pkpd.Proportional(cv=0.05, fixed=True)}, per_subject=True)
    >>> {sid: round(r.estimates["CL"], 2) for sid, r in fits.results.items()}
    {1: 2.51, 2: 3.51}
    """

    model_name: str
    results: dict
    failures: dict

    def to_dataframe(self):
        """Long table: ``ID`` plus the columns of :meth:`FitResult.to_dataframe`, and ``converged``."""
        import pandas as pd

        frames = []
        for sid, r in self.results.items():
            df = r.to_dataframe()
            df.insert(0, "ID", sid)
            df["converged"] = r.converged
            frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["ID", "name", "estimate", "unit", "se", "rse_percent", "ci_low", "ci_high",
                                         "converged"])
        return pd.concat(frames, ignore_index=True)

    def to_csv(self, path) -> None:
        """Write :meth:`to_dataframe` to a CSV file."""
        try:
            self.to_dataframe().to_csv(path, index=False, float_format="%.10g")
        except OSError as err:
            raise PkpdError(f"{os.fspath(path)}: cannot write the table ({err.strerror or err})") from None

    def diagnostics(self):
        """:meth:`FitResult.diagnostics` of every fitted subject: ``IPRED`` and ``WRES`` from the subject's own
        fit; ``PRED`` is NaN (per-subject fits have no population prediction)."""
        import pandas as pd

        frames = [r.diagnostics().assign(PRED=np.nan) for r in self.results.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def __repr__(self) -> str:
        conv = sum(r.converged for r in self.results.values())
        lines = [f"SubjectFits of {self.model_name!r}: {len(self.results)} fitted ({conv} converged), "
                 f"{len(self.failures)} failed"]
        lines += [f"  subject {sid}: FAILED: {why}" for sid, why in self.failures.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        table = self.to_dataframe()
        fails = "".join(f"<li>subject {esc(str(s))}: {esc(w)}</li>" for s, w in self.failures.items())
        fails = f"<p style='color:#b00'>Failed:</p><ul>{fails}</ul>" if fails else ""
        return (f"<div><b>Per-subject fits</b> of {esc(self.model_name)}: {len(self.results)} fitted, "
                f"{len(self.failures)} failed{fails}{table.to_html(index=False, float_format=lambda v: f'{v:.4g}')}"
                "</div>")


# ====================================================================================================== fit
def fit(model: Model, data, *, estimate: Sequence[str], error: Mapping[str, object] | None = None, blq="M3",
        per_subject: bool = False, method: str = "least_squares", n_starts: int = 1, seed=None,
        gradient: str = "finite-difference", settings: SolverSettings | None = None,
        max_evaluations: int | None = None, covariance: bool = True, priors=False) -> FitResult | SubjectFits:
    """Fit model parameters to observations by maximum likelihood (or maximum a posteriori, with ``priors``).

    Main arguments
    --------------
    model : Model
        E.g. ``pkpd.load_model("msc_salvadori")``. Parameters not estimated keep their values; starting values
        are the model's (change them with ``model.with_parameters``), bounds the model's (``model.with_bounds``).
    data : NonmemDataset, pandas.DataFrame or path
        Observations and doses in the NONMEM layout (see :func:`pkpd.nonmem.read_nonmem`): ``DVID`` names each
        observation's output (optional with one output), ``LLOQ`` with ``BLQ`` or ``CENS`` mark values below the
        limit of quantification, covariate columns (``WT``...) are the model's covariates. A covariate may change
        within a subject: as in NONMEM, a record's value applies from the previous record up to and including
        this one (next observation carried backward).
    estimate : sequence of str
        Parameters to estimate, e.g. ``["k_c", "s_p", "EC50"]``.
    error : dict[str, error model]
        One error model per fitted continuous output, e.g. ``{"IL10": pkpd.Proportional(cv=0.2), "cells":
        pkpd.LogNormal(sigma=0.5)}``; their parameters are estimated too unless ``fixed``. Every observation must
        belong to one of these outputs or to a clinical endpoint output of the model (time-to-event, binary,
        ordinal, count: :mod:`pkpd.endpoints`), whose exact likelihood is declared in the model file; ``error``
        may be left out when all the data are such endpoints. Endpoint records follow NONMEM's conventions (see
        ``docs/model_format.md``): a time-to-event record has DV = 1 for an event at TIME (with ``CENS=1``: an
        event somewhere in the risk interval) and DV = 0 for censoring at TIME, its risk interval starting at the
        previous record of that output (or t = 0); binary, ordinal and count records hold the observed value.
    blq : "M3" (default), "M4", "M1" or an M1/M3/M4 object
        Handling of observations below the LLOQ (see :mod:`pkpd.error_models`).
    per_subject : bool
        False (default): one parameter set for all subjects (pooled). True: one fit per subject, returned as
        :class:`SubjectFits`; a subject whose fit cannot be done is reported, the others go on.

    Other arguments
    ---------------
    method : str
        ``"least_squares"`` (default; trust-region reflective on the OFV as a sum of squares), or an lmfit method
        minimising the OFV: ``"nelder"``, ``"powell"``, ``"lbfgsb"``, ``"bfgs"``, ``"leastsq"``,
        ``"differential_evolution"`` (needs finite bounds), ...; the best point of a global method
        (``"differential_evolution"``, ``"basinhopping"``, ``"dual_annealing"``, ``"shgo"``) is refined by least
        squares.
    n_starts : int
        Number of starting points: the model's values, then random points inside the bounds; the best fit wins.
    seed : int or numpy Generator, optional
        For the random starting points, and for the methods that draw random numbers (``"differential_evolution"``,
        ``"basinhopping"``, ``"dual_annealing"``): the same seed gives the same fit.
    gradient : {"finite-difference", "sensitivity"}
        Derivatives of the predictions: central differences (default; the 2k+1 parameter sets solved in the same
        batch call; nothing to compile), or the forward sensitivity equations (exact to the solver tolerance). The
        augmented model of the sensitivities is compiled once per model and set of estimated parameters (from
        about 20 s for a 2-state model to 2 minutes for msc_salvadori with 9 parameters), then cached on disk;
        after that each gradient costs a few plain solves instead of 2k+1, which pays for repeated fits with the
        same parameters (bootstrap, recovery studies, profiles): the notebook's 13-parameter fit takes 0.55 s
        instead of about 2 s. Where a dose's timing depends on an estimated parameter (lag, modelled duration,
        an infusion given by rate with an estimated bioavailability) finite differences are used, and the
        message says so.
    settings : SolverSettings, optional
        ODE solver options; failures are always penalised and counted rather than raised.
    max_evaluations : int, optional
        Budget of objective evaluations per start (lmfit's ``max_nfev``).
    covariance : bool
        Compute the covariance matrix (standard errors, CIs, correlations). Default True.
    priors : bool or dict
        ``True``: maximum a posteriori with the priors of the model file (:mod:`pkpd.priors`) on the estimated
        parameters (a parameter without one keeps a flat prior); a dict name -> prior adds or replaces priors,
        also of error-model parameters (``{"IL10.cv": pkpd.HalfNormalPrior(0.5)}``). ``objective`` is then
        -2 log(likelihood x prior) (``prior_objective`` the prior's part), the covariance that of the posterior
        (Laplace approximation), and ``prior_sd_ratio`` gives, per parameter with a prior, posterior SD / prior SD
        on the prior's scale: near 1 the estimate comes mainly from the prior, near 0 from the data.

    Returns
    -------
    FitResult, or SubjectFits when ``per_subject``

    Raises
    ------
    FitError
        Unknown parameter or output names (with close matches), no observations for an output, all observations
        of an output below the LLOQ, observations of an output without an error model, an error model that cannot
        be evaluated at the starting values (e.g. proportional error where the prediction is 0), the model failing
        at the starting values.
    DataError
        Invalid data (non-finite DV, a log-normal output with DV <= 0, a BLQ flag without LLOQ...), naming the row.

    See Also
    --------
    profile_likelihood, bootstrap, identifiability, likelihood_ratio_test, pkpd.plots.plot_individual_fits

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> t = np.array([0.5, 1, 2, 4, 8, 12, 24])
    >>> rng = np.random.default_rng(0)
    >>> conc = pkpd.Proportional(cv=0.1).sample(100 / 32 * np.exp(-2.8 / 32 * t), rng)
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 7, "AMT": [100] + [0] * 7, "AMTU": "mg",
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(m, data, estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.2)})
    >>> res.converged, round(res.estimates["CL"], 2), round(res.estimates["V"], 1)
    (True, 2.68, 32.2)
    """
    if not isinstance(model, Model):
        raise FitError(f"model must be a pkpd Model (from pkpd.load_model); got {type(model).__name__}")
    blq = _censoring(blq)
    if method not in _METHODS:
        raise FitError(f"method: unknown optimiser {method!r}." + did_you_mean(str(method), _METHODS))
    if gradient not in _GRADIENTS:
        raise FitError(f"gradient: must be 'finite-difference' or 'sensitivity'; got {gradient!r}")
    if isinstance(n_starts, bool) or not isinstance(n_starts, int | np.integer) or n_starts < 1:
        raise FitError(f"n_starts: must be a positive integer; got {n_starts!r}")
    settings = settings or SolverSettings()
    if not isinstance(settings, SolverSettings):
        raise FitError(f"settings must be a SolverSettings; got {type(settings).__name__}")
    layout = _layout(model, estimate, error)
    prior_terms = None
    if priors is not False and priors is not None:
        from ..priors import IndividualPriorTerms, resolve_priors

        chosen = resolve_priors(model, priors, layout.names, layout.names[layout.n_struct:])
        prior_terms = IndividualPriorTerms(layout.names, chosen, layout.log)
    layout = dataclasses.replace(layout, prior=prior_terms)
    outputs = tuple(s.output for s in layout.errors)
    data_ = _observations(model, data, outputs, blq)
    rng = np.random.default_rng(seed)
    if not per_subject:
        return _fit_data(layout, data_, blq, settings, gradient, method, int(n_starts), rng, max_evaluations,
                         covariance)
    results, failures = {}, {}
    for i, sid in enumerate(data_.ids):
        sub = data_.subset([i])
        missing = [o for k, o in enumerate(outputs) if not np.any((sub.output == k) & ~sub.censored)]
        if missing:
            failures[sid] = f"no quantified observations of {', '.join(missing)}"
            continue
        try:
            results[sid] = _fit_data(layout, sub, blq, settings, gradient, method, int(n_starts), rng,
                                     max_evaluations, covariance)
        except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
            failures[sid] = str(err)
    return SubjectFits(model_name=model.name, results=results, failures=failures)


def _censoring(blq):
    if isinstance(blq, M1 | M3 | M4):
        return blq
    if isinstance(blq, str) and blq in CENSORING:
        return CENSORING[blq]()
    raise FitError(f"blq: must be 'M1' (drop), 'M3' or 'M4', or pkpd.M1()/M3()/M4(); got {blq!r}"
                   + (did_you_mean(blq, CENSORING) if isinstance(blq, str) else ""))


def _fit_data(layout, data, blq, settings, gradient, method, n_starts, rng, max_evaluations, covariance,
              x_start=None) -> FitResult:
    problem = _Problem(layout, data, blq, settings, gradient)
    x0 = layout.x0 if x_start is None else x_start
    _check_start(problem, x0)
    starts = _starts(layout, n_starts, rng)
    if x_start is not None:
        starts[0] = x_start
    best = None
    summary = []
    for x in starts:
        run, _ = _optimise(problem, x, method, max_evaluations, rng=rng)
        summary.append((run.ofv, run.converged))
        if best is None or run.ofv < best.ofv:
            best = run
    if best is None or not math.isfinite(best.ofv):
        raise FitError("the fit found no point where the model and the likelihood can be evaluated")
    hessian = None
    if problem.lik.records is not None and best.converged:
        best, hessian = _polish(problem, best)
    if problem.lik.records is not None:
        best = _on_an_empty_category(problem, best)
    cov_info = (_covariance(problem, best.x, hessian) if covariance
                else (None, None, "none", "covariance not computed (covariance=False)"))
    return _result(problem, best, summary, cov_info, method, max_evaluations)


def _check_start(problem: _Problem, x0: np.ndarray) -> None:
    F, ok = problem.predictions(x0[None, :problem.layout.n_struct])
    if not ok[0]:
        raise FitError("the model cannot be solved at the starting values (check the parameter values and the "
                       "doses), so the fit cannot start")
    ev = problem.lik.evaluate(F[0], None, x0, residuals=False)
    if not ev.valid:
        raise FitError(f"the likelihood cannot be evaluated at the starting values: {ev.problem}")


# ====================================================================================================== predictions
def _to_data_time(data: _Data) -> float:
    return un.convert(data.model.time_unit, data.time_unit)


def _diagnostics(ctx: _Context):
    import pandas as pd

    problem, x = ctx.problem, ctx.x
    d = problem.data
    F, ok = problem.predictions(x[None, :problem.layout.n_struct])
    F = F[0]
    wres = np.full(F.size, np.nan)
    with np.errstate(all="ignore"):
        for g in problem.lik.groups:
            em = g.slot.model_at(x)
            f = F[g.idx]
            s = em._scale(f)[0]
            m = np.log(f) if g.log_scale else f
            w = np.full(f.size, np.nan)
            w[g.unc] = (g.u - m[g.unc]) / s[g.unc]
            wres[g.idx] = w
    cont = d.continuous
    table = pd.DataFrame({
        "ID": [d.ids[i] for i in d.subject[cont]],
        "TIME": d.time[cont] * _to_data_time(d),
        "output": [d.outputs[k] for k in d.output[cont]],
        "DV": d.dv[cont],
        "LLOQ": d.limit[cont],
        "BLQ": d.censored[cont],
        "PRED": F[cont],
        "IPRED": F[cont],
        "RES": d.dv[cont] - F[cont],
        "WRES": wres[cont],
    })
    rec = d.endpoint_records
    if rec is None:
        return table
    # endpoint records: PRED is the endpoint's prediction for the record (probability of DV = 1, expected category,
    # expected count, or probability of no event over the risk interval); no weighted residual
    pred = rec.predictions(F)
    ep_rows = pd.DataFrame({"ID": [d.ids[i] for i in rec.subject], "TIME": rec.time * _to_data_time(d),
                            "output": [rec.specs[k].name for k in rec.output], "DV": rec.dv, "LLOQ": np.nan,
                            "BLQ": False, "PRED": pred, "IPRED": pred, "RES": rec.dv - pred, "WRES": np.nan})
    return pd.concat([table, ep_rows], ignore_index=True) if len(table) else ep_rows


def _predict(ctx: _Context, times, n_samples: int, seed, level: float):
    import pandas as pd

    problem, x = ctx.problem, ctx.x
    d, layout = problem.data, problem.layout
    p_s = layout.n_struct
    to_data = _to_data_time(d)
    if not isinstance(n_samples, int | np.integer) or n_samples < 0:
        raise FitError(f"n_samples: must be an integer >= 0; got {n_samples!r}")
    if n_samples and ctx.cov_x is None:
        raise FitError("predict: no covariance matrix (see the fit's message), so no band from parameter "
                       "uncertainty can be drawn; use n_samples=0")
    level = check_level(level, "predict", FitError)
    if d.records is not None:
        raise FitError("predict: the data have steady-state doses or resets, which a Regimen cannot express; "
                       "simulate the dataset at the estimates with pkpd.nonmem.simulate_nonmem(result.model, "
                       "data) instead")
    rng = np.random.default_rng(seed)
    xs = x[:p_s][None, :]
    if n_samples and p_s:
        cov = ctx.cov_x[:p_s, :p_s]
        draws = rng.multivariate_normal(x[:p_s], cov, size=n_samples, method="eigh")
        draws = np.clip(draws, layout.lower[:p_s], layout.upper[:p_s])
        xs = np.vstack([xs, draws])
    k = xs.shape[0]
    P = problem.params(xs)
    if k > 1:
        # a draw held at a bound is the bound itself (on the log scale exp(log(11)) rounds to 11.000000000000002)
        for j, name in enumerate(layout.names[:p_s]):
            lo, hi = layout.model.parameter(name).bounds
            c = layout.struct_index[j]
            P[1:, c] = np.where(draws[:, j] == layout.upper[j], hi,
                                np.where(draws[:, j] == layout.lower[j], lo, P[1:, c]))
    n_s = d.n_subjects
    # The fit's own simulation (its parameters, doses, covariate changes and solver), on a grid: each subject
    # starts where the fit starts it (its first record or first dose, whichever is earlier), so the predictions at
    # the observation times are the fit's whatever other times are asked for; before its start a subject has no
    # prediction (NaN).
    q = problem._q(P, k)
    with np.errstate(all="ignore"):
        y0 = problem.cm.initial_state(q)
    good = np.all(np.isfinite(q), axis=1) & np.all(np.isfinite(y0), axis=1)
    q, y0 = np.where(good[:, None], q, q[0]), np.where(good[:, None], y0, y0[0])
    events = problem._events(q, k)
    start = problem.start(events, k)
    if times is None:
        times = np.linspace(float(start[:n_s].min()) * to_data, float(d.time.max()) * to_data, 200)
    t_data = np.unique(np.asarray(times, dtype=float).reshape(-1))
    t_model = t_data / to_data
    sol = problem._run(problem.cm, q, y0, events, k, grid=t_model)
    status = np.where(good, sol["status"], 3)
    _warn_failed_predictions(status.reshape(k, n_s))
    outputs = np.where((status != 0)[:, None, None] | (t_model[None, :, None] < start[:, None, None]), np.nan,
                       sol["outputs"])
    frames = []
    for out in d.fitted_outputs:
        values = outputs[:, :, problem.cm.model.output_names.index(out)].reshape(k, n_s, t_model.size)
        frame = {"ID": np.repeat([d.ids[i] for i in range(n_s)], t_model.size), "TIME": np.tile(t_data, n_s),
                 "output": out, "PRED": values[0].reshape(-1)}
        if k > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                # no times, no band (numpy's nanpercentile of an empty array has no axis for the percentiles)
                q = (np.nanpercentile(values[1:], [50 * (1 - level), 50 * (1 + level)], axis=0) if t_model.size
                     else np.empty((2, n_s, 0)))
            frame["lower"] = q[0].reshape(-1)
            frame["upper"] = q[1].reshape(-1)
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


def _warn_failed_predictions(status: np.ndarray) -> None:
    """One warning for the simulations of predict that failed (status (k, n_subjects): row 0 at the estimates, the
    others parameter draws): their predictions are NaN, and a band leaves them out."""
    from ..errors import PkpdWarning
    from ..simulation import _REMEDY

    failed = status != 0
    if not failed.any():
        return
    parts = []
    if failed[0].any():
        parts.append(f"the simulation at the estimates failed for {int(failed[0].sum())} of {failed.shape[1]} "
                     "subject(s): PRED is NaN")
    drawn = failed[1:].any(axis=1)
    if drawn.any():
        parts.append(f"{int(drawn.sum())} of {drawn.size} parameter draws could not be simulated (for at least one "
                     "subject) and are left out of the band")
    code = int(status[failed][0])
    warnings.warn(f"predict: {'; '.join(parts)}. {_REMEDY.get(code, '')}".rstrip(), PkpdWarning, stacklevel=4)


# the public functions report their documented home (pkpd.nlme.vpc, pkpd.fitting.fit); code and doctests stay here
fit.__module__ = "pkpd.fitting"
