r"""fit(): maximum-likelihood estimation of model parameters from biomarker data, with honest uncertainty.

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
  the expected (Fisher) information is used instead and the result says so; when that is singular too, no
  standard errors are given and the message says which parameters the data cannot inform.

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
import time as _time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import expressions as ex
from . import units as un
from .compile import compile_model
from .dosing import Bolus, Infusion, Regimen
from .error_models import CENSORING, ERROR_MODELS, M1, M3, M4, Combined, Proportional
from .errors import DataError, DosingError, FitError, PkpdError, did_you_mean
from .model import Model
from .settings import SolverSettings

__all__ = ["Bootstrap", "FitResult", "Identifiability", "LikelihoodRatioTest", "ProfileLikelihood", "SubjectFits",
           "bootstrap", "fit", "identifiability", "likelihood_ratio_test", "profile_likelihood"]

_LOG_2PI = math.log(2.0 * math.pi)
_Z95 = 1.959963984540054  # standard normal 97.5 % quantile
_CHI2_95 = 3.841458820694124  # chi-square(1) 95 % quantile: profile-likelihood threshold
_B_MARGIN = 2.0 * math.log(1e3)  # see _Likelihood: the log-normaliser residuals start at this squared value
_GRADIENTS = ("finite-difference", "sensitivity")
_LEAST_SQUARES = ("least_squares",)
_GRADIENT_METHODS = ("lbfgsb", "bfgs", "cg", "tnc", "slsqp", "newton")
_METHODS = ("least_squares", "leastsq", "nelder", "powell", "lbfgsb", "bfgs", "cg", "tnc", "cobyla", "slsqp",
            "differential_evolution", "basinhopping", "dual_annealing", "shgo")


# ====================================================================================================== data
@dataclass(frozen=True, eq=False)
class _Data:
    """Observations ready for fitting (private): per-subject design plus flat observation arrays.

    ``times`` holds each subject's distinct observation times in model time units, padded with the last one;
    ``pre`` flags a time whose observations come before a dose given at that time (NONMEM record order).
    """

    model: Model
    ids: tuple
    regimens: tuple
    covariates: np.ndarray        # (n_subjects, n_covariates), model order
    explicit: frozenset           # covariates that the data give
    outputs: tuple[str, ...]      # fitted outputs, model order
    times: np.ndarray             # (n_subjects, max_times)
    pre: np.ndarray               # (n_subjects, max_times) int64
    n_times: np.ndarray           # (n_subjects,) int64
    subject: np.ndarray           # (n_obs,) subject index
    time_index: np.ndarray        # (n_obs,) column of ``times``
    output: np.ndarray            # (n_obs,) index into ``outputs``
    time: np.ndarray              # (n_obs,) [model time unit]
    dv: np.ndarray                # (n_obs,)
    limit: np.ndarray             # (n_obs,) LLOQ [output unit], NaN when none
    censored: np.ndarray          # (n_obs,) bool
    row: np.ndarray               # (n_obs,) row in the file (1-based), for messages
    time_unit: str                # of the data (TIME column)
    dropped: int = 0              # censored observations dropped (M1)

    @property
    def n_subjects(self) -> int:
        return len(self.ids)

    def subset(self, subjects: Sequence[int]) -> _Data:
        """The data of some subjects (by index), in that order."""
        subjects = list(subjects)
        keep = np.isin(self.subject, subjects)
        remap = np.full(self.n_subjects, -1)
        remap[subjects] = np.arange(len(subjects))
        return dataclasses.replace(
            self, ids=tuple(self.ids[i] for i in subjects), regimens=tuple(self.regimens[i] for i in subjects),
            covariates=self.covariates[subjects], times=self.times[subjects], pre=self.pre[subjects],
            n_times=self.n_times[subjects], subject=remap[self.subject[keep]], time_index=self.time_index[keep],
            output=self.output[keep], time=self.time[keep], dv=self.dv[keep], limit=self.limit[keep],
            censored=self.censored[keep], row=self.row[keep])

    def with_observations(self, dv: np.ndarray, censored: np.ndarray) -> _Data:
        """The same design with other observed values (parametric bootstrap)."""
        return dataclasses.replace(self, dv=np.asarray(dv, dtype=float), censored=np.asarray(censored, dtype=bool))


def _read(model: Model, data):
    from .nonmem import NonmemDataset, read_nonmem

    if isinstance(data, NonmemDataset):
        return data
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame | str | os.PathLike):
            return read_nonmem(data, model)
    except DataError:
        raise
    raise FitError(f"data: expected a NonmemDataset (pkpd.nonmem.read_nonmem), a pandas DataFrame or a CSV path in "
                   f"the NONMEM layout; got {type(data).__name__}")


def _observations(model: Model, data, outputs: Sequence[str], blq) -> _Data:
    """The one adapter between NONMEM datasets and the fitter."""
    import pandas as pd

    ds = _read(model, data)
    table = ds.table
    src = ds.source
    obs = ds.observations(model)
    if obs.empty:
        raise FitError(f"data{' ' + repr(src) if src else ''}: there are no observations (EVID=0 records with MDV=0 "
                       "and a DV)")
    for column in ("LIMIT",):
        if column in obs and obs[column].notna().any():
            raise FitError(f"data: column {column} (interval censoring) is not supported by fit(); remove it, and "
                           "use LLOQ (with BLQ or CENS) for values below the limit of quantification")
    if "DVID" not in table:
        if len(outputs) > 1:
            raise FitError(f"data: there is no DVID column, so observations cannot be matched to the {len(outputs)} "
                           f"outputs in error ({', '.join(outputs)}); add a DVID column naming each record's output")
        obs["output"] = outputs[0]
    names = obs["output"].to_numpy()
    unknown = sorted(set(names) - set(outputs))
    if unknown:
        counts = ", ".join(f"{int((names == u).sum())} of {u!r}" for u in unknown)
        raise FitError(f"data: there are observations ({counts}) of outputs that error gives no error model for; add "
                       f"them to error (e.g. error={{{unknown[0]!r}: pkpd.Proportional(cv=0.2)}}) or remove those "
                       "records")
    rows = obs["ROW"].to_numpy().astype(np.int64)
    dv = obs["DV"].to_numpy(dtype=float)
    bad = ~np.isfinite(dv)
    if bad.any():
        raise DataError(f"DV must be a finite number; got {dv[bad][0]}", row=int(rows[bad][0]), column="DV",
                        file=src)
    # censoring: BLQ=1, CENS=1 (DV holds the limit), or DV < LLOQ
    n = dv.size
    limit = np.full(n, np.nan)
    censored = np.zeros(n, dtype=bool)
    if "LLOQ" in obs:
        lloq = obs["LLOQ"].to_numpy(dtype=float)
        given = np.isfinite(lloq)
        limit[given] = lloq[given]
        censored |= given & (dv < lloq)
    if "BLQ" in obs:
        flag = np.nan_to_num(obs["BLQ"].to_numpy(dtype=float), nan=0.0) == 1
        no_limit = flag & ~np.isfinite(limit)
        if no_limit.any():
            raise DataError("BLQ=1 but this record has no LLOQ; give the limit of quantification in an LLOQ column",
                            row=int(rows[no_limit][0]), column="LLOQ", file=src)
        censored |= flag
    if "CENS" in obs:
        cens = np.nan_to_num(obs["CENS"].to_numpy(dtype=float), nan=0.0)
        if (cens == -1).any():
            raise DataError("CENS=-1 (above the upper limit of quantification) is not supported by fit()",
                            row=int(rows[cens == -1][0]), column="CENS", file=src)
        flag = cens == 1
        limit = np.where(flag & ~np.isfinite(limit), dv, limit)
        censored |= flag
    limit_bad = censored & ~np.isfinite(limit)
    if limit_bad.any():
        raise DataError(f"the limit of quantification must be a finite number; got {limit[limit_bad][0]}",
                        row=int(rows[limit_bad][0]), column="LLOQ", file=src)
    out_index = np.array([outputs.index(o) for o in names], dtype=np.int64)
    for k, name in enumerate(outputs):
        mine = out_index == k
        if not mine.any():
            raise FitError(f"error[{name!r}]: the data have no observations of output {name!r}; check the DVID "
                           "column, or remove this output from error")
        if censored[mine].all():
            raise FitError(f"error[{name!r}]: all {int(mine.sum())} observations of {name!r} are below the limit "
                           "of quantification: there is nothing to estimate from; check LLOQ/BLQ, or remove this "
                           "output from error")
    dropped = 0
    if isinstance(blq, M1) and censored.any():
        keep = ~censored
        dropped = int(censored.sum())
        obs, rows, dv, limit, censored, out_index = (obs[keep].reset_index(drop=True), rows[keep], dv[keep],
                                                     limit[keep], censored[keep], out_index[keep])

    # model-time of each observation, and whether it precedes a dose record at the same time (record order)
    tf = un.factor(un.unit(ds.time_unit), un.unit(model.time_unit))
    ids_obs = obs["ID"].to_numpy()
    t_obs = obs["TIME"].to_numpy(dtype=float)
    dose_rec = table[np.isin(table["EVID"].to_numpy(), (1, 4))]
    pre = np.zeros(len(obs), dtype=np.int64)
    if len(dose_rec):
        last_dose_row = dose_rec.groupby(["ID", "TIME"])["ROW"].max()
        keys = list(zip(ids_obs, t_obs))
        later = np.array([last_dose_row.get(k, -1) for k in keys])
        pre = (later > rows).astype(np.int64)

    # per-subject regimens and covariates
    try:
        regimens = ds.to_regimens(model)
    except DataError as err:
        raise FitError(f"data: {err}; fit() needs doses that a Regimen can express") from None
    subject_ids = list(pd.unique(ids_obs))
    canonical: dict = {}
    regs = []
    for sid in subject_ids:
        r = regimens.get(sid, Regimen.none())
        regs.append(canonical.setdefault(r, r))
    covariates, explicit = _subject_covariates(model, ds, subject_ids)

    # distinct (time, pre) per subject: pre-dose rows first at equal times
    sub_index = {sid: i for i, sid in enumerate(subject_ids)}
    subj = np.array([sub_index[s] for s in ids_obs], dtype=np.int64)
    t_model = t_obs * tf
    n_s = len(subject_ids)
    per = []
    time_index = np.zeros(len(obs), dtype=np.int64)
    for i in range(n_s):
        mine = np.flatnonzero(subj == i)
        keys = sorted(set(zip(t_model[mine], -pre[mine])))
        lookup = {k: j for j, k in enumerate(keys)}
        for j in mine:
            time_index[j] = lookup[(t_model[j], -pre[j])]
        per.append(keys)
    width = max(len(k) for k in per)
    times = np.zeros((n_s, width))
    pre_flags = np.zeros((n_s, width), dtype=np.int64)
    n_times = np.zeros(n_s, dtype=np.int64)
    for i, keys in enumerate(per):
        tk = np.array([k[0] for k in keys])
        times[i, :tk.size] = tk
        times[i, tk.size:] = tk[-1]
        pre_flags[i, :tk.size] = [-k[1] for k in keys]
        n_times[i] = tk.size
    return _Data(model=model, ids=tuple(_plain(s) for s in subject_ids), regimens=tuple(regs),
                 covariates=covariates, explicit=explicit, outputs=tuple(outputs), times=times, pre=pre_flags,
                 n_times=n_times, subject=subj, time_index=time_index, output=out_index, time=t_model, dv=dv,
                 limit=limit, censored=censored, row=rows, time_unit=ds.time_unit, dropped=dropped)


def _plain(x):
    if isinstance(x, float | np.floating) and float(x).is_integer():
        return int(x)
    return x.item() if isinstance(x, np.generic) else x


def _subject_covariates(model: Model, ds, subject_ids) -> tuple[np.ndarray, frozenset]:
    table = ds.table
    params = {p.upper(): p for p in model.parameter_names}
    for column in ds.covariate_columns:
        if column.upper() in params:
            raise FitError(f"data: column {column!r} has the name of model parameter {params[column.upper()]!r}; "
                           "fit() takes parameters from the model (estimated or fixed), not from data columns; "
                           "rename or remove the column")
    by_upper = {c.upper(): c for c in ds.covariate_columns}
    cov = np.tile([c.value for c in model.covariates], (len(subject_ids), 1)).astype(float)
    explicit = set()
    for j, c in enumerate(model.covariates):
        column = c.name if c.name in ds.covariate_columns else by_upper.get(c.name.upper())
        if column is None:
            continue
        explicit.add(c.name)
        for i, sid in enumerate(subject_ids):
            sub = table.loc[table["ID"] == sid]
            values = sub[column].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            if np.any(values != values[0]):
                row = int(sub["ROW"].to_numpy()[np.flatnonzero(sub[column].to_numpy(dtype=float) != values[0])[0]])
                raise DataError(f"covariate {c.name!r} changes within subject {_plain(sid)}; fit() takes one value "
                                "per subject (time-varying covariates are simulated by simulate_nonmem only)",
                                row=row, column=column, file=ds.source)
            cov[i, j] = values[0]
    return cov.reshape(len(subject_ids), len(model.covariates)), frozenset(explicit)


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
    error-model parameters (output order of ``error``); ``log`` marks those estimated as log(value).
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

    @property
    def n_struct(self) -> int:
        return int(self.struct_index.size)

    def natural(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(over="ignore"):
            return np.where(self.log, np.exp(x), x)

    def internal(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(self.log, np.log(np.where(self.log, values, 1.0)), values)


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
    if not isinstance(error, Mapping) or not error:
        raise FitError("error: give one error model per fitted output, e.g. error={'IL10': pkpd.Proportional(cv=0.2)}"
                       f"; outputs of {model.name!r}: {', '.join(model.output_names)}")
    for out, em in error.items():
        if out not in model.output_names:
            raise FitError(f"error: unknown output {out!r} of model {model.name!r}."
                           + did_you_mean(str(out), model.output_names))
        if not isinstance(em, ERROR_MODELS):
            raise FitError(f"error[{out!r}]: expected an error model (Additive, Proportional, Combined or LogNormal "
                           f"from pkpd); got {em!r}")
    order = [n for n in names_model if n in seen]
    names, units, kinds, log, lower, upper, x0 = [], [], [], [], [], [], []
    for name in order:
        p = model.parameter(name)
        lo, hi = p.bounds
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


# ====================================================================================================== likelihood
def _log_phi(x):
    return -0.5 * x * x - 0.5 * _LOG_2PI


class _Group:
    """The observations of one output (private)."""

    def __init__(self, data: _Data, k: int, slot: _ErrorSlot, blq, model: Model):
        em = slot.template
        self.slot = slot
        self.idx = np.flatnonzero(data.output == k)
        cens = data.censored[self.idx]
        self.unc = np.flatnonzero(~cens)
        self.cen = np.flatnonzero(cens)
        self.log_scale = bool(em.log_scale)
        self.m4 = isinstance(blq, M4) and not self.log_scale
        y = data.dv[self.idx][self.unc]
        lim = data.limit[self.idx][self.cen]
        name = slot.output
        if self.log_scale:
            bad = ~(y > 0)
            if bad.any():
                row = int(data.row[self.idx][self.unc][bad][0])
                raise DataError(f"output {name!r} has a log-normal error model, so quantified observations must be "
                                f"> 0; got DV = {y[bad][0]:g}. Mark values below the limit of quantification with "
                                "LLOQ/BLQ, or use an additive or combined error model", row=row, column="DV")
            bad = ~(lim > 0)
            if bad.any():
                row = int(data.row[self.idx][self.cen][bad][0])
                raise DataError(f"output {name!r} has a log-normal error model, so the LLOQ must be > 0; got "
                                f"{lim[bad][0]:g}", row=row, column="LLOQ")
            self.u = np.log(y)
            self.u_limit = np.log(lim)
            self.const = float(np.sum(2.0 * np.log(y)))
        else:
            self.u = y
            self.u_limit = lim
            self.const = 0.0
        self.const += self.unc.size * _LOG_2PI
        self.varying = bool(slot.slots) or isinstance(em, Proportional | Combined) or self.m4
        self.K = np.zeros(self.unc.size)


class _Evaluation:
    """The likelihood at one point (private): OFV, residuals, Jacobian, gradient."""

    __slots__ = ("ofv", "r", "J", "grad", "valid", "clipped", "problem")

    def __init__(self):
        self.ofv = math.inf
        self.r = self.J = self.grad = None
        self.valid = False
        self.clipped = False
        self.problem = ""


class _Likelihood:
    """-2 log-likelihood of the observations given predictions, in scalar and sum-of-squares form (private).

    The sum-of-squares form has, per quantified observation, the weighted residual ``z = (y - f) / sd`` (on the log
    scale for log-normal errors) and, when the standard deviation varies with the parameters, a "log-normaliser"
    residual ``b`` with ``b**2 = 2 log sd + K`` (``K`` a constant chosen so that ``b**2`` starts at 2 log 1000 and
    stays positive); per censored observation ``sqrt(-2 log P)``. The sum of squares is then the OFV up to a
    constant, and its Jacobian gives Gauss-Newton steps for the structural and the error parameters together.
    """

    def __init__(self, data: _Data, layout: _Layout, blq):
        self.data, self.layout, self.blq = data, layout, blq
        self.groups = [_Group(data, data.outputs.index(s.output), s, blq, layout.model) for s in layout.errors]
        self.const = float(sum(g.const for g in self.groups))
        self.n_x = len(layout.names)
        self.p_s = layout.n_struct
        sizes = [g.unc.size + (g.unc.size if g.varying else 0) + g.cen.size for g in self.groups]
        self.n_r = int(sum(sizes))

    def reset_constants(self, F: np.ndarray, x: np.ndarray) -> None:
        """Choose K so that every log-normaliser residual squared is 2 log 1000 at ``(F, x)``."""
        with np.errstate(all="ignore"):
            for g in self.groups:
                if not g.varying:
                    continue
                f = F[g.idx][g.unc]
                s = g.slot.model_at(x)._scale(f)[0]
                raw = 2.0 * np.log(s)
                if g.m4:
                    raw += 2.0 * _ndtr_log(f / s)
                g.K = np.where(np.isfinite(raw), _B_MARGIN - raw, 0.0)

    def evaluate(self, F: np.ndarray, dF: np.ndarray | None, x: np.ndarray, *, residuals: bool = True,
                 fisher: bool = False) -> _Evaluation:
        """Everything at predictions ``F`` (n_obs,) with derivatives ``dF`` (n_obs, n_struct) or None.

        With ``fisher``, the Jacobian rows of the log-normaliser residuals are ``d sd / sd`` instead, so that
        ``2 J'J`` estimates the expected (Fisher) information of the OFV.
        """
        out = _Evaluation()
        with np.errstate(all="ignore"):
            return self._evaluate(out, F, dF, x, residuals, fisher)

    def _evaluate(self, out, F, dF, x, residuals, fisher):
        jac = dF is not None
        n_x, p_s = self.n_x, self.p_s
        ofv = self.const
        r_parts, j_parts = [], []
        grad = np.zeros(n_x)
        clipped = False
        for g in self.groups:
            f = F[g.idx]
            em = g.slot.model_at(x)
            s, dsdf, dsdp = em._scale(f)
            if g.log_scale:
                m = np.log(f)
                dmdf = 1.0 / f
            else:
                m = f
                dmdf = np.ones_like(f)
            ok = np.isfinite(f) & np.isfinite(s) & (s > 0) & np.isfinite(m)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                out.problem = _invalid_message(self.data, g, i, f[i], s[i], em)
                return out
            if jac:
                dm = np.zeros((f.size, n_x))
                ds = np.zeros((f.size, n_x))
                dm[:, :p_s] = dmdf[:, None] * dF[g.idx]
                ds[:, :p_s] = dsdf[:, None] * dF[g.idx]
                for pname, i in g.slot.slots:
                    ds[:, i] = dsdp[pname] * getattr(em, pname)
            U, C = g.unc, g.cen
            gm = np.zeros(f.size)
            gs = np.zeros(f.size)
            # quantified observations
            su, mu = s[U], m[U]
            z = (g.u - mu) / su
            ofv += float(np.sum(z * z) + 2.0 * np.sum(np.log(su)))
            gm[U] = -2.0 * z / su
            gs[U] = (2.0 - 2.0 * z * z) / su
            lam_w = w = None
            if g.m4:
                w = mu / su
                lw = _ndtr_log(w)
                lam_w = np.exp(_log_phi(w) - lw)
                ofv += float(2.0 * np.sum(lw))
                gm[U] += 2.0 * lam_w / su
                gs[U] -= 2.0 * lam_w * w / su
            if residuals:
                r_parts.append(z)
                if jac:
                    j_parts.append((-1.0 / su)[:, None] * dm[U] + (-z / su)[:, None] * ds[U])
                if g.varying:
                    b2 = 2.0 * np.log(su) + g.K
                    b2_m = np.zeros(U.size)
                    b2_s = 2.0 / su
                    if g.m4:
                        b2 = b2 + 2.0 * lw
                        b2_m = 2.0 * lam_w / su
                        b2_s = b2_s - 2.0 * lam_w * w / su
                    clipped |= bool(np.any(b2 < 1.0))
                    b = np.sqrt(np.maximum(b2, 0.0))
                    r_parts.append(b)
                    if jac and fisher:
                        j_parts.append((1.0 / su)[:, None] * ds[U])
                    elif jac:
                        bb = 2.0 * np.maximum(b, 1e-8)
                        j_parts.append((b2_m / bb)[:, None] * dm[U] + (b2_s / bb)[:, None] * ds[U])
            # censored observations
            if C.size:
                sc, mc = s[C], m[C]
                a = (g.u_limit - mc) / sc
                if g.m4:
                    b0 = -mc / sc
                    D = _log_diff_ndtr(a, b0)
                    wc = mc / sc
                    lwc = _ndtr_log(wc)
                    lamc = np.exp(_log_phi(wc) - lwc)
                    dD_da = np.exp(_log_phi(a) - D)
                    dD_db = -np.exp(_log_phi(b0) - D)
                    c = -2.0 * (D - lwc)
                    c_m = -2.0 * (-(dD_da + dD_db) / sc - lamc / sc)
                    c_s = -2.0 * ((-dD_da * a - dD_db * b0) / sc + lamc * wc / sc)
                else:
                    la = _ndtr_log(a)
                    lam_a = np.exp(_log_phi(a) - la)
                    c = -2.0 * la
                    c_m = 2.0 * lam_a / sc
                    c_s = 2.0 * lam_a * a / sc
                if not np.all(np.isfinite(c)):
                    i = int(C[np.flatnonzero(~np.isfinite(c))[0]])
                    out.problem = _invalid_message(self.data, g, i, f[i], s[i], em)
                    return out
                ofv += float(np.sum(c))
                gm[C] = c_m
                gs[C] = c_s
                if residuals:
                    rc = np.sqrt(np.maximum(c, 0.0))
                    r_parts.append(rc)
                    if jac:
                        den = np.where(rc > 0, 2.0 * rc, np.inf)
                        j_parts.append((c_m / den)[:, None] * dm[C] + (c_s / den)[:, None] * ds[C])
            if jac:
                grad += gm @ dm + gs @ ds
        if not math.isfinite(ofv):
            out.problem = "the -2 log-likelihood is not finite"
            return out
        out.ofv = ofv
        out.valid = True
        out.clipped = clipped
        if residuals:
            out.r = np.concatenate(r_parts) if r_parts else np.zeros(0)
            if jac:
                out.J = np.vstack(j_parts) if j_parts else np.zeros((0, n_x))
        if jac:
            out.grad = grad
        return out


def _ndtr_log(x):
    from scipy.special import log_ndtr

    return log_ndtr(x)


def _log_diff_ndtr(a, b):
    from .error_models import _log_diff_ndtr as impl

    return impl(a, b)


def _invalid_message(data: _Data, g: _Group, i: int, f: float, s: float, em) -> str:
    j = int(g.idx[i])
    where = (f"subject {data.ids[data.subject[j]]}, t = {data.time[j]:g} {data.model.time_unit} (row {data.row[j]})")
    name = type(em).__name__
    if not np.isfinite(f):
        return f"output {g.slot.output!r}: the prediction is not finite at {where}"
    if g.log_scale and not f > 0:
        return (f"output {g.slot.output!r}: the {name} error model needs positive predictions, but the prediction is "
                f"{f:g} at {where}; use a Combined or Additive error model, or censor/remove that observation")
    return (f"output {g.slot.output!r}: the {name} error model cannot be evaluated at {where}: the prediction is "
            f"{f:g}, so the standard deviation is {s:g}; use Combined(sd=..., cv=..., convention=...) (an additive "
            "part keeps it positive) or remove that observation")


# ====================================================================================================== predictions
class _Problem:
    """Data + model + layout: predictions in one compiled batch call, and the likelihood (private)."""

    def __init__(self, layout: _Layout, data: _Data, blq, settings: SolverSettings, gradient: str):
        from .simulation import build_events

        self.layout, self.data, self.blq = layout, data, blq
        self.settings = dataclasses.replace(settings, on_failure="mark")
        self.model = layout.model
        self.cm = compile_model(self.model)
        self.base = np.array([p.value for p in self.model.parameters], dtype=float)
        self.out_index = np.array([self.model.output_names.index(o) for o in data.outputs], dtype=np.int64)
        self.lik = _Likelihood(data, layout, blq)
        self.n_failures = 0
        self.n_evaluations = 0
        est = set(layout.names[:layout.n_struct])
        dep = _dose_dependence(self.model, tuple(sorted(est)))
        self.events_depend = any(a or b for a, b in dep.values())
        q0 = self._q(self.base[None, :], 1)[0]
        self.events0 = None if self.events_depend else build_events(self.cm, data.regimens, q0, data.explicit)
        self.gradient = gradient
        self.gradient_note = ""
        self.sens = None
        if gradient == "sensitivity":
            reason = _sensitivity_unsupported(self.model, data, est, dep)
            if reason:
                self.gradient = "finite-difference"
                self.gradient_note = f"sensitivities unavailable ({reason}); finite differences used"
            else:
                from ._sensitivity import sensitivity_model

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
        from .simulation import EventTable, build_events

        if self.events0 is not None:
            e = self.events0
            return EventTable(np.tile(e.time, (k, 1)), np.tile(e.kind, (k, 1)), np.tile(e.index, (k, 1)),
                              np.tile(e.value, (k, 1)), np.tile(e.count, k))
        with np.errstate(all="ignore"):
            return build_events(self.cm, self.data.regimens * k, q, self.data.explicit)

    def _run(self, cm, q, y0, events, k):
        from .simulation import run_batch

        d = self.data
        tt = np.tile(d.times, (k, 1))
        pre = np.tile(d.pre, (k, 1))
        n_out = np.tile(d.n_times, k)
        first = np.where(events.count > 0, events.time[:, 0], np.inf)
        t0 = np.minimum(tt[:, 0], first)
        with np.errstate(all="ignore"):
            return run_batch(cm, q, y0, events, tt, pre, n_out, t0, self.settings, keep_states=False)

    def predictions(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions (k, n_obs) at internal structural rows ``Xs`` (k, n_struct), and which rows solved."""
        Xs = np.atleast_2d(np.asarray(Xs, dtype=float))
        k = Xs.shape[0]
        n_s = self.data.n_subjects
        self.n_evaluations += k
        P = self.params(Xs)
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
        from ._sensitivity import RATE_COVARIATE  # noqa: F401 - documents the extra covariate column

        sm = self.sens
        n_s = self.data.n_subjects
        p_s = self.layout.n_struct
        self.n_evaluations += 1
        P = self.params(xs[None, :])
        q = self._q(P, 1)
        qa = self._q(P, 1, self.cm_sens, extra_cov=1)
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
        events = _sensitivity_jumps(self, events, q, P[0])
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
        del n_s
        return F, dF, ok


