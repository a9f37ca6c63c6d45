r"""Prior distributions of model parameters, the rule that turns a literature range into a prior, and the
inverse-Wishart prior of :math:`\Omega`.

A parameter in a model file may declare a prior, with its source like any value::

    [parameters.k_c]
    value = 0.0289
    ...
    prior = { dist = "lognormal", median = 0.0289, cv = 0.5, source = "Lee 2009 ..." }

================  ==================================  ==========================================================
``dist``          keys                                density of the parameter's value :math:`x`
================  ==================================  ==========================================================
``"lognormal"``   ``median`` and ``cv`` or ``sigma``  :math:`\log x \sim N(\log\mathrm{median}, \sigma^2)`,
                                                      :math:`\sigma^2 = \log(1+cv^2)`
``"normal"``      ``mean``, ``sd``                    :math:`x \sim N(\mathrm{mean}, sd^2)`
``"logitnormal"`` ``median``, ``sigma``               :math:`\mathrm{logit}\,x \sim N(\mathrm{logit}\,\mathrm{median},
                                                      \sigma^2)` (a fraction in (0, 1))
``"uniform"``     none: the parameter's finite bounds :math:`1/(\mathrm{high}-\mathrm{low})`
``"halfnormal"``  ``scale``                           :math:`x = |z|\,\mathrm{scale}`, for SDs
================  ==================================  ==========================================================

Optional keys: ``source`` (text) and ``grade`` (``"A"``-``"D"``, as in the literature table). Densities are of the
parameter's *natural* value (no change of variables): a maximum-a-posteriori fit maximises likelihood x prior over
the values as declared (NONMEM's ``$PRIOR`` on THETA does the same), and the posterior sampler of
:func:`pkpd.sample` works with the same densities (the Jacobian of its internal log/logit scales is added there).

From a literature range to a prior (the rule used for the shipped MSC models)
-----------------------------------------------------------------------------
A value :math:`v` with a plausible range :math:`[lo, hi]` (the parameter's bounds in the shipped files) becomes,
by :func:`prior_from_range`:

* a parameter that can be negative (lower bound < 0): normal, mean :math:`v`, sd :math:`(hi - lo)/(2z)`;
* a fraction (dimensionless, bounds within [0, 1]): logit-normal, median :math:`v`,
  :math:`\sigma = (\mathrm{logit}\,hi - \mathrm{logit}\,lo)/(2z)`;
* any other positive parameter: log-normal, median :math:`v`, :math:`\sigma = \log(hi/lo)/(2z)`: the range is read
  as a central interval of the prior on the log scale, its width set by the range, its centre by the value;

where the interval's coverage, and so :math:`z`, comes from the grade of the source: **A** (read from a paper) a
95 % interval, :math:`z = 1.960`; **B** (figure, secondary source) and **C** (derived by arithmetic) a 90 %
interval, :math:`z = 1.645`; **D** (unverified lead, or our assumption) an 80 % interval, :math:`z = 1.282`. So a
grade-D "plausible range x/÷10" becomes a log-normal with :math:`\sigma = \log 10 / 1.282 = 1.80` (a 95 % prior
interval of x/÷34), while the grade-A/C IL-10 half-life 1.9-4.5 h gives :math:`\sigma = 0.26`.

References
----------
Gelman A et al. (2013) Bayesian Data Analysis, 3rd ed. (the inverse-Wishart, ch. 3.6).
Beal SL et al. NONMEM Users Guides, $PRIOR NWPRI (normal priors on THETA, inverse-Wishart on OMEGA).

Examples
--------
>>> p = LogNormalPrior(median=0.0289, sigma=0.5)
>>> round(float(p.log_density(0.0289)), 4)
3.3181
>>> prior_from_range(0.28, (0.154, 0.365), "A")  # doctest: +ELLIPSIS
LogNormalPrior(median=0.28, sigma=0.2201..., source='rule A: bounds [0.154, 0.365] as a 95 % interval', grade='A')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import ModelFileError, PkpdError

__all__ = ["HalfNormalPrior", "InverseWishart", "LogNormalPrior", "LogitNormalPrior", "NormalPrior", "UniformPrior",
           "prior_from_dict", "prior_from_range"]

_LOG_2PI = math.log(2.0 * math.pi)
#: z of the central interval that a literature range stands for, by grade of the source (see the module docstring)
GRADE_Z = {"A": 1.959963984540054, "B": 1.6448536269514722, "C": 1.6448536269514722, "D": 1.2815515655446004}
_GRADE_COVERAGE = {"A": "95 %", "B": "90 %", "C": "90 %", "D": "80 %"}


def _positive(owner: str, name: str, value) -> float:
    v = _number(owner, name, value)
    if not v > 0:
        raise PkpdError(f"{owner}: {name} must be > 0; got {v!r}")
    return v


def _number(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PkpdError(f"{owner}: {name} must be a number; got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise PkpdError(f"{owner}: {name} must be finite; got {v!r}")
    return v


def _text(owner: str, source, grade):
    if not isinstance(source, str):
        raise PkpdError(f"{owner}: source must be text; got {source!r}")
    if grade is not None and (not isinstance(grade, str) or grade not in GRADE_Z):   # a list: no TypeError
        raise PkpdError(f"{owner}: grade must be one of A, B, C, D; got {grade!r}")


class _Prior:
    """Shared methods (private mixin; the public classes are plain frozen dataclasses)."""

    #: the scale on which the prior is normal (or flat): "log", "logit", "linear"
    scale: str = "linear"

    def log_density(self, x) -> np.ndarray:
        """Log density at the parameter's natural value(s) ``x`` [log of 1/parameter unit]; -inf outside the
        support."""
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            out = self._log_density(x)
        return np.where(np.isnan(out), -np.inf, out)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws with the generator ``rng`` (shape (n,))."""
        if not isinstance(rng, np.random.Generator):
            raise PkpdError(f"{type(self).__name__}.sample: rng must be a numpy Generator; got {type(rng).__name__}")
        return self._sample(int(n), rng)

    @property
    def location(self) -> float:
        """A central value inside the support (median, or mean for the normal prior) [parameter unit]."""
        return self._location()

    def scale_sd(self) -> float:
        """Standard deviation of the prior on the scale ``scale`` (log, logit or linear), for prior-to-posterior
        SD ratios."""
        return self._scale_sd()


