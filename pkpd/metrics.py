r"""Exposure and response metrics per subject, named endpoints, and non-compartmental analysis (NCA).

Three layers, each usable on its own:

* **metric functions** on arrays -- :func:`cmax`, :func:`tmax`, :func:`auc`, :func:`time_above`, :func:`value_at`,
  :func:`nadir`, :func:`time_of_nadir`, :func:`change_from_baseline`. Each takes ``times`` (n_times,) and
  ``values`` (n_subjects, n_times) -- e.g. ``sim.times, sim["IL10"]`` of a :class:`~pkpd.Simulation` -- and returns
  one number per subject (a float for a 1-D ``values``). A failed subject (NaN trajectory) gives NaN.
* :class:`Endpoint` -- a metric with a name, an output and a unit (``"IL10_AUC_0_168"``, ``"TNF_change_48"``): what
  a scenario reports and sets targets on.
* **NCA** of observed concentrations -- :func:`nca_profile` for one profile, :func:`nca` for a NONMEM-layout
  dataset (one row per subject and output; also ``pkpd nca data.csv --out nca.csv``).

Conventions of the metric functions
-----------------------------------
* Between sampling times a trajectory is interpolated linearly (``method="linear"``) or, with
  ``method="log-down"``, log-linearly on falling segments where both values are positive (linear-up/log-down).
  A window ``[start, end]`` that falls between samples is cut there with the same interpolation, so AUCs over any
  interval are exact for piecewise-linear (or piecewise-exponential) profiles.
* Values at a dose time are those just *after* the dose (a simulation is right-continuous).
* :func:`tmax` and :func:`time_of_nadir` give the first time at which the extreme occurs.
* :func:`time_above` counts the time the linear interpolant is strictly above the threshold, with the crossing
  times interpolated linearly between samples.

Conventions of NCA (those of PKNCA and Phoenix WinNonlin; Gabrielsson & Weiner 2016, ch. 2)
-------------------------------------------------------------------------------------------
* Times are relative to the (single) dose. Concentrations below the LLOQ (``BLQ=1``) are set to 0 before the first
  quantified concentration and dropped after it.
* **Cmax, Tmax** are the largest observation and its first time; **Clast, Tlast** the last positive one.
* **AUClast**: linear-up/log-down trapezoids from the dose to Tlast (``auc_method="linear"`` for all-linear).
  Extravascular doses and infusions start from C = 0 at the dose time when it is not observed. For an IV bolus,
  **C0** is back-extrapolated log-linearly from the first two positive observations when they decline, else the
  first observation is used (PKNCA ``c0`` methods ``logslope`` then ``c1``).
* **λz**: log-linear least squares on the last *n* positive observations after Tmax (Cmax itself is never used),
  for every *n* >= 3. The fit with the largest adjusted :math:`R^2 = 1 - (1 - R^2)(n - 1)/(n - 2)` is chosen;
  fits within 1e-4 of that best adjusted R² count as equally good, and among them the one with the most points
  wins (PKNCA's ``adj.r.squared.factor``, WinNonlin's "best fit"). A non-negative slope gives no λz (NaN).
* **t½** = ln 2 / λz; **AUCinf** = AUClast + Clast/λz (observed Clast); **% extrapolated** = 100 (AUCinf - AUClast)
  / AUCinf; **AUMC** with the same trapezoid rule on t·C, AUMCinf = AUMClast + Clast·Tlast/λz + Clast/λz²;
  **MRT** = AUMCinf/AUCinf, minus half the infusion duration for an infusion; **CL** = Dose/AUCinf (CL/F for an
  extravascular dose); **Vz** = CL/λz (Vz/F); **Vss** = CL·MRT (IV only).

References
----------
Gabrielsson J, Weiner D 2016, *Pharmacokinetic and Pharmacodynamic Data Analysis*, 5th ed., Swedish Pharmaceutical
Press (chapter 2, non-compartmental analysis). Denney W, Duvvuri S, Buckeridge C 2015, *Simple, automatic
noncompartmental analysis: the PKNCA R package*, J Pharmacokinet Pharmacodyn 42:S65. Certara, *Phoenix WinNonlin
user's guide*, "NCA computational rules" (λz best-fit rule, AUMC log-down formula).

Examples
--------
>>> import numpy as np
>>> t = np.array([0.0, 1, 2, 4])
>>> c = np.array([[0.0, 4, 3, 1], [0, 2, 2, 2]])
>>> cmax(t, c), tmax(t, c)
(array([4., 2.]), array([1., 1.]))
>>> auc(t, c, start=0, end=2)
array([5.5, 3. ])
>>> time_above(t, c, 2.5)
array([1.875, 0.   ])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from .errors import DataError, PkpdError, UnitError, did_you_mean

__all__ = ["AUC_METHODS", "CLINICAL_METRICS", "METRICS", "ROUTES", "Endpoint", "NCAResult", "auc",
           "change_from_baseline", "cmax", "endpoint_table", "median_time", "nadir", "nca", "nca_profile",
           "time_above", "time_of_nadir", "tmax", "value_at"]

#: AUC interpolation rules: linear trapezoids, or linear-up/log-down.
AUC_METHODS = ("linear", "log-down")
#: NCA dose routes.
ROUTES = ("extravascular", "iv-bolus", "iv-infusion")
#: Best-fit λz: fits within this of the best adjusted R² are equally good (PKNCA adj.r.squared.factor).
ADJ_R2_FACTOR = 1e-4
#: Fewest points of a λz regression.
MIN_LAMBDA_Z_POINTS = 3


# ------------------------------------------------------------------------------------------------ array helpers
def _arrays(times, values, where: str) -> tuple[np.ndarray, np.ndarray, bool]:
    t = np.asarray(times, dtype=float)
    y = np.asarray(values, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise PkpdError(f"{where}: times must be a non-empty 1-D array; got shape {t.shape}")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise PkpdError(f"{where}: times must be strictly increasing. Sort them and remove duplicates")
    one = y.ndim == 1
    y2 = y[None, :] if one else y
    if y2.ndim != 2 or y2.shape[1] != t.size:
        raise PkpdError(f"{where}: values must have shape (n_subjects, n_times) = (.., {t.size}) or ({t.size},); "
                        f"got {y.shape}")
    return t, y2, one


def _out(result: np.ndarray, one: bool):
    return float(result[0]) if one else result


def _window(t: np.ndarray, start, end, where: str) -> tuple[float, float]:
    lo = t[0] if start is None else float(start)
    hi = t[-1] if end is None else float(end)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise PkpdError(f"{where}: the window must be finite; got [{lo:g}, {hi:g}]")
    if hi < lo:
        raise PkpdError(f"{where}: the window end {hi:g} is before its start {lo:g}; give start <= end")
    tol = 1e-9 * max(1.0, abs(t[0]), abs(t[-1]))
    if lo < t[0] - tol or hi > t[-1] + tol:
        raise PkpdError(f"{where}: the window [{lo:g}, {hi:g}] reaches outside the times [{t[0]:g}, {t[-1]:g}]; "
                        "simulate (or sample) over the whole window")
    return max(lo, t[0]), min(hi, t[-1])


def _interp(t: np.ndarray, y: np.ndarray, at: float, method: str = "linear") -> np.ndarray:
    """Values of every row at time ``at`` (inside the grid), linear or log-down interpolation."""
    j = int(np.searchsorted(t, at, side="right")) - 1
    if j >= t.size - 1 or t[j] == at:
        j = min(j, t.size - 1)
        if t[j] == at:
            return y[:, j].copy()
    y0, y1 = y[:, j], y[:, j + 1]
    f = (at - t[j]) / (t[j + 1] - t[j])
    lin = y0 + (y1 - y0) * f
    if method == "log-down":
        down = (y1 < y0) & (y1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            logv = y0 * np.exp(f * np.log(np.where(down, y1 / np.where(down, y0, 1.0), 1.0)))
        return np.where(down, logv, lin)
    return lin


def _cut(t: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str = "linear"):
    """The grid restricted to [lo, hi], with interpolated end points: (times (m,), values (n, m))."""
    inside = (t > lo) & (t < hi)
    tt = np.concatenate(([lo], t[inside], [hi])) if hi > lo else np.array([lo])
    ends = [_interp(t, y, lo, method)[:, None]]
    if hi > lo:
        ends = [ends[0], y[:, inside], _interp(t, y, hi, method)[:, None]]
    return tt, np.concatenate(ends, axis=1)


def _segments_auc(tt: np.ndarray, yy: np.ndarray, method: str) -> np.ndarray:
    if tt.size < 2:
        return np.zeros(yy.shape[0])
    dt = np.diff(tt)[None, :]
    y0, y1 = yy[:, :-1], yy[:, 1:]
    area = 0.5 * dt * (y0 + y1)
    if method == "log-down":
        down = (y1 < y0) & (y1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = dt * (y0 - y1) / np.log(np.where(down, y0 / np.where(down, y1, 1.0), 2.0))
        area = np.where(down, logs, area)
    return area.sum(axis=1)


def _check_method(method: str, where: str) -> None:
    if method not in AUC_METHODS:
        raise PkpdError(f"{where}: method must be one of {', '.join(map(repr, AUC_METHODS))}; got {method!r}."
                        + did_you_mean(str(method), AUC_METHODS))


# ------------------------------------------------------------------------------------------------ metric functions
def cmax(times, values, *, start: float | None = None, end: float | None = None):
    """Largest value of each subject over ``[start, end]`` [output unit].

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Increasing times [time unit].
    values : array_like, shape (n_subjects, n_times) or (n_times,)
        E.g. ``sim["IL10"]``.
    start, end : float, optional
        Window [time unit]; default the whole grid. Window ends between samples are interpolated linearly.

    Returns
    -------
    ndarray, shape (n_subjects,), or float for 1-D ``values``

    Examples
    --------
    >>> cmax([0, 1, 2], [1.0, 5.0, 2.0])
    5.0
    """
    t, y, one = _arrays(times, values, "cmax")
    tt, yy = _cut(t, y, *_window(t, start, end, "cmax"))
    with np.errstate(invalid="ignore"):
        return _out(np.max(yy, axis=1), one)


def tmax(times, values, *, start: float | None = None, end: float | None = None):
    """Time of the largest value of each subject (the first, if tied) over ``[start, end]`` [time unit].

    Examples
    --------
    >>> tmax([0, 1, 2], [[1.0, 5.0, 5.0], [3.0, 1.0, 0.0]])
    array([1., 0.])
    """
    t, y, one = _arrays(times, values, "tmax")
    tt, yy = _cut(t, y, *_window(t, start, end, "tmax"))
    out = tt[np.argmax(np.where(np.isnan(yy), -np.inf, yy), axis=1)]
    return _out(np.where(np.isnan(yy).any(axis=1), np.nan, out), one)


def nadir(times, values, *, start: float | None = None, end: float | None = None):
    """Smallest value of each subject over ``[start, end]`` [output unit] (e.g. the TNF-α nadir).

    Examples
    --------
    >>> nadir([0, 1, 2], [4.0, 1.0, 3.0])
    1.0
    """
    t, y, one = _arrays(times, values, "nadir")
    tt, yy = _cut(t, y, *_window(t, start, end, "nadir"))
    return _out(np.min(yy, axis=1), one)


def time_of_nadir(times, values, *, start: float | None = None, end: float | None = None):
    """Time of the smallest value of each subject (the first, if tied) over ``[start, end]`` [time unit].

    Examples
    --------
    >>> time_of_nadir([0, 1, 2], [4.0, 1.0, 3.0])
    1.0
    """
    t, y, one = _arrays(times, values, "time_of_nadir")
    tt, yy = _cut(t, y, *_window(t, start, end, "time_of_nadir"))
    out = tt[np.argmin(np.where(np.isnan(yy), np.inf, yy), axis=1)]
    return _out(np.where(np.isnan(yy).any(axis=1), np.nan, out), one)


def auc(times, values, *, start: float | None = None, end: float | None = None, method: str = "linear"):
    r"""Area under the curve of each subject over ``[start, end]`` [output unit x time unit].

    Parameters
    ----------
    times : array_like, shape (n_times,)
    values : array_like, shape (n_subjects, n_times) or (n_times,)
    start, end : float, optional
        Integration window [time unit]; default the whole grid. Ends between samples are interpolated with the
        same rule as the trapezoids.
    method : {"linear", "log-down"}
        ``"linear"``: trapezoids :math:`\tfrac12 \Delta t (y_0 + y_1)`. ``"log-down"`` (linear-up/log-down):
        :math:`\Delta t (y_0 - y_1) / \ln(y_0 / y_1)` on falling segments with both values > 0, exact for an
        exponential decline; trapezoids elsewhere.

    Returns
    -------
    ndarray, shape (n_subjects,), or float for 1-D ``values``

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 10, 6)
    >>> round(auc(t, np.exp(-t), method="log-down"), 6)   # exact: 1 - exp(-10)
    0.999955
    >>> round(auc(t, np.exp(-t)), 4)                        # linear trapezoids overestimate
    1.313
    >>> auc([0, 2], [0.0, 2.0], start=1, end=2)
    1.5
    """
    _check_method(method, "auc")
    t, y, one = _arrays(times, values, "auc")
    lo, hi = _window(t, start, end, "auc")
    tt, yy = _cut(t, y, lo, hi, method)
    return _out(_segments_auc(tt, yy, method), one)


def time_above(times, values, threshold: float, *, start: float | None = None, end: float | None = None):
    """Time each subject spends strictly above ``threshold`` within ``[start, end]`` [time unit].

    Crossings between samples are placed by linear interpolation.

    Parameters
    ----------
    threshold : float [output unit]

    Examples
    --------
    >>> time_above([0, 2, 4], [0.0, 4.0, 0.0], 2.0)   # above from t = 1 to t = 3
    2.0
    """
    t, y, one = _arrays(times, values, "time_above")
    thr = float(threshold)
    if not math.isfinite(thr):
        raise PkpdError(f"time_above: threshold must be finite; got {threshold!r}")
    tt, yy = _cut(t, y, *_window(t, start, end, "time_above"))
    if tt.size < 2:
        return _out(np.zeros(yy.shape[0]), one)
    dt = np.diff(tt)[None, :]
    a, b = yy[:, :-1] - thr, yy[:, 1:] - thr
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where((a > 0) & (b > 0), 1.0,
                        np.where((a <= 0) & (b <= 0), 0.0, np.maximum(a, b) / np.abs(a - b)))
    out = (frac * dt).sum(axis=1)
    return _out(np.where(np.isnan(yy).any(axis=1), np.nan, out), one)


def value_at(times, values, time: float):
    """Value of each subject at ``time`` [output unit], interpolated linearly between samples.

    Examples
    --------
    >>> value_at([0, 10], [[0.0, 10.0], [5.0, 5.0]], 2.5)
    array([2.5, 5. ])
    """
    t, y, one = _arrays(times, values, "value_at")
    at, _ = _window(t, time, time, "value_at")
    return _out(_interp(t, y, at), one)


def change_from_baseline(times, values, time: float, *, baseline_time: float | None = None,
                         relative: bool = False):
    """Change of each subject's value at ``time`` from its value at ``baseline_time``.

    Parameters
    ----------
    time : float [time unit]
    baseline_time : float [time unit], optional
        Default: the first time of the grid.
    relative : bool
        ``False``: ``y(time) - y(baseline)`` [output unit]; ``True``: ``100 (y(time) - y(baseline)) /
        y(baseline)`` [%] (NaN where the baseline is 0).

    Examples
    --------
    >>> change_from_baseline([0, 24, 48], [10.0, 8.0, 4.0], 48, relative=True)
    -60.0
    >>> change_from_baseline([0, 24, 48], [10.0, 8.0, 4.0], 48, baseline_time=24)
    -4.0
    """
    t, y, one = _arrays(times, values, "change_from_baseline")
    now = _interp(t, y, _window(t, time, time, "change_from_baseline")[0])
    base_at = t[0] if baseline_time is None else baseline_time
    base = _interp(t, y, _window(t, base_at, base_at, "change_from_baseline (baseline_time)")[0])
    return _out(_change(now, base, relative), one)


def _change(now: np.ndarray, base: np.ndarray, relative: bool) -> np.ndarray:
    if not relative:
        return now - base
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base != 0, 100.0 * (now - base) / np.where(base != 0, base, 1.0), np.nan)


# ------------------------------------------------------------------------------------------------ endpoints
#: Metrics an :class:`Endpoint` can compute, with the options each one uses.
METRICS: dict[str, tuple[str, ...]] = {
    "cmax": ("start", "end"),
    "tmax": ("start", "end"),
    "auc": ("start", "end", "method"),
    "time_above": ("threshold", "threshold_unit", "start", "end"),
    "value_at": ("time",),
    "nadir": ("start", "end"),
    "time_of_nadir": ("start", "end"),
    "change_from_baseline": ("time", "baseline_time", "relative"),
    "change_from_untreated": ("time", "relative"),
    # clinical endpoints (pkpd.endpoints): per subject, a probability or an expected value
    "probability_at": ("time", "category"),
    "survival_at": ("time",),
    "median_time_to_event": ("end",),
    "expected_count": ("time", "start"),
}
#: The metrics of clinical endpoint outputs, with the output types they apply to.
CLINICAL_METRICS: dict[str, tuple[str, ...]] = {
    "probability_at": ("binary", "ordinal"),
    "survival_at": ("time-to-event",),
    "median_time_to_event": ("time-to-event",),
    "expected_count": ("count",),
}
_NEEDS = {"value_at": ("time",), "change_from_baseline": ("time",), "change_from_untreated": ("time",),
          "time_above": ("threshold",), "probability_at": ("time",), "survival_at": ("time",),
          "expected_count": ("time",)}
_SHORT = {"cmax": "Cmax", "tmax": "Tmax", "auc": "AUC", "time_above": "time_above", "value_at": "at",
          "nadir": "nadir", "time_of_nadir": "time_of_nadir", "change_from_baseline": "change",
          "change_from_untreated": "vs_untreated", "probability_at": "P", "survival_at": "survival",
          "median_time_to_event": "median_time", "expected_count": "count"}


def median_time(times, survival, *, end: float | None = None):
    """First time at which a survival curve falls to 0.5 (linear interpolation between times), per row; ``inf``
    where it stays above 0.5 up to ``end`` (default: the last time).

    Examples
    --------
    >>> median_time([0.0, 10.0, 20.0], [1.0, 0.6, 0.4])
    15.0
    >>> median_time([0.0, 10.0], [[1.0, 0.9]]).tolist()
    [inf]
    """
    t, y, one = _arrays(times, survival, "median_time")
    if end is not None:
        keep = t <= end
        t, y = t[keep], y[:, keep]
    below = y <= 0.5
    first = np.argmax(below, axis=1)
    out = np.full(y.shape[0], np.inf)
    hit = below.any(axis=1)
    for i in np.flatnonzero(hit):
        k = first[i]
        if k == 0:
            out[i] = t[0]
            continue
        s0, s1 = y[i, k - 1], y[i, k]
        out[i] = t[k - 1] + (s0 - 0.5) / (s0 - s1) * (t[k] - t[k - 1]) if s0 != s1 else t[k]
    return _out(out, one)


def _g(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Endpoint:
    """A named per-subject metric of one model output, with its unit: what scenarios report and target.

    Parameters
    ----------
    output : str
        A model output, e.g. ``"IL10"``.
    metric : str
        One of :data:`METRICS`: ``"cmax"``, ``"tmax"``, ``"auc"``, ``"time_above"``, ``"value_at"``, ``"nadir"``,
        ``"time_of_nadir"``, ``"change_from_baseline"`` or ``"change_from_untreated"`` (the same subject's value
        at ``time`` with minus without the treatment: a counterfactual only a simulation has; a scenario
        simulates every virtual subject untreated too). For clinical endpoint outputs (:mod:`pkpd.endpoints`):
        ``"probability_at"`` (P(response) of a binary output at ``time``, or P(Y >= ``category``) of an ordinal
        one), ``"survival_at"`` (probability of no event by ``time``), ``"median_time_to_event"`` (where the
        subject's survival falls to 0.5, ``inf`` if not by ``end``) and ``"expected_count"`` (by ``time``, or
        from ``start`` to ``time`` for a count whose mean is a rate); a scenario also reports each arm's value
        (``ScenarioResult.clinical``).
    name : str, optional
        Default: built from the output, metric and times, e.g. ``"IL10_AUC_0_168"``, ``"TNF_vs_untreated_48"``.
    start, end : float [model time unit], optional
        Window of cmax, tmax, auc, time_above, nadir, time_of_nadir (default: the whole simulated time).
    time : float [model time unit]
        Time of value_at and of the changes.
    baseline_time : float [model time unit], optional
        Baseline of change_from_baseline (default: the first simulated time).
    relative : bool
        Changes in % of the baseline (or untreated) value instead of the output's unit.
    threshold : float [threshold_unit]
        Threshold of time_above.
    threshold_unit : str, optional
        Unit of ``threshold``; default the output's unit. It must convert to the output's unit.
    method : {"linear", "log-down"}
        AUC rule (see :func:`auc`).
    category : float, optional
        Of ``probability_at`` on an ordinal output: the endpoint is P(Y >= category).
    source : str, optional
        The simulated series read (set by :meth:`for_model`: the output, or an ordinal output's cumulative logit).

    Raises
    ------
    PkpdError
        Unknown metric (with close matches), an option the metric does not use, a missing ``time`` or
        ``threshold``, a window with end before start.

    See Also
    --------
    Endpoint.evaluate : the values of a simulation.

    Examples
    --------
    >>> Endpoint("IL10", "auc", start=0, end=168).name
    'IL10_AUC_0_168'
    >>> Endpoint("TNF", "change_from_untreated", time=48, relative=True).name
    'TNF_vs_untreated_48'
    >>> Endpoint("TNF", "value_at")
    Traceback (most recent call last):
    pkpd.errors.PkpdError: endpoint 'TNF' (value_at): give time=... [model time unit]; value_at needs it.
    """

    output: str
    metric: str
    name: str | None = None
    start: float | None = None
    end: float | None = None
    time: float | None = None
    baseline_time: float | None = None
    relative: bool = False
    threshold: float | None = None
    threshold_unit: str | None = None
    method: str = "linear"
    category: float | None = None
    source: str | None = None

    def __post_init__(self):
        where = f"endpoint {self.name or self.output!r}"
        if not isinstance(self.output, str) or not self.output:
            raise PkpdError(f"{where}: output must be the name of a model output, e.g. 'IL10'; got {self.output!r}")
        if self.metric not in METRICS:
            raise PkpdError(f"{where}: metric must be one of {', '.join(METRICS)}; got {self.metric!r}."
                            + did_you_mean(str(self.metric), METRICS))
        where = f"{where} ({self.metric})"
        used = METRICS[self.metric]
        defaults = {"start": None, "end": None, "time": None, "baseline_time": None, "relative": False,
                    "threshold": None, "threshold_unit": None, "method": "linear", "category": None}
        for key, default in defaults.items():
            if key not in used and getattr(self, key) != default:
                raise PkpdError(f"{where}: option {key!r} is not used by this metric; it takes "
                                f"{', '.join(used) or 'no options'}. Remove {key}.")
        for key in _NEEDS.get(self.metric, ()):
            if getattr(self, key) is None:
                unit = "[model time unit]" if key == "time" else "[threshold_unit]"
                raise PkpdError(f"{where}: give {key}=... {unit}; {self.metric} needs it.")
        for key in ("start", "end", "time", "baseline_time", "threshold", "category"):
            v = getattr(self, key)
            if v is not None:
                if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
                    raise PkpdError(f"{where}: {key} must be a finite number; got {v!r}")
                object.__setattr__(self, key, float(v))
        if self.start is not None and self.end is not None and self.end < self.start:
            raise PkpdError(f"{where}: end {self.end:g} is before start {self.start:g}; give start <= end")
        if not isinstance(self.relative, bool):
            raise PkpdError(f"{where}: relative must be true or false; got {self.relative!r}")
        _check_method(self.method, where)
        if self.name is None:
            object.__setattr__(self, "name", self._default_name())
        elif not isinstance(self.name, str) or not self.name.strip():
            raise PkpdError(f"endpoint of {self.output!r}: name must be a non-empty string; got {self.name!r}")

    def _default_name(self) -> str:
        parts = [self.output, _SHORT[self.metric]]
        if self.metric == "time_above":
            parts.append(_g(self.threshold))
        if self.metric == "probability_at" and self.category is not None:
            parts.append(f"ge{_g(self.category)}")
        if self.metric in ("value_at", "change_from_baseline", "change_from_untreated", "probability_at",
                           "survival_at", "expected_count"):
            parts.append(_g(self.time))
        if self.start is not None and self.end is not None:
            parts += [_g(self.start), _g(self.end)]
        elif self.end is not None:
            parts += ["to", _g(self.end)]
        elif self.start is not None:
            parts += ["from", _g(self.start)]
        return "_".join(parts)

    @property
    def needs_untreated(self) -> bool:
        """Whether the endpoint compares with the same subject simulated without treatment."""
        return self.metric == "change_from_untreated"

    def unit(self, output_unit: str, time_unit: str) -> str:
        """Unit of the endpoint's values, e.g. ``'pg/mL*h'`` for the AUC of an output in pg/mL over hours.

        Examples
        --------
        >>> Endpoint("IL10", "auc").unit("pg/mL", "h"), Endpoint("IL10", "tmax").unit("pg/mL", "h")
        ('pg/mL*h', 'h')
        """
        if self.metric == "auc":
            return time_unit if output_unit == "1" else f"{output_unit}*{time_unit}"
        if self.metric in ("tmax", "time_of_nadir", "time_above", "median_time_to_event"):
            return time_unit
        if self.metric in CLINICAL_METRICS:
            return "1"
        if self.metric in ("change_from_baseline", "change_from_untreated") and self.relative:
            return "%"
        return output_unit

    def describe(self, output_unit: str | None = None, time_unit: str = "h") -> str:
        """One line saying what the endpoint is, for tables and reports.

        Examples
        --------
        >>> Endpoint("IL10", "auc", start=0, end=168).describe("pg/mL")
        'AUC of IL10 from 0 to 168 h (linear trapezoids) [pg/mL*h]'
        """
        win = ""
        if self.start is not None or self.end is not None:
            win = (f" from {'the start' if self.start is None else _g(self.start)} to "
                   f"{'the end' if self.end is None else _g(self.end)} {time_unit}")
        text = {
            "cmax": f"maximum of {self.output}{win}",
            "tmax": f"time of the maximum of {self.output}{win}",
            "auc": f"AUC of {self.output}{win} "
                   f"({'linear trapezoids' if self.method == 'linear' else 'linear-up/log-down'})",
            "time_above": f"time {self.output} is above {_g(self.threshold or 0)} "
                          f"{self.threshold_unit or output_unit or ''}".rstrip() + win,
            "value_at": f"{self.output} at {_g(self.time or 0)} {time_unit}",
            "nadir": f"minimum of {self.output}{win}",
            "time_of_nadir": f"time of the minimum of {self.output}{win}",
            "change_from_baseline": f"{'relative ' if self.relative else ''}change of {self.output} at "
                                    f"{_g(self.time or 0)} {time_unit} from "
                                    + ("the start" if self.baseline_time is None else
                                       f"{_g(self.baseline_time)} {time_unit}"),
            "change_from_untreated": f"{'relative ' if self.relative else ''}change of {self.output} at "
                                     f"{_g(self.time or 0)} {time_unit} versus the same subject untreated",
            "probability_at": f"P({self.output}" + (f" >= {_g(self.category)}" if self.category is not None
                                                    else " = 1") + f") at {_g(self.time or 0)} {time_unit}",
            "survival_at": f"probability of no {self.output} by {_g(self.time or 0)} {time_unit}",
            "median_time_to_event": f"median time to {self.output}" + (f" (within {_g(self.end)} {time_unit})"
                                                                       if self.end is not None else ""),
            "expected_count": f"expected count of {self.output} "
                              + (f"from {_g(self.start)} to " if self.start is not None else "by ")
                              + f"{_g(self.time or 0)} {time_unit}",
        }[self.metric]
        return text + (f" [{self.unit(output_unit, time_unit)}]" if output_unit is not None else "")

    def for_model(self, model) -> Endpoint:
        """This endpoint checked against ``model``: the output exists, and ``threshold`` is converted to its unit.

        Raises
        ------
        PkpdError
            The model has no such output (close matches suggested).
        UnitError
            ``threshold_unit`` does not convert to the output's unit.

        Examples
        --------
        >>> import pkpd
        >>> m = pkpd.load_model("msc_sepsis")
        >>> Endpoint("TNF", "time_above", threshold=1, threshold_unit="ng/mL").for_model(m).threshold
        1000.0
        >>> Endpoint("IL12", "cmax").for_model(m)
        Traceback (most recent call last):
        pkpd.errors.PkpdError: endpoint 'IL12_Cmax': model 'msc_sepsis' has no output 'IL12'. Did you mean 'IL10'?
        """
        from . import units as un

        if self.output not in model.output_names:
            raise PkpdError(f"endpoint {self.name!r}: model {model.name!r} has no output {self.output!r}."
                            + did_you_mean(self.output, model.output_names))
        if self.metric in CLINICAL_METRICS:
            return self._for_endpoint_output(model)
        if self.threshold is None or self.threshold_unit is None:
            return self
        out_unit = model.unit_of(self.output)
        try:
            k = un.convert(self.threshold_unit, out_unit)
        except un.UnitCheckError as err:
            raise UnitError(f"endpoint {self.name!r}: threshold {self.threshold:g} {self.threshold_unit} cannot be "
                            f"compared with output {self.output!r} in {out_unit} ({err}). Give the threshold in a "
                            f"unit of the same kind as {out_unit}.") from None
        return replace(self, threshold=self.threshold * k, threshold_unit=out_unit)

    def _for_endpoint_output(self, model) -> Endpoint:
        """A clinical metric checked against its output's type; ``source`` names the series it reads."""
        kind = next(o.type for o in model.outputs if o.name == self.output)
        allowed = CLINICAL_METRICS[self.metric]
        where = f"endpoint {self.name!r} ({self.metric})"
        if kind not in allowed:
            raise PkpdError(f"{where}: output {self.output!r} is {kind}; {self.metric} applies to "
                            f"{' and '.join(allowed)} outputs")
        if self.category is not None and kind != "ordinal":
            raise PkpdError(f"{where}: category applies to ordinal outputs only")
        from .endpoints import endpoint_specs

        spec = next(sp for sp in endpoint_specs(model) if sp.name == self.output)
        if self.start is not None and not spec.rate:
            raise PkpdError(f"{where}: start applies to counts whose mean is a rate (integrated over time); the "
                            f"mean of {self.output!r} is per record")
        if kind == "ordinal":
            cats = spec.categories
            if self.category is None or self.category not in cats[1:]:
                raise PkpdError(f"{where}: give category=c, one of {', '.join(_g(c) for c in cats[1:])}: the "
                                f"endpoint is P({self.output} >= c)")
            return replace(self, source=spec.logits[list(cats).index(self.category) - 1])
        return replace(self, source=self.output)

    @property
    def series(self) -> str:
        """The simulated series the endpoint reads (its output, or for P(ordinal >= c) that cumulative logit)."""
        return self.source or self.output

    def compute(self, times, values, untreated=None) -> np.ndarray:
        """Values of the endpoint, one per row of ``values`` (n_subjects, n_times) [see :meth:`unit`].

        ``threshold`` must be in the output's unit (use :meth:`for_model` first when it is given in another);
        ``untreated`` (same shape as ``values``) is needed by ``change_from_untreated``.

        Examples
        --------
        >>> import numpy as np
        >>> Endpoint("IL10", "auc").compute(np.array([0.0, 1.0, 3.0]), np.array([[0.0, 2.0, 2.0]]))
        array([5.])
        """
        m = self.metric
        t = np.asarray(times, dtype=float)
        y = np.atleast_2d(np.asarray(values, dtype=float))
        window = {"start": self.start, "end": self.end}
        if m == "cmax":
            return cmax(t, y, **window)
        if m == "tmax":
            return tmax(t, y, **window)
        if m == "auc":
            return auc(t, y, method=self.method, **window)
        if m == "time_above":
            return time_above(t, y, self.threshold, **window)
        if m == "value_at":
            return value_at(t, y, self.time)
        if m == "nadir":
            return nadir(t, y, **window)
        if m == "time_of_nadir":
            return time_of_nadir(t, y, **window)
        if m == "change_from_baseline":
            return change_from_baseline(t, y, self.time, baseline_time=self.baseline_time, relative=self.relative)
        if m in ("survival_at", "probability_at"):
            v = value_at(t, y, self.time)
            if self.category is not None:   # the series is the cumulative logit of P(Y >= category)
                from scipy.special import expit

                v = expit(v)
            return v
        if m == "median_time_to_event":
            return median_time(t, y, end=self.end)
        if m == "expected_count":
            now = value_at(t, y, self.time)
            return now - value_at(t, y, self.start) if self.start is not None else now
        if untreated is None:
            raise PkpdError(f"endpoint {self.name!r}: change_from_untreated needs the untreated trajectories "
                            "(untreated=...); run it through a scenario, which simulates them")
        now = value_at(t, y, self.time)
        base = value_at(t, np.atleast_2d(np.asarray(untreated, dtype=float)), self.time)
        return _change(now, base, self.relative)

    def evaluate(self, sim, untreated=None) -> np.ndarray:
        """Values of the endpoint for every subject of a :class:`~pkpd.Simulation`, shape (n_subjects,).

        Examples
        --------
        >>> import numpy as np, pkpd
        >>> m = pkpd.load_model("pk_1cmt_iv")
        >>> sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 24, 97))
        >>> Endpoint("conc", "cmax").evaluate(sim)
        array([3.125])
        """
        if self.output not in sim.outputs:
            raise PkpdError(f"endpoint {self.name!r}: the simulation has no output {self.output!r}."
                            + did_you_mean(self.output, sim.outputs))
        ep = self
        if self.threshold_unit is not None and self.threshold_unit != sim.units[self.output]:
            from . import units as un

            try:
                k = un.convert(self.threshold_unit, sim.units[self.output])
            except un.UnitCheckError as err:
                raise UnitError(f"endpoint {self.name!r}: threshold unit {self.threshold_unit!r} does not convert "
                                f"to {sim.units[self.output]!r} ({err})") from None
            ep = replace(self, threshold=self.threshold * k, threshold_unit=sim.units[self.output])
        if self.metric in CLINICAL_METRICS and self.source is None:
            if sim.model is None:
                raise PkpdError(f"endpoint {self.name!r}: check it against the model first (endpoint.for_model(m))")
            ep = ep.for_model(sim.model)
        ref = None if untreated is None else untreated[self.output]
        return ep.compute(sim.times, sim[ep.series], ref)


# ------------------------------------------------------------------------------------------------ NCA
@dataclass(frozen=True)
class NCAResult:
    """Non-compartmental parameters of one concentration-time profile (conventions in :mod:`pkpd.metrics`).

    Attributes
    ----------
    cmax, tmax, clast, tlast : float
        [conc unit], [time unit].
    c0 : float
        Back-extrapolated concentration at the dose time (IV bolus only; NaN otherwise) [conc unit].
    auc_last, auc_inf : float
        [conc unit x time unit].
    auc_pct_extrap : float
        Part of AUCinf extrapolated beyond Tlast [%].
    aumc_last, aumc_inf : float
        [conc unit x time unit²].
    lambda_z : float
        Terminal rate constant [1/time unit]; NaN when no terminal phase could be fitted.
    lambda_z_n, lambda_z_start, lambda_z_end, r_squared, adj_r_squared : float
        Points, time span and quality of the chosen λz regression.
    half_life : float
        ln 2 / λz [time unit].
    mrt : float
        Mean residence time (from the dose) [time unit].
    cl, vz, vss : float
        Clearance Dose/AUCinf, volume CL/λz and (IV) CL·MRT; apparent (/F) for extravascular doses
        [dose unit / (conc unit x time unit)], [dose unit / conc unit].
    n_obs : int
        Observations used.
    route : str
    dose : float
    """

    cmax: float
    tmax: float
    clast: float
    tlast: float
    c0: float
    auc_last: float
    auc_inf: float
    auc_pct_extrap: float
    aumc_last: float
    aumc_inf: float
    lambda_z: float
    lambda_z_n: int
    lambda_z_start: float
    lambda_z_end: float
    r_squared: float
    adj_r_squared: float
    half_life: float
    mrt: float
    cl: float
    vz: float
    vss: float
    n_obs: int
    route: str
    dose: float

    def as_dict(self) -> dict[str, float]:
        """The parameters as an ordered dict (the column order of :func:`nca`)."""
        return {k: getattr(self, k) for k in _NCA_COLUMNS}


_NCA_COLUMNS = ("route", "dose", "n_obs", "cmax", "tmax", "c0", "clast", "tlast", "auc_last", "auc_inf",
                "auc_pct_extrap", "aumc_last", "aumc_inf", "lambda_z", "lambda_z_n", "lambda_z_start", "lambda_z_end",
                "r_squared", "adj_r_squared", "half_life", "mrt", "cl", "vz", "vss")


def _lambda_z(t: np.ndarray, c: np.ndarray, i_max: int):
    """Best-fit terminal phase: (lambda_z, n, t_start, t_end, r2, adj_r2) or NaNs (see module docstring)."""
    after = np.arange(t.size) > i_max
    keep = after & (c > 0)
    tt, lc = t[keep], np.log(c[keep])
    fits = []
    for n in range(MIN_LAMBDA_Z_POINTS, tt.size + 1):
        x, y = tt[-n:], lc[-n:]
        xm, ym = x.mean(), y.mean()
        sxx = float(np.sum((x - xm) ** 2))
        if sxx <= 0:
            continue
        slope = float(np.sum((x - xm) * (y - ym)) / sxx)
        resid = y - (ym + slope * (x - xm))
        syy = float(np.sum((y - ym) ** 2))
        r2 = 1.0 - float(np.sum(resid**2)) / syy if syy > 0 else 1.0
        fits.append((1.0 - (1.0 - r2) * (n - 1) / (n - 2), n, slope, r2, x[0], x[-1]))
    if not fits:
        return (math.nan, 0, math.nan, math.nan, math.nan, math.nan)
    top = max(f[0] for f in fits)
    adj, n, slope, r2, t0, t1 = max((f for f in fits if f[0] >= top - ADJ_R2_FACTOR), key=lambda f: f[1])
    if not slope < 0:
        return (math.nan, n, t0, t1, r2, adj)
    return (-slope, n, t0, t1, r2, adj)


def nca_profile(times, conc, dose: float, *, route: str = "extravascular", duration: float = 0.0,
                auc_method: str = "log-down") -> NCAResult:
    """Non-compartmental analysis of one single-dose concentration-time profile.

    Parameters
    ----------
    times : array_like, shape (n_obs,)
        Sampling times after the dose [time unit] (the dose is at 0).
    conc : array_like, shape (n_obs,)
        Concentrations [conc unit]; NaN entries are dropped.
    dose : float [dose unit]
        The amount given (> 0).
    route : {"extravascular", "iv-bolus", "iv-infusion"}
    duration : float [time unit]
        Infusion duration (``route="iv-infusion"``).
    auc_method : {"log-down", "linear"}
        Linear-up/log-down (default, as PKNCA and WinNonlin recommend) or linear trapezoids.

    Returns
    -------
    NCAResult

    Raises
    ------
    DataError
        Fewer than 2 positive concentrations, times not increasing or negative, a dose that is not > 0.

    Examples
    --------
    A one-compartment IV bolus (CL 2.8 L/h, V 32 L, 100 mg), sampled hourly for a day:

    >>> import numpy as np
    >>> t = np.arange(1.0, 25.0)
    >>> res = nca_profile(t, 100 / 32 * np.exp(-2.8 / 32 * t), 100, route="iv-bolus")
    >>> round(res.cl, 4), round(res.vz, 3), round(res.half_life, 4), res.lambda_z_n
    (2.8, 32.0, 7.9217, 23)
    """
    if route not in ROUTES:
        raise DataError(f"route must be one of {', '.join(ROUTES)}; got {route!r}." + did_you_mean(str(route), ROUTES))
    _check_method(auc_method, "nca")
    t = np.asarray(times, dtype=float).reshape(-1)
    c = np.asarray(conc, dtype=float).reshape(-1)
    if t.shape != c.shape:
        raise DataError(f"times and concentrations differ in length ({t.size} vs {c.size})")
    ok = np.isfinite(c) & np.isfinite(t)
    t, c = t[ok], c[ok]
    if not (isinstance(dose, numbers.Real) and math.isfinite(dose) and dose > 0):
        raise DataError(f"dose must be a finite number > 0; got {dose!r}")
    if t.size and (np.any(np.diff(t) <= 0) or t[0] < 0):
        raise DataError("sampling times must be >= 0 (time after dose) and strictly increasing")
    if np.count_nonzero(c > 0) < 2:
        raise DataError(f"at least 2 positive concentrations are needed for NCA; got {np.count_nonzero(c > 0)}")
    if route == "iv-infusion" and not duration > 0:
        raise DataError(f"an iv-infusion needs its duration > 0; got {duration!r}")
    i_max = int(np.argmax(c))
    c_max, t_max = float(c[i_max]), float(t[i_max])
    pos = np.flatnonzero(c > 0)
    i_last = int(pos[-1])
    c_last, t_last = float(c[i_last]), float(t[i_last])
    lz, n_lz, lz0, lz1, r2, adj = _lambda_z(t, c, i_max)

    c0 = math.nan
    tt, cc = t[: i_last + 1], c[: i_last + 1]
    if tt[0] > 0:
        if route == "iv-bolus":
            p = pos[:2]
            c1, c2 = c[p[0]], c[p[1]]
            if c2 < c1:
                c0 = float(math.exp(math.log(c1) - (math.log(c2) - math.log(c1)) / (t[p[1]] - t[p[0]]) * t[p[0]]))
            else:
                c0 = float(c1)
            start = c0
        else:
            start = 0.0
        tt, cc = np.concatenate(([0.0], tt)), np.concatenate(([start], cc))
    elif route == "iv-bolus":
        c0 = float(cc[0])
    auc_last = float(_segments_auc(tt, cc[None, :], auc_method)[0])
    aumc_last = float(_segments_aumc(tt, cc, auc_method))
    if math.isfinite(lz):
        auc_inf = auc_last + c_last / lz
        aumc_inf = aumc_last + c_last * t_last / lz + c_last / lz**2
        pct = 100.0 * (auc_inf - auc_last) / auc_inf
        half = math.log(2.0) / lz
    else:
        auc_inf = aumc_inf = pct = half = math.nan
    mrt = aumc_inf / auc_inf - (duration / 2.0 if route == "iv-infusion" else 0.0)
    cl = dose / auc_inf
    vz = cl / lz if math.isfinite(lz) else math.nan
    vss = cl * mrt if route != "extravascular" else math.nan
    return NCAResult(cmax=c_max, tmax=t_max, clast=c_last, tlast=t_last, c0=c0, auc_last=auc_last, auc_inf=auc_inf,
                     auc_pct_extrap=pct, aumc_last=aumc_last, aumc_inf=aumc_inf, lambda_z=lz, lambda_z_n=int(n_lz),
                     lambda_z_start=lz0, lambda_z_end=lz1, r_squared=r2, adj_r_squared=adj, half_life=half, mrt=mrt,
                     cl=cl, vz=vz, vss=vss, n_obs=int(t.size), route=route, dose=float(dose))


def _segments_aumc(tt: np.ndarray, cc: np.ndarray, method: str) -> float:
    """AUMC: trapezoids on t*C (linear), or the exact exponential moment on falling segments (log-down)."""
    dt = np.diff(tt)
    t0, t1, c0, c1 = tt[:-1], tt[1:], cc[:-1], cc[1:]
    area = 0.5 * dt * (t0 * c0 + t1 * c1)
    if method == "log-down":
        down = (c1 < c0) & (c1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.log(np.where(down, c0 / np.where(down, c1, 1.0), 2.0)) / dt
            logs = (t0 * c0 - t1 * c1) / k + (c0 - c1) / k**2
        area = np.where(down, logs, area)
    return float(area.sum())


def _units(conc_unit, dose_unit, time_unit) -> dict[str, str]:
    """Units of the NCA columns (pint reduces CL and V to readable units, e.g. L/h)."""
    from . import units as un

    out = {"tmax": time_unit, "tlast": time_unit, "lambda_z_start": time_unit, "lambda_z_end": time_unit,
           "half_life": time_unit, "mrt": time_unit, "lambda_z": f"1/{time_unit}"}
    if conc_unit:
        for k in ("cmax", "c0", "clast"):
            out[k] = conc_unit
        out["auc_last"] = out["auc_inf"] = f"{conc_unit}*{time_unit}"
        out["aumc_last"] = out["aumc_inf"] = f"{conc_unit}*{time_unit}^2"
    if dose_unit:
        out["dose"] = dose_unit
    if conc_unit and dose_unit:
        try:  # only unit strings of pkpd's grammar reach pint (a huge power in a unit string would hang it)
            for text in (conc_unit, dose_unit, time_unit):
                un.check_unit_text(text)
        except un.UnitCheckError as err:
            raise PkpdError(f"nca: {err}") from None
        reg = un.registry()
        try:
            cl = reg.Quantity(1.0, f"({dose_unit})/(({conc_unit})*{time_unit})").to_reduced_units()
            v = reg.Quantity(1.0, f"({dose_unit})/({conc_unit})").to_reduced_units()
            if cl.magnitude == 1.0 and v.magnitude == 1.0:
                out["cl"], out["vz"], out["vss"] = un.fmt(cl.units), un.fmt(v.units), un.fmt(v.units)
            else:
                out["cl"] = f"{dose_unit}/({conc_unit}*{time_unit})"
                out["vz"] = out["vss"] = f"{dose_unit}/({conc_unit})"
        except Exception:  # pint raises several types; fall back to the plain quotient
            out["cl"] = f"{dose_unit}/({conc_unit}*{time_unit})"
            out["vz"] = out["vss"] = f"{dose_unit}/({conc_unit})"
    out["auc_pct_extrap"] = "%"
    return out


def nca(data, *, route: str = "extravascular", auc_method: str = "log-down", time_unit: str = "h",
        dose_unit: str | None = None, conc_unit: str | None = None):
    """Non-compartmental analysis of every subject and output of a NONMEM-layout dataset.

    Each subject must have exactly one dose record (``EVID`` 1 or 4 with ``AMT`` > 0); its time is time zero of the
    profile. Observations are split by ``DVID`` (the output's name or number) when the column is present. A dose
    record with ``RATE`` > 0 or ``DUR`` > 0 is an infusion (its duration enters the MRT), whatever ``route`` says.

    Parameters
    ----------
    data : str, path, pandas.DataFrame or NonmemDataset
        NONMEM layout: ``ID, TIME, DV, AMT, EVID`` (``MDV, CMT, DVID, RATE, DUR, BLQ, LLOQ`` optional).
    route : {"extravascular", "iv-bolus", "iv-infusion"}
        How the doses were given (used when the dose record has no RATE/DUR).
    auc_method : {"log-down", "linear"}
    time_unit : str
        Unit of ``TIME`` [e.g. h].
    dose_unit, conc_unit : str, optional
        Units of ``AMT`` and ``DV``; when both are given, CL and V are reported in reduced units (e.g. L/h, L).
        The unit of AMT is never guessed: ``dose_unit`` is needed unless the data state it (an ``AMTU`` column,
        or a NonmemDataset read with ``dose_unit=``).

    Returns
    -------
    pandas.DataFrame
        One row per subject and output: ``ID, output`` and the columns of :class:`NCAResult`. ``.attrs["units"]``
        maps each column to its unit.

    Raises
    ------
    DataError
        A subject with no dose or several doses, too few positive observations, or an invalid dataset (with row
        and column).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = np.arange(0.0, 25.0)
    >>> data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 24, "AMT": [100] + [0] * 24,
    ...                      "DV": np.r_[np.nan, 100 / 32 * np.exp(-2.8 / 32 * t[1:])]})
    >>> table = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L")
    >>> round(float(table["cl"].iloc[0]), 3), table.attrs["units"]["cl"]
    (2.8, 'L / h')
    """
    import pandas as pd

    from .nonmem import NonmemDataset, read_nonmem

    if route not in ROUTES:
        raise DataError(f"route must be one of {', '.join(ROUTES)}; got {route!r}." + did_you_mean(str(route), ROUTES))
    _check_method(auc_method, "nca")
    if isinstance(data, NonmemDataset):
        if dose_unit is not None and data.dose_unit not in (None, dose_unit):
            raise DataError(f"nca: dose_unit={dose_unit!r} contradicts the dataset's unit of AMT "
                            f"({data.dose_unit!r}); give one of them", file=data.source)
        ds = data
    else:
        ds = read_nonmem(data, time_unit=time_unit, dose_unit=dose_unit)
    if ds.dose_unit == "target":
        raise DataError("nca: dose_unit='target' needs a model (NCA has none); give the unit of AMT, e.g. "
                        "dose_unit='mg' (--dose-unit mg)", column="AMT", file=ds.source)
    dose_unit = ds.dose_unit
    table = ds.data
    obs = ds.observations()
    src = ds.source
    rows = []
    for sid, sub in table.groupby("ID", sort=False):
        doses = sub[np.isin(sub["EVID"], (1, 4)) & (sub["AMT"] > 0)]
        if len(doses) != 1:
            row = int(sub["ROW"].iloc[0])
            raise DataError(f"ID {_id(sid)}: NCA here is single-dose and needs exactly one dose record (EVID 1 or 4, "
                            f"AMT > 0); got {len(doses)}. Analyse one dosing interval at a time", row=row,
                            column="AMT", file=src)
        d = doses.iloc[0]
        if float(d.get("ADDL", 0) or 0) > 0:
            raise DataError(f"ID {_id(sid)}: additional doses (ADDL) make this a multiple-dose profile; NCA here is "
                            "single-dose", row=int(d["ROW"]), column="ADDL", file=src)
        rate = float(d.get("RATE", 0) or 0)
        dur = float(d.get("DUR", 0) or 0)
        amount = float(d["AMT"])
        this_route, duration = route, 0.0
        if rate > 0 or dur > 0:
            this_route, duration = "iv-infusion", dur if dur > 0 else amount / rate
        mine = obs[obs["ID"] == sid]
        groups = mine.groupby("DVID", sort=False) if "DVID" in mine else [(None, mine)]
        for out, part in groups:
            t = part["TIME"].to_numpy(dtype=float) - float(d["TIME"])
            c = part["DV"].to_numpy(dtype=float)
            keep = t >= 0
            t, c = t[keep], c[keep]
            blq = part["BLQ"].to_numpy()[keep].astype(bool) if "BLQ" in part else np.zeros(t.size, bool)
            if "LLOQ" in part:
                lloq = part["LLOQ"].to_numpy(dtype=float)[keep]
                blq |= np.isfinite(lloq) & (c < lloq)
            first_q = np.flatnonzero(~blq & (c > 0))
            cut = first_q[0] if first_q.size else t.size
            c = np.where(blq & (np.arange(t.size) < cut), 0.0, c)
            drop = blq & (np.arange(t.size) >= cut)
            t, c = t[~drop], c[~drop]
            where = f"ID {_id(sid)}" + (f", output {out}" if out is not None else "")
            try:
                res = nca_profile(t, c, amount, route=this_route, duration=duration, auc_method=auc_method)
            except DataError as err:
                raise DataError(f"{where}: {err}", file=src) from None
            rows.append({"ID": _id(sid), "output": "DV" if out is None else _id(out), **res.as_dict()})
    frame = pd.DataFrame(rows, columns=["ID", "output", *_NCA_COLUMNS])
    frame.attrs["units"] = _units(conc_unit, dose_unit, time_unit)
    return frame


def _id(x):
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def endpoint_table(endpoints: Mapping[str, Endpoint] | list[Endpoint], model) -> list[dict]:
    """Rows (name, output, metric, definition, unit) describing endpoints for a model (used by reports).

    Examples
    --------
    >>> import pkpd
    >>> endpoint_table([Endpoint("IL10", "cmax")], pkpd.load_model("msc_sepsis"))[0]["unit"]
    'pg/mL'
    """
    eps = list(endpoints.values()) if isinstance(endpoints, Mapping) else list(endpoints)
    out = []
    for ep in eps:
        u = model.unit_of(ep.output)
        out.append({"endpoint": ep.name, "output": ep.output, "metric": ep.metric,
                    "definition": ep.describe(u, model.time_unit).rsplit(" [", 1)[0],
                    "unit": ep.unit(u, model.time_unit)})
    return out
