r"""Residual error models and the handling of values below the limit of quantification (BLQ).

An *error model* says how an observation ``y`` scatters around the model prediction ``f``. Each is a small frozen
object whose numbers are its parameters (starting values when a fit estimates them), with two methods:

* ``log_likelihood(observed, predicted)``: the log density of each observation [log of 1/output unit];
* ``sample(predicted, rng)``: noisy observations, for simulating a study or a parametric bootstrap;

and ``log_cdf(limit, predicted)`` (the log probability of falling below a limit), which the censoring rules use.

===================================  ==========================================  ===============================
model                                standard deviation of y                      parameters [unit]
===================================  ==========================================  ===============================
``Additive(sd)``                     :math:`\sigma = a`                           sd [output unit]
``Proportional(cv)``                 :math:`\sigma = b f`                         cv [1] (0.2 = 20 %)
``Combined(sd, cv, "variance")``     :math:`\sigma^2 = a^2 + (b f)^2`             sd, cv (NONMEM Y=F+F*EPS(1)+EPS(2)
                                                                                  with two EPS; Monolix "combined2")
``Combined(sd, cv, "sd")``           :math:`\sigma = a + b f`                     sd, cv (Monolix "combined1")
``LogNormal(sigma)``                 :math:`\log y \sim N(\log f, \sigma^2)`      sigma [1] (the SD of log y; NONMEM's
                                                                                  "exponential" model Y=F*EXP(EPS)
                                                                                  with both sides log-transformed)
===================================  ==========================================  ===============================

The first four are normal on the natural scale; ``LogNormal`` is normal on the log scale (its density on the natural
scale includes the Jacobian ``1/y``). Parameters are estimated on the log scale, so an estimated one must start
above 0; ``fixed`` keeps some (or all, ``fixed=True``) at their given values.

Censoring rules (Beal 2001) decide what an observation below the limit of quantification (LLOQ) contributes:

* :class:`M1`: it is dropped (biased: the remaining data over-represent high values);
* :class:`M3`: its likelihood is the probability of being below the LLOQ, :math:`P(Y < \mathrm{LLOQ})`;
* :class:`M4`: as M3, but the observation is known to be positive, :math:`P(0 < Y < \mathrm{LLOQ}) / P(Y > 0)`, and
  every quantified observation is conditioned on ``Y > 0`` too (for ``LogNormal``, M4 is M3).

References
----------
Beal SL (2001) Ways to fit a PK model with some data below the quantification limit. J Pharmacokinet Pharmacodyn
28:481-504.

Examples
--------
>>> import numpy as np
>>> err = Combined(sd=0.5, cv=0.1, convention="variance")
>>> float(err.standard_deviation(np.array([10.0]))[0])  # sqrt(0.5**2 + (0.1 * 10)**2)
1.118033988749895
>>> rng = np.random.default_rng(1)
>>> Proportional(cv=0.2).sample(np.array([100.0, 100.0]), rng).round(1)
array([106.9, 116.4])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import FitError, did_you_mean

__all__ = ["M1", "M3", "M4", "Additive", "Combined", "LogNormal", "Proportional"]

_LOG_2PI = math.log(2.0 * math.pi)
_CONVENTIONS = ("variance", "sd")


def _ndtr_log(x):
    """log Phi(x), whatever the caller's ``scipy.special`` error settings: erfc's underflow on the way to an exact 0
    (a limit some 20 SDs or more above the prediction) and the NaN of a record whose value is thrown away would
    otherwise raise under ``scipy.special.seterr(all="raise")``; a value that is not finite is handled where it is
    used."""
    from scipy.special import errstate, log_ndtr

    with errstate(all="ignore"):
        return log_ndtr(x)


def _check_value(owner: str, name: str, value, fixed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FitError(f"{owner}: {name} must be a number; got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise FitError(f"{owner}: {name} must be finite and >= 0; got {v!r}")
    if v == 0 and not fixed:
        raise FitError(f"{owner}: {name} = 0 cannot be estimated (it is estimated on the log scale); give a "
                       f"positive starting value, or fix it with fixed=({name!r},)")
    return v


def _normalise_fixed(self) -> None:
    names = type(self).parameter_names
    fixed = self.fixed
    if fixed is True:
        fixed = names
    elif fixed is False or fixed is None:
        fixed = ()
    elif isinstance(fixed, str):
        fixed = (fixed,)
    try:
        fixed = tuple(fixed)
    except TypeError:
        raise FitError(f"{type(self).__name__}: fixed must be True, False or a tuple of parameter names "
                       f"{names}; got {self.fixed!r}") from None
    for name in fixed:
        if name not in names:
            raise FitError(f"{type(self).__name__}: unknown parameter {name!r} in fixed."
                           + did_you_mean(str(name), names))
    object.__setattr__(self, "fixed", tuple(n for n in names if n in fixed))
    for name in names:
        object.__setattr__(self, name, _check_value(type(self).__name__, name, getattr(self, name), name in fixed))


class _Normal:
    """Shared methods of the error models (private mixin: the public classes are plain frozen dataclasses)."""

    parameter_names: ClassVar[tuple[str, ...]] = ()
    log_scale: ClassVar[bool] = False

    # -- the public protocol
    def standard_deviation(self, predicted) -> np.ndarray:
        """Standard deviation of an observation at each prediction [output unit; 1 (of log y) for LogNormal]."""
        return self._scale(np.asarray(predicted, dtype=float))[0]

    def log_likelihood(self, observed, predicted) -> np.ndarray:
        """Log density of each observation given its prediction [log of 1/output unit].

        NaN where the model cannot be evaluated (a zero standard deviation, or a non-positive value on the log
        scale).
        """
        y = np.asarray(observed, dtype=float)
        f = np.asarray(predicted, dtype=float)
        with np.errstate(all="ignore"):
            u, m, jac = self._transform(y), self._transform(f), self._log_jacobian(y)
            s = self._scale(f)[0]
            z = (u - m) / s
            out = -0.5 * _LOG_2PI - np.log(s) - 0.5 * z * z + jac
        return np.where(s > 0, out, np.nan)

    def log_cdf(self, limit, predicted) -> np.ndarray:
        """Log probability that an observation falls below ``limit`` [output unit], per prediction."""
        f = np.asarray(predicted, dtype=float)
        with np.errstate(all="ignore"):
            s = self._scale(f)[0]
            z = (self._transform(np.asarray(limit, dtype=float)) - self._transform(f)) / s
        return np.where(s > 0, _ndtr_log(z), np.nan)

    def sample(self, predicted, rng: np.random.Generator) -> np.ndarray:
        """Noisy observations around ``predicted`` (same shape), drawn with the generator ``rng``."""
        if not isinstance(rng, np.random.Generator):
            raise FitError(f"{type(self).__name__}.sample: rng must be a numpy Generator "
                           f"(np.random.default_rng(seed)); got {type(rng).__name__}")
        f = np.asarray(predicted, dtype=float)
        s = self._scale(f)[0]
        eps = rng.standard_normal(f.shape)
        if self.log_scale:
            return f * np.exp(s * eps)
        return f + s * eps

    # -- private helpers used by the fitter
    def _transform(self, x):
        return np.log(x) if self.log_scale else x

    def _log_jacobian(self, y):
        return -np.log(y) if self.log_scale else np.zeros_like(y)

    def values(self) -> dict[str, float]:
        """The parameters as a dict name -> value."""
        return {n: getattr(self, n) for n in self.parameter_names}

    def _scale(self, f):  # pragma: no cover - every model overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class Additive(_Normal):
    """Constant standard deviation: :math:`y = f + a\\,\\varepsilon`, :math:`\\varepsilon \\sim N(0, 1)`.

    Attributes
    ----------
    sd : float [output unit]
        Standard deviation ``a`` (a starting value when estimated).
    fixed : bool or tuple of str
        Parameters kept at their value in a fit (``True`` = all).

    Examples
    --------
    >>> Additive(sd=2.0).log_likelihood([11.0], [10.0]).round(4)
    array([-1.7371])
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("sd",)
    sd: float
    fixed: bool | tuple[str, ...] = False

    def __post_init__(self):
        _normalise_fixed(self)

    def _scale(self, f):
        ones = np.ones_like(f)
        return self.sd * ones, 0.0 * ones, {"sd": ones}


