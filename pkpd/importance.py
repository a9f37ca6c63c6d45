r"""The exact likelihood of a population model by importance sampling (``objective="is"``).

For subject *i*, :math:`L_i = \int p(y_i\mid\eta)\,p(\eta)\,d\eta` is estimated by
:math:`\hat L_i = \frac1M\sum_m w_m`, :math:`w_m = p(y_i\mid\eta_m)\,p(\eta_m)/g_i(\eta_m)`, with draws
:math:`\eta_m` from a proposal :math:`g_i` centred on the conditional mode :math:`\hat\eta_i` (the EBE) with the
conditional covariance :math:`\hat\Sigma_i = H_i^{-1}`, :math:`H_i = \tfrac12\nabla^2 O_i(\hat\eta_i)` (the
exact Hessian, by central differences): a multivariate Student *t* with 5 degrees of freedom, whose heavier
tails keep the weights bounded (as Monolix; NONMEM's IMP uses a normal or *t* proposal the same way). Then
:math:`-2\log L = -2\sum_i \log\hat L_i`, with every constant, and the objective in NONMEM's convention
subtracts :math:`\log 2\pi` per quantified observation (a censored one has none; so it compares with the
FOCE-I and Laplace OFVs). :math:`p(y_i\mid\eta)` is the data part of the Laplace objective: continuous records, M3
probabilities and the exact likelihood of records of clinical endpoints (time to event, binary, ordinal, count; none
carries a :math:`\log 2\pi`).

Its Monte-Carlo standard error comes from the delta method, per subject
:math:`\mathrm{Var}(\log\hat L_i) \approx \widehat{\mathrm{Var}}(w)/(M\bar w^2)`, so that
:math:`\mathrm{SE}(-2\log L) = 2\sqrt{\sum_i \mathrm{Var}(\log\hat L_i)}`. Draws of all subjects are solved in
compiled batches; everything is reproducible with ``seed``.

How many draws: ``is_samples`` per subject when given; by default (``is_samples=None``) until the Monte-Carlo SE
of :math:`-2\log L` is at most 0.1 (a tenth of the smallest difference that matters when comparing models): 1000
draws per subject first, then, while the SE :math:`s` after :math:`M` draws is above 0.1, as many more as the
SE's :math:`1/\sqrt M` law says are needed, :math:`1.1\,M (s/0.1)^2` in all (rounded up to a multiple of 100, at
least 100 more), with at most 10000 per subject. The SE is re-estimated from all the draws after every round, so a
subject with poorly behaved weights keeps drawing.

References
----------
Kuhn E, Lavielle M (2005) Maximum likelihood estimation in nonlinear mixed effects models. Comput Stat Data Anal
49:1020-1038 (section 4: the likelihood by importance sampling).
Bauer RJ (2019) NONMEM tutorial part II: estimation methods and advanced examples. CPT Pharmacometrics Syst
Pharmacol 8:538-556.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import FitError

_LOG_2PI = math.log(2.0 * math.pi)
_DF = 5.0                 # degrees of freedom of the t proposal
_BATCH = 20000            # subject solves per batch call
SE_TARGET = 0.1           # is_samples=None: draws until the Monte-Carlo SE of -2 log L is at most this
_ROUND = 1000             # is_samples=None: draws per subject in the first round (also the least)
_STEP = 100               # is_samples=None: later rounds draw a multiple of this
_MARGIN = 1.1             # is_samples=None: later rounds aim at this times the draws the SE's 1/sqrt(M) law needs
_MAX_SAMPLES = 10000      # is_samples=None: the most draws per subject


@dataclass(frozen=True)
class ImportanceSampling:
    """The result of the importance-sampling likelihood (private to the fitters; ``minus2ll``/``objective`` and ``se``
    are PopulationFit's ``objective`` and ``objective_se``, and the smallest ``ess`` is named in its ``message``).

    ``minus2ll`` includes every constant; ``objective`` is NONMEM's convention (without log 2 pi per quantified
    observation).
    """

    minus2ll: float
    objective: float
    se: float
    n_samples: int
    per_subject: np.ndarray   # -2 log L_i
    ess: np.ndarray           # Kish's effective sample size of each subject's weights, (sum w)^2 / sum w^2


def importance_sampling(prob, theta_i: np.ndarray, omega: np.ndarray, errs: list, eta_mode: np.ndarray,
                        n_samples: int, rng: np.random.Generator, predictor=None) -> ImportanceSampling:
    """-2 log L of the population model at (theta_i (1, n, p), omega (q, q), errs) by importance sampling around
    the conditional modes ``eta_mode`` (n, q) (private; see the module docstring). ``predictor``: a
    :class:`pkpd.estimation._batch_predict.CompiledPredictor` solving the draws (else ``prob.predict``)."""
    adaptive = n_samples is None
    if not adaptive and (isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer)
                         or n_samples < 10):
        raise FitError(f"is_samples: must be an integer >= 10 or None (until the Monte-Carlo SE is at most "
                       f"{SE_TARGET}); got {n_samples!r}")
    n, q = eta_mode.shape
    with np.errstate(all="ignore"):
        H = prob.exact_hessian(theta_i, eta_mode[None], [errs], omega[None])[0]   # (n, q, q) = 1/2 d2 O
    H = 0.5 * (H + np.swapaxes(H, 1, 2))
    om_inv = np.linalg.inv(omega)
    chol = np.empty((n, q, q))
    for i in range(n):
        w, v = np.linalg.eigh(H[i]) if np.all(np.isfinite(H[i])) else (np.zeros(q), np.eye(q))
        # a Hessian that is not positive definite (a flat direction): fall back on the prior's precision there
        floor = np.linalg.eigvalsh(om_inv).min()
        w = np.maximum(w, floor)
        cov = (v / w) @ v.T
        chol[i] = np.linalg.cholesky(0.5 * (cov + cov.T))
    logdet_chol = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)          # (n,)
    logdet_om = np.linalg.slogdet(omega)[1]
    # a quantified record's density carries log 2 pi; a censored (M3) one is a probability and carries none
    n_obs_i = (prob.mask & ~prob.cens).sum(axis=1)
    chunk = max(1, _BATCH // max(n, 1))
    nu = _DF
    const_t = (math.lgamma(0.5 * (nu + q)) - math.lgamma(0.5 * nu) - 0.5 * q * math.log(nu * math.pi))

    def draw(k):
        """log weights (k, n) of k fresh draws per subject."""
        z = rng.standard_normal((k, n, q))
        g = rng.chisquare(nu, size=(k, n, 1))
        t = z * np.sqrt(nu / g)
        eta = eta_mode[None] + np.einsum("nqr,knr->knq", chol, t)
        P = prob.params(theta_i, eta[None])[0]
        with np.errstate(all="ignore"):
            F = prob.predict(P) if predictor is None else predictor.predict(P)
            data = prob._objective_at(F, np.zeros_like(eta), [errs] * k, np.zeros((k, q, q)))
        quad = np.einsum("knq,qr,knr->kn", eta, om_inv, eta)
        log_joint = -0.5 * (data + quad + logdet_om + q * _LOG_2PI + n_obs_i[None] * _LOG_2PI)
        maha = np.einsum("knq,knq->kn", t, t)
        log_prop = const_t - logdet_chol[None] - 0.5 * (nu + q) * np.log1p(maha / nu)
        lw = log_joint - log_prop
        return np.where(np.isfinite(lw), lw, -np.inf)

    target = _ROUND if adaptive else int(n_samples)
    parts, done = [], 0
    while True:
        while done < target:
            k = min(chunk, target - done)
            parts.append(draw(k))
            done += k
        logw = np.concatenate(parts)
        se = _standard_error(logw) if adaptive else 0.0
        if not adaptive or done >= _MAX_SAMPLES or se <= SE_TARGET:
            break
        target = min(_next_size(done, se), _MAX_SAMPLES)
    n_samples = done
    top = logw.max(axis=0)
    if not np.all(np.isfinite(top)):
        i = int(np.flatnonzero(~np.isfinite(top))[0])
        raise FitError(f"objective='is': no importance sample of subject {prob.data.ids[i]!r} could be evaluated "
                       "(the model cannot be solved around its conditional mode)")
    w = np.exp(logw - top[None])
    mean = w.mean(axis=0)
    log_l = top + np.log(mean)
    var_log = w.var(axis=0, ddof=1) / (n_samples * mean ** 2)
    ess = w.sum(axis=0) ** 2 / (w ** 2).sum(axis=0)
    per = -2.0 * log_l
    minus2ll = float(per.sum())
    return ImportanceSampling(minus2ll=minus2ll, objective=minus2ll - int(n_obs_i.sum()) * _LOG_2PI,
                              se=float(2.0 * math.sqrt(var_log.sum())), n_samples=int(n_samples), per_subject=per,
                              ess=ess)


def _next_size(done: int, se: float) -> int:
    """Draws per subject after the next round: SE ~ 1/sqrt(M), so about done (se / SE_TARGET)^2 reach the target;
    aim a little above it, in multiples of _STEP and at least _STEP more (a whole first round more when the SE
    is not finite).

    Examples
    --------
    >>> _next_size(1000, 0.1004), _next_size(1000, 0.2), _next_size(1000, float("inf"))
    (1200, 4400, 2000)
    """
    if not math.isfinite(se):
        return done + _ROUND
    need = _MARGIN * done * (se / SE_TARGET) ** 2
    return max(done + _STEP, _STEP * math.ceil(need / _STEP))


def _standard_error(logw: np.ndarray) -> float:
    """Monte-Carlo SE of -2 sum_i log(mean of subject i's weights) from log weights (M, n) (delta method)."""
    top = logw.max(axis=0)
    if not np.all(np.isfinite(top)):
        return math.inf
    w = np.exp(logw - top[None])
    mean = w.mean(axis=0)
    return float(2.0 * math.sqrt((w.var(axis=0, ddof=1) / (w.shape[0] * mean ** 2)).sum()))
