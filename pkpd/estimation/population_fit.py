r"""Population (nonlinear mixed-effects) estimation: FO, FOCE, FOCE with interaction (FOCE-I), Laplace and SAEM.

Model: subject *i* has random effects :math:`\eta_i \sim N(0, \Omega)` on some parameters (:class:`pkpd.IIV`),
individual parameters :math:`P_i = g(\theta, \eta_i)` (log-normal by default), predictions
:math:`f_{ij}(\eta_i)` from the ODE model, and observations :math:`y_{ij} \sim N(f_{ij}, R_{ij})` with the
residual variance :math:`R_{ij} = \sigma(f_{ij})^2` of an error model (:mod:`pkpd.error_models`; for
:class:`~pkpd.LogNormal` the same on :math:`\log y`).

The objective function value (OFV) is NONMEM's: :math:`-2\log L` **without** the constant
:math:`N_{obs}\log 2\pi` (so the numbers equal NONMEM's "OBJECTIVE FUNCTION VALUE"). ``FitResult``-style
results also give ``minus2ll = ofv + N log 2π`` (N quantified observations: a censored one has no density and no
log 2π), used for AIC and BIC (as :func:`pkpd.fit` does). With
the individual objective

.. math:: O_i(\eta) = \sum_j \left[\frac{(y_{ij}-f_{ij})^2}{R_{ij}} + \log R_{ij}\right]
          + \eta^\top\Omega^{-1}\eta,

the conditional estimate (empirical Bayes estimate, EBE) is :math:`\hat\eta_i = \arg\min O_i`, and

* **FOCE-I** (NONMEM ``METHOD=1 INTER``):
  :math:`\mathrm{OFV}_i = O_i(\hat\eta_i) + \log|\Omega| + \log|H_i|`, with the expected-information
  (first-derivative) approximation of the Hessian of :math:`O_i/2`,
  :math:`H_i = \Omega^{-1} + \sum_j \left[g_{ij} g_{ij}^\top / R_{ij}
  + \tfrac12\, r_{ij} r_{ij}^\top / R_{ij}^2\right]`, :math:`g_{ij} = \partial f_{ij}/\partial\eta`,
  :math:`r_{ij} = \partial R_{ij}/\partial\eta`, all at :math:`\hat\eta_i` (Wang 2007). The
  :math:`\tfrac12 r r^\top/R^2` term is what makes the proportional-error example give NONMEM's 39.458 (without it,
  39.273);
* **FOCE** (``METHOD=1``): the same, but :math:`R` is evaluated at the population prediction
  :math:`f(\eta = 0)` both in :math:`O_i` and in :math:`H_i` (so :math:`r = 0`: no η–ε interaction);
* **Laplace** (``METHOD=1 LAPLACIAN INTER``): :math:`\log|\tfrac12\nabla^2 O_i(\hat\eta_i)|` with the exact
  (finite-difference) Hessian; this is also the method for data below the limit of quantification (M3), whose
  likelihood term :math:`-2\log\Phi((\mathrm{LLOQ}-f)/\sqrt R)` enters :math:`O_i`, as NONMEM requires;
* **FO** (``METHOD=0``): :math:`\mathrm{OFV}_i = \log|C_i| + r_i^\top C_i^{-1} r_i`, :math:`r_i = y_i - f_i(0)`,
  :math:`C_i = G_i\Omega G_i^\top + R_i`, everything at :math:`\eta = 0`.

Without linearisation: ``method="saem"`` estimates by stochastic approximation EM (:mod:`pkpd.saem`), and
``objective="is"`` (always with SAEM) reports the exact :math:`-2\log L` by importance sampling around the conditional
modes, with its Monte-Carlo standard error (:mod:`pkpd.importance`). With ``priors`` the estimates are maximum a
posteriori: -2 log prior of the typical values (:mod:`pkpd.priors`) and of :math:`\Omega` (inverse-Wishart) is added
to the OFV.

Covariate effects on typical values (:class:`pkpd.CovariateEffect`: power, linear or categorical) can be estimated
with the other parameters: subject *i*'s typical value is :math:`\theta\,(c_i/\mathrm{ref})^{\beta}`,
:math:`\theta\,(1 + \beta(c_i - \mathrm{ref}))`, or :math:`\theta\,\beta_k` for a subject in category *k*
(:math:`\beta = 1` for the reference category), with :math:`\beta` estimated on the natural scale.
Diagnostics: PRED/IPRED/IWRES/CWRES in the fit's table, :func:`npde` (normalised prediction distribution
errors) and :func:`vpc`; :func:`pkpd.plots.plot_gof` draws the goodness-of-fit panel.

Numerics (documented choices):

* With a C compiler (the default), the objective and its **analytic gradient** come from generated C
  (:mod:`pkpd.estimation._objective`): the model solved with its forward sensitivity equations, subjects on
  parallel threads. :math:`\hat\eta_i` by a damped Gauss–Newton iteration on :math:`O_i` using the
  expected-information Hessian (:math:`G^\top R^{-1} G + \tfrac12 R'^\top R^{-2} R' + \Omega^{-1}`), with step
  halving, warm-started at the first-order prediction from the previous EBEs; the gradient in the typical values,
  Ω and the residual-error parameters by the implicit function theorem at the EBEs (second-order sensitivities,
  third order for Laplace).
* Otherwise (no compiler, inter-occasion variability, doses that depend on a varying parameter, records of
  clinical endpoints...), the finite-difference engine (:mod:`pkpd.estimation.finite_difference`):
  :math:`\partial f/\partial\eta` by central finite differences (step 1e-4 in η), every subject, perturbation
  and parameter set of one step solved in **one** compiled batch call (:func:`pkpd.simulation.run_batch`),
  central-difference outer gradients. Both engines give the same objective (to 1e-5).
* Outer problem: L-BFGS-B over log typical values (natural scale for parameters whose lower bound is negative),
  the Cholesky factor of Ω (log diagonal; off-diagonal elements only where the initial Ω has a covariance) and
  the log of the residual-error parameters; central-difference gradients, every perturbed parameter set solved in
  the same batch call; η warm-started from the previous solution. FO with the compiled objective (and no priors)
  uses Fisher scoring instead (:mod:`pkpd.estimation.fisher_scoring`): FO's likelihood is Gaussian, so the
  expected Hessian of its OFV comes in closed form from the derivatives its gradient already needs
  (:mod:`pkpd.estimation._fo_information`); Newton steps with it, corrected by BFGS from the last steps, converge
  in about 10 evaluations instead of 25-80 (the same optimum: ``tests/unit/test_fo_scoring.py``). If scoring
  stalls, L-BFGS-B continues from where it stopped, and the message says so.
* Covariance step: :math:`R` = Hessian of the OFV and :math:`S = \sum_i \nabla\mathrm{OFV}_i\nabla\mathrm{OFV}_i^\top`
  (central differences); covariance :math:`R^{-1}SR^{-1}` (NONMEM's default sandwich), :math:`2R^{-1}` or
  :math:`4S^{-1}`; standard errors of the natural-scale parameters by the delta method. If the requested matrix
  cannot be formed, the result falls back (sandwich → R → S) and says so; if none can, it shows no standard errors.
  For FO with the compiled objective, :math:`R` is the expected Hessian of the OFV (twice the Fisher information,
  the "linearisation" information of Monolix and PFIM), which costs no evaluation; NONMEM's observed Hessian
  differs from it where the FO model does not describe the data well (theophylline: standard errors of ka and
  omega2_ka 0.43 and 0.15 with the sandwich, against 0.62 and 0.31 with the observed Hessian), and
  ``covariance_message`` says which R was used.

References
----------
Wang Y (2007) Derivation of various NONMEM estimation methods. J Pharmacokinet Pharmacodyn 34:575-593.
Beal SL, Sheiner LB, Boeckmann AJ, Bauer RJ (1989-2011) NONMEM Users Guides. Icon, Ellicott City.
Hooker AC, Staatz CE, Karlsson MO (2007) Conditional weighted residuals (CWRES). Pharm Res 24:2187-2197.
Savic RM, Karlsson MO (2009) Importance of shrinkage in empirical Bayes estimates. AAPS J 11:558-569.
Brendel K, Comets E, Laffont C, Laveille C, Mentre F (2006) Metrics for external model evaluation with an application to
the population pharmacokinetics of gliclazide. Pharm Res 23:2036-2049.
Comets E, Brendel K, Mentre F (2008) Computing normalised prediction distribution errors to evaluate nonlinear
mixed-effect models: the npde add-on package for R. Comput Methods Programs Biomed 90:154-166.
Nguyen TH, Comets E, Mentre F (2012) Extension of NPDE for evaluation of nonlinear mixed effect models in presence
of data below the quantification limit. J Pharmacokinet Pharmacodyn 39:499-518.
"""

