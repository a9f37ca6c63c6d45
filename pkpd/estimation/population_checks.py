"""Checks of a population fit by simulation: visual predictive checks (VPC) and normalised prediction distribution
errors (NPDE, with the imputation of censored observations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FitError, did_you_mean
from ..settings import SolverSettings
from .finite_difference import _Problem
from .population_fit import PopulationFit, _setup
from .population_model import _all_random_effects

__all__ = ["VPC", "npde", "vpc"]


# ====================================================================================================== VPC
@dataclass(frozen=True, eq=False)
class VPC:
    """Visual predictive check data (result of :func:`vpc`; drawn by :func:`pkpd.plots.plot_vpc`).

    Attributes
    ----------
    bins : ndarray, shape (n_bins + 1,)
        Time-bin edges [model time unit]; ``centres`` (n_bins,) the median observation time in each bin.
    percentiles : tuple of float
        Percentiles of the observations per bin (default 5, 50, 95) [%].
    observed : ndarray, shape (n_percentiles, n_bins)
        Observed percentiles (censored values count as the LLOQ) [output unit].
    simulated : ndarray, shape (n_percentiles, 3, n_bins)
        For each observed percentile, the (lower, median, upper) of its 90 % prediction interval across replicates.
    blq_observed : ndarray (n_bins,) and blq_simulated : ndarray (3, n_bins)
        Fraction below the LLOQ, observed and simulated (lower, median, upper) [1].
    unit, time_unit, output : str
    prediction_corrected : bool
        Observed and simulated values are prediction-corrected (pcVPC, Bergstrand 2011).
    stratum : object
        The value of the stratification column (None when not stratified, and for the stratum of observations
        whose value is missing).
    n_outside : int
        Observations outside user-given bin edges (left out).
    """

    bins: np.ndarray
    centres: np.ndarray
    percentiles: tuple
    observed: np.ndarray
    simulated: np.ndarray
    blq_observed: np.ndarray
    blq_simulated: np.ndarray
    output: str
    unit: str
    time_unit: str
    prediction_corrected: bool = False
    stratum: object = None
    n_outside: int = 0

    def plot(self, **kwargs):
        """Draw the VPC; see :func:`pkpd.plots.plot_vpc`."""
        from ..plots import plot_vpc

        fig = plot_vpc(self, **kwargs)
        if self.prediction_corrected:
            ax = fig.axes[0]
            ax.set_ylabel(f"prediction-corrected {ax.get_ylabel()}")
            ax.set_title(f"pcVPC of {self.output}")
        return fig


def vpc(fit: PopulationFit, model, data, *, n_replicates: int = 200, n_bins: int = 8, seed: int | None = None,
        percentiles=(5, 50, 95), blq=None, settings: SolverSettings | None = None, client=None,
        progress: bool | None = None, output: str | None = None, bins="quantile", prediction_corrected: bool = False,
        stratify: str | None = None):
    """Simulate ``n_replicates`` copies of the study design with the fitted model and bin the percentiles.

    Random effects are drawn from the estimated Ω and residual errors from the estimated error model, replicate
    ``r`` from ``numpy.random.SeedSequence(seed).spawn(n_replicates)[r]``; observations of the replicates below
    the data's LLOQ count as BLQ. Bins hold about equal numbers of observations (quantiles of the observation
    times). With ``client`` (a Dask client, cluster or scheduler address; ``pkpd[distributed]``) the replicates
    are simulated on the cluster in groups, with a result identical to the local run; ``progress`` shows a bar
    over replicates there. A fit of several outputs (e.g. PGE2 and IL-10) is checked one ``output`` at a time.

    Options (:mod:`pkpd.predictive_checks`): ``bins="quantile"`` (``n_bins`` bins of about equal counts) or a list
    of bin edges; ``prediction_corrected=True`` for a prediction-corrected VPC (Bergstrand 2011: every value scaled
    by the median population prediction of its bin over its own); ``stratify="COLUMN"`` (a covariate, a dose
    group: any column of the data, at most 12 distinct values) returns a
    :class:`~pkpd.predictive_checks.StratifiedVPC`, one VPC per value, each binned on its own; observations whose
    value is missing (an empty cell) make one more stratum, keyed ``None``, so that none is left out.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import vpc
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> v = vpc(f, "wang2007", "tests/data/wang2007/wang2007.csv", n_replicates=50, n_bins=2, seed=1)
    >>> v.simulated.shape
    (3, 3, 2)
    """
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, int | np.integer) or n_replicates < 1:
        raise FitError(f"vpc: n_replicates must be a positive integer; got {n_replicates!r}")
    model, iiv, error, layout, prob = _setup(model, data, fit.iiv, fit.error, "laplace", None, blq, settings,
                                             {k: v for k, v in fit.theta.items()}, fit.covariate_effects, fit.iov)
    if output is None:
        if len(error) != 1:
            raise FitError(f"vpc: the fit has {len(error)} observed outputs ({', '.join(error)}); choose one with "
                           f"output=, e.g. output={next(iter(error))!r}")
        output = next(iter(error))
    if output not in layout.outputs:
        raise FitError(f"vpc: output {output!r} was not fitted; the fit's outputs are {list(layout.outputs)}")
    from .._parallel import chunk_bounds, map_tasks, spawn_seeds

    seeds = spawn_seeds(seed, n_replicates)
    theta = np.array([fit.theta[p] for p in model.parameter_names])[None, :]
    theta = layout.subject_theta(layout.x0[None, :], theta)
    job = (prob, theta, _omega_for(fit, prob), [fit.error[o] for o in layout.outputs])
    if client is None:
        y_sim = _vpc_replicates(job, seeds)                               # (R, n_obs)
    else:
        groups = [seeds[a:b] for a, b in chunk_bounds(n_replicates, max(1, -(-n_replicates // 64)))]
        y_sim = np.concatenate(map_tasks(_vpc_replicates, groups, shared=job, client=client, progress=progress,
                                         description=f"{model.name}: vpc", unit="replicate",
                                         weights=[len(g) for g in groups]))
    from ..predictive_checks import StratifiedVPC, in_stratum, strata_of, vpc_summary

    mask = prob.mask & (prob.which == layout.outputs.index(output))
    y_sim = y_sim[:, mask[prob.mask]]
    t_obs = prob.data.time[prob.obs][mask]
    lloq_all = prob.data.limit[prob.obs][mask]
    pred = None
    if prediction_corrected:
        with np.errstate(all="ignore"):
            f0, _ = prob.predict_grad(theta, np.zeros((1, prob.n, prob.q)), grad=False)
        pred = f0[0][mask]
    unit = next(o.unit for o in model.outputs if o.name == output)
    common = dict(percentiles=tuple(percentiles), output=output, unit=unit, time_unit=model.time_unit,
                  prediction_corrected=bool(prediction_corrected))

    def one(keep, stratum=None):
        parts = vpc_summary(t_obs[keep], prob.y[mask][keep], y_sim[:, keep], lloq_all[keep], prob.cens[mask][keep],
                            percentiles=percentiles, bins=bins, n_bins=n_bins,
                            pred=None if pred is None else pred[keep])
        return VPC(**parts, **common, stratum=stratum)

    if stratify is None:
        return one(np.ones(t_obs.size, dtype=bool))
    from .data import _read

    table = _read(model, data).data
    if stratify not in table.columns:
        raise FitError(f"vpc: stratify={stratify!r} is not a column of the data."
                       + did_you_mean(str(stratify), [str(c) for c in table.columns]))
    by_row = dict(zip(table["ROW"].to_numpy(), table[stratify].to_numpy()))
    values = np.array([by_row[r] for r in prob.data.row[prob.obs][mask]], dtype=object)
    strata = {}
    for level in strata_of(values, stratify):
        strata[level] = one(in_stratum(values, level), level)
    return StratifiedVPC(by=stratify, strata=strata)


def _impute_censored(y, cens, limit, mean, L, sim_dec, rng, lo) -> np.ndarray:
    r"""Decorrelated observations of one subject with its BLQ values imputed (Nguyen et al. 2012).

    The Cholesky decorrelation is sequential in time: :math:`y^*_j = (y_j - E_j - \sum_{k<j} L_{jk} y^*_k)/L_{jj}`.
    For a censored :math:`y_j < \mathrm{LLOQ}` this bounds :math:`y^*_j` by :math:`c_j` (the same formula at the
    LLOQ); its pd is drawn uniformly in :math:`(0, \hat P(y^{sim*}_j < c_j))` and :math:`y^*_j` set to that quantile
    of the decorrelated simulations, so the imputation is conditional on the subject's earlier observations.
    """
    out = np.empty(y.size)
    for j in range(y.size):
        base = mean[j] + L[j, :j] @ out[:j]
        if cens[j]:
            c = (limit[j] - base) / L[j, j]
            p_loq = float(np.mean(sim_dec[:, j] < c))
            out[j] = np.quantile(sim_dec[:, j], rng.uniform(0.0, max(p_loq, lo)))
        else:
            out[j] = (y[j] - base) / L[j, j]
    return out


def _omega_for(fit: PopulationFit, prob: _Problem) -> np.ndarray:
    """Covariance of all random effects of the fit, with as many occasions as these data have."""
    if fit.iov is None:
        return fit.omega
    return _all_random_effects(fit.omega[None], np.diag(fit.iov.omega)[None], prob.n_occ)[0]


def _vpc_replicates(job, seeds) -> np.ndarray:
    """Simulated observations (R, n_obs) of the replicates with these seeds (a pure task)."""
    prob, theta, omega, ems = job
    rngs = [np.random.default_rng(s) for s in seeds]
    eta = np.stack([r.multivariate_normal(np.zeros(omega.shape[0]), omega, size=prob.n) for r in rngs])
    P = prob.params(theta, eta[None])[0]                                 # (R, n, n_params)
    with np.errstate(all="ignore"):
        F = prob.predict(P)                                              # (R, n, J)
    F = np.where(np.isfinite(F), F, 0.0)
    Y = np.empty_like(F)
    for r, rng in enumerate(rngs):
        for o, em in enumerate(ems):
            # one error model per output: each observation gets the error of its own output
            Y[r] = em.sample(F[r], rng) if o == 0 else np.where(prob.which == o, em.sample(F[r], rng), Y[r])
    return Y[:, prob.mask]


# ====================================================================================================== NPDE
def npde(fit: PopulationFit, model, data, *, n_sim: int = 1000, seed: int | None = None, blq=None,
         settings: SolverSettings | None = None):
    r"""Normalised prediction distribution errors (NPDE) of every observation (Brendel 2006; Comets 2008).

    ``n_sim`` replicates of each subject's design (doses, sampling times, covariates) are simulated from the
    fitted population model, with random effects drawn from the estimated :math:`\Omega` and residual errors
    from the estimated error models (``numpy.random.SeedSequence(seed)``). For subject *i* with observations
    :math:`y_i` and simulations :math:`y^{sim}_{ik}` (mean :math:`E_i`, empirical covariance :math:`V_i = L_i
    L_i^\top`), both are decorrelated with the Cholesky factor, :math:`y^*_i = L_i^{-1}(y_i - E_i)` and
    :math:`y^{sim*}_{ik} = L_i^{-1}(y^{sim}_{ik} - E_i)`; the prediction discrepancy
    :math:`\mathrm{pde}_{ij}` is the fraction of the :math:`y^{sim*}_{ikj}` below :math:`y^*_{ij}`, clipped to
    :math:`[1/(2K), 1 - 1/(2K)]` (:math:`K` = ``n_sim``), and :math:`\mathrm{npde}_{ij} =
    \Phi^{-1}(\mathrm{pde}_{ij})`. Under the model the NPDE are independent N(0, 1).

    Observations below the limit of quantification are imputed (Nguyen, Comets & Mentré 2012): the pd of a
    censored observation is drawn uniformly in :math:`(0, p_{LOQ})`, :math:`p_{LOQ}` being the fraction of its
    (decorrelated) simulations below the (decorrelated) LLOQ given the subject's earlier observations, and the
    observation takes that quantile. Their NPDE are then N(0, 1) under the model like the others, so BLQ data
    neither vanish from the diagnostic nor distort it (a model that predicts too few BLQ values shows it).

    Main arguments
    --------------
    fit : PopulationFit
        From :func:`fit_population`.
    model, data
        The model and the data the fit used (as :func:`vpc`).
    n_sim : int
        Replicates :math:`K` per subject (at least twice the largest number of observations of a subject, so that
        the simulated covariance matrices are nonsingular; 1000 is the usual choice).
    seed : int, optional
        Seed of the random draws (the same seed gives the same NPDE).

    Other arguments
    ---------------
    blq : M3, optional
        As in the fit: M3 or None, the same NPDE either way (anything else is refused). The data mark the censored
        observations (a DV below the LLOQ column, BLQ=1 or CENS=1), and those are imputed with or without it.
    settings : SolverSettings, optional
        Solver settings of the simulations.

    Returns
    -------
    pandas.DataFrame
        ``fit.table`` with two more columns, ``PDE`` and ``NPDE`` [1]; ``dataclasses.replace(fit, table=...)``
        gives a fit that carries them.

    Raises
    ------
    FitError
        ``n_sim`` too small, data that do not match the fit, or simulations that cannot be solved.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import npde
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> t = npde(f, "wang2007", "tests/data/wang2007/wang2007.csv", n_sim=200, seed=1)
    >>> list(t.columns[-2:]), len(t), bool(t["NPDE"].abs().max() < 3.0)
    (['PDE', 'NPDE'], 20, True)
    """
    from scipy.linalg import solve_triangular
    from scipy.special import ndtri

    n_sim = int(n_sim)
    model, iiv, error, layout, prob = _setup(model, data, fit.iiv, fit.error, "laplace", None, blq, settings,
                                             dict(fit.theta), fit.covariate_effects, fit.iov)
    n_obs = int(prob.mask.sum())
    if prob.n != fit.n_subjects or n_obs != fit.n_obs or len(fit.table) != n_obs:
        raise FitError(f"npde: the data ({prob.n} subjects, {n_obs} observations) do not match the fit "
                       f"({fit.n_subjects} subjects, {fit.n_obs} observations); give the data the fit used")
    counts = prob.mask.sum(axis=1)
    if n_sim < max(20, 2 * int(counts.max())):
        raise FitError(f"npde: n_sim={n_sim} is too small; give at least {max(20, 2 * int(counts.max()))} "
                       f"(twice the largest number of observations of a subject) - 1000 is usual")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    theta = np.array([fit.theta[p] for p in model.parameter_names])[None, :]
    theta = layout.subject_theta(layout.x0[None, :], theta)                # covariate effects: (1, n, n_params)
    chunk = max(1, 20000 // prob.n)                 # replicates per batch call (bounds the memory of one call)
    sims = []
    for start in range(0, n_sim, chunk):
        k = min(chunk, n_sim - start)
        omega_all = _omega_for(fit, prob)
        eta = rng.multivariate_normal(np.zeros(omega_all.shape[0]), omega_all, size=(k, prob.n), method="cholesky")
        with np.errstate(all="ignore"):
            F = prob.predict(prob.params(theta, eta[None])[0])            # (k, n, J)
        if not np.all(np.isfinite(F[:, prob.mask])):
            raise FitError("npde: some simulated subjects could not be solved at the fitted parameters (the "
                           "random effects drawn from Omega reach parameter values the model cannot solve); "
                           "check the fit, or loosen the solver settings")
        Y = np.zeros_like(F)
        for o, name in enumerate(layout.outputs):
            sel = prob.mask & (prob.which == o)
            Y[:, sel] = fit.error[name].sample(F[:, sel], rng)
        sims.append(Y)
    Y = np.concatenate(sims)                                              # (K, n, J)
    pde = np.full((prob.n, prob.J), np.nan)
    lo, hi = 1.0 / (2 * n_sim), 1.0 - 1.0 / (2 * n_sim)
    for i in range(prob.n):
        k = prob.mask[i]
        if not k.any():
            continue
        ys = Y[:, i, k]                                                   # (K, n_i)
        mean = ys.mean(axis=0)
        cov = np.atleast_2d(np.cov(ys, rowvar=False))
        try:
            L = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError as exc:
            raise FitError(f"npde: the simulated covariance of subject {prob.data.ids[i]!r} is not positive "
                           "definite (observations that the model predicts without variability?)") from exc
        sim_dec = solve_triangular(L, (ys - mean).T, lower=True).T        # (K, n_i)
        if prob.cens[i].any():
            y_dec = _impute_censored(prob.y[i, k], prob.cens[i, k], prob.limit[i, k], mean, L, sim_dec, rng, lo)
        else:
            y_dec = solve_triangular(L, prob.y[i, k] - mean, lower=True)
        pde[i, k] = np.clip(np.mean(sim_dec < y_dec, axis=0), lo, hi)
    table = fit.table.copy()
    p = pde[prob.mask]
    table["PDE"] = p
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    out[ok] = ndtri(p[ok])
    table["NPDE"] = out
    return table


# the public functions report their documented home (pkpd.nlme.vpc, pkpd.fitting.fit); code and doctests stay here
vpc.__module__ = npde.__module__ = "pkpd.nlme"
