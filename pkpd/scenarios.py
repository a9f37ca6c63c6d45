r"""Dose-response scenarios: arms x virtual subjects x endpoints -> tables, target attainment and ED50/ED90.

A :class:`Scenario` is a model, a population (or a typical subject), treatment arms (dose level, per kg or absolute,
schedule, infusion time, start relative to the disease event at t = 0), endpoints (:class:`~pkpd.metrics.Endpoint`)
and targets (:class:`Target`, e.g. "IL-10 AUC over the first week >= 2000 pg*h/mL" or "TNF-alpha reduced by >= 50 %
at 48 h versus untreated"). :func:`run_scenario` simulates every arm for the *same* virtual subjects (common random
numbers: differences between arms are not sampling noise) in **one** batched :func:`~pkpd.simulate` call, and returns
a :class:`ScenarioResult`:

* ``table``: tidy, one row per arm x subject x endpoint;
* ``summary``: per arm and endpoint, median and 5-95 % range (and mean, n);
* ``attainment``: probability of target attainment (PTA) per arm and target, with a Wilson 95 % interval for the
  Monte-Carlo error of n virtual subjects;
* ``dose_response``: per schedule (arms that differ only in dose) and endpoint, an Emax (or sigmoid Emax) fit with
  lmfit giving ED50 and ED90 with confidence intervals (:func:`fit_dose_response`);
* per-arm percentile time courses, the population drawn, and (optionally) local sensitivities for a tornado plot.

Scenarios are written in Python or as a TOML file (:func:`load_scenario`; parsed as data by an allow-list, never
executed); the same scenario both ways gives identical tables. ``pkpd scenario FILE --out DIR`` runs one and writes
a one-page report (:func:`pkpd.report.write_report`).

A scenario file::

    [scenario]
    name = "MSC dose ranging in sepsis"
    model = "msc_sepsis"              # a shipped model, or a path relative to this file
    seed = 2024
    times = {start = 0, stop = 168, step = 1}

    [parameters]                      # typical values that differ from the model file
    k_d = 0.3

    [population]                      # n virtual patients; log-normal IIV: theta_i = theta * exp(omega * eta_i)
    n = 200
    omega = {e_max = 0.5, k_c = 0.3}
    covariate_ranges = {WT = [50, 100]}   # uniform; or covariates = {WT = 70}

    [arms.control]
    control = true

    [arms.single]                     # `doses` expands into one arm per dose level: "single: 1e+06 cell/kg" ...
    doses = [0.3e6, 1e6, 3e6, 10e6]
    unit = "cell/kg"
    start = 0                         # [h] after the septic insult; count/interval/duration (infusion) optional

    [endpoints.IL10_AUC_0_168]
    output = "IL10"
    metric = "auc"
    start = 0
    end = 168

    [[targets]]
    endpoint = "IL10_AUC_0_168"
    op = ">="
    value = 2000
    unit = "pg*h/mL"

    [sensitivity]                     # optional: local sensitivities (tornado) at the typical subject of one arm
    arm = "single: 10e6 cell/kg"

    [uncertainty]                     # optional: parameter uncertainty from a saved fit (pkpd.uncertainty)
    from = "fit.json"                 # fit.save("fit.json"), relative to this file
    n_trials = 200                    # replicate trials; each draws its parameters, then its population
    success = 0.8                     # a trial succeeds when its PTA reaches this

The dose-response fit
---------------------
:math:`E(D) = E_0 + E_{max} D^h / (ED_{50}^h + D^h)` (h = 1 for Emax) by least squares on every virtual subject's
value (control arms enter at D = 0). :math:`\log ED_{50}` is estimated, so its Wald interval
(:math:`\pm z_{(1+level)/2}` standard errors from lmfit's covariance, scaled by the residual variance) is
symmetric on the log scale and always positive. :math:`ED_{90} = ED_{50} \cdot 9^{1/h}`; its interval comes from
the same covariance by the delta method. These intervals are the uncertainty of the *typical* dose-response curve
given this many virtual subjects, not the spread between subjects (that is in ``summary`` and ``attainment``).

References
----------
Holford NHG, Sheiner LB 1981, Clin Pharmacokinet 6:429 (Emax models). Wilson EB 1927, J Am Stat Assoc 22:209
(score interval for a proportion). Nemeth K et al. 2009, Nat Med 15:42 (MSC -> PGE2 -> macrophage IL-10 in sepsis).
"""

from __future__ import annotations

import html
import math
import numbers
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ._arguments import check_level
from .dosing import Dose, Regimen
from .errors import DosingError, PkpdError, UnitError, did_you_mean
from .metrics import Endpoint
from .model import Model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Arm", "DoseResponseFit", "GivenPopulation", "LogNormalPopulation", "Scenario", "ScenarioResult",
           "Target", "VirtualPatients", "dose_ranging_arms", "fit_dose_response", "load_scenario", "run_scenario",
           "scenario_from_dict"]

_OPS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}
#: Fewest distinct positive dose levels of a schedule for a dose-response fit.
MIN_DOSE_LEVELS = 3


def _g(x: float) -> str:
    return f"{x:g}"


