r"""Visual predictive checks of clinical endpoints: the Kaplan-Meier VPC and the categorical VPC.

* :func:`kaplan_meier`: the product-limit estimate of a survival function from event and censoring times.
* :func:`km_vpc`: the observed Kaplan-Meier curve of a time-to-event output against the pointwise prediction
  interval of the Kaplan-Meier curves of ``n_replicates`` studies simulated with the model on the data's design
  (same subjects, doses and covariates; each subject followed up to its observed censoring time, or to the end of
  the study when it had the event). For repeated events, the time to the first event.
* :func:`categorical_vpc`: the observed proportion of each category (of a binary or ordinal output) per time bin
  or per bin of an exposure, against the prediction interval of the proportions of simulated studies, with the
  subjects' records at their own times.

Each replicate simulates every subject with its own random effects (a population fit's :math:`\Omega`, or an
:class:`~pkpd.IIV` given with a model), drawn from ``numpy.random.SeedSequence(seed)``, in one batched
:func:`pkpd.simulate` call. ``coverage`` reports the share of the checked points where the observation lies inside
the interval: near ``level`` or above for a model that describes the data; a misspecified model leaves the interval.

References
----------
Kaplan EL, Meier P (1958) Nonparametric estimation from incomplete observations. J Am Stat Assoc 53:457-481.
Holford N (2013) A time to event tutorial for pharmacometricians. CPT Pharmacometrics Syst Pharmacol 2:e43.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._arguments import check_level
from .errors import FitError, PkpdError, did_you_mean

__all__ = ["CategoricalVPC", "KaplanMeierVPC", "categorical_vpc", "kaplan_meier", "km_vpc"]


def kaplan_meier(times, events, at=None):
    """Kaplan-Meier estimate of the survival function.

    Parameters
    ----------
    times : array_like, shape (n,)
        Event or censoring time of each subject [time unit].
    events : array_like of {0, 1}, shape (n,)
        1 for an event, 0 for censoring.
    at : array_like, optional
        Times at which to evaluate the (right-continuous) estimate.

    Returns
    -------
    (ndarray, ndarray)
        The distinct event times and the survival just after each; or, with ``at``, ``at`` and the survival there.

    Examples
    --------
    >>> kaplan_meier([1.0, 2.0, 2.0, 3.0], [1, 0, 1, 1])
    (array([1., 2., 3.]), array([0.75, 0.5 , 0.  ]))
    >>> kaplan_meier([1.0, 2.0, 2.0, 3.0], [1, 0, 1, 1], at=[0.5, 2.5])[1]
    array([1. , 0.5])
    """
    t = np.asarray(times, dtype=float).reshape(-1)
    e = np.asarray(events, dtype=float).reshape(-1) == 1
    if t.shape != e.shape:
        raise PkpdError(f"kaplan_meier: times and events differ in length ({t.size} vs {e.size})")
    event_times = np.unique(t[e])
    # at risk just before each event time: those whose time is >= it (a censoring at an event time is after it)
    at_risk = t.size - np.searchsorted(np.sort(t), event_times, side="left")
    deaths = np.array([np.count_nonzero(e & (t == u)) for u in event_times], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - deaths / at_risk)
    if at is None:
        return event_times, surv
    a = np.asarray(at, dtype=float)
    k = np.searchsorted(event_times, a, side="right")
    return a, np.where(k > 0, surv[np.maximum(k - 1, 0)], 1.0)


def _step(event_times, surv, grid):
    k = np.searchsorted(event_times, grid, side="right")
    return np.where(k > 0, surv[np.maximum(k - 1, 0)], 1.0)


@dataclass(frozen=True, eq=False)
class KaplanMeierVPC:
    """A Kaplan-Meier VPC (:func:`km_vpc`; drawn by :func:`pkpd.plots.plot_km_vpc`).

    Attributes
    ----------
    output : str
    times : ndarray (n_times,)
        Grid [model time unit].
    observed : ndarray (n_times,)
        Observed Kaplan-Meier estimate on the grid [1].
    simulated : ndarray (3, n_times)
        Lower, median and upper pointwise percentiles of the simulated Kaplan-Meier curves (``level``) [1].
    level : float
    coverage : float
        Share of the grid times (up to the last observed time) where the observed curve lies in the interval.
    n_subjects, n_events, n_replicates : int
    time_unit : str
    event_times, censor_times : ndarray
        Observed times of the events and of the censorings (for the plot's tick marks).
    """

    output: str
    times: np.ndarray
    observed: np.ndarray
    simulated: np.ndarray
    level: float
    coverage: float
    n_subjects: int
    n_events: int
    n_replicates: int
    time_unit: str
    event_times: np.ndarray = field(repr=False)
    censor_times: np.ndarray = field(repr=False)

    def plot(self, **kwargs):
        """See :func:`pkpd.plots.plot_km_vpc`."""
        from .plots import plot_km_vpc

        return plot_km_vpc(self, **kwargs)

    def __repr__(self) -> str:
        return (f"KaplanMeierVPC of {self.output!r}: {self.n_subjects} subjects, {self.n_events} events, "
                f"{self.n_replicates} replicates; observed curve inside the {100 * self.level:g} % interval at "
                f"{100 * self.coverage:.0f} % of the times")


@dataclass(frozen=True, eq=False)
class CategoricalVPC:
    """A VPC of category proportions (:func:`categorical_vpc`; drawn by :func:`pkpd.plots.plot_categorical_vpc`).

    Attributes
    ----------
    output : str
    categories : tuple[float, ...]
        The DV codes (binary: (0, 1)).
    by : str
        ``"time"`` or the model output/state whose value bins the records.
    bins : ndarray (n_bins + 1,)
        Bin edges [model time unit, or the unit of ``by``]; ``centres`` (n_bins,) the median of each bin.
    observed : ndarray (n_categories, n_bins)
        Observed proportion of each category per bin [1].
    simulated : ndarray (n_categories, 3, n_bins)
        Lower, median and upper percentiles (``level``) of the simulated proportions [1].
    n : ndarray (n_bins,)
        Records per bin.
    level, coverage : float
        ``coverage``: share of (category, bin) points whose observed proportion lies in its interval.
    unit : str
        Unit of ``by``.
    """

    output: str
    categories: tuple
    by: str
    bins: np.ndarray
    centres: np.ndarray
    observed: np.ndarray
    simulated: np.ndarray
    n: np.ndarray
    level: float
    coverage: float
    unit: str
    n_replicates: int

    def plot(self, **kwargs):
        """See :func:`pkpd.plots.plot_categorical_vpc`."""
        from .plots import plot_categorical_vpc

        return plot_categorical_vpc(self, **kwargs)

    def __repr__(self) -> str:
        return (f"CategoricalVPC of {self.output!r} by {self.by}: {self.bins.size - 1} bins, {len(self.categories)} "
                f"categories, {self.n_replicates} replicates; observed inside the {100 * self.level:g} % interval at "
                f"{100 * self.coverage:.0f} % of the points")


# ------------------------------------------------------------------------------------------------ design
@dataclass(frozen=True, eq=False)
class _Design:
    model: object
    ids: tuple
    regimens: list
    covariates: dict          # name -> (n,)
    params: dict              # name -> (n,) typical values per subject (covariate effects applied)
    iiv: object
    records: object           # the output's records: DataFrame ID, TIME (model time), DV, subject
    kind: str
    categories: tuple


def _design(fit, data, output, model, iiv, kinds=()) -> _Design:
    from . import units as un
    from .estimation.data import _read, _subject_covariates
    from .estimation.individual import FitResult
    from .load import load_model
    from .model import Model

    population = type(fit).__name__ == "PopulationFit"
    if isinstance(fit, Model):
        model = fit
    elif isinstance(fit, FitResult):
        if iiv is not None:
            raise FitError("iiv: a FitResult is a pooled fit (no random effects); pass the model and an IIV instead")
        model = fit.model
    elif population:
        if model is None:
            raise FitError("model: a PopulationFit does not hold its Model; pass model= (the one fitted)")
        model = load_model(model) if isinstance(model, str) else model
        iiv = fit.iiv
    else:
        raise FitError(f"expected a Model, FitResult or PopulationFit; got {type(fit).__name__}")
    if output not in model.endpoint_names:
        raise FitError(f"output: {output!r} is not an endpoint output of model {model.name!r}."
                       + did_you_mean(str(output), model.endpoint_names))
    spec = next(o for o in model.outputs if o.name == output)
    if kinds and spec.type not in kinds:
        check = "km_vpc checks time-to-event outputs" if "binary" in kinds else "categorical_vpc checks binary and "\
            "ordinal outputs"
        raise FitError(f"{output!r} is a {spec.type} output; {check}")
    ds = _read(model, data)
    obs = ds.observations(model)
    if "DVID" not in ds.table:
        obs["output"] = output
    obs = obs[obs["output"] == output]
    if obs.empty:
        raise FitError(f"data: there are no records of {output!r}")
    regimens = ds.to_regimens(model)
    ids = tuple(dict.fromkeys(obs["ID"].tolist()))
    tf = un.convert(ds.time_unit, model.time_unit)
    covs, explicit, _ = _subject_covariates(model, ds, list(ids), tf)
    covariates = {c: covs[:, j] for j, c in enumerate(model.covariate_names) if c in explicit}
    n = len(ids)
    base = {p.name: np.full(n, p.value) for p in model.parameters}
    if population:
        for p, v in fit.theta.items():
            base[p] = np.full(n, float(v))
        for effect in fit.covariate_effects:
            base[effect.parameter] = effect.apply(base[effect.parameter], {k: v for k, v in covariates.items()})
    index = {sid: i for i, sid in enumerate(ids)}
    records = obs.assign(TIME=obs["TIME"].to_numpy(dtype=float) * tf,
                         subject=[index[s] for s in obs["ID"]])[["ID", "TIME", "DV", "subject"]]
    from .dosing import Regimen

    cats = tuple(spec.categories) if spec.type == "ordinal" else (0.0, 1.0)
    return _Design(model, ids, [regimens.get(s, Regimen.none()) for s in ids], covariates, base, iiv, records,
                   spec.type, cats)


def _replicate_params(design: _Design, n_replicates: int, rng):
    n = len(design.ids)
    params = {k: np.tile(v, n_replicates) for k, v in design.params.items()}
    if design.iiv is not None:
        iiv = design.iiv
        for p in iiv.names:
            if p not in params:
                raise FitError(f"iiv: model {design.model.name!r} has no parameter {p!r}")
        eta = iiv.sample(n * n_replicates, rng)
        ind = iiv.individual(np.stack([params[p] for p in iiv.names], axis=1), eta)
        for k, p in enumerate(iiv.names):
            params[p] = ind[:, k]
    covs = {k: np.tile(v, n_replicates) for k, v in design.covariates.items()}
    return params, covs


def _check_common(n_replicates, level, where: str) -> float:
    """The level as a float (numpy's percentiles take no Fraction), after checking both arguments."""
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, int | np.integer) or n_replicates < 2:
        raise FitError(f"n_replicates: must be an integer >= 2; got {n_replicates!r}")
    return check_level(level, where, FitError)


# ------------------------------------------------------------------------------------------------ KM-VPC
def km_vpc(fit, data, *, output: str, model=None, iiv=None, n_replicates: int = 200, seed=None, level: float = 0.9,
           times=None, settings=None) -> KaplanMeierVPC:
    """Kaplan-Meier visual predictive check of a time-to-event output.

    Main arguments
    --------------
    fit : Model, FitResult or PopulationFit
        What to check: a model at its parameter values (with ``iiv`` for between-subject variability), a pooled fit
        (its estimates), or a population fit (its typical values, Omega and covariate effects; give ``model``).
    data : NonmemDataset, DataFrame or path
        The observed data (NONMEM layout), which also gives the design: subjects, doses, covariates, follow-up.
    output : str
        The time-to-event output.

    Other arguments
    ---------------
    model : Model or str
        The model of a PopulationFit.
    iiv : IIV, optional
        Random effects of a Model checked directly.
    n_replicates : int
        Simulated studies.
    seed : int, optional
        Replicate studies are drawn from ``numpy.random.SeedSequence(seed)``: the same seed, the same check.
    level : float
        Coverage of the prediction interval (0.9: 5th to 95th percentiles).
    times : array_like, optional
        Grid of the curves [model time unit]; default 101 points from 0 to the last observed time.
    settings : SolverSettings, optional

    Returns
    -------
    KaplanMeierVPC

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> m = pkpd.load_model("tests/data/models/endpoints_exposure.toml")
    >>> sim = pkpd.simulate(m, None, [0.0, 200.0], params={"h0": np.full(50, 0.01)}, seed=1, outcomes=["event"])
    >>> v = km_vpc(m, sim.to_dataframe(layout="nonmem"), output="event", n_replicates=50, seed=2)
    >>> v.simulated.shape, v.coverage > 0.8
    ((3, 101), True)
    """
    from .simulation import simulate

    level = _check_common(n_replicates, level, "km_vpc")
    design = _design(fit, data, output, model, iiv, ("time-to-event",))
    rec = design.records
    # observed: time to the first event, or the last record (censoring) of each subject
    first = {}
    for sid, t, dv in zip(rec["subject"], rec["TIME"], rec["DV"]):
        if sid in first and first[sid][1] == 1:
            continue
        first[sid] = (t, dv)
    n = len(design.ids)
    t_obs = np.array([first[i][0] for i in range(n)])
    e_obs = np.array([first[i][1] for i in range(n)])
    study_end = float(t_obs.max())
    follow = np.where(e_obs == 1, study_end, t_obs)
    grid = np.linspace(0.0, study_end, 101) if times is None else np.asarray(times, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    params, covs = _replicate_params(design, n_replicates, rng)
    sim_seed = int(rng.integers(0, 2**63 - 1))
    sim = simulate(design.model, design.regimens * n_replicates, [0.0, study_end], params=params,
                   covariates=covs or None, settings=settings, seed=sim_seed, outcomes=[output],
                   follow_up=study_end, dropout=np.tile(follow, n_replicates), states=False,
                   subject_ids=np.arange(n * n_replicates))
    o = sim.outcomes
    o = o[o["output"] == output]
    sid = o["ID"].to_numpy()
    t_sim, e_sim = o["TIME"].to_numpy(), o["DV"].to_numpy()
    # the first record of each simulated subject is its first event, or its censoring
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    t_first, e_first, rep = t_sim[starts], e_sim[starts], sid[starts] // n
    curves = np.empty((n_replicates, grid.size))
    for r in range(n_replicates):
        sel = rep == r
        et, sv = kaplan_meier(t_first[sel], e_first[sel])
        curves[r] = _step(et, sv, grid)
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    band = np.percentile(curves, [lo, 50, hi], axis=0)
    et, sv = kaplan_meier(t_obs, e_obs)
    observed = _step(et, sv, grid)
    inside = (observed >= band[0] - 1e-12) & (observed <= band[2] + 1e-12)
    return KaplanMeierVPC(output=output, times=grid, observed=observed, simulated=band, level=float(level),
                          coverage=float(np.mean(inside)), n_subjects=n, n_events=int(e_obs.sum()),
                          n_replicates=int(n_replicates), time_unit=design.model.time_unit,
                          event_times=t_obs[e_obs == 1], censor_times=t_obs[e_obs == 0])


# ------------------------------------------------------------------------------------------------ categorical VPC
def categorical_vpc(fit, data, *, output: str, by: str = "time", n_bins: int = 6, model=None, iiv=None,
                    n_replicates: int = 200, seed=None, level: float = 0.9, settings=None) -> CategoricalVPC:
    """VPC of the category proportions of a binary or ordinal output, over time or over exposure bins.

    Arguments as :func:`km_vpc`, and:

    by : str
        ``"time"`` (bins of the records' times) or a model output or state (e.g. an AUC state): the records are
        binned by its value at their time, predicted for each subject at the typical (or pooled) parameters.
    n_bins : int
        Bins, with about equal numbers of records (quantiles; fewer when values repeat).

    Returns
    -------
    CategoricalVPC

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("tests/data/models/endpoints_exposure.toml")
    >>> sim = pkpd.simulate(m, None, [0.0, 100.0], params={"b0": np.full(60, -0.5)}, seed=1, outcomes=["resp"],
    ...                     observe={"resp": [10.0, 50.0]})
    >>> v = categorical_vpc(m.with_parameters(b0=-0.5), sim.to_dataframe(layout="nonmem"), output="resp",
    ...                     n_bins=2, n_replicates=50, seed=3)
    >>> v.observed.shape, v.simulated.shape
    ((2, 2), (2, 3, 2))
    """
    from .simulation import simulate

    level = _check_common(n_replicates, level, "categorical_vpc")
    design = _design(fit, data, output, model, iiv, ("binary", "ordinal"))
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise FitError(f"n_bins: must be a positive integer; got {n_bins!r}")
    rec = design.records
    n = len(design.ids)
    t_all = np.unique(rec["TIME"].to_numpy())
    grid = np.unique(np.r_[0.0, t_all])
    if by == "time":
        x = rec["TIME"].to_numpy()
        unit = design.model.time_unit
    else:
        known = list(design.model.output_names) + list(design.model.state_names)
        if by not in known:
            raise FitError(f"by: {by!r} is neither 'time' nor an output or state of model {design.model.name!r}."
                           + did_you_mean(str(by), known))
        typical = simulate(design.model, design.regimens, grid, params=design.params,
                           covariates=design.covariates or None, settings=settings, outcomes=False)
        values = typical[by]
        x = values[rec["subject"].to_numpy(), np.searchsorted(grid, rec["TIME"].to_numpy())]
        unit = design.model.unit_of(by)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 2:
        edges = np.array([x.min(), x.max() + 1e-12])
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    nb = edges.size - 1
    cats = np.asarray(design.categories, dtype=float)
    dv = rec["DV"].to_numpy(dtype=float)
    counts = np.bincount(which, minlength=nb)
    observed = np.array([[np.mean(dv[which == b] == c) if counts[b] else np.nan for b in range(nb)] for c in cats])
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    params, covs = _replicate_params(design, n_replicates, rng)
    sim = simulate(design.model, design.regimens * n_replicates, grid, params=params, covariates=covs or None,
                   settings=settings, seed=int(rng.integers(0, 2**63 - 1)), outcomes=[output],
                   observe={output: t_all}, states=False, subject_ids=np.arange(n * n_replicates))
    o = sim.outcomes
    o = o[o["output"] == output]
    # each record's simulated value: the draw of its replicate subject at its own time
    table = o.set_index(["ID", "TIME"])["DV"]
    subj = rec["subject"].to_numpy()
    times = rec["TIME"].to_numpy()
    sims = np.empty((n_replicates, subj.size))
    for r in range(n_replicates):
        keys = list(zip(r * n + subj, times))
        sims[r] = table.loc[keys].to_numpy()
    props = np.stack([[np.bincount(which, weights=(sims[r] == c).astype(float), minlength=nb)
                       / np.maximum(counts, 1) for r in range(n_replicates)] for c in cats])     # (C, R, nb)
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    band = np.percentile(props, [lo, 50, hi], axis=1).transpose(1, 0, 2)                      # (C, 3, nb)
    inside = (observed >= band[:, 0] - 1e-12) & (observed <= band[:, 2] + 1e-12)
    centres = np.array([np.median(x[which == b]) for b in range(nb)])
    return CategoricalVPC(output=output, categories=tuple(float(c) for c in cats), by=by, bins=edges,
                          centres=centres, observed=observed, simulated=band, n=counts, level=float(level),
                          coverage=float(np.mean(inside)), unit=unit, n_replicates=int(n_replicates))