from __future__ import annotations

import dataclasses
import html
import math
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._arguments import check_level
from ..error_models import M3
from ..errors import FitError
from ..model import Model
from ..population import IIV, IOV
from ..settings import SolverSettings
from .covariance import _covariance_step
from .finite_difference import _hessian_from_stencil, _hessian_stencil, _Problem
from .population_model import (
    _coefficients,
    _effect_columns,
    _error_dict,
    _estimated_effects,
    _Layout,
    _layout,
    _parameter_units,
    _pretty_names,
)

__all__ = ["METHODS", "PopulationFit", "fit_population", "population_objective"]

METHODS = ("focei", "foce", "fo", "laplace")
_LOG_2PI = math.log(2.0 * math.pi)
_H_OUTER = 1e-4     # finite-difference step of the outer gradient (internal scale)
_H_HESS = 2e-3      # finite-difference step of the covariance-step Hessian (internal scale)
_PENALTY = 1e10     # what the optimiser sees at a parameter set whose objective cannot be computed


# ====================================================================================================== result
@dataclass(frozen=True, eq=False)
class PopulationFit:
    r"""The result of :func:`fit_population`.

    Attributes
    ----------
    method : str
        ``"focei"``, ``"foce"``, ``"fo"`` or ``"laplace"``.
    objective : float
        NONMEM's objective function value: -2 log L without :math:`N_{obs}\log 2\pi`.
    minus2ll : float
        -2 log L including the constant (``objective + log 2π`` per quantified observation: a censored (M3) one
        has none); AIC and BIC use it.
    aic, bic : float
        ``minus2ll + 2k`` and ``minus2ll + k log n_obs`` (k estimated parameters).
    theta : dict[str, float]
        Typical values [parameter unit] (estimated and fixed).
    omega : ndarray, shape (q, q)
        Estimated :math:`\Omega` of the random effects named by ``iiv.names``.
    iiv : IIV
        The variability model at the estimates.
    error : dict[str, error model]
        Residual error models at the estimates, by output.
    parameters : pandas.DataFrame
        name, estimate, se, rse_percent (NaN when the covariance step failed); :meth:`parameter_table` adds
        units, confidence intervals and the CV % of the variabilities.
    covariance : ndarray or None
        Covariance matrix of the estimates in ``parameters`` order (natural scale).
    covariance_message : str
        Which matrix was used (sandwich, R or S) or why no standard errors are shown.
    eta : ndarray, shape (n_subjects, q)
        Empirical Bayes estimates (conditional modes; zero for FO).
    shrinkage : dict[str, float]
        η shrinkage per random effect, :math:`1 - \mathrm{SD}(\hat\eta)/\omega` [fraction]; NaN ("not
        available") for FO, which estimates no EBEs, and with a single subject.
    table : pandas.DataFrame
        ID, TIME, DV, PRED (:math:`f(\eta=0)`), IPRED (:math:`f(\hat\eta)`), RES, IWRES, CWRES, CENS, OUTPUT
        (the observed output) and one ETA column per random effect.
    n_subjects, n_obs : int
    converged : bool
    message : str
    n_evaluations : int
        Objective evaluations (parameter sets) of the outer optimiser.
    n_failures : int
        Evaluations during the optimisation at which some subject's objective could not be computed (the model
        could not be solved there, or the objective was not finite); the message names the subjects.
    seconds : float
        Wall time of the fit [s].
    model_name : str
    output_units : dict[str, str]
        Unit of each observed output (of DV, PRED and IPRED); ``time_unit`` the model's time unit (of TIME).
    covariate_effects : tuple of CovariateEffect
        The estimated covariate effects (``value`` = estimate); ``theta`` holds the typical values at the
        effects' reference covariate values.
    iov : IOV or None
        Estimated inter-occasion variances :math:`\Pi` (with ``iov=`` in :func:`fit_population`).
    kappa : ndarray (n_subjects, n_occasions, n_iov) or None
        Empirical Bayes estimates of the occasion effects (NaN for occasions a subject does not have).
    units : dict[str, str]
        Unit of each row of ``parameters``, by name (``"1"`` for variances of log-normal effects and for
        proportional errors).
    objective_method : str
        How ``objective`` was computed: the method's own (``"focei"``, ``"laplace"``...) or ``"is"``
        (importance sampling, :mod:`pkpd.importance`).
    objective_se : float
        Monte-Carlo standard error of an importance-sampling objective (NaN otherwise).
    trace : pandas.DataFrame or None
        SAEM's parameter values at every iteration (``iteration`` and one column per row of ``parameters``);
        :meth:`plot_convergence` draws it.
    prior_objective : float
        -2 log prior density at the estimates (MAP fits with ``priors``; 0 otherwise).
    engine : str
        Which code computed the objective: ``"compiled"`` (the compiled estimation library with analytic
        gradients, or SAEM's compiled batch solves), or ``"finite differences: <why>"`` (the finite-difference
        engine and the reason the compiled one could not serve this problem, e.g. no C compiler).

    Examples
    --------
    >>> import pkpd
    >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                           error=pkpd.Proportional(cv=0.316228), maxeval=0,
    ...                           settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    >>> round(fit.objective, 3)
    39.458
    """

    method: str
    objective: float
    minus2ll: float
    aic: float
    bic: float
    theta: dict
    omega: np.ndarray
    iiv: IIV
    error: dict
    parameters: object
    covariance: np.ndarray | None
    covariance_message: str
    eta: np.ndarray
    shrinkage: dict
    table: object
    n_subjects: int
    n_obs: int
    converged: bool
    message: str
    n_evaluations: int
    seconds: float
    model_name: str
    output_units: dict = field(default_factory=dict)
    time_unit: str = ""
    covariate_effects: tuple = ()
    iov: IOV | None = None
    kappa: np.ndarray | None = None
    n_failures: int = 0
    units: dict = field(default_factory=dict)
    objective_method: str = ""
    objective_se: float = float("nan")
    trace: object = None
    prior_objective: float = 0.0
    engine: str = ""

    def plot_convergence(self, **kwargs):
        """SAEM's parameter traces per iteration (:func:`pkpd.plots.plot_saem_convergence`)."""
        from ..plots import plot_saem_convergence

        return plot_saem_convergence(self, **kwargs)

    def parameter_table(self, level: float = 0.95):
        r"""The estimates as a report table: unit, SE, RSE, confidence interval, CV % of the variabilities.

        Parameters
        ----------
        level : float
            Coverage of the Wald confidence intervals (estimate +/- z SE on the natural scale).

        Returns
        -------
        pandas.DataFrame
            ``name, estimate, unit, se, rse_percent, ci_low, ci_high, cv_percent, shrinkage_percent``. ``cv_percent``
            is the between-subject (or between-occasion) coefficient of variation of a variance :math:`\omega^2`:
            :math:`100\sqrt{e^{\omega^2}-1}` for a log-normal effect, :math:`100\,\omega/\theta` for a normal one
            (NaN otherwise); ``shrinkage_percent`` is the η shrinkage of that random effect.

        Examples
        --------
        >>> import pkpd
        >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
        ...                           error=pkpd.Additive(sd=0.3), maxeval=0)
        >>> table = fit.parameter_table()
        >>> table.loc[table["name"] == "omega2_ke", ["unit", "cv_percent"]].round(2).values.tolist()
        [['1', 20.2]]
        """
        import pandas as pd
        from scipy.stats import norm

        level = check_level(level, "parameter_table", FitError)
        z = float(norm.ppf(0.5 + level / 2))
        p = self.parameters
        est, se = p["estimate"].to_numpy(dtype=float), p["se"].to_numpy(dtype=float)
        cv = np.full(len(p), np.nan)
        shrink = np.full(len(p), np.nan)
        kinds = dict(zip(self.iiv.names, self.iiv.distributions))
        if self.iov is not None:
            iov_kinds = dict(zip(self.iov.names, self.iov.distributions))
        for i, name in enumerate(p["name"]):
            for prefix, dist in (("omega2_", kinds), ("iov2_", iov_kinds if self.iov is not None else {})):
                if name.startswith(prefix) and name[len(prefix):] in dist:
                    target = name[len(prefix):]
                    with np.errstate(all="ignore"):
                        if dist[target] == "lognormal":
                            cv[i] = 100 * math.sqrt(math.expm1(est[i])) if est[i] >= 0 else np.nan
                        elif dist[target] == "normal" and self.theta.get(target):
                            cv[i] = 100 * math.sqrt(max(est[i], 0.0)) / abs(self.theta[target])
                    if prefix == "omega2_":
                        shrink[i] = 100 * self.shrinkage.get(target, np.nan)
        return pd.DataFrame({"name": p["name"], "estimate": est,
                             "unit": [self.units.get(n, "") for n in p["name"]], "se": se,
                             "rse_percent": p["rse_percent"].to_numpy(dtype=float),
                             "ci_low": est - z * se, "ci_high": est + z * se, "cv_percent": cv,
                             "shrinkage_percent": shrink})

    def save(self, path):
        """Write the fit to a JSON file (estimates, covariance, Omega, EBEs, diagnostics; see
        :mod:`pkpd.fit_files`)."""
        from ..fit_files import save_fit

        return save_fit(self, path)

    @classmethod
    def load(cls, path) -> PopulationFit:
        """Read a fit written by :meth:`save` (validated field by field; nothing in the file is executed)."""
        from ..fit_files import load_fit

        out = load_fit(path)
        if not isinstance(out, cls):
            raise FitError(f"{path}: holds a {type(out).__name__}, not a PopulationFit; use pkpd.fit_files.load_fit")
        return out

    def _shrinkage_text(self) -> str:
        if all(not np.isfinite(v) for v in self.shrinkage.values()):
            return "not available" + (" (FO estimates no EBEs)" if self.method == "fo" else "")
        return ", ".join(f"{k} {100 * v:.1f} %" if np.isfinite(v) else f"{k} not available"
                         for k, v in self.shrinkage.items())

    def __repr__(self) -> str:
        mc = f" +/- {self.objective_se:.3f} (IS)" if np.isfinite(self.objective_se) else ""
        lines = [f"PopulationFit({self.model_name}, {self.method.upper()}): OFV {self.objective:.3f}{mc} "
                 f"(-2LL {self.minus2ll:.3f}, AIC {self.aic:.2f}, BIC {self.bic:.2f}); {self.n_subjects} subjects, "
                 f"{self.n_obs} observations; {'converged' if self.converged else 'NOT CONVERGED'}: {self.message}"]
        p = self.parameters
        for _, row in p.iterrows():
            se = "" if not np.isfinite(row["se"]) else f"  SE {row['se']:.4g} (RSE {row['rse_percent']:.1f} %)"
            lines.append(f"  {row['name']:<22} {row['estimate']:.5g}{se}")
        lines.append("  shrinkage: " + self._shrinkage_text())
        lines.append(f"  covariance: {self.covariance_message}")
        if self.engine:
            lines.append(f"  engine: {self.engine}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(r['name']))}</td><td>{r['estimate']:.5g}</td>"
            f"<td>{'' if not np.isfinite(r['se']) else f'{r.se:.3g}'}</td>"
            f"<td>{'' if not np.isfinite(r['rse_percent']) else f'{r.rse_percent:.1f}'}</td></tr>"
            for _, r in self.parameters.iterrows())
        head = html.escape(f"{self.model_name} {self.method.upper()}: OFV {self.objective:.3f}, AIC {self.aic:.2f}; "
                           f"{'converged' if self.converged else 'NOT CONVERGED'} ({self.message})")
        shr = html.escape(self._shrinkage_text())
        return (f"<p><b>{head}</b></p><table><tr><th>parameter</th><th>estimate</th><th>SE</th><th>RSE %</th></tr>"
                f"{rows}</table><p>η shrinkage: {shr}. Covariance: {html.escape(self.covariance_message)}</p>")


