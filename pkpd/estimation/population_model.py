"""The parameters of a population model as the estimator sees them (private): typical values, the Cholesky factor
of Omega, residual-error parameters, inter-occasion variances and covariate coefficients in one internal vector;
covariate effects (power, linear, categorical, indicator) applied per subject.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..error_models import ERROR_MODELS
from ..errors import DataError, FitError, did_you_mean
from ..model import Model
from ..population import IIV


# ====================================================================================================== layout
@dataclass(frozen=True, eq=False)
class _Layout:
    """The internal vector: typical values, Cholesky factor of Omega, error parameters (private)."""

    model: Model
    theta_names: tuple[str, ...]
    theta_log: np.ndarray
    theta_lower: np.ndarray
    theta_upper: np.ndarray
    chol_index: tuple[tuple[int, int], ...]       # estimated (row, col) of L
    outputs: tuple[str, ...]
    error_slots: tuple[tuple[int, str], ...]       # (output index, parameter name)
    base: np.ndarray
    L0: np.ndarray
    errors0: tuple
    x0: np.ndarray
    iov_names: tuple = ()                          # parameters with inter-occasion variability (diagonal Pi)
    n_occ: int = 0                                 # occasions (most of any subject)
    effects: tuple = ()                            # _Coefficient (initial values), estimated
    user_effects: tuple = ()                       # the CovariateEffect objects they come from
    effect_columns: np.ndarray | None = None       # (n_effects, n_subjects) covariate values

    @property
    def n(self) -> int:
        return self.x0.size

    @functools.cached_property
    def theta_index(self) -> list[int]:
        """Model parameter index of each estimated typical value (looked up once: unpack runs thousands of times
        in SAEM)."""
        return [self.model.parameter_names.index(n) for n in self.theta_names]

    def coefficients(self, X: np.ndarray) -> np.ndarray:
        """Covariate-effect coefficients (K, n_effects) from internal rows X (K, n) (natural scale, last)."""
        X = np.atleast_2d(X)
        return X[:, X.shape[1] - len(self.effects):]

    def subject_theta(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Typical rows theta (K, n_params) adjusted per subject by the covariate effects: (K, n, n_params)
        (theta itself when there are none)."""
        if not self.effects:
            return theta
        coef = self.coefficients(X)
        return _apply_effects(self.model, theta, self.effects, coef, self.effect_columns)

    def names(self) -> list[str]:
        iiv_names = [f"omega({a},{b})" for a, b in self.chol_index]
        return (list(self.theta_names) + iiv_names + [f"{self.outputs[o]}.{p}" for o, p in self.error_slots]
                + [f"pi({n})" for n in self.iov_names] + [c.name for c in self.effects])

    def _theta_omega(self, X: np.ndarray):
        """theta (K, n_params) and Omega (K, q, q) of internal rows X (K, n)."""
        K = X.shape[0]
        nt = len(self.theta_names)
        theta = np.tile(self.base, (K, 1))
        idx = self.theta_index
        with np.errstate(over="ignore"):
            theta[:, idx] = np.where(self.theta_log, np.exp(X[:, :nt]), X[:, :nt])
        L = np.tile(self.L0, (K, 1, 1))
        for j, (a, b) in enumerate(self.chol_index):
            v = X[:, nt + j]
            L[:, a, b] = np.exp(v) if a == b else v
        return theta, L @ np.swapaxes(L, 1, 2)

    def unpack(self, X: np.ndarray):
        """theta (K, n_params), omega (K, q, q), errs (K lists) from internal rows X (K, n)."""
        X = np.atleast_2d(X)
        K = X.shape[0]
        nt = len(self.theta_names)
        theta, omega = self._theta_omega(X)
        off = nt + len(self.chol_index)
        errs = []
        for k in range(K):
            ems = list(self.errors0)
            for j, (o, p) in enumerate(self.error_slots):
                ems[o] = dataclasses.replace(ems[o], **{p: float(np.exp(X[k, off + j]))})
            errs.append(ems)
        if self.iov_names:
            pi = np.exp(2 * X[:, off + len(self.error_slots):off + len(self.error_slots) + len(self.iov_names)])
            omega = _all_random_effects(omega, pi, self.n_occ)
        return theta, omega, errs

    def natural(self, x: np.ndarray) -> np.ndarray:
        """The reported parameters: typical values, Omega elements, error parameters, IOV variances, covariate
        coefficients (p,) at the internal point ``x`` (p,); rows (K, p) for rows ``x`` (K, p)."""
        X = np.atleast_2d(x)
        theta, omega = self._theta_omega(X)
        nt, ne, no = len(self.theta_names), len(self.error_slots), len(self.iov_names)
        off = nt + len(self.chol_index)
        om = omega[:, [a for a, _ in self.chol_index], [b for _, b in self.chol_index]]
        with np.errstate(over="ignore"):
            er = np.exp(X[:, off:off + ne])                        # as unpack gives them to the error models
            pi = np.exp(2.0 * X[:, off + ne:off + ne + no])         # the IOV variances
        out = np.concatenate([theta[:, self.theta_index], om, er, pi, self.coefficients(X)], axis=1)
        return out if np.ndim(x) == 2 else out[0]


