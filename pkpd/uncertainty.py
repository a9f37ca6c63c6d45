r"""Parameter uncertainty in scenarios and population simulations: replicate trials with honest intervals.

Without it, a scenario treats the model's parameters as known: its probabilities of target attainment (PTA) carry
only Monte-Carlo error. With it, each of ``n_trials`` replicate trials first draws its population parameters --
typical values :math:`\theta_k`, between-subject variability :math:`\Omega_k`, covariate coefficients -- from their
uncertainty, then simulates its own virtual population with them (Simulx's and rxode2's "simulation with
uncertainty"; a trial is what a real study of that size would see if the fitted model were the truth up to its
uncertainty). Results then give, per arm and target, the PTA's median and 90 % between-trial interval, the
**probability of trial success** (the fraction of trials whose PTA reaches ``trial_success``), and the
dose-response with uncertainty bands.

Where the uncertainty comes from (:class:`ParameterUncertainty`, or anything :func:`as_uncertainty` takes):

* a fit's covariance matrix (:class:`~pkpd.FitResult`, :class:`~pkpd.PopulationFit`, or a saved fit file from
  :func:`pkpd.fit_files.save_fit`): a **multivariate normal on the estimation scale** -- the log scale for typical
  values estimated on it (lower bound >= 0, as :func:`pkpd.fit` and :func:`pkpd.fit_population` do), for variances
  and residual-error SDs; the natural scale for covariances, covariate coefficients and parameters that may be
  negative. The natural-scale covariance the fit reports is carried over by the delta method
  (:math:`\Sigma_{\log} = D^{-1}\Sigma D^{-1}`, :math:`D = \mathrm{diag}(\hat\theta)`), and draws are
  :math:`\hat\theta e^{\delta}` (log) or :math:`\hat\theta + \delta` (natural), so a zero covariance gives the
  estimates exactly;
* :math:`\Omega` from **its own uncertainty** (``omega="covariance"``, the default): its elements are part of the
  same multivariate normal (variances on the log scale), a draw whose :math:`\Omega_k` is not positive definite is
  redrawn; or ``omega="inverse-wishart"``: :math:`\Omega_k \sim W^{-1}(\nu, (\nu - q - 1)\hat\Omega)` with
  :math:`\nu` = the number of subjects of the fit (mean :math:`\hat\Omega`; rxode2's convention), independent of
  the typical values;
* a :class:`~pkpd.Bootstrap` (parametric, or :func:`pkpd.bootstrap_population`): each trial takes one replicate's
  estimates, drawn with replacement;
* posterior (or any other) draws: a table with one column per parameter, named as fits name them (``CL``,
  ``omega2_CL``, ``omega_CL_V``...).

Draws outside a parameter's bounds in the model file are redrawn (and counted). Residual-error parameters and
inter-occasion variances are carried but not used: scenarios simulate the true responses, without measurement
error.

Seeds: trial ``k`` draws its parameters and its population from ``numpy.random.SeedSequence(seed).spawn(n)[k]``,
so the first trials of a larger run are those of a smaller one. With ``same_population=True`` every trial
simulates the same virtual subjects (common random numbers: the spread between trials is then parameter uncertainty
alone). A zero covariance reproduces the run without uncertainty **bit for bit**: every trial equals
:func:`~pkpd.run_scenario` of the scenario at the estimates with the trial's population seed
(``result.trials.seeds``).

References
----------
Lavielle M (2014) Mixed effects models for the population approach, CRC Press (Simulx, simulation with parameter
uncertainty). Fidler M et al. (2019) Nonlinear mixed-effects model development and simulation using nlmixr and
related R open-source packages, CPT Pharmacometrics Syst Pharmacol 8:621 (rxode2: thetaMat, omega from an inverse
Wishart with the number of subjects as degrees of freedom). Wilson EB 1927, J Am Stat Assoc 22:209.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import FitError, PkpdError, did_you_mean

__all__ = ["OMEGA_METHODS", "ParameterUncertainty", "PopulationTrials", "SummaryTrials", "TrialParameters",
           "TrialSummary", "as_uncertainty", "trial_seeds"]

OMEGA_METHODS = ("covariance", "inverse-wishart")
#: Redraws allowed for one trial whose draw is outside the bounds or has an indefinite Omega.
MAX_REDRAWS = 100


@dataclass(frozen=True)
class TrialParameters:
    """The population parameters of one replicate trial.

    Attributes
    ----------
    theta : dict[str, float]
        Typical values of the model parameters drawn (the others keep the scenario's values).
    iiv : IIV or None
        Between-subject variability of the trial (None when the source has none).
    effects : tuple of CovariateEffect
        Covariate effects with the trial's coefficients.
    values : dict[str, float]
        Every drawn quantity, in the source's names (for the trial table).
    """

    theta: dict
    iiv: object = None
    effects: tuple = ()
    values: dict = field(default_factory=dict)


def _omega_names(iiv) -> dict[str, tuple[int, int]]:
    out = {}
    for a in range(iiv.n_eta):
        for b in range(a + 1):
            key = f"omega2_{iiv.names[a]}" if a == b else f"omega_{iiv.names[b]}_{iiv.names[a]}"
            out[key] = (a, b)
    return out


def _plain(x):
    if isinstance(x, float | np.floating) and float(x).is_integer():
        return int(x)
    return x.item() if isinstance(x, np.generic) else x


def _effect_names(effects) -> dict[str, tuple[int, object]]:
    """Coefficient name (as fit_population names them) -> (effect index, category or None)."""
    out = {}
    for k, e in enumerate(effects):
        if e.kind == "categorical":
            for cat in dict(e.value):
                out[f"{e.covariate}[{_plain(cat)}]_on_{e.parameter}"] = (k, cat)
        else:
            out[f"{e.covariate}_on_{e.parameter}"] = (k, None)
    return out


@dataclass(frozen=True, eq=False)
class ParameterUncertainty:
    """The uncertainty of a model's population parameters, and how to draw trials from it.

    Build one with :meth:`from_fit`, :meth:`from_bootstrap`, :meth:`from_draws` or :meth:`from_covariance` (or let
    :func:`as_uncertainty` choose).

    Attributes
    ----------
    names : tuple[str, ...]
        The parameters, named as fits name them.
    estimate : ndarray (k,)
        Point estimates [natural scale].
    scales : tuple[str, ...]
        ``"log"`` or ``"linear"``: the scale of the multivariate normal for each parameter.
    covariance : ndarray (k, k) or None
        Covariance on those scales (None for draws).
    draws : ndarray (n, k) or None
        Bootstrap replicates or posterior draws [natural scale].
    iiv : IIV or None
        The variability model at the estimates (names and distributions of the random effects).
    covariate_effects : tuple of CovariateEffect
    omega : {"covariance", "inverse-wishart"}
    n_subjects : int or None
        Degrees of freedom of the inverse-Wishart.
    source : str
        What it was built from.

    Examples
    --------
    >>> import numpy as np
    >>> u = ParameterUncertainty.from_covariance({"CL": 2.8, "V": 32.0}, np.diag([0.1**2, 0.05**2]))
    >>> draws = u.sample(2000, np.random.default_rng(1))
    >>> cl = np.array([d.theta["CL"] for d in draws])
    >>> round(float(np.std(np.log(cl))), 2)       # SD of log CL: 0.1
    0.1
    """

    names: tuple
    estimate: np.ndarray
    scales: tuple
    covariance: np.ndarray | None = None
    draws: np.ndarray | None = None
    iiv: object = None
    covariate_effects: tuple = ()
    omega: str = "covariance"
    n_subjects: int | None = None
    source: str = ""

    def __post_init__(self):
        if self.omega not in OMEGA_METHODS:
            raise PkpdError(f"uncertainty: omega must be one of {OMEGA_METHODS}; got {self.omega!r}."
                            + did_you_mean(str(self.omega), OMEGA_METHODS))
        k = len(self.names)
        est = np.asarray(self.estimate, dtype=float).reshape(-1)
        if est.size != k or not np.all(np.isfinite(est)):
            raise PkpdError(f"uncertainty: need one finite estimate per parameter ({k}); got {self.estimate!r}")
        for n, s, v in zip(self.names, self.scales, est):
            if s not in ("log", "linear"):
                raise PkpdError(f"uncertainty: the scale of {n!r} must be 'log' or 'linear'; got {s!r}")
            if s == "log" and v <= 0:
                raise PkpdError(f"uncertainty: {n!r} = {v:g} cannot be on the log scale (it must be > 0)")
        object.__setattr__(self, "estimate", est)
        if (self.covariance is None) == (self.draws is None):
            raise PkpdError("uncertainty: give a covariance matrix or draws (one of them)")
        if self.covariance is not None:
            cov = np.asarray(self.covariance, dtype=float)
            if cov.shape != (k, k) or not np.all(np.isfinite(cov)):
                raise PkpdError(f"uncertainty: the covariance must be a finite ({k}, {k}) matrix; got shape "
                                f"{cov.shape}")
            if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-14 * max(1.0, float(np.abs(cov).max()))):
                raise PkpdError("uncertainty: the covariance matrix must be symmetric")
            w, v = np.linalg.eigh(0.5 * (cov + cov.T))
            if w.size and w.min() < -1e-8 * max(1.0, float(w.max())):
                raise PkpdError(f"uncertainty: the covariance matrix is not positive semi-definite (smallest "
                                f"eigenvalue {w.min():.3g})")
            object.__setattr__(self, "_root", v * np.sqrt(np.clip(w, 0.0, None)))
        else:
            d = np.asarray(self.draws, dtype=float)
            if d.ndim != 2 or d.shape[1] != k or d.shape[0] < 1:
                raise PkpdError(f"uncertainty: draws must be an (n, {k}) array; got shape {d.shape}")
            object.__setattr__(self, "draws", d)
        if self.omega == "inverse-wishart":
            q = 0 if self.iiv is None else self.iiv.n_eta
            if q == 0:
                raise PkpdError("uncertainty: omega='inverse-wishart' needs a variability model (a population fit)")
            if self.n_subjects is None or self.n_subjects <= q + 1:
                raise PkpdError(f"uncertainty: omega='inverse-wishart' needs more than {q + 1} subjects (its degrees "
                                f"of freedom); got {self.n_subjects!r}")
        omega_names = _omega_names(self.iiv) if self.iiv is not None else {}
        effect_names = _effect_names(self.covariate_effects)
        object.__setattr__(self, "_omega_names", omega_names)
        object.__setattr__(self, "_effect_names", effect_names)

    # -- constructors
    @classmethod
    def from_covariance(cls, estimates: Mapping[str, float], covariance, *, scale: str | Mapping = "log",
                        iiv=None, omega: str = "covariance", n_subjects: int | None = None) -> ParameterUncertainty:
        """From estimates and their covariance on the estimation scale (``scale``: "log" or "linear", for all or
        per parameter). For a log-scale parameter the covariance is that of its log."""
        names = tuple(estimates)
        scales = tuple(scale.get(n, "log") if isinstance(scale, Mapping) else scale for n in names)
        return cls(names=names, estimate=np.array([estimates[n] for n in names], dtype=float), scales=scales,
                   covariance=np.asarray(covariance, dtype=float), iiv=iiv, omega=omega, n_subjects=n_subjects,
                   source="covariance")

    @classmethod
    def from_fit(cls, fit, *, model=None, omega: str = "covariance") -> ParameterUncertainty:
        """From a :class:`~pkpd.FitResult` or :class:`~pkpd.PopulationFit` and its covariance matrix.

        Raises
        ------
        FitError
            The fit has no covariance (its covariance step failed or was skipped): use a bootstrap instead.
        """
        from .fitting import FitResult
        from .nlme import PopulationFit

        if isinstance(fit, FitResult):
            names = tuple(fit.names)
            est = np.array([fit.estimates[n] for n in names], dtype=float)
            cov = np.asarray(fit.covariance, dtype=float)
            if not np.all(np.isfinite(cov)):
                raise FitError(f"uncertainty from the fit of {fit.model_name!r}: it has no covariance matrix "
                               f"({fit.message or 'covariance not available'}), so its parameter uncertainty is "
                               "unknown. Refit so that the covariance step succeeds, or use a bootstrap "
                               "(pkpd.bootstrap) as the source")
            scales = tuple(fit.scale[n] for n in names)
            # omega is checked like any other (an individual fit has no Omega: "inverse-wishart" is refused)
            return cls(names=names, estimate=est, scales=scales, covariance=_to_scale(cov, est, scales),
                       source=f"covariance of the fit of {fit.model_name!r}", omega=omega)
        if isinstance(fit, PopulationFit):
            table = fit.parameters
            names = tuple(str(n) for n in table["name"])
            est = table["estimate"].to_numpy(dtype=float)
            if fit.covariance is None or not np.all(np.isfinite(fit.covariance)):
                raise FitError(f"uncertainty from the population fit of {fit.model_name!r}: no covariance matrix "
                               f"({fit.covariance_message}), so the parameter uncertainty is unknown. Refit with "
                               "covariance='sandwich' (or 'R'/'S') until the covariance step succeeds, or use "
                               "pkpd.bootstrap_population as the source")
            scales = _population_scales(fit, names, est, model)
            return cls(names=names, estimate=est, scales=scales, covariance=_to_scale(fit.covariance, est, scales),
                       iiv=fit.iiv, covariate_effects=tuple(fit.covariate_effects), omega=omega,
                       n_subjects=fit.n_subjects, source=f"covariance of the population fit of {fit.model_name!r}")
        raise PkpdError(f"uncertainty: expected a FitResult or a PopulationFit; got {type(fit).__name__}")

    @classmethod
    def from_bootstrap(cls, boot, *, fit=None) -> ParameterUncertainty:
        """From a :class:`~pkpd.Bootstrap`: each trial takes the estimates of one replicate (with replacement).
        ``fit`` (the population fit bootstrapped) gives the random effects' distributions and the covariate
        effects; without it, ``omega2_<name>`` columns are log-normal random effects."""
        if boot.samples.shape[0] == 0:
            raise FitError("uncertainty from a bootstrap: no replicate converged, so there is nothing to draw from")
        names = tuple(boot.names)
        est = np.array([boot.estimate[n] for n in names], dtype=float)
        iiv = getattr(fit, "iiv", None) or _iiv_from_names(names, est)
        effects = tuple(getattr(fit, "covariate_effects", ()))
        return cls(names=names, estimate=est, scales=("linear",) * len(names), draws=boot.samples, iiv=iiv,
                   covariate_effects=effects, source=f"bootstrap ({boot.samples.shape[0]} replicates)")

    @classmethod
    def from_draws(cls, draws, *, iiv=None, covariate_effects=()) -> ParameterUncertainty:
        """From draws (e.g. a posterior sample): a DataFrame or dict name -> array, one column per parameter,
        named as fits name them. The point estimate reported is the median of each column."""
        if hasattr(draws, "columns"):
            names = tuple(str(c) for c in draws.columns)
            arr = draws.to_numpy(dtype=float)
        elif isinstance(draws, Mapping) and draws:
            names = tuple(str(k) for k in draws)
            cols = [np.asarray(v, dtype=float).reshape(-1) for v in draws.values()]
            if len({c.size for c in cols}) != 1:
                raise PkpdError("uncertainty draws: every parameter needs the same number of draws")
            arr = np.stack(cols, axis=1)
        else:
            raise PkpdError(f"uncertainty draws: give a DataFrame or a dict name -> array; got {type(draws).__name__}")
        if not np.all(np.isfinite(arr)):
            raise PkpdError("uncertainty draws: every draw must be finite")
        est = np.median(arr, axis=0)
        iiv = iiv or _iiv_from_names(names, est)
        return cls(names=names, estimate=est, scales=("linear",) * len(names), draws=arr, iiv=iiv,
                   covariate_effects=tuple(covariate_effects), source=f"{arr.shape[0]} draws")

    # -- what the parameters are
    def theta_names(self, model) -> list[str]:
        """The names that are parameters of ``model`` (typical values)."""
        return [n for n in self.names if n in model.parameter_names]

    def unused(self, model) -> list[str]:
        """Names neither typical values of ``model``, nor Omega elements, nor covariate coefficients (residual
        error, inter-occasion variances): carried, not used."""
        return [n for n in self.names if n not in model.parameter_names and n not in self._omega_names
                and n not in self._effect_names]

    def check(self, model) -> None:
        """Raise PkpdError when the random effects or covariate effects name parameters ``model`` lacks."""
        for n in getattr(self.iiv, "names", ()):
            if n not in model.parameter_names:
                raise PkpdError(f"uncertainty: the random effect on {n!r} names no parameter of model "
                                f"{model.name!r}." + did_you_mean(n, model.parameter_names))
        for e in self.covariate_effects:
            if e.parameter not in model.parameter_names:
                raise PkpdError(f"uncertainty: the covariate effect on {e.parameter!r} names no parameter of model "
                                f"{model.name!r}")
        if not self.theta_names(model) and not self._omega_names:
            raise PkpdError(f"uncertainty ({self.source}): none of its parameters ({', '.join(self.names)}) is a "
                            f"parameter of model {model.name!r}; is it a fit of another model?")

    # -- drawing
    def nominal(self, model=None) -> TrialParameters:
        """The point estimates as one trial's parameters (``theta`` restricted to the parameters of ``model``)."""
        return self._trial(self.estimate.copy(), self.iiv.omega if self.iiv is not None else None, model)

    def _trial(self, values: np.ndarray, omega, model=None) -> TrialParameters:
        keep = (lambda n: n in model.parameter_names) if model is not None else (
            lambda n: n not in self._omega_names and n not in self._effect_names)
        theta = {n: float(v) for n, v in zip(self.names, values) if keep(n)}
        iiv = None
        if self.iiv is not None:
            from .population import IIV

            iiv = IIV.from_matrix(self.iiv.names, omega,
                                  distribution=dict(zip(self.iiv.names, self.iiv.distributions)))
        effects = list(self.covariate_effects)
        for name, (k, cat) in self._effect_names.items():
            if name in self.names:
                v = float(values[self.names.index(name)])
                e = effects[k]
                effects[k] = replace(e, value={**dict(e.value), cat: v} if cat is not None else v)
        return TrialParameters(theta=theta, iiv=iiv, effects=tuple(effects),
                               values=dict(zip(self.names, values.tolist())))

    def _omega_from(self, values: np.ndarray) -> np.ndarray | None:
        if self.iiv is None:
            return None
        om = np.array(self.iiv.omega, dtype=float)
        for name, (a, b) in self._omega_names.items():
            if name in self.names:
                om[a, b] = om[b, a] = values[self.names.index(name)]
        return om

    def sample(self, n: int, rng: np.random.Generator, model=None) -> list[TrialParameters]:
        """Draw ``n`` trials' parameters with the generator ``rng`` (bounds of ``model`` respected by redrawing).

        Raises
        ------
        PkpdError
            When a trial cannot be drawn inside the bounds (or with a positive-definite Omega) in
            :data:`MAX_REDRAWS` tries.
        """
        return [self.sample_one(rng, model) for _ in range(int(n))]

    def sample_one(self, rng: np.random.Generator, model=None) -> TrialParameters:
        """One trial's parameters (see :meth:`sample`)."""
        bounds = ({p.name: p.bounds for p in model.parameters} if model is not None else {})
        for _ in range(MAX_REDRAWS):
            values = self._draw_values(rng)
            omega = self._omega_from(values)
            if self.omega == "inverse-wishart":
                omega = self._inverse_wishart(rng)
            if omega is not None and not _positive_definite(omega):
                continue
            if any(n in bounds and not bounds[n][0] <= v <= bounds[n][1] for n, v in zip(self.names, values)):
                continue
            return self._trial(values, omega, model)
        raise PkpdError(f"uncertainty ({self.source}): {MAX_REDRAWS} draws in a row fell outside the parameters' "
                        "bounds (or gave an Omega that is not positive definite); the uncertainty is too large for "
                        "the model's bounds. Check the fit's standard errors or widen the bounds")

    def _draw_values(self, rng) -> np.ndarray:
        if self.draws is not None:
            return self.draws[int(rng.integers(self.draws.shape[0]))].copy()
        delta = self._root @ rng.standard_normal(len(self.names))
        log = np.array([s == "log" for s in self.scales])
        # est * exp(0) and est + 0 are the estimates exactly: zero uncertainty reproduces the nominal run
        return np.where(log, self.estimate * np.exp(np.where(log, delta, 0.0)), self.estimate + np.where(log, 0.0,
                                                                                                          delta))

    def _inverse_wishart(self, rng) -> np.ndarray:
        from scipy.stats import invwishart

        q = self.iiv.n_eta
        nu = int(self.n_subjects)
        scale = (nu - q - 1) * np.asarray(self.iiv.omega, dtype=float)
        seed = int(rng.integers(2**32))
        out = invwishart.rvs(df=nu, scale=scale, random_state=np.random.default_rng(seed))
        return np.atleast_2d(out)

    def __repr__(self) -> str:
        return (f"ParameterUncertainty({self.source}: {len(self.names)} parameters"
                + (f", Omega from {self.omega}" if self.iiv is not None else "") + ")")


def _positive_definite(m: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        return False
    return True


def _to_scale(cov: np.ndarray, est: np.ndarray, scales) -> np.ndarray:
    """Covariance on the estimation scale from the natural one (delta method, inverted)."""
    d = np.where(np.array([s == "log" for s in scales]), est, 1.0)
    return np.asarray(cov, dtype=float) / np.outer(d, d)


def _population_scales(fit, names, est, model) -> tuple[str, ...]:
    """Estimation scale of every row of a population fit's parameter table (see the module docstring)."""
    if model is None:
        try:
            from .load import load_model

            model = load_model(fit.model_name)
        except PkpdError:
            model = None
    omega_names = _omega_names(fit.iiv)
    effects = _effect_names(fit.covariate_effects)
    out = []
    for n, v in zip(names, est):
        if n in omega_names:
            a, b = omega_names[n]
            out.append("log" if a == b else "linear")
        elif n in effects:
            out.append("linear")
        elif model is not None and n in model.parameter_names:
            lo = model.parameter(n).bounds[0]
            out.append("log" if lo >= 0 and v > 0 else "linear")
        else:                     # residual error SDs, IOV variances, or typical values of an unknown model
            out.append("log" if v > 0 else "linear")
    return tuple(out)


def _iiv_from_names(names, est):
    from .population import IIV

    diag = {n[len("omega2_"):]: float(v) for n, v in zip(names, est) if n.startswith("omega2_")}
    if not diag:
        return None
    cov = {}
    for n, v in zip(names, est):
        if n.startswith("omega_") and not n.startswith("omega2_"):
            a, _, b = n[len("omega_"):].partition("_")
            if a in diag and b in diag:
                cov[(a, b)] = float(v)
    return IIV(diag, covariances=cov)


def as_uncertainty(source, *, model=None, omega: str | None = None) -> ParameterUncertainty:
    """A :class:`ParameterUncertainty` from a fit, a saved fit file, a bootstrap, draws, or one already built.

    Examples
    --------
    >>> import numpy as np
    >>> u = as_uncertainty({"CL": np.array([2.5, 2.8, 3.1])})
    >>> u.source, float(u.estimate[0])
    ('3 draws', 2.8)
    """
    from .fitting import Bootstrap, FitResult
    from .nlme import PopulationFit

    if isinstance(source, ParameterUncertainty):
        return source if omega is None or omega == source.omega else replace(source, omega=omega)
    if isinstance(source, str | os.PathLike):
        from .fit_files import load_fit

        source = load_fit(Path(source))
    if isinstance(source, FitResult | PopulationFit):
        return ParameterUncertainty.from_fit(source, model=model, omega=omega or "covariance")
    if isinstance(source, Bootstrap):
        out = ParameterUncertainty.from_bootstrap(source)
        return out if omega is None else replace(out, omega=omega)
    if hasattr(source, "columns") or isinstance(source, Mapping):
        return ParameterUncertainty.from_draws(source)
    raise PkpdError(f"uncertainty: expected a FitResult, PopulationFit, Bootstrap, saved fit file, table of draws or "
                    f"ParameterUncertainty; got {type(source).__name__}")


def trial_seeds(seed: int, n: int) -> list[tuple[np.random.SeedSequence, int]]:
    """Per trial: the seed sequence of its parameter draw and the integer seed of its population.

    Examples
    --------
    >>> [s for _, s in trial_seeds(7, 3)] == [s for _, s in trial_seeds(7, 5)[:3]]
    True
    """
    out = []
    for child in np.random.SeedSequence(int(seed)).spawn(int(n)):
        params, population = child.spawn(2)
        out.append((params, int(population.generate_state(1, np.uint64)[0] >> np.uint64(1))))
    return out


# ================================================================================================ scenarios
@dataclass(frozen=True, eq=False)
class _FittedPopulation:
    """A scenario population with a fit's random effects and covariate effects on top (private).

    The base population gives the subjects' covariates (and any variability of its own on other parameters); the
    covariate effects adjust the typical values; the fit's IIV adds its random effects.
    """

    base: object
    iiv: object = None
    effects: tuple = ()

    @property
    def n(self) -> int:
        return self.base.n

    @property
    def given_covariates(self) -> set:
        return set(getattr(self.base, "given_covariates", set()))

    def check(self, model) -> None:
        if hasattr(self.base, "check"):
            self.base.check(model)
        own = _own_variability(self.base)
        for n in getattr(self.iiv, "names", ()):
            if n in own:
                raise PkpdError(f"uncertainty: the fit has a random effect on {n!r} and the scenario's population "
                                f"gives {n!r} its own variability; remove it from the population (the fit's IIV, "
                                "with its uncertainty, takes its place)")

    def sample(self, model, rng):
        params, covs = self.base.sample(model, rng)
        params = dict(params)
        n = self.base.n
        table = dict(covs)
        extra = getattr(self.base, "_table", None)
        if extra is not None:
            table |= {str(c): extra[c].to_numpy() for c in extra.columns if str(c) not in table}
        for e in self.effects:
            if e.covariate not in table:
                raise PkpdError(f"uncertainty: the fit estimates an effect of {e.covariate!r} on {e.parameter!r}, but "
                                f"the scenario's population gives no {e.covariate!r}; add it (e.g. covariates = "
                                f"{{{e.covariate} = ...}} or covariate_ranges) to the population")
            current = params.get(e.parameter, np.full(n, model.parameter(e.parameter).value))
            params[e.parameter] = e.apply(np.asarray(current, dtype=float), table)
        if self.iiv is not None:
            names = list(self.iiv.names)
            typical = np.stack([np.asarray(params.get(k, np.full(n, model.parameter(k).value)), dtype=float)
                                for k in names], axis=1)
            values = self.iiv.individual(typical, self.iiv.sample(n, rng))
            params.update({k: values[:, i] for i, k in enumerate(names)})
        return params, covs

    def typical_covariates(self, model) -> dict:
        return self.base.typical_covariates(model)

    def describe(self) -> str:
        parts = [self.base.describe()]
        if self.iiv is not None:
            parts.append(f"fitted {self.iiv!r}")
        if self.effects:
            parts.append("fitted covariate effects: " + ", ".join(f"{e.parameter} ~ {e.covariate} ({e.kind})"
                                                                  for e in self.effects))
        return "; ".join(parts)


def _own_variability(pop) -> set:
    names = set(getattr(pop, "omega", {}) or {})
    names |= set(getattr(getattr(pop, "iiv", None), "names", ()) or ())
    params = getattr(pop, "params", None)
    if isinstance(params, Mapping):
        names |= {k for k, v in params.items() if np.ndim(v) > 0}
    return names


def scenario_for_trial(scenario, trial: TrialParameters):
    """The scenario with a trial's typical values, random effects and covariate effects (no uncertainty left)."""
    params = {**dict(scenario.params), **trial.theta}
    population = scenario.population
    if trial.iiv is not None or trial.effects:
        population = _FittedPopulation(population, trial.iiv, tuple(trial.effects))
    return replace(scenario, params=params, population=population, uncertainty=None, sensitivity_arm=None)


def check_scenario_uncertainty(scenario, uncertainty: ParameterUncertainty) -> None:
    """Raise PkpdError when a scenario and an uncertainty source do not fit together (private)."""
    model = scenario.model
    uncertainty.check(model)
    clash = sorted(set(scenario.params) & set(uncertainty.theta_names(model)))
    if clash:
        raise PkpdError(f"scenario {scenario.name!r}: parameter {clash[0]!r} is set in the scenario's parameters and "
                        "estimated by the fit that gives the uncertainty; remove it from [parameters] (the fit's "
                        "estimate, with its uncertainty, is used)")
    _FittedPopulation(scenario.population, uncertainty.iiv, tuple(uncertainty.covariate_effects)).check(model)


def run_trials(scenario, uncertainty: ParameterUncertainty, *, seed: int, n_trials: int, trial_success: float,
               same_population: bool, client=None, chunk_size: int = 2_000, progress=None):
    """The nominal run and ``n_trials`` replicate trials of a scenario (private; see :func:`pkpd.run_scenario`)."""
    import pandas as pd

    from ._progress import ChunkProgress
    from .scenarios import _run_scenario

    model = scenario.model
    nominal_sc = scenario_for_trial(scenario, uncertainty.nominal(model))
    nominal = _run_scenario(nominal_sc, int(seed), client, chunk_size, progress)
    seeds = trial_seeds(seed, n_trials)
    att, summ, params, pop_seeds = [], [], [], []
    with ChunkProgress(n_trials, progress=progress, desc=f"{scenario.name}: trials", unit="trial") as bar:
        for k, (param_seed, pop_seed) in enumerate(seeds):
            trial = uncertainty.sample_one(np.random.default_rng(param_seed), model)
            pop_seed = int(seed) if same_population else pop_seed
            res = _run_scenario(scenario_for_trial(scenario, trial), pop_seed, client, chunk_size, False,
                                dose_response=False)
            pop_seeds.append(pop_seed)
            params.append({"trial": k + 1, "seed": pop_seed, **trial.values})
            a = res.attainment[["arm", "group", "dose", "dose_unit", "target", "probability"]].copy()
            a.insert(0, "trial", k + 1)
            att.append(a)
            s = res.summary[["arm", "endpoint", "unit", "median", "mean"]].copy()
            s.insert(0, "trial", k + 1)
            summ.append(s)
            bar.advance(1)
    summary = TrialSummary(n_trials=int(n_trials), seeds=tuple(pop_seeds), trial_success=float(trial_success),
                           same_population=bool(same_population), parameters=pd.DataFrame(params),
                           attainment=pd.concat(att, ignore_index=True), summary=pd.concat(summ, ignore_index=True),
                           arms=nominal.arms, source=uncertainty.source, unused=tuple(uncertainty.unused(model)),
                           sigmoid=bool(scenario.sigmoid))
    return replace(nominal, scenario=scenario, trials=summary)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


@dataclass(frozen=True, eq=False)
class TrialSummary:
    """Replicate trials of a scenario under parameter uncertainty (``ScenarioResult.trials``).

    Attributes
    ----------
    n_trials : int
    seeds : tuple of int
        Population seed of each trial: ``run_scenario`` of the scenario at the trial's parameters with this seed
        is the trial.
    trial_success : float
        A trial succeeds (for an arm and target) when its PTA is at least this [fraction].
    same_population : bool
    parameters : DataFrame
        ``trial, seed`` and every drawn parameter (names as the source's).
    attainment : DataFrame
        Per trial: ``trial, arm, group, dose, dose_unit, target, probability``.
    summary : DataFrame
        Per trial: ``trial, arm, endpoint, unit, median, mean`` of the endpoint over the trial's subjects.
    arms : DataFrame
        The arms (dose, unit, schedule, group).
    source : str
        Where the uncertainty came from.
    unused : tuple of str
        Parameters of the source that the simulation does not use (residual error, IOV).
    level : float
        Between-trial interval: central ``level`` of the trials (0.9: 5th to 95th percentile).
    """

    n_trials: int
    seeds: tuple
    trial_success: float
    same_population: bool
    parameters: object = field(repr=False)
    attainment: object = field(repr=False)
    summary: object = field(repr=False)
    arms: object = field(repr=False)
    source: str = ""
    unused: tuple = ()
    level: float = 0.9
    sigmoid: bool = False

    @property
    def _q(self) -> tuple[float, float]:
        return 50 * (1 - self.level), 50 * (1 + self.level)

    @property
    def pta(self):
        """Per arm and target: ``pta_median, pta_low, pta_high`` (between-trial interval at ``level``),
        ``pta_mean``, ``p_success`` (fraction of trials with PTA >= ``trial_success``) and its Wilson 95 %
        interval for the Monte-Carlo error of ``n_trials`` (``p_success_low``, ``p_success_high``)."""
        import pandas as pd

        lo_q, hi_q = self._q
        rows = []
        for (arm, target), part in self.attainment.groupby(["arm", "target"], sort=False):
            p = part["probability"].to_numpy(dtype=float)
            ok = p[np.isfinite(p)]
            k = int(np.count_nonzero(ok >= self.trial_success - 1e-12))
            lo, hi = _wilson(k, ok.size)
            first = part.iloc[0]
            rows.append({"arm": arm, "group": first["group"], "dose": first["dose"], "dose_unit": first["dose_unit"],
                         "target": target, "n_trials": int(ok.size),
                         "pta_median": float(np.median(ok)) if ok.size else math.nan,
                         "pta_low": float(np.percentile(ok, lo_q)) if ok.size else math.nan,
                         "pta_high": float(np.percentile(ok, hi_q)) if ok.size else math.nan,
                         "pta_mean": float(np.mean(ok)) if ok.size else math.nan,
                         "p_success": k / ok.size if ok.size else math.nan, "p_success_low": lo,
                         "p_success_high": hi})
        return pd.DataFrame(rows)

    @property
    def dose_response(self):
        """Per schedule group, endpoint and dose: the median over trials of the arm's median endpoint, with the
        between-trial interval (``median, low, high``)."""
        import pandas as pd

        from .scenarios import _percentiles_with_inf

        lo_q, hi_q = self._q
        groups = dict(zip(self.arms["arm"], self.arms["group"]))
        doses = dict(zip(self.arms["arm"], self.arms["dose"]))
        units = dict(zip(self.arms["arm"], self.arms["unit"]))
        rows = []
        for (arm, endpoint), part in self.summary.groupby(["arm", "endpoint"], sort=False):
            v = part["median"].to_numpy(dtype=float)
            v = v[~np.isnan(v)]              # inf: a median time to event not reached in that trial, kept in order
            med, low, high = _percentiles_with_inf(v, (50, lo_q, hi_q)) if v.size else (math.nan,) * 3
            rows.append({"group": groups[arm], "arm": arm, "dose": doses[arm], "dose_unit": units[arm],
                         "endpoint": endpoint, "unit": part["unit"].iloc[0], "median": med, "low": low,
                         "high": high})
        return pd.DataFrame(rows)

    def ed_intervals(self):
        """Per schedule group and endpoint: ED50 and ED90 (median and between-trial interval) of an Emax curve fitted
        to each trial's arm medians (:func:`pkpd.fit_dose_response`; trials whose fit does not converge or whose
        ED50 is not bracketed by the doses are left out and counted in ``n_trials``)."""
        import pandas as pd

        from .scenarios import MIN_DOSE_LEVELS, fit_dose_response

        lo_q, hi_q = self._q
        arms = self.arms
        controls = set(arms.loc[arms["group"] == "untreated", "arm"])
        rows = []
        for group, members in arms[arms["group"] != "untreated"].groupby("group", sort=False):
            if members["dose"].nunique() < MIN_DOSE_LEVELS:
                continue
            dose = dict(zip(arms["arm"], arms["dose"]))
            mine = set(members["arm"]) | controls
            for endpoint, part in self.summary[self.summary["arm"].isin(mine)].groupby("endpoint", sort=False):
                ed50, ed90 = [], []
                for _, trial in part.groupby("trial", sort=False):
                    d = trial["arm"].map(dose).to_numpy(dtype=float)
                    y = trial["median"].to_numpy(dtype=float)
                    with np.errstate(all="ignore"):
                        fit = fit_dose_response(d, y, sigmoid=self.sigmoid)
                    if fit.converged and not fit.message:
                        ed50.append(fit.ed50)
                        ed90.append(fit.ed90)
                row = {"group": group, "endpoint": endpoint, "n_trials": len(ed50)}
                for col, v in (("ED50", np.array(ed50)), ("ED90", np.array(ed90))):
                    row |= {col: float(np.median(v)) if v.size else math.nan,
                            f"{col}_low": float(np.percentile(v, lo_q)) if v.size else math.nan,
                            f"{col}_high": float(np.percentile(v, hi_q)) if v.size else math.nan}
                rows.append(row)
        return pd.DataFrame(rows, columns=["group", "endpoint", "n_trials", "ED50", "ED50_low", "ED50_high", "ED90",
                                           "ED90_low", "ED90_high"])

    def lowest_dose(self, success: float = 0.8):
        """Per schedule group and target, the lowest dose whose probability of trial success is at least
        ``success`` (dose NaN and the best probability reached when none is, NaN where every simulation of the
        schedule's arms failed)."""
        import pandas as pd

        table = self.pta
        rows = []
        for (group, target), part in table[table["group"] != "untreated"].groupby(["group", "target"], sort=False):
            part = part.sort_values("dose")
            ok = part[part["p_success"] >= success]
            if len(ok):
                best = ok.iloc[0]
            else:  # the best probability reached; none (NaN) where every simulation of the group's arms failed
                best = part.loc[part["p_success"].idxmax()] if part["p_success"].notna().any() else part.iloc[0]
            rows.append({"group": group, "target": target, "dose": best["dose"] if len(ok) else math.nan,
                         "dose_unit": best["dose_unit"], "p_success": best["p_success"],
                         "pta_median": best["pta_median"], "pta_low": best["pta_low"],
                         "pta_high": best["pta_high"]})
        return pd.DataFrame(rows, columns=["group", "target", "dose", "dose_unit", "p_success", "pta_median",
                                           "pta_low", "pta_high"])

    def plot(self, **kwargs):
        """PTA against dose with between-trial intervals and the probability of trial success; see
        :func:`pkpd.decision_plots.plot_trial_attainment`."""
        from .decision_plots import plot_trial_attainment

        return plot_trial_attainment(self, **kwargs)

    def __repr__(self) -> str:
        how = "same virtual subjects" if self.same_population else "a new population each"
        return (f"TrialSummary({self.n_trials} trials ({how}) from {self.source}; trial success: PTA >= "
                f"{self.trial_success:g}; see .pta, .dose_response, .lowest_dose())")


def check_trials(n_trials, trial_success, where: str) -> tuple[int, float]:
    """Validated (n_trials, trial_success) (private)."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
        raise PkpdError(f"{where}: n_trials must be an integer >= 1; got {n_trials!r}")
    if (isinstance(trial_success, bool) or not isinstance(trial_success, numbers.Real)
            or not 0 < trial_success <= 1):
        raise PkpdError(f"{where}: trial_success must be a probability in (0, 1] (the PTA a trial must reach); got "
                        f"{trial_success!r}")
    return int(n_trials), float(trial_success)


# ================================================================================================ populations
def _merge_iiv(user, fitted):
    """One IIV from the user's and the fit's (block-diagonal; a parameter in both is an error)."""
    if user is None or fitted is None:
        return user if fitted is None else fitted
    from .population import IIV

    both = sorted(set(user.names) & set(fitted.names))
    if both:
        raise PkpdError(f"uncertainty: the fit has a random effect on {both[0]!r} and iiv= gives it one too; drop it "
                        "from iiv (the fit's, with its uncertainty, takes its place)")
    names = list(user.names) + list(fitted.names)
    q1 = user.n_eta
    om = np.zeros((len(names), len(names)))
    om[:q1, :q1] = user.omega
    om[q1:, q1:] = fitted.omega
    dist = dict(zip(user.names, user.distributions)) | dict(zip(fitted.names, fitted.distributions))
    return IIV.from_matrix(names, om, distribution=dist)


def _merge_effects(user, fitted) -> tuple:
    keys = {(e.parameter, e.covariate) for e in user}
    for e in fitted:
        if (e.parameter, e.covariate) in keys:
            raise PkpdError(f"uncertainty: the fit estimates the effect of {e.covariate!r} on {e.parameter!r} and "
                            "effects= gives it too; drop it from effects")
    return tuple(user) + tuple(fitted)


@dataclass(frozen=True, eq=False)
class PopulationTrials:
    """Replicate trials of :func:`pkpd.simulate_population` under parameter uncertainty (``.trials`` of its
    result).

    Attributes
    ----------
    n_trials : int
    seeds : tuple of int
        Each trial is ``simulate_population`` at its parameters with this seed.
    parameters : DataFrame
        ``trial, seed`` and every drawn parameter.
    times : ndarray (n_times,)
    percentiles : tuple of float
        The band percentiles across subjects.
    bands : dict[str, ndarray (n_trials, n_percentiles, n_times)]
        Per output, each trial's bands [output unit].
    metrics : DataFrame
        ``trial, metric, median, mean`` of each per-subject metric (``Cmax_<output>``, ``AUC_<output>``...).
    source : str
    level : float
    """

    n_trials: int
    seeds: tuple
    parameters: object = field(repr=False)
    times: np.ndarray = field(repr=False)
    percentiles: tuple = ()
    bands: dict = field(repr=False, default_factory=dict)
    metrics: object = field(repr=False, default=None)
    source: str = ""
    level: float = 0.9

    def band_interval(self, output: str) -> np.ndarray:
        """Between-trial interval of every band: (n_percentiles, 3, n_times) = (low, median, high) over trials at
        ``level`` for each population percentile [output unit]."""
        if output not in self.bands:
            raise KeyError(f"output {output!r} was not simulated." + did_you_mean(output, list(self.bands)))
        q = (50 * (1 - self.level), 50, 50 * (1 + self.level))
        return np.percentile(self.bands[output], q, axis=0).transpose(1, 0, 2)

    def __repr__(self) -> str:
        return f"PopulationTrials({self.n_trials} trials from {self.source}; see .band_interval(output), .metrics)"


def population_trials(model, regimen, times, population, *, uncertainty, n_trials, same_population, iiv, effects,
                      seed, outputs, percentiles, settings, iov, occasions):
    """simulate_population with parameter uncertainty (private; see :func:`pkpd.simulate_population`)."""
    import pandas as pd

    from .load import load_model
    from .population import simulate_population

    m = load_model(model) if isinstance(model, str) else model
    unc = as_uncertainty(uncertainty, model=m)
    unc.check(m)
    n_trials, _ = check_trials(200 if n_trials is None else n_trials, 0.8, "simulate_population")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    user_effects = tuple(effects)

    def run(trial: TrialParameters, pop_seed):
        return simulate_population(m.with_parameters(**trial.theta), regimen, times, population,
                                   iiv=_merge_iiv(iiv, trial.iiv), effects=_merge_effects(user_effects, trial.effects),
                                   seed=pop_seed, outputs=outputs, percentiles=percentiles, settings=settings, iov=iov,
                                   occasions=occasions)

    nominal = run(unc.nominal(m), seed)
    bands = {o: [] for o in nominal.bands}
    params, seeds, metrics = [], [], []
    metric_cols = [c for c in nominal.subjects.columns if c.split("_", 1)[0] in ("Cmax", "Tmax", "AUC")]
    for k, (param_seed, pop_seed) in enumerate(trial_seeds(seed, n_trials)):
        trial = unc.sample_one(np.random.default_rng(param_seed), m)
        pop_seed = int(seed) if same_population else pop_seed
        res = run(trial, pop_seed)
        seeds.append(pop_seed)
        params.append({"trial": k + 1, "seed": pop_seed, **trial.values})
        for o in bands:
            bands[o].append(res.bands[o])
        for c in metric_cols:
            v = res.subjects[c].to_numpy(dtype=float)
            metrics.append({"trial": k + 1, "metric": c, "median": float(np.median(v)), "mean": float(np.mean(v))})
    out = PopulationTrials(n_trials=n_trials, seeds=tuple(seeds), parameters=pd.DataFrame(params),
                           times=nominal.times, percentiles=nominal.percentiles,
                           bands={o: np.stack(v) for o, v in bands.items()}, metrics=pd.DataFrame(metrics),
                           source=unc.source)
    return replace(nominal, trials=out)


# ================================================================================================ summaries
@dataclass(frozen=True, eq=False)
class SummaryTrials:
    """Replicate trials of :func:`pkpd.simulate_summary` under parameter uncertainty (``.trials`` of its result).

    Attributes
    ----------
    n_trials : int
    seeds : tuple of int
        Seed of each trial's random effects.
    parameters : DataFrame
        ``trial, seed`` and every drawn parameter.
    percentiles : ndarray (n_trials, n_outputs, n_levels, n_times)
        Each trial's percentiles across subjects (levels as the nominal summary's) [output unit].
    mean : ndarray (n_trials, n_outputs, n_times)
    metric_medians : dict[str, ndarray (n_trials,)]
        Median over each trial's subjects of every per-subject metric.
    source : str
    level : float
    """

    n_trials: int
    seeds: tuple
    parameters: object = field(repr=False)
    percentiles: np.ndarray = field(repr=False, default=None)
    mean: np.ndarray = field(repr=False, default=None)
    metric_medians: dict = field(repr=False, default_factory=dict)
    source: str = ""
    level: float = 0.9

    def interval(self) -> np.ndarray:
        """Between-trial (low, median, high) of every percentile curve: (3, n_outputs, n_levels, n_times)."""
        return np.percentile(self.percentiles, (50 * (1 - self.level), 50, 50 * (1 + self.level)), axis=0)

    def __repr__(self) -> str:
        return f"SummaryTrials({self.n_trials} trials from {self.source}; see .interval(), .metric_medians)"


def summary_trials(model, regimen, times, *, uncertainty, n_trials, seed, same_population, params, covariates,
                   **options):
    """simulate_summary with parameter uncertainty (private; see :func:`pkpd.simulate_summary`)."""
    import pandas as pd

    from .compile import CompiledModel
    from .simulation import _as_model
    from .summaries import simulate_summary

    m = model.model if isinstance(model, CompiledModel) else _as_model(model)
    unc = as_uncertainty(uncertainty, model=m)
    unc.check(m)
    n_trials, _ = check_trials(200 if n_trials is None else n_trials, 0.8, "simulate_summary")
    clash = sorted(set(params or {}) & (set(unc.theta_names(m)) | set(getattr(unc.iiv, "names", ()))))
    if clash:
        raise PkpdError(f"simulate_summary: params gives {clash[0]!r}, which the fit giving the uncertainty "
                        "estimates; leave it out (each trial draws it)")
    sizes = {np.size(v) for v in [*(params or {}).values(), *(covariates or {}).values()] if np.ndim(v) > 0}
    n = max(sizes) if sizes else 1
    if unc.iiv is not None and n == 1:
        raise PkpdError("simulate_summary: the uncertainty carries between-subject variability, so the population "
                        "needs a size: give per-subject arrays (e.g. covariates={'WT': weights})")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    covs = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in (covariates or {}).items()}

    def run(trial: TrialParameters, pop_seed: int):
        mk = m.with_parameters(**trial.theta)
        subject = {k: np.asarray(v, dtype=float) for k, v in (params or {}).items()}
        typical = {}
        for e in trial.effects:
            if e.covariate not in covs:
                raise PkpdError(f"simulate_summary: the fit estimates an effect of {e.covariate!r} on "
                                f"{e.parameter!r}; give covariates={{{e.covariate!r}: ...}}")
            current = typical.get(e.parameter, np.full(n, mk.parameter(e.parameter).value))
            typical[e.parameter] = e.apply(current, covs)
        if trial.iiv is not None:
            names = list(trial.iiv.names)
            base = np.stack([typical.get(k, np.full(n, mk.parameter(k).value)) for k in names], axis=1)
            values = trial.iiv.individual(base, trial.iiv.sample(n, np.random.default_rng(pop_seed)))
            typical.update({k: values[:, i] for i, k in enumerate(names)})
        return simulate_summary(mk, regimen, times, params={**typical, **subject} or None,
                                covariates=covariates, **options)

    nominal = run(unc.nominal(m), int(seed))
    pct, mean, med, params_rows, seeds = [], [], {k: [] for k in nominal.metrics}, [], []
    for k, (param_seed, pop_seed) in enumerate(trial_seeds(seed, n_trials)):
        trial = unc.sample_one(np.random.default_rng(param_seed), m)
        pop_seed = int(seed) if same_population else pop_seed
        res = run(trial, pop_seed)
        seeds.append(pop_seed)
        params_rows.append({"trial": k + 1, "seed": pop_seed, **trial.values})
        pct.append(res.percentiles)
        mean.append(res.mean)
        for name, v in res.metrics.items():
            med[name].append(float(np.nanmedian(v)))
    out = SummaryTrials(n_trials=n_trials, seeds=tuple(seeds), parameters=pd.DataFrame(params_rows),
                        percentiles=np.stack(pct), mean=np.stack(mean),
                        metric_medians={k: np.array(v) for k, v in med.items()}, source=unc.source)
    return replace(nominal, trials=out)