# ====================================================================================================== API
def _setup(model, data, iiv, error, method, estimate, blq, settings, init, effects=(), iov=None):
    from ..load import load_model
    from .data import _read

    if isinstance(model, str):
        model = load_model(model)
    if not isinstance(model, Model):
        raise FitError(f"model: expected a pkpd Model or a model name; got {type(model).__name__}")
    if method not in METHODS:
        raise FitError(f"method: must be one of {METHODS}; got {method!r}")
    if isinstance(iiv, Mapping):
        iiv = IIV(dict(iiv))
    if not isinstance(iiv, IIV):
        raise FitError(f"iiv: expected a dict name -> variance or a pkpd.IIV; got {type(iiv).__name__}")
    if blq is not None and not isinstance(blq, M3):
        raise FitError(f"blq: fit_population supports M3 (or None); got {type(blq).__name__}")
    error = _error_dict(model, error)
    settings = settings or SolverSettings(rtol=1e-8, atol=1e-10)
    data = _read(model, data)   # parsed once: the problem, covariate effects and occasions all read this
    if isinstance(iov, Mapping):
        iov = IOV(dict(iov))
    if iov is not None and not isinstance(iov, IOV):
        raise FitError(f"iov: expected a dict name -> variance or a pkpd.IOV; got {type(iov).__name__}")
    if iov is not None and np.any(iov.omega != np.diag(np.diag(iov.omega))):
        raise FitError("iov: covariances between occasion effects are not estimated; give variances only")
    layout = _layout(model, iiv, estimate, error, init)
    prob = _Problem(model, data, iiv, error, method, blq, settings, iov)
    if iov is not None:
        x_iov = 0.5 * np.log(np.diag(iov.omega))
        layout = dataclasses.replace(layout, iov_names=iov.names, n_occ=prob.n_occ,
                                     x0=np.concatenate([layout.x0, x_iov]))
    effects = tuple(effects or ())
    if effects:
        columns = _effect_columns(model, prob, effects, data)
        coefs = _coefficients(effects)
        x0 = np.concatenate([layout.x0, [c.value for c in coefs]])
        layout = dataclasses.replace(layout, effects=coefs, user_effects=effects, effect_columns=columns, x0=x0)
    return model, iiv, error, layout, prob


def population_objective(model, data, *, iiv, error=None, method: str = "focei", blq=None,
                         settings: SolverSettings | None = None, init: Mapping | None = None, iov=None) -> float:
    """NONMEM's objective function value at fixed parameters (``MAXEVAL=0``).

    Arguments as :func:`fit_population`. Returns the OFV, -2 log L without :math:`N_{obs}\\log 2\\pi`.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import population_objective
    >>> round(population_objective("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...       error=pkpd.Additive(sd=0.316228), method="foce",
    ...       settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12)), 3)
    -2.059
    """
    from ._blas import single_threaded_blas

    with single_threaded_blas():
        _, _, _, layout, prob = _setup(model, data, iiv, error, method, None, blq, settings, init, iov=iov)
        engine = _objective_engine(prob, layout)
        run = _GradientRun(engine, prob, layout) if engine is not None else _FiniteDifferenceRun(prob, layout)
        ofv, _ = run.final(layout.x0)                   # raises FitError naming the subject that fails
    return float(ofv.sum())


# ====================================================================================================== engines
def _objective_engine(prob: _Problem, layout: _Layout):
    """The compiled objective with analytic gradients (:mod:`pkpd.estimation._objective`), or None where it cannot
    serve this problem (the finite-difference path does; :func:`_compiled_unsupported` says why)."""
    if _compiled_unsupported(prob, layout):
        return None
    from ._objective import PopulationObjective

    return PopulationObjective(prob, layout)


