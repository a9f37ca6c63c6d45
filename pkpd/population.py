r"""Between-subject variability (IIV) and its parameter transformations.

An :class:`IIV` declares random effects :math:`\eta \sim N(0, \Omega)` on named model parameters, with a full or
block covariance matrix :math:`\Omega` (checked positive definite) and, per parameter, how :math:`\eta` enters:

* ``"lognormal"`` (default): :math:`P_i = \theta\,e^{\eta_i}` (NONMEM ``TVCL*EXP(ETA(1))``);
* ``"normal"``: :math:`P_i = \theta + \eta_i`;
* ``"logitnormal"``: :math:`P_i = \mathrm{expit}(\mathrm{logit}\,\theta + \eta_i)` (a fraction in (0, 1)).

The same object drives population estimation (:func:`pkpd.nlme.fit_population`) and virtual populations.
An :class:`IOV` declares inter-occasion variability :math:`\kappa_{ik} \sim N(0, \Pi)`, drawn afresh for every
occasion *k* of subject *i* and added to :math:`\eta_i`: :math:`P_{ik} = \theta\,e^{\eta_i + \kappa_{ik}}`
(NONMEM ``TVCL*EXP(ETA(1)+ETA(2)*OCC1+ETA(3)*OCC2...)`` with ``$OMEGA BLOCK SAME``).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import PkpdError, did_you_mean

__all__ = ["IIV", "IOV", "Categorical", "CovariateEffect", "LogNormalCovariate", "Normal", "PopulationSimulation",
           "Uniform", "VirtualPopulation", "simulate_population", "transform", "virtual_population"]

DISTRIBUTIONS = ("lognormal", "normal", "logitnormal")


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False, init=False)
class IIV:
    r"""Between-subject variability :math:`\eta \sim N(0, \Omega)` on named parameters.

    Parameters
    ----------
    variances : dict[str, float]
        Parameter name -> variance :math:`\omega^2` of its :math:`\eta` [1 on the log scale for log-normal, i.e.
        about CV²; parameter unit² for normal]. Order defines the order of :math:`\eta`.
    covariances : dict[tuple[str, str], float], optional
        Off-diagonal elements of :math:`\Omega` (a block); pairs not given are 0 (and stay 0 in estimation).
    distribution : str or dict[str, str], optional
        ``"lognormal"`` (default), ``"normal"`` or ``"logitnormal"``, for all parameters or per parameter.

    Attributes
    ----------
    names : tuple of str
        The parameters with a random effect, in :math:`\eta` order.
    omega : ndarray, shape (q, q)
        :math:`\Omega` (read-only).
    distributions : tuple of str
        One per name.

    Raises
    ------
    PkpdError
        A non-positive variance, a covariance naming an unknown parameter, an :math:`\Omega` that is not positive
        definite, or an unknown distribution.

    Examples
    --------
    >>> iiv = IIV({"CL": 0.09, "V": 0.04}, covariances={("CL", "V"): 0.03})
    >>> iiv.omega
    array([[0.09, 0.03],
           [0.03, 0.04]])
    >>> iiv.individual(np.array([2.0, 30.0]), np.array([[0.0, 0.1]])).round(3)
    array([[ 2.   , 33.155]])
    """

    names: tuple[str, ...]
    omega: np.ndarray
    distributions: tuple[str, ...]

    def __init__(self, variances: Mapping[str, float], *, covariances: Mapping | None = None,
                 distribution: str | Mapping[str, str] = "lognormal"):
        if not isinstance(variances, Mapping) or not variances:
            raise PkpdError(f"IIV: variances must be a non-empty dict name -> variance; got {variances!r}")
        names = tuple(str(k) for k in variances)
        q = len(names)
        om = np.zeros((q, q))
        for i, n in enumerate(names):
            v = variances[n]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
                raise PkpdError(f"IIV: the variance of eta on {n!r} must be a positive number; got {v!r}")
            om[i, i] = float(v)
        for key, c in dict(covariances or {}).items():
            try:
                a, b = key
            except (TypeError, ValueError):
                raise PkpdError(f"IIV: covariances keys must be pairs of parameter names; got {key!r}") from None
            for x in (a, b):
                if x not in names:
                    raise PkpdError(f"IIV: covariance ({a!r}, {b!r}) names {x!r}, which has no variance."
                                    + did_you_mean(str(x), names))
            i, j = names.index(a), names.index(b)
            if i == j:
                raise PkpdError(f"IIV: covariance ({a!r}, {b!r}) is a variance; give it in variances")
            om[i, j] = om[j, i] = float(c)
        _check_positive_definite(om, names)
        if isinstance(distribution, str):
            dist = (distribution,) * q
        else:
            unknown = set(distribution) - set(names)
            if unknown:
                x = sorted(unknown)[0]
                raise PkpdError(f"IIV: distribution given for {x!r}, which has no variance." + did_you_mean(x, names))
            dist = tuple(distribution.get(n, "lognormal") for n in names)
        for n, d in zip(names, dist):
            if d not in DISTRIBUTIONS:
                raise PkpdError(f"IIV: distribution of {n!r} must be one of {DISTRIBUTIONS}; got {d!r}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "omega", _readonly(om))
        object.__setattr__(self, "distributions", dist)

    @classmethod
    def from_matrix(cls, names, omega, *, distribution: str | Mapping[str, str] = "lognormal") -> IIV:
        """An IIV from a full covariance matrix ``omega`` (q, q) over ``names``.

        Examples
        --------
        >>> IIV.from_matrix(["ka", "CL"], [[0.4, 0.0], [0.0, 0.07]]).names
        ('ka', 'CL')
        """
        om = np.asarray(omega, dtype=float)
        names = tuple(names)
        if om.shape != (len(names), len(names)):
            raise PkpdError(f"IIV: omega must be ({len(names)}, {len(names)}) for names {names}; got shape {om.shape}")
        if not np.allclose(om, om.T):
            raise PkpdError("IIV: omega must be symmetric")
        cov = {(names[i], names[j]): om[i, j] for i in range(len(names)) for j in range(i) if om[i, j] != 0}
        return cls({n: om[i, i] for i, n in enumerate(names)}, covariances=cov, distribution=distribution)

    @property
    def n_eta(self) -> int:
        """Number of random effects q."""
        return len(self.names)

    def distribution_of(self, name: str) -> str:
        """The distribution of the random effect on ``name``."""
        return self.distributions[self.names.index(name)]

    def individual(self, typical: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Individual parameter values from typical values (..., q) and random effects (..., q).

        Examples
        --------
        >>> IIV({"F": 0.5}, distribution="logitnormal").individual(np.array([0.5]), np.array([0.0]))
        array([0.5])
        """
        typical = np.asarray(typical, dtype=float)
        eta = np.asarray(eta, dtype=float)
        out = np.empty(np.broadcast_shapes(typical.shape, eta.shape))
        for k, d in enumerate(self.distributions):
            out[..., k] = transform(d, typical[..., k], eta[..., k])
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw random effects, shape (n, q), with the generator ``rng``.

        Examples
        --------
        >>> IIV({"CL": 0.09}).sample(3, np.random.default_rng(1)).shape
        (3, 1)
        """
        if not isinstance(rng, np.random.Generator):
            raise PkpdError(f"IIV.sample: rng must be a numpy Generator (np.random.default_rng(seed)); got "
                            f"{type(rng).__name__}")
        return rng.multivariate_normal(np.zeros(self.n_eta), self.omega, size=int(n), method="cholesky")

    def __repr__(self) -> str:
        parts = [f"{n}: {d} omega^2={self.omega[i, i]:.4g}" for i, (n, d) in enumerate(zip(self.names,
                                                                                           self.distributions))]
        return f"IIV({'; '.join(parts)})"


class IOV(IIV):
    r"""Inter-occasion variability: :math:`\kappa_{ik} \sim N(0, \Pi)` on named parameters, independent between
    occasions *k* (and subjects *i*), with the same :math:`\Pi` at every occasion.

    Same arguments as :class:`IIV` (variances [1 on the log scale, about CV² between occasions], covariances,
    distribution). On a parameter that also has between-subject variability, :math:`\kappa` adds to
    :math:`\eta` inside the IIV's transformation (log-normal: :math:`\theta e^{\eta_i + \kappa_{ik}}`).

    Occasions are given by an ``OCC`` column in data (estimation, :func:`pkpd.fit_population`) or by occasion start
    times (:func:`simulate_population`); a new occasion's parameter value applies from its start time on.

    Examples
    --------
    >>> iov = IOV({"CL": 0.04})
    >>> iov.sample(2, np.random.default_rng(0)).shape
    (2, 1)
    """

    def __repr__(self) -> str:
        return "IOV" + super().__repr__()[3:]


def transform(distribution: str, typical, eta):
    """Individual parameter value from a typical value and a random effect (``"lognormal"``: ``t * exp(eta)``,
    ``"normal"``: ``t + eta``, ``"logitnormal"``: ``expit(logit(t) + eta)``).

    Examples
    --------
    >>> float(transform("lognormal", 2.0, 0.0))
    2.0
    """
    t = np.asarray(typical, dtype=float)
    e = np.asarray(eta, dtype=float)
    with np.errstate(over="ignore"):
        if distribution == "lognormal":
            return t * np.exp(e)
        if distribution == "normal":
            return t + e
        return 1.0 / (1.0 + np.exp(-(np.log(t / (1.0 - t)) + e)))


def _check_positive_definite(om: np.ndarray, names) -> None:
    try:
        np.linalg.cholesky(om)
    except np.linalg.LinAlgError:
        w = np.linalg.eigvalsh(om)
        raise PkpdError(f"IIV: the covariance matrix of {tuple(names)} is not positive definite (smallest "
                        f"eigenvalue {w.min():.3g}); reduce the covariances (each |correlation| < 1 and the "
                        "matrix as a whole must be positive definite)") from None


# ====================================================================================================== covariates
@dataclass(frozen=True)
class Normal:
    """Normal covariate distribution (mean, sd) [covariate unit]."""

    mean: float
    sd: float

    def _from_normal(self, z):
        return self.mean + self.sd * z


@dataclass(frozen=True)
class LogNormalCovariate:
    """Log-normal covariate distribution: ``median * exp(sigma * z)`` [covariate unit]."""

    median: float
    sigma: float

    def _from_normal(self, z):
        return self.median * np.exp(self.sigma * z)


@dataclass(frozen=True)
class Uniform:
    """Uniform covariate distribution on [lower, upper] [covariate unit]."""

    lower: float
    upper: float

    def _from_normal(self, z):
        from scipy.special import ndtr

        return self.lower + (self.upper - self.lower) * ndtr(z)


@dataclass(frozen=True)
class Categorical:
    """Categorical covariate: ``probabilities`` maps each value (a number, e.g. SEX 0/1) to its probability."""

    probabilities: Mapping

    def _from_normal(self, z):
        from scipy.special import ndtr

        values = np.array(list(self.probabilities), dtype=float)
        p = np.array(list(self.probabilities.values()), dtype=float)
        if np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise PkpdError(f"Categorical: probabilities must be >= 0 and sum to 1; got {dict(self.probabilities)}")
        idx = np.searchsorted(np.cumsum(p), ndtr(z), side="right")
        return values[np.minimum(idx, values.size - 1)]


_COVARIATE_DISTRIBUTIONS = (Normal, LogNormalCovariate, Uniform, Categorical)


@dataclass(frozen=True, eq=False)
class VirtualPopulation:
    """Virtual subjects that satisfy a protocol's inclusion criteria (result of :func:`virtual_population`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per subject: ID and one column per covariate (drawn and derived).
    n_drawn : int
        Candidate subjects drawn in all.
    n_rejected : int
        Candidates rejected by the inclusion criteria (``n_drawn - len(table)``).
    seed : int or None
        The seed that reproduces the population.
    """

    table: object
    n_drawn: int
    n_rejected: int
    seed: int | None

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.table[name].to_numpy()

    def __repr__(self) -> str:
        return (f"VirtualPopulation({len(self)} subjects; {self.n_rejected} of {self.n_drawn} draws rejected by the "
                f"inclusion criteria; columns {', '.join(c for c in self.table.columns if c != 'ID')})")


def virtual_population(n: int, covariates=None, *, resample=None, correlation: Mapping | None = None,
                       derived: Mapping | None = None, criteria: Mapping | None = None, seed: int | None = None,
                       max_draws: int | None = None) -> VirtualPopulation:
    r"""Draw ``n`` virtual subjects whose covariates satisfy inclusion criteria.

    Main arguments
    --------------
    n : int
        Number of subjects wanted (all satisfy ``criteria``).
    covariates : dict[str, Normal | LogNormalCovariate | Uniform | Categorical], optional
        Marginal distribution of each covariate [covariate unit], e.g. ``{"WT": Normal(68, 12)}``.
    resample : pandas.DataFrame, optional
        Instead of (or besides) distributions: rows of a real table resampled with replacement.
    criteria : dict[str, (lower, upper) or set], optional
        Inclusion criteria: an inclusive range (``None`` for an open end) or the set of allowed values, e.g.
        ``{"SEX": {0}, "AGE": (45, 85), "WT": (40, None), "BMI": (18, 30)}``. Candidates that fail are rejected
        and counted.
    seed : int, optional
        Seed of a ``numpy.random.SeedSequence``: the same seed gives the same population.

    Other arguments
    ---------------
    correlation : dict[tuple[str, str], float], optional
        Correlations between drawn covariates (Gaussian copula: each marginal is kept, ranks are correlated).
    derived : dict[str, callable], optional
        Covariates computed from the others (a function of the table's columns), e.g.
        ``{"BMI": lambda c: c["WT"] / (c["HT"] / 100) ** 2}``; computed before the criteria are applied.
    max_draws : int, optional
        Give up after this many candidates (default ``1000 * n``).

    Returns
    -------
    VirtualPopulation

    Raises
    ------
    PkpdError
        An unknown distribution, a criterion naming no covariate, a correlation matrix that is not positive
        definite, or criteria that (almost) no draw satisfies.

    Examples
    --------
    >>> pop = virtual_population(200, {"SEX": Categorical({0: 0.5, 1: 0.5}), "AGE": Uniform(30, 90)},
    ...                          criteria={"SEX": {0}, "AGE": (45, 85)}, seed=1)
    >>> len(pop), bool(pop["AGE"].min() >= 45), pop.n_rejected > 0
    (200, True, True)
    """
    import pandas as pd

    n = int(n)
    if n < 1:
        raise PkpdError(f"virtual_population: n must be >= 1; got {n}")
    covariates = dict(covariates or {})
    for name, dist in covariates.items():
        if not isinstance(dist, _COVARIATE_DISTRIBUTIONS):
            raise PkpdError(f"virtual_population: covariate {name!r} needs a Normal, LogNormalCovariate, Uniform or "
                            f"Categorical distribution; got {type(dist).__name__}")
    names = list(covariates)
    corr = np.eye(len(names))
    for key, r in dict(correlation or {}).items():
        a, b = key
        for x in (a, b):
            if x not in names:
                raise PkpdError(f"virtual_population: correlation names {x!r}, which is not a drawn covariate."
                                + did_you_mean(str(x), names))
        i, j = names.index(a), names.index(b)
        corr[i, j] = corr[j, i] = float(r)
    if names:
        try:
            chol = np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            raise PkpdError("virtual_population: the correlation matrix is not positive definite; reduce the "
                            "correlations") from None
    known = set(names) | set(derived or {}) | (set(resample.columns) if resample is not None else set())
    for name in dict(criteria or {}):
        if name not in known:
            raise PkpdError(f"virtual_population: criterion on {name!r}, which is neither drawn, resampled nor "
                            "derived." + did_you_mean(str(name), sorted(known)))
    ss = np.random.SeedSequence(seed)
    rng = np.random.default_rng(ss)
    max_draws = int(max_draws or 1000 * n)
    kept, drawn = [], 0
    n_kept = 0
    while n_kept < n:
        if drawn >= max_draws:
            raise PkpdError(f"virtual_population: only {n_kept} of {n} subjects satisfied the inclusion criteria "
                            f"after {drawn} draws ({drawn - n_kept} rejected); the criteria {dict(criteria)} are "
                            "(nearly) impossible for these covariate distributions: widen them or change the "
                            "distributions")
        batch = int(min(max(2 * (n - n_kept), 256), max_draws - drawn))
        drawn += batch
        cols = {}
        if resample is not None:
            rows = rng.integers(0, len(resample), batch)
            for c in resample.columns:
                cols[c] = resample[c].to_numpy()[rows]
        if names:
            z = rng.standard_normal((batch, len(names))) @ chol.T
            for k, name in enumerate(names):
                cols[name] = covariates[name]._from_normal(z[:, k])
        for name, fn in dict(derived or {}).items():
            cols[name] = np.asarray(fn(cols), dtype=float) * np.ones(batch)
        ok = np.ones(batch, dtype=bool)
        for name, rule in dict(criteria or {}).items():
            v = cols[name]
            if isinstance(rule, set | frozenset):
                ok &= np.isin(v, list(rule))
            else:
                lo, hi = rule
                if lo is not None:
                    ok &= v >= lo
                if hi is not None:
                    ok &= v <= hi
        frame = pd.DataFrame(cols)[ok]
        kept.append(frame)
        n_kept += len(frame)
    table = pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)
    # candidates drawn after the n-th acceptance in the last batch are not counted as rejected
    last = kept[-1]
    surplus_accepted = n_kept - n
    last_ok_positions = last.index.to_numpy()
    if surplus_accepted:
        cut = last_ok_positions[len(last) - surplus_accepted - 1] + 1
        drawn -= (batch - cut)
    table.insert(0, "ID", np.arange(1, n + 1))
    return VirtualPopulation(table=table, n_drawn=int(drawn), n_rejected=int(drawn - n), seed=seed)


def _occasion_times(iov, occasions) -> np.ndarray:
    if not isinstance(iov, IOV):
        raise PkpdError(f"simulate_population: iov must be a pkpd.IOV; got {type(iov).__name__}")
    if occasions is None:
        raise PkpdError("simulate_population: iov needs occasions=[start times of the occasions] (model time unit), "
                        "e.g. occasions=[0, 72, 144]")
    starts = np.atleast_1d(np.asarray(occasions, dtype=float))
    if starts.ndim != 1 or not np.all(np.isfinite(starts)) or np.any(np.diff(starts) <= 0):
        raise PkpdError(f"simulate_population: occasions must be finite, increasing start times; got {occasions!r}")
    return starts


# ====================================================================================================== effects
@dataclass(frozen=True)
class CovariateEffect:
    r"""A covariate model on a parameter's typical value.

    ``kind``: ``"power"`` (allometric): :math:`\theta\,(c/\mathrm{ref})^{\mathrm{value}}` (e.g. exponent 0.75 on CL
    with WT, ref 70 kg); ``"linear"``: :math:`\theta\,(1 + \mathrm{value}\,(c - \mathrm{ref}))`;
    ``"categorical"``: :math:`\theta\,\mathrm{value}[c]` with ``value`` a dict category -> factor (missing
    categories: factor 1); ``"indicator"``: :math:`\theta\,(1 + \mathrm{value}\cdot I)` with :math:`I` = 1 where
    ``condition`` holds (one comparison of one covariate, e.g. ``"APGR < 5"``; parsed by the model-expression
    language's allow-list, never evaluated as code) and 0 elsewhere: NONMEM's
    ``IF (APGR.LT.5) TVV = TVV*(1+THETA(3))``, one shared coefficient (default 0) for every subject in the group.

    Examples
    --------
    >>> CovariateEffect("CL", "WT", "power", 0.75, ref=70).apply(np.array([2.0]), {"WT": np.array([140.0])})
    array([3.36358566])
    >>> low = CovariateEffect(parameter="V", kind="indicator", condition="APGR < 5", value=0.3)
    >>> low.covariate, low.apply(np.array([1.0, 1.0]), {"APGR": np.array([3.0, 8.0])})
    ('APGR', array([1.3, 1. ]))
    """

    parameter: str
    covariate: str = ""
    kind: str = "power"
    value: object = None
    ref: float = 1.0
    condition: str | None = None

    def __post_init__(self):
        if self.kind not in ("power", "linear", "categorical", "indicator"):
            raise PkpdError(f"CovariateEffect: kind must be 'power', 'linear', 'categorical' or 'indicator'; got "
                            f"{self.kind!r}")
        if self.kind == "indicator":
            used = sorted(_names_of_condition(self.condition, self.parameter))
            if len(used) != 1 or (self.covariate and used != [self.covariate]):
                raise PkpdError(f"CovariateEffect on {self.parameter!r}: the condition {self.condition!r} must "
                                f"compare one covariate{' (' + repr(self.covariate) + ')' if self.covariate else ''}"
                                f" with a number, e.g. 'APGR < 5'; it uses {used}")
            object.__setattr__(self, "covariate", used[0])
            if self.value is None:
                object.__setattr__(self, "value", 0.0)
            return
        if self.condition is not None:
            raise PkpdError(f"CovariateEffect on {self.parameter!r}: condition= is for kind='indicator'; got kind "
                            f"{self.kind!r}")
        if not self.covariate:
            raise PkpdError(f"CovariateEffect on {self.parameter!r}: name the covariate")
        if self.value is None:
            raise PkpdError(f"CovariateEffect on {self.parameter!r}: give the initial value (exponent, slope, or "
                            "for 'categorical' a dict category -> factor)")

    def indicator(self, values) -> np.ndarray:
        """1.0 where the condition holds for covariate ``values`` (n,), else 0.0 (kind ``"indicator"``)."""
        from . import expressions as ex

        tree = _condition_tree(self.condition, self.parameter)
        with np.errstate(all="ignore"):
            return np.asarray(ex.evaluate(tree, {self.covariate: np.asarray(values, dtype=float)}), dtype=float)

    def apply(self, typical: np.ndarray, covariates: Mapping) -> np.ndarray:
        """Typical values (n,) adjusted by this effect, given covariate columns (n,)."""
        if self.covariate not in covariates:
            raise PkpdError(f"CovariateEffect on {self.parameter!r}: covariate {self.covariate!r} is missing."
                            + did_you_mean(self.covariate, list(covariates)))
        c = np.asarray(covariates[self.covariate], dtype=float)
        if np.any(~np.isfinite(c)):
            i = int(np.flatnonzero(~np.isfinite(c))[0])
            raise PkpdError(f"CovariateEffect on {self.parameter!r}: covariate {self.covariate!r} is missing for "
                            f"subject {i + 1}")
        if self.kind == "power":
            return typical * (c / self.ref) ** float(self.value)
        if self.kind == "linear":
            return typical * (1.0 + float(self.value) * (c - self.ref))
        if self.kind == "indicator":
            return typical * (1.0 + float(self.value) * self.indicator(c))
        return typical * np.array([float(dict(self.value).get(x, 1.0)) for x in c])


def _condition_tree(condition, parameter: str):
    """The condition of an indicator effect as ``ifelse(condition, 1, 0)``, parsed by the allow-list."""
    from . import expressions as ex

    if not isinstance(condition, str) or not condition.strip():
        raise PkpdError(f"CovariateEffect on {parameter!r}: kind='indicator' needs condition=, one comparison of a "
                        f"covariate with a number, e.g. condition='APGR < 5'; got {condition!r}")
    try:
        tree = ex.parse(f"ifelse({condition}, 1, 0)")
    except ex.ExpressionError as err:
        raise PkpdError(f"CovariateEffect on {parameter!r}: condition {condition!r} is not one comparison of a "
                        f"covariate with a number ({err})") from None
    if not isinstance(tree, ex.Call) or tree.func != "ifelse" or tree.args[1:] != (ex.Num(1.0), ex.Num(0.0)):
        raise PkpdError(f"CovariateEffect on {parameter!r}: condition {condition!r} is not one comparison")
    return tree


def _names_of_condition(condition, parameter: str) -> set[str]:
    from . import expressions as ex

    return ex.names(_condition_tree(condition, parameter))


# ====================================================================================================== simulate
@dataclass(frozen=True, eq=False)
class PopulationSimulation:
    """The result of :func:`simulate_population`.

    Attributes
    ----------
    times : ndarray, shape (n_times,)
        Output times [model time unit].
    percentiles : tuple of float
        The band percentiles, e.g. (5, 50, 95).
    bands : dict[str, ndarray (n_percentiles, n_times)]
        Per output, the percentiles across subjects at each time [output unit].
    subjects : pandas.DataFrame
        One row per subject: ID, covariates, individual parameters, and per output ``Cmax_<name>`` [output unit],
        ``Tmax_<name>`` [time unit] and ``AUC_<name>`` (linear trapezoids over ``times``) [output unit x time unit].
    simulation : Simulation
        The full trajectories.
    trials : PopulationTrials or None
        With ``uncertainty=``: each replicate trial's bands and metric medians
        (:class:`pkpd.uncertainty.PopulationTrials`); the other attributes are the run at the estimates.
    """

    times: np.ndarray
    percentiles: tuple
    bands: dict
    subjects: object
    simulation: object
    trials: object = None

    def __repr__(self) -> str:
        trials = f"; {self.trials.n_trials} trials under parameter uncertainty (.trials)" if self.trials else ""
        return (f"PopulationSimulation({len(self.subjects)} subjects, {self.times.size} times, bands "
                f"{self.percentiles} of {', '.join(self.bands)}{trials})")

    def plot(self, outputs=None, **kwargs):
        """The population's median and percentile band per output against time, doses marked.

        The band spans the outer two of :attr:`percentiles` around the middle one (5-95 % around the median by
        default); other options as :func:`pkpd.plots.plot_simulation` (``time_unit=``, ``ax=``, ``label=``...).

        Examples
        --------
        >>> import numpy as np, pandas as pd, pkpd
        >>> people = pd.DataFrame({"WT": np.linspace(50.0, 100.0, 40)})
        >>> pop = pkpd.simulate_population("pk_1cmt_iv", pkpd.Regimen.single(pkpd.Dose(1.4, "mg/kg")),
        ...                                np.arange(0, 25.0), people, iiv=pkpd.IIV({"CL": 0.09}), seed=1)
        >>> fig = pop.plot()
        >>> [t.get_text() for t in fig.legends[0].get_texts()]
        ['median of 40 subjects', '5-95 % range', 'dose']
        >>> import matplotlib.pyplot as plt; plt.close(fig)
        """
        from .plots import DEFAULT_BANDS, plot_simulation

        if "bands" not in kwargs:
            p = sorted(self.percentiles)
            kwargs["bands"] = (p[0], 50.0 if 50.0 in p else p[len(p) // 2], p[-1]) if len(p) >= 3 else DEFAULT_BANDS
        return plot_simulation(self.simulation, list(self.bands) if outputs is None else outputs, **kwargs)


def simulate_population(model, regimen, times, population, *, iiv: IIV | None = None, effects=(),
                        seed: int | None = None, outputs=None, percentiles=(5, 50, 95),
                        settings=None, iov: IOV | None = None, occasions=None, observe=None,
                        follow_up: float | None = None, uncertainty=None, n_trials: int | None = None,
                        same_population: bool = False) -> PopulationSimulation:
    """Simulate a virtual population: covariate effects, between-subject variability, per-kg doses.

    Main arguments
    --------------
    model : Model or str
    regimen : Regimen
        Doses; per-kg doses (e.g. ``Dose(2e6, "cell/kg")``) use each subject's ``WT`` [kg].
    times : array_like, shape (n_times,)
        Output times [model time unit].
    population : VirtualPopulation or pandas.DataFrame
        One row per subject; columns named like model covariates (``WT``...) are passed to the model.
    iiv : IIV, optional
        Random effects, drawn with ``seed``.
    effects : sequence of CovariateEffect
        Covariate models on typical values, applied before the random effects.
    iov : IOV, optional
        Inter-occasion variability: a new random effect per occasion, added to the subject's IIV one.
    occasions : sequence of float, optional
        Start times of the occasions [model time unit], increasing (needed with ``iov``); the first occasion also
        covers the times before its start. Each occasion's parameter value applies from its start on.

    Other arguments
    ---------------
    seed : int, optional
        Seed of the random effects (``numpy.random.SeedSequence``) and, for a model with clinical endpoints, of
        the drawn outcomes (``simulation.outcomes``, ``simulation.to_dataframe(layout="nonmem")``).
    observe, follow_up
        Assessment times and end of follow-up of clinical endpoints, as :func:`pkpd.simulate`.
    outputs : sequence of str, optional
        Outputs summarised (default all).
    percentiles : sequence of float
        Band percentiles [%].
    settings : SolverSettings, optional
    uncertainty : FitResult, PopulationFit, Bootstrap, fit file, draws or ParameterUncertainty, optional
        Parameter uncertainty (:mod:`pkpd.uncertainty`): the result is the run at the estimates (the fit's typical
        values, random effects and covariate effects added to ``iiv`` and ``effects``), and ``result.trials`` holds
        ``n_trials`` replicate trials (default 200), each with its own draw of the parameters and, unless
        ``same_population``, its own random effects.

    Returns
    -------
    PopulationSimulation

    Raises
    ------
    PkpdError
        IIV or an effect on an unknown parameter, a covariate missing for a subject, a per-kg dose without WT.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> pop = virtual_population(50, {"WT": Normal(70, 10)}, criteria={"WT": (40, None)}, seed=3)
    >>> reg = pkpd.Regimen.single(pkpd.Dose(4.0, "mg/kg"), target="oral")
    >>> res = simulate_population("pk_1cmt_oral", reg, np.linspace(0, 24, 49), pop,
    ...                           iiv=IIV({"CL": 0.09, "V": 0.04}), seed=1)
    >>> res.bands["conc"].shape
    (3, 49)
    """
    import pandas as pd

    from .load import load_model
    from .simulation import simulate

    if uncertainty is not None:
        from .uncertainty import population_trials

        if observe is not None or follow_up is not None:
            raise PkpdError("simulate_population: observe= and follow_up= (clinical endpoint draws) are not yet "
                            "combined with uncertainty=; simulate the endpoints at the estimates, or the trials "
                            "without them")

        return population_trials(model, regimen, times, population, uncertainty=uncertainty, n_trials=n_trials,
                                 same_population=same_population, iiv=iiv, effects=effects, seed=seed,
                                 outputs=outputs, percentiles=percentiles, settings=settings, iov=iov,
                                 occasions=occasions)
    m = load_model(model) if isinstance(model, str) else model
    table = population.table if isinstance(population, VirtualPopulation) else pd.DataFrame(population)
    n = len(table)
    names = m.parameter_names
    typical = {p.name: np.full(n, p.value) for p in m.parameters}
    cov_cols = {c: table[c].to_numpy(dtype=float) for c in table.columns if c != "ID"}
    for e in effects:
        if e.parameter not in names:
            raise PkpdError(f"CovariateEffect: model {m.name!r} has no parameter {e.parameter!r}."
                            + did_you_mean(e.parameter, names))
        typical[e.parameter] = e.apply(typical[e.parameter], cov_cols)
    params = dict(typical)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    if iiv is not None:
        for p in iiv.names:
            if p not in names:
                raise PkpdError(f"IIV: model {m.name!r} has no parameter {p!r}." + did_you_mean(p, names))
        eta = iiv.sample(n, rng)
        ind = iiv.individual(np.stack([typical[p] for p in iiv.names], axis=1), eta)
        for k, p in enumerate(iiv.names):
            params[p] = ind[:, k]
    changes = {}
    occasion_values = {}
    if iov is not None:
        starts = _occasion_times(iov, occasions)
        for p in iov.names:
            if p not in names:
                raise PkpdError(f"IOV: model {m.name!r} has no parameter {p!r}." + did_you_mean(p, names))
        kappa = iov.sample(n * starts.size, rng).reshape(n, starts.size, iov.n_eta)
        for j, p in enumerate(iov.names):
            # kappa adds to the subject's eta inside the IIV's transformation when the parameter has IIV
            if iiv is not None and p in iiv.names:
                base, dist = eta[:, iiv.names.index(p)][:, None], iiv.distribution_of(p)
            else:
                base, dist = 0.0, iov.distribution_of(p)
            values = transform(dist, np.broadcast_to(typical[p], (n,))[:, None], base + kappa[:, :, j])
            params[p] = values[:, 0]
            occasion_values[p] = values
            if starts.size > 1:
                changes[p] = (starts[1:], values[:, 1:])
    elif occasions is not None:
        raise PkpdError("simulate_population: occasions are only used with iov (inter-occasion variability)")
    covs = {}
    for c in m.covariate_names:
        if c in table.columns:
            v = table[c].to_numpy(dtype=float)
            if np.any(~np.isfinite(v)):
                i = int(np.flatnonzero(~np.isfinite(v))[0])
                who = table["ID"].iloc[i] if "ID" in table else i + 1
                raise PkpdError(f"population: covariate {c!r} is missing for subject {who}")
            covs[c] = v
    ids = table["ID"].to_numpy() if "ID" in table else np.arange(1, n + 1)
    # clinical endpoints: outcomes drawn from a stream of their own (the random effects' draws are unchanged)
    sim = simulate(m, regimen, times, params=params, covariates=covs or None, settings=settings,
                   subject_ids=ids, states=False, changes=changes or None,
                   seed=np.random.SeedSequence(seed).spawn(1)[0] if seed is not None else None, observe=observe,
                   follow_up=follow_up)
    t = sim.times
    outs = list(outputs or m.output_names)
    bands = {o: np.percentile(sim.outputs[o], percentiles, axis=0) for o in outs}
    subjects = pd.DataFrame({"ID": ids})
    for c in table.columns:
        if c != "ID":
            subjects[c] = table[c].to_numpy()
    for p in names:
        subjects[p] = np.broadcast_to(params[p], (n,))
        if p in occasion_values:
            for k in range(occasion_values[p].shape[1]):
                subjects[f"{p}_occ{k + 1}"] = occasion_values[p][:, k]
    for o in outs:
        y = sim.outputs[o]
        subjects[f"Cmax_{o}"] = y.max(axis=1)
        subjects[f"Tmax_{o}"] = t[np.argmax(y, axis=1)]
        subjects[f"AUC_{o}"] = np.sum(0.5 * (y[:, 1:] + y[:, :-1]) * np.diff(t), axis=1)
    return PopulationSimulation(times=t, percentiles=tuple(percentiles), bands=bands, subjects=subjects,
                                simulation=sim)