def _apply_effects(model: Model, theta: np.ndarray, effects, coef: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per-subject typical values (K, n, n_params): theta (K, n_params) times each effect's factor, with
    coefficients coef (K, n_effects) and covariate columns (n_effects, n)."""
    out = np.repeat(theta[:, None, :], columns.shape[1], axis=1)
    for e, (eff, c) in enumerate(zip(effects, columns)):
        j = model.parameter_names.index(eff.parameter)
        b = coef[:, e][:, None]
        with np.errstate(all="ignore"):
            if eff.kind == "power":
                out[:, :, j] *= (c[None, :] / eff.ref) ** b
            elif eff.kind == "factor":
                out[:, :, j] *= 1.0 + (b - 1.0) * c[None, :]
            elif eff.kind == "indicator":
                out[:, :, j] *= 1.0 + b * c[None, :]
            else:
                out[:, :, j] *= 1.0 + b * (c[None, :] - eff.ref)
    return out


def _effect_columns(model: Model, prob, effects, data) -> np.ndarray | None:
    """Checked covariate columns (n_effects, n_subjects) of the effects, from the data."""
    from ..population import CovariateEffect
    from .data import _read

    if not effects:
        return None
    table = _read(model, data).table
    by_upper = {str(c).upper(): c for c in table.columns}
    cols = []
    for eff in effects:
        if not isinstance(eff, CovariateEffect):
            raise FitError(f"covariates: expected pkpd.CovariateEffect objects; got {type(eff).__name__}")
        if eff.parameter not in model.parameter_names:
            raise FitError(f"covariates: model {model.name!r} has no parameter {eff.parameter!r}."
                           + did_you_mean(eff.parameter, model.parameter_names))
        if eff.kind == "categorical" and (not isinstance(eff.value, Mapping) or not eff.value):
            raise FitError(f"covariates: the categorical effect of {eff.covariate!r} on {eff.parameter!r} needs "
                           "value = a dict category -> initial factor for every non-reference category, e.g. "
                           "{1: 0.8} (the reference category, factor 1, is left out)")
        if eff.covariate not in model.covariate_names:
            raise FitError(f"covariates: model {model.name!r} declares no covariate {eff.covariate!r} (declare it "
                           "in the model file's [covariates])." + did_you_mean(eff.covariate, model.covariate_names))
        if eff.covariate not in prob.data.explicit:
            raise FitError(f"covariates: the data have no column {eff.covariate!r} for the effect on "
                           f"{eff.parameter!r}")
        j_cov = model.covariate_names.index(eff.covariate)
        ce = prob.data.covariate_events
        if ce is not None and np.any(ce.index == len(model.parameters) + j_cov):
            raise FitError(f"covariates: {eff.covariate!r} changes within a subject; an estimated CovariateEffect "
                           "takes one value per subject. For a time-varying covariate, write the covariate model "
                           f"in the model file (e.g. {eff.parameter} = TV{eff.parameter} * ({eff.covariate}/70)**"
                           "BETA) and estimate its coefficient as a parameter")
        c = prob.data.covariates[:, j_cov].astype(float)
        column = eff.covariate if eff.covariate in table else by_upper[eff.covariate.upper()]
        given = table.groupby("ID", sort=False)[column].apply(lambda v: bool(np.isfinite(
            np.asarray(v, dtype=float)).any()))
        # the reader gives a subject without a value the model file's default: an error for an estimated effect
        bad = ~np.array([bool(given.get(sid, False)) for sid in prob.data.ids])
        bad |= ~np.isfinite(c) | ((c <= 0) if eff.kind == "power" else np.zeros(c.shape, dtype=bool))
        if bad.any():
            sid = prob.data.ids[int(np.flatnonzero(bad)[0])]
            raise FitError(f"covariates: covariate {eff.covariate!r} is missing (or not positive, for a power "
                           f"effect) for subject {sid!r}")
        if eff.kind == "indicator":
            indicator = eff.indicator(c)
            if indicator.min() == indicator.max():
                raise FitError(f"covariates: {'every' if indicator[0] else 'no'} subject has {eff.condition}, so "
                               f"the indicator effect on {eff.parameter!r} cannot be estimated")
            cols.append(indicator)
        elif eff.kind == "categorical":
            for category in eff.value:
                indicator = c == float(category)
                if not indicator.any():
                    raise FitError(f"covariates: no subject has {eff.covariate} = {category!r}, so its factor on "
                                   f"{eff.parameter!r} cannot be estimated (categories in the data: "
                                   f"{sorted(set(c.tolist()))})")
                cols.append(indicator.astype(float))
        else:
            cols.append(c)
    return np.array(cols)


def _occasion_starts(model: Model, data, d) -> np.ndarray:
    """Start time [model time unit] of each subject's occasions from the data's OCC column: (n_subjects, n_occ),
    the first column unused (occasion 1 holds from the start), inf where a subject has fewer occasions."""
    from .. import units as un
    from .data import _plain, _read

    ds = _read(model, data)
    table = ds.table
    column = next((c for c in table.columns if str(c).upper() == "OCC"), None)
    if column is None:
        raise FitError("iov: the data have no OCC column; number each subject's occasions (1, 2, ...) in an OCC "
                       "column (an occasion starts at its first record)")
    tf = un.convert(ds.time_unit, model.time_unit)
    groups = dict(tuple(table.groupby("ID", sort=False)))
    starts = []
    for sid in d.ids:
        sub = groups[sid]
        occ = sub[column].to_numpy(dtype=float)
        rows = sub["ROW"].to_numpy()
        if not np.all(np.isfinite(occ)):
            raise DataError("OCC must be given on every record of a subject with inter-occasion variability",
                            row=int(rows[~np.isfinite(occ)][0]), column=column, file=ds.source)
        change = np.flatnonzero(occ[1:] != occ[:-1]) + 1
        seen = [occ[0]] + list(occ[change])
        if len(set(seen)) != len(seen):
            k = change[[i for i in range(len(change)) if occ[change[i]] in seen[:i + 1]][0]]
            raise DataError(f"OCC {_plain(occ[k])} of subject {sid!r} comes back after another occasion; occasions "
                            "must follow each other in time", row=int(rows[k]), column=column, file=ds.source)
        t = sub["TIME"].to_numpy(dtype=float) * tf
        starts.append([-np.inf] + list(t[change]))
    width = max(len(s) for s in starts)
    out = np.full((len(starts), width), np.inf)
    for i, st in enumerate(starts):
        out[i, :len(st)] = st
    return out


@dataclass(frozen=True)
class _Coefficient:
    """One estimated covariate coefficient (private): a power or linear effect, or the factor of one category of
    a categorical effect (``category`` set; its column is the 0/1 indicator of that category)."""

    parameter: str
    covariate: str
    kind: str
    value: float
    ref: float = 1.0
    category: object = None
    source: int = 0      # index of the user's CovariateEffect
    condition: str | None = None

    @property
    def name(self) -> str:
        if self.kind == "indicator":
            return f"[{self.condition}]_on_{self.parameter}"
        if self.category is not None:
            from .data import _plain

            return f"{self.covariate}[{_plain(self.category)}]_on_{self.parameter}"
        return f"{self.covariate}_on_{self.parameter}"


def _coefficients(effects) -> tuple[_Coefficient, ...]:
    """The estimated coefficients of the user's effects, categorical effects expanded per category."""
    out = []
    for k, eff in enumerate(effects):
        if eff.kind == "categorical":
            out += [_Coefficient(eff.parameter, eff.covariate, "factor", float(v), category=cat, source=k)
                    for cat, v in eff.value.items()]
        else:
            out.append(_Coefficient(eff.parameter, eff.covariate, eff.kind, float(eff.value), float(eff.ref),
                                    source=k, condition=eff.condition))
    return tuple(out)


def _estimated_effects(effects, coefficients: tuple[_Coefficient, ...], values) -> tuple:
    """The user's effects with their estimated values (categorical: dict category -> factor)."""
    out = list(effects)
    for c, v in zip(coefficients, values):
        eff = out[c.source]
        if c.category is None:
            out[c.source] = dataclasses.replace(eff, value=float(v))
        else:
            out[c.source] = dataclasses.replace(eff, value={**dict(eff.value), c.category: float(v)})
    return tuple(out)


def _layout(model: Model, iiv: IIV, estimate, error: dict, init: Mapping | None) -> _Layout:
    names = model.parameter_names
    for n in iiv.names:
        if n not in names:
            raise FitError(f"iiv: model {model.name!r} has no parameter {n!r}." + did_you_mean(n, names))
    est = tuple(iiv.names) if estimate is None else tuple(estimate)
    for n in est:
        if n not in names:
            raise FitError(f"estimate: model {model.name!r} has no parameter {n!r}." + did_you_mean(n, names))
    base = np.array([p.value for p in model.parameters], dtype=float)
    for k, v in dict(init or {}).items():
        if k not in names:
            raise FitError(f"init: model {model.name!r} has no parameter {k!r}." + did_you_mean(k, names))
        base[names.index(k)] = float(v)
    bounds = {p.name: p.bounds for p in model.parameters}
    lower = np.array([bounds[n][0] if bounds[n] is not None else -np.inf for n in est], dtype=float)
    upper = np.array([bounds[n][1] if bounds[n] is not None else np.inf for n in est], dtype=float)
    log = lower >= 0
    tv = np.array([base[names.index(n)] for n in est])
    outside = (tv < lower) | (tv > upper)
    if outside.any():  # bounds are plausible ranges; fitting is where they are enforced
        k = int(np.flatnonzero(outside)[0])
        raise FitError(f"estimate: the initial value {tv[k]:g} of {est[k]!r} is outside its bounds [{lower[k]:g}, "
                       f"{upper[k]:g}], and estimates stay within the bounds; start inside them (init=) or widen "
                       f"them (model.with_bounds({est[k]}=(low, high)))")
    if np.any(log & (tv <= 0)):
        bad = est[int(np.flatnonzero(log & (tv <= 0))[0])]
        raise FitError(f"estimate: the initial value of {bad!r} must be > 0 (it is estimated on the log scale)")
    L0 = np.linalg.cholesky(iiv.omega)
    pattern = iiv.omega != 0
    chol_index = tuple((a, b) for a in range(iiv.n_eta) for b in range(a + 1) if a == b or pattern[a, b])
    x_theta = np.where(log, np.log(np.where(log, tv, 1.0)), tv)
    x_chol = [np.log(L0[a, b]) if a == b else L0[a, b] for a, b in chol_index]
    slots, x_err = [], []
    outputs = tuple(error)
    for o, name in enumerate(outputs):
        em = error[name]
        for p in em.parameter_names:
            if p not in em.fixed:
                slots.append((o, p))
                x_err.append(math.log(getattr(em, p)))
    x0 = np.concatenate([x_theta, x_chol, x_err]).astype(float)
    return _Layout(model=model, theta_names=est, theta_log=log, theta_lower=lower, theta_upper=upper,
                   chol_index=chol_index, outputs=outputs, error_slots=tuple(slots), base=base, L0=L0,
                   errors0=tuple(error[o] for o in outputs), x0=x0)


def _error_dict(model: Model, error) -> dict:
    if error is None and model.endpoint_names:
        return {}   # only clinical endpoints, which bring their own likelihood
    if isinstance(error, ERROR_MODELS):
        if len(model.outputs) != 1:
            raise FitError(f"error: model {model.name!r} has {len(model.outputs)} outputs; give a dict output -> "
                           "error model")
        return {model.output_names[0]: error}
    if isinstance(error, Mapping) and (error or model.endpoint_names):
        from .individual import _check_error_models

        _check_error_models(model, error)
        return {o: error[o] for o in model.output_names if o in error}
    if error is None or isinstance(error, Mapping):   # left out, or an empty dict, for a model without endpoints
        first = model.output_names[0] if model.output_names else "OUTPUT"
        raise FitError(f"error: no error model given (got {error!r}); model {model.name!r} has no clinical endpoint "
                       "that brings its own likelihood, so each fitted output needs one (its outputs: "
                       f"{', '.join(model.output_names) or 'none'}), "
                       f"e.g. error={{{first!r}: pkpd.Proportional(cv=0.2)}}")
    raise FitError(f"error: expected an error model or a dict output -> error model; got {error!r}")


def _parameter_units(model: Model, layout: _Layout, iiv: IIV) -> dict[str, str]:
    """Unit of every row of ``PopulationFit.parameters``, by name."""
    names = _pretty_names(layout, iiv)
    units = [model.unit_of(n) for n in layout.theta_names]
    for a, b in layout.chol_index:
        pa, pb = iiv.names[a], iiv.names[b]
        normal = [iiv.distributions[k] == "normal" for k in (a, b)]
        units.append("*".join(f"({model.unit_of(n)})" for n, nm in zip((pa, pb), normal) if nm) or "1")
    for o, p in layout.error_slots:
        units.append(model.unit_of(layout.outputs[o]) if p == "sd" else "1")
    units += ["1"] * (len(layout.iov_names) + len(layout.effects))
    return dict(zip(names, units))


def _pretty_names(layout: _Layout, iiv: IIV) -> list[str]:
    out = list(layout.theta_names)
    for a, b in layout.chol_index:
        out.append(f"omega2_{iiv.names[a]}" if a == b else f"omega_{iiv.names[b]}_{iiv.names[a]}")
    out += [f"{layout.outputs[o]}_{p}" if len(layout.outputs) > 1 else p for o, p in layout.error_slots]
    out += [f"iov2_{n}" for n in layout.iov_names]
    out += [c.name for c in layout.effects]
    return out


def _all_random_effects(omega: np.ndarray, pi: np.ndarray, n_occ: int) -> np.ndarray:
    """Covariance (K, Q, Q) of all random effects: blockdiag(Omega, Pi, Pi, ...) with one diagonal Pi per occasion
    (NONMEM's BLOCK SAME), from Omega (K, q, q) and the IOV variances (K, p)."""
    K, q = omega.shape[0], omega.shape[1]
    size = q + pi.shape[1] * n_occ
    full = np.zeros((K, size, size))
    full[:, :q, :q] = omega
    idx = np.arange(q, size)
    full[:, idx, idx] = np.tile(pi, (1, n_occ))
    return full