def _compiled_unsupported(prob: _Problem, layout: _Layout) -> str:
    """Why the compiled inner problem cannot serve this problem ('' when it can)."""
    involved = set(layout.theta_names) | set(prob.iiv.names) | {c.parameter for c in layout.effects}
    return _compiled_unsupported_for(prob, involved)


def _compiled_unsupported_for(prob: _Problem, varying) -> str:
    """Why the compiled estimation library cannot solve this problem with the parameters ``varying`` (names) free
    to change between subjects or calls ('' when it can)."""
    from .._sensitivity import dose_dependence
    from ..linear_system import linearity
    from ._compiled import available

    if not available():
        return "no C compiler (or PKPD_ENGINE=numba)"
    if prob.settings.method == "closed-form" and not linearity(prob.model).is_linear:
        return ("the closed form was asked for (SolverSettings(method='closed-form')) of a model that is not linear "
                "(the finite-difference path says why)")
    if prob.iov is not None:
        return "inter-occasion variability"
    if prob.data.records is not None:
        return "steady-state doses or resets (simulated record by record with simulate_nonmem's machinery)"
    if prob.endpoint_records is not None:
        return "clinical endpoint records (their exact likelihood is added on the finite-difference path)"
    for target, (timing, factor) in dose_dependence(prob.model, tuple(sorted(varying))).items():
        if timing or factor:
            return (f"the doses of target {target!r} depend on {', '.join(sorted(timing | factor))}, whose value "
                    "varies between subjects or is estimated")
    return ""