def _finite(where: str, name: str, value, *, positive: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or (
            positive and value <= 0):
        rule = "a finite number > 0" if positive else "a finite number"
        raise PkpdError(f"{where}: {name} must be {rule}; got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------ arms
@dataclass(frozen=True)
class Arm:
    """One treatment arm: a dose level and a schedule.

    Parameters
    ----------
    name : str
        Unique within the scenario; used in every table and figure.
    dose : Dose, optional
        The amount per administration, e.g. ``Dose(2e6, "cell/kg")`` (per kg: multiplied by each subject's WT).
        Omitted only for a control arm.
    count : int
        Number of administrations (>= 1).
    interval : float [time_unit], optional
        Time between administrations; needed when ``count`` > 1.
    start : float [time_unit]
        Time of the first administration after the disease event (t = 0 of the model, e.g. the septic insult).
    duration : float [time_unit], optional
        Infusion duration; None for a bolus.
    target : str, optional
        Dose target of the model (default: its first).
    time_unit : {"min", "h", "day", "week"}
        Unit of ``interval``, ``start`` and ``duration``.
    control : bool
        An untreated arm (no doses); it enters dose-response fits at dose 0.
    color : str, optional
        Colour of the arm in every figure (default: assigned by :func:`pkpd.plots.scenario_colors`).

    Raises
    ------
    DosingError
        A non-control arm without doses (no ``dose``, a zero amount, or ``count`` < 1), a control arm with a dose,
        or an invalid schedule (named by the arm).

    Examples
    --------
    >>> arm = Arm("2 x 1e6/kg", Dose(1e6, "cell/kg"), count=2, interval=24, start=6)
    >>> arm.regimen
    Regimen(2 doses of 1e+06 cell/kg every 24 h from t=6 h, bolus)
    >>> arm.schedule
    '2 doses 24 h apart from 6 h, bolus'
    >>> Arm("oops", count=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pkpd.errors.DosingError: arm 'oops': has no dose; give dose=Dose(amount, unit), or control=True for ...
    """

    name: str
    dose: Dose | None = None
    count: int = 1
    interval: float | None = None
    start: float = 0.0
    duration: float | None = None
    target: str | None = None
    time_unit: str = "h"
    control: bool = False
    color: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise DosingError(f"arm: name must be a non-empty string; got {self.name!r}")
        where = f"arm {self.name!r}"
        if not isinstance(self.control, bool):
            raise DosingError(f"{where}: control must be true or false; got {self.control!r}")
        if self.control:
            if self.dose is not None:
                raise DosingError(f"{where}: a control arm takes no dose; got {self.dose!r}. Remove the dose, or "
                                  "set control=False for a treated arm.")
            return
        if self.dose is None:
            raise DosingError(f"{where}: has no dose; give dose=Dose(amount, unit), or control=True for an untreated "
                              "arm.")
        if not isinstance(self.dose, Dose):
            raise DosingError(f"{where}: dose must be a Dose, e.g. Dose(1e6, 'cell/kg'); got {self.dose!r}")
        if self.dose.amount == 0:
            raise DosingError(f"{where}: the dose is 0 {self.dose.unit}, so the arm has no doses; give a positive "
                              "amount, or control=True for an untreated (placebo) arm.")
        if isinstance(self.count, bool) or not isinstance(self.count, numbers.Integral) or self.count < 1:
            raise DosingError(f"{where}: has no doses (count={self.count!r}); give count >= 1, or control=True for "
                              "an untreated arm.")
        try:
            self.regimen  # noqa: B018 - validates the schedule once, with the arm's name in the message
        except DosingError as err:
            raise DosingError(f"{where}: {err}") from None

    @property
    def regimen(self) -> Regimen:
        """The arm's doses (``Regimen.none()`` for a control arm)."""
        if self.control:
            return Regimen.none(self.time_unit)
        if self.count == 1:
            if self.interval is not None:
                raise DosingError(f"interval {self.interval:g} has no effect with a single dose; drop it or give "
                                  "count > 1")
            return Regimen.single(self.dose, at=self.start, duration=self.duration, target=self.target,
                                  time_unit=self.time_unit)
        if self.interval is None:
            raise DosingError(f"count {self.count} needs interval=... [{self.time_unit}], the time between doses")
        return Regimen.every(self.interval, self.time_unit, count=int(self.count), dose=self.dose, start=self.start,
                             duration=self.duration, target=self.target)

    @property
    def dose_level(self) -> float:
        """Amount per administration [dose unit] (0 for a control arm)."""
        return 0.0 if self.control else float(self.dose.amount)

    @property
    def dose_unit(self) -> str | None:
        """Unit of the dose (None for a control arm)."""
        return None if self.control else self.dose.unit

    @property
    def schedule(self) -> str:
        """The schedule in words, without the dose level (arms that share it form a dose-response group)."""
        if self.control:
            return "untreated"
        u = self.time_unit
        how = "bolus" if self.duration is None else f"{_g(self.duration)}-{u} infusion"
        into = f" into {self.target}" if self.target else ""
        if self.count == 1:
            return f"1 dose at {_g(self.start)} {u}, {how}{into}"
        return f"{self.count} doses {_g(self.interval)} {u} apart from {_g(self.start)} {u}, {how}{into}"

    def as_dict(self) -> dict:
        """The arm as a table row (for reports)."""
        return {"arm": self.name, "dose": self.dose_level, "unit": self.dose_unit or "", "schedule": self.schedule,
                "count": 0 if self.control else int(self.count),
                "interval": self.interval if self.interval is not None else math.nan, "start": self.start,
                "infusion": self.duration if self.duration is not None else math.nan, "time_unit": self.time_unit}


def dose_ranging_arms(name: str, doses: Iterable[float], unit: str, *, count: int = 1, interval: float | None = None,
                      start: float = 0.0, duration: float | None = None, target: str | None = None,
                      time_unit: str = "h") -> tuple[Arm, ...]:
    """One arm per dose level, all on the same schedule, named ``"{name}: {dose:g} {unit}"``.

    The TOML form ``[arms.NAME] doses = [...]`` gives exactly these arms.

    Examples
    --------
    >>> [a.name for a in dose_ranging_arms("single", [0.3e6, 1e6, 10e6], "cell/kg")]
    ['single: 0.3e6 cell/kg', 'single: 1e6 cell/kg', 'single: 10e6 cell/kg']
    """
    levels = list(doses)
    if not levels:
        raise DosingError(f"dose_ranging_arms {name!r}: doses is empty; give at least one dose level")
    shown = _dose_labels(levels)
    return tuple(Arm(f"{name}: {text} {unit}", Dose(d, unit), count=count, interval=interval, start=start,
                     duration=duration, target=target, time_unit=time_unit) for d, text in zip(levels, shown))


def _dose_labels(levels) -> list[str]:
    """Dose levels written with one power of ten (that of the largest, in steps of 3) from a largest level of 1e4 on:
    0.3e6, 1e6, 10e6; 3e3, 10e3; plainly below 1e4 (3000, 9999)."""
    values = [float(d) for d in levels]
    top = max((abs(v) for v in values), default=0.0)
    if not (math.isfinite(top) and top >= 1e4):
        return [_g(v) for v in values]
    exp = 3 * math.floor(math.log10(top) / 3)
    if max(values) / 10**exp >= 100:  # 100e6 reads worse than 0.1e9
        exp += 3
    return [f"{v / 10**exp:.4g}e{exp}" for v in values]


# ------------------------------------------------------------------------------------------------ populations
@dataclass(frozen=True, eq=False)
class LogNormalPopulation:
    r"""``n`` virtual subjects with log-normal inter-individual variability and fixed or uniform covariates.

    :math:`\theta_i = \theta \exp(\omega \eta_i)`, :math:`\eta_i \sim N(0, 1)` independent per parameter, where
    :math:`\theta` is the typical value (model file, or the scenario's ``params``) and :math:`\omega` the SD of
    log θ (about the CV for ω < 0.3). Draws come from the ``rng`` handed to :meth:`sample`, parameters in the
    model's declaration order, then covariates: the same seed gives the same subjects whatever the order in which
    ``omega`` was written.

    Any object with ``n``, ``sample(model, rng) -> (params, covariates)`` (dicts of arrays (n,)),
    ``typical_covariates(model) -> dict`` and ``describe() -> str`` can stand in for it (a population built from
    protocol criteria, say). Per-kg doses also need its ``given_covariates`` (the set of covariate names its
    subjects get, which must hold ``"WT"``): without it, a per-kg arm is refused as a population without body
    weights.

    Parameters
    ----------
    n : int
        Number of subjects (>= 1).
    omega : dict[str, float]
        SD of the log of each varying parameter [1].
    covariates : dict[str, float]
        Fixed covariate values, e.g. ``{"WT": 70}`` [kg].
    covariate_ranges : dict[str, (float, float)]
        Covariates drawn uniformly between low and high, e.g. ``{"WT": (50, 100)}``.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> pop = LogNormalPopulation(3, omega={"k_c": 0.3}, covariates={"WT": 70})
    >>> params, covs = pop.sample(pkpd.load_model("msc_salvadori"), np.random.default_rng(1))
    >>> params["k_c"].round(4).tolist(), covs["WT"].tolist()
    ([0.032, 0.037, 0.0319], [70.0, 70.0, 70.0])
    """

    n: int
    omega: Mapping[str, float] = field(default_factory=dict)
    covariates: Mapping[str, float] = field(default_factory=dict)
    covariate_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.n, bool) or not isinstance(self.n, numbers.Integral) or self.n < 1:
            raise PkpdError(f"population: n must be an integer >= 1 (the number of virtual subjects); got {self.n!r}. "
                            "An empty population cannot be simulated.")
        for kind in ("omega", "covariates", "covariate_ranges"):
            if not isinstance(getattr(self, kind), Mapping):
                raise PkpdError(f"population: {kind} must be a mapping of name -> value; got "
                                f"{type(getattr(self, kind)).__name__}")
        for k, v in self.omega.items():
            _finite(f"population omega[{k!r}]", "omega", v)
            if v < 0:
                raise PkpdError(f"population omega[{k!r}]: must be >= 0 (an SD of log values); got {v:g}")
        for k, v in self.covariates.items():
            _finite(f"population covariates[{k!r}]", "value", v)
        ranges = {}
        for k, v in self.covariate_ranges.items():
            try:
                lo, hi = (float(x) for x in v)
            except (TypeError, ValueError):
                raise PkpdError(f"population covariate_ranges[{k!r}]: give [low, high]; got {v!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise PkpdError(f"population covariate_ranges[{k!r}]: need finite low <= high; got [{lo:g}, {hi:g}]")
            ranges[k] = (lo, hi)
        both = set(self.covariates) & set(ranges)
        if both:
            raise PkpdError(f"population: covariate {sorted(both)[0]!r} is both fixed and ranged; give one of them")
        object.__setattr__(self, "omega", {k: float(v) for k, v in self.omega.items()})
        object.__setattr__(self, "covariates", {k: float(v) for k, v in self.covariates.items()})
        object.__setattr__(self, "covariate_ranges", ranges)

    def check(self, model: Model) -> None:
        """Raise PkpdError naming any parameter or covariate the model does not have."""
        for k in self.omega:
            if k not in model.parameter_names:
                raise PkpdError(f"population omega: model {model.name!r} has no parameter {k!r}."
                                + did_you_mean(k, model.parameter_names))
        for k in (*self.covariates, *self.covariate_ranges):
            if k not in model.covariate_names:
                raise PkpdError(f"population covariates: model {model.name!r} has no covariate {k!r}."
                                + did_you_mean(k, model.covariate_names))

    @property
    def given_covariates(self) -> set[str]:
        """Covariates the population sets (others take the model's default)."""
        return set(self.covariates) | set(self.covariate_ranges)

    def sample(self, model: Model, rng: np.random.Generator) -> tuple[dict, dict]:
        """Draw the subjects: (params, covariates), each a dict of arrays (n,)."""
        self.check(model)
        params = {}
        for p in model.parameters:
            if p.name in self.omega:
                params[p.name] = p.value * np.exp(self.omega[p.name] * rng.standard_normal(self.n))
        covs = {}
        for c in model.covariates:
            if c.name in self.covariate_ranges:
                lo, hi = self.covariate_ranges[c.name]
                covs[c.name] = rng.uniform(lo, hi, self.n)
            elif c.name in self.covariates:
                covs[c.name] = np.full(self.n, self.covariates[c.name])
        return params, covs

    def typical_covariates(self, model: Model) -> dict[str, float]:
        """The typical subject's covariates: fixed values, and the middle of each range."""
        return {**self.covariates, **{k: 0.5 * (lo + hi) for k, (lo, hi) in self.covariate_ranges.items()}}

    def describe(self) -> str:
        """One line for reports."""
        parts = [f"{self.n} virtual subject{'s' if self.n != 1 else ''}"]
        if self.omega:
            parts.append("log-normal IIV (omega): " + ", ".join(f"{k} {_g(v)}" for k, v in self.omega.items()))
        else:
            parts.append("no inter-individual variability")
        if self.covariates:
            parts.append("covariates " + ", ".join(f"{k} = {_g(v)}" for k, v in self.covariates.items()))
        if self.covariate_ranges:
            parts.append("uniform " + ", ".join(f"{k} in [{_g(lo)}, {_g(hi)}]"
                                                for k, (lo, hi) in self.covariate_ranges.items()))
        return "; ".join(parts)


@dataclass(frozen=True, eq=False)
class GivenPopulation:
    """Subjects given as arrays of parameter and covariate values (e.g. from a fit, or a typical subject).

    Parameters
    ----------
    params : dict[str, float or array (n,)]
        Parameter values per subject (scalars apply to all).
    covariates : dict[str, float or array (n,)]
        E.g. ``{"WT": [62, 80, 71]}`` [kg].

    Examples
    --------
    >>> GivenPopulation(covariates={"WT": 70}).n          # the typical subject
    1
    >>> GivenPopulation(params={"k_c": [0.02, 0.03]}, covariates={"WT": 70}).n
    2
    >>> GivenPopulation(params={"k_c": []})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pkpd.errors.PkpdError: population: params['k_c'] is empty; an empty population cannot be simulated. ...
    """

    params: Mapping[str, object] = field(default_factory=dict)
    covariates: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        n = None
        clean = {}
        for kind in ("params", "covariates"):
            given = getattr(self, kind)
            if not isinstance(given, Mapping):
                raise PkpdError(f"population: {kind} must be a mapping of name -> values; got {type(given).__name__}")
            out = {}
            for k, v in given.items():
                try:
                    arr = np.asarray(v, dtype=float)
                except (TypeError, ValueError):
                    raise PkpdError(f"population: {kind}[{k!r}] must be numbers; got {v!r}") from None
                if arr.ndim > 1:
                    raise PkpdError(f"population: {kind}[{k!r}] must be a number or a 1-D array; got shape {arr.shape}")
                if arr.ndim == 1:
                    if arr.size == 0:
                        raise PkpdError(f"population: {kind}[{k!r}] is empty; an empty population cannot be "
                                        "simulated. Give at least one value.")
                    if n is not None and arr.size != n:
                        raise PkpdError(f"population: {kind}[{k!r}] has {arr.size} values but others have {n}")
                    n = arr.size
                if not np.all(np.isfinite(arr)):
                    raise PkpdError(f"population: {kind}[{k!r}] must be finite")
                arr = arr.copy()
                arr.setflags(write=False)
                out[k] = arr
            clean[kind] = out
        object.__setattr__(self, "params", clean["params"])
        object.__setattr__(self, "covariates", clean["covariates"])
        object.__setattr__(self, "_n", n or 1)

    @property
    def n(self) -> int:
        """Number of subjects."""
        return self._n

    @property
    def given_covariates(self) -> set[str]:
        """Covariates the population sets (others take the model's default)."""
        return set(self.covariates)

    def check(self, model: Model) -> None:
        """Raise PkpdError naming any parameter or covariate the model does not have."""
        for k in self.params:
            if k not in model.parameter_names:
                raise PkpdError(f"population params: model {model.name!r} has no parameter {k!r}."
                                + did_you_mean(k, model.parameter_names))
        for k in self.covariates:
            if k not in model.covariate_names:
                raise PkpdError(f"population covariates: model {model.name!r} has no covariate {k!r}."
                                + did_you_mean(k, model.covariate_names))

    def sample(self, model: Model, rng: np.random.Generator) -> tuple[dict, dict]:
        """The given subjects (``rng`` is not used): (params, covariates), each a dict of arrays (n,)."""
        self.check(model)
        return ({k: np.broadcast_to(v, (self.n,)).astype(float) for k, v in self.params.items()},
                {k: np.broadcast_to(v, (self.n,)).astype(float) for k, v in self.covariates.items()})

    def typical_covariates(self, model: Model) -> dict[str, float]:
        """Median of each given covariate."""
        return {k: float(np.median(v)) for k, v in self.covariates.items()}

    def describe(self) -> str:
        """One line for reports."""
        what = "typical subject" if self.n == 1 else f"{self.n} given subjects"
        extra = ", ".join(f"{k} = {_g(float(np.median(v)))}" + (" (median)" if np.ndim(v) else "")
                          for k, v in {**self.params, **self.covariates}.items())
        return what + (f" ({extra})" if extra else "")


@dataclass(frozen=True, eq=False)
class VirtualPatients:
    """Patients from :func:`pkpd.virtual_population` (or any table) with covariate effects and IIV, for a scenario.

    The covariates come from the table (columns named like model covariates, e.g. ``WT``); typical parameter values
    are adjusted by each :class:`pkpd.CovariateEffect` in turn, then random effects of :class:`pkpd.IIV` are drawn
    from the scenario's generator (so the scenario's seed fixes them; the table has its own seed).

    Parameters
    ----------
    population : VirtualPopulation or pandas.DataFrame
        One row per patient.
    iiv : IIV, optional
    effects : sequence of CovariateEffect

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> table = pkpd.virtual_population(4, {"WT": pkpd.Uniform(50, 100)}, seed=1)
    >>> patients = VirtualPatients(table, iiv=pkpd.IIV({"k_c": 0.09}))
    >>> params, covs = patients.sample(pkpd.load_model("msc_salvadori"), np.random.default_rng(0))
    >>> sorted(params), covs["WT"].round(1).tolist()
    (['k_c'], [81.8, 89.7, 81.5, 54.8])
    """

    population: object
    iiv: object = None
    effects: Sequence = ()

    def __post_init__(self):
        table = getattr(self.population, "table", self.population)
        if not hasattr(table, "columns") or len(table) == 0:
            raise PkpdError("population: VirtualPatients needs a VirtualPopulation or a non-empty table (one row per "
                            "patient); an empty population cannot be simulated.")
        object.__setattr__(self, "effects", tuple(self.effects))
        object.__setattr__(self, "_table", table)

    @property
    def n(self) -> int:
        """Number of patients."""
        return len(self._table)

    def _covariates(self, model: Model) -> dict[str, np.ndarray]:
        return {c: self._table[c].to_numpy(dtype=float) for c in model.covariate_names if c in self._table.columns}

    @property
    def given_covariates(self) -> set[str]:
        """Columns of the table (those that are model covariates feed the model)."""
        return {str(c) for c in self._table.columns}

    def check(self, model: Model) -> None:
        """Raise PkpdError naming any parameter of the IIV or the effects that the model does not have."""
        names = list(getattr(self.iiv, "names", ())) + [e.parameter for e in self.effects]
        for k in names:
            if k not in model.parameter_names:
                raise PkpdError(f"population: model {model.name!r} has no parameter {k!r}."
                                + did_you_mean(k, model.parameter_names))

    def sample(self, model: Model, rng: np.random.Generator) -> tuple[dict, dict]:
        """(params, covariates) of every patient, dicts of arrays (n,)."""
        self.check(model)
        covs = self._covariates(model)
        table_covs = {str(c): self._table[c].to_numpy() for c in self._table.columns}
        params: dict[str, np.ndarray] = {}
        for e in self.effects:
            current = params.get(e.parameter, np.full(self.n, model.parameter(e.parameter).value))
            params[e.parameter] = e.apply(current, table_covs)
        if self.iiv is not None:
            names = list(self.iiv.names)
            typical = np.stack([params.get(k, np.full(self.n, model.parameter(k).value)) for k in names], axis=1)
            values = self.iiv.individual(typical, self.iiv.sample(self.n, rng))
            params.update({k: values[:, i] for i, k in enumerate(names)})
        return params, covs

    def typical_covariates(self, model: Model) -> dict[str, float]:
        """Median of each model covariate in the table."""
        return {k: float(np.median(v)) for k, v in self._covariates(model).items()}

    def describe(self) -> str:
        """One line for reports."""
        parts = [f"{self.n} virtual patients"]
        if self.iiv is not None:
            parts.append(repr(self.iiv))
        if self.effects:
            parts.append("covariate effects: " + ", ".join(f"{e.parameter} ~ {e.covariate} ({e.kind})"
                                                          for e in self.effects))
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------------ targets
@dataclass(frozen=True)
class Target:
    """A success criterion on an endpoint, e.g. ``Target("IL10_AUC_0_168", ">=", 2000, "pg*h/mL")``.

    Parameters
    ----------
    endpoint : str
        Name of a scenario endpoint.
    op : {">=", ">", "<=", "<"}
    value : float [unit]
    unit : str, optional
        Unit of ``value``; default the endpoint's. It must convert to the endpoint's unit (checked by the
        scenario); ``"%"`` and ``"1"`` convert into each other (-50 % = -0.5).
    name : str, optional
        Default ``"{endpoint} {op} {value} {unit}"``.

    Examples
    --------
    >>> Target("TNF_vs_untreated_48", "<=", -50, "%").name
    'TNF_vs_untreated_48 <= -50 %'
    >>> Target("IL10_AUC", "=>", 1)
    Traceback (most recent call last):
    pkpd.errors.PkpdError: target on 'IL10_AUC': op must be one of >=, >, <=, <; got '=>'. Did you mean '>='?
    """

    endpoint: str
    op: str
    value: float
    unit: str | None = None
    name: str | None = None

    def __post_init__(self):
        where = f"target on {self.endpoint!r}"
        if not isinstance(self.endpoint, str) or not self.endpoint:
            raise PkpdError(f"target: endpoint must be an endpoint name; got {self.endpoint!r}")
        if self.op not in _OPS:
            close = {"=>": ">=", "=<": "<=", "≥": ">=", "≤": "<="}.get(str(self.op))
            hint = f" Did you mean {close!r}?" if close else ""
            raise PkpdError(f"{where}: op must be one of {', '.join(_OPS)}; got {self.op!r}.{hint}")
        object.__setattr__(self, "value", _finite(where, "value", self.value))
        if self.unit is not None and (not isinstance(self.unit, str) or not self.unit.strip()):
            raise PkpdError(f"{where}: unit must be a unit string such as 'pg*h/mL'; got {self.unit!r}")
        if self.name is None:
            object.__setattr__(self, "name", f"{self.endpoint} {self.op} {_g(self.value)}"
                                             + (f" {self.unit}" if self.unit else ""))

    def in_unit(self, unit: str) -> Target:
        """This target with its value converted to ``unit`` (UnitError when it cannot be)."""
        from . import units as un

        if self.unit is None or self.unit == unit:
            return replace(self, unit=unit)
        try:
            k = un.convert(self.unit, unit)
        except un.UnitCheckError as err:
            raise UnitError(f"target {self.name!r}: value {_g(self.value)} {self.unit} cannot be compared with "
                            f"endpoint {self.endpoint!r} in {unit} ({err}). Give the value in a unit of the same "
                            f"kind as {unit}.") from None
        return replace(self, value=self.value * k, unit=unit)

    def met(self, values) -> np.ndarray:
        """Boolean array: which values meet the target (value in the endpoint's unit). NaN (a failed subject)
        never meets it; ``inf`` (a median time to event not reached within the endpoint's window) is compared like
        any value beyond every bound: it meets ``>`` and ``>=`` targets."""
        v = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            return _OPS[self.op](v, self.value) & ~np.isnan(v)


# ------------------------------------------------------------------------------------------------ scenario
@dataclass(frozen=True, eq=False)
class Scenario:
    """A dose-response scenario: model + population + arms + endpoints + targets, validated at construction.

    Main arguments
    --------------
    model : Model
    arms : sequence of Arm
    endpoints : sequence of Endpoint
    targets : sequence of Target
    population : LogNormalPopulation, GivenPopulation, VirtualPatients or compatible, optional
        Default: the typical subject with the model's default covariates.

    Other arguments
    ---------------
    params : dict[str, float]
        Typical parameter values that differ from the model file (within the file's bounds).
    times : array_like, optional
        Output grid [model time unit]; default from the endpoints (every time they name is added).
    seed : int, optional
        Seed of the population draw (see :func:`run_scenario`).
    name, description : str
    sensitivity_arm : str, optional
        Compute local sensitivities of every endpoint at the typical subject of this arm (tornado plots).
    sensitivity_parameters : sequence of str, optional
        Parameters of the sensitivity analysis (default: all).
    sigmoid : bool
        Fit sigmoid Emax (free Hill coefficient) instead of Emax.
    settings : SolverSettings, optional
    source : str, optional
        File the scenario was read from.
    uncertainty : FitResult, PopulationFit, Bootstrap, fit file, draws or ParameterUncertainty, optional
        Parameter uncertainty: :func:`run_scenario` then runs ``n_trials`` replicate trials, each with its own draw
        of the population parameters (:mod:`pkpd.uncertainty`); the fit's estimates become the typical values.
    n_trials : int, optional
        Replicate trials (default 200 with ``uncertainty``).
    trial_success : float
        A trial succeeds for an arm and target when its PTA is at least this (default 0.8).
    same_population : bool
        Every trial simulates the same virtual subjects (default: a new population per trial).

    Raises
    ------
    PkpdError
        No arms, duplicate names, an endpoint on an unknown output, a target on an unknown endpoint, an unknown
        parameter, an empty population (each message says where and how to fix it).
    UnitError
        A threshold or target value in a unit that does not convert to the output's or endpoint's unit.
    DosingError
        An arm without doses, a dose unit the model's dose target cannot take, per-kg doses without weights.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.metrics import Endpoint
    >>> sc = Scenario(pkpd.load_model("msc_salvadori"),
    ...               arms=[Arm("1e6/kg", pkpd.Dose(1e6, "cell/kg")), Arm("4e6/kg", pkpd.Dose(4e6, "cell/kg"))],
    ...               endpoints=[Endpoint("IL10", "auc", start=0, end=168)],
    ...               targets=[Target("IL10_AUC_0_168", ">=", 1.5, "ng*h/mL")],
    ...               population=GivenPopulation(covariates={"WT": 70}))
    >>> res = run_scenario(sc)
    >>> res.attainment[["arm", "probability"]].to_numpy().tolist()
    [['1e6/kg', 0.0], ['4e6/kg', 1.0]]
    """

    model: Model
    arms: Sequence[Arm]
    endpoints: Sequence[Endpoint]
    targets: Sequence[Target] = ()
    population: object = None
    params: Mapping[str, float] = field(default_factory=dict)
    times: object = None
    seed: int | None = None
    name: str = "scenario"
    description: str = ""
    sensitivity_arm: str | None = None
    sensitivity_parameters: Sequence[str] | None = None
    sigmoid: bool = False
    settings: object = None
    source: str | None = None
    uncertainty: object = None
    n_trials: int | None = None
    trial_success: float = 0.8
    same_population: bool = False

    def __post_init__(self):
        where = f"scenario {self.name!r}"
        if not isinstance(self.model, Model):
            raise PkpdError(f"{where}: model must be a pkpd Model (pkpd.load_model(...)); got "
                            f"{type(self.model).__name__}")
        if not isinstance(self.sigmoid, bool):
            raise PkpdError(f"{where}: sigmoid must be true or false; got {self.sigmoid!r:.80}")
        m = self.model
        arms = tuple(self.arms)
        if not arms:
            raise PkpdError(f"{where}: no arms; give at least one Arm (a dose level and schedule)")
        for i, a in enumerate(arms):
            if not isinstance(a, Arm):
                raise PkpdError(f"{where}: arms[{i}] must be an Arm; got {type(a).__name__}")
        _unique([a.name for a in arms], f"{where}: arm")
        pop = self.population if self.population is not None else GivenPopulation()
        for attr in ("n", "sample", "typical_covariates", "describe"):
            if not hasattr(pop, attr):
                raise PkpdError(f"{where}: population must have n, sample(model, rng), typical_covariates(model) and "
                                f"describe() (e.g. LogNormalPopulation); {type(pop).__name__} has no {attr!r}")
        if not (isinstance(pop.n, numbers.Integral) and pop.n >= 1):
            raise PkpdError(f"{where}: the population is empty (n = {pop.n!r}); give at least one subject")
        if hasattr(pop, "check"):
            pop.check(m)
        params = dict(self.params or {})
        for k in params:
            if k not in m.parameter_names:
                raise PkpdError(f"{where} params: model {m.name!r} has no parameter {k!r}."
                                + did_you_mean(k, m.parameter_names))
        typical = m.with_parameters(**params) if params else m
        for a in arms:
            if a.control:
                continue
            try:
                tgt = m.dose_target(a.target)
            except PkpdError as err:
                raise DosingError(f"arm {a.name!r}: {err}") from None
            from . import units as un

            try:
                un.convert(a.dose.base_unit, tgt.unit)
            except un.UnitCheckError:
                raise DosingError(f"arm {a.name!r}: dose unit {a.dose.unit!r} does not match dose target "
                                  f"{tgt.name!r} of model {m.name!r}, which takes {tgt.unit!r}"
                                  + (" (per kg)" if a.dose.per_kg else "") + ".") from None
            if a.dose.per_kg and "WT" not in getattr(pop, "given_covariates", set()):
                raise DosingError(f"arm {a.name!r}: doses {a.dose.unit} are per kg, but the population gives no "
                                  "body weight; add covariates={'WT': 70} (or covariate_ranges) to the population.")
        eps = tuple(self.endpoints)
        if not eps:
            raise PkpdError(f"{where}: no endpoints; give at least one Endpoint, e.g. Endpoint('IL10', 'auc')")
        for i, ep in enumerate(eps):
            if not isinstance(ep, Endpoint):
                raise PkpdError(f"{where}: endpoints[{i}] must be a pkpd.metrics.Endpoint; got {type(ep).__name__}")
        _unique([ep.name for ep in eps], f"{where}: endpoint")
        checked = tuple(ep.for_model(m) for ep in eps)
        units = {ep.name: ep.unit(m.unit_of(ep.output), m.time_unit) for ep in checked}
        targets = tuple(self.targets)
        for i, tg in enumerate(targets):
            if not isinstance(tg, Target):
                raise PkpdError(f"{where}: targets[{i}] must be a Target; got {type(tg).__name__}")
            if tg.endpoint not in units:
                raise PkpdError(f"target {tg.name!r}: no endpoint {tg.endpoint!r} in {where}. Targets name an "
                                "endpoint; declare it first." + did_you_mean(tg.endpoint, units))
            tg.in_unit(units[tg.endpoint])
        _unique([t.name for t in targets], f"{where}: target")
        if self.times is not None:
            try:  # a copy: a view would follow later changes of the caller's array, past the checks below
                t = np.array(self.times, dtype=float).reshape(-1)
            except (TypeError, ValueError):
                raise PkpdError(f"{where}: times must be numbers [{m.time_unit}]; got {self.times!r}") from None
            if t.size == 0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
                raise PkpdError(f"{where}: times must be finite and strictly increasing; got {self.times!r}")
            t.setflags(write=False)
            object.__setattr__(self, "times", t)
        if self.sensitivity_arm is not None and self.sensitivity_arm not in [a.name for a in arms]:
            raise PkpdError(f"{where}: sensitivity_arm {self.sensitivity_arm!r} is not an arm."
                            + did_you_mean(str(self.sensitivity_arm), [a.name for a in arms]))
        if self.sensitivity_parameters is not None:
            for p in self.sensitivity_parameters:
                if p not in m.parameter_names:
                    raise PkpdError(f"{where} sensitivity: model {m.name!r} has no parameter {p!r}."
                                    + did_you_mean(str(p), m.parameter_names))
            object.__setattr__(self, "sensitivity_parameters", tuple(self.sensitivity_parameters))
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
                                      or self.seed < 0):
            raise PkpdError(f"{where}: seed must be a non-negative integer; got {self.seed!r}")
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "endpoints", eps)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "population", pop)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "_checked", (checked, units, typical))
        if self.uncertainty is not None:   # parameter uncertainty: replicate trials (pkpd.uncertainty)
            from .uncertainty import as_uncertainty, check_scenario_uncertainty, check_trials

            n_trials, success = check_trials(200 if self.n_trials is None else self.n_trials, self.trial_success,
                                             where)
            unc = as_uncertainty(self.uncertainty, model=m)
            check_scenario_uncertainty(self, unc)
            object.__setattr__(self, "uncertainty", unc)
            object.__setattr__(self, "n_trials", n_trials)
            object.__setattr__(self, "trial_success", success)

    @property
    def typical_model(self) -> Model:
        """The model with the scenario's typical parameter values."""
        return self._checked[2]

    @property
    def endpoint_units(self) -> dict[str, str]:
        """Unit of each endpoint."""
        return dict(self._checked[1])

    def __repr__(self) -> str:
        return (f"Scenario({self.name!r}: model {self.model.name!r}, {len(self.arms)} arms, "
                f"{self.population.n} subject(s), {len(self.endpoints)} endpoints, {len(self.targets)} targets)")


