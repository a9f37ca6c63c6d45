"""Uncertainty of estimates: profile likelihood, bootstrap (individual and population fits), identifiability and
likelihood-ratio tests.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError, PkpdError, did_you_mean
from ..settings import SolverSettings
from .data import _Data
from .individual import FitResult, _check_start, _Context, _fmt, _natural_se, _null_space_names, _optimise, _Problem
from .likelihood import _Likelihood
from .population_fit import PopulationFit, fit_population

__all__ = ["Bootstrap", "Identifiability", "LikelihoodRatioTest", "ProfileLikelihood", "bootstrap",
           "bootstrap_population", "identifiability", "likelihood_ratio_test", "profile_likelihood"]

_Z95 = 1.959963984540054  # standard normal 97.5 % quantile
_CHI2_95 = 3.841458820694124  # chi-square(1) 95 % quantile: profile-likelihood threshold


# ====================================================================================================== profiles
@dataclass(frozen=True, eq=False)
class ProfileLikelihood:
    """The profile likelihood of one parameter (:func:`profile_likelihood`).

    Attributes
    ----------
    name, unit : str
    estimate : float
        The fit's estimate [unit].
    values : ndarray, shape (n,)
        Fixed values of the parameter, increasing [unit].
    objective : ndarray, shape (n,)
        Minimum -2 log-likelihood over the other parameters at each value.
    delta : ndarray, shape (n,)
        ``objective`` minus the fit's objective.
    converged : ndarray of bool, shape (n,)
    threshold : float
        3.84, the chi-square(1) 95 % quantile: the CI holds the values with ``delta <= threshold``.
    ci_low, ci_high : float
        Profile-likelihood 95 % CI [unit]; NaN on a side where the profile stays below the threshold up to the
        bound (the data do not bound the parameter there).
    identifiable : bool
        True when the profile crosses the threshold on both sides.
    message : str

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> prof = pkpd.profile_likelihood(res, "CL")
    >>> prof.identifiable, bool(prof.ci_low < res.estimates["CL"] < prof.ci_high)
    (True, True)
    """

    name: str
    unit: str
    estimate: float
    values: np.ndarray
    objective: np.ndarray
    delta: np.ndarray
    converged: np.ndarray
    threshold: float
    ci_low: float
    ci_high: float
    identifiable: bool
    message: str = ""

    def to_dataframe(self):
        """Columns ``value, objective, delta, converged`` (pandas)."""
        import pandas as pd

        return pd.DataFrame({"value": self.values, "objective": self.objective, "delta": self.delta,
                             "converged": self.converged})

    def plot(self, **kwargs):
        """See :func:`pkpd.plots.plot_profile`."""
        from ..plots import plot_profile

        return plot_profile(self, **kwargs)

    def __repr__(self) -> str:
        state = "identifiable" if self.identifiable else "NOT bounded by the data on both sides"
        return (f"ProfileLikelihood of {self.name}: estimate {_fmt(self.estimate)} {self.unit}, 95 % CI "
                f"[{_fmt(self.ci_low)}, {_fmt(self.ci_high)}] ({state}; {self.values.size} points)"
                + (f"; note: {self.message}" if self.message else ""))


def _index_of(result: FitResult, name: str) -> int:
    if not isinstance(result, FitResult):
        raise FitError(f"expected a FitResult (from pkpd.fit); got {type(result).__name__}")
    if name not in result.names:
        raise FitError(f"{name!r} is not an estimated parameter of this fit." + did_you_mean(str(name), result.names))
    return result.names.index(name)


def profile_likelihood(result: FitResult, name: str, *, max_points: int = 15, step: float | None = None
                       ) -> ProfileLikelihood:
    """Profile likelihood and its 95 % confidence interval for one estimated parameter.

    The parameter is fixed at values stepping away from the estimate on each side (on its estimation scale);
    at each value the other parameters are re-estimated by least squares (warm-started from the previous point,
    with the fit's ``max_evaluations`` budget). A side stops one point past the chi-square(1) threshold 3.84, at
    the parameter's bound, or after ``max_points`` points; the step doubles while the profile stays flat.

    Parameters
    ----------
    result : FitResult
    name : str
        An estimated parameter (``result.names``), e.g. ``"EC50"`` or ``"IL10.cv"``.
    max_points : int
        Most points per side.
    step : float, optional
        First step on the estimation scale (log units for log-scale parameters); default half the standard
        error, or, when there is none, 0.1 on the log scale and 0.05 max(|estimate|, 1) on the parameter's own
        scale.

    Returns
    -------
    ProfileLikelihood

    References
    ----------
    Raue A et al. (2009) Bioinformatics 25:1923-1929.

    Examples
    --------
    See :class:`ProfileLikelihood`.
    """
    j = _index_of(result, name)
    ctx = result._data("profile_likelihood")
    problem, layout = ctx.problem, ctx.problem.layout
    x_hat = ctx.x
    if step is None:
        se = math.sqrt(ctx.cov_x[j, j]) if ctx.cov_x is not None and ctx.cov_x[j, j] > 0 else math.nan
        step = 0.5 * se if math.isfinite(se) and se > 0 else 0.1
        if not layout.log[j]:
            step = step if math.isfinite(se) and se > 0 else 0.05 * max(abs(x_hat[j]), 1.0)
    step = float(step)
    if not step > 0:
        raise FitError(f"step: must be > 0; got {step!r}")
    ofv0 = result.objective
    points = [(x_hat[j], ofv0, True)]
    messages = []
    def solve(x_start, value):
        """Re-estimate the others with the parameter fixed at ``value``: (ofv, converged, full x) or None."""
        x_start = x_start.copy()
        x_start[j] = value
        run, _ = _optimise(problem, x_start, "least_squares", ctx.max_evaluations, fixed={j: value})
        if not math.isfinite(run.ofv):
            shown = math.exp(value) if layout.log[j] else value
            messages.append(f"the model could not be evaluated at {name} = {_fmt(shown)}")
            return None
        full = x_start.copy()
        full[[i for i in range(x_start.size) if i != j]] = run.x
        return run.ofv, run.converged, full

    for direction in (1.0, -1.0):
        x = x_hat.copy()
        h = step
        value = x_hat[j]
        bound = layout.upper[j] if direction > 0 else layout.lower[j]
        prev_delta = 0.0
        inside = (value, x.copy())  # last point below the threshold, and its solution (warm start)
        for _ in range(max_points):
            nxt = value + direction * h
            at_bound = False
            if (direction > 0 and nxt >= bound) or (direction < 0 and nxt <= bound):
                nxt = bound
                at_bound = True
            if not math.isfinite(nxt):
                break
            got = solve(x, nxt)
            if got is None:
                break
            ofv, conv, x = got
            points.append((nxt, ofv, conv))
            delta = ofv - ofv0
            value = nxt
            if delta > _CHI2_95:
                # bracketed: bisect (on the estimation scale) so the crossing is located to a few % of a unit
                lo_v, lo_x, hi_v = inside[0], inside[1], nxt
                for _ in range(3):
                    mid = 0.5 * (lo_v + hi_v)
                    got = solve(lo_x, mid)
                    if got is None:
                        break
                    points.append((mid, got[0], got[1]))
                    if got[0] - ofv0 > _CHI2_95:
                        hi_v = mid
                    else:
                        lo_v, lo_x = mid, got[2]
                break
            inside = (nxt, x.copy())
            if at_bound:
                break
            if delta - prev_delta < 0.1 * _CHI2_95:
                h *= 2.0
            prev_delta = delta
    points.sort(key=lambda p: p[0])
    xs = np.array([p[0] for p in points])
    ofv = np.array([p[1] for p in points])
    conv = np.array([p[2] for p in points], dtype=bool)
    values = np.exp(xs) if layout.log[j] else xs
    delta = ofv - ofv0
    if np.any(delta < -0.05):
        k = int(np.argmin(delta))
        messages.append(f"a lower objective ({_fmt(ofv[k])}) was found at {name} = {_fmt(values[k])}: the fit "
                        "stopped at a local optimum; refit from there (model.with_parameters) or use n_starts")
    i0 = int(np.argmin(np.abs(xs - x_hat[j])))
    lo = _crossing(values[:i0 + 1][::-1], delta[:i0 + 1][::-1])
    hi = _crossing(values[i0:], delta[i0:])
    if math.isnan(lo) or math.isnan(hi):
        sides = [s for s, v in (("lower", lo), ("upper", hi)) if math.isnan(v)]
        messages.append(f"the profile stays within {_CHI2_95:.2f} of the minimum on the {' and '.join(sides)} "
                        "side: the data do not bound the parameter there")
    return ProfileLikelihood(name=name, unit=result.units[name], estimate=result.estimates[name], values=values,
                             objective=ofv, delta=delta, converged=conv, threshold=_CHI2_95, ci_low=lo, ci_high=hi,
                             identifiable=not (math.isnan(lo) or math.isnan(hi)), message="; ".join(messages))


def _crossing(values: np.ndarray, delta: np.ndarray) -> float:
    """First value (walking away from the estimate) where delta crosses the threshold, linearly interpolated."""
    for k in range(1, values.size):
        if delta[k] >= _CHI2_95 > delta[k - 1]:
            w = (_CHI2_95 - delta[k - 1]) / (delta[k] - delta[k - 1])
            return float(values[k - 1] + w * (values[k] - values[k - 1]))
    return math.nan


# ====================================================================================================== bootstrap
@dataclass(frozen=True, eq=False)
class Bootstrap:
    """A bootstrap of a fit: parametric (:func:`bootstrap`) or by resampling subjects
    (:func:`pkpd.nlme.bootstrap_population`).

    Attributes
    ----------
    names : tuple[str, ...]
    estimate : dict[str, float]
        The original fit's estimates.
    samples : ndarray, shape (n_ok, k)
        Estimates from the replicates whose fit converged, natural scale, columns in ``names`` order, rows in
        replicate order. Read-only (as ``replicates``): the summaries below stay those of the samples.
    replicates : ndarray of int, shape (n_ok,)
        The (0-based) replicate index of each row of ``samples``.
    n_requested, n_failed : int
        Replicates asked for, and those whose fit failed or did not converge (left out of ``samples``).
    failed : tuple[tuple[int, str], ...]
        ``(replicate index, reason)`` of each failed replicate: nothing is dropped silently.
    median, se, ci_low, ci_high : dict[str, float]
        Median, standard deviation and 2.5th / 97.5th percentiles of the replicate estimates.
    seed : int or None
        The seed given (replicate ``i`` draws from ``numpy.random.SeedSequence(seed).spawn(n)[i]``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> boot = pkpd.bootstrap(res, 20, seed=1, progress=False)
    >>> boot.samples.shape, boot.failed
    ((20, 3), ())
    """

    names: tuple[str, ...]
    estimate: dict[str, float]
    samples: np.ndarray = field(repr=False)
    n_requested: int
    n_failed: int
    median: dict[str, float]
    se: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    failed: tuple = ()
    replicates: np.ndarray = field(default=None, repr=False)
    seed: int | None = None

    def to_dataframe(self):
        """Columns ``name, estimate, median, se, ci_low, ci_high`` (pandas)."""
        import pandas as pd

        return pd.DataFrame({"name": list(self.names), "estimate": [self.estimate[n] for n in self.names],
                             "median": [self.median[n] for n in self.names], "se": [self.se[n] for n in self.names],
                             "ci_low": [self.ci_low[n] for n in self.names],
                             "ci_high": [self.ci_high[n] for n in self.names]})

    def __repr__(self) -> str:
        rows = ", ".join(f"{n} [{_fmt(self.ci_low[n])}, {_fmt(self.ci_high[n])}]" for n in self.names)
        return (f"Bootstrap: {self.samples.shape[0]} of {self.n_requested} replicates converged; 95 % percentile "
                f"CIs: {rows}")


def _simulate_observations(ctx: _Context, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """New observed values on the fit's design: predictions at the estimate plus error-model noise, censored
    where they fall below the LLOQ of their record."""
    problem, x = ctx.problem, ctx.x
    d = problem.data
    F, _ = problem.predictions(x[None, :problem.layout.n_struct])
    F = F[0]
    y = np.full_like(F, np.nan)
    for g in problem.lik.groups:
        y[g.idx] = g.slot.model_at(x).sample(F[g.idx], rng)
    with np.errstate(invalid="ignore"):
        censored = np.isfinite(d.limit) & (y < d.limit)
    y = np.where(censored, d.limit, y)
    rec = d.endpoint_records
    if rec is None:
        return y, censored, None
    return y, censored, _draw_records(rec, F, rng)


def _draw_records(rec, F, rng) -> np.ndarray:
    """New DVs of endpoint records on the same design (binary, ordinal, count; time-to-event records have none:
    a new event time changes the design)."""
    from .. import endpoints as ep

    P = rec._gather(F)
    dv = np.empty(rec.size)
    for k, s in enumerate(rec.specs):
        sel = rec.output == k
        p = P[sel]
        if s.kind == "time-to-event":
            raise FitError(f"bootstrap: output {s.name!r} is a time-to-event endpoint; a parametric bootstrap keeps "
                           "the design, but new event times change it. Simulate new studies with pkpd.simulate "
                           "(seed=...) and refit them instead (simulation-estimation)")
        if s.kind == "binary":
            dv[sel] = ep.draw_binary(np.clip(p[:, 0], 0.0, 1.0), rng)
        elif s.kind == "ordinal":
            dv[sel] = ep.draw_ordinal(p[:, :len(s.categories) - 1], s.categories, rng)
        else:
            mu = p[:, 0] - p[:, 1] if s.rate else p[:, 0]
            dv[sel] = ep.draw_count(np.maximum(mu, 0.0), rng, p[:, 2] if s.dispersion else None)
    return dv


def _bootstrap_replicate(ctx: _Context, seed: np.random.SeedSequence) -> tuple[bool, object]:
    """One replicate (a pure task): (True, natural-scale estimates) or (False, the reason it failed)."""
    base = ctx.problem
    try:
        rng = np.random.default_rng(seed)
        y, censored, endpoint_dv = _simulate_observations(ctx, rng)
    except FitError as err:
        return False, str(err)
    problem = _replace_data(base, base.data.with_observations(y, censored, endpoint_dv))
    try:
        _check_start(problem, ctx.x)
        run, _ = _optimise(problem, ctx.x.copy(), ctx.method, ctx.max_evaluations, rng=rng)
    except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not math.isfinite(run.ofv):
        return False, "no finite objective"
    if not run.converged:
        return False, f"did not converge: {run.message}"
    return True, base.layout.natural(run.x)


def bootstrap(result: FitResult, n: int = 200, seed=None, *, client=None, workers: int | None = None,
              progress: bool | None = None) -> Bootstrap:
    """Parametric bootstrap: simulate ``n`` datasets from the fitted model (same design, error models and LLOQs),
    refit each (the fit's method and ``max_evaluations``, from its estimates), and summarise the estimates.

    Replicate ``i`` draws its data from ``numpy.random.SeedSequence(seed).spawn(n)[i]`` (and, for a fit by a method
    that draws random numbers, such as ``"differential_evolution"``, the optimiser's seed after its data), so the
    result is the same (bit for bit) serially, on local processes or on a Dask cluster, and the first ``m``
    replicates of a larger run are those of a run of ``m``.

    Parameters
    ----------
    result : FitResult
    n : int
        Number of replicates.
    seed : int or numpy Generator, optional

    Other arguments
    ---------------
    client : dask.distributed Client, Dask cluster or scheduler address (str), optional
        Run the replicates on this Dask cluster (the fit is sent to each worker once); see
        :mod:`pkpd._parallel`. Needs ``pkpd[distributed]``.
    workers : int, optional
        Local processes when no client is given: None (default) runs the first replicate here, and the rest on a
        process pool on all cores where that saves more than the pool costs to start (about 3 s), else here; 1
        runs serially in this process. From a script, keep the top-level code under ``if __name__ ==
        "__main__":`` (worker processes are started with 'spawn').
    progress : bool or None
        Progress bar over replicates: None (shown for runs over about 2 s in a terminal or notebook), True, False.

    Returns
    -------
    Bootstrap
        Replicates whose fit fails or does not converge are left out of ``samples`` and listed in ``failed``
        with the reason.

    Examples
    --------
    See :class:`Bootstrap`.
    """
    from .._parallel import check_client, check_workers, map_tasks, spawn_seeds

    if not isinstance(result, FitResult):
        raise FitError(f"expected a FitResult (from pkpd.fit); got {type(result).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise FitError(f"n: must be a positive integer; got {n!r}")
    check_client(client)
    check_workers(workers)
    ctx = result._data("bootstrap")
    seeds = spawn_seeds(seed, int(n))
    outcomes = map_tasks(_bootstrap_replicate, seeds, shared=ctx, client=client, workers=workers, progress=progress,
                         description=f"{result.model_name}: bootstrap", unit="replicate")
    return _bootstrap_summary(result.names, dict(result.estimates), outcomes, int(n), seed)


def _bootstrap_summary(names: tuple, estimate: dict, outcomes: list, n: int, seed) -> Bootstrap:
    """A Bootstrap from the replicates' outcomes ((True, estimates) or (False, reason)), in replicate order."""
    samples = [x for ok, x in outcomes if ok]
    replicates = np.array([i for i, (ok, _) in enumerate(outcomes) if ok], dtype=np.int64)
    failed = tuple((i, reason) for i, (ok, reason) in enumerate(outcomes) if not ok)
    arr = np.array(samples).reshape(len(samples), len(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.median(arr, axis=0) if len(samples) else np.full(len(names), np.nan)
        sd = np.std(arr, axis=0, ddof=1) if len(samples) > 1 else np.full(len(names), np.nan)
        lo, hi = (np.percentile(arr, [2.5, 97.5], axis=0) if len(samples)
                  else (np.full(len(names), np.nan), np.full(len(names), np.nan)))
    arr.setflags(write=False)
    replicates.setflags(write=False)
    return Bootstrap(names=names, estimate=estimate, samples=arr, n_requested=int(n),
                     n_failed=len(failed), median=dict(zip(names, med.tolist())), se=dict(zip(names, sd.tolist())),
                     ci_low=dict(zip(names, lo.tolist())), ci_high=dict(zip(names, hi.tolist())), failed=failed,
                     replicates=replicates, seed=seed if isinstance(seed, int | None) else None)


def _replace_data(problem: _Problem, data: _Data) -> _Problem:
    import copy

    new = copy.copy(problem)
    new.data = data
    new.lik = _Likelihood(data, problem.layout, problem.blq)
    if problem.layout.prior is not None:
        new.lik.set_prior(problem.layout.prior)
    new.n_failures = 0
    new.n_evaluations = 0
    return new


# ====================================================================================================== identifiability
@dataclass(frozen=True, eq=False)
class Identifiability:
    """Which parameters the data can inform (:func:`identifiability`).

    Attributes
    ----------
    table : list[dict]
        One row per estimated parameter: ``name``, ``status`` (``"identifiable"``, ``"poorly identified"`` or
        ``"not identifiable"``), ``rse_percent``, ``max_correlation`` (largest absolute correlation with another
        parameter), ``partner`` (that parameter) and ``reasons`` (why, in words).
    condition_number : float
        Ratio of the largest to the smallest eigenvalue of the information matrix in correlation form (inf when
        singular); above ~1e6 the information is near-singular.
    weakest_direction : dict[str, float]
        The eigenvector of the smallest eigenvalue: which combination of (log-)parameters the data inform least.
    not_identifiable, poorly_identified : tuple[str, ...]

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> pkpd.identifiability(res).not_identifiable
    ()
    """

    table: list
    condition_number: float
    weakest_direction: dict
    not_identifiable: tuple
    poorly_identified: tuple

    def to_dataframe(self):
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.table)

    def __repr__(self) -> str:
        lines = [f"Identifiability: condition number {_fmt(self.condition_number, 3)}; "
                 f"{len(self.not_identifiable)} not identifiable, {len(self.poorly_identified)} poorly identified"]
        for row in self.table:
            lines.append(f"  {row['name']}: {row['status']}" + (f" ({row['reasons']})" if row["reasons"] else ""))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        colours = {"identifiable": "#070", "poorly identified": "#a60", "not identifiable": "#b00"}
        rows = "".join(
            f"<tr><td><b>{esc(r['name'])}</b></td><td style='color:{colours[r['status']]}'>{esc(r['status'])}</td>"
            f"<td>{_fmt(r['rse_percent'], 3)}</td><td>{_fmt(r['max_correlation'], 3)}</td>"
            f"<td>{esc(str(r['partner'] or ''))}</td><td>{esc(r['reasons'])}</td></tr>" for r in self.table)
        return (f"<div><b>Identifiability</b> (condition number {_fmt(self.condition_number, 3)})<table><tr>"
                "<th>parameter</th><th>status</th><th>RSE %</th><th>max |corr|</th><th>with</th><th>why</th></tr>"
                f"{rows}</table></div>")


def identifiability(result: FitResult, *, profiles: Sequence[ProfileLikelihood] = (),
                    rse_limit: float = 50.0, correlation_limit: float = 0.95) -> Identifiability:
    """Report which estimated parameters the data can inform, and which they cannot.

    A parameter is **not identifiable** when the information matrix is singular in its direction (no standard
    error), when its relative standard error exceeds 4 x ``rse_limit``, when it is correlated with another
    parameter beyond 0.99 (the data fix only a combination of the two), or when its profile likelihood (if given)
    stays below the 95 % threshold on both sides. It is **poorly identified** when its RSE exceeds ``rse_limit``,
    its correlation with another parameter exceeds ``correlation_limit``, or its profile is open on one side.
    When the information matrix is singular the fit has no standard errors at all; the parameters outside its null
    space are then judged on their RSE with the null-space parameters held fixed (said in their ``reasons``).

    Parameters
    ----------
    result : FitResult
    profiles : sequence of ProfileLikelihood, optional
        Profiles already computed (:func:`profile_likelihood`); flat profiles are reported.
    rse_limit : float [%]
    correlation_limit : float

    Returns
    -------
    Identifiability

    Examples
    --------
    See :class:`Identifiability`.
    """
    if not isinstance(result, FitResult):
        raise FitError(f"expected a FitResult (from pkpd.fit); got {type(result).__name__}")
    ctx = result._data("identifiability")
    names = result.names
    k = len(names)
    info = ctx.information
    cond = math.inf
    direction = {}
    null = set()
    if info is not None and np.all(np.isfinite(info)):
        d = np.sqrt(np.abs(np.diag(info)))
        d = np.where(d > 0, d, 1.0)
        w, v = np.linalg.eigh(info / np.outer(d, d))
        cond = float(w[-1] / w[0]) if w[0] > 0 else math.inf
        direction = {n: float(c) for n, c in zip(names, v[:, 0] / np.max(np.abs(v[:, 0])))}
        if not w[0] > 1e-8 * max(w[-1], 1.0):
            null = set(_null_space_names(info, names))
    # With a singular information matrix the fit has no covariance at all, but only the parameters in the null
    # space lack a standard error: the others get theirs from the information with the null-space ones fixed.
    conditional_rse = _conditional_rse(ctx, names, null) if null else {}
    corr = result.correlation
    by_name = {p.name: p for p in profiles}
    table = []
    for i, n in enumerate(names):
        reasons, status = [], "identifiable"

        def worse(new):
            nonlocal status
            order = ("identifiable", "poorly identified", "not identifiable")
            if order.index(new) > order.index(status):
                status = new

        rse = result.rse_percent[n]
        if n in conditional_rse and not np.isfinite(result.se[n]):
            rse = conditional_rse[n]
            reasons.append(f"RSE with {', '.join(sorted(null))} fixed (not identifiable)")
        if n in null or not np.isfinite(rse):
            worse("not identifiable")
            reasons.append("the information matrix is singular in its direction (no standard error)")
        elif rse > 4 * rse_limit:
            worse("not identifiable")
            reasons.append(f"RSE {rse:.3g} % > {4 * rse_limit:g} %")
        elif rse > rse_limit:
            worse("poorly identified")
            reasons.append(f"RSE {rse:.3g} % > {rse_limit:g} %")
        partner, rmax = None, math.nan
        if k > 1 and np.all(np.isfinite(corr[i])):
            others = [j for j in range(k) if j != i]
            j = others[int(np.argmax(np.abs(corr[i, others])))]
            partner, rmax = names[j], float(abs(corr[i, j]))
            if rmax > 0.99:
                worse("not identifiable")
                reasons.append(f"correlation {corr[i, j]:+.3f} with {partner}: the data fix only a combination")
            elif rmax > correlation_limit:
                worse("poorly identified")
                reasons.append(f"correlation {corr[i, j]:+.3f} with {partner}")
        prof = by_name.get(n)
        if prof is not None:
            open_sides = [s for s, v in (("lower", prof.ci_low), ("upper", prof.ci_high)) if math.isnan(v)]
            if len(open_sides) == 2:
                worse("not identifiable")
                reasons.append("flat profile likelihood (below the 95 % threshold on both sides)")
            elif open_sides:
                worse("poorly identified")
                reasons.append(f"profile likelihood open on the {open_sides[0]} side")
        table.append({"name": n, "status": status, "rse_percent": rse, "max_correlation": rmax, "partner": partner,
                      "reasons": "; ".join(reasons)})
    return Identifiability(
        table=table, condition_number=cond, weakest_direction=direction,
        not_identifiable=tuple(r["name"] for r in table if r["status"] == "not identifiable"),
        poorly_identified=tuple(r["name"] for r in table if r["status"] == "poorly identified"))


def _conditional_rse(ctx, names, null) -> dict[str, float]:
    """RSE [%] of each parameter outside ``null`` from the information matrix with the ``null`` ones held fixed."""
    keep = [i for i, n in enumerate(names) if n not in null]
    info = ctx.information
    if not keep or info is None:
        return {}
    try:
        cov = np.linalg.inv(np.linalg.cholesky(info[np.ix_(keep, keep)]))
    except np.linalg.LinAlgError:
        return {}
    # the matrix is the curvature of -2 log L (as the fit's): covariance 2 inv(M); diag inv(L L^T) = column sums
    # of inv(L)^2
    se_x = np.sqrt(2.0 * np.sum(cov**2, axis=0))
    layout = ctx.problem.layout
    values = np.asarray(layout.natural(ctx.x), dtype=float)[keep]
    _, rse = _natural_se(se_x, values, np.asarray(layout.log)[keep])
    return {names[i]: float(r) for i, r in zip(keep, rse)}


# ============================================================================================= model comparison
@dataclass(frozen=True)
class LikelihoodRatioTest:
    """A likelihood-ratio test of two nested fits (:func:`likelihood_ratio_test`).

    Attributes
    ----------
    statistic : float
        Objective of the reduced fit minus that of the full fit (-2 log of the likelihood ratio).
    df : int
        Difference in the number of estimated parameters.
    p_value : float
        Upper tail of the chi-square(df) distribution at ``statistic``.
    reduced_objective, full_objective : float
    message : str

    Examples
    --------
    >>> LikelihoodRatioTest(statistic=3.84, df=1, p_value=0.05, reduced_objective=10.0, full_objective=6.16)
    LikelihoodRatioTest(statistic=3.84, df=1, p_value=0.05, reduced_objective=10.0, full_objective=6.16, message='')
    """

    statistic: float
    df: int
    p_value: float
    reduced_objective: float
    full_objective: float
    message: str = ""


def likelihood_ratio_test(reduced: FitResult, full: FitResult) -> LikelihoodRatioTest:
    """Compare two nested fits of the same data: does the full model fit significantly better?

    The reduced fit must be a special case of the full one (e.g. a parameter fixed, or an error model part
    fixed at 0) and both must use the same observations; under the reduced model the statistic follows a
    chi-square distribution with as many degrees of freedom as extra parameters (a parameter fixed at a bound,
    such as a variance at 0, makes the test conservative).

    Parameters
    ----------
    reduced, full : FitResult, or PopulationFit
        Two fits of the same kind. For population fits the statistic is the difference of NONMEM objective values
        and ``df`` the difference in the number of estimated parameters (typical values, variances, error
        parameters, covariate coefficients).

    Returns
    -------
    LikelihoodRatioTest

    Raises
    ------
    FitError
        Not fits of the same observations, or the full fit does not have more parameters.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
    ...                      "DV": np.r_[np.nan, conc]})
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> full = pkpd.fit(m, data, estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.1)})
    >>> reduced = pkpd.fit(m, data, estimate=["CL"], error={"conc": pkpd.Proportional(cv=0.1)})
    >>> lrt = pkpd.likelihood_ratio_test(reduced, full)
    >>> lrt.df, lrt.p_value < 0.05
    (1, False)
    """
    if isinstance(reduced, PopulationFit) and isinstance(full, PopulationFit):
        return _population_lrt(reduced, full)
    for which, r in (("reduced", reduced), ("full", full)):
        if not isinstance(r, FitResult):
            raise FitError(f"{which}: expected two FitResults (pkpd.fit) or two PopulationFits (pkpd.fit_population);"
                           f" got {type(r).__name__}")
    a, b = reduced._data("likelihood_ratio_test").problem.data, full._data("likelihood_ratio_test").problem.data
    same = (a.dv.shape == b.dv.shape and np.array_equal(a.dv, b.dv, equal_nan=True)
            and np.array_equal(a.censored, b.censored) and np.array_equal(a.time, b.time)
            and (a.endpoint_records is None) == (b.endpoint_records is None)
            and (a.endpoint_records is None or np.array_equal(a.endpoint_records.dv, b.endpoint_records.dv)))
    if not same:
        raise FitError("likelihood_ratio_test: the two fits do not use the same observations (same data, outputs "
                       "and BLQ handling are needed)")
    return _lrt(reduced.objective, full.objective, reduced.n_parameters, full.n_parameters, " (n_starts)")


# ====================================================================================================== bootstrap
def bootstrap_population(fit: PopulationFit, model, data, *, n: int = 200, seed=None, blq=None,
                         settings: SolverSettings | None = None, client=None, workers: int | None = None,
                         progress: bool | None = None):
    """Nonparametric (case-resampling) bootstrap of a population fit, as PsN's ``bootstrap``.

    Replicate ``i`` draws as many subjects as the data have, with replacement, from
    ``numpy.random.SeedSequence(seed).spawn(n)[i]`` (a subject drawn twice enters twice, as two subjects), and
    re-estimates the model with :func:`fit_population`, the same method, random effects, error models, covariate
    effects and IOV, starting from the original estimates (no covariance step). Replicates run on all local cores
    or on a Dask cluster (``client=``) with an identical result.

    Main arguments
    --------------
    fit : PopulationFit
        From :func:`fit_population`.
    model, data
        The model and the data the fit used (NONMEM layout: DataFrame, CSV path or NonmemDataset).
    n : int
        Replicates (PsN's default is 200; 1000+ for 95 % CIs of variances).
    seed : int, optional

    Other arguments
    ---------------
    blq : M3, optional
        As in the fit.
    settings : SolverSettings, optional
        As in the fit.
    client, workers, progress
        Where the replicates run, as :func:`pkpd.bootstrap`.

    Returns
    -------
    pkpd.fitting.Bootstrap
        ``names`` are the rows of ``fit.parameters`` (typical values, variances, residual error, IOV, covariate
        effects); replicates that fail or do not converge are listed in ``failed`` with the reason, not dropped
        silently.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import bootstrap_population
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), covariance=None)
    >>> b = bootstrap_population(f, "wang2007", "tests/data/wang2007/wang2007.csv", n=5, seed=1, workers=1,
    ...                          progress=False)
    >>> b.names, b.n_requested
    (('ke', 'omega2_ke', 'sd'), 5)
    """
    import pandas as pd

    from .._parallel import check_client, check_workers, map_tasks, spawn_seeds
    from ..load import load_model
    from ..nonmem import NonmemDataset

    if not isinstance(fit, PopulationFit):
        raise FitError(f"bootstrap_population: expected a PopulationFit (from fit_population); got "
                       f"{type(fit).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise FitError(f"n: must be a positive integer; got {n!r}")
    check_client(client)
    check_workers(workers)
    model = load_model(model) if isinstance(model, str) else model
    units = {}
    if isinstance(data, NonmemDataset):
        units = {"time_unit": data.time_unit, "dose_unit": data.dose_unit}
        table = data.data.drop(columns=["ROW"], errors="ignore")
    elif isinstance(data, pd.DataFrame):
        table = data.copy()
    else:
        table = pd.read_csv(data)
    if "ID" not in table:
        raise FitError("bootstrap_population: the data have no ID column")
    subjects = dict(tuple(table.groupby("ID", sort=False)))
    names = list(fit.parameters["name"])
    estimate = [x for x in names if x in model.parameter_names]
    kwargs = dict(iiv=fit.iiv, error=fit.error, method=fit.method, estimate=estimate, init=dict(fit.theta),
                  blq=blq, settings=settings, covariance=None, covariates=fit.covariate_effects, iov=fit.iov)
    job = (model, tuple(subjects.values()), units, kwargs)
    outcomes = map_tasks(_population_bootstrap_replicate, spawn_seeds(seed, int(n)), shared=job, client=client,
                         workers=workers, progress=progress, description=f"{model.name}: population bootstrap",
                         unit="replicate")
    est = dict(zip(names, fit.parameters["estimate"].astype(float).tolist()))
    return _bootstrap_summary(tuple(names), est, outcomes, int(n), seed)


def _population_bootstrap_replicate(job, seed) -> tuple[bool, object]:
    """One replicate (a pure task): (True, estimates in fit.parameters order) or (False, the reason)."""
    import pandas as pd

    from ..errors import PkpdError
    from ..nonmem import read_nonmem

    model, subjects, units, kwargs = job
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(subjects), size=len(subjects))
    table = pd.concat([subjects[k].assign(ID=j + 1) for j, k in enumerate(pick)], ignore_index=True)
    try:
        fit = fit_population(model, read_nonmem(table, model, **units), **kwargs)
    except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not fit.converged:
        return False, f"did not converge: {fit.message}"
    return True, fit.parameters["estimate"].to_numpy(dtype=float)


# the public functions report their documented home (pkpd.fitting.bootstrap, pkpd.nlme.bootstrap_population); code
# and doctests stay here
bootstrap.__module__ = identifiability.__module__ = likelihood_ratio_test.__module__ = "pkpd.fitting"
profile_likelihood.__module__ = "pkpd.fitting"
bootstrap_population.__module__ = "pkpd.nlme"


def _population_lrt(reduced, full) -> LikelihoodRatioTest:
    """LRT of two population fits: the difference of NONMEM objective values, df = extra estimated parameters."""

    ta, tb = reduced.table, full.table
    same = (reduced.n_obs == full.n_obs and len(ta) == len(tb)
            and all(np.array_equal(ta[c].to_numpy(), tb[c].to_numpy()) for c in ("ID", "TIME", "DV", "CENS")))
    if not same:
        raise FitError("likelihood_ratio_test: the two population fits do not use the same observations (same data "
                       "and BLQ handling are needed)")
    return _lrt(reduced.objective, full.objective, len(reduced.parameters), len(full.parameters), "")


def _lrt(reduced_objective: float, full_objective: float, n_reduced: int, n_full: int,
         convergence_hint: str) -> LikelihoodRatioTest:
    """The likelihood-ratio test of two nested fits of the same observations, from their objectives (-2 log L)."""
    from scipy.stats import chi2

    df = n_full - n_reduced
    if df <= 0:
        raise FitError(f"likelihood_ratio_test: the full fit must estimate more parameters than the reduced one; got "
                       f"{n_full} and {n_reduced}. Pass (reduced, full) in that order")
    stat = reduced_objective - full_objective
    message = ""
    if stat < -1e-6:
        message = ("the full fit has a higher objective than the reduced one, which cannot be at its optimum: check "
                   f"its convergence{convergence_hint} before comparing")
    stat = max(stat, 0.0)
    return LikelihoodRatioTest(statistic=float(stat), df=int(df), p_value=float(chi2.sf(stat, df)),
                               reduced_objective=reduced_objective, full_objective=full_objective, message=message)