@dataclass(frozen=True)
class LogNormalPrior(_Prior):
    r"""Log-normal prior: :math:`\log x \sim N(\log\,\mathrm{median}, \sigma^2)` (a positive parameter).

    ``LogNormalPrior.from_cv(median, cv)`` uses :math:`\sigma^2 = \log(1 + cv^2)` (the CV of the distribution).

    Examples
    --------
    >>> round(LogNormalPrior.from_cv(2.0, 0.5).sigma, 4)
    0.4724
    """

    median: float
    sigma: float
    source: str = ""
    grade: str | None = None
    scale = "log"

    def __post_init__(self):
        object.__setattr__(self, "median", _positive("LogNormalPrior", "median", self.median))
        object.__setattr__(self, "sigma", _positive("LogNormalPrior", "sigma", self.sigma))
        _text("LogNormalPrior", self.source, self.grade)

    @classmethod
    def from_cv(cls, median: float, cv: float, source: str = "", grade: str | None = None) -> LogNormalPrior:
        """The log-normal prior with this median and coefficient of variation (0.5 = 50 %)."""
        cv = _positive("LogNormalPrior", "cv", cv)
        return cls(median, math.sqrt(math.log1p(cv * cv)), source, grade)

    def _log_density(self, x):
        z = (np.log(x) - math.log(self.median)) / self.sigma
        return np.where(x > 0, -0.5 * z * z - math.log(self.sigma) - 0.5 * _LOG_2PI - np.log(x), -np.inf)

    def _sample(self, n, rng):
        return self.median * np.exp(self.sigma * rng.standard_normal(n))

    def _location(self):
        return self.median

    def _scale_sd(self):
        return self.sigma


@dataclass(frozen=True)
class NormalPrior(_Prior):
    """Normal prior :math:`x \\sim N(\\mathrm{mean}, sd^2)`.

    Examples
    --------
    >>> round(float(NormalPrior(0.0, 1.0).log_density(0.0)), 6)
    -0.918939
    """

    mean: float
    sd: float
    source: str = ""
    grade: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "mean", _number("NormalPrior", "mean", self.mean))
        object.__setattr__(self, "sd", _positive("NormalPrior", "sd", self.sd))
        _text("NormalPrior", self.source, self.grade)

    def _log_density(self, x):
        z = (x - self.mean) / self.sd
        return -0.5 * z * z - math.log(self.sd) - 0.5 * _LOG_2PI

    def _sample(self, n, rng):
        return self.mean + self.sd * rng.standard_normal(n)

    def _location(self):
        return self.mean

    def _scale_sd(self):
        return self.sd