def _dose_dependence(model: Model, estimated: tuple[str, ...]):
    from ._sensitivity import dose_dependence

    return dose_dependence(model, estimated)


def _sensitivity_unsupported(model: Model, data: _Data, est: set, dep) -> str:
    """Why the sensitivity equations cannot give exact derivatives here ('' when they can)."""
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


def _sensitivity_jumps(problem: _Problem, events, q: np.ndarray, p_row: np.ndarray):
    """Add the jumps of the sensitivity states at doses whose bioavailability depends on an estimated parameter."""
    from ._sensitivity import dose_factor_derivatives
    from .simulation import EventTable

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
    log = problem.layout.log[:len(names)]
    values = p_row[problem.layout.struct_index]
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
                    chain = values[j] if log[j] else 1.0
                    evs.append((t, kind, int(problem.sens.state_index[idx, j]), val * dlog * chain))
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
        return np.full(n, math.sqrt((1e3 * self.worst_cost + 1e6) / max(n, 1)))

    def jacobian(self, x_free) -> np.ndarray:
        ev = self._point(x_free, derivatives=True)[0]
        if ev.valid and ev.J is not None:
            return ev.J[:, self.free]
        return np.zeros((self.problem.lik.n_r, self.free.size))

    # scalar
    def value(self, x_free) -> float:
        ev = self._point(x_free, derivatives=False)[0]
        return ev.ofv if ev.valid else 1e3 * self.worst_ofv + 1e6

    def gradient(self, x_free) -> np.ndarray:
        ev = self._point(x_free, derivatives=True)[0]
        if ev.valid and ev.grad is not None:
            return ev.grad[self.free]
        return np.zeros(self.free.size)


@dataclass(frozen=True)
class _Run:
    x: np.ndarray
    ofv: float
    converged: bool
    message: str
    nfev: int


def _minimise(obj: _Objective, x0_free: np.ndarray, method: str, max_evaluations: int | None,
              lower: np.ndarray, upper: np.ndarray) -> _Run:
    """One local optimisation through lmfit (private)."""
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
    if max_evaluations is not None:
        kws["max_nfev"] = int(max_evaluations)
    caught = []
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


def _optimise(problem: _Problem, x0: np.ndarray, method: str, max_evaluations, fixed=None) -> tuple[_Run, _Objective]:
    """Minimise from ``x0`` (full internal vector); for least squares, re-centre the log-normaliser constants
    and restart when they came close to their floor (so the sum of squares stays the OFV)."""
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
        run = _minimise(obj, x_free, method, max_evaluations, layout.lower[free], layout.upper[free])
        if method not in ("least_squares", "leastsq"):
            break
        ev, _, F = obj._point(run.x, derivatives=False)
        if not (ev.valid and ev.clipped):
            break
        problem.lik.reset_constants(F, obj.full(run.x))
        obj._cache.clear()
        x_free = run.x
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
