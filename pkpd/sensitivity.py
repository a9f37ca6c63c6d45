r"""Sensitivity analysis: which parameters an endpoint hinges on.

* **Local**: :func:`local_sensitivity` gives normalised sensitivity coefficients
  :math:`S = \partial \ln Y / \partial \ln \theta` (the % change of an endpoint, or of an output at each time, per
  % change of a parameter) at the typical values, by central differences.
* **Global**: :func:`sobol_indices` (first-order and total Sobol indices, Saltelli/Jansen estimators on a scrambled
  Sobol sequence, bootstrap confidence intervals) and :func:`morris_screening` (elementary effects, μ* and σ) over
  parameter ranges -- the model file's bounds (:func:`parameter_ranges`) or ranges you give.

The global methods work on any function of named inputs, ``func(values) -> outputs``, where ``values`` maps each
input name to an array (n,) and ``outputs`` is an array (n,) or a dict of them (one per endpoint). For a model,
:func:`endpoint_function` builds that function: each call is **one** batched :func:`~pkpd.simulate` of all n
parameter sets. No SALib is needed; the estimators are a few lines each and are tested against the Ishigami
function's analytic indices.

Estimators (A, B: two independent N x k sample matrices; :math:`A_B^{(i)}`: A with column i from B;
V: the variance of f over A and B together):

.. math::

    S_i = \frac{\mathrm{mean}\left[f(B)\,\left(f(A_B^{(i)}) - f(A)\right)\right]}{V}
    \quad\text{(Saltelli et al. 2010)}, \qquad
    S_{T,i} = \frac{\mathrm{mean}\left[\left(f(A) - f(A_B^{(i)})\right)^2\right]}{2V}
    \quad\text{(Jansen 1999)}.

They cost N (k + 2) evaluations. An input a function does not depend on has :math:`S_{T,i} = 0` exactly
(:math:`f(A_B^{(i)}) = f(A)` row by row).

References
----------
Saltelli A, Annoni P, Azzini I, Campolongo F, Ratto M, Tarantola S 2010, Comput Phys Commun 181:259 (variance-based
sensitivity: design and estimators). Jansen MJW 1999, Comput Phys Commun 117:35 (total-effect estimator).
Morris MD 1991, Technometrics 33:161; Campolongo F, Cariboni J, Saltelli A 2007, Environ Model Softw 22:1509 (μ*).
Ishigami T, Homma T 1990, Proc ISUMA '90, 398 (test function).

Examples
--------
>>> import numpy as np
>>> res = sobol_indices(lambda v: v["x"] + 0.0 * v["y"], {"x": (0, 1), "y": (0, 1)}, n=256, seed=1)
>>> res.table[["parameter", "S1", "ST"]].round(3).to_numpy().tolist()
[['x', 1.0, 1.0], ['y', 0.0, 0.0]]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._arguments import check_level
from .errors import PkpdError, did_you_mean
from .metrics import Endpoint

__all__ = ["LocalSensitivity", "MorrisResult", "SobolResult", "endpoint_function", "local_sensitivity",
           "morris_screening", "parameter_ranges", "sobol_indices"]


# ------------------------------------------------------------------------------------------------ model function
def _endpoint_list(endpoints) -> list[Endpoint]:
    items = [endpoints] if isinstance(endpoints, Endpoint) else list(endpoints)
    if not items:
        raise PkpdError("endpoints: give at least one Endpoint, e.g. Endpoint('IL10', 'auc', start=0, end=168)")
    for i, ep in enumerate(items):
        if not isinstance(ep, Endpoint):
            raise PkpdError(f"endpoints[{i}]: expected a pkpd.metrics.Endpoint; got {type(ep).__name__}")
    names = [ep.name for ep in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise PkpdError(f"endpoints: names must be unique; {', '.join(map(repr, dup))} repeated. Give name=...")
    return items


def endpoint_times(endpoints: Sequence[Endpoint], times=None) -> np.ndarray:
    """The simulation grid for endpoints: ``times`` (or a default grid) plus every time the endpoints name.

    The default grid runs from 0 to the latest time an endpoint names, in max(200, that time) equal steps (one per
    model time unit for windows longer than 200 time units). Window ends, ``time`` and ``baseline_time`` of each
    endpoint are added, so no endpoint needs interpolation at its own times.

    Examples
    --------
    >>> endpoint_times([Endpoint("IL10", "value_at", time=2.5)], [0, 1, 2, 3]).tolist()
    [0.0, 1.0, 2.0, 2.5, 3.0]
    """
    named = [v for ep in endpoints for v in (ep.start, ep.end, ep.time, ep.baseline_time) if v is not None]
    if times is None:
        if not named or max(named) <= 0:
            raise PkpdError("times: give the output times [model time unit]; the endpoints name no end time to "
                            "build a grid from")
        end = max(named)
        grid = np.linspace(0.0, end, max(200, math.ceil(end)) + 1)
    else:
        grid = np.asarray(times, dtype=float).reshape(-1)
    return np.unique(np.concatenate([grid, np.asarray(named, dtype=float)]))


def endpoint_function(model, regimen, endpoints, *, times=None, params: Mapping[str, object] | None = None,
                      covariates: Mapping[str, object] | None = None, settings=None) -> Callable:
    """A function of parameter values that simulates ``model`` and returns the endpoints (for sensitivity).

    Parameters
    ----------
    model : Model or CompiledModel
    regimen : Regimen or None
    endpoints : Endpoint or sequence of Endpoint
    times : array_like, optional
        Output grid [model time unit]; default from the endpoints (:func:`endpoint_times`).
    params : dict, optional
        Fixed parameter values other than the model's (the varied ones override them).
    covariates : dict, optional
        E.g. ``{"WT": 70}`` [kg] for per-kg doses.
    settings : SolverSettings, optional

    Returns
    -------
    callable
        ``f(values: dict[str, ndarray (n,)]) -> dict[endpoint name, ndarray (n,)]``: one batched simulation of
        the n parameter sets (plus n untreated ones when an endpoint compares with untreated).

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> auc = Endpoint("conc", "auc", end=240, method="log-down")
    >>> f = endpoint_function(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), auc)
    >>> np.round(f({"CL": np.array([2.0, 4.0])})["conc_AUC_to_240"], 2)
    array([50., 25.])
    """
    from .compile import CompiledModel, compile_model
    from .dosing import Regimen
    from .simulation import simulate

    cm = model if isinstance(model, CompiledModel) else compile_model(model)
    m = cm.model
    eps = [ep.for_model(m) for ep in _endpoint_list(endpoints)]
    grid = endpoint_times(eps, times)
    fixed = dict(params or {})
    covs = dict(covariates or {})
    untreated = any(ep.needs_untreated for ep in eps)

    def f(values: Mapping[str, object]) -> dict[str, np.ndarray]:
        arrays = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in values.items()}
        n = max((a.size for a in arrays.values()), default=1)
        p = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in fixed.items()} | arrays
        c = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in covs.items()}
        regs = [regimen] * n
        if untreated:
            p = {k: np.concatenate([v, v]) for k, v in p.items()}
            c = {k: np.concatenate([v, v]) for k, v in c.items()}
            regs = regs + [Regimen.none()] * n
        sim = simulate(cm, regs, grid, params=p or None, covariates=c or None, settings=settings, states=False,
                       outcomes=False)
        out = {}
        for ep in eps:
            y = sim[ep.series]
            out[ep.name] = ep.compute(grid, y[:n], y[n:] if untreated else None)
        return out

    return f


def parameter_ranges(model, names: Iterable[str] | None = None) -> dict[str, tuple[float, float]]:
    """The plausible ranges (``bounds``) of model parameters, as given in the model file.

    Parameters
    ----------
    model : Model
    names : iterable of str, optional
        Default: every parameter with finite bounds.

    Raises
    ------
    PkpdError
        An unknown parameter (close matches suggested), or one without finite bounds.

    Examples
    --------
    >>> import pkpd
    >>> parameter_ranges(pkpd.load_model("msc_salvadori"), ["k_i"])
    {'k_i': (0.154, 0.365)}
    """
    known = {p.name: p for p in model.parameters}
    if names is None:
        return {p.name: (float(p.bounds[0]), float(p.bounds[1])) for p in model.parameters
                if all(math.isfinite(b) for b in p.bounds)}
    out = {}
    for name in names:
        if name not in known:
            raise PkpdError(f"parameter_ranges: model {model.name!r} has no parameter {name!r}."
                            + did_you_mean(str(name), known))
        lo, hi = known[name].bounds
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise PkpdError(f"parameter_ranges: parameter {name!r} of model {model.name!r} has no finite bounds; "
                            "give its range explicitly, e.g. {'" + name + "': (low, high)}")
        out[name] = (float(lo), float(hi))
    return out


# ------------------------------------------------------------------------------------------------ local
@dataclass(frozen=True, eq=False)
class LocalSensitivity:
    """Normalised local sensitivities :math:`\\partial \\ln Y / \\partial \\ln \\theta` at the typical values.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per endpoint and parameter: ``endpoint, parameter, value`` (the parameter's value),
        ``unit``, ``endpoint_value``, ``sensitivity`` [1] (0.5 means +1 % parameter -> +0.5 % endpoint).
    times : ndarray (n_times,)
        [model time unit].
    over_time : dict[str, ndarray (n_parameters, n_times)]
        Per output: the sensitivity of the output at each time (NaN where the output is 0).
    parameters : tuple[str, ...]
    step : float
        Relative step of the central differences.
    time_unit : str

    Examples
    --------
    See :func:`local_sensitivity`.
    """

    table: object = field(repr=False)
    times: np.ndarray = field(repr=False)
    over_time: dict = field(repr=False)
    parameters: tuple
    step: float
    time_unit: str = "h"

    def __repr__(self) -> str:
        return (f"LocalSensitivity({len(self.parameters)} parameters x {self.table['endpoint'].nunique()} "
                "endpoints; see .table, .over_time)")


def local_sensitivity(model, regimen, endpoints, *, parameters: Iterable[str] | None = None, times=None,
                      params: Mapping[str, float] | None = None, covariates: Mapping[str, float] | None = None,
                      outputs: Iterable[str] | None = None, step: float = 1e-3, settings=None) -> LocalSensitivity:
    r"""Normalised local sensitivity of endpoints (and of outputs over time) to each parameter.

    :math:`S = \frac{\theta}{Y}\frac{\partial Y}{\partial \theta} \approx \frac{Y(\theta(1+h)) - Y(\theta(1-h))}
    {2 h\, Y(\theta)}`, every parameter perturbed in turn by central differences; all 2k + 1 simulations run as one
    batch.

    Main arguments
    --------------
    model : Model
    regimen : Regimen or None
    endpoints : Endpoint or sequence of Endpoint
    parameters : iterable of str, optional
        Default: every model parameter.

    Other arguments
    ---------------
    times : array_like, optional
        Output grid [model time unit]; default from the endpoints.
    params, covariates : dict, optional
        The typical subject (parameter overrides; e.g. ``{"WT": 70}``).
    outputs : iterable of str, optional
        Outputs whose sensitivity over time is kept; default the endpoints' outputs.
    step : float
        Relative perturbation h (default 1e-3: truncation error ~h², solver noise ~rtol/h).
    settings : SolverSettings, optional

    Returns
    -------
    LocalSensitivity

    Examples
    --------
    The AUC of a one-compartment IV bolus is Dose/CL: its sensitivity to CL is -1 and to V is 0.

    >>> import pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> auc = Endpoint("conc", "auc", end=2000, method="log-down")
    >>> res = local_sensitivity(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), auc)
    >>> [(p, round(s, 3) + 0.0) for p, s in zip(res.table["parameter"], res.table["sensitivity"])]
    [('CL', -1.0), ('V', 0.0)]
    """
    import pandas as pd

    from .compile import CompiledModel, compile_model
    from .dosing import Regimen
    from .simulation import simulate

    if not (isinstance(step, numbers.Real) and 0 < step < 0.5):
        raise PkpdError(f"local_sensitivity: step must be a number in (0, 0.5); got {step!r}")
    cm = model if isinstance(model, CompiledModel) else compile_model(model)
    m = cm.model
    eps = [ep.for_model(m) for ep in _endpoint_list(endpoints)]
    names = list(m.parameter_names if parameters is None else parameters)
    for name in names:
        if name not in m.parameter_names:
            raise PkpdError(f"local_sensitivity: model {m.name!r} has no parameter {name!r}."
                            + did_you_mean(str(name), m.parameter_names))
    outs = list(outputs) if outputs is not None else list(dict.fromkeys(ep.output for ep in eps))
    for o in outs:
        if o not in m.output_names:
            raise PkpdError(f"local_sensitivity: model {m.name!r} has no output {o!r}."
                            + did_you_mean(o, m.output_names))
    grid = endpoint_times(eps, times)
    base = {p.name: p.value for p in m.parameters} | {k: float(v) for k, v in (params or {}).items()}
    k = len(names)
    n = 2 * k + 1
    values = {name: np.full(n, base[name]) for name in base}
    for i, name in enumerate(names):
        values[name][1 + 2 * i] = base[name] * (1 + step)
        values[name][2 + 2 * i] = base[name] * (1 - step)
    covs = {c: np.full(n, float(v)) for c, v in (covariates or {}).items()}
    untreated = any(ep.needs_untreated for ep in eps)
    regs = [regimen] * n
    if untreated:
        values = {kk: np.concatenate([v, v]) for kk, v in values.items()}
        covs = {kk: np.concatenate([v, v]) for kk, v in covs.items()}
        regs = regs + [Regimen.none()] * n
    sim = simulate(cm, regs, grid, params=values, covariates=covs or None, settings=settings, states=False,
                   outcomes=False)
    rows = []
    for ep in eps:
        y = sim[ep.series]
        vals = ep.compute(grid, y[:n], y[n:] if untreated else None)
        for i, name in enumerate(names):
            rows.append({"endpoint": ep.name, "parameter": name, "value": base[name],
                         "unit": m.parameter(name).unit, "endpoint_value": vals[0],
                         "sensitivity": _normalised(vals[1 + 2 * i], vals[2 + 2 * i], vals[0], step)})
    over = {}
    for o in outs:
        y = sim[o][:n]
        scale = np.nanmax(np.abs(y[0])) if np.any(np.isfinite(y[0])) else 0.0
        over[o] = np.stack([_normalised(y[1 + 2 * i], y[2 + 2 * i], y[0], step, floor=1e-12 * scale)
                            for i in range(k)]) if k else np.empty((0, grid.size))
    grid.setflags(write=False)
    return LocalSensitivity(table=pd.DataFrame(rows), times=grid, over_time=over, parameters=tuple(names),
                            step=float(step), time_unit=m.time_unit)


def _normalised(up, down, mid, h, floor=0.0):
    up, down, mid = np.asarray(up, float), np.asarray(down, float), np.asarray(mid, float)
    ok = np.abs(mid) > floor
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(ok, (up - down) / (2 * h * np.where(ok, mid, 1.0)), np.nan)
    return float(s) if s.ndim == 0 else s


# ------------------------------------------------------------------------------------------------ global
def _ranges(ranges: Mapping[str, Sequence[float]], log) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(ranges, Mapping) or not ranges:
        raise PkpdError("ranges: give a mapping of input name -> (low, high), e.g. {'k_c': (0.014, 0.058)}; "
                        "parameter_ranges(model, names) reads them from a model file")
    names = list(ranges)
    lo, hi = np.empty(len(names)), np.empty(len(names))
    for i, name in enumerate(names):
        try:
            a, b = (float(x) for x in ranges[name])
        except (TypeError, ValueError):
            raise PkpdError(f"ranges[{name!r}]: give (low, high); got {ranges[name]!r}") from None
        if not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise PkpdError(f"ranges[{name!r}]: need finite low < high; got ({a:g}, {b:g})")
        lo[i], hi[i] = a, b
    if log is True:
        logs = np.ones(len(names), bool)
    else:
        wanted = set(log or ())
        unknown = wanted - set(names)
        if unknown:
            bad = sorted(unknown)[0]
            raise PkpdError(f"log: {bad!r} is not one of the ranges." + did_you_mean(bad, names))
        logs = np.array([n in wanted for n in names])
    if np.any(logs & (lo <= 0)):
        bad = names[int(np.flatnonzero(logs & (lo <= 0))[0])]
        raise PkpdError(f"log: {bad!r} has a range starting at {lo[names.index(bad)]:g}; a log-uniform range "
                        "must be positive. Drop it from log or give a positive range")
    return names, lo, hi, logs


def _scale(u: np.ndarray, lo, hi, logs) -> np.ndarray:
    lin = lo + u * (hi - lo)
    log_lo, log_hi = np.log(np.where(logs, lo, 1.0)), np.log(np.where(logs, hi, 1.0))
    return np.where(logs, np.exp(log_lo + u * (log_hi - log_lo)), lin)


def _evaluate(func, names, x: np.ndarray, client, chunk_size, progress, what: str) -> dict[str, np.ndarray]:
    """func over the rows of x: in one call here, or in chunks of rows on a Dask cluster (``client``)."""
    if client is None:
        return _call(func, names, x)
    from ._parallel import check_chunk_size, chunk_bounds, map_tasks

    size = max(1, -(-x.shape[0] // 32)) if chunk_size is None else check_chunk_size(chunk_size)
    bounds = chunk_bounds(x.shape[0], size)
    parts = map_tasks(_call_task, [x[a:b] for a, b in bounds], shared=(func, tuple(names)), client=client,
                      progress=progress, description=what, unit="run", weights=[b - a for a, b in bounds])
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _call_task(shared, rows: np.ndarray) -> dict[str, np.ndarray]:
    func, names = shared
    return _call(func, names, rows)


def _call(func, names, x: np.ndarray) -> dict[str, np.ndarray]:
    out = func({name: x[:, i] for i, name in enumerate(names)})
    if not isinstance(out, Mapping):
        out = {"f": out}
    res = {}
    for key, v in out.items():
        arr = np.asarray(v, dtype=float).reshape(-1)
        if arr.size != x.shape[0]:
            raise PkpdError(f"func returned {arr.size} values for {x.shape[0]} input rows (output {key!r}); it must "
                            "return one value per row")
        res[str(key)] = arr
    return res


@dataclass(frozen=True, eq=False)
class SobolResult:
    """First-order and total Sobol indices with bootstrap confidence intervals.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per output and input: ``output, parameter, S1, S1_low, S1_high, ST, ST_low, ST_high``.
    n : int
        Base sample size N (a power of 2); the function was evaluated N (k + 2) times.
    n_evaluations : int
    level : float
        Confidence level of the intervals.
    seed : int or None
    ranges : dict[str, tuple[float, float]]
    log : tuple[str, ...]
        Inputs sampled log-uniformly.
    variance : dict[str, float]
        Variance of each output over the sample (an output with zero variance gets NaN indices).
    """

    table: object = field(repr=False)
    n: int
    n_evaluations: int
    level: float
    seed: int | None
    ranges: dict
    log: tuple
    variance: dict = field(repr=False)

    def __repr__(self) -> str:
        return (f"SobolResult({len(self.ranges)} inputs x {self.table['output'].nunique()} outputs, N = {self.n}, "
                f"{self.n_evaluations} evaluations; see .table)")


def sobol_indices(func: Callable, ranges: Mapping[str, Sequence[float]], *, n: int = 1024, seed: int | None = None,
                  log: bool | Iterable[str] = (), n_bootstrap: int = 200, level: float = 0.95, client=None,
                  chunk_size: int | None = None, progress: bool | None = None) -> SobolResult:
    r"""First-order and total Sobol indices of ``func`` over independent uniform (or log-uniform) inputs.

    Main arguments
    --------------
    func : callable
        ``func(values: dict[str, ndarray (m,)]) -> ndarray (m,) or dict[str, ndarray (m,)]``; e.g.
        :func:`endpoint_function` of a model. Called once, with all m = N (k + 2) rows (in chunks of rows
        on the workers with ``client``).
    ranges : dict[str, (low, high)]
        The inputs and their ranges, e.g. ``parameter_ranges(model, ["k_c", "EC50"])``.
    n : int
        Base sample size N, rounded up to a power of 2 (the Sobol sequence's balance needs it).
    seed : int, optional
        Seed of the scrambling and of the bootstrap: the same seed gives the same indices.

    Other arguments
    ---------------
    log : bool or iterable of str
        Inputs sampled log-uniformly (True: all), e.g. rate constants spanning decades.
    n_bootstrap : int
        Bootstrap resamples for the intervals (0: none, NaN bounds).
    level : float
        Confidence level of the percentile intervals.
    client : dask.distributed Client, Dask cluster or scheduler address (str), optional
        Evaluate ``func`` on a Dask cluster (``pkpd[distributed]``) in chunks of ``chunk_size`` sample rows
        (default: 32 chunks), with a progress bar (``progress``). The sample is drawn here, so the indices are
        identical to a local run as long as ``func`` treats each row on its own (as :func:`endpoint_function`
        does). ``func`` must be picklable by cloudpickle (lambdas and closures are).

    Returns
    -------
    SobolResult

    Examples
    --------
    The Ishigami function, :math:`\sin x_1 + 7 \sin^2 x_2 + 0.1 x_3^4 \sin x_1` on :math:`[-\pi, \pi]^3`
    (analytic S1 = 0.314, 0.442, 0; ST = 0.558, 0.442, 0.244):

    >>> import numpy as np
    >>> def ishigami(v):
    ...     return np.sin(v["x1"]) + 7 * np.sin(v["x2"]) ** 2 + 0.1 * v["x3"] ** 4 * np.sin(v["x1"])
    >>> res = sobol_indices(ishigami, {k: (-np.pi, np.pi) for k in ("x1", "x2", "x3")}, n=4096, seed=2)
    >>> res.table[["S1", "ST"]].round(2).to_numpy().tolist()
    [[0.33, 0.56], [0.44, 0.44], [0.01, 0.24]]
    """
    import pandas as pd
    from scipy.stats import qmc

    names, lo, hi, logs = _ranges(ranges, log)
    if not (isinstance(n, numbers.Integral) and n >= 2):
        raise PkpdError(f"sobol_indices: n must be an integer >= 2; got {n!r}")
    level = check_level(level, "sobol_indices")
    k = len(names)
    power = math.ceil(math.log2(n))
    base = qmc.Sobol(d=2 * k, scramble=True, seed=np.random.default_rng(seed)).random_base2(power)
    N = base.shape[0]
    a, b = _scale(base[:, :k], lo, hi, logs), _scale(base[:, k:], lo, hi, logs)
    blocks = [a, b]
    for i in range(k):
        ab = a.copy()
        ab[:, i] = b[:, i]
        blocks.append(ab)
    values = _evaluate(func, names, np.concatenate(blocks), client, chunk_size, progress, "sobol_indices")
    rng = np.random.default_rng(None if seed is None else seed + 1)
    boot = rng.integers(0, N, size=(n_bootstrap, N)) if n_bootstrap else None
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    rows, variance = [], {}
    for out, y in values.items():
        fa, fb = y[:N], y[N:2 * N]
        fab = y[2 * N:].reshape(k, N)
        var = float(np.var(np.concatenate([fa, fb])))
        variance[out] = var
        for i, name in enumerate(names):
            s1, st = _indices(fa, fb, fab[i], var)
            if boot is not None and var > 0:
                bs = np.array([_indices(fa[j], fb[j], fab[i][j], float(np.var(np.concatenate([fa[j], fb[j]]))))
                               for j in boot])
                (s1_lo, st_lo), (s1_hi, st_hi) = np.nanpercentile(bs, q, axis=0)
            else:
                s1_lo = s1_hi = st_lo = st_hi = math.nan
            rows.append({"output": out, "parameter": name, "S1": s1, "S1_low": s1_lo, "S1_high": s1_hi,
                         "ST": st, "ST_low": st_lo, "ST_high": st_hi})
    return SobolResult(table=pd.DataFrame(rows), n=N, n_evaluations=N * (k + 2), level=float(level),
                       seed=seed, ranges={nm: (float(lo[i]), float(hi[i])) for i, nm in enumerate(names)},
                       log=tuple(nm for i, nm in enumerate(names) if logs[i]), variance=variance)


def _indices(fa, fb, fab, var) -> tuple[float, float]:
    if not var > 0:
        return math.nan, math.nan
    s1 = float(np.mean(fb * (fab - fa)) / var)
    st = float(0.5 * np.mean((fa - fab) ** 2) / var)
    return s1, st


@dataclass(frozen=True, eq=False)
class MorrisResult:
    """Morris elementary-effects screening.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per output and input: ``output, parameter, mu, mu_star, sigma``. Effects are per unit of the
        input's scaled range (0..1; in log space for log inputs), i.e. the change of the output when the input
        moves over its whole range. Large ``mu_star``: influential; large ``sigma``: non-linear or interacting.
    trajectories, levels : int
    n_evaluations : int
    seed : int or None
    """

    table: object = field(repr=False)
    trajectories: int
    levels: int
    n_evaluations: int
    seed: int | None

    def __repr__(self) -> str:
        return (f"MorrisResult({self.table['parameter'].nunique()} inputs, {self.trajectories} trajectories, "
                f"{self.n_evaluations} evaluations; see .table)")


def morris_screening(func: Callable, ranges: Mapping[str, Sequence[float]], *, trajectories: int = 20,
                     levels: int = 4, seed: int | None = None, log: bool | Iterable[str] = (), client=None,
                     chunk_size: int | None = None, progress: bool | None = None) -> MorrisResult:
    """Morris screening: mean (μ), mean absolute (μ*) and SD (σ) of elementary effects along random trajectories.

    Each trajectory starts at a random point of a ``levels``-level grid in the unit cube and moves every input
    once, in random order, by Δ = levels / (2 (levels - 1)) (up where it can, else down); all trajectories,
    ``trajectories * (k + 1)`` points, go to ``func`` in one call.

    Parameters
    ----------
    func, ranges, log, client, chunk_size, progress
        As in :func:`sobol_indices`.
    trajectories : int
        Number of trajectories r (10-50 is usual).
    levels : int
        Grid levels p (even, >= 2).
    seed : int, optional

    Returns
    -------
    MorrisResult

    Examples
    --------
    >>> res = morris_screening(lambda v: 3 * v["a"] + v["b"] ** 2 + 0 * v["c"],
    ...                        {"a": (0, 1), "b": (0, 1), "c": (0, 1)}, trajectories=10, seed=0)
    >>> res.table[["parameter", "mu_star"]].round(2).to_numpy().tolist()
    [['a', 3.0], ['b', 0.73], ['c', 0.0]]
    """
    import pandas as pd

    names, lo, hi, logs = _ranges(ranges, log)
    if not (isinstance(levels, numbers.Integral) and levels >= 2 and levels % 2 == 0):
        raise PkpdError(f"morris_screening: levels must be an even integer >= 2; got {levels!r}")
    if not (isinstance(trajectories, numbers.Integral) and trajectories >= 2):
        raise PkpdError(f"morris_screening: trajectories must be an integer >= 2; got {trajectories!r}")
    k = len(names)
    rng = np.random.default_rng(seed)
    delta = levels / (2 * (levels - 1))
    grid = np.arange(levels) / (levels - 1)
    points = np.empty((trajectories, k + 1, k))
    moved = np.empty((trajectories, k), dtype=int)
    signs = np.empty((trajectories, k))
    for r in range(trajectories):
        x = rng.choice(grid, size=k)
        order = rng.permutation(k)
        points[r, 0] = x
        for step, i in enumerate(order):
            d = delta if x[i] + delta <= 1 + 1e-12 else -delta
            x = x.copy()
            x[i] += d
            points[r, step + 1] = x
            moved[r, step], signs[r, step] = i, d
    flat = _scale(points.reshape(-1, k), lo, hi, logs)
    values = _evaluate(func, names, flat, client, chunk_size, progress, "morris_screening")
    rows = []
    for out, y in values.items():
        y = y.reshape(trajectories, k + 1)
        effects = np.empty((trajectories, k))
        for r in range(trajectories):
            for step in range(k):
                effects[r, moved[r, step]] = (y[r, step + 1] - y[r, step]) / signs[r, step]
        for i, name in enumerate(names):
            e = effects[:, i]
            rows.append({"output": out, "parameter": name, "mu": float(np.mean(e)),
                         "mu_star": float(np.mean(np.abs(e))), "sigma": float(np.std(e, ddof=1))})
    return MorrisResult(table=pd.DataFrame(rows), trajectories=int(trajectories), levels=int(levels),
                        n_evaluations=int(trajectories * (k + 1)), seed=seed)