@dataclass(frozen=True)
class LogitNormalPrior(_Prior):
    r"""Logit-normal prior of a fraction: :math:`\mathrm{logit}\,x \sim N(\mathrm{logit}\,\mathrm{median}, \sigma^2)`.

    Examples
    --------
    >>> p = LogitNormalPrior(0.5, 1.0)
    >>> round(float(p.log_density(0.5)), 4)  # N(0; 0, 1) density / (0.5 * 0.5)
    0.4674
    """

    median: float
    sigma: float
    source: str = ""
    grade: str | None = None
    scale = "logit"

    def __post_init__(self):
        m = _number("LogitNormalPrior", "median", self.median)
        if not 0 < m < 1:
            raise PkpdError(f"LogitNormalPrior: median must be a fraction in (0, 1); got {m!r}")
        object.__setattr__(self, "median", m)
        object.__setattr__(self, "sigma", _positive("LogitNormalPrior", "sigma", self.sigma))
        _text("LogitNormalPrior", self.source, self.grade)

    def _log_density(self, x):
        inside = (x > 0) & (x < 1)
        xs = np.where(inside, x, 0.5)
        z = (np.log(xs / (1 - xs)) - _logit(self.median)) / self.sigma
        val = -0.5 * z * z - math.log(self.sigma) - 0.5 * _LOG_2PI - np.log(xs * (1 - xs))
        return np.where(inside, val, -np.inf)

    def _sample(self, n, rng):
        return 1.0 / (1.0 + np.exp(-(_logit(self.median) + self.sigma * rng.standard_normal(n))))

    def _location(self):
        return self.median

    def _scale_sd(self):
        return self.sigma


@dataclass(frozen=True)
class UniformPrior(_Prior):
    """Uniform prior on ``[lower, upper]`` (in a model file: on the parameter's bounds, which must be finite).

    Examples
    --------
    >>> float(UniformPrior(0.0, 4.0).log_density(1.0)) == float(np.log(0.25))
    True
    """

    lower: float
    upper: float
    source: str = ""
    grade: str | None = None

    def __post_init__(self):
        lo = _number("UniformPrior", "lower", self.lower)
        hi = _number("UniformPrior", "upper", self.upper)
        if not lo < hi:
            raise PkpdError(f"UniformPrior: lower < upper is needed; got [{lo}, {hi}]")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        _text("UniformPrior", self.source, self.grade)

    def _log_density(self, x):
        return np.where((x >= self.lower) & (x <= self.upper), -math.log(self.upper - self.lower), -np.inf)

    def _sample(self, n, rng):
        return rng.uniform(self.lower, self.upper, n)

    def _location(self):
        return 0.5 * (self.lower + self.upper)

    def _scale_sd(self):
        return (self.upper - self.lower) / math.sqrt(12.0)


@dataclass(frozen=True)
class HalfNormalPrior(_Prior):
    """Half-normal prior of a standard deviation (or any positive scale): ``x = |z| * scale``.

    Examples
    --------
    >>> round(float(HalfNormalPrior(1.0).log_density(0.0)), 6)  # log(2 / sqrt(2 pi))
    -0.225791
    """

    scale_parameter: float
    source: str = ""
    grade: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "scale_parameter", _positive("HalfNormalPrior", "scale", self.scale_parameter))
        _text("HalfNormalPrior", self.source, self.grade)

    def _log_density(self, x):
        z = x / self.scale_parameter
        return np.where(x >= 0, -0.5 * z * z - math.log(self.scale_parameter) - 0.5 * _LOG_2PI + math.log(2.0),
                        -np.inf)

    def _sample(self, n, rng):
        return np.abs(rng.standard_normal(n)) * self.scale_parameter

    def _location(self):
        return self.scale_parameter * 0.6744897501960817   # the median

    def _scale_sd(self):
        return self.scale_parameter * math.sqrt(1.0 - 2.0 / math.pi)


