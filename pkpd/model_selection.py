r"""Model selection for population fits: information criteria, likelihood-ratio tests and stepwise covariate
modelling (SCM), with the empirical Bayes estimates against covariates for a look before and after.

* :func:`compare_fits` -- objective, number of parameters, AIC, BIC and their differences for several fits
  (:class:`~pkpd.FitResult` or :class:`~pkpd.PopulationFit`); :func:`pkpd.likelihood_ratio_test` compares two nested
  fits of either kind.
* :func:`stepwise_covariate_search` -- PsN's SCM: **forward inclusion** adds, one at a time, the candidate covariate
  effect (:class:`~pkpd.CovariateEffect`: power, linear or categorical) whose likelihood-ratio test against the
  current model is most significant, while p < ``p_forward`` (0.05); **backward elimination** then removes, one at a
  time, the least significant effect while its removal has p > ``p_backward`` (0.01). Each step fits every candidate
  (in parallel: local processes or a Dask ``client``), warm-started at the current model's estimates with the new
  coefficient at its neutral value, so a candidate's objective never starts above the current one. Fits are
  deterministic, so the search is reproducible whatever the parallelism; every fit of every step is in
  :attr:`CovariateSearch.log`.
* :func:`eta_covariate_table` and :func:`pkpd.decision_plots.plot_eta_covariates` -- EBEs against covariates, with
  shrinkage above :data:`pkpd.decision_plots.SHRINKAGE_FLAG` flagged (EBE plots then hide or invent relations).

The degrees of freedom of a likelihood-ratio test are the estimated coefficients an effect adds: one for a power or
linear effect, one per non-reference category for a categorical one.

References
----------
Jonsson EN, Karlsson MO (1998) Automated covariate model building within NONMEM. Pharm Res 15:1463-1468.
Lindbom L, Pihlgren P, Jonsson EN (2005) PsN-Toolkit. Comput Methods Programs Biomed 79:241-257 (scm).
Savic RM, Karlsson MO (2009) Importance of shrinkage in empirical Bayes estimates for diagnostics. AAPS J 11:558.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import FitError, PkpdError, did_you_mean

__all__ = ["CovariateSearch", "compare_fits", "eta_covariate_table", "stepwise_covariate_search"]


# ------------------------------------------------------------------------------------------------ comparison
def compare_fits(fits: Mapping[str, object] | Sequence):
    """Objective, parameters, AIC and BIC of several fits of the same data, best AIC first.

    Parameters
    ----------
    fits : dict[str, FitResult or PopulationFit] or sequence
        The fits (named by the dict's keys, else ``fit 1``, ``fit 2``...). Population and individual fits
        are not mixed.

    Returns
    -------
    pandas.DataFrame
        ``name, kind, minus2ll, n_parameters, n_obs, aic, bic, delta_aic, delta_bic`` (-2 log-likelihood with
        its constant, so that values of both fitters compare; ``objective`` for population fits is NONMEM's OFV).

    Examples
    --------
    >>> import pkpd
    >>> a = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> b = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Proportional(cv=0.3), maxeval=0)
    >>> table = compare_fits({"additive": a, "proportional": b})
    >>> list(table["name"]), float(table["delta_aic"].iloc[0])
    (['additive', 'proportional'], 0.0)
    """
    import pandas as pd

    from .fitting import FitResult
    from .nlme import PopulationFit

    items = list(fits.items()) if isinstance(fits, Mapping) else [(f"fit {i + 1}", f) for i, f in enumerate(fits)]
    if not items:
        raise FitError("compare_fits: no fits given")
    rows = []
    kinds = set()
    for name, f in items:
        if isinstance(f, PopulationFit):
            kinds.add("population")
            rows.append({"name": name, "kind": "population", "minus2ll": f.minus2ll, "objective": f.objective,
                         "n_parameters": len(f.parameters), "n_obs": f.n_obs, "aic": f.aic, "bic": f.bic})
        elif isinstance(f, FitResult):
            kinds.add("individual")
            rows.append({"name": name, "kind": "individual", "minus2ll": f.objective, "objective": f.objective,
                         "n_parameters": f.n_parameters, "n_obs": f.n_obs, "aic": f.aic, "bic": f.bic})
        else:
            raise FitError(f"compare_fits: {name!r} is not a FitResult or PopulationFit; got {type(f).__name__}")
    if len(kinds) > 1:
        raise FitError("compare_fits: population and individual fits have different likelihoods; compare fits of "
                       "one kind")
    if len({r["n_obs"] for r in rows}) > 1:
        raise FitError("compare_fits: the fits use different numbers of observations "
                       f"({sorted({r['n_obs'] for r in rows})}); information criteria compare fits of the same data")
    frame = pd.DataFrame(rows)
    frame["delta_aic"] = frame["aic"] - frame["aic"].min()
    frame["delta_bic"] = frame["bic"] - frame["bic"].min()
    return frame.sort_values("aic", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ EBEs
def eta_covariate_table(fit, data, covariates: Sequence[str] | None = None):
    """One row per subject: ``ID``, the EBEs (``ETA_<name>``) and the subject's covariates (first value).

    Parameters
    ----------
    fit : PopulationFit
    data : DataFrame, path or NonmemDataset
        The data the fit used.
    covariates : sequence of str, optional
        Columns to include (default: every column that is not part of the NONMEM layout).

    Raises
    ------
    PkpdError
        A covariate not in the data (with close matches), or data whose subjects are not the fit's.

    Examples
    --------
    >>> import pkpd
    >>> theoph = pkpd.nonmem.read_nonmem("tests/data/theoph.csv", dose_unit="mg")
    >>> f = pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"CL": 0.1},
    ...                         estimate=["ka", "CL", "V"], error=pkpd.Additive(sd=0.7), maxeval=0)
    >>> list(eta_covariate_table(f, theoph).columns)
    ['ID', 'ETA_CL', 'WT']
    """
    import pandas as pd

    from .nonmem import NonmemDataset, read_nonmem

    ds = data if isinstance(data, NonmemDataset) else read_nonmem(data)
    table = ds.data
    layout = {"ID", "TIME", "DV", "AMT", "EVID", "CMT", "MDV", "RATE", "II", "ADDL", "SS", "DUR", "BLQ", "LLOQ", "DVID",
              "OCC", "ROW", "AMTU"}
    cols = [c for c in table.columns if str(c).upper() not in layout] if covariates is None else list(covariates)
    for c in cols:
        if c not in table.columns:
            raise PkpdError(f"eta_covariate_table: the data have no column {c!r}."
                            + did_you_mean(str(c), [str(x) for x in table.columns]))
    first = table.groupby("ID", sort=False).first()
    ids = list(first.index)
    if len(ids) != fit.eta.shape[0]:
        raise PkpdError(f"eta_covariate_table: the data have {len(ids)} subjects, the fit {fit.eta.shape[0]}; give "
                        "the data the fit used")
    out = pd.DataFrame({"ID": ids})
    for j, name in enumerate(fit.iiv.names):
        out[f"ETA_{name}"] = fit.eta[:, j]
    for c in cols:
        out[c] = first[c].to_numpy()
    return out


# ------------------------------------------------------------------------------------------------ SCM
def _effect_name(e) -> str:
    return f"{e.covariate}({e.kind})_on_{e.parameter}"


def _n_coefficients(e) -> int:
    return len(dict(e.value)) if e.kind == "categorical" else 1


def _neutral(e):
    """The effect at 'no effect' (power/linear 0, every category factor 1): the warm start of a new candidate."""
    if e.kind == "categorical":
        return dataclasses.replace(e, value={k: 1.0 for k in dict(e.value)})
    return dataclasses.replace(e, value=0.0)


@dataclass(frozen=True, eq=False)
class _Job:
    """What every candidate fit of a search shares (private; sent once to each worker)."""

    model: object
    data: object
    error: object
    method: str
    estimate: tuple
    settings: object
    options: dict


def _fit_task(job: _Job, payload):
    """One candidate fit (a pure task): (True, fit) or (False, reason)."""
    from .nlme import fit_population

    iiv, init, error, effects = payload
    try:
        fit = fit_population(job.model, job.data, iiv=iiv, error=error, method=job.method, estimate=job.estimate,
                             init=init, settings=job.settings, covariates=effects, covariance=None, **job.options)
    except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not math.isfinite(fit.objective):
        return False, "no finite objective"
    return True, fit


@dataclass(frozen=True, eq=False)
class CovariateSearch:
    """The result of :func:`stepwise_covariate_search`.

    Attributes
    ----------
    selected : tuple of CovariateEffect
        The final covariate model, with estimated coefficients.
    base, final : PopulationFit
        The fit without candidates and the final one.
    forward, backward : tuple of CovariateEffect
        Effects after forward inclusion, and those removed by backward elimination (in order).
    log : DataFrame
        Every fit: ``phase, step, effect, parameter, covariate, kind, df, ofv, reference_ofv, delta_ofv, p_value,
        significant, chosen, converged, note``.
    p_forward, p_backward : float
    n_fits : int
    """

    selected: tuple
    base: object = field(repr=False)
    final: object = field(repr=False)
    forward: tuple = ()
    backward: tuple = ()
    log: object = field(repr=False, default=None)
    p_forward: float = 0.05
    p_backward: float = 0.01
    n_fits: int = 0

    @property
    def selected_names(self) -> tuple[str, ...]:
        """``covariate(kind)_on_parameter`` of each selected effect."""
        return tuple(_effect_name(e) for e in self.selected)

    def __repr__(self) -> str:
        chosen = ", ".join(self.selected_names) or "no covariate effect"
        return (f"CovariateSearch(forward p < {self.p_forward:g}, backward p > {self.p_backward:g}: {chosen}; "
                f"OFV {self.base.objective:.3f} -> {self.final.objective:.3f}; {self.n_fits} fits; see .log)")


def stepwise_covariate_search(model, data, *, iiv, error, candidates: Sequence, method: str = "foce",
                              estimate=None, p_forward: float = 0.05, p_backward: float = 0.01, base=None,
                              settings=None, workers: int | None = None, client=None, progress: bool | None = None,
                              **fit_options) -> CovariateSearch:
    """Stepwise covariate modelling (PsN's SCM): forward inclusion at ``p_forward``, backward elimination at
    ``p_backward``, every candidate of a step fitted in parallel.

    Main arguments
    --------------
    model, data, iiv, error, method, estimate
        As :func:`pkpd.fit_population` (the base model, without candidate effects).
    candidates : sequence of CovariateEffect
        The relations to test, each with its form and initial value: e.g. ``CovariateEffect("CL", "WT", "power",
        0.75, ref=70)``, ``CovariateEffect("CL", "AGE", "linear", 0.0, ref=50)``, ``CovariateEffect("V", "SEX",
        "categorical", {1: 0.9})`` (one coefficient per non-reference category). Several forms of one
        parameter-covariate pair may be candidates; once one is included, the others are no longer tried.

    Other arguments
    ---------------
    p_forward, p_backward : float
        Significance levels of inclusion and elimination (likelihood-ratio tests).
    base : PopulationFit, optional
        The base fit, if already done (with the same arguments).
    settings : SolverSettings, optional
    workers, client, progress
        Parallel candidate fits: local processes (``workers``, see :func:`pkpd.bootstrap`) or a Dask ``client``.
    **fit_options
        Other arguments of :func:`pkpd.fit_population` (``blq``, ``maxeval``...).

    Returns
    -------
    CovariateSearch

    Raises
    ------
    PkpdError
        A candidate on a parameter the model lacks, a covariate absent from the data or not declared by the model,
        or a covariate that changes within a subject (each named, before any fit).

    Examples
    --------
    See ``tests/unit/test_model_selection.py`` and ``benchmarks/scm_recovery.py``.
    """
    from scipy.stats import chi2

    from ._parallel import check_client, check_workers, map_tasks
    from .fitting import _read
    from .load import load_model
    from .nlme import fit_population
    from .population import IIV, CovariateEffect

    check_client(client)
    check_workers(workers)
    if isinstance(model, str):
        model = load_model(model)
    for name, p in (("p_forward", p_forward), ("p_backward", p_backward)):
        if not 0 < p < 1:
            raise PkpdError(f"stepwise_covariate_search: {name} must be in (0, 1); got {p!r}")
    candidates = list(candidates)
    if not candidates:
        raise PkpdError("stepwise_covariate_search: no candidates; give CovariateEffect objects to test")
    table = _read(model, data).table
    columns = {str(c).upper(): str(c) for c in table.columns}
    seen = set()
    for i, e in enumerate(candidates):
        if not isinstance(e, CovariateEffect):
            raise PkpdError(f"stepwise_covariate_search: candidates[{i}] must be a CovariateEffect; got "
                            f"{type(e).__name__}")
        where = f"candidate {_effect_name(e)}"
        if e.parameter not in model.parameter_names:
            raise PkpdError(f"{where}: model {model.name!r} has no parameter {e.parameter!r}."
                            + did_you_mean(e.parameter, model.parameter_names))
        if e.covariate.upper() not in columns:
            raise PkpdError(f"{where}: the data have no column {e.covariate!r}."
                            + did_you_mean(e.covariate, list(columns.values())))
        if e.covariate not in model.covariate_names:
            raise PkpdError(f"{where}: model {model.name!r} declares no covariate {e.covariate!r}; declare it in "
                            "the model file's [covariates] (it need not appear in the equations)")
        if _effect_name(e) in seen:
            raise PkpdError(f"{where}: given twice")
        seen.add(_effect_name(e))
        column = columns[e.covariate.upper()]
        varies = table.groupby("ID", sort=False)[column].nunique(dropna=True) > 1
        if varies.any():
            sid = varies.idxmax()
            sid = int(sid) if isinstance(sid, float | np.floating) and float(sid).is_integer() else sid
            raise PkpdError(f"{where}: {e.covariate!r} changes within subject {sid}; an estimated covariate effect "
                            "takes one value per subject")
    iiv = IIV(dict(iiv)) if isinstance(iiv, Mapping) else iiv
    job = _Job(model=model, data=data, error=error, method=method, estimate=tuple(estimate or iiv.names),
               settings=settings, options=dict(fit_options))
    if base is None:
        base = fit_population(model, data, iiv=iiv, error=error, method=method, estimate=job.estimate,
                              settings=settings, covariance=None, **fit_options)
    rows: list[dict] = []
    n_fits = 0

    def warm(fit, effects):
        """Payload of a fit of ``effects`` warm-started at ``fit``'s estimates."""
        return (fit.iiv, dict(fit.theta), dict(fit.error), tuple(effects))

    def run(payloads):
        nonlocal n_fits
        n_fits += len(payloads)
        return map_tasks(_fit_task, payloads, shared=job, client=client, workers=workers, progress=progress,
                         description=f"{model.name}: scm", unit="fit")

    def record(phase, step, e, outcome, reference, df, chosen=False, removal=False):
        ok, res = outcome
        row = {"phase": phase, "step": step, "effect": _effect_name(e), "parameter": e.parameter,
               "covariate": e.covariate, "kind": e.kind, "df": df, "reference_ofv": reference.objective,
               "ofv": math.nan, "delta_ofv": math.nan, "p_value": math.nan, "significant": False, "chosen": chosen,
               "converged": False, "note": ""}
        if ok:
            delta = (res.objective - reference.objective) if removal else (reference.objective - res.objective)
            p = float(chi2.sf(max(delta, 0.0), df))
            row |= {"ofv": res.objective, "delta_ofv": delta, "p_value": p, "converged": bool(res.converged),
                    "note": "" if res.converged else res.message}
        else:
            row["note"] = res
        rows.append(row)
        return row

    # ---- forward inclusion
    current, included = base, []
    remaining = list(candidates)
    step = 0
    while remaining:
        step += 1
        payloads = [warm(current, included + [_neutral(e)]) for e in remaining]
        outcomes = run(payloads)
        trial_rows = [record("forward", step, e, o, current, _n_coefficients(e)) for e, o in zip(remaining, outcomes)]
        best = None
        for k, row in enumerate(trial_rows):
            if math.isfinite(row["p_value"]) and row["delta_ofv"] > 0 and (best is None or
                                                                          row["p_value"] < trial_rows[best]["p_value"]):
                best = k
        if best is None or not trial_rows[best]["p_value"] < p_forward:
            break
        trial_rows[best]["significant"] = trial_rows[best]["chosen"] = True
        for row in trial_rows:
            if math.isfinite(row["p_value"]) and row["p_value"] < p_forward:
                row["significant"] = True
        chosen = remaining[best]
        current = outcomes[best][1]
        included = list(current.covariate_effects)
        remaining = [e for e in remaining if (e.parameter, e.covariate) != (chosen.parameter, chosen.covariate)]
    forward = tuple(included)

    # ---- backward elimination
    removed = []
    step = 0
    while included:
        step += 1
        payloads = [warm(current, [e for e in included if e is not drop]) for drop in included]
        outcomes = run(payloads)
        trial_rows = [record("backward", step, e, o, current, _n_coefficients(e), removal=True)
                      for e, o in zip(included, outcomes)]
        worst = None
        for k, row in enumerate(trial_rows):
            p = row["p_value"] if math.isfinite(row["p_value"]) else -1.0
            row["significant"] = bool(math.isfinite(row["p_value"]) and row["p_value"] < p_backward)
            if worst is None or p > (trial_rows[worst]["p_value"] if math.isfinite(trial_rows[worst]["p_value"])
                                     else -1.0):
                worst = k
        if not (math.isfinite(trial_rows[worst]["p_value"]) and trial_rows[worst]["p_value"] > p_backward):
            break
        trial_rows[worst]["chosen"] = True
        removed.append(included[worst])
        current = outcomes[worst][1]
        included = list(current.covariate_effects)
    import pandas as pd

    log = pd.DataFrame(rows, columns=["phase", "step", "effect", "parameter", "covariate", "kind", "df", "ofv",
                                      "reference_ofv", "delta_ofv", "p_value", "significant", "chosen", "converged",
                                      "note"])
    return CovariateSearch(selected=tuple(included), base=base, final=current, forward=forward,
                           backward=tuple(removed), log=log, p_forward=float(p_forward), p_backward=float(p_backward),
                           n_fits=n_fits)