def _unique(names: list[str], what: str) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise PkpdError(f"{what} names must be unique; {n!r} is used twice. Rename one of them.")
        seen.add(n)


# ------------------------------------------------------------------------------------------------ dose-response
@dataclass(frozen=True, eq=False)
class DoseResponseFit:
    r"""An Emax or sigmoid-Emax fit of a response against dose (see :func:`fit_dose_response`).

    Attributes
    ----------
    e0, emax, ed50, hill : float
        Estimates [response unit], [response unit], [dose unit], [1] (hill = 1 for Emax).
    ed50_ci, ed90_ci : tuple[float, float]
        Confidence intervals at ``level`` [dose unit] (NaN when the covariance is not available).
    ed90 : float
        :math:`ED_{50} \cdot 9^{1/h}` [dose unit].
    se : dict[str, float]
        Standard errors of ``e0``, ``emax``, ``log_ed50`` and ``hill`` (sigmoid only).
    covariance : ndarray or None
        Of (e0, emax, log_ed50[, hill]).
    sigmoid : bool
    level : float
    n : int
        Points fitted.
    dose_range : tuple[float, float]
        Smallest and largest positive dose fitted.
    converged : bool
    message : str
        Why the fit or its intervals are not to be trusted, or "" when all is well.
    ed50_flag, ed90_flag : str
        What a reader must know before using the value, shown next to it in reports: ``"flat"`` (the response
        does not change with dose: the F-test of the fit against a constant does not reject at 1 - ``level``, so
        no ED is determined),
        ``"ill-determined"`` (its CI spans more than :data:`ILL_DETERMINED_RATIO`-fold, or is not available),
        ``"extrapolated"`` (outside the doses tested), or ``""``.
    """

    e0: float
    emax: float
    ed50: float
    hill: float
    ed50_ci: tuple
    ed90: float
    ed90_ci: tuple
    se: dict
    covariance: object = field(repr=False)
    sigmoid: bool = False
    level: float = 0.95
    n: int = 0
    dose_range: tuple = (math.nan, math.nan)
    converged: bool = True
    message: str = ""
    ed50_flag: str = ""
    ed90_flag: str = ""

    def predict(self, doses) -> np.ndarray:
        """The fitted curve at ``doses`` [dose unit]."""
        d = np.asarray(doses, dtype=float)
        return self.e0 + self.emax * _frac(d, self.ed50, self.hill)

    def band(self, doses) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise confidence band of the curve (delta method), (lower, upper) at ``doses``."""
        d = np.asarray(doses, dtype=float)
        mid = self.predict(d)
        if self.covariance is None:
            return np.full_like(mid, np.nan), np.full_like(mid, np.nan)
        f = _frac(d, self.ed50, self.hill)
        # D / ED50 overflows to infinity for an ED50 far below D (5e-324, the limit ED50 -> 0): f is 1 there, lr unused
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            lr = np.where(d > 0, np.log(np.where(d > 0, d, 1.0) / self.ed50), 0.0)
        w = f * (1 - f)
        cols = [np.ones_like(d), f, -self.emax * self.hill * w]
        if self.sigmoid:
            # where f is 0 or 1, ln(D / ED50) may be infinite; the limit of f (1 - f) ln(D / ED50) is 0 there
            cols.append(self.emax * w * np.where(w > 0, lr, 0.0))
        g = np.stack(cols, axis=-1)
        var = np.einsum("...i,ij,...j->...", g, np.asarray(self.covariance), g)
        z = _z(self.level)
        half = z * np.sqrt(np.maximum(var, 0.0))
        return mid - half, mid + half

    def __repr__(self) -> str:
        kind = "sigmoid Emax" if self.sigmoid else "Emax"
        lo, hi = self.ed50_ci
        note = f"; {self.message}" if self.message else ""
        return (f"DoseResponseFit({kind}: E0 {self.e0:.4g}, Emax {self.emax:.4g}, ED50 {self.ed50:.4g} "
                f"[{lo:.4g}, {hi:.4g}], ED90 {self.ed90:.4g}, hill {self.hill:.3g}, n {self.n}{note})")


def _frac(d, ed50, hill):
    d = np.asarray(d, dtype=float)
    ed50 = ed50 + 0.0  # -0.0 is 0.0: D / -0.0 would be -inf, and a non-integer power of it NaN
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        r = np.where(d > 0, (np.where(d > 0, d, 1.0) / ed50) ** hill, 0.0)
        return np.where(np.isinf(r), 1.0, r / (1.0 + r))


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def fit_dose_response(doses, responses, *, sigmoid: bool = False, level: float = 0.95) -> DoseResponseFit:
    r"""Fit :math:`E = E_0 + E_{max} D^h / (ED_{50}^h + D^h)` to responses by least squares (lmfit).

    Parameters
    ----------
    doses : array_like, shape (n,)
        Dose of each point [dose unit], >= 0 (0 for controls).
    responses : array_like, shape (n,)
        Response of each point (e.g. an endpoint per virtual subject); NaN points are dropped, and so are
        infinite ones (a median time to event not reached), which ``message`` then counts.
    sigmoid : bool
        Estimate the Hill coefficient h (bounded to [0.1, 10]); otherwise h = 1.
    level : float
        Confidence level of the ED50/ED90 intervals.

    Returns
    -------
    DoseResponseFit
        Never raises for a poor fit: ``converged`` and ``message`` say what went wrong (e.g. an ED50 outside the
        doses tested, a flat response, no covariance), and the intervals are then NaN or flagged.

    Raises
    ------
    PkpdError
        Fewer than 3 distinct positive doses, negative doses, or arrays of different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.repeat([0.0, 1, 3, 10, 30, 100], 10)
    >>> rng = np.random.default_rng(0)
    >>> y = 5 + 40 * d / (8 + d) + rng.normal(0, 2, d.size)
    >>> fit = fit_dose_response(d, y)
    >>> round(fit.ed50, 1), fit.ed50_ci[0] < 8 < fit.ed50_ci[1]
    (7.7, True)
    """
    import lmfit

    d = np.asarray(doses, dtype=float).reshape(-1)
    y = np.asarray(responses, dtype=float).reshape(-1)
    if d.shape != y.shape:
        raise PkpdError(f"fit_dose_response: doses and responses differ in length ({d.size} vs {y.size})")
    ok = np.isfinite(d) & np.isfinite(y)
    n_infinite = int(np.count_nonzero(np.isfinite(d) & np.isinf(y)))
    d, y = d[ok], y[ok]
    if np.any(d < 0):
        raise PkpdError("fit_dose_response: doses must be >= 0")
    levels = np.unique(d[d > 0])
    if levels.size < MIN_DOSE_LEVELS:
        raise PkpdError(f"fit_dose_response: need at least {MIN_DOSE_LEVELS} distinct positive dose levels; got "
                        f"{levels.size}. Add dose levels to the scenario")
    level = check_level(level, "fit_dose_response")
    lo_d, hi_d = float(levels[0]), float(levels[-1])
    by_level = [float(np.mean(y[d == v])) for v in levels]
    low = float(np.mean(y[d == 0])) if np.any(d == 0) else by_level[0]
    span = by_level[-1] - low
    scale = max(float(np.std(y)), abs(span))
    if not scale > 0:  # a flat response: any positive scale will do
        scale = max(abs(float(np.mean(y))), 1.0)
    params = lmfit.Parameters()
    params.add("e0", value=low)
    params.add("emax", value=span if span != 0 else scale)
    params.add("log_ed50", value=0.5 * (math.log(lo_d) + math.log(hi_d)), min=math.log(lo_d) - math.log(1e3),
               max=math.log(hi_d) + math.log(1e3))
    params.add("hill", value=1.0, min=0.1, max=10.0, vary=bool(sigmoid))

    def residual(p):
        v = p.valuesdict()
        return (v["e0"] + v["emax"] * _frac(d, math.exp(v["log_ed50"]), v["hill"]) - y) / scale

    best = None
    for start in np.linspace(math.log(lo_d), math.log(hi_d), 4):  # a few ED50 starts: Emax fits have local minima
        params["log_ed50"].value = float(start)
        # a degenerate (flat) response can overflow lmfit's Hessian; the covariance check below catches it
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = lmfit.minimize(residual, params.copy(), method="least_squares")
        if best is None or res.chisqr < best.chisqr:
            best = res
    v = best.params.valuesdict()
    names = ["e0", "emax", "log_ed50"] + (["hill"] if sigmoid else [])
    cov = None
    if best.covar is not None and np.all(np.isfinite(best.covar)):
        # lmfit scales the covariance by the reduced chi-square, so dividing the residuals by `scale` (for the
        # optimiser's tolerances) leaves it in the parameters' own units
        cov = np.array(best.covar, dtype=float)
        order = [best.var_names.index(nm) for nm in names]
        cov = cov[np.ix_(order, order)]
    ed50, hill = math.exp(v["log_ed50"]), float(v["hill"])
    ed90 = ed50 * 9.0 ** (1.0 / hill)
    z = _z(level)
    messages = []
    if n_infinite:    # e.g. median times to event not reached: the curve describes the other points only
        messages.append(f"{n_infinite} infinite response{'s' if n_infinite > 1 else ''} (e.g. a median time to event "
                        "not reached) left out of the fit")
    se = {nm: math.nan for nm in names}
    ed50_ci = ed90_ci = (math.nan, math.nan)
    if cov is not None:
        se = {nm: float(math.sqrt(max(cov[i, i], 0.0))) for i, nm in enumerate(names)}
        s = se["log_ed50"]
        half = min(z * s, 700.0)  # a flat response can have a huge SE of log ED50: its interval is then (0, inf)
        ed50_ci = (ed50 * math.exp(-half), ed50 * math.exp(half))
        # delta method on log ED90 = log ED50 + ln 9 / h
        if sigmoid:
            g = np.array([1.0, -math.log(9.0) / hill**2])
            sub = cov[np.ix_([2, 3], [2, 3])]
            s90 = float(math.sqrt(max(g @ sub @ g, 0.0)))
        else:
            s90 = s
        half = min(z * s90, 700.0)
        ed90_ci = (ed90 * math.exp(-half), ed90 * math.exp(half))
    else:
        messages.append("no covariance (flat or over-parameterised response): intervals not available")
    converged = bool(best.success)
    if not converged:
        messages.append(f"the optimiser did not converge ({best.message})")
    bounds = best.params["log_ed50"]
    if v["log_ed50"] <= bounds.min + 1e-6 or v["log_ed50"] >= bounds.max - 1e-6:
        messages.append("ED50 at the edge of its search range: the doses do not bracket it")
    elif not _within_doses(ed50, lo_d, hi_d):
        messages.append(f"ED50 outside the doses tested ({_g(lo_d)}-{_g(hi_d)}): an extrapolation")
    flat = _is_flat(y, best.residual * scale, len(names), 1 - level)
    if flat:
        messages.append("flat dose-response: the fit is no better than a constant (F-test), so no ED50 or ED90 is "
                        "determined")
    flags = [_ed_flag(ed, ci, lo_d, hi_d, flat) for ed, ci in ((ed50, ed50_ci), (ed90, ed90_ci))]
    if flags[1] == "extrapolated" and _within_doses(ed50, lo_d, hi_d):
        messages.append(f"ED90 outside the doses tested ({_g(lo_d)}-{_g(hi_d)}): an extrapolation")
    return DoseResponseFit(e0=float(v["e0"]), emax=float(v["emax"]), ed50=ed50, hill=hill, ed50_ci=ed50_ci,
                           ed90=ed90, ed90_ci=ed90_ci, se=se, covariance=cov, sigmoid=bool(sigmoid),
                           level=float(level), n=int(d.size), dose_range=(lo_d, hi_d), converged=converged,
                           message="; ".join(messages), ed50_flag=flags[0], ed90_flag=flags[1])


def _is_flat(y: np.ndarray, residuals: np.ndarray, k: int, alpha: float) -> bool:
    """Whether the response does not change with dose: the F-test of the fitted curve (k parameters) against a
    constant does not reject at ``alpha`` (or the responses do not vary at all)."""
    from scipy.stats import f as f_dist

    n = y.size
    rss0 = float(np.sum((y - y.mean()) ** 2))
    rss1 = float(np.sum(np.asarray(residuals, dtype=float) ** 2))
    if not rss0 > 1e-12 * max(float(np.sum(y ** 2)), 1e-300) or n <= k:
        return True
    if rss1 <= 0:
        return False
    stat = ((rss0 - rss1) / (k - 1)) / (rss1 / (n - k))
    return not f_dist.sf(stat, k - 1, n - k) < alpha


#: An ED50 or ED90 whose confidence interval spans more than this ratio (high/low) is flagged "ill-determined".
ILL_DETERMINED_RATIO = 100.0


def _ed_flag(ed: float, ci: tuple, lo_dose: float, hi_dose: float, flat: bool) -> str:
    """How far an effective dose can be trusted (see DoseResponseFit.ed50_flag)."""
    if flat:
        return "flat"
    low, high = ci
    if not (math.isfinite(low) and math.isfinite(high) and low > 0) or high / low > ILL_DETERMINED_RATIO:
        return "ill-determined"
    if not _within_doses(ed, lo_dose, hi_dose):
        return "extrapolated"
    return ""


def _within_doses(ed: float, lo_dose: float, hi_dose: float) -> bool:
    """Whether an effective dose lies within the doses tested, up to a relative rounding tolerance of 1e-9 (a fit
    of an ED50 at the highest dose returns it as 100.00000000000004): the flags and the messages both use it."""
    return lo_dose * (1 - 1e-9) <= ed <= hi_dose * (1 + 1e-9)


def _wilson(k: np.ndarray, n: int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    z = _z(level)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # exactly 0 (1) when no (every) subject attains the target: the formula gives it only up to rounding
    lo = np.where(k == 0, 0.0, np.clip(centre - half, 0, 1))
    hi = np.where(k == n, 1.0, np.clip(centre + half, 0, 1))
    return lo, hi


# ------------------------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False)
class ScenarioResult:
    """The result of :func:`run_scenario`. Every table is a pandas DataFrame.

    Attributes
    ----------
    scenario : Scenario
    seed : int
        The seed used (drawn and recorded when the scenario gave none: rerun with it to reproduce).
    table : DataFrame
        Tidy: ``arm, ID, endpoint, value, unit`` (one row per arm x subject x endpoint).
    summary : DataFrame
        ``arm, endpoint, unit, n, median, p5, p95, mean`` (failed subjects excluded from n; a subject whose
        median time to event is not reached within the window counts as ``inf``, so a percentile above the
        subjects who reach it, and the mean, are ``inf``).
    attainment : DataFrame
        ``arm, group, dose, dose_unit, target, n, n_met, probability, ci_low, ci_high`` (Wilson 95 %).
    dose_response : DataFrame
        ``group, endpoint, unit, dose_unit, model, E0, Emax, ED50, ED50_low, ED50_high, ED90, ED90_low,
        ED90_high, hill, n, converged, ED50_flag, ED90_flag, note`` for each schedule with >= 3 dose levels
        (flags: see :class:`DoseResponseFit`).
    fits : dict[(group, endpoint), DoseResponseFit]
    arms : DataFrame
        The arms (dose, unit, schedule, group).
    population : DataFrame
        ``ID`` and the varying parameters and covariates of each virtual subject.
    times : ndarray (n_times,)
        [model time unit], read-only.
    time_course : dict[arm, dict[output, ndarray (3, n_times)]]
        5th, 50th and 95th percentiles across subjects of every output.
    groups : dict[arm name, str]
        The schedule group of each arm ("untreated" for controls).
    sensitivity : LocalSensitivity or None
    n_failed : int
        Subject-arm simulations that failed (only with ``SolverSettings(on_failure="mark")``).
    clinical : DataFrame
        The clinical endpoints (``probability_at``, ``survival_at``, ``median_time_to_event``,
        ``expected_count`` of endpoint outputs, :mod:`pkpd.endpoints`) per arm, for the arm as a whole:
        ``arm, group, dose, dose_unit, endpoint, unit, description, value, ci_low, ci_high, n``. ``value`` is the
        expected response rate, survival or count of the arm (the mean of its subjects' probabilities or expected
        values) and, for the median time to event, the median of the arm's survival curve (the mean of its
        subjects' curves; ``inf`` when it stays above 0.5); the interval is the Monte-Carlo error of ``n`` virtual
        subjects (normal approximation; a bootstrap over subjects for the median).
    trials : TrialSummary or None
        With parameter uncertainty: the replicate trials (PTA median and between-trial interval, probability of
        trial success, dose-response bands; :class:`pkpd.uncertainty.TrialSummary`). The other tables are then
        the run at the estimates (the nominal trial).
    """

    scenario: Scenario
    seed: int
    table: object = field(repr=False)
    summary: object = field(repr=False)
    attainment: object = field(repr=False)
    dose_response: object = field(repr=False)
    fits: dict = field(repr=False)
    arms: object = field(repr=False)
    population: object = field(repr=False)
    times: np.ndarray = field(repr=False)
    time_course: dict = field(repr=False)
    groups: dict = field(repr=False)
    sensitivity: object = field(repr=False, default=None)
    n_failed: int = 0
    clinical: object = field(repr=False, default=None)
    trials: object = field(repr=False, default=None)

    @property
    def units(self) -> dict[str, str]:
        """Unit of each endpoint."""
        return self.scenario.endpoint_units

    def lowest_dose(self, probability: float = 0.8):
        """Per schedule group and target, the lowest dose whose PTA is at least ``probability``.

        Returns
        -------
        DataFrame
            ``group, target, dose, dose_unit, probability`` (dose NaN and the best PTA reached when no dose
            attains it, NaN where every simulation of the schedule's arms failed).
        """
        import pandas as pd

        rows = []
        att = self.attainment[self.attainment["group"] != "untreated"]
        for (group, target), part in att.groupby(["group", "target"], sort=False):
            part = part.sort_values("dose")
            ok = part[part["probability"] >= probability]
            if len(ok):
                r = ok.iloc[0]
                rows.append({"group": group, "target": target, "dose": r["dose"], "dose_unit": r["dose_unit"],
                             "probability": r["probability"]})
            else:
                # the best PTA reached; none (NaN) where every simulation of the group's arms failed (n 0)
                reached = part["probability"].notna()
                best = part.loc[part["probability"].idxmax()] if reached.any() else part.iloc[0]
                rows.append({"group": group, "target": target, "dose": math.nan, "dose_unit": best["dose_unit"],
                             "probability": best["probability"]})
        return pd.DataFrame(rows, columns=["group", "target", "dose", "dose_unit", "probability"])

    def __repr__(self) -> str:
        sc = self.scenario
        fail = f"; {self.n_failed} FAILED simulations" if self.n_failed else ""
        trials = f", {self.trials.n_trials} trials under parameter uncertainty (.trials)" if self.trials else ""
        return (f"ScenarioResult({sc.name!r}: {len(sc.arms)} arms x {sc.population.n} subjects x "
                f"{len(sc.endpoints)} endpoints, seed {self.seed}{fail}{trials}; see .summary, .attainment, "
                ".dose_response)")

    def _repr_html_(self) -> str:
        parts = [f"<div><b>Scenario</b> {html.escape(self.scenario.name)}: model "
                 f"{html.escape(self.scenario.model.name)} v{html.escape(self.scenario.model.version)}, "
                 f"{len(self.scenario.arms)} arms, {self.scenario.population.n} subjects, seed {self.seed}"]
        if self.n_failed:
            parts.append(f"<p style='color:#b00'><b>{self.n_failed} simulations failed</b></p>")
        if len(self.attainment):
            parts.append("<p>Probability of target attainment</p>")
            parts.append(self.attainment[["arm", "target", "probability", "ci_low", "ci_high"]].to_html(
                index=False, float_format=lambda x: f"{x:.3g}"))
        if self.clinical is not None and len(self.clinical):
            parts.append("<p>Clinical endpoints by arm (expected value for the arm, 95 % Monte-Carlo interval)</p>")
            parts.append(self.clinical[["arm", "endpoint", "unit", "value", "ci_low", "ci_high"]].to_html(
                index=False, float_format=lambda x: f"{x:.3g}"))
        parts.append("<p>Endpoints by arm (median, 5-95 %)</p>")
        parts.append(self.summary[["arm", "endpoint", "unit", "median", "p5", "p95"]].to_html(
            index=False, float_format=lambda x: f"{x:.4g}"))
        return "".join(parts) + "</div>"


def run_scenario(scenario: Scenario, *, seed: int | None = None, client=None, chunk_size: int = 2_000,
                 progress: bool | None = None, uncertainty=None, n_trials: int | None = None,
                 trial_success: float | None = None, same_population: bool | None = None) -> ScenarioResult:
    """Run a scenario: simulate every arm for the same virtual subjects and compute endpoints, PTA and ED50/ED90.

    Parameters
    ----------
    scenario : Scenario
    seed : int, optional
        Overrides ``scenario.seed``. With neither, a seed is drawn from the operating system and recorded in the
        result (``result.seed``), so any run can be reproduced.
    client : dask.distributed Client, Dask cluster or scheduler address (str), optional
        Simulate the arms x subjects grid on a Dask cluster (``pkpd[distributed]``), ``chunk_size`` simulated
        subjects per task, with a progress bar (``progress``). The population is drawn here and every simulated
        subject is independent of the chunking, so the result is identical to the local run. Without a client
        the grid is one batched call on all cores.
    uncertainty : FitResult, PopulationFit, Bootstrap, fit file, draws or ParameterUncertainty, optional
        Parameter uncertainty (overrides the scenario's): the tables are those of the run at the estimates, and
        ``result.trials`` holds ``n_trials`` replicate trials, each drawing its parameters and then its population
        (:mod:`pkpd.uncertainty`): PTA median and 90 % between-trial interval, probability of trial success,
        dose-response bands. A zero covariance gives the run at the estimates, bit for bit, in every trial.
    n_trials, trial_success, same_population
        Override the scenario's (see :class:`Scenario`).

    Returns
    -------
    ScenarioResult

    Raises
    ------
    SimulationError
        A solver failure (unless the scenario's settings say ``on_failure="mark"``).

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.metrics import Endpoint
    >>> sc = Scenario(pkpd.load_model("msc_sepsis"),
    ...               arms=dose_ranging_arms("single", [1e6, 3e6, 1e7], "cell/kg"),
    ...               endpoints=[Endpoint("TNF", "change_from_untreated", time=48, relative=True)],
    ...               population=LogNormalPopulation(20, omega={"e_max": 0.3}, covariates={"WT": 70}), seed=7)
    >>> res = run_scenario(sc)
    >>> res.summary["median"].round(1).tolist()
    [-17.3, -30.1, -42.8]
    """
    if not isinstance(scenario, Scenario):
        raise PkpdError(f"run_scenario: expected a Scenario; got {type(scenario).__name__}")
    if seed is None:
        seed = scenario.seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise PkpdError(f"run_scenario: seed must be a non-negative integer; got {seed!r}")
    if uncertainty is not None or scenario.uncertainty is not None:
        from .uncertainty import run_trials

        sc = scenario
        if uncertainty is not None or n_trials is not None or trial_success is not None:
            sc = replace(scenario, uncertainty=uncertainty if uncertainty is not None else scenario.uncertainty,
                         n_trials=n_trials if n_trials is not None else scenario.n_trials,
                         trial_success=trial_success if trial_success is not None else scenario.trial_success)
        same = scenario.same_population if same_population is None else bool(same_population)
        return run_trials(sc, sc.uncertainty, seed=int(seed), n_trials=sc.n_trials, trial_success=sc.trial_success,
                          same_population=same, client=client, chunk_size=chunk_size, progress=progress)
    return _run_scenario(scenario, int(seed), client, chunk_size, progress)


def _drawn_numbers(drawn: Mapping, kind: str, name: str) -> dict[str, np.ndarray]:
    """A population's draws (``kind`` "parameter" or "covariate") as float arrays; values that are not numbers (a
    population of the user's own) are refused naming the scenario and the name, not with numpy's bare ValueError."""
    out = {}
    for k, v in drawn.items():
        try:
            out[k] = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise PkpdError(f"scenario {name!r}: the population's {kind} {k!r} must be numbers; "
                            f"got {v!r:.80}") from None
    return out


def _run_scenario(scenario: Scenario, seed: int, client, chunk_size: int, progress, *,
                  dose_response: bool = True) -> ScenarioResult:
    """One run of a scenario without parameter uncertainty (``dose_response=False`` skips the Emax fits: the
    replicate trials of pkpd.uncertainty summarise dose-response over trials instead)."""
    import pandas as pd

    from .compile import compile_model
    from .simulation import simulate

    sc = scenario
    m = sc.model
    typical = sc.typical_model
    checked, units, _ = sc._checked
    rng = np.random.default_rng(int(seed))
    varying, covs = sc.population.sample(typical, rng)
    n = sc.population.n
    base = {p.name: np.full(n, p.value) for p in typical.parameters}
    subj = base | _drawn_numbers(varying, "parameter", sc.name)
    from .sensitivity import endpoint_times

    grid = endpoint_times(checked, sc.times)
    arms = sc.arms
    untreated = any(ep.needs_untreated for ep in checked)
    blocks = len(arms) + (1 if untreated else 0)
    regimens = [a.regimen for a in arms]
    batch_regimens = [r for r in regimens for _ in range(n)]
    if untreated:
        batch_regimens += [Regimen.none()] * n
    batch_params = {k: np.tile(v, blocks) for k, v in subj.items()}
    batch_covs = {k: np.tile(v, blocks) for k, v in _drawn_numbers(covs, "covariate", sc.name).items()}
    cm = compile_model(m)
    if client is None:
        sim = simulate(cm, batch_regimens, grid, params=batch_params, covariates=batch_covs or None,
                       settings=sc.settings, states=False, outcomes=False)
    else:
        sim = _simulate_on_cluster(cm, batch_regimens, grid, batch_params, batch_covs, sc.settings, client,
                                   chunk_size, progress)
    ids = np.arange(1, n + 1)
    rows_arm, rows_id, rows_ep, rows_val, rows_unit = [], [], [], [], []
    values: dict[tuple[str, str], np.ndarray] = {}
    ref = slice(len(arms) * n, (len(arms) + 1) * n)
    for i, arm in enumerate(arms):
        rows = slice(i * n, (i + 1) * n)
        for ep in checked:
            y = sim[ep.series]
            v = ep.compute(grid, y[rows], y[ref] if ep.needs_untreated else None)
            values[(arm.name, ep.name)] = v
            rows_arm += [arm.name] * n
            rows_id.append(ids)
            rows_ep += [ep.name] * n
            rows_val.append(v)
            rows_unit += [units[ep.name]] * n
    table = pd.DataFrame({"arm": rows_arm, "ID": np.concatenate(rows_id), "endpoint": rows_ep,
                          "value": np.concatenate(rows_val), "unit": rows_unit})
    groups = {a.name: a.schedule for a in arms}
    clinical = _clinical(arms, checked, units, values, groups, sim, grid, n, m, int(seed))
    summary = _summary(arms, checked, units, values)
    attainment = _attainment(arms, sc.targets, units, values, groups)
    if dose_response:
        dr_table, fits = _dose_response(arms, checked, units, values, groups, sc.sigmoid)
    else:
        dr_table, fits = _dose_response([], checked, units, values, groups, sc.sigmoid)
    arms_frame = pd.DataFrame([a.as_dict() | {"group": groups[a.name]} for a in arms])
    population = pd.DataFrame({"ID": ids, **{k: np.asarray(v) for k, v in varying.items()},
                               **{k: np.asarray(v) for k, v in covs.items()}})
    time_course = {}
    for i, arm in enumerate(arms):
        rows = slice(i * n, (i + 1) * n)
        with np.errstate(invalid="ignore"):
            time_course[arm.name] = {o: _percentiles(sim[o][rows]) for o in m.output_names}
    if untreated:
        with np.errstate(invalid="ignore"):
            time_course["untreated (reference)"] = {o: _percentiles(sim[o][ref]) for o in m.output_names}
    sens = None
    if sc.sensitivity_arm is not None:
        from .sensitivity import local_sensitivity

        arm = next(a for a in arms if a.name == sc.sensitivity_arm)
        sens = local_sensitivity(cm, arm.regimen, checked, parameters=sc.sensitivity_parameters, times=grid,
                                 params={p.name: p.value for p in typical.parameters},
                                 covariates=sc.population.typical_covariates(typical) or None, settings=sc.settings)
    grid = np.array(grid)
    grid.setflags(write=False)
    return ScenarioResult(scenario=sc, seed=int(seed), table=table, summary=summary, attainment=attainment,
                          dose_response=dr_table, fits=fits, arms=arms_frame, population=population, times=grid,
                          time_course=time_course, groups=groups, sensitivity=sens,
                          n_failed=int(np.count_nonzero(sim.status)), clinical=clinical)


class _Outputs(dict):
    """Output name -> (n, n_times) values and ``status``, as a Simulation gives them (private)."""

    status: np.ndarray


def _grid_task(job, bounds) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from .simulation import simulate

    cm, regimens, grid, params, covs, settings = job
    a, b = bounds
    sim = simulate(cm, regimens[a:b], grid, params={k: v[a:b] for k, v in params.items()},
                   covariates={k: v[a:b] for k, v in covs.items()} or None, settings=settings, states=False,
                   outcomes=False)
    return sim.status, {o: np.ascontiguousarray(sim[o]) for o in cm.model.output_names}


def _simulate_on_cluster(cm, regimens, grid, params, covs, settings, client, chunk_size, progress) -> _Outputs:
    from ._parallel import check_chunk_size, chunk_bounds, map_tasks

    n = len(regimens)
    bounds = chunk_bounds(n, check_chunk_size(chunk_size))
    parts = map_tasks(_grid_task, bounds, shared=(cm, regimens, grid, params, covs, settings), client=client,
                      progress=progress, description=f"{cm.model.name}: run_scenario", unit="subject",
                      weights=[b - a for a, b in bounds])
    out = _Outputs({o: np.concatenate([p[1][o] for p in parts]) for o in cm.model.output_names})
    out.status = np.concatenate([p[0] for p in parts])
    return out


def _percentiles(y: np.ndarray) -> np.ndarray:
    if np.all(np.isnan(y)):
        return np.full((3, y.shape[1]), np.nan)
    return np.nanpercentile(y, (5, 50, 95), axis=0)


def _percentiles_with_inf(values: np.ndarray, qs) -> tuple[float, ...]:
    """numpy's linear percentiles of ``values``, which may hold +inf (a median time not reached in a resample):
    numpy interpolates towards inf as inf - inf = NaN, here a percentile between two values is inf when either is
    (or the lower one when it falls exactly on it), as the order statistics say."""
    if np.all(np.isfinite(values)):
        return tuple(float(x) for x in np.percentile(values, qs))
    a = np.sort(values)
    out = []
    for q in qs:
        pos = q / 100.0 * (a.size - 1)
        i = int(math.floor(pos))
        frac, low, high = pos - i, float(a[i]), float(a[min(i + 1, a.size - 1)])
        out.append(low if frac == 0.0 or low == high else low + frac * (high - low))
    return tuple(out)


def _clinical(arms, endpoints, units, values, groups, sim, grid, n, model, seed):
    """Arm-level values of the clinical endpoints (see ScenarioResult.clinical)."""
    import pandas as pd

    from .metrics import CLINICAL_METRICS, median_time

    cols = ["arm", "group", "dose", "dose_unit", "endpoint", "unit", "description", "value", "ci_low", "ci_high", "n"]
    rows = []
    z = _z(0.95)
    rng = np.random.default_rng(seed)
    for ep in endpoints:
        if ep.metric not in CLINICAL_METRICS:
            continue
        for i, arm in enumerate(arms):
            v = values[(arm.name, ep.name)]
            if ep.metric == "median_time_to_event":
                curves = sim[ep.series][i * n:(i + 1) * n]
                curves = curves[np.all(np.isfinite(curves), axis=1)]
                k = curves.shape[0]
                value = float(median_time(grid, curves.mean(axis=0), end=ep.end)) if k else math.nan
                if k > 1:
                    boot = np.array([median_time(grid, curves[rng.integers(0, k, k)].mean(axis=0), end=ep.end)
                                     for _ in range(200)])
                    lo, hi = _percentiles_with_inf(boot, (2.5, 97.5))
                else:
                    lo = hi = math.nan
            else:
                ok = v[np.isfinite(v)]
                k = ok.size
                value = float(ok.mean()) if k else math.nan
                half = z * float(ok.std(ddof=1)) / math.sqrt(k) if k > 1 else math.nan
                lo, hi = value - half, value + half
                if ep.metric != "expected_count":
                    lo, hi = max(lo, 0.0), min(hi, 1.0)
                else:
                    lo = max(lo, 0.0)
            rows.append({"arm": arm.name, "group": groups[arm.name], "dose": arm.dose_level,
                         "dose_unit": arm.dose_unit or "", "endpoint": ep.name, "unit": units[ep.name],
                         "description": ep.describe(None, model.time_unit), "value": value, "ci_low": lo,
                         "ci_high": hi, "n": int(k)})
    return pd.DataFrame(rows, columns=cols)


def _summary(arms, endpoints, units, values):
    import pandas as pd

    rows = []
    for arm in arms:
        for ep in endpoints:
            v = values[(arm.name, ep.name)]
            ok = v[~np.isnan(v)]             # NaN: a failed subject; inf: a median time not reached, kept in order
            if ok.size:
                p5, med, p95 = _percentiles_with_inf(ok, (5, 50, 95))
                mean = float(np.mean(ok))
            else:
                p5 = med = p95 = mean = math.nan
            rows.append({"arm": arm.name, "endpoint": ep.name, "unit": units[ep.name], "n": int(ok.size),
                         "median": float(med), "p5": float(p5), "p95": float(p95), "mean": mean})
    return pd.DataFrame(rows)


def _attainment(arms, targets, units, values, groups):
    import pandas as pd

    rows = []
    for target in targets:
        t = target.in_unit(units[target.endpoint])
        for arm in arms:
            v = values[(arm.name, t.endpoint)]
            n = int(np.count_nonzero(~np.isnan(v)))
            k = int(np.count_nonzero(t.met(v)))
            lo, hi = _wilson(np.array(k), n) if n else (math.nan, math.nan)
            rows.append({"arm": arm.name, "group": groups[arm.name], "dose": arm.dose_level,
                         "dose_unit": arm.dose_unit or "", "target": target.name, "n": n, "n_met": k,
                         "probability": k / n if n else math.nan, "ci_low": float(lo), "ci_high": float(hi)})
    return pd.DataFrame(rows, columns=["arm", "group", "dose", "dose_unit", "target", "n", "n_met", "probability",
                                       "ci_low", "ci_high"])


def _dose_response(arms, endpoints, units, values, groups, sigmoid):
    import pandas as pd

    cols = ["group", "endpoint", "unit", "dose_unit", "model", "E0", "Emax", "ED50", "ED50_low", "ED50_high", "ED90",
            "ED90_low", "ED90_high", "hill", "n", "converged", "ED50_flag", "ED90_flag", "note"]
    controls = [a for a in arms if a.control]
    families: dict[tuple, list[Arm]] = {}
    for a in arms:
        if not a.control:
            families.setdefault((groups[a.name], a.dose_unit), []).append(a)
    rows, fits = [], {}
    for (group, dose_unit), members in families.items():
        if len({a.dose_level for a in members}) < MIN_DOSE_LEVELS:
            continue
        for ep in endpoints:
            d = np.concatenate([np.full(values[(a.name, ep.name)].size, a.dose_level) for a in members + controls])
            y = np.concatenate([values[(a.name, ep.name)] for a in members + controls])
            fit = fit_dose_response(d, y, sigmoid=sigmoid)
            fits[(group, ep.name)] = fit
            rows.append({"group": group, "endpoint": ep.name, "unit": units[ep.name], "dose_unit": dose_unit,
                         "model": "sigmoid Emax" if sigmoid else "Emax", "E0": fit.e0, "Emax": fit.emax,
                         "ED50": fit.ed50, "ED50_low": fit.ed50_ci[0], "ED50_high": fit.ed50_ci[1], "ED90": fit.ed90,
                         "ED90_low": fit.ed90_ci[0], "ED90_high": fit.ed90_ci[1], "hill": fit.hill, "n": fit.n,
                         "converged": fit.converged, "ED50_flag": fit.ed50_flag, "ED90_flag": fit.ed90_flag,
                         "note": fit.message})
    return pd.DataFrame(rows, columns=cols), fits


# ------------------------------------------------------------------------------------------------ TOML
_TOP = {"scenario", "parameters", "population", "arms", "endpoints", "targets", "sensitivity", "uncertainty"}
_UNCERTAINTY_KEYS = {"from", "n_trials", "success", "omega", "same_population"}
_SCENARIO_KEYS = {"model", "name", "description", "seed", "times", "sigmoid"}
_POP_KEYS = {"n", "omega", "covariates", "covariate_ranges"}
#: Limits of a scenario file (a file is data: it can neither hang pkpd nor take the machine's memory).
MAX_SCENARIO_TIMES = 100_000
MAX_SCENARIO_DOSE_LEVELS = 1_000
MAX_SCENARIO_RUNS = 10_000_000
_ARM_KEYS = {"dose", "doses", "unit", "count", "interval", "start", "duration", "target", "time_unit", "control",
             "color"}
_ENDPOINT_KEYS = {"output", "metric", "start", "end", "time", "baseline_time", "relative", "threshold",
                  "threshold_unit", "method", "category"}
_TARGET_KEYS = {"endpoint", "op", "value", "unit", "name"}
_SENS_KEYS = {"arm", "parameters"}


def _where(file, section) -> str:
    """Where a scenario file's problem is, for messages: the file (or "scenario" for a dict) and its section."""
    return f"{file or 'scenario'}" + (f" [{section}]" if section else "")


def _err(file, section, message) -> PkpdError:
    return PkpdError(f"{_where(file, section)}: {message}")


def _keys(body, allowed: set, file, section, required: Iterable[str] = ()) -> None:
    if not isinstance(body, Mapping):
        raise _err(file, section, f"must be a table of keys; got {body!r}")
    for k in body:
        if k not in allowed:
            raise _err(file, section, f"unknown key {k!r}." + did_you_mean(k, allowed))
    for k in required:
        if k not in body:
            raise _err(file, section, f"missing key {k!r}")


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read a scenario from a TOML file (data only: parsed by an allow-list, never executed).

    The format is shown in the module docstring. ``model`` is a shipped model name or a path to a model file,
    relative to the scenario file.

    Raises
    ------
    PkpdError
        Every problem names the file and section: unknown keys (with close matches), missing keys, and every
        check of :class:`Scenario`, :class:`Arm`, :class:`~pkpd.metrics.Endpoint` and :class:`Target`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> text = '''
    ... [scenario]
    ... model = "pk_1cmt_iv"
    ... [arms.low]
    ... dose = 100
    ... unit = "mg"
    ... [endpoints.AUC]
    ... output = "conc"
    ... metric = "auc"
    ... end = 24
    ... '''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "s.toml"
    ...     _ = path.write_text(text)
    ...     load_scenario(path)
    Scenario('s': model 'pk_1cmt_iv', 1 arms, 1 subject(s), 1 endpoints, 0 targets)
    """
    from .load import MAX_FILE_BYTES

    path = Path(path)
    if not path.is_file():
        raise PkpdError(f"scenario file {str(path)!r} not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise PkpdError(f"{path}: the file is larger than the {MAX_FILE_BYTES / 1e6:.0f} MB a scenario file may have")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise PkpdError(f"{path}: not valid TOML ({err})") from None
    except UnicodeDecodeError as err:
        raise PkpdError(f"{path}: not UTF-8 text ({err.reason})") from None
    return scenario_from_dict(data, file=str(path), default_name=path.stem)


def scenario_from_dict(data: Mapping, *, file: str | None = None, default_name: str = "scenario") -> Scenario:
    """Build a :class:`Scenario` from the parsed TOML tables (the layout of :func:`load_scenario`).

    Examples
    --------
    >>> sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "arms": {"a": {"dose": 100, "unit": "mg"}},
    ...                          "endpoints": {"c": {"output": "conc", "metric": "cmax", "end": 24}}})
    >>> sc.arms[0].regimen
    Regimen(1 dose of 100 mg at t=0 h, bolus)
    """
    from .load import load_model

    _keys(data, _TOP, file, None)
    head = data.get("scenario", {})
    _keys(head, _SCENARIO_KEYS, file, "scenario", required=("model",))
    model_ref = head["model"]
    if not isinstance(model_ref, str):
        raise _err(file, "scenario", f"model must be a model name or a path; got {model_ref!r}")
    if model_ref.endswith(".toml") and file is not None and not Path(model_ref).is_absolute():
        model_ref = str(Path(file).parent / model_ref)
    model = load_model(model_ref)
    times = head.get("times")
    if isinstance(times, Mapping):
        _keys(times, {"start", "stop", "step"}, file, "scenario.times", required=("stop",))
        where = _where(file, "scenario.times")
        start = _finite(where, "start", times.get("start", 0.0))
        stop = _finite(where, "stop", times["stop"])
        step = _finite(where, "step", times.get("step", 1.0), positive=True)
        if stop <= start:
            raise _err(file, "scenario.times", f"stop {stop:g} must be after start {start:g}")
        count = math.floor((stop - start) / step * (1 + 1e-12))
        if count + 1 > MAX_SCENARIO_TIMES:
            raise _err(file, "scenario.times", f"{count + 1:,} output times (more than {MAX_SCENARIO_TIMES:,}); choose "
                                               "a larger step")
        times = start + step * np.arange(count + 1)
    elif times is not None and not isinstance(times, list):
        raise _err(file, "scenario", "times must be {start, stop, step} or a list of times")
    elif times is not None and len(times) > MAX_SCENARIO_TIMES:
        raise _err(file, "scenario", f"{len(times):,} output times (more than {MAX_SCENARIO_TIMES:,})")

    pop = data.get("population")
    if pop is None:
        population = None
    else:
        _keys(pop, _POP_KEYS, file, "population")
        for sub in ("omega", "covariates", "covariate_ranges"):
            if sub in pop and not isinstance(pop[sub], Mapping):
                raise _err(file, f"population.{sub}", "must be a table of name = value")
        try:
            population = LogNormalPopulation(pop.get("n", 1), omega=dict(pop.get("omega", {})),
                                             covariates=dict(pop.get("covariates", {})),
                                             covariate_ranges=dict(pop.get("covariate_ranges", {})))
        except PkpdError as err:
            raise _err(file, "population", str(err)) from None

    arms: list[Arm] = []
    arm_tables = data.get("arms", {})
    if not isinstance(arm_tables, Mapping):
        raise _err(file, "arms", "must be tables [arms.NAME]")
    for key, body in arm_tables.items():
        section = f"arms.{key}"
        _keys(body, _ARM_KEYS, file, section)
        opts = {k: body[k] for k in ("count", "interval", "start", "duration", "target", "time_unit") if k in body}
        try:
            control = body.get("control", False)
            if not isinstance(control, bool):
                raise DosingError(f"control must be true or false; got {control!r:.80}")
            if control:
                bad = [k for k in ("dose", "doses", "unit") if k in body]
                if bad:
                    raise DosingError(f"a control arm takes no {bad[0]}; remove it, or set control = false")
                arms.append(Arm(key, control=True, color=body.get("color"), **opts))
            elif "doses" in body:
                if "dose" in body:
                    raise DosingError("give dose (one arm) or doses (one arm per level), not both")
                if "unit" not in body:
                    raise DosingError("missing key 'unit' (e.g. unit = \"cell/kg\")")
                if not isinstance(body["doses"], list):
                    raise DosingError(f"doses must be a list of amounts; got {body['doses']!r:.80}")
                if len(body["doses"]) > MAX_SCENARIO_DOSE_LEVELS:
                    raise DosingError(f"{len(body['doses']):,} dose levels (more than {MAX_SCENARIO_DOSE_LEVELS:,})")
                arms.extend(dose_ranging_arms(key, body["doses"], body["unit"], **opts))
            else:
                if "dose" not in body:
                    raise DosingError("has no dose; give dose = AMOUNT and unit = \"UNIT\" (or doses = [...]), or "
                                      "control = true for an untreated arm")
                if "unit" not in body:
                    raise DosingError("missing key 'unit' (e.g. unit = \"cell/kg\")")
                arms.append(Arm(key, Dose(body["dose"], body["unit"]), color=body.get("color"), **opts))
        except DosingError as err:
            text = str(err).removeprefix(f"arm {key!r}: ")
            raise DosingError(f"{file or 'scenario'} [{section}]: {text}") from None

    endpoints = []
    ep_tables = data.get("endpoints", {})
    if not isinstance(ep_tables, Mapping):
        raise _err(file, "endpoints", "must be tables [endpoints.NAME]")
    for key, body in ep_tables.items():
        section = f"endpoints.{key}"
        _keys(body, _ENDPOINT_KEYS, file, section, required=("output", "metric"))
        try:
            endpoints.append(Endpoint(name=key, **body))
        except PkpdError as err:
            raise _err(file, section, str(err)) from None

    targets = []
    tg_list = data.get("targets", [])
    if not isinstance(tg_list, list):
        raise _err(file, "targets", "write targets as [[targets]] tables")
    for i, body in enumerate(tg_list):
        section = f"targets[{i}]"
        _keys(body, _TARGET_KEYS, file, section, required=("endpoint", "op", "value"))
        try:
            targets.append(Target(**body))
        except PkpdError as err:
            raise _err(file, section, str(err)) from None

    unc = data.get("uncertainty")
    trials = {}
    if unc is not None:
        _keys(unc, _UNCERTAINTY_KEYS, file, "uncertainty", required=("from",))
        ref = unc["from"]
        if not isinstance(ref, str) or not ref:
            raise _err(file, "uncertainty", f"from must be the path of a saved fit (fit.save('fit.json')); got {ref!r}")
        path = Path(ref)
        if not path.is_absolute() and file is not None:
            path = Path(file).parent / path
        from .uncertainty import as_uncertainty

        omega = unc.get("omega")
        try:
            trials = {"uncertainty": as_uncertainty(path, model=model, omega=omega),
                      "n_trials": unc.get("n_trials", 200), "trial_success": unc.get("success", 0.8),
                      "same_population": unc.get("same_population", False)}
        except PkpdError as err:
            raise _err(file, "uncertainty", str(err)) from None
        if not isinstance(trials["same_population"], bool):
            raise _err(file, "uncertainty", f"same_population must be true or false; got {trials['same_population']!r}")
    n_runs = (population.n if population is not None else 1) * max(len(arms), 1)
    if n_runs > MAX_SCENARIO_RUNS:
        raise _err(file, "population", f"{n_runs:,} simulated subject-arms ({len(arms)} arms x "
                                       f"{population.n if population is not None else 1:,} subjects), more than "
                                       f"{MAX_SCENARIO_RUNS:,}; use fewer subjects or arms (or pkpd.simulate_summary "
                                       "for huge populations)")
    n_trials = trials.get("n_trials", 0)    # no [uncertainty]: the one run, no replicate trials
    if (isinstance(n_trials, numbers.Integral) and not isinstance(n_trials, bool)
            and n_runs * (n_trials + 1) > MAX_SCENARIO_RUNS):
        raise _err(file, "uncertainty", f"{n_trials:,} trials x {n_runs:,} subject-arms, more than "
                                        f"{MAX_SCENARIO_RUNS:,} simulated subject-arms; use fewer trials, subjects "
                                        "or arms")

    sens = data.get("sensitivity", {})
    _keys(sens, _SENS_KEYS, file, "sensitivity")
    params = data.get("parameters", {})
    if not isinstance(params, Mapping):
        raise _err(file, "parameters", "must be a table of name = value")
    try:
        return Scenario(model, arms=arms, endpoints=endpoints, targets=targets, population=population,
                        params=dict(params), times=times, seed=head.get("seed"),
                        name=head.get("name", default_name), description=head.get("description", ""),
                        sensitivity_arm=sens.get("arm"), sensitivity_parameters=sens.get("parameters"),
                        sigmoid=head.get("sigmoid", False), source=file, **trials)
    except (UnitError, DosingError) as err:
        raise type(err)(f"{file or 'scenario'}: {err}") from None
    except PkpdError as err:
        raise PkpdError(f"{file or 'scenario'}: {err}") from None