PRIORS = (LogNormalPrior, NormalPrior, LogitNormalPrior, UniformPrior, HalfNormalPrior)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, eq=False)
class InverseWishart:
    r"""Inverse-Wishart prior of the covariance matrix :math:`\Omega` of the random effects (NONMEM's NWPRI).

    :math:`\Omega \sim W^{-1}(\Psi, \nu)` with scale :math:`\Psi = \nu\,\Omega_0`, so that ``omega``
    (:math:`\Omega_0`, the prior guess, e.g. from an earlier study) is the prior's centre and ``df`` (:math:`\nu`,
    the number of subjects that guess is worth; any :math:`\nu > q - 1` gives a proper prior, :math:`\nu \ge q` is
    usual) its weight, as NONMEM's ``$OMEGAP`` and ``$OMEGAPD``. The density:
    :math:`-2\log p(\Omega) = (\nu + q + 1)\log|\Omega| + \mathrm{tr}(\Psi\Omega^{-1}) + c`.

    Parameters
    ----------
    omega : array_like (q, q) or dict[str, float]
        :math:`\Omega_0` (a dict gives the diagonal by parameter name, in the order of the fit's IIV).
    df : float
        Degrees of freedom :math:`\nu` (> q - 1).

    Examples
    --------
    >>> iw = InverseWishart([[0.1]], df=5)
    >>> round(float(iw.log_density(np.array([[0.1]]))), 4)
    1.8086
    """

    omega: object
    df: float
    source: str = ""

    def __post_init__(self):
        df = _number("InverseWishart", "df", self.df)
        if isinstance(self.omega, Mapping):
            names = tuple(self.omega)
            om = np.diag([_positive("InverseWishart", f"omega[{n!r}]", v) for n, v in self.omega.items()])
        else:
            names = None
            om = np.atleast_2d(np.array(self.omega, dtype=float))   # a copy: the caller's array stays writable
        if om.size == 0:   # q = 0 passed every check below (df > -1) but fits no IIV, and its fields rebuilt no prior
            raise PkpdError(f"InverseWishart: omega must be a (q, q) matrix of q >= 1 random effects; got "
                            f"{self.omega!r}")
        if om.ndim != 2 or om.shape[0] != om.shape[1] or not np.all(np.isfinite(om)) or not np.allclose(om, om.T):
            raise PkpdError(f"InverseWishart: omega must be a symmetric (q, q) matrix; got {self.omega!r}")
        try:
            np.linalg.cholesky(om)
        except np.linalg.LinAlgError:
            raise PkpdError("InverseWishart: omega must be positive definite") from None
        q = om.shape[0]
        if not df > q - 1:
            raise PkpdError(f"InverseWishart: df must be > q - 1 = {q - 1} (a proper prior); got {df!r}")
        om.setflags(write=False)
        object.__setattr__(self, "df", df)
        # the field keeps the values the prior was built with, as the density does: a caller who changes their
        # array or dict afterwards changes neither (nor the repr)
        object.__setattr__(self, "omega", dict(self.omega) if names is not None else om.tolist())
        object.__setattr__(self, "_matrix", om)
        object.__setattr__(self, "_names", names)
        if not isinstance(self.source, str):
            raise PkpdError(f"InverseWishart: source must be text; got {self.source!r}")

    @property
    def matrix(self) -> np.ndarray:
        """:math:`\\Omega_0` as a (q, q) array."""
        return self._matrix

    def matrix_for(self, names) -> np.ndarray:
        """:math:`\\Omega_0` in the order of ``names`` (checked against a dict's names)."""
        names = tuple(names)
        if self._names is not None:
            if set(self._names) != set(names):
                raise PkpdError(f"InverseWishart: omega names {self._names} do not match the random effects {names}")
            idx = [self._names.index(n) for n in names]
            return self._matrix[np.ix_(idx, idx)]
        if self._matrix.shape[0] != len(names):
            raise PkpdError(f"InverseWishart: omega is {self._matrix.shape[0]}x{self._matrix.shape[0]} but there are "
                            f"{len(names)} random effects ({', '.join(names)})")
        return self._matrix

    def log_density(self, omega: np.ndarray, names=None) -> np.ndarray:
        """Log density at :math:`\\Omega` (..., q, q), normalising constant included."""
        from scipy.special import multigammaln

        om0 = self._matrix if names is None else self.matrix_for(names)
        omega = np.asarray(omega, dtype=float)
        q = om0.shape[0]
        nu = self.df
        psi = nu * om0
        sign, logdet = np.linalg.slogdet(omega)
        with np.errstate(all="ignore"):
            tr = np.trace(psi @ np.linalg.inv(omega), axis1=-2, axis2=-1)
        const = 0.5 * nu * np.linalg.slogdet(psi)[1] - 0.5 * nu * q * math.log(2.0) - multigammaln(0.5 * nu, q)
        out = const - 0.5 * (nu + q + 1) * logdet - 0.5 * tr
        return np.where(sign > 0, out, -np.inf)