@dataclass(frozen=True)
class Proportional(_Normal):
    """Standard deviation proportional to the prediction: :math:`y = f\\,(1 + b\\,\\varepsilon)`.

    The prediction must be positive wherever there is an observation (a zero prediction gives a zero standard
    deviation, and the likelihood cannot be evaluated): use :class:`Combined` when predictions reach 0.

    Attributes
    ----------
    cv : float [1]
        Coefficient of variation ``b`` (0.2 = 20 %).
    fixed : bool or tuple of str
        Parameters kept at their value in a fit (``True`` = all).

    Examples
    --------
    >>> Proportional(cv=0.1).standard_deviation([50.0, 200.0])
    array([ 5., 20.])
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("cv",)
    cv: float = 0.2
    fixed: bool | tuple[str, ...] = False

    def __post_init__(self):
        _normalise_fixed(self)

    def _scale(self, f):
        return self.cv * f, self.cv * np.ones_like(f), {"cv": f}


@dataclass(frozen=True)
class Combined(_Normal):
    """Additive plus proportional error, in one of the two conventions in use (name it: they differ).

    ``convention="variance"``: :math:`\\sigma^2 = a^2 + (b f)^2` (two independent errors whose variances add;
    NONMEM's ``Y = F + F*EPS(1) + EPS(2)``, Monolix "combined2"). ``convention="sd"``: :math:`\\sigma = a + b f`
    (the standard deviations add; Monolix "combined1"). For the same ``a`` and ``b`` the second is larger.

    Attributes
    ----------
    sd : float [output unit]
        Additive part ``a``.
    cv : float [1]
        Proportional part ``b``.
    convention : {"variance", "sd"}
    fixed : bool or tuple of str
        Parameters kept at their value in a fit (``True`` = all, ``("sd",)`` = the additive part).

    Examples
    --------
    >>> Combined(sd=3.0, cv=0.1, convention="variance").standard_deviation([40.0])
    array([5.])
    >>> Combined(sd=3.0, cv=0.1, convention="sd").standard_deviation([40.0])
    array([7.])
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("sd", "cv")
    sd: float
    cv: float
    convention: str
    fixed: bool | tuple[str, ...] = False

    def __post_init__(self):
        if self.convention not in _CONVENTIONS:
            raise FitError(f"Combined: convention must be 'variance' (sd**2 = a**2 + (b*f)**2) or 'sd' "
                           f"(sd = a + b*f); got {self.convention!r}")
        _normalise_fixed(self)
        if self.sd == 0 and self.cv == 0:
            raise FitError("Combined: sd and cv are both 0, so observations have no error; give positive values")

    def _scale(self, f):
        a, b = self.sd, self.cv
        if self.convention == "sd":
            ones = np.ones_like(f)
            return a + b * f, b * ones, {"sd": ones, "cv": f}
        s = np.sqrt(a * a + (b * f) ** 2)
        with np.errstate(all="ignore"):
            return s, b * b * f / s, {"sd": a / s, "cv": b * f * f / s}


@dataclass(frozen=True)
class LogNormal(_Normal):
    """Log-normal error: :math:`\\log y = \\log f + \\sigma\\,\\varepsilon` (NONMEM's exponential error model with
    both sides log-transformed).

    Predictions and quantified observations must be positive. The density on the natural scale includes the
    Jacobian :math:`1/y`, so its -2 log-likelihood can be compared with that of the other error models on the
    same data.

    Attributes
    ----------
    sigma : float [1]
        Standard deviation of ``log y`` (about the coefficient of variation when small).
    fixed : bool or tuple of str
        Parameters kept at their value in a fit (``True`` = all).

    Examples
    --------
    >>> import numpy as np
    >>> float(LogNormal(sigma=0.3).log_cdf([100.0], [100.0])[0]) == float(np.log(0.5))
    True
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("sigma",)
    log_scale: ClassVar[bool] = True
    sigma: float = 0.2
    fixed: bool | tuple[str, ...] = False

    def __post_init__(self):
        _normalise_fixed(self)

    def _scale(self, f):
        ones = np.ones_like(f)
        return self.sigma * ones, 0.0 * ones, {"sigma": ones}


ERROR_MODELS = (Additive, Proportional, Combined, LogNormal)


# ---------------------------------------------------------------------------------------------------- censoring
def _log_diff_ndtr(a, b):
    """log(Phi(a) - Phi(b)) for a > b, accurate in both tails."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(all="ignore"):
        # upper tail (both positive): Phi(a) - Phi(b) = Phi(-b) - Phi(-a)
        upper = b > 0
        hi = np.where(upper, -b, a)
        lo = np.where(upper, -a, b)
        lhi = _ndtr_log(hi)
        out = lhi + np.log1p(-np.exp(_ndtr_log(lo) - lhi))
    return out


@dataclass(frozen=True)
class M1:
    """Beal's method M1: observations below the LLOQ are dropped (for comparison; biased when many are BLQ).

    Examples
    --------
    >>> M1().log_likelihood(Additive(sd=1.0), [0.5, 3.0], [1.0, 3.0], [1.0, 1.0], [True, False]).round(4)
    array([ 0.    , -0.9189])
    """

    counts_censored: ClassVar[bool] = False

    def log_likelihood(self, error, observed, predicted, limit, censored) -> np.ndarray:
        """Per observation: the error model's log density; 0 for a censored one (it is dropped, and not counted)."""
        ll = error.log_likelihood(observed, predicted)
        return np.where(np.asarray(censored, dtype=bool), 0.0, ll)


@dataclass(frozen=True)
class M3:
    """Beal's method M3: a censored observation contributes :math:`P(Y < \\mathrm{LLOQ})`.

    Examples
    --------
    >>> import numpy as np
    >>> ll = M3().log_likelihood(Additive(sd=1.0), [1.0], [1.0], [1.0], [True])
    >>> bool(np.isclose(ll[0], np.log(0.5)))
    True
    """

    counts_censored: ClassVar[bool] = True

    def log_likelihood(self, error, observed, predicted, limit, censored) -> np.ndarray:
        """Per observation: log density if quantified, log P(Y < limit) if censored."""
        censored = np.asarray(censored, dtype=bool)
        return np.where(censored, error.log_cdf(limit, predicted), error.log_likelihood(observed, predicted))


@dataclass(frozen=True)
class M4:
    """Beal's method M4: as M3, with every observation known to be positive (conditioned on :math:`Y > 0`).

    A censored observation contributes :math:`P(0 < Y < \\mathrm{LLOQ}) / P(Y > 0)`, a quantified one its density
    divided by :math:`P(Y > 0)`. For :class:`LogNormal` errors :math:`P(Y > 0) = 1` and M4 is M3.

    Examples
    --------
    >>> import numpy as np
    >>> ll = M4().log_likelihood(Additive(sd=1.0), [0.5], [0.0], [1.0], [True])  # P(0<Y<1)/P(Y>0) = 0.3413/0.5
    >>> round(float(np.exp(ll[0])), 4)
    0.6827
    """

    counts_censored: ClassVar[bool] = True

    def log_likelihood(self, error, observed, predicted, limit, censored) -> np.ndarray:
        """Per observation: the M4 log-likelihood (see the class docstring)."""
        if error.log_scale:
            return M3().log_likelihood(error, observed, predicted, limit, censored)
        censored = np.asarray(censored, dtype=bool)
        f = np.asarray(predicted, dtype=float)
        with np.errstate(all="ignore"):
            s = error.standard_deviation(f)
            positive = _ndtr_log(f / s)
            below = _log_diff_ndtr((np.asarray(limit, dtype=float) - f) / s, -f / s)
        return np.where(censored, below, error.log_likelihood(observed, f)) - positive


CENSORING = {"M1": M1, "M3": M3, "M4": M4}


