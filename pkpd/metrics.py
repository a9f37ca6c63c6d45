r"""Exposure and response metrics per subject, named endpoints, and non-compartmental analysis (NCA).

Three layers, each usable on its own:

* **metric functions** on arrays -- :func:`cmax`, :func:`tmax`, :func:`auc`, :func:`time_above`, :func:`value_at`,
  :func:`nadir`, :func:`time_of_nadir`, :func:`change_from_baseline`. Each takes ``times`` (n_times,) and
  ``values`` (n_subjects, n_times) -- e.g. ``sim.times, sim["IL10"]`` of a :class:`~pkpd.Simulation` -- and returns
  one number per subject (a float for a 1-D ``values``). A failed subject (NaN trajectory) gives NaN.
* :class:`Endpoint` -- a metric with a name, an output and a unit (``"IL10_AUC_0_168"``, ``"TNF_change_48"``): what
  a scenario reports and sets targets on.
* **NCA** of observed concentrations lives in :mod:`pkpd.noncompartmental` (:func:`~pkpd.nca`,
  :func:`~pkpd.nca_profile`; ``pkpd nca data.csv --out nca.csv``); the names still resolve here.

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

References
----------
Gabrielsson J, Weiner D 2016, *Pharmacokinetic and Pharmacodynamic Data Analysis*, 5th ed., Swedish Pharmaceutical
Press (chapter 2, non-compartmental analysis).

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

from .errors import PkpdError, UnitError, did_you_mean

__all__ = ["AUC_METHODS", "CLINICAL_METRICS", "METRICS", "Endpoint", "auc", "change_from_baseline", "cmax",
           "endpoint_table", "median_time", "nadir",
           "time_above", "time_of_nadir", "tmax", "value_at"]

#: AUC interpolation rules: linear trapezoids, or linear-up/log-down.
AUC_METHODS = ("linear", "log-down")


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


#: Ratios within 1 % of 1 (|ln r| < 0.01): their log is taken as log1p of the relative difference.
_NEAR_ONE = (math.exp(-0.01), math.exp(0.01))


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """ln(num / den) of positive finite values, also where the quotient leaves the normal doubles (a decline to a
    subnormal level: 4 over 4e-313 overflows, 5e-324 over 2 rounds to 0): there the difference of the logs; and
    accurate to a few ulps near 1 (a nearly flat segment), where the rounding of the quotient, about 1e-16, would be
    all of a log of 1e-16: there log1p of (num - den)/den, whose difference is exact (Sterbenz)."""
    with np.errstate(over="ignore", under="ignore", divide="ignore"):   # those quotients are replaced below
        ratio = num / den
        out = np.log(ratio)
    odd = ~((ratio >= np.finfo(float).tiny) & (ratio <= np.finfo(float).max))
    if np.any(odd):
        out = np.where(odd, np.log(num) - np.log(den), out)
    near = (ratio > _NEAR_ONE[0]) & (ratio < _NEAR_ONE[1])
    if np.any(near):
        out = np.where(near, np.log1p(np.where(near, num - den, 0.0) / den), out)
    return out


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
            logv = y0 * np.exp(f * _log_ratio(np.where(down, y1, 1.0), np.where(down, y0, 1.0)))
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
            logs = dt * (y0 - y1) / _log_ratio(np.where(down, y0, 2.0), np.where(down, y1, 1.0))
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
# NCA moved to pkpd.noncompartmental (issue 18); these names still resolve here for existing imports.
_MOVED = ("NCAResult", "ROUTES", "nca", "nca_profile")


def __getattr__(name: str):
    if name in _MOVED:
        from . import noncompartmental

        return getattr(noncompartmental, name)
    raise AttributeError(f"module 'pkpd.metrics' has no attribute {name!r}")


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