# ---------------------------------------------------------------------------------------------------- the rule
def prior_from_range(value: float, bounds: tuple[float, float], grade: str, source: str = "", *,
                     fraction: bool = False):
    """The prior that the documented rule gives to a value with a plausible range and a grade of source.

    See the module docstring for the rule. ``fraction`` marks a dimensionless fraction (bounds within [0, 1]):
    logit-normal. ``source`` is added to the prior's own source text.

    Examples
    --------
    >>> prior_from_range(0.85, (0.3, 0.95), "A", fraction=True).median
    0.85
    >>> type(prior_from_range(20.0, (-1.0, 100.0), "D")).__name__
    'NormalPrior'
    """
    if not isinstance(grade, str) or grade not in GRADE_Z:
        raise PkpdError(f"prior_from_range: grade must be one of A, B, C, D; got {grade!r}")
    try:
        if (isinstance(value, str | bytes | bool) or isinstance(bounds, str | bytes) or len(bounds) != 2
                or any(isinstance(b, str | bytes | bool) for b in bounds)):
            raise TypeError
        v = float(value)
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError, OverflowError):
        raise PkpdError(f"prior_from_range: the value must be a number and the bounds two numbers (low, high); got "
                        f"{value!r:.40} and {bounds!r:.60}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < v < hi):
        raise PkpdError(f"prior_from_range: the value {value!r} must lie strictly inside finite bounds; got "
                        f"[{lo}, {hi}]")
    z = GRADE_Z[grade]
    cover = _GRADE_COVERAGE[grade]
    text = f"rule {grade}: bounds [{lo:g}, {hi:g}] as {'an' if cover[0] == '8' else 'a'} {cover} interval"
    if source:
        text += f"; {source}"
    if lo < 0:
        return NormalPrior(v, (hi - lo) / (2 * z), text, grade)
    if fraction:
        if not (lo >= 0 and hi <= 1):
            raise PkpdError(f"prior_from_range: a fraction needs bounds within [0, 1]; got [{lo}, {hi}]")
        lo, hi = max(lo, 1e-12), min(hi, 1 - 1e-12)
        return LogitNormalPrior(v, (_logit(hi) - _logit(lo)) / (2 * z), text, grade)
    if lo <= 0:
        raise PkpdError("prior_from_range: a positive parameter needs a lower bound > 0 for a log-normal prior")
    return LogNormalPrior(v, math.log(hi / lo) / (2 * z), text, grade)


# ---------------------------------------------------------------------------------------------------- model files
_KEYS = {"lognormal": ({"median"}, {"cv", "sigma"}), "normal": ({"mean", "sd"}, set()),
         "logitnormal": ({"median", "sigma"}, set()), "uniform": (set(), set()), "halfnormal": ({"scale"}, set())}


def prior_from_dict(table, bounds: tuple[float, float], *, file=None, section=None):
    """A prior from a model file's ``prior = { dist = ..., ... }`` table, checked against the parameter's bounds.

    Raises
    ------
    ModelFileError
        Unknown ``dist`` or key, a missing or non-numeric number, a uniform prior on infinite bounds (improper), a
        prior whose support does not suit the bounds (log-normal or half-normal on a parameter that may be
        negative), or a median/mean outside the bounds.

    Examples
    --------
    >>> prior_from_dict({"dist": "uniform"}, (0.5, 4.0))
    UniformPrior(lower=0.5, upper=4.0, source='', grade=None)
    """
    from .errors import did_you_mean

    def fail(msg, key="prior"):
        raise ModelFileError(msg, file=file, section=section, key=key)

    if not isinstance(table, Mapping):
        fail(f"must be a table such as {{ dist = \"lognormal\", median = 1.0, cv = 0.5 }}; got {table!r:.80}")
    dist = table.get("dist")
    if not isinstance(dist, str) or dist not in _KEYS:   # a TOML array or table: no TypeError
        fail(f"dist must be one of {', '.join(sorted(_KEYS))}; got {dist!r:.40}."
             + (did_you_mean(dist, _KEYS, list_known=False) if isinstance(dist, str) else ""))
    required, either = _KEYS[dist]
    allowed = {"dist", "source", "grade"} | required | either
    for k in table:
        if k not in allowed:
            fail(f"unknown key {k!r:.40} for dist = {dist!r} (keys: {', '.join(sorted(allowed))})."
                 + did_you_mean(str(k), allowed, list_known=False))
    for k in required:
        if k not in table:
            fail(f"dist = {dist!r} needs the key {k!r}")
    if either and len(either & set(table)) != 1:
        fail(f"dist = {dist!r} needs exactly one of {' or '.join(sorted(either))}")
    source = table.get("source", "")
    grade = table.get("grade")
    lo, hi = bounds
    try:
        if dist == "lognormal":
            if "cv" in table:
                prior = LogNormalPrior.from_cv(table["median"], table["cv"], source, grade)
            else:
                prior = LogNormalPrior(table["median"], table["sigma"], source, grade)
        elif dist == "normal":
            prior = NormalPrior(table["mean"], table["sd"], source, grade)
        elif dist == "logitnormal":
            prior = LogitNormalPrior(table["median"], table["sigma"], source, grade)
        elif dist == "halfnormal":
            prior = HalfNormalPrior(table["scale"], source, grade)
        else:
            if not (math.isfinite(lo) and math.isfinite(hi)):
                fail(f"a uniform prior on the bounds [{lo:g}, {hi:g}] is improper; give finite bounds or "
                     "another prior")
            prior = UniformPrior(lo, hi, source, grade)
    except PkpdError as err:
        if isinstance(err, ModelFileError):
            raise
        fail(str(err))
    check_prior_fits(prior, bounds, fail)
    return prior


def _shown(*values) -> list[str]:
    """The numbers of one message as text: six significant digits (``:g``), or the shortest text that reads back as
    the same float where ``:g`` would print a number like another, different one (a median 2.0000001 refused on the
    bounds [0.5, 2] is not "2")."""
    texts = [f"{v:g}" for v in values]
    return [repr(float(v)) if any(w != v and u == t for w, u in zip(values, texts, strict=True)) else t
            for v, t in zip(values, texts, strict=True)]


def check_prior_fits(prior, bounds, fail) -> None:
    """The prior suits a parameter with these bounds (``fail(message)`` raises)."""
    lo, hi = bounds
    kind = type(prior).__name__
    if isinstance(prior, LogNormalPrior | HalfNormalPrior) and lo < 0:
        fail(f"a {kind} is for positive parameters, but the lower bound is {lo:g}; use a NormalPrior or "
             "raise the lower bound to 0")
    if isinstance(prior, LogitNormalPrior) and (lo < 0 or hi > 1):
        a, b, _, _ = _shown(lo, hi, 0.0, 1.0)
        fail(f"a {kind} is for fractions in (0, 1), but the bounds are [{a}, {b}]")
    if isinstance(prior, UniformPrior):
        if prior.lower != lo or prior.upper != hi:
            a, b, c, d = _shown(lo, hi, prior.lower, prior.upper)
            fail(f"a uniform prior of a model parameter is on its bounds [{a}, {b}]; got [{c}, {d}] (change the "
                 "bounds instead)")
        return
    centre = prior.location
    if not lo <= centre <= hi:
        c, a, b = _shown(centre, lo, hi)
        fail(f"its centre {c} is outside the parameter's bounds [{a}, {b}]; the prior and the bounds contradict "
             "each other")


def prior_to_dict(prior) -> dict:
    """The model-file table of a prior (inverse of :func:`prior_from_dict`)."""
    if isinstance(prior, LogNormalPrior):
        out = {"dist": "lognormal", "median": prior.median, "sigma": prior.sigma}
    elif isinstance(prior, NormalPrior):
        out = {"dist": "normal", "mean": prior.mean, "sd": prior.sd}
    elif isinstance(prior, LogitNormalPrior):
        out = {"dist": "logitnormal", "median": prior.median, "sigma": prior.sigma}
    elif isinstance(prior, HalfNormalPrior):
        out = {"dist": "halfnormal", "scale": prior.scale_parameter}
    else:
        out = {"dist": "uniform"}
    if prior.source:
        out["source"] = prior.source
    if prior.grade is not None:
        out["grade"] = prior.grade
    return out


# ---------------------------------------------------------------------------------------------------- use in fits
def resolve_priors(model, priors, estimated, error_names=()) -> dict:
    """The priors of the estimated parameters: the model file's (``priors=True``), updated by a dict name -> prior
    (``priors={...}``). Error-model parameters are named ``"<output>.<parameter>"`` (``"IL10.cv"``).

    Raises
    ------
    FitError
        A prior on an unknown parameter or one that is not estimated, or something that is not a prior.
    """
    from .errors import FitError, did_you_mean

    if priors is True:
        given = {}
    elif isinstance(priors, Mapping):
        given = dict(priors)
    else:
        raise FitError(f"priors: expected True (the model file's) or a dict name -> prior; got {priors!r:.80}")
    known = set(model.parameter_names) | set(error_names)
    out = {n: model.parameter(n).prior for n in estimated if n in model.parameter_names
           and model.parameter(n).prior is not None}
    for name, prior in given.items():
        if name not in known:
            raise FitError(f"priors: a prior on {name!r}, which is not a parameter of model {model.name!r} nor an "
                           "error-model parameter ('<output>.<name>')." + did_you_mean(str(name), known))
        if name not in estimated:
            raise FitError(f"priors: {name!r} has a prior but is not estimated; add it to estimate (or drop the "
                           "prior)")
        if not isinstance(prior, PRIORS):
            raise FitError(f"priors[{name!r}]: expected a pkpd prior ({', '.join(c.__name__ for c in PRIORS)}); got "
                           f"{type(prior).__name__}")
        if name in model.parameter_names:
            def fail(message, name=name):
                raise FitError(f"priors[{name!r}]: {message}")

            check_prior_fits(prior, model.parameter(name).bounds, fail)
        out[name] = prior
    return out


def posterior_sd_on_prior_scale(prior, estimate: float, se: float) -> float:
    """The posterior SD (from a standard error at the estimate, delta method) on the scale of the prior."""
    with np.errstate(all="ignore"):
        if prior.scale == "log":
            return se / abs(estimate)
        if prior.scale == "logit":
            return se / abs(estimate * (1.0 - estimate))
    return se


class PopulationPriorTerms:
    """-2 log prior of the estimated typical values (and Omega) of a population fit (private to pkpd.nlme)."""

    def __init__(self, layout, iiv, thetas: dict, omega_prior):
        self.layout = layout
        self.thetas = thetas
        names = layout.model.parameter_names
        self.index = [(names.index(n), p) for n, p in thetas.items()]
        self.q = iiv.n_eta
        self.omega_prior = omega_prior
        self.omega0 = omega_prior.matrix_for(iiv.names) if omega_prior is not None else None

    @classmethod
    def build(cls, layout, iiv, priors, omega_prior):
        from .errors import FitError

        thetas = resolve_priors(layout.model, priors, layout.theta_names)
        if omega_prior is not None and not isinstance(omega_prior, InverseWishart):
            raise FitError(f"omega_prior: expected a pkpd.InverseWishart; got {type(omega_prior).__name__}")
        if omega_prior is not None:
            try:
                omega_prior.matrix_for(iiv.names)
            except PkpdError as err:
                raise FitError(f"omega_prior: {err}") from None
        return cls(layout, iiv, thetas, omega_prior)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        theta, omega, _ = self.layout.unpack(np.atleast_2d(X))
        out = np.zeros(theta.shape[0])
        for j, prior in self.index:
            v = theta[:, j]
            if isinstance(prior, UniformPrior):
                # on the parameter's bounds, which the fit enforces on its internal (log) scale: exp(log b) may lie
                # an ulp beyond b (exp(log 10) = 10.000000000000002), as may a finite-difference point beside a
                # bound; the flat prior is its constant there (a NaN stays NaN: the penalty below)
                v = np.clip(v, prior.lower, prior.upper)
            out -= 2.0 * prior.log_density(v)
        if self.omega_prior is not None:
            om = omega[:, :self.q, :self.q]
            iw = InverseWishart(self.omega0, self.omega_prior.df)
            out -= 2.0 * iw.log_density(om)
        return np.where(np.isfinite(out), out, 1e10)

    def sd_ratio(self, estimates: np.ndarray, se: np.ndarray) -> np.ndarray:
        """Posterior SD / prior SD (on the prior's scale) per row of the fit's parameter table (NaN: no prior)."""
        out = np.full(len(estimates), np.nan)
        for k, name in enumerate(self.layout.theta_names):
            prior = self.thetas.get(name)
            if prior is not None:
                out[k] = posterior_sd_on_prior_scale(prior, estimates[k], se[k]) / prior.scale_sd()
        return out


_MARGIN = 2.0 * math.log(1e3)   # as pkpd.fitting's log-normaliser residuals: e + K starts at this value
_ROUNDING = 1e-12   # relative distance from a uniform prior's bound read as rounding, not as outside its support


class IndividualPriorTerms:
    r"""-2 log prior of the estimated parameters of :func:`pkpd.fit`, in the sum-of-squares form of its likelihood
    (private to pkpd.fitting).

    Per prior, :math:`-2\log p(v) = z(v)^2 + e(v) + c` with :math:`z` the standardised value on the prior's scale
    and :math:`e` the Jacobian of that scale (``2 log v`` for log-normal, ``2 log v(1-v)`` for logit-normal): one
    residual :math:`z` and, where :math:`e \ne 0`, one residual :math:`\sqrt{e + K}` with a constant :math:`K`
    chosen as for the error model's log-normaliser residuals (re-centred when it comes close to 0).
    """

    def __init__(self, names, priors: dict, log: np.ndarray):
        self.names = tuple(names)
        self.priors = priors
        self.items = [(self.names.index(n), p) for n, p in priors.items()]
        self.log = np.asarray(log, dtype=bool)
        self.z_rows = [(i, p) for i, p in self.items if not isinstance(p, UniformPrior)]
        self.e_rows = [(i, p) for i, p in self.items if isinstance(p, LogNormalPrior | LogitNormalPrior)]
        self.K = np.zeros(len(self.e_rows))
        self.n_rows = len(self.z_rows) + len(self.e_rows)
        const = 0.0
        for _, p in self.items:
            if isinstance(p, UniformPrior):
                const += 2.0 * math.log(p.upper - p.lower)
            elif isinstance(p, HalfNormalPrior):
                const += 2.0 * math.log(p.scale_parameter) + _LOG_2PI - 2.0 * math.log(2.0)
            else:
                const += 2.0 * math.log(p._scale_sd()) + _LOG_2PI
        self.const = const

    def _values(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(over="ignore"):
            v = np.where(self.log, np.exp(x), x)
        dv = np.where(self.log, v, 1.0)
        return v, dv

    @staticmethod
    def _z(p, v):
        """z and dz/dv."""
        if isinstance(p, NormalPrior):
            return (v - p.mean) / p.sd, 1.0 / p.sd
        if isinstance(p, LogNormalPrior):
            return (math.log(v) - math.log(p.median)) / p.sigma, 1.0 / (p.sigma * v)
        if isinstance(p, LogitNormalPrior):
            return (_logit(v) - _logit(p.median)) / p.sigma, 1.0 / (p.sigma * v * (1.0 - v))
        return v / p.scale_parameter, 1.0 / p.scale_parameter

    @staticmethod
    def _e(p, v):
        """e and de/dv."""
        if isinstance(p, LogNormalPrior):
            return 2.0 * math.log(v), 2.0 / v
        return 2.0 * math.log(v * (1.0 - v)), 2.0 * (1.0 - 2.0 * v) / (v * (1.0 - v))

    def reset(self, x) -> None:
        v, _ = self._values(x)
        for k, (i, p) in enumerate(self.e_rows):
            with np.errstate(all="ignore"):
                e = self._e(p, v[i])[0] if 0 < v[i] and (v[i] < 1 or isinstance(p, LogNormalPrior)) else 0.0
            self.K[k] = _MARGIN - e if math.isfinite(e) else 0.0

    def evaluate(self, x, n_x: int, fisher: bool = False):
        """(-2 log prior, residual rows, their Jacobian rows (rows, n_x), gradient (n_x), clipped, valid)."""
        v, dv = self._values(x)
        r = np.zeros(self.n_rows)
        J = np.zeros((self.n_rows, n_x))
        g = np.zeros(n_x)
        total = self.const
        clipped = False
        try:
            # Python floats: a value on the edge of the support (logit of 1) raises ZeroDivisionError, caught below,
            # instead of numpy's divide warning (or FloatingPointError under np.errstate(divide="raise"))
            for k, (i, p) in enumerate(self.z_rows):
                z, dz = self._z(p, float(v[i]))
                r[k] = z
                J[k, i] = dz * dv[i]
                total += z * z
                g[i] += 2.0 * z * dz * dv[i]
            off = len(self.z_rows)
            for k, (i, p) in enumerate(self.e_rows):
                e, de = self._e(p, float(v[i]))
                b2 = e + self.K[k]
                clipped |= b2 < 1.0
                b = math.sqrt(max(b2, 0.0))
                r[off + k] = b
                if not fisher:
                    J[off + k, i] = de * dv[i] / (2.0 * max(b, 1e-8))
                total += e
                g[i] += de * dv[i]
        except (ValueError, ZeroDivisionError):   # outside the support (log of a non-positive value)
            return math.inf, r, J, g, False, False
        for i, p in self.items:
            # a uniform prior is on the parameter's bounds, which the fit enforces on its own (log) scale, where
            # exp(log b) may lie an ulp beyond b (exp(log 10) = 10.000000000000002): such a value is on the bound
            if isinstance(p, UniformPrior) and not (p.lower - _ROUNDING * abs(p.lower) <= v[i]
                                                    <= p.upper + _ROUNDING * abs(p.upper)):
                return math.inf, r, J, g, False, False
        return total, r, J, g, bool(clipped), bool(math.isfinite(total))

    def sd_ratio(self, estimates: dict, se: dict) -> dict:
        """Posterior SD / prior SD on the prior's scale, by parameter name."""
        return {n: float(posterior_sd_on_prior_scale(p, estimates[n], se[n]) / p.scale_sd())
                for n, p in self.priors.items()}
