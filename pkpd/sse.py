r"""Stochastic simulation and estimation (SSE): how well does a design and an estimator recover the truth?

:func:`simulation_estimation` simulates ``n`` trials of a study design (a NONMEM-layout dataset: doses, observation
times, covariates) from a model with known ("true") parameters, between-subject variability and residual error,
re-estimates every trial (:func:`pkpd.fit_population` for a population model, :func:`pkpd.fit` without one), and
reports per parameter (:attr:`SimulationEstimation.summary`):

* bias :math:`\bar{\hat\theta} - \theta` and relative bias :math:`100\,\overline{(\hat\theta/\theta - 1)}` [%],
  with the Monte-Carlo standard error of the relative bias;
* precision: the RMSE :math:`\sqrt{\overline{(\hat\theta - \theta)^2}}` (and relative, [%]), the empirical SE
  (SD of the estimates) next to the mean of the fits' own SEs;
* coverage of the fits' confidence intervals at ``level`` (how often they contain the truth; the nominal value
  is ``level``).

Replicate ``i`` draws its random effects and residual errors from ``numpy.random.SeedSequence(seed).spawn(n)[i]``,
so the study is the same run serially, on all local cores or on a Dask cluster (``client=``), and a larger study
extends a smaller one. Trials whose fit raises or does not converge are listed in
:attr:`SimulationEstimation.failed` (with the reason) and left out of the summary, never dropped silently.

References
----------
Morris TP, White IR, Crowther MJ 2019, Stat Med 38:2074 (using simulation studies to evaluate statistical methods:
bias, empirical SE, coverage and their Monte-Carlo SEs). PsN's ``sse`` tool (Lindbom L et al. 2005) for NONMEM.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._arguments import check_level
from .errors import FitError, PkpdError, did_you_mean

# arguments of the estimation that `estimation=` may override, per kind of fit
_POPULATION_KEYS = ("iiv", "error", "init", "method", "settings", "covariance", "covariates", "blq", "maxeval")
_INDIVIDUAL_KEYS = ("error", "init", "method", "settings", "blq", "gradient", "n_starts", "max_evaluations",
                    "covariance")


@dataclass(frozen=True, eq=False)
class SimulationEstimation:
    """The result of :func:`simulation_estimation`.

    Attributes
    ----------
    kind : {"population", "individual"}
        Re-estimated with :func:`pkpd.fit_population` or :func:`pkpd.fit`.
    names : tuple[str, ...]
        Estimated parameters, as the fits name them (e.g. ``"CL"``, ``"omega2_CL"``, ``"cv"`` for a population
        fit; ``"CL"``, ``"conc.cv"`` for an individual one).
    truth : dict[str, float]
        True value of each parameter [its unit; variances on the scale of :class:`~pkpd.IIV`].
    estimates, se, ci_low, ci_high : ndarray, shape (n_ok, k)
        Per converged replicate (rows, in replicate order) and parameter (columns, ``names`` order): estimate, the
        fit's standard error and confidence interval at ``level`` (NaN where the fit has no covariance).
    replicates : ndarray of int, shape (n_ok,)
        The (0-based) replicate index of each row.
    failed : tuple[tuple[int, str], ...]
        ``(replicate index, reason)`` of every trial whose fit raised or did not converge.
    n_requested : int
    level : float
    seed : int or None
    summary : pandas.DataFrame
        One row per parameter: ``name, truth, mean, median, bias, relative_bias_percent, mc_se_percent (Monte-Carlo
        SE of the relative bias), rmse, relative_rmse_percent, empirical_se, mean_se, coverage, n``.
    """

    kind: str
    names: tuple[str, ...]
    truth: dict
    estimates: np.ndarray = field(repr=False)
    se: np.ndarray = field(repr=False)
    ci_low: np.ndarray = field(repr=False)
    ci_high: np.ndarray = field(repr=False)
    replicates: np.ndarray = field(repr=False)
    failed: tuple
    n_requested: int
    level: float
    seed: int | None
    summary: object = field(repr=False)

    @property
    def n_ok(self) -> int:
        """Replicates that converged (rows of ``estimates``)."""
        return int(self.estimates.shape[0])

    def to_dataframe(self):
        """The per-replicate table (pandas): ``replicate, name, estimate, se, ci_low, ci_high, truth``."""
        import pandas as pd

        k = len(self.names)
        return pd.DataFrame({"replicate": np.repeat(self.replicates, k), "name": list(self.names) * self.n_ok,
                             "estimate": self.estimates.reshape(-1), "se": self.se.reshape(-1),
                             "ci_low": self.ci_low.reshape(-1), "ci_high": self.ci_high.reshape(-1),
                             "truth": [self.truth[nm] for nm in self.names] * self.n_ok})

    def __repr__(self) -> str:
        import pandas as pd

        with pd.option_context("display.width", 160, "display.float_format", "{:.4g}".format):
            table = self.summary[["name", "truth", "mean", "relative_bias_percent", "relative_rmse_percent",
                                  "coverage"]].to_string(index=False)
        fails = f"; {len(self.failed)} FAILED (see .failed)" if self.failed else ""
        return (f"SimulationEstimation ({self.kind}): {self.n_ok} of {self.n_requested} replicates converged"
                f"{fails}; coverage of {100 * self.level:g} % CIs\n{table}")

    def _repr_html_(self) -> str:
        fails = (f"<p style='color:#b00'><b>{len(self.failed)} replicate(s) failed</b> (see .failed)</p>"
                 if self.failed else "")
        table = self.summary.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        return (f"<div><b>Simulation-estimation</b> ({html.escape(self.kind)}): {self.n_ok} of {self.n_requested} "
                f"replicates converged; coverage of {100 * self.level:g} % CIs{fails}{table}</div>")


@dataclass(frozen=True, eq=False)
class _Job:
    """What every replicate shares (sent once to each worker). Private."""

    kind: str
    model: object              # the model with the true typical values
    table: object              # the design's records (pandas DataFrame, canonical columns), DV to be replaced
    time_unit: str
    dose_unit: str | None
    obs_rows: np.ndarray       # positions of the observation records in `table`
    obs_output: tuple          # output name of each observation record
    truth_error: dict          # output -> error model (true values)
    iiv: object                # IIV of the truth (population) or None
    predictions: np.ndarray | None  # individual designs: the (deterministic) predictions at the observations
    settings: object
    names: tuple[str, ...]
    estimate: tuple[str, ...]
    estimation: dict           # keyword arguments of the fit
    level: float


def simulation_estimation(model, design, *, error, iiv=None, n: int = 100, estimate: Sequence[str] | None = None,
                          truth: Mapping[str, float] | None = None, estimation: Mapping | None = None,
                          settings=None, seed=None, level: float = 0.95, client=None, workers: int | None = None,
                          progress: bool | None = None) -> SimulationEstimation:
    r"""Simulate ``n`` trials of a design from a model with known parameters, re-estimate each, and report bias,
    precision and confidence-interval coverage per parameter.

    Main arguments
    --------------
    model : Model or str
        The model; its parameter values are the true typical values (unless ``truth`` overrides them).
    design : pandas.DataFrame, path or NonmemDataset
        The study in the NONMEM layout: dose records, observation records (EVID 0 with a ``DV``: any number, it is
        replaced by the simulated value), covariate columns (e.g. ``WT``), ``DVID`` naming the output of each
        observation when several outputs are fitted, ``LLOQ`` to censor simulated values below it (BLQ).
    error : error model or dict[str, error model]
        The true residual error, e.g. ``pkpd.Proportional(cv=0.15)`` (one output) or ``{"conc": ...}``.
    iiv : dict[str, float] or IIV, optional
        The true between-subject variability (variances of the random effects, e.g. ``{"CL": 0.09, "V": 0.04}``):
        trials are re-estimated with :func:`pkpd.fit_population`. Without it, each trial adds only residual error
        to the predictions and is re-estimated with :func:`pkpd.fit` (one parameter set for all subjects).
    n : int
        Number of trials (replicates).
    estimate : sequence of str, optional
        Typical values to estimate; default: the parameters with IIV (population; required without IIV).

    Other arguments
    ---------------
    truth : dict[str, float], optional
        True typical values that differ from the model file's [parameter unit].
    estimation : dict, optional
        Arguments of the fits that differ from the truth, e.g. initial values away from it:
        ``{"init": {"CL": 2.0}, "iiv": {"CL": 0.2, "V": 0.1}, "error": pkpd.Proportional(cv=0.3), "method":
        "focei"}`` (population: ``iiv, error, init, method, settings, covariance, covariates, blq, maxeval``;
        individual: ``error, init, method, settings, blq, gradient, n_starts, max_evaluations, covariance``). By
        default every fit starts at the truth.
    settings : SolverSettings, optional
        Solver settings of the simulation (and of the fits, unless ``estimation`` gives others).
    seed : int or numpy Generator, optional
        Trial ``i`` draws from ``numpy.random.SeedSequence(seed).spawn(n)[i]``.
    level : float
        Level of the confidence intervals whose coverage is reported: estimate :math:`\pm z` SE for population
        fits; for individual fits the same on the scale each parameter is estimated on (log scale: asymmetric, as
        :class:`pkpd.FitResult`'s).
    client : dask.distributed Client, Dask cluster or scheduler address (str), optional
        Run the trials on a Dask cluster (``pkpd[distributed]``); the model and design go to each worker once.
    workers : int, optional
        Local processes without a client: None (default) runs the first trial here, and the rest on a process
        pool on all cores where that saves more than the pool costs to start (about 3 s), else here; 1 runs
        serially here. From a script, keep the top-level code under ``if __name__ == "__main__":`` (worker
        processes are started with 'spawn').
    progress : bool or None
        Progress bar over trials (None: shown for long interactive runs).

    Returns
    -------
    SimulationEstimation

    Raises
    ------
    PkpdError, FitError
        Unknown parameters or outputs (with close matches), a design without observation records, an unknown
        ``estimation`` key, bad ``n``/``level``/``client``/``workers``.

    Examples
    --------
    Ten trials of one subject sampled 8 times after a 100 mg IV bolus, fitted with :func:`pkpd.fit`:

    >>> import numpy as np, pandas as pd, pkpd
    >>> t = [0.5, 1, 2, 4, 6, 8, 12, 24]
    >>> design = pd.DataFrame({"ID": 1, "TIME": [0.0] + t, "EVID": [1] + [0] * 8, "AMT": [100] + [0] * 8, "AMTU": "mg",
    ...                        "DV": [np.nan] + [0.0] * 8})
    >>> sse = pkpd.simulation_estimation("pk_1cmt_iv", design, error=pkpd.Proportional(cv=0.1),
    ...                                  estimate=["CL", "V"], n=10, seed=1, workers=1, progress=False)
    >>> sse.names, sse.n_ok, sse.failed
    (('CL', 'V', 'conc.cv'), 10, ())
    >>> bool(abs(sse.summary.set_index("name").loc["CL", "relative_bias_percent"]) < 5)
    True
    """
    import pandas as pd

    from ._parallel import check_client, check_workers, map_tasks, spawn_seeds
    from .error_models import ERROR_MODELS
    from .load import load_model
    from .model import Model
    from .nonmem import NonmemDataset, read_nonmem
    from .population import IIV
    from .settings import SolverSettings

    if isinstance(model, str):
        model = load_model(model)
    if not isinstance(model, Model):
        raise PkpdError(f"model: expected a pkpd Model or a model name; got {type(model).__name__}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise PkpdError(f"n: must be a positive integer (trials); got {n!r}")
    level = check_level(level, "simulation_estimation")
    check_client(client)
    check_workers(workers)
    settings = settings or SolverSettings()
    if not isinstance(settings, SolverSettings):
        raise PkpdError(f"settings must be a SolverSettings; got {type(settings).__name__}")
    if truth:
        unknown = [k for k in truth if k not in model.parameter_names]
        if unknown:
            raise PkpdError(f"truth: model {model.name!r} has no parameter {unknown[0]!r}."
                            + did_you_mean(str(unknown[0]), model.parameter_names))
        model = model.with_parameters(**{k: float(v) for k, v in truth.items()})
    if isinstance(error, ERROR_MODELS):
        if len(model.outputs) != 1:
            raise PkpdError(f"error: model {model.name!r} has {len(model.outputs)} outputs; give a dict output -> "
                            "error model")
        error = {model.output_names[0]: error}
    if not isinstance(error, Mapping) or not error:
        raise PkpdError(f"error: give the true residual error model, e.g. pkpd.Proportional(cv=0.15), or a dict "
                        f"output -> error model; got {error!r}")
    for out, em in error.items():
        if out not in model.output_names:
            raise PkpdError(f"error: model {model.name!r} has no output {out!r}." + did_you_mean(str(out),
                                                                                               model.output_names))
        if not isinstance(em, ERROR_MODELS):
            raise PkpdError(f"error[{out!r}]: expected an error model (Additive, Proportional, Combined, LogNormal); "
                            f"got {em!r}")
    kind = "individual" if iiv is None else "population"
    if iiv is not None and not isinstance(iiv, IIV):
        if not isinstance(iiv, Mapping):
            raise PkpdError(f"iiv: give the true variances as a dict, e.g. {{'CL': 0.09}}, or an IIV; got {iiv!r}")
        iiv = IIV(iiv)
    if iiv is not None:
        for name in iiv.names:
            if name not in model.parameter_names:
                raise PkpdError(f"iiv: model {model.name!r} has no parameter {name!r}."
                                + did_you_mean(name, model.parameter_names))
    if estimate is None:
        if iiv is None:
            raise PkpdError("estimate: name the parameters to estimate, e.g. estimate=['CL', 'V'] (required without "
                            "iiv)")
        estimate = list(iiv.names)
    estimate = [estimate] if isinstance(estimate, str) else list(estimate)
    estimation = dict(estimation or {})
    allowed = _POPULATION_KEYS if kind == "population" else _INDIVIDUAL_KEYS
    for key in estimation:
        if key not in allowed:
            raise PkpdError(f"estimation: {key!r} is not an argument of the {kind} fit; allowed: "
                            f"{', '.join(allowed)}." + did_you_mean(str(key), allowed))

    ds = design if isinstance(design, NonmemDataset) else read_nonmem(design, model)
    table = ds.data.drop(columns=["ROW"])
    evid = table["EVID"].to_numpy(dtype=float)
    mdv = table["MDV"].to_numpy(dtype=float)
    obs_rows = np.flatnonzero((evid == 0) & (mdv == 0) & np.isfinite(table["DV"].to_numpy(dtype=float)))
    if obs_rows.size == 0:
        raise PkpdError("design: no observation records (EVID 0 with a DV value); give the sampling times as "
                        "observation records with any DV, e.g. 0")
    obs_output = _observed_outputs(table, obs_rows, model, error)
    missing = [o for o in error if o not in obs_output]
    if missing:
        raise PkpdError(f"design: no observation records of output {missing[0]!r} (set DVID to name the output of "
                        "each observation)")

    fit_kwargs = _fit_arguments(kind, model, estimate, error, iiv, settings, estimation)
    job = _Job(kind=kind, model=model, table=table, time_unit=ds.time_unit, dose_unit=ds.dose_unit,
               obs_rows=obs_rows, obs_output=tuple(obs_output), truth_error=dict(error), iiv=iiv, predictions=None,
               settings=settings, names=(), estimate=tuple(estimate), estimation=fit_kwargs, level=float(level))
    if kind == "individual":
        job = _replace(job, predictions=_predict(job, job.table))
    seeds = spawn_seeds(seed, int(n))
    names, true_values = _truth(job, seeds[0])
    job = _replace(job, names=tuple(names))
    outcomes = map_tasks(_replicate, seeds, shared=job, client=client, workers=workers, progress=progress,
                         description=f"{model.name}: simulation_estimation", unit="trial")
    ok = [(i, r) for i, (good, r) in enumerate(outcomes) if good]
    failed = tuple((i, r) for i, (good, r) in enumerate(outcomes) if not good)
    k = len(names)

    def stack(j):
        return np.array([r[j] for _, r in ok], dtype=float).reshape(len(ok), k)

    est, se, lo, hi = (stack(j) for j in range(4))
    replicates = np.array([i for i, _ in ok], dtype=np.int64)
    truth_map = dict(zip(names, true_values))
    summary = pd.DataFrame([_summarise(name, truth_map[name], est[:, j], se[:, j], lo[:, j], hi[:, j])
                            for j, name in enumerate(names)])
    for a in (est, se, lo, hi, replicates):
        a.setflags(write=False)
    return SimulationEstimation(kind=kind, names=tuple(names), truth=truth_map, estimates=est, se=se, ci_low=lo,
                                ci_high=hi, replicates=replicates, failed=failed, n_requested=int(n),
                                level=float(level), seed=seed if isinstance(seed, int | None) else None,
                                summary=summary)


def _replace(job: _Job, **changes) -> _Job:
    import dataclasses

    return dataclasses.replace(job, **changes)


def _observed_outputs(table, rows: np.ndarray, model, error: Mapping) -> list[str]:
    fitted = list(error)
    if "DVID" not in table.columns:
        if len(fitted) > 1:
            raise PkpdError(f"design: several outputs are fitted ({', '.join(fitted)}); add a DVID column naming the "
                            "output of each observation (its name or 1-based number)")
        return [fitted[0]] * rows.size
    out = []
    for value in table["DVID"].to_numpy()[rows]:
        name = None
        if isinstance(value, str) and value in model.output_names:
            name = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if number.is_integer() and 1 <= number <= len(model.output_names):
                name = model.output_names[int(number) - 1]
        if name is None or name not in error:
            raise PkpdError(f"design: DVID {value!r} names no fitted output (fitted: {', '.join(fitted)}); give the "
                            "output's name or its 1-based number among the model's outputs")
        out.append(name)
    return out


def _fit_arguments(kind, model, estimate, error, iiv, settings, estimation) -> dict:
    if kind == "population":
        args = {"iiv": iiv, "error": dict(error), "init": {p: model.parameter(p).value for p in estimate},
                "method": "focei", "settings": settings}
    else:
        args = {"error": dict(error), "init": {}, "settings": settings}
    args |= estimation
    init = args.get("init") or {}
    if not isinstance(init, Mapping):
        raise PkpdError(f"estimation['init']: give a dict parameter -> initial value; got {init!r}")
    for name in init:
        if name not in model.parameter_names:
            raise PkpdError(f"estimation['init']: model {model.name!r} has no parameter {name!r}."
                            + did_you_mean(str(name), model.parameter_names))
    return args


def _predict(job: _Job, table) -> np.ndarray:
    """Model predictions at the observation records of a design table (with per-record parameter columns)."""
    from .nonmem import read_nonmem, simulate_nonmem

    ds = read_nonmem(table, job.model, time_unit=job.time_unit, dose_unit=job.dose_unit)
    out = simulate_nonmem(job.model, ds, settings=job.settings)
    return np.array([out[o].to_numpy(dtype=float)[r] for r, o in zip(job.obs_rows, job.obs_output)])


def _simulate_trial(job: _Job, rng: np.random.Generator):
    """One trial's dataset (DataFrame): random effects (population), residual error, censoring below LLOQ."""
    table = job.table.copy()
    if job.kind == "population":
        ids = table["ID"].to_numpy()
        subjects, index = np.unique(ids, return_inverse=True)
        eta = job.iiv.sample(subjects.size, rng)
        typical = np.array([job.model.parameter(p).value for p in job.iiv.names])
        individual = job.iiv.individual(np.broadcast_to(typical, eta.shape), eta)
        for k, name in enumerate(job.iiv.names):
            table[name] = individual[index, k]
        F = _predict(job, table)
        table = table.drop(columns=list(job.iiv.names))
    else:
        F = job.predictions
    y = np.empty_like(F)
    outputs = np.array(job.obs_output)
    for out, em in job.truth_error.items():
        sel = outputs == out
        y[sel] = em.sample(F[sel], rng)
    dv = table["DV"].to_numpy(dtype=float).copy()
    dv[job.obs_rows] = y
    table["DV"] = dv
    if "LLOQ" in table.columns:
        lloq = table["LLOQ"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            below = np.zeros(len(table), dtype=bool)
            below[job.obs_rows] = np.isfinite(lloq[job.obs_rows]) & (y < lloq[job.obs_rows])
        table["BLQ"] = below.astype(int)
        table.loc[below, "DV"] = lloq[below]
    return table


def _fit(job: _Job, data):
    """Fit one simulated trial; returns (names, estimates, se, ci_low, ci_high, converged, message)."""
    from .estimation.individual import fit
    from .estimation.population_fit import fit_population

    args = dict(job.estimation)
    if job.kind == "population":
        res = fit_population(job.model, data, estimate=list(job.estimate), **args)
        p = res.parameters
        names = [str(x) for x in p["name"]]
        est, se = p["estimate"].to_numpy(dtype=float), p["se"].to_numpy(dtype=float)
        z = _z(job.level)
        lo, hi = est - z * se, est + z * se
        return names, est, se, lo, hi, res.converged, res.message
    init = args.pop("init", {}) or {}
    model = job.model.with_parameters(**init) if init else job.model
    res = fit(model, data, estimate=list(job.estimate), **args)
    names = list(res.names)
    est = np.array([res.estimates[k] for k in names])
    se = np.array([res.se[k] for k in names])
    z = _z(job.level)
    log = np.array([res.scale.get(k) == "log" for k in names])
    with np.errstate(all="ignore"):
        width = np.where(log, se / est, se) * z  # log-scale SE by the delta method, inverted
        lo = np.where(log, est * np.exp(-width), est - width)
        hi = np.where(log, est * np.exp(width), est + width)
    return names, est, se, lo, hi, res.converged, res.message


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _truth(job: _Job, seed) -> tuple[list[str], list[float]]:
    """Names of the estimated parameters, as the fits report them, and their true values."""
    names = _fit_names(job, _simulate_trial(job, np.random.default_rng(seed)))
    values = []
    for name in names:
        values.append(_true_value(job, name))
    return names, values


def _fit_names(job: _Job, data) -> list[str]:
    if job.kind == "population":
        from .estimation.population_fit import fit_population

        # the objective at the starting values only (maxeval=0): the names of the parameters, nothing estimated
        args = dict(job.estimation) | {"maxeval": 0, "covariance": None}
        res = fit_population(job.model, data, estimate=list(job.estimate), **args)
        return [str(x) for x in res.parameters["name"]]
    names = [p for p in job.model.parameter_names if p in job.estimate]
    for out, em in job.estimation["error"].items():
        names += [f"{out}.{p}" for p in em.parameter_names if p not in em.fixed]
    return names


def _true_value(job: _Job, name: str) -> float:
    if name in job.model.parameter_names:
        return float(job.model.parameter(name).value)
    iiv = job.iiv
    if iiv is not None and name.startswith("omega2_") and name[7:] in iiv.names:
        i = iiv.names.index(name[7:])
        return float(iiv.omega[i, i])
    if iiv is not None and name.startswith("omega_"):
        for a in iiv.names:
            for b in iiv.names:
                if name == f"omega_{a}_{b}":
                    return float(iiv.omega[iiv.names.index(a), iiv.names.index(b)])
    errors = job.truth_error
    for out, em in errors.items():
        for p in em.parameter_names:
            if name in (f"{out}.{p}", f"{out}_{p}") or (len(errors) == 1 and name == p):
                return float(getattr(em, p))
    return math.nan


def _replicate(job: _Job, seed) -> tuple[bool, object]:
    """One trial (a pure task): (True, (estimates, se, ci_low, ci_high) in job.names order) or (False, reason)."""
    data = _simulate_trial(job, np.random.default_rng(seed))
    try:
        names, est, se, lo, hi, converged, message = _fit(job, data)
    except (PkpdError, FitError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not converged:
        return False, f"did not converge: {message}"
    where = {nm: i for i, nm in enumerate(names)}
    pick = [where.get(nm) for nm in job.names]

    def take(a):
        return np.array([a[i] if i is not None else math.nan for i in pick], dtype=float)

    return True, (take(est), take(se), take(lo), take(hi))


def _summarise(name: str, truth: float, est: np.ndarray, se: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict:
    m = est.size
    nan = math.nan
    with np.errstate(all="ignore"):
        rel = est / truth - 1 if truth != 0 else np.full(m, nan)
        has_ci = np.isfinite(lo) & np.isfinite(hi)
        finite_se = se[np.isfinite(se)]
        return {
            "name": name, "truth": truth,
            "mean": float(np.mean(est)) if m else nan,
            "median": float(np.median(est)) if m else nan,
            "bias": float(np.mean(est) - truth) if m else nan,
            "relative_bias_percent": float(100 * np.mean(rel)) if m else nan,
            "mc_se_percent": float(100 * np.std(rel, ddof=1) / math.sqrt(m)) if m > 1 else nan,
            "rmse": float(np.sqrt(np.mean((est - truth) ** 2))) if m else nan,
            "relative_rmse_percent": float(100 * np.sqrt(np.mean(rel ** 2))) if m else nan,
            "empirical_se": float(np.std(est, ddof=1)) if m > 1 else nan,
            "mean_se": float(np.mean(finite_se)) if finite_se.size else nan,
            "coverage": float(np.mean((lo[has_ci] <= truth) & (truth <= hi[has_ci]))) if has_ci.any() else nan,
            "n": int(m),
        }