def _failed_subjects_message(prob: _Problem, layout: _Layout, x: np.ndarray, bad: np.ndarray, where: str) -> str:
    """A message naming the subjects whose objective cannot be evaluated at ``x``."""
    ids = [prob.data.ids[i] for i in np.flatnonzero(bad)]
    shown = ", ".join(repr(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    detail = _initial_problem(prob, layout, x)
    return (f"the objective cannot be evaluated {where} for subject{'s' if len(ids) > 1 else ''} {shown}: "
            + detail)


def _id_list(prob: _Problem, subjects) -> str:
    ids = [prob.data.ids[i] for i in sorted(subjects)]
    return ", ".join(repr(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


class _GradientRun:
    """The outer problem's view of the compiled objective: OFV and analytic gradient at a point, warm starts,
    failures counted (private)."""

    def __init__(self, engine, prob: _Problem, layout: _Layout):
        self.engine, self.prob, self.layout = engine, prob, layout
        self.eta = None
        self.n_evaluations = 0
        self.n_failures = 0
        self.failed_subjects: set = set()
        self.gradient0 = None
        # FO: the objective at x depends on x alone (no EBEs to warm-start) and comes with its expected information,
        # so the last evaluation serves again at the same point (the final OFV, the covariance step)
        self.fo = engine.method == "fo"
        self.expected_r = self.fo     # the covariance step's R: FO's expected information unless told otherwise
        self._last = None

    def _eval(self, x, gradient=True):
        x = np.asarray(x, dtype=float)
        if self.fo and self._last is not None and np.array_equal(self._last[0], x):
            ev, bad = self._last[1], self._last[2]
            if ev.gradient is not None or not gradient:
                return ev, bad
        with np.errstate(all="ignore"):
            extra = {"information": True} if self.fo and gradient else {}
            ev = self.engine.evaluate(x, self.eta, gradient=gradient, **extra)
        self.n_evaluations += 1
        bad = (ev.status != 0) | ~np.isfinite(ev.ofv)
        if gradient and ev.gradient is not None:
            bad |= ~np.all(np.isfinite(ev.gradient), axis=1)
            if ev.information is not None and not np.all(np.isfinite(ev.information)):
                bad = np.ones_like(bad)
        if self.fo:
            self._last = (x.copy(), ev, bad)
        return ev, bad

    def start(self, x):
        ev, bad = self._eval(x)
        if bad.any():
            raise FitError("fit_population: " + _failed_subjects_message(self.prob, self.layout, x, bad,
                                                                          "at the initial values"))
        self.eta = ev.eta
        self.gradient0 = ev.gradient.sum(axis=0)

    def value_and_gradient(self, x):
        ev, bad = self._eval(x)
        if bad.any():
            self.n_failures += 1
            self.failed_subjects |= set(np.flatnonzero(bad).tolist())
            return _PENALTY, np.zeros(np.size(x))
        self.eta = ev.eta
        return float(ev.ofv.sum()), ev.gradient.sum(axis=0)

    def value_gradient_information(self, x):
        """FO: the OFV, its gradient and its expected Hessian at x (None where some subject fails)."""
        ev, bad = self._eval(x)
        if bad.any():
            self.n_failures += 1
            self.failed_subjects |= set(np.flatnonzero(bad).tolist())
            return None
        return float(ev.ofv.sum()), ev.gradient.sum(axis=0), ev.information

    def final(self, x):
        ev, bad = self._eval(x, gradient=False)
        if bad.any():
            raise FitError(_failed_subjects_message(self.prob, self.layout, x, bad, "at these parameter values"))
        self.eta = ev.eta
        return ev.ofv, ev.eta

    def matrices(self, x, h: float = 1e-3):
        """R (Hessian of the OFV, central differences of the analytic gradient; for FO its expected value, in
        closed form) and S (sum of the per-subject gradients' outer products)."""
        ev, bad = self._eval(x)
        p = np.size(x)
        if bad.any():
            return np.full((p, p), np.nan), np.full((p, p), np.nan)
        gi = ev.gradient
        S = gi.T @ gi
        if self.fo and self.expected_r:
            return ev.information, S
        R = np.empty((p, p))
        centre = self.eta
        for k in range(p):
            e = np.zeros(p)
            e[k] = h
            cols = []
            for sign in (1.0, -1.0):
                self.eta = centre
                evk, badk = self._eval(x + sign * e)
                cols.append(np.full(p, np.nan) if badk.any() else evk.gradient.sum(axis=0))
            R[:, k] = (cols[0] - cols[1]) / (2 * h)
        self.eta = centre
        return 0.5 * (R + R.T), S


class _FiniteDifferenceRun:
    """The outer problem's view of the finite-difference objective (:class:`_Problem`, central differences of the
    OFV, every perturbed parameter set in one batch call): problems the compiled objective cannot serve (private)."""

    def __init__(self, prob: _Problem, layout: _Layout):
        self.prob, self.layout = prob, layout
        self.eta = None
        self.n_evaluations = 0
        self.n_failures = 0
        self.failed_subjects: set = set()
        self.gradient0 = None

    def _evaluate(self, X, *, keep=False):
        prob, layout = self.prob, self.layout
        theta, omega, errs = layout.unpack(X)
        theta = layout.subject_theta(X, theta)
        eta0 = None if self.eta is None else np.broadcast_to(self.eta, (X.shape[0],) + self.eta.shape)
        with np.errstate(all="ignore"):
            out, eta, info = prob.ofv(theta, omega, errs, eta0)
        self.n_evaluations += X.shape[0]
        if keep and np.isfinite(out[0]).all() and not np.any(out[0] >= _PENALTY / prob.n):
            self.eta = eta[0].copy()
        return out, eta, info

    @staticmethod
    def _bad(row, n):
        return ~np.isfinite(row) | (row >= _PENALTY / n)

    def _fd(self, x):
        steps = np.concatenate([np.zeros((1, x.size)), _H_OUTER * np.eye(x.size), -_H_OUTER * np.eye(x.size)])
        out, _, _ = self._evaluate(x[None, :] + steps, keep=True)   # row 0 (the centre) gives the next warm start
        tot = out.sum(axis=1)
        return out[0], (tot[1:x.size + 1] - tot[x.size + 1:]) / (2 * _H_OUTER)

    def start(self, x):
        out0, _, _ = self._evaluate(x[None, :], keep=True)
        bad = self._bad(out0[0], self.prob.n)
        if bad.any():
            raise FitError("fit_population: " + _failed_subjects_message(self.prob, self.layout, x, bad,
                                                                          "at the initial values"))
        if x.size:
            self.gradient0 = self._fd(x)[1]

    def value_and_gradient(self, x):
        centre, g = self._fd(x)
        bad = self._bad(centre, self.prob.n)
        if bad.any():
            self.n_failures += 1
            self.failed_subjects |= set(np.flatnonzero(bad).tolist())
        return float(centre.sum()), g

    def final(self, x):
        out, _, info = self._evaluate(x[None, :], keep=True)
        bad = self._bad(out[0], self.prob.n)
        if bad.any():
            raise FitError(_failed_subjects_message(self.prob, self.layout, x, bad, "at these parameter values"))
        eta = info["eta"][0] if info is not None else np.zeros((self.prob.n, self.prob.q))
        return out[0], eta

    def matrices(self, x):
        p = x.size
        h = _H_HESS
        out, _, _ = self._evaluate(x[None, :] + _hessian_stencil(p, h))
        Rm = _hessian_from_stencil(out.sum(axis=1), p, h)
        gi = np.stack([(out[1 + 2 * a] - out[2 + 2 * a]) / (2 * h) for a in range(p)], axis=1)   # (n, p)
        return Rm, gi.T @ gi


def fit_population(model, data, *, iiv, error=None, method: str = "focei", estimate=None, blq=None,
                   settings: SolverSettings | None = None, init: Mapping | None = None, maxeval: int | None = None,
                   covariance: str | None = "sandwich", covariates=(), iov=None, objective: str | None = None,
                   is_samples: int | None = None, seed=None, saem=None, priors=False, omega_prior=None,
                   r_matrix: str | None = None) -> PopulationFit:
    r"""Estimate a population model: typical values, :math:`\Omega` and residual error (mixed effects).

    Main arguments
    --------------
    model : Model or str
        E.g. ``pkpd.load_model("pk_1cmt_oral")``; initial typical values from the model file (or ``init``).
    data : NonmemDataset, DataFrame or CSV path
        NONMEM layout (``ID, TIME, DV, AMT, EVID, CMT, MDV``, covariates such as ``WT``; ``LLOQ``/``BLQ``).
        Covariates may change within a subject (next observation carried backward, as NONMEM): covariate models
        written in the model file follow them; an estimated ``CovariateEffect`` needs one value per subject.
    iiv : dict[str, float] or IIV
        Random effects and their initial variances, e.g. ``{"ka": 0.6, "CL": 0.3, "V": 0.1}`` (log-normal);
        an :class:`~pkpd.IIV` for block :math:`\Omega` or other distributions.
    error : error model or dict[str, error model]
        Residual error of the continuous outputs (initial values; parameters in ``fixed`` stay fixed). Records of
        clinical endpoint outputs (time-to-event, binary, ordinal, count; :mod:`pkpd.endpoints`) bring their exact
        likelihood from the model file, enter :math:`O_i` as :math:`-2\log L`, and need ``method="laplace"`` or
        ``"saem"`` (whose sampler and importance-sampling objective use the same exact likelihood); ``error`` may be
        left out when the data hold only such records.
    method : {"focei", "foce", "fo", "laplace", "saem"}
        The objective (see the module docstring); FOCE-I by default. ``"saem"``: stochastic approximation EM
        (:mod:`pkpd.saem`; exact likelihood, no linearisation), whose objective is -2 log L by importance sampling
        and whose covariance comes from linearisation (FOCE-I, or Laplace with censored data or clinical endpoint
        records, at the estimates).

    Other arguments
    ---------------
    estimate : sequence of str, optional
        Typical values to estimate (default: those with IIV); the other parameters stay at their values.
    blq : M3, optional
        Likelihood of censored observations: M3 (Beal 2001), the only one supported, so None and ``pkpd.M3()``
        give the same fit (anything else is refused). The data mark the censored observations (a DV below the LLOQ
        column, BLQ=1 or CENS=1); they need ``method="laplace"`` or ``"saem"``.
    settings : SolverSettings, optional
        Default ``rtol=1e-8, atol=1e-10``.
    init : dict[str, float], optional
        Initial typical values overriding the model file's.
    maxeval : int, optional
        Maximum outer iterations (for SAEM, iterations in all); ``0`` evaluates the objective at the initial
        values without estimating (NONMEM's ``MAXEVAL=0``), and skips the covariance step. A SAEM run that it stops
        before the end of its smoothing phase is reported not converged.
    covariance : {"sandwich", "R", "S"} or None
        Covariance step matrix (``None`` skips it).
    r_matrix : {"observed", "expected"} or None
        R of the covariance step: ``"observed"``, the Hessian of the objective at the estimates (central differences
        of the analytic gradient; NONMEM's ``$COV``), or ``"expected"``, the expected information in closed form
        (FO only; Monolix's and PFIM's convention, no extra evaluation). ``None`` (default): expected for FO,
        observed for the other methods. Give ``"observed"`` to reproduce NONMEM's FO standard errors.
    covariates : sequence of CovariateEffect, optional
        Covariate effects on typical values to estimate, e.g. ``[pkpd.CovariateEffect("CL", "WT", "power", 0.75,
        ref=70)]`` (``value`` is the initial coefficient; ``"power"``, ``"linear"`` and ``"categorical"``, e.g.
        ``CovariateEffect("CL", "SEX", "categorical", {1: 0.8})``), and ``"indicator"``: one shared coefficient
        for the subjects that meet a condition, ``CovariateEffect(parameter="V", kind="indicator",
        condition="APGR < 5")`` (:math:`\theta (1 + \beta)` for them, NONMEM's ``TVV*(1+THETA(3))``). The covariate
        must be declared in the model file and given by the data (one value per subject).
    iov : dict[str, float] or IOV, optional
        Inter-occasion variability and initial variances, e.g. ``{"CL": 0.04}``: a random effect
        :math:`\kappa \sim N(0, \Pi)` per occasion, added to :math:`\eta`. The data need an ``OCC`` column (an
        occasion starts at its first record's time); estimated :math:`\Pi` is diagonal and the same at every
        occasion (NONMEM's ``$OMEGA BLOCK(1) SAME``).
    objective : {None, "is"}
        ``"is"``: report -2 log L by importance sampling around the conditional modes (:mod:`pkpd.importance`)
        with its Monte-Carlo standard error (``objective_se``); always so for SAEM. With ``maxeval=0`` this
        evaluates the exact likelihood at given parameters.
    is_samples : int, optional
        Importance samples per subject. Default None: 1000 per subject, then as many more as its Monte-Carlo SE
        needs to be at most 0.1 (at most 10000 per subject; :mod:`pkpd.importance`).
    seed : int or numpy Generator, optional
        Seed of SAEM's chains and of the importance samples.
    saem : SaemSettings, optional
        Iterations of the two SAEM phases, chains, kernel steps, annealing (:class:`pkpd.saem.SaemSettings`).
    priors : bool or dict
        ``True``: maximum a posteriori with the priors of the model file on the estimated typical values
        (parameters without one keep a flat prior); a dict name -> prior adds or replaces priors. The covariance
        is then ``2 R^-1`` of the posterior (its Laplace approximation), and ``parameters`` gets a column
        ``prior_sd_ratio``: posterior SD / prior SD on the prior's scale (near 1: informed mainly by the prior).
    omega_prior : InverseWishart, optional
        Inverse-Wishart prior on :math:`\Omega` (NONMEM's NWPRI), with ``priors``.

    Returns
    -------
    PopulationFit

    Raises
    ------
    FitError
        Unknown parameter in ``iiv``/``estimate``/``init``, a non-positive-definite :math:`\Omega`, censored data
        or clinical endpoint records with FO, FOCE or FOCE-I (Laplace and SAEM handle them), bad data, SAEM
        without random effects, a prior on an unknown parameter.

    Examples
    --------
    >>> import pkpd
    >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                           error=pkpd.Additive(sd=0.3), method="focei", covariance=None)
    >>> fit.converged, 0.3 < fit.theta["ke"] < 0.6
    (True, True)

    A covariate effect to estimate (here only evaluated at its initial exponent, ``maxeval=0``):

    >>> wt = pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70.0)
    >>> from pkpd.nonmem import read_nonmem
    >>> theoph = read_nonmem("tests/data/theoph.csv", dose_unit="mg")
    >>> f = pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"CL": 0.1}, estimate=["ka", "CL", "V"],
    ...                         error=pkpd.Additive(sd=0.7), covariates=[wt], maxeval=0)
    >>> list(f.parameters["name"])
    ['ka', 'CL', 'V', 'omega2_CL', 'sd', 'WT_on_CL']
    """
    from ._blas import single_threaded_blas

    with single_threaded_blas():
        return _fit_population(model, data, iiv=iiv, error=error, method=method, estimate=estimate, blq=blq,
                               settings=settings, init=init, maxeval=maxeval, covariance=covariance,
                               covariates=covariates, iov=iov, objective=objective, is_samples=is_samples, seed=seed,
                               saem=saem, priors=priors, omega_prior=omega_prior, r_matrix=r_matrix)


def _fit_population(model, data, *, iiv, error, method, estimate, blq, settings, init, maxeval, covariance,
                    covariates, iov, objective, is_samples, seed, saem, priors, omega_prior,
                    r_matrix=None) -> PopulationFit:
    t_start = _time.perf_counter()
    if covariance not in (None, "sandwich", "R", "S"):
        raise FitError(f"covariance: must be 'sandwich', 'R', 'S' or None; got {covariance!r}")
    if r_matrix not in (None, "observed", "expected"):
        raise FitError(f"r_matrix: must be 'observed', 'expected' or None; got {r_matrix!r}")
    if r_matrix == "expected" and method != "fo":
        raise FitError(f"r_matrix='expected': the expected information is available for method='fo' only "
                       f"(got method={method!r}); use r_matrix='observed' or None")
    if objective not in (None, "is"):
        raise FitError(f"objective: must be None (the method's own) or 'is' (importance sampling); got {objective!r}")
    inner = method
    if method == "saem":
        inner = _saem_inner_method(model, data, iiv, error, blq)
    elif saem is not None:
        raise FitError("saem: SaemSettings apply to method='saem' only")
    model, iiv, error, layout, prob = _setup(model, data, iiv, error, inner, estimate, blq, settings, init,
                                             covariates, iov)
    prior_terms = _population_priors(layout, iiv, priors, omega_prior, method)
    if prior_terms is not None and covariance is not None:
        covariance = "R"
    x = layout.x0.copy()
    lo = np.where(layout.theta_log, np.log(np.maximum(layout.theta_lower, 1e-300)), layout.theta_lower)
    hi = np.where(layout.theta_log, np.log(layout.theta_upper), layout.theta_upper)
    bounds = [(a if np.isfinite(a) else None, b if np.isfinite(b) else None) for a, b in zip(lo, hi)]
    bounds += [(-12.0, 5.0) if a == b else (None, None) for a, b in layout.chol_index]
    bounds += [(-20.0, 10.0)] * len(layout.error_slots)
    bounds += [(-12.0, 5.0)] * len(layout.iov_names)
    bounds += [(1e-6, None) if c.kind == "factor" else (-1.0 + 1e-6, None) if c.kind == "indicator" else (None, None)
               for c in layout.effects]
    engine = _objective_engine(prob, layout)
    run = (_GradientRun(engine, prob, layout) if engine is not None else _FiniteDifferenceRun(prob, layout))
    if prior_terms is not None:
        run = _PriorRun(run, prior_terms)
    run.start(x)                                                   # raises FitError naming the subject
    converged, message = True, "objective evaluated at the initial values (maxeval=0)"
    saem_run = None
    rng = None                                     # the random numbers of SAEM and importance sampling (one stream)
    if method == "saem" and maxeval != 0:
        from ..saem import SaemSettings, run_saem

        saem = SaemSettings() if saem is None else saem
        if not isinstance(saem, SaemSettings):
            raise FitError(f"saem: expected a pkpd.saem.SaemSettings; got {type(saem).__name__}")
        rng = np.random.default_rng(seed)
        saem_run = run_saem(prob, layout, x, saem, rng, maxeval)
        x = saem_run.x
        n_iter = saem_run.trace.shape[0] - 1
        rule = ""
        if saem.exploratory is None:
            cut_exploring = not saem_run.settled and saem_run.exploratory < saem.max_exploratory
            rule = (", stopped by the rule" if saem_run.settled
                    else f", ended by maxeval={maxeval} before the stopping rule ended it" if cut_exploring
                    else ", the most the stopping rule allows: a parameter still drifted")
        else:
            cut_exploring = saem_run.exploratory < saem.exploratory
        message = (f"SAEM: {n_iter} iterations ({saem_run.exploratory} exploratory{rule}, "
                   f"{n_iter - saem_run.exploratory} smoothing), {saem_run.n_chains} chain(s) per subject")
        if cut_exploring or n_iter - saem_run.exploratory < saem.smoothing:
            # SAEM's estimates are those at the end of its smoothing phase; a truncated run has not reached them
            converged = False
            message += (f"; maxeval={maxeval} stopped it before the end of its {saem.smoothing} smoothing "
                        "iterations: not converged")
    elif maxeval != 0 and layout.n and isinstance(run, _GradientRun) and run.fo:
        x, converged, message = _fo_scoring(run, layout, x, bounds, maxeval)
    elif maxeval != 0 and layout.n:
        x, converged, message = _lbfgsb(run, layout, x, bounds, maxeval, run.gradient0)
    ofv_i, eta = run.final(x)
    ofv = float(ofv_i.sum())
    if prob.endpoint_records is not None and maxeval != 0:
        note = prob.endpoint_records.empty_category_note(prob.model)
        if note:
            converged, message = False, f"{message}; {note}"
    objective_method, objective_se, log_prior = inner, float("nan"), 0.0
    if prior_terms is not None:
        log_prior = float(prior_terms(x[None, :])[0])
    if method == "saem" or objective == "is":
        from ..importance import importance_sampling
        from ._batch_predict import compiled_predictor

        theta_, omega_, errs_ = layout.unpack(x)
        with np.errstate(all="ignore"):
            imp = importance_sampling(prob, layout.subject_theta(x[None, :], theta_), omega_[0], errs_[0], eta,
                                      is_samples, np.random.default_rng(seed) if rng is None else rng,
                                      compiled_predictor(prob, layout))
        ofv, objective_se, objective_method = imp.objective, imp.se, "is"
        # a small effective sample size (Kish: (sum w)^2 / sum w^2) flags a subject whose proposal missed its
        # posterior, where the Monte-Carlo SE itself is unreliable
        low = int(np.argmin(imp.ess))
        message += (f"; -2 log L by importance sampling ({imp.n_samples} draws per subject; effective sample size "
                    f"{imp.ess[low]:.0f} at the least, subject {prob.data.ids[low]!r})")
    if run.n_failures:
        message += (f"; {run.n_failures} of {run.n_evaluations} objective evaluations during the optimisation could "
                    f"not be computed (subjects {_id_list(prob, run.failed_subjects)}: the model could not be solved "
                    "or the objective was not finite there) and were rejected by the line search")

    # covariance step
    est_nat = layout.natural(x)
    cov_nat, cov_msg = None, "not requested"
    if maxeval == 0:
        cov_msg = "skipped (maxeval=0)"
    elif covariance is not None and layout.n:
        expected = getattr(run, "fo", False) and r_matrix != "observed"
        if hasattr(run, "expected_r"):
            run.expected_r = expected
        if r_matrix == "expected" and not expected:
            raise FitError("r_matrix='expected': this FO fit runs on the finite-difference engine, which has no "
                           "expected information; use r_matrix='observed' or None")
        cov_nat, cov_msg = _covariance_step(layout, x, run, covariance, _pretty_names(layout, iiv))
        if covariance != "S" and getattr(run, "fo", False):
            cov_msg += ("; R: the expected information of the FO objective (closed form)" if expected
                        else "; R: the observed Hessian (central differences of the analytic gradient)")
        if method == "saem":
            cov_msg = f"by linearisation ({inner.upper()} at the SAEM estimates): {cov_msg}"
        if prior_terms is not None:
            cov_msg = f"of the posterior (Laplace approximation, MAP): {cov_msg}"
    se = np.sqrt(np.diag(cov_nat)) if cov_nat is not None else np.full(est_nat.size, np.nan)
    theta, omega, errs = layout.unpack(x)
    n_continuous = int(prob.mask.sum())
    n_obs = n_continuous + (prob.endpoint_records.size if prob.endpoint_records is not None else 0)
    k = layout.n
    # only a quantified record has a density (with its log 2π); a censored (M3) one is a probability (as in fit), and
    # so is an endpoint record (not on the continuous rows of the mask)
    minus2ll = ofv + int((prob.mask & ~prob.cens).sum()) * _LOG_2PI
    import pandas as pd

    with np.errstate(all="ignore"):
        rse = 100 * se / np.abs(est_nat)
    params = pd.DataFrame({"name": _pretty_names(layout, iiv), "estimate": est_nat, "se": se, "rse_percent": rse})
    if prior_terms is not None:
        params["prior_sd_ratio"] = prior_terms.sd_ratio(est_nat, se)
    q = prob.q_iiv
    omega_full = omega[0]
    omega_hat = omega_full[:q, :q]
    sd_eta = np.sqrt(np.diag(omega_hat))
    shrink = {n: float(1 - np.std(eta[:, j], ddof=1) / sd_eta[j]) if prob.n > 1 and method != "fo" else float("nan")
              for j, n in enumerate(iiv.names)}
    with np.errstate(all="ignore"):
        table = _diagnostics(prob, layout, x, eta, getattr(run, "engine", None))
    iiv_hat = IIV.from_matrix(iiv.names, omega_hat, distribution=dict(zip(iiv.names, iiv.distributions)))
    iov_hat, kappa = None, None
    if prob.iov is not None:
        p_iov = prob.iov.n_eta
        iov_hat = IOV({n: float(omega_full[q + j, q + j]) for j, n in enumerate(prob.iov.names)},
                      distribution=dict(zip(prob.iov.names, prob.iov.distributions)))
        kappa = eta[:, q:].reshape(prob.n, prob.n_occ, p_iov).copy()
        kappa[prob.occ_start == np.inf] = np.nan                         # occasions a subject does not have
        eta = eta[:, :q]
    trace = None
    if saem_run is not None:
        trace = pd.DataFrame(saem_run.trace, columns=_pretty_names(layout, iiv))
        trace.insert(0, "iteration", np.arange(saem_run.trace.shape[0]))
    return PopulationFit(
        objective_method=objective_method, objective_se=objective_se, trace=trace, prior_objective=log_prior,
        method=method, objective=ofv, minus2ll=minus2ll, aic=minus2ll + 2 * k, bic=minus2ll + k * math.log(n_obs),
        theta=dict(zip(model.parameter_names, theta[0].tolist())), omega=omega_hat, iiv=iiv_hat,
        error=dict(zip(layout.outputs, errs[0])), parameters=params, covariance=cov_nat,
        covariance_message=cov_msg, eta=eta, shrinkage=shrink, table=table, n_subjects=prob.n, n_obs=n_obs,
        n_failures=run.n_failures,
        converged=converged, message=message, n_evaluations=run.n_evaluations,
        seconds=_time.perf_counter() - t_start, model_name=model.name,
        output_units={o.name: o.unit for o in model.outputs if o.name in layout.outputs}, time_unit=model.time_unit,
        covariate_effects=_estimated_effects(layout.user_effects, layout.effects,
                                             layout.coefficients(x[None, :])[0]),
        iov=iov_hat, kappa=kappa, units=_parameter_units(model, layout, iiv),
        engine="compiled" if engine is not None else f"finite differences: {_compiled_unsupported(prob, layout)}")


def _lbfgsb(run, layout: _Layout, x: np.ndarray, bounds, maxeval, gradient0: np.ndarray):
    """The outer problem by L-BFGS-B from x: (x, converged, message)."""
    from scipy.optimize import minimize

    # L-BFGS-B's first step moves x by the whole gradient (its first Hessian guess is the identity): far from
    # the optimum (gradients of 10-100 on the log scale) that jumps to the bounds, where the OFV is ~1e50, and
    # the line search can then stop at the initial values reporting convergence. Scaling the objective so that
    # the initial gradient is at most 1 keeps the first step within a factor e of the initial values.
    # Covariate coefficients are on the natural scale, where a step of 1 is no "factor e": a factor 0.98 -> 0,
    # or a linear coefficient times an age span of 30, gives an unusable model and the same early stop (issue
    # 18: every candidate of a stepwise covariate search warm-started at the current optimum stopped there). Each
    # coefficient's gradient is weighted by the inverse of the step that changes its typical value by 10 %.
    g_weighted = np.abs(gradient0).copy()
    n_coef = len(layout.effects)
    if n_coef:
        g_weighted[x.size - n_coef:] /= _coefficient_steps(layout)
    scale = 1.0 / max(1.0, float(np.max(g_weighted)))

    def fun(x):
        f, g = run.value_and_gradient(x)
        return f * scale, g * scale

    res = minimize(fun, x, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxeval or 500, "ftol": 1e-10, "gtol": 1e-4 * scale})
    return res.x, bool(res.success), str(res.message)


def _fo_scoring(run: _GradientRun, layout: _Layout, x: np.ndarray, bounds, maxeval):
    """The FO outer problem by Fisher scoring (:mod:`pkpd.estimation.fisher_scoring`), continued by L-BFGS-B from
    where it stops if it stalls: (x, converged, message)."""
    from .fisher_scoring import fisher_scoring

    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    upper = np.array([np.inf if hi is None else hi for _, hi in bounds])
    nt = len(layout.theta_names)
    log_variance = np.zeros(x.size, dtype=bool)        # log of a diagonal element of Omega's Cholesky factor
    log_variance[[nt + j for j, (a, b) in enumerate(layout.chol_index) if a == b]] = True
    res = fisher_scoring(run.value_gradient_information, x, lower, upper, log_variance=log_variance,
                         max_iter=maxeval or 100)
    if res.converged:
        return res.x, True, res.message
    left = None if maxeval is None else max(1, maxeval - res.n_iter)
    x, converged, message = _lbfgsb(run, layout, res.x, bounds, left, res.gradient)
    return x, converged, f"{res.message}; continued by L-BFGS-B: {message}"


class _PriorRun:
    """A run (:class:`_GradientRun` or :class:`_FiniteDifferenceRun`) whose objective includes -2 log prior of the
    typical values and Omega (MAP fits; private). The prior is cheap numpy: its gradient and Hessian are central
    differences on the internal scale."""

    def __init__(self, run, prior_terms):
        self.run, self.prior = run, prior_terms

    def __getattr__(self, name):
        return getattr(self.run, name)

    @property
    def expected_r(self):
        """The wrapped run's choice of R (FO's expected information or the observed Hessian): set on the run itself,
        whose ``matrices`` reads it (AttributeError, so no such attribute, for the finite-difference run)."""
        return self.run.expected_r

    @expected_r.setter
    def expected_r(self, value):
        self.run.expected_r = value

    def _prior_gradient(self, x):
        p = x.size
        X = x[None, :] + np.concatenate([_H_OUTER * np.eye(p), -_H_OUTER * np.eye(p)])
        v = self.prior(X)
        return (v[:p] - v[p:]) / (2 * _H_OUTER)

    def start(self, x):
        self.run.start(x)
        if self.run.gradient0 is not None:
            self.gradient0 = self.run.gradient0 + self._prior_gradient(x)

    def value_and_gradient(self, x):
        f, g = self.run.value_and_gradient(x)
        if f >= _PENALTY:
            return f, g
        return f + float(self.prior(x[None, :])[0]), g + self._prior_gradient(x)

    def final(self, x):
        return self.run.final(x)

    def matrices(self, x):
        Rm, Sm = self.run.matrices(x)
        p = x.size
        Rp = _hessian_from_stencil(self.prior(x[None, :] + _hessian_stencil(p, _H_HESS)), p, _H_HESS)
        return Rm + Rp, Sm


def _saem_inner_method(model, data, iiv, error, blq) -> str:
    """The linearised method SAEM uses for the conditional modes and the covariance: Laplace with censored data
    (M3) or records of clinical endpoints (no linearisation of a categorical or event likelihood), FOCE-I otherwise;
    and SAEM needs random effects."""
    from ..load import load_model
    from .data import _observations, _read

    if isinstance(model, str):
        model = load_model(model)
    if not isinstance(model, Model):
        raise FitError(f"model: expected a pkpd Model or a model name; got {type(model).__name__}")
    if iiv is None or (isinstance(iiv, Mapping | IIV) and len(iiv.names if isinstance(iiv, IIV) else iiv) == 0):
        raise FitError("method='saem' needs random effects: SAEM simulates the individual parameters; give iiv= "
                       "(e.g. iiv={'CL': 0.1}), or use pkpd.fit for a model without IIV")
    errs = _error_dict(model, error)
    d = _observations(model, _read(model, data), tuple(errs), blq)
    return "laplace" if d.censored.any() or d.endpoint_records is not None else "focei"


def _population_priors(layout: _Layout, iiv: IIV, priors, omega_prior, method: str):
    """The -2 log prior of the estimated typical values and Omega, or None without priors (MAP fits)."""
    if priors is False or priors is None:
        if omega_prior is not None:
            raise FitError("omega_prior: give priors=True (or a dict of priors) to fit with priors")
        return None
    if method == "saem":
        raise FitError("priors: maximum a posteriori estimation is done with method='focei' or 'laplace'; SAEM "
                       "estimates by maximum likelihood (use pkpd.sample for the full posterior)")
    from ..priors import PopulationPriorTerms

    return PopulationPriorTerms.build(layout, iiv, priors, omega_prior)


def _coefficient_steps(layout: _Layout) -> np.ndarray:
    """Per covariate coefficient, the change that moves a subject's typical value by about 10 %."""
    steps = []
    for c, col in zip(layout.effects, layout.effect_columns):
        if c.kind == "power":
            spread = float(np.max(np.abs(np.log(col / c.ref))))
        elif c.kind == "linear":
            spread = float(np.max(np.abs(col - c.ref)))
        else:                                   # a category's factor multiplies the typical value directly
            spread = 1.0
        steps.append(0.1 / spread if spread > 0 else 0.1)
    return np.array(steps)


def _initial_problem(prob: _Problem, layout: _Layout, x: np.ndarray) -> str:
    """Why the OFV at x is penalised: the first observation whose prediction or residual SD is unusable."""
    theta, _, errs = layout.unpack(x)
    theta = layout.subject_theta(x[None, :], theta)
    with np.errstate(all="ignore"):
        f, _ = prob.predict_grad(theta, np.zeros((1, prob.n, prob.q)), grad=False)
        _, m, _, s, _, _ = prob.residual(errs, f)
    f, m, s = f[0], m[0], s[0]
    d = prob.data
    bad_solve = prob.mask & ~np.isfinite(f)
    bad_sd = prob.mask & ~bad_solve & ~(np.isfinite(s) & (s > 0) & np.isfinite(m))
    for bad, kind in ((bad_solve, "solve"), (bad_sd, "sd")):
        if bad.any():
            i, j = (int(v[0]) for v in np.nonzero(bad))
            k = prob.obs[i, j]
            out = layout.outputs[prob.which[i, j]]
            where = f"subject {d.ids[i]!r}, t = {d.time[k]:g} {layout.model.time_unit} (row {d.row[k]})"
            if kind == "solve":
                return (f"the model cannot be solved for {where} (typical values); check the initial values and "
                        "the solver settings")
            em = type(errs[0][prob.which[i, j]]).__name__
            if errs[0][prob.which[i, j]].log_scale and not f[i, j] > 0:
                return (f"output {out!r} at {where} is predicted {f[i, j]:g}, and its {em} error needs positive "
                        "predictions (it compares log y with log f); use pkpd.Combined or pkpd.Additive, or censor or "
                        "remove that observation (e.g. a pre-dose sample at t = 0)")
            return (f"output {out!r} at {where} is predicted {f[i, j]:g}, so its {em} error has standard deviation "
                    f"{s[i, j]:g}; use pkpd.Combined (an additive part keeps it positive), or remove that "
                    "observation (e.g. a pre-dose sample at t = 0)")
    if prob.endpoint_records is not None:
        from .likelihood import _endpoint_problem

        F = f[None][:, d.subject, prob.flat_j][0]
        c = prob.endpoint_records.minus2ll(F)
        if not np.all(np.isfinite(c)):
            return _endpoint_problem(d, prob.endpoint_records, F, int(np.flatnonzero(~np.isfinite(c))[0]))
    return "check the initial values, Omega and the error model"


def _diagnostics(prob: _Problem, layout: _Layout, x: np.ndarray, eta: np.ndarray, engine=None):
    """Per-observation table: PRED, IPRED, RES, IWRES, CWRES (FOCE-type, Hooker 2007) and the EBEs.

    ``engine``: the compiled objective (:class:`pkpd.estimation._objective.PopulationObjective`), whose
    predictions carry df/deta from the sensitivity equations; without it (or where it fails), central differences
    of batch solves."""
    import pandas as pd

    theta, omega, errs = layout.unpack(x)
    q, n = prob.q, prob.n
    got = engine.predictions_at(x, eta) if engine is not None and engine.method != "laplace" else None
    if got is not None:
        f, G, f0 = got
    else:
        theta = layout.subject_theta(x[None, :], theta)
        f, G = prob.predict_grad(theta, eta[None])
        # FO has no EBEs: the population predictions are those at eta = 0 just solved
        f0 = f if not np.any(eta) else prob.predict_grad(theta, np.zeros((1, n, q)), grad=False)[0]
    u, m, dm, s, _, _ = prob.residual(errs, f)
    Gm = np.where(prob.mask[..., None], G * dm[..., None], 0.0)[0]
    R = np.where(prob.mask, s ** 2, 1.0)[0]
    if prob.method == "foce":
        _, _, _, s0, _, _ = prob.residual(errs, f0)
        R = np.where(prob.mask, s0 ** 2, 1.0)[0]
    C = np.einsum("njq,qr,nlr->njl", Gm, omega[0], Gm) + R[..., None] * np.eye(prob.J)
    r = np.where(prob.mask, u[0] - m[0] + np.einsum("njq,nq->nj", Gm, eta), 0.0)
    # the rows and columns of absent observations are those of the identity (G = 0 and R = 1 there, r = 0), so
    # every subject's factor comes in one batch; subject by subject where one is not positive definite
    cw = np.full((n, prob.J), np.nan)
    try:
        cw = np.where(prob.mask, np.linalg.solve(np.linalg.cholesky(C), r[..., None])[..., 0], np.nan)
    except np.linalg.LinAlgError:
        for i in range(n):
            k = prob.mask[i]
            try:
                L = np.linalg.cholesky(C[i][np.ix_(k, k)])
                cw[i, k] = np.linalg.solve(L, r[i, k])
            except np.linalg.LinAlgError:
                pass
    d = prob.data
    with np.errstate(all="ignore"):
        iwres = (u[0] - m[0]) / s[0]
    sel = prob.mask
    ids = np.array(d.ids, dtype=object)
    per_subject = sel.sum(axis=1)
    columns = {
        "ID": np.repeat(ids, per_subject),
        "TIME": d.time[prob.obs[sel]] / 1.0,
        "DV": prob.y[sel], "PRED": f0[0][sel], "IPRED": f[0][sel], "RES": (prob.y - f0[0])[sel],
        "IWRES": iwres[sel], "CWRES": cw[sel], "CENS": prob.cens[sel].astype(int),
        "OUTPUT": np.asarray(layout.outputs, dtype=object)[prob.which[sel]],
    }
    for j, name in enumerate(prob.iiv.names):
        columns[f"ETA_{name}"] = np.repeat(eta[:, j], per_subject)
    return pd.DataFrame(columns)


# the public functions report their documented home (pkpd.nlme.vpc, pkpd.fitting.fit); code and doctests stay here
fit_population.__module__ = population_objective.__module__ = "pkpd.nlme"
