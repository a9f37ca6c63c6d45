r"""Non-compartmental analysis (NCA): single-dose, multiple-dose and steady-state profiles, partial areas, manual
terminal phases, and sparse (serial-sacrifice) sampling.

* :func:`nca_profile` -- one concentration-time profile -> :class:`NCAResult`;
* :func:`nca_profiles` / :func:`nca` -- every subject and output of a NONMEM-layout dataset (a dict of results, or
  one table row each with ``.attrs["units"]``); ``pkpd nca data.csv --out nca.csv``;
* :func:`nca_sparse` -- Bailer's method for serial-sacrifice designs (one sample per animal): AUC of the mean
  profile with its standard error -> :class:`SparseNCAResult`.

Conventions (those of PKNCA and Phoenix WinNonlin; Gabrielsson & Weiner 2016, ch. 2)
------------------------------------------------------------------------------------
* Times are relative to the (last) dose. Concentrations below the LLOQ (``BLQ=1``) are set to 0 before the first
  quantified concentration and dropped after it.
* **Cmax, Tmax** are the largest observation and its first time; **Clast, Tlast** the last positive one.
* **AUClast**: linear-up/log-down trapezoids from the dose to Tlast (``auc_method="linear"`` for all-linear).
  Extravascular doses and infusions start from C = 0 at the dose time when it is not observed (at steady state,
  from the smallest concentration of the dosing interval, as WinNonlin does). For an IV bolus, **C0** is
  back-extrapolated log-linearly from the first two positive observations when they decline, else the first
  observation is used (PKNCA ``c0`` methods ``logslope`` then ``c1``; WinNonlin's rule).
* **λz** (``lambda_z_rule="pknca"``, the default): log-linear least squares on the last *n* positive observations
  after Tmax (Cmax itself is never used), for every *n* >= 3. The fit with the largest adjusted
  :math:`R^2 = 1 - (1 - R^2)(n - 1)/(n - 2)` is chosen; fits within 1e-4 of that best adjusted R² count as equally
  good, and among them the one with the most points wins (PKNCA's ``adj.r.squared.factor``, WinNonlin's "best
  fit"). A non-negative slope gives no λz (NaN). ``lambda_z_rule="winnonlin"`` is Phoenix WinNonlin's rule, which
  differs for an **IV bolus**: the point at Cmax may be part of the terminal phase (for other routes Cmax and the
  points before the end of an infusion are excluded, as in PKNCA, which also leaves out a point at the end of the
  infusion: that point can be part of the terminal phase under the WinNonlin rule only).
* **Manual λz** (:class:`LambdaZ`): a time range ``[start, end]`` (every positive point in it is used, no
  best-fit search) and/or points to exclude; fewer than 3 points is an error.
* **t½** = ln 2 / λz; **AUCinf** = AUClast + Clast/λz (observed Clast); **% extrapolated** = 100 (AUCinf - AUClast)
  / AUCinf; **AUMC** with the same trapezoid rule on t·C, AUMCinf = AUMClast + Clast·Tlast/λz + Clast/λz²;
  **MRT** = AUMCinf/AUCinf, minus half the infusion duration for an infusion; **CL** = Dose/AUCinf (CL/F for an
  extravascular dose); **Vz** = CL/λz (Vz/F); **Vss** = CL·MRT (IV only).
* **Partial areas** over ``[a, b]``: the same trapezoids, with concentrations at ``a`` and ``b`` interpolated by
  the same rule (log on a decline for ``"log-down"``); beyond Tlast the area is extrapolated with λz
  (:math:`\int C_{last} e^{-\lambda_z (t - t_{last})} dt`), NaN without λz.
* **Dosing interval** ``tau`` (multiple doses): **AUCτ** = area over ``[0, τ]`` (as a partial area), **Cmax, Cmin**
  (and Tmin) observed within ``[0, τ]``, **Cavg** = AUCτ/τ, **fluctuation** = 100 (Cmax - Cmin)/Cavg [%], **swing**
  = 100 (Cmax - Cmin)/Cmin [%], **accumulation index** = 1/(1 - e^{-λz τ}) (the accumulation ratio of a linear
  drug). With ``steady_state=True`` (the profile is a dosing interval at steady state) clearance is Dose/AUCτ,
  Vz = Dose/(λz AUCτ) and MRT = (AUMCτ + τ (AUCinf - AUCτ))/AUCτ; AUCinf keeps its single-dose definition.

Sparse sampling (Bailer 1988)
-----------------------------
With :math:`n_j` animals sampled once each at time :math:`t_j` (mean :math:`\bar C_j`, variance :math:`s_j^2`),
the linear-trapezoid AUC of the mean profile from the first to the last sampling time is
:math:`\sum_j w_j \bar C_j` with :math:`w_1 = (t_2 - t_1)/2`, :math:`w_j = (t_{j+1} - t_{j-1})/2`,
:math:`w_J = (t_J - t_{J-1})/2`, and its variance is :math:`\sum_j w_j^2 s_j^2 / n_j` (the means are independent:
each animal contributes one sample). A dose-time point (C = 0, or C0 for a bolus) is not added: sample the dose
time if its area matters.

References
----------
Gabrielsson J, Weiner D 2016, *Pharmacokinetic and Pharmacodynamic Data Analysis*, 5th ed., Swedish Pharmaceutical
Press (chapter 2). Denney W, Duvvuri S, Buckeridge C 2015, *Simple, automatic noncompartmental analysis: the PKNCA R
package*, J Pharmacokinet Pharmacodyn 42:S65. Certara, *Phoenix WinNonlin user's guide*, "NCA computational rules"
(λz best fit; for bolus data Cmax may be used). Bailer AJ 1988, *Testing for the equality of area under the curves
when using destructive measurement techniques*, J Pharmacokinet Biopharm 16:303-309. Nedelman JR, Gibiansky E,
Lau DTW 1995, *Applying Bailer's method for AUC confidence intervals to sparse sampling*, Pharm Res 12:124-128.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._arguments import check_level
from .errors import DataError, DosingError, PkpdError, did_you_mean
from .metrics import _check_method, _log_ratio, _segments_auc

__all__ = ["LAMBDA_Z_RULES", "ROUTES", "LambdaZ", "NCAResult", "SparseNCAResult", "nca", "nca_profile",
           "nca_profiles", "nca_sparse", "nca_sparse_table", "partial_auc_name"]

#: NCA dose routes.
ROUTES = ("extravascular", "iv-bolus", "iv-infusion")
#: Rules of the automatic (best-fit) terminal phase: PKNCA's (Cmax never used) or Phoenix WinNonlin's (Cmax may be
#: used for an IV bolus).
LAMBDA_Z_RULES = ("pknca", "winnonlin")
#: Best-fit λz: fits within this of the best adjusted R² are equally good (PKNCA adj.r.squared.factor).
ADJ_R2_FACTOR = 1e-4
#: Fewest points of a λz regression.
MIN_LAMBDA_Z_POINTS = 3
_LOG_MAX = math.log(np.finfo(float).max)   # the largest exponent whose exp is finite


# ------------------------------------------------------------------------------------------------ λz choice
@dataclass(frozen=True)
class LambdaZ:
    """A manual choice of the terminal-phase points of one profile (Phoenix's "Lambda Z ranges" and exclusions).

    Parameters
    ----------
    start, end : float, optional [time unit]
        Use every positive concentration with ``start <= t <= end`` (no best-fit search; the ends match the sampling
        times to rounding, as ``exclude`` does). Give both, or neither.
    exclude : sequence of float [time unit]
        Sampling times left out of the regression (with or without a range; without one, the best fit is searched
        among the remaining points).

    Raises
    ------
    DataError
        Only one of ``start``/``end``, ``end <= start``, or non-finite times.

    Examples
    --------
    >>> LambdaZ(start=4, end=24)
    LambdaZ(start=4.0, end=24.0, exclude=())
    >>> LambdaZ(exclude=[6])
    LambdaZ(start=None, end=None, exclude=(6.0,))
    """

    start: float | None = None
    end: float | None = None
    exclude: tuple = ()

    def __post_init__(self):
        if (self.start is None) != (self.end is None):
            raise DataError(f"LambdaZ: give both start and end of the terminal phase (or neither, for the best fit); "
                            f"got start={self.start!r}, end={self.end!r}")
        if self.start is not None:
            for name in ("start", "end"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                    raise DataError(f"LambdaZ: {name} must be a finite time; got {v!r}")
            if not self.end > self.start:
                raise DataError(f"LambdaZ: end ({self.end:g}) must be after start ({self.start:g})")
            object.__setattr__(self, "start", float(self.start))
            object.__setattr__(self, "end", float(self.end))
        try:
            # a 0-d array is one time, like the number it holds (iterating over it is a TypeError)
            many = isinstance(self.exclude, Sequence) or (isinstance(self.exclude, np.ndarray) and self.exclude.ndim)
            ex = tuple(float(x) for x in (self.exclude if many else [self.exclude]))
        except (TypeError, ValueError):
            raise DataError(f"LambdaZ: exclude must be a list of sampling times; got {self.exclude!r}") from None
        if not all(math.isfinite(x) for x in ex):
            raise DataError(f"LambdaZ: exclude must hold finite times; got {self.exclude!r}")
        object.__setattr__(self, "exclude", ex)

    @property
    def manual_range(self) -> bool:
        """Whether a time range is given (no best-fit search)."""
        return self.start is not None


# ------------------------------------------------------------------------------------------------ result
@dataclass(frozen=True)
class NCAResult:
    """Non-compartmental parameters of one concentration-time profile (conventions in :mod:`pkpd.noncompartmental`).

    Attributes
    ----------
    cmax, tmax, clast, tlast : float
        [conc unit], [time unit] (within ``[0, tau]`` when a dosing interval is given).
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
    lambda_z_intercept : float
        Intercept of the regression of ln C on t [ln conc unit] (for plots).
    lambda_z_times : tuple of float
        The sampling times used for λz.
    lambda_z_method : str
        ``"best fit (pknca)"``, ``"best fit (winnonlin)"``, ``"manual range"`` or ``"best fit, with exclusions"``.
    half_life : float
        ln 2 / λz [time unit].
    mrt : float
        Mean residence time (from the dose) [time unit].
    cl, vz, vss : float
        Clearance Dose/AUCinf (Dose/AUCτ at steady state), volume CL/λz and (IV) CL·MRT; apparent (/F) for
        extravascular doses [dose unit / (conc unit x time unit)], [dose unit / conc unit].
    tau : float
        Dosing interval [time unit] (NaN when none was given).
    steady_state : bool
    auc_tau : float
        AUC over ``[0, tau]`` [conc unit x time unit].
    cmin, tmin : float
        Smallest concentration within ``[0, tau]`` and its time.
    cavg : float
        AUCτ/τ [conc unit].
    fluctuation, swing : float
        100 (Cmax - Cmin)/Cavg and 100 (Cmax - Cmin)/Cmin [%].
    accumulation_index : float
        1/(1 - exp(-λz τ)) [1].
    partial_aucs : tuple of (start, end, auc)
        The partial areas asked for [time unit, time unit, conc unit x time unit].
    n_obs : int
        Observations used.
    route : str
    dose : float
    times, conc : tuple of float
        The profile analysed (after BLQ handling), for plots.
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
    lambda_z_intercept: float = math.nan
    lambda_z_times: tuple = ()
    lambda_z_method: str = "best fit (pknca)"
    tau: float = math.nan
    steady_state: bool = False
    auc_tau: float = math.nan
    cmin: float = math.nan
    tmin: float = math.nan
    cavg: float = math.nan
    fluctuation: float = math.nan
    swing: float = math.nan
    accumulation_index: float = math.nan
    partial_aucs: tuple = ()
    times: tuple = field(default=(), repr=False)
    conc: tuple = field(default=(), repr=False)

    def as_dict(self) -> dict[str, float]:
        """The parameters as an ordered dict (the column order of :func:`nca`; partial areas as ``auc_A_B``)."""
        out = {k: getattr(self, k) for k in _NCA_COLUMNS}
        if math.isfinite(self.tau):
            out |= {k: getattr(self, k) for k in _TAU_COLUMNS}
        for a, b, v in self.partial_aucs:
            out[partial_auc_name(a, b)] = v
        return out

    def plot(self, ax=None, **kwargs):
        """The terminal phase: ln-scale concentrations, the points used for λz and the regression line; see
        :func:`pkpd.decision_plots.plot_lambda_z`."""
        from .decision_plots import plot_lambda_z

        return plot_lambda_z(self, ax=ax, **kwargs)


_NCA_COLUMNS = ("route", "dose", "n_obs", "cmax", "tmax", "c0", "clast", "tlast", "auc_last", "auc_inf",
                "auc_pct_extrap", "aumc_last", "aumc_inf", "lambda_z", "lambda_z_n", "lambda_z_start", "lambda_z_end",
                "r_squared", "adj_r_squared", "half_life", "mrt", "cl", "vz", "vss")
_TAU_COLUMNS = ("tau", "steady_state", "auc_tau", "cmin", "tmin", "cavg", "fluctuation", "swing",
                "accumulation_index")


def partial_auc_name(start: float, end: float) -> str:
    """Column name of a partial area, e.g. ``auc_0_4`` or ``auc_0.5_2``.

    Examples
    --------
    >>> partial_auc_name(0.5, 2)
    'auc_0.5_2'
    """
    return f"auc_{start:g}_{end:g}"


# ------------------------------------------------------------------------------------------------ λz fits
def _regression(x: np.ndarray, lc: np.ndarray):
    """(slope, intercept, r2, adj_r2) of ln C on t, or None when the times do not vary."""
    n = x.size
    xm, ym = x.mean(), lc.mean()
    sxx = float(np.sum((x - xm) ** 2))
    if sxx <= 0:
        return None
    slope = float(np.sum((x - xm) * (lc - ym)) / sxx)
    resid = lc - (ym + slope * (x - xm))
    syy = float(np.sum((lc - ym) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / syy if syy > 0 else 1.0
    adj = 1.0 - (1.0 - r2) * (n - 1) / (n - 2) if n > 2 else math.nan
    return slope, float(ym - slope * xm), r2, adj


_NO_LAMBDA = (math.nan, 0, math.nan, math.nan, math.nan, math.nan, math.nan, ())


def _excluded(t: np.ndarray, times) -> np.ndarray:
    out = np.zeros(t.size, dtype=bool)
    for x in times:
        hit = np.isclose(t, x, rtol=1e-9, atol=1e-9)
        if not hit.any():
            raise DataError(f"LambdaZ: exclude time {x:g} is not a sampling time of the profile "
                            f"({', '.join(f'{v:g}' for v in t)})")
        out |= hit
    return out


def _lambda_z(t: np.ndarray, c: np.ndarray, i_max: int, *, route: str, duration: float, rule: str,
              choice: LambdaZ | None):
    """Terminal phase: (lambda_z, n, t_start, t_end, r2, adj_r2, intercept, times used), or NaNs."""
    pos = c > 0
    if choice is not None and choice.manual_range:
        # the ends match the sampling times to rounding, as the exclusions do (np.isclose, 1e-9 relative and absolute)
        lo, hi = choice.start - 1e-9 * (1.0 + abs(choice.start)), choice.end + 1e-9 * (1.0 + abs(choice.end))
        keep = pos & (t >= lo) & (t <= hi) & ~_excluded(t, choice.exclude)
        if np.count_nonzero(keep) < MIN_LAMBDA_Z_POINTS:
            raise DataError(f"manual lambda_z from {choice.start:g} to {choice.end:g}: only "
                            f"{np.count_nonzero(keep)} positive concentration(s) in that range"
                            + (" after the exclusions" if choice.exclude else "")
                            + f"; a terminal phase needs at least {MIN_LAMBDA_Z_POINTS} points. Widen the range")
        x, lc = t[keep], np.log(c[keep])
        fit = _regression(x, lc)
        slope, icept, r2, adj = fit
        lz = -slope if slope < 0 else math.nan
        return (lz, int(x.size), float(x[0]), float(x[-1]), r2, adj, icept, tuple(float(v) for v in x))
    idx = np.arange(t.size)
    first = i_max if (rule == "winnonlin" and route == "iv-bolus") else i_max + 1
    keep = (idx >= first) & pos
    if route == "iv-infusion":   # no point inside the infusion; PKNCA (time > end of dose) drops its end too
        keep &= (t > duration + 1e-12) if rule == "pknca" else (t >= duration - 1e-12)
    if choice is not None and choice.exclude:
        keep &= ~_excluded(t, choice.exclude)
        if np.count_nonzero(keep) < MIN_LAMBDA_Z_POINTS:
            raise DataError(f"lambda_z with exclusions at {', '.join(f'{x:g}' for x in choice.exclude)}: only "
                            f"{np.count_nonzero(keep)} point(s) of the terminal phase remain; it needs at least "
                            f"{MIN_LAMBDA_Z_POINTS}. Exclude fewer points")
    tt, lc = t[keep], np.log(np.where(keep, c, 1.0)[keep])
    fits = []
    for n in range(MIN_LAMBDA_Z_POINTS, tt.size + 1):
        fit = _regression(tt[-n:], lc[-n:])
        if fit is not None:
            fits.append((fit[3], n, fit[0], fit[2], fit[1]))
    if not fits:
        return _NO_LAMBDA
    top = max(f[0] for f in fits)
    adj, n, slope, r2, icept = max((f for f in fits if f[0] >= top - ADJ_R2_FACTOR), key=lambda f: f[1])
    used = tuple(float(v) for v in tt[-n:])
    lz = -slope if slope < 0 else math.nan
    return (lz, n, used[0], used[-1], r2, adj, icept, used)


# ------------------------------------------------------------------------------------------------ areas
def _value_at(tt: np.ndarray, cc: np.ndarray, at: float, method: str) -> float:
    """Concentration at ``at`` within [tt[0], tt[-1]]: linear, or log on a decline for log-down."""
    j = int(np.searchsorted(tt, at, side="right")) - 1
    if j < 0:
        j = 0
    if tt[j] == at or j >= tt.size - 1:
        return float(cc[min(j, tt.size - 1)])
    c0, c1 = cc[j], cc[j + 1]
    f = (at - tt[j]) / (tt[j + 1] - tt[j])
    if method == "log-down" and c1 < c0 and c1 > 0:
        return float(c0 * math.exp(f * float(_log_ratio(np.float64(c1), np.float64(c0)))))
    return float(c0 + (c1 - c0) * f)


def _area(tt: np.ndarray, cc: np.ndarray, a: float, b: float, method: str, lz: float, t_last: float,
          c_last: float) -> float:
    """AUC over [a, b] of the profile (tt, cc) ending at Tlast, extrapolated with λz beyond Tlast."""
    inside = 0.0
    hi = min(b, t_last)
    if hi > a:
        mid = (tt > a) & (tt < hi)
        xs = np.concatenate(([a], tt[mid], [hi]))
        ys = np.concatenate(([_value_at(tt, cc, a, method)], cc[mid], [_value_at(tt, cc, hi, method)]))
        inside = float(_segments_auc(xs, ys[None, :], method)[0])
    if b <= t_last:
        return inside
    if not (math.isfinite(lz) and lz > 0):
        return math.nan
    lo = max(a, t_last)
    return inside + c_last / lz * (math.exp(-lz * (lo - t_last)) - math.exp(-lz * (b - t_last)))


def _aumc_segments(tt: np.ndarray, cc: np.ndarray, method: str) -> float:
    """AUMC: trapezoids on t*C (linear), or the exact exponential moment on falling segments (log-down)."""
    if tt.size < 2:
        return 0.0
    dt = np.diff(tt)
    t0, t1, c0, c1 = tt[:-1], tt[1:], cc[:-1], cc[1:]
    area = 0.5 * dt * (t0 * c0 + t1 * c1)
    if method == "log-down":
        down = (c1 < c0) & (c1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = _log_ratio(np.where(down, c0, 2.0), np.where(down, c1, 1.0))   # k dt
            k = x / dt
            logs = (t0 * c0 - t1 * c1) / k + (c0 - c1) / k**2
            flat = down & (x < 0.01)
            if np.any(flat):
                # a nearly flat decline: the two terms above, each about 1/x times the moment, cancel; instead t0
                # times the area plus C0 dt² ∫ s e^(-x s) ds over [0, 1], by its series Σ (-x)^n / (n! (n + 2))
                # (the first term left out, x^7/(7! 9), is below 1e-18 for x < 0.01)
                xf = np.where(flat, x, 0.0)
                series = sum((-xf) ** n / (math.factorial(n) * (n + 2)) for n in range(7))
                logs = np.where(flat, t0 * dt * (c0 - c1) / np.where(flat, x, 1.0) + dt**2 * c0 * series, logs)
        area = np.where(down, logs, area)
    return float(area.sum())


def _partial_list(partial) -> tuple[tuple[float, float], ...]:
    if partial is None:
        return ()
    try:
        pairs = [tuple(float(x) for x in p) for p in partial]
    except (TypeError, ValueError):
        raise DataError(f"partial: give a list of (start, end) intervals, e.g. [(0, 4), (4, 12)]; got "
                        f"{partial!r}") from None
    seen: dict[str, tuple] = {}
    for p in pairs:
        if len(p) != 2 or not all(math.isfinite(x) for x in p) or not 0 <= p[0] < p[1]:
            raise DataError(f"partial: each interval must be (start, end) with 0 <= start < end; got {p!r}")
        name = partial_auc_name(*p)
        if name in seen:      # one column per interval: a repeated label would hide one of them in a table
            raise DataError(f"partial: the intervals {seen[name]!r} and {p!r} both give the column {name!r}; give "
                            "each interval once")
        seen[name] = p
    return tuple(pairs)


def _positive(name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise DataError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------ one profile
def nca_profile(times, conc, dose: float, *, route: str = "extravascular", duration: float = 0.0,
                auc_method: str = "log-down", tau: float | None = None, steady_state: bool = False,
                partial=None, lambda_z: LambdaZ | None = None, lambda_z_rule: str = "pknca") -> NCAResult:
    """Non-compartmental analysis of one concentration-time profile.

    Main arguments
    --------------
    times : array_like, shape (n_obs,)
        Sampling times after the dose [time unit] (the dose is at 0; for multiple doses, the last dose).
    conc : array_like, shape (n_obs,)
        Concentrations [conc unit]; NaN entries are dropped.
    dose : float [dose unit]
        The amount given (> 0).
    route : {"extravascular", "iv-bolus", "iv-infusion"}
    duration : float [time unit]
        Infusion duration (``route="iv-infusion"``).
    auc_method : {"log-down", "linear"}
        Linear-up/log-down (default, as PKNCA and WinNonlin recommend) or linear trapezoids.

    Other arguments
    ---------------
    tau : float [time unit], optional
        Dosing interval: adds AUCτ, Cmin, Tmin, Cavg, fluctuation, swing and the accumulation index.
    steady_state : bool
        The profile is one dosing interval at steady state (needs ``tau``): CL, Vz and MRT from AUCτ.
    partial : sequence of (start, end), optional
        Partial areas to compute [time unit].
    lambda_z : LambdaZ, optional
        A manual terminal phase (a time range and/or excluded points); default the best fit.
    lambda_z_rule : {"pknca", "winnonlin"}
        Best-fit rule: PKNCA's (Cmax never in the terminal phase) or WinNonlin's (Cmax may be, for an IV bolus).

    Returns
    -------
    NCAResult

    Raises
    ------
    DataError
        Fewer than 2 positive concentrations, times not increasing or negative, a dose that is not > 0, a manual
        λz with fewer than 3 points, ``steady_state`` without ``tau``, a partial interval with start >= end.

    Examples
    --------
    A one-compartment IV bolus (CL 2.8 L/h, V 32 L, 100 mg), sampled hourly for a day:

    >>> import numpy as np
    >>> t = np.arange(1.0, 25.0)
    >>> res = nca_profile(t, 100 / 32 * np.exp(-2.8 / 32 * t), 100, route="iv-bolus", partial=[(0, 4)])
    >>> round(res.cl, 4), round(res.vz, 3), round(res.half_life, 4), res.lambda_z_n
    (2.8, 32.0, 7.9217, 23)
    >>> round(res.partial_aucs[0][2], 4)   # exact: 100/2.8 (1 - exp(-2.8/32 * 4))
    10.5469
    """
    if route not in ROUTES:
        raise DataError(f"route must be one of {', '.join(ROUTES)}; got {route!r}." + did_you_mean(str(route), ROUTES))
    _check_method(auc_method, "nca")
    if lambda_z_rule not in LAMBDA_Z_RULES:
        raise DataError(f"lambda_z_rule must be one of {', '.join(LAMBDA_Z_RULES)}; got {lambda_z_rule!r}."
                        + did_you_mean(str(lambda_z_rule), LAMBDA_Z_RULES))
    if lambda_z is not None and not isinstance(lambda_z, LambdaZ):
        raise DataError(f"lambda_z must be a LambdaZ(start=..., end=..., exclude=[...]); got {lambda_z!r}")
    t = np.asarray(times, dtype=float).reshape(-1)
    c = np.asarray(conc, dtype=float).reshape(-1)
    if t.shape != c.shape:
        raise DataError(f"times and concentrations differ in length ({t.size} vs {c.size})")
    ok = np.isfinite(c) & np.isfinite(t)
    t, c = t[ok], c[ok]
    _positive("dose", dose)
    if t.size and (np.any(np.diff(t) <= 0) or t[0] < 0):
        raise DataError("sampling times must be >= 0 (time after dose) and strictly increasing")
    if np.any(c < 0):
        raise DataError(f"concentrations must be >= 0; got {float(c.min()):g}")
    if np.count_nonzero(c > 0) < 2:
        raise DataError(f"at least 2 positive concentrations are needed for NCA; got {np.count_nonzero(c > 0)}")
    if route == "iv-infusion" and not duration > 0:
        raise DataError(f"an iv-infusion needs its duration > 0; got {duration!r}")
    tau = _positive("tau", tau, allow_none=True)
    if steady_state and tau is None:
        raise DataError("steady_state=True needs the dosing interval tau (e.g. tau=24)")
    intervals = _partial_list(partial)

    in_tau = np.ones(t.size, dtype=bool) if tau is None else (t <= tau * (1 + 1e-12))
    if not in_tau.any():
        raise DataError(f"no sample within the dosing interval [0, {tau:g}]")
    i_max = int(np.argmax(np.where(in_tau, c, -np.inf)))
    c_max, t_max = float(c[i_max]), float(t[i_max])
    pos = np.flatnonzero(c > 0)
    i_last = int(pos[-1])
    c_last, t_last = float(c[i_last]), float(t[i_last])
    lz, n_lz, lz0, lz1, r2, adj, icept, used = _lambda_z(t, c, i_max, route=route, duration=duration,
                                                         rule=lambda_z_rule, choice=lambda_z)

    c0 = math.nan
    tt, cc = t[: i_last + 1], c[: i_last + 1]
    if tt[0] > 0:
        if route == "iv-bolus":
            p = pos[:2]
            c1, c2 = c[p[0]], c[p[1]]
            if c2 < c1:
                log_c0 = math.log(c1) - (math.log(c2) - math.log(c1)) / (t[p[1]] - t[p[0]]) * t[p[0]]
                if log_c0 > _LOG_MAX:
                    raise DataError(f"iv-bolus: C0 back-extrapolated log-linearly from the first two positive samples "
                                    f"({c1:g} at t = {t[p[0]]:g}, {c2:g} at t = {t[p[1]]:g}) is exp({log_c0:.0f}), "
                                    "beyond the largest number; they decline too steeply, too long after the dose: "
                                    "give the concentration at the dose time, or check the route and the times")
                c0 = float(math.exp(log_c0))
            else:
                c0 = float(c1)
            start = c0
        elif steady_state:
            start = float(np.min(c[in_tau]))   # the pre-dose level of the interval (WinNonlin)
        else:
            start = 0.0
        tt, cc = np.concatenate(([0.0], tt)), np.concatenate(([start], cc))
    elif route == "iv-bolus":
        c0 = float(cc[0])
    auc_last = float(_segments_auc(tt, cc[None, :], auc_method)[0])
    aumc_last = _aumc_segments(tt, cc, auc_method)
    if math.isfinite(lz):
        auc_inf = auc_last + c_last / lz
        aumc_inf = aumc_last + c_last * t_last / lz + c_last / lz**2
        pct = 100.0 * (auc_inf - auc_last) / auc_inf
        half = math.log(2.0) / lz
    else:
        auc_inf = aumc_inf = pct = half = math.nan
    infusion_half = duration / 2.0 if route == "iv-infusion" else 0.0
    mrt = aumc_inf / auc_inf - infusion_half
    cl = dose / auc_inf
    vz = cl / lz if math.isfinite(lz) else math.nan
    vss = cl * mrt if route != "extravascular" else math.nan

    extra = {}
    if tau is not None:
        auc_tau = _area(tt, cc, 0.0, tau, auc_method, lz, t_last, c_last)
        cw, tw = c[in_tau], t[in_tau]
        k = int(np.argmin(cw))
        c_min, t_min = float(cw[k]), float(tw[k])
        cavg = auc_tau / tau
        with np.errstate(divide="ignore", invalid="ignore"):
            fluct = 100.0 * (c_max - c_min) / cavg if cavg > 0 else math.nan
            swing = 100.0 * (c_max - c_min) / c_min if c_min > 0 else math.nan
        racc = 1.0 / (1.0 - math.exp(-lz * tau)) if math.isfinite(lz) else math.nan
        extra = dict(tau=tau, steady_state=bool(steady_state), auc_tau=auc_tau, cmin=c_min, tmin=t_min, cavg=cavg,
                     fluctuation=fluct, swing=swing, accumulation_index=racc)
        if steady_state and auc_tau > 0:
            aumc_tau = _aumc_tau(tt, cc, tau, auc_method, lz, t_last, c_last)
            cl = dose / auc_tau
            vz = dose / (lz * auc_tau) if math.isfinite(lz) else math.nan
            mrt = (aumc_tau + tau * (auc_inf - auc_tau)) / auc_tau - infusion_half
            vss = cl * mrt if route != "extravascular" else math.nan
        elif steady_state:            # no exposure over the interval: the clearance and volumes are not determined
            cl = vz = mrt = vss = math.nan
    partials = tuple((a, b, _area(tt, cc, a, b, auc_method, lz, t_last, c_last)) for a, b in intervals)
    if lambda_z is None:
        how = f"best fit ({lambda_z_rule})"
    elif lambda_z.manual_range:
        how = "manual range"
    else:
        how = "best fit, with exclusions"
    return NCAResult(cmax=c_max, tmax=t_max, clast=c_last, tlast=t_last, c0=c0, auc_last=auc_last, auc_inf=auc_inf,
                     auc_pct_extrap=pct, aumc_last=aumc_last, aumc_inf=aumc_inf, lambda_z=lz, lambda_z_n=int(n_lz),
                     lambda_z_start=lz0, lambda_z_end=lz1, r_squared=r2, adj_r_squared=adj, half_life=half, mrt=mrt,
                     cl=cl, vz=vz, vss=vss, n_obs=int(t.size), route=route, dose=float(dose),
                     lambda_z_intercept=icept, lambda_z_times=used, lambda_z_method=how, partial_aucs=partials,
                     times=tuple(float(v) for v in t), conc=tuple(float(v) for v in c), **extra)


def _aumc_tau(tt, cc, tau, method, lz, t_last, c_last) -> float:
    """AUMC over [0, tau] (extrapolated with λz beyond Tlast)."""
    hi = min(tau, t_last)
    mid = (tt > 0) & (tt < hi)
    xs = np.concatenate(([tt[0]], tt[mid], [hi]))
    ys = np.concatenate(([cc[0]], cc[mid], [_value_at(tt, cc, hi, method)]))
    out = _aumc_segments(xs, ys, method)
    if tau > t_last:
        if not (math.isfinite(lz) and lz > 0):
            return math.nan

        def moment(x):   # integral of t * Clast exp(-lz (t - tlast)) from tlast to x, up to a constant
            return -c_last * math.exp(-lz * (x - t_last)) * (x / lz + 1.0 / lz**2)

        out += moment(tau) - moment(t_last)
    return out


# ------------------------------------------------------------------------------------------------ units
def _units(conc_unit, dose_unit, time_unit, partial=()) -> dict[str, str]:
    """Units of the NCA columns (pint reduces CL and V to readable units, e.g. L/h)."""
    from . import units as un

    out = {"tmax": time_unit, "tlast": time_unit, "lambda_z_start": time_unit, "lambda_z_end": time_unit,
           "half_life": time_unit, "mrt": time_unit, "lambda_z": f"1/{time_unit}", "tau": time_unit,
           "tmin": time_unit, "lambda_z_n": "1", "r_squared": "1", "adj_r_squared": "1", "n_obs": "1",
           "fluctuation": "%", "swing": "%", "accumulation_index": "1", "auc_pct_extrap": "%"}
    if conc_unit:
        for k in ("cmax", "c0", "clast", "cmin", "cavg"):
            out[k] = conc_unit
        for k in ("auc_last", "auc_inf", "auc_tau", *(partial_auc_name(a, b) for a, b in partial)):
            out[k] = f"{conc_unit}*{time_unit}"
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
    return out


# ------------------------------------------------------------------------------------------------ datasets
def _id(x):
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def _output_groups(mine, sid, src):
    """One subject's observations split by output (DVID), in the order of the data; without a DVID column (or without
    observations) one group, output None. A missing DVID names no output: refused (pandas' groups would drop it)."""
    from .nonmem import _absent

    if "DVID" not in mine or not len(mine):
        return [(None, mine)]
    missing = np.flatnonzero([_absent(v) for v in mine["DVID"]])
    if missing.size:
        raise DataError(f"ID {_id(sid)}: an observation has no DVID, so it names no output; give each observation its "
                        "output's number or name, or leave the DVID column out for a single output",
                        row=int(mine["ROW"].iloc[missing[0]]), column="DVID", file=src)
    return mine.groupby("DVID", sort=False)


def _subject_options(options, ids, what: str) -> dict:
    """Per-subject options: one value for every subject, or a dict ID -> value (IDs checked)."""
    if options is None or not isinstance(options, Mapping):
        return {}
    known = {str(_id(i)): _id(i) for i in ids}
    out = {}
    for k, v in options.items():
        key = str(_id(k))
        if key not in known:
            raise DataError(f"{what}: no subject {k!r} in the data." + did_you_mean(key, list(known)))
        out[known[key]] = v
    return out


def _read_dataset(data, time_unit: str | None, dose_unit: str | None, what: str = "nca"):
    """The NonmemDataset of ``data`` and the unit of its TIME (canonical). Neither unit is guessed or silently
    replaced: a dataset already read keeps its own, and a unit given with it must agree (``dose_unit`` or the data
    state the unit of AMT; ``time_unit`` defaults to h for a file or table)."""
    from .dosing import _canonical_time_unit
    from .nonmem import NonmemDataset, read_nonmem

    if time_unit is not None:
        try:
            time_unit = _canonical_time_unit(what, time_unit)
        except DosingError as err:
            raise DataError(str(err)) from None
    if isinstance(data, NonmemDataset):
        if dose_unit is not None and data.dose_unit not in (None, dose_unit):
            raise DataError(f"{what}: dose_unit={dose_unit!r} contradicts the dataset's unit of AMT "
                            f"({data.dose_unit!r}); give one of them", file=data.source)
        if time_unit is not None and time_unit != data.time_unit:
            raise DataError(f"{what}: time_unit={time_unit!r} contradicts the dataset's unit of TIME "
                            f"({data.time_unit!r}, as read_nonmem read it); give one of them", file=data.source)
        ds = data
    else:
        ds = read_nonmem(data, time_unit=time_unit or "h", dose_unit=dose_unit)
    if ds.dose_unit == "target":
        raise DataError(f"{what}: dose_unit='target' needs a model (NCA has none); give the unit of AMT, e.g. "
                        "dose_unit='mg' (--dose-unit mg)", column="AMT", file=ds.source)
    return ds, ds.time_unit


def nca_profiles(data, *, route: str = "extravascular", auc_method: str = "log-down", time_unit: str | None = None,
                 dose_unit: str | None = None, tau: float | None = None, steady_state: bool = False, partial=None,
                 lambda_z: LambdaZ | Mapping | None = None, lambda_z_rule: str = "pknca") -> dict:
    """NCA of every subject and output of a NONMEM-layout dataset: ``{(ID, output): NCAResult}``.

    Arguments as :func:`nca`. Use it for per-subject plots (``result.plot()``,
    :func:`pkpd.decision_plots.plot_lambda_z`).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = np.arange(0.0, 25.0)
    >>> data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 24, "AMT": [100] + [0] * 24,
    ...                      "DV": np.r_[np.nan, 100 / 32 * np.exp(-2.8 / 32 * t[1:])]})
    >>> res = nca_profiles(data, route="iv-bolus", dose_unit="mg")
    >>> list(res), round(res[(1, "DV")].cl, 3)
    ([(1, 'DV')], 2.8)
    """
    if route not in ROUTES:
        raise DataError(f"route must be one of {', '.join(ROUTES)}; got {route!r}." + did_you_mean(str(route), ROUTES))
    _check_method(auc_method, "nca")
    _partial_list(partial)                  # checked once: a bad interval is no one subject's problem
    ds, time_unit = _read_dataset(data, time_unit, dose_unit)
    table = ds.data
    obs = ds.observations()
    src = ds.source
    ids = list(dict.fromkeys(table["ID"]))
    choices = _subject_options(lambda_z, ids, "lambda_z") if isinstance(lambda_z, Mapping) else {}
    if lambda_z is not None and not isinstance(lambda_z, Mapping | LambdaZ):
        raise DataError(f"lambda_z must be a LambdaZ (every subject) or a dict ID -> LambdaZ; got {lambda_z!r}")
    results = {}
    for sid, sub in table.groupby("ID", sort=False):
        doses = sub[np.isin(sub["EVID"], (1, 4)) & (sub["AMT"] > 0)]
        if len(doses) != 1 and not (steady_state and len(doses) >= 1):
            row = int(sub["ROW"].iloc[0])
            raise DataError(f"ID {_id(sid)}: NCA here is single-dose and needs exactly one dose record (EVID 1 or 4, "
                            f"AMT > 0); got {len(doses)}. Analyse one dosing interval at a time, or give "
                            "steady_state=True and tau (the last dose starts the interval)", row=row, column="AMT",
                            file=src)
        d = doses.iloc[-1]
        if float(d.get("ADDL", 0) or 0) > 0 and not steady_state:
            raise DataError(f"ID {_id(sid)}: additional doses (ADDL) make this a multiple-dose profile; give "
                            "steady_state=True and tau to analyse the last interval", row=int(d["ROW"]),
                            column="ADDL", file=src)
        rate = float(d.get("RATE", 0) or 0)
        dur = float(d.get("DUR", 0) or 0)
        amount = float(d["AMT"])
        dose_time = float(d["TIME"])
        addl = int(float(d.get("ADDL", 0) or 0))
        if addl:
            ii = float(d.get("II", 0) or 0)
            dose_time += addl * ii
        if rate < 0:
            # RATE -1 / -2 leave the rate / duration to a model's R / D; NCA has none, and the profile must not be
            # read as the route's (an extravascular dose, or an infusion of no duration)
            what = "rate" if rate == -1 else "duration"
            raise DataError(f"ID {_id(sid)}: the dose record has RATE {rate:g} (the infusion's {what} from the "
                            "model); NCA has no model, so the infusion's duration is unknown: give it as DUR (with "
                            "RATE 0), or the rate as RATE > 0", row=int(d["ROW"]), column="RATE", file=src)
        this_route, duration = route, 0.0
        if rate > 0 or dur > 0:
            this_route, duration = "iv-infusion", dur if dur > 0 else amount / rate
        mine = obs[obs["ID"] == sid]
        # a subject without observations is refused (by nca_profile, naming it), with a DVID column or without
        groups = _output_groups(mine, sid, src)
        choice = choices.get(_id(sid), lambda_z if isinstance(lambda_z, LambdaZ) else None)
        for out, part in groups:
            t = part["TIME"].to_numpy(dtype=float) - dose_time
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
            where = f"ID {_id(sid)}" + (f", output {_id(out)}" if out is not None else "")
            try:
                res = nca_profile(t, c, amount, route=this_route, duration=duration, auc_method=auc_method, tau=tau,
                                  steady_state=steady_state, partial=partial, lambda_z=choice,
                                  lambda_z_rule=lambda_z_rule)
            except DataError as err:
                raise DataError(f"{where}: {err}", file=src) from None
            results[(_id(sid), "DV" if out is None else _id(out))] = res
    return results


def nca(data, *, route: str = "extravascular", auc_method: str = "log-down", time_unit: str | None = None,
        dose_unit: str | None = None, conc_unit: str | None = None, tau: float | None = None,
        steady_state: bool = False, partial=None, lambda_z: LambdaZ | Mapping | None = None,
        lambda_z_rule: str = "pknca"):
    """Non-compartmental analysis of every subject and output of a NONMEM-layout dataset.

    Each subject must have exactly one dose record (``EVID`` 1 or 4 with ``AMT`` > 0); its time is time zero of the
    profile (with ``steady_state=True``: the last dose, including ``ADDL`` repeats). Observations are split by
    ``DVID`` (the output's name or number) when the column is present; each observation then needs one. A dose
    record with ``RATE`` > 0 or ``DUR`` > 0 is an infusion (its duration enters the MRT), whatever ``route`` says;
    one with ``RATE`` -1 or -2 (rate or duration from a model) is refused: give ``DUR`` or ``RATE`` > 0.

    Main arguments
    --------------
    data : str, path, pandas.DataFrame or NonmemDataset
        NONMEM layout: ``ID, TIME, DV, AMT, EVID`` (``MDV, CMT, DVID, RATE, DUR, BLQ, LLOQ, ADDL, II`` optional).
    route : {"extravascular", "iv-bolus", "iv-infusion"}
        How the doses were given (used when the dose record has no RATE/DUR).
    auc_method : {"log-down", "linear"}
    time_unit : {"min", "h", "day", "week"}, optional
        Unit of ``TIME``: default h for a file or table; a NonmemDataset has its own (a different one given here
        is an error).
    dose_unit, conc_unit : str, optional
        Units of ``AMT`` and ``DV``; when both are given, CL and V are reported in reduced units (e.g. L/h, L).
        The unit of AMT is never guessed: ``dose_unit`` is needed unless the data state it (an ``AMTU`` column,
        or a NonmemDataset read with ``dose_unit=``).

    Other arguments
    ---------------
    tau : float, optional
        Dosing interval [time unit]: AUCτ, Cmin, Cavg, fluctuation, swing, accumulation index.
    steady_state : bool
        Profiles are a dosing interval at steady state (needs ``tau``).
    partial : sequence of (start, end), optional
        Partial areas [time unit], as columns ``auc_START_END``.
    lambda_z : LambdaZ or dict[ID, LambdaZ], optional
        Manual terminal phases: one for every subject, or per subject (others: the best fit).
    lambda_z_rule : {"pknca", "winnonlin"}
        Best-fit rule (see :mod:`pkpd.noncompartmental`).

    Returns
    -------
    pandas.DataFrame
        One row per subject and output, in the order they first appear in the data: ``ID, output``, the columns of
        :class:`NCAResult` (with ``tau``: also ``tau, steady_state, auc_tau, cmin, tmin, cavg, fluctuation, swing,
        accumulation_index``), the partial areas and ``lambda_z_method``. ``.attrs["units"]`` maps each column to its
        unit.

    Raises
    ------
    DataError
        A subject with no dose or several doses, too few positive observations, a manual λz with fewer than 3
        points, a λz choice for a subject not in the data, an observation without a DVID in data with a DVID
        column, or an invalid dataset (with row and column).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = np.arange(0.0, 25.0)
    >>> data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 24, "AMT": [100] + [0] * 24,
    ...                      "DV": np.r_[np.nan, 100 / 32 * np.exp(-2.8 / 32 * t[1:])]})
    >>> table = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L", partial=[(0, 12)])
    >>> round(float(table["cl"].iloc[0]), 3), table.attrs["units"]["cl"], table.attrs["units"]["auc_0_12"]
    (2.8, 'L / h', 'mg/L*h')
    """
    import pandas as pd

    ds, time_unit = _read_dataset(data, time_unit, dose_unit)
    results = nca_profiles(ds, route=route, auc_method=auc_method, time_unit=time_unit, tau=tau,
                           steady_state=steady_state, partial=partial, lambda_z=lambda_z, lambda_z_rule=lambda_z_rule)
    intervals = _partial_list(partial)
    columns = ["ID", "output", *_NCA_COLUMNS]
    if tau is not None:
        columns += list(_TAU_COLUMNS)
    columns += [partial_auc_name(a, b) for a, b in intervals] + ["lambda_z_method"]
    rows = [{"ID": sid, "output": out, **res.as_dict(), "lambda_z_method": res.lambda_z_method}
            for (sid, out), res in results.items()]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["units"] = _units(conc_unit, ds.dose_unit, time_unit, intervals)
    return frame


# ------------------------------------------------------------------------------------------------ sparse sampling
@dataclass(frozen=True)
class SparseNCAResult:
    """NCA of a serial-sacrifice (sparse) design: the mean profile and Bailer's AUC with its standard error.

    Attributes
    ----------
    times : ndarray (n_times,)
        Distinct sampling times [time unit].
    mean, sd : ndarray (n_times,)
        Mean and sample SD of the concentrations at each time [conc unit] (SD NaN with one animal).
    n : ndarray of int (n_times,)
        Animals sampled at each time.
    auc_last : float
        Linear-trapezoid AUC of the mean profile from the first to the last sampling time [conc unit x time unit].
    auc_last_se : float
        Its standard error (Bailer 1988) [conc unit x time unit].
    ci_low, ci_high : float
        Normal confidence interval at ``level``.
    level : float
    cmax, tmax : float
        Of the mean profile.
    weights : ndarray (n_times,)
        The trapezoid weights w_j [time unit].
    dose : float
    """

    times: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    auc_last: float
    auc_last_se: float
    ci_low: float
    ci_high: float
    level: float
    cmax: float
    tmax: float
    weights: np.ndarray = field(repr=False)
    dose: float = math.nan

    def as_dict(self) -> dict:
        """The scalar results, in table order."""
        return {"dose": self.dose, "n_times": int(self.times.size), "n_animals": int(self.n.sum()),
                "cmax": self.cmax, "tmax": self.tmax, "auc_last": self.auc_last, "auc_last_se": self.auc_last_se,
                "ci_low": self.ci_low, "ci_high": self.ci_high}


def nca_sparse(times, conc, *, dose: float = math.nan, level: float = 0.95) -> SparseNCAResult:
    r"""Bailer's AUC of a serial-sacrifice design (one sample per animal), with its standard error.

    Parameters
    ----------
    times : array_like (n_samples,)
        Sampling time of each animal [time unit] (several animals per time).
    conc : array_like (n_samples,)
        Concentration of each animal [conc unit]; NaN samples are dropped.
    dose : float, optional
        The amount given (> 0) [dose unit], recorded in the result; default NaN (none recorded).
    level : float
        Level of the normal confidence interval.

    Returns
    -------
    SparseNCAResult

    Raises
    ------
    DataError
        Fewer than 2 distinct times, a time without a finite sample, negative times or concentrations, a dose that is
        not > 0.

    Examples
    --------
    Two animals at each of 0, 1 and 3 h (weights 0.5, 1.5, 1.0):

    >>> res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])
    >>> res.auc_last, round(res.auc_last_se, 4)        # 1.5 * 9 + 1.0 * 3; sqrt(1.5^2 * 2/2 + 1^2 * 2/2)
    (16.5, 1.8028)
    """
    from scipy.stats import norm

    t = np.asarray(times, dtype=float).reshape(-1)
    c = np.asarray(conc, dtype=float).reshape(-1)
    if t.shape != c.shape:
        raise DataError(f"nca_sparse: times and concentrations differ in length ({t.size} vs {c.size})")
    ok = np.isfinite(c)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise DataError("nca_sparse: sampling times must be finite and >= 0")
    t, c = t[ok], c[ok]
    if np.any(c < 0):
        raise DataError("nca_sparse: concentrations must be >= 0")
    level = check_level(level, "nca_sparse", DataError)
    if not (isinstance(dose, numbers.Real) and math.isnan(dose)):     # NaN, the default: no dose recorded
        dose = _positive("nca_sparse: dose", dose)
    grid = np.unique(t)
    if grid.size < 2:
        raise DataError(f"nca_sparse: need samples at 2 or more distinct times; got {grid.size}")
    n = np.array([np.count_nonzero(t == g) for g in grid])
    mean = np.array([c[t == g].mean() for g in grid])
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.array([np.std(c[t == g], ddof=1) if k > 1 else math.nan for g, k in zip(grid, n)])
    gaps = np.diff(grid)
    w = np.zeros(grid.size)
    w[:-1] += gaps / 2
    w[1:] += gaps / 2
    auc = float(np.sum(w * mean))
    var_terms = np.where(n > 1, w**2 * np.nan_to_num(sd) ** 2 / n, np.where(w > 0, math.nan, 0.0))
    se = float(math.sqrt(np.sum(var_terms))) if np.all(np.isfinite(var_terms)) else math.nan
    z = float(norm.ppf(0.5 + level / 2))
    k = int(np.argmax(mean))
    for a in (grid, mean, sd, n, w):
        a.setflags(write=False)
    return SparseNCAResult(times=grid, mean=mean, sd=sd, n=n, auc_last=auc, auc_last_se=se, ci_low=auc - z * se,
                           ci_high=auc + z * se, level=float(level), cmax=float(mean[k]), tmax=float(grid[k]),
                           weights=w, dose=float(dose))


def nca_sparse_table(data, *, time_unit: str | None = None, dose_unit: str | None = None,
                     conc_unit: str | None = None, level: float = 0.95, by: Sequence[str] = ()):
    """Bailer's sparse NCA of a NONMEM-layout dataset: one profile per output (``DVID``), dose amount and ``by``
    columns, pooling the animals (each animal one subject with one dose and observations at one time).

    Returns
    -------
    pandas.DataFrame
        ``output, dose`` (and the ``by`` columns), ``n_times, n_animals, cmax, tmax, auc_last, auc_last_se, ci_low,
        ci_high``, with ``.attrs["units"]``; one row per group, in the order the groups first appear in the data.

    Raises
    ------
    DataError
        A subject sampled at more than one time (Bailer's variance assumes one sample per animal), a subject without
        one dose, an unknown ``by`` column, an observation without a DVID in data with a DVID column.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = []
    >>> for i, (t, c) in enumerate([(1, 8), (1, 10), (3, 2), (3, 4), (0, 0), (0, 0)]):
    ...     rows += [{"ID": i + 1, "TIME": 0, "EVID": 1, "AMT": 10, "DV": None},
    ...              {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0, "DV": c}]
    >>> table = nca_sparse_table(pd.DataFrame(rows), dose_unit="mg", conc_unit="mg/L")
    >>> table[["auc_last", "auc_last_se"]].round(4).values.tolist()
    [[16.5, 1.8028]]
    """
    import pandas as pd

    ds, time_unit = _read_dataset(data, time_unit, dose_unit, "nca_sparse")
    dose_unit = ds.dose_unit
    table = ds.data
    obs = ds.observations()
    by = [by] if isinstance(by, str) else list(by)
    for col in by:
        if col not in table.columns:
            raise DataError(f"nca_sparse: no column {col!r} in the data." + did_you_mean(col, list(table.columns)))
    samples = []
    for sid, sub in table.groupby("ID", sort=False):
        doses = sub[np.isin(sub["EVID"], (1, 4)) & (sub["AMT"] > 0)]
        if len(doses) != 1:
            raise DataError(f"ID {_id(sid)}: sparse NCA needs one dose record per animal; got {len(doses)}",
                            row=int(sub["ROW"].iloc[0]), column="AMT", file=ds.source)
        d = doses.iloc[0]
        mine = obs[obs["ID"] == sid]
        groups = _output_groups(mine, sid, ds.source)
        for out, part in groups:
            t = part["TIME"].to_numpy(dtype=float) - float(d["TIME"])
            if np.unique(t).size > 1:
                raise DataError(f"ID {_id(sid)}: sampled at {np.unique(t).size} times; Bailer's method assumes one "
                                "sample per animal (a serial-sacrifice design). Use nca() for serial sampling",
                                row=int(part["ROW"].iloc[1]), column="TIME", file=ds.source)
            for tv, cv in zip(t, part["DV"].to_numpy(dtype=float)):
                samples.append({"output": "DV" if out is None else _id(out), "dose": float(d["AMT"]),
                                **{col: d[col] for col in by}, "TIME": tv, "DV": cv})
    frame = pd.DataFrame(samples)
    keys = ["output", "dose", *by]
    rows = []
    for key, part in frame.groupby(keys, sort=False):
        res = nca_sparse(part["TIME"], part["DV"], dose=float(part["dose"].iloc[0]), level=level)
        rows.append({**dict(zip(keys, key)), **{k: v for k, v in res.as_dict().items() if k != "dose"}})
    out = pd.DataFrame(rows)
    units = {"tmax": time_unit, "n_times": "1", "n_animals": "1"}
    if conc_unit:
        units |= {"cmax": conc_unit}
        units |= {k: f"{conc_unit}*{time_unit}" for k in ("auc_last", "auc_last_se", "ci_low", "ci_high")}
    if dose_unit:
        units["dose"] = dose_unit
    out.attrs["units"] = units
    return out

