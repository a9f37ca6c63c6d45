r"""SAEM: stochastic approximation expectation-maximisation for population models (``fit_population(method="saem")``).

The individual parameters :math:`\phi_i` (on the scale where they are normal: log for log-normal IIV, logit for
logit-normal, natural for normal) are the missing data of an EM algorithm whose E-step is replaced by simulation
(Delyon, Lavielle & Moulines 1999) from Markov chains (Kuhn & Lavielle 2004, 2005), as in Monolix and nlmixr2.
Iteration *k*:

1. **Simulation.** Each of ``n_chains`` chains per subject moves :math:`\eta_i = \phi_i - \mu_i` by
   Metropolis-Hastings kernels (Kuhn & Lavielle 2005; Monolix's defaults of two steps each): (1) independent
   proposals from the prior :math:`N(0, \Omega)` (accepted with the likelihood ratio); (2) a random walk on all
   components, :math:`\eta^* = \eta + s_2\,\omega \odot z`; (3) a random walk on one component chosen at random per
   subject. The step sizes :math:`s_2` and the per-component :math:`s_3` adapt towards an acceptance rate of 0.3.
   Every proposal of every subject and chain is one parallel call of the compiled estimation library
   (:mod:`pkpd.estimation._batch_predict`: the design is built once, no loop over subjects or chains); problems it
   cannot serve (inter-occasion variability, steady-state doses or resets, clinical endpoint records, doses that
   depend on an estimated parameter, no C compiler) use the finite-difference engine's batch solves instead.
   Values below the limit of quantification (M3) enter the likelihood as :math:`P(Y < \mathrm{LLOQ})`, records of
   clinical endpoints (time to event, binary, ordinal, count; :mod:`pkpd.endpoints`) with their exact likelihood,
   computed by the same code as the Laplace objective's.
2. **Stochastic approximation** of the sufficient statistics with step :math:`\gamma_k`: per subject
   :math:`S_{1,i} \leftarrow S_{1,i} + \gamma_k(\bar\phi_i - S_{1,i})` and
   :math:`S_2 \leftarrow S_2 + \gamma_k(\sum_i \overline{\phi_i\phi_i^\top} - S_2)` (bars: means over chains);
   for the residual error the sums of squared (on the log scale for :class:`~pkpd.LogNormal`, relative for
   :class:`~pkpd.Proportional`) residuals of the continuous records, with censored observations imputed from
   their truncated normal distribution (Samson, Lavielle & Mentré 2006).
3. **Maximisation.** :math:`\mu` (and covariate coefficients on parameters with IIV) minimise
   :math:`\sum_i (S_{1,i}-\mu_i)^\top\Omega^{-1}(S_{1,i}-\mu_i)` (the mean of :math:`S_1` without covariate
   effects); :math:`\Omega = \frac1n\sum_i (S_2 - S_{1,i}\mu_i^\top - \mu_i S_{1,i}^\top + \mu_i\mu_i^\top)`, its
   elements outside the initial pattern set to 0; inter-occasion variances from the occasion effects; additive,
   proportional and log-normal error parameters in closed form from their statistics, combined ones by a small
   optimisation over the current residuals (followed by the stochastic approximation of the values).
   Typical values **without** IIV (and covariate coefficients on them) have no sufficient statistic: each
   iteration takes a Newton step on the complete-data log-likelihood at the simulated :math:`\phi` (score and
   expected information from the derivatives of the predictions: the forward sensitivity equations of the compiled
   library, one batch call; central differences on the finite-difference engine; the continuous records' Gaussian
   terms plus the endpoint records' exact score and expected information, which is how the typical values of a
   hazard, a response probability or a count rate are estimated), the information averaged by
   the stochastic approximation and the step scaled by :math:`\gamma_k` (a Robbins-Monro step whose fixed point is
   the M-step's).

Phases (documented defaults, :class:`SaemSettings`): an exploratory phase with :math:`\gamma_k = 1` and simulated
annealing (variances, of :math:`\Omega`, of the inter-occasion effects and of the residual error, may shrink by at
most a factor 0.95 per iteration, which keeps the chains exploring; Monolix's default) that stops by itself once no
parameter's trajectory drifts any more (:func:`exploration_settled`: the means of the last two windows of 50
iterations differ by less than the trajectory's standard deviation, for every parameter on the internal scale), after
at least 100 and at most 300 iterations (``exploratory=K`` gives exactly K); then ``smoothing = 200`` iterations with
:math:`\gamma_k = 1/(k - K_1 + 1)` (the estimates average the smoothing phase). Chains per subject:
:math:`\lceil 50/n \rceil` (Monolix's rule: at least 50 simulated subjects per iteration). Kernel steps (2, 2, 2). For
comparison: Monolix runs at most 500 exploratory iterations with its own stopping rule and at most 200 smoothing ones,
with (2, 2, 2) kernel steps and at least 50 simulated subjects; nlmixr2's ``saemControl`` 200 + 300 iterations with 3
chains and (2, 2, 2); saemix 300 + 100 with 1 chain and (2, 2, 2). Everything is reproducible with ``seed``.

Cost: every iteration solves each chain of each subject 7 times (6 kernel steps, and once more after the Newton
step moves the typical values without IIV) plus once with the sensitivities of those typical values (a system
without the derivatives that are identically zero, e.g. of the PK states by a PD parameter); the solves are nearly
all of it (``benchmarks/saem_speed.py``).

After SAEM, the conditional modes (EBEs) and the covariance matrix (by linearisation: NONMEM's sandwich of the
FOCE-I objective, or Laplace's with censored data or endpoint records, at the SAEM estimates) come from
:mod:`pkpd.nlme`, and the objective is :math:`-2\log L` by importance sampling (:mod:`pkpd.importance`; by default
until its Monte-Carlo SE is at most 0.1).

References
----------
Delyon B, Lavielle M, Moulines E (1999) Convergence of a stochastic approximation version of the EM algorithm.
Ann Stat 27:94-128.
Kuhn E, Lavielle M (2004) Coupling a stochastic approximation version of EM with an MCMC procedure. ESAIM P&S
8:115-131.
Kuhn E, Lavielle M (2005) Maximum likelihood estimation in nonlinear mixed effects models. Comput Stat Data Anal
49:1020-1038.
Samson A, Lavielle M, Mentré F (2006) Extension of the SAEM algorithm to left-censored data in nonlinear
mixed-effects model. Comput Stat Data Anal 51:1562-1574.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass

import numpy as np

from .errors import FitError
from .population import transform

__all__ = ["SaemSettings"]

_TARGET = 0.3          # acceptance rate the random-walk step sizes adapt towards
_H_FD = 1e-3           # central-difference step (internal scale) for typical values without IIV
_H_TYPICAL = 1e-5      # central-difference step of the typical values' derivatives by the internal parameters
_MAX_NEWTON = 0.5      # largest Newton step of a typical value without IIV (internal scale) per iteration


@dataclass(frozen=True)
class SaemSettings:
    """Options of SAEM (``fit_population(method="saem", saem=SaemSettings(...))``).

    Attributes
    ----------
    exploratory : int or None
        Iterations of the first phase (step 1, simulated annealing). Default None: the phase stops by itself
        (:func:`exploration_settled`) once the parameters' trajectories no longer drift, after at least two windows
        of ``window`` iterations and at most ``max_exploratory`` iterations. An integer: exactly that many.
    smoothing : int
        Iterations of the second phase (step 1/(k - K1 + 1), K1 the exploratory iterations). Default 200.
    n_chains : int or None
        Markov chains per subject; None: ceil(50 / subjects).
    kernel_steps : tuple[int, int, int]
        Metropolis-Hastings steps per iteration of the three kernels (prior, full random walk, one-component
        random walk). Default (2, 2, 2).
    annealing : float
        Largest factor by which a variance may shrink per exploratory iteration (1 = no annealing). Default 0.95.
    window : int
        Window of the exploratory phase's stopping rule (iterations). Default 50.
    max_exploratory : int
        Most exploratory iterations with the stopping rule. Default 300.

    Examples
    --------
    >>> SaemSettings(exploratory=100, smoothing=50).exploratory
    100
    >>> SaemSettings().max_exploratory
    300
    """

    exploratory: int | None = None
    smoothing: int = 200
    n_chains: int | None = None
    kernel_steps: tuple = (2, 2, 2)
    annealing: float = 0.95
    window: int = 50
    max_exploratory: int = 300

    def __post_init__(self):
        for name in ("exploratory", "smoothing"):
            v = getattr(self, name)
            if name == "exploratory" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise FitError(f"SaemSettings: {name} must be an integer >= 0" + (" or None (stop by itself)"
                               if name == "exploratory" else "") + f"; got {v!r}")
        for name in ("window", "max_exploratory"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise FitError(f"SaemSettings: {name} must be a positive integer; got {v!r}")
        if self.exploratory is None and self.max_exploratory < 2 * self.window:
            raise FitError(f"SaemSettings: max_exploratory ({self.max_exploratory}) must be at least two windows "
                           f"(2 x window = {2 * self.window}) for the exploratory phase's stopping rule")
        if self.exploratory is not None and self.exploratory + self.smoothing < 1:
            raise FitError("SaemSettings: exploratory + smoothing must be at least 1 iteration")
        if self.n_chains is not None and (isinstance(self.n_chains, bool)
                                          or not isinstance(self.n_chains, int | np.integer) or self.n_chains < 1):
            raise FitError(f"SaemSettings: n_chains must be a positive integer or None; got {self.n_chains!r}")
        ks = tuple(self.kernel_steps)
        if (len(ks) != 3 or any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0 for k in ks)
                or sum(ks) < 1):
            raise FitError(f"SaemSettings: kernel_steps must be three integers >= 0, not all 0; got "
                           f"{self.kernel_steps!r}")
        object.__setattr__(self, "kernel_steps", tuple(int(k) for k in ks))
        if not 0 < float(self.annealing) <= 1:
            raise FitError(f"SaemSettings: annealing must be in (0, 1]; got {self.annealing!r}")


def exploration_settled(trace: np.ndarray, window: int) -> bool:
    r"""Whether SAEM's exploratory phase may stop: no parameter drifts any more.

    ``trace`` (iterations, parameters) holds the parameters on the internal scale (log for positive typical
    values, variances' Cholesky factors and error parameters; natural for the others), one row per exploratory
    iteration. With :math:`A` and :math:`B` the means of the last two windows of ``window`` iterations and
    :math:`s` the standard deviation over both, the phase has settled when :math:`|B - A| \le \max(s, 0.005)`
    for every parameter: the drift between the windows is smaller than the Monte-Carlo fluctuation of the
    trajectory (a drift of 0.5 % on the log scale counts as settled whatever the noise). A steady trend with little
    noise gives :math:`|B - A| \approx 1.7\,s` and keeps the phase going; a stationary trajectory whose
    autocorrelation time is a tenth of the window passes with a probability of about 0.9 per parameter, so the
    phase stops a few iterations after every parameter has become stationary, and at ``max_exploratory`` at the
    latest (a variance that keeps shrinking slowly, as one the data barely inform, can hold it that long).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> exploration_settled(np.linspace(0, 1, 100)[:, None], 50)
    False
    >>> exploration_settled(0.1 * rng.standard_normal((100, 1)) + 1.0, 50)
    True
    """
    trace = np.asarray(trace, dtype=float)
    if trace.shape[0] < 2 * window:
        return False
    last = trace[-2 * window:]
    drift = np.abs(last[window:].mean(axis=0) - last[:window].mean(axis=0))
    return bool(np.all(drift <= np.maximum(last.std(axis=0), 0.005)))


@dataclass(frozen=True, eq=False)
class SaemRun:
    """What SAEM returns to :func:`pkpd.nlme.fit_population` (private)."""

    x: np.ndarray                 # final internal parameter vector (nlme layout)
    trace: np.ndarray             # (iterations + 1, n_parameters) natural-scale values, row 0 = initial
    eta: np.ndarray               # (n_chains, n, q) last state of the chains
    acceptance: dict              # mean acceptance rate of each kernel
    n_chains: int
    seconds: float
    n_solves: int
    exploratory: int              # exploratory iterations run (the stopping rule's choice when it was on)
    settled: bool = False         # the stopping rule ended the exploratory phase (not its maximum)


# ====================================================================================================== helpers
def _to_gauss(dist: str, value):
    value = np.asarray(value, dtype=float)
    with np.errstate(all="ignore"):
        if dist == "lognormal":
            return np.log(value)
        if dist == "logitnormal":
            return np.log(value / (1.0 - value))
        return value


def _from_gauss(dist: str, phi):
    phi = np.asarray(phi, dtype=float)
    with np.errstate(over="ignore"):
        if dist == "lognormal":
            return np.exp(phi)
        if dist == "logitnormal":
            return 1.0 / (1.0 + np.exp(-phi))
        return phi


class _State:
    """The parameters during SAEM, packed into / unpacked from the nlme layout's internal vector (private)."""

    def __init__(self, prob, layout):
        self.prob, self.layout = prob, layout
        model = layout.model
        names = model.parameter_names
        iiv = prob.iiv
        self.q_iiv = prob.q_iiv
        self.dist = iiv.distributions
        nt = len(layout.theta_names)
        n_chol = len(layout.chol_index)
        n_err = len(layout.error_slots)
        n_iov = len(layout.iov_names)
        self.nt, self.off_err = nt, nt + n_chol
        self.off_iov = self.off_err + n_err
        self.off_eff = self.off_iov + n_iov
        # typical values with IIV and estimated: their index in theta_names and in eta
        self.mu_theta = [k for k, n in enumerate(layout.theta_names) if n in iiv.names]
        self.mu_eta = [iiv.names.index(layout.theta_names[k]) for k in self.mu_theta]
        # "group c": typical values without IIV, and covariate coefficients on parameters without IIV
        self.newton = [k for k, n in enumerate(layout.theta_names) if n not in iiv.names]
        self.newton += [self.off_eff + e for e, c in enumerate(layout.effects) if c.parameter not in iiv.names]
        self.effects_iiv = [self.off_eff + e for e, c in enumerate(layout.effects) if c.parameter in iiv.names]
        # the model parameters whose typical values the Newton step moves (their sensitivities give its score)
        moved = [layout.theta_names[k] for k in self.newton if k < nt]
        moved += [c.parameter for c in layout.effects if c.parameter not in iiv.names]
        self.newton_parameters = tuple(sorted({names.index(m) for m in moved}))
        # without covariate effects on them, the Newton parameters' typical values are exp(x) or x themselves
        effect_targets = {c.parameter for c in layout.effects}
        self.newton_plain = all(k < nt and layout.theta_names[k] not in effect_targets for k in self.newton)
        self.eta_param = np.array([names.index(n) for n in iiv.names], dtype=np.int64)
        self.pattern = iiv.omega != 0
        # bounds of the internal vector (theta only; others free)
        lo = np.full(layout.n, -np.inf)
        hi = np.full(layout.n, np.inf)
        with np.errstate(divide="ignore"):
            lo[:nt] = np.where(layout.theta_log, np.log(np.maximum(layout.theta_lower, 0.0)), layout.theta_lower)
            hi[:nt] = np.where(layout.theta_log, np.log(layout.theta_upper), layout.theta_upper)
        for e, c in enumerate(layout.effects):   # the gradient fits' bounds: typical values stay positive
            if c.kind == "factor":
                lo[self.off_eff + e] = 1e-6
            elif c.kind == "indicator":
                lo[self.off_eff + e] = -1.0 + 1e-6
        self.lower, self.upper = lo, hi
        self._last = None

    def _unpacked(self, x: np.ndarray):
        """(typical rows (1, n, n_params), omega, error models) at x; the last point's are kept (SAEM asks for
        them several times per iteration at the same x)."""
        key = x.tobytes()
        if self._last is None or self._last[0] != key:
            theta, omega, errs = self.layout.unpack(x[None, :])
            typ = self.layout.subject_theta(x[None, :], theta)
            if typ.ndim == 2:
                typ = np.repeat(typ[:, None, :], self.prob.n, axis=1)
            typ.flags.writeable = False
            self._last = (key, typ, omega[0], errs[0])
        return self._last[1:]

    def typical(self, x: np.ndarray) -> np.ndarray:
        """Per-subject typical rows (1, n, n_params) at x (covariate effects applied)."""
        return self._unpacked(x)[0]

    def mu(self, x: np.ndarray) -> np.ndarray:
        """Per-subject means of the Gaussian-scale IIV parameters, (n, q_iiv)."""
        th = self.typical(x)[0][:, self.eta_param]
        return np.stack([_to_gauss(d, th[:, j]) for j, d in enumerate(self.dist)], axis=1)

    def omega(self, x: np.ndarray) -> np.ndarray:
        return self._unpacked(x)[1].copy()

    def errors(self, x: np.ndarray) -> list:
        return list(self._unpacked(x)[2])

    def set_omega(self, x: np.ndarray, omega: np.ndarray) -> None:
        L = np.linalg.cholesky(omega)
        for j, (a, b) in enumerate(self.layout.chol_index):
            x[self.nt + j] = math.log(L[a, b]) if a == b else L[a, b]

    def set_error(self, x: np.ndarray, o: int, name: str, value: float) -> None:
        for j, (oo, p) in enumerate(self.layout.error_slots):
            if oo == o and p == name:
                x[self.off_err + j] = math.log(value)

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper)


# ====================================================================================================== likelihood
class _Likelihood:
    """Predictions and the data part of -2 log p(y_i | phi_i) for every chain and subject (private).

    Predictions come from the compiled estimation library (:mod:`pkpd.estimation._batch_predict`: one parallel call
    of every chain and subject, the design built once) where it serves the problem, else from the finite-difference
    engine's ``prob.predict`` (IOV, steady-state doses, clinical endpoint records...). ``sensitivity_parameters``
    (model indices): the parameters whose first-order sensitivities :meth:`predict_sensitivities` returns.
    """

    def __init__(self, prob, layout, n_chains: int, sensitivity_parameters: tuple[int, ...] = ()):
        from .estimation._batch_predict import compiled_predictor

        self.prob, self.C = prob, n_chains
        self.quant = prob.mask & ~prob.cens
        self.n_solves = 0
        self.fast = compiled_predictor(prob, layout, sensitivity_parameters)
        # the IIV columns grouped by distribution, for _params (without IOV)
        dist = np.array(prob.iiv.distributions)
        self._groups = [(d, np.flatnonzero(dist == d)) for d in ("lognormal", "normal", "logitnormal")
                        if np.any(dist == d)]
        self._selections = None

    def _params(self, typical: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Parameter rows (C, n, p): ``prob.params(typical, eta[None])[0]``, the same arithmetic per element, with
        one vectorised transformation per distribution instead of one per random effect (SAEM calls it 8 times
        per iteration)."""
        prob = self.prob
        if prob.iov is not None:
            return prob.params(typical, eta[None])[0]
        P = np.repeat(typical, eta.shape[0], axis=0)
        for dist, cols in self._groups:
            idx = prob.eta_index[cols]
            with np.errstate(all="ignore"):
                P[..., idx] = transform(dist, typical[0][:, idx], eta[..., cols])
        return P

    def predict(self, typical: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Predictions (C, n, J) for random effects eta (C, n, q) around per-subject typical rows (1, n, p)."""
        P = self._params(typical, eta)
        self.n_solves += P.shape[0] * P.shape[1]
        if self.fast is not None:
            return self.fast.predict(P)
        with np.errstate(all="ignore"):
            return self.prob.predict(P)

    def predict_sensitivities(self, typical: np.ndarray, eta: np.ndarray):
        """Predictions (C, n, J) and their derivatives (C, n, J, k) by the sensitivity parameters (compiled path
        only)."""
        P = self._params(typical, eta)
        self.n_solves += P.shape[0] * P.shape[1]
        return self.fast.predict_sensitivities(P)

    def objective(self, F: np.ndarray, errs: list) -> np.ndarray:
        """-2 log p(y_i | phi) without constants, (C, n); +inf where it cannot be evaluated.

        The data part of the Laplace objective :math:`O_i` at zero prior weight: continuous records (Gaussian on
        the error model's scale, M3 probabilities for censored ones) plus the exact -2 log L of the records of
        clinical endpoints (``prob.endpoint_terms``, the code the Laplace objective and the importance sampling
        use)."""
        C = F.shape[0]
        q = self.prob.q
        with np.errstate(all="ignore"):
            if self.plain:
                out = self._quantified_objective(F, errs)
            else:
                out = self.prob._objective_at(F, np.zeros((C, self.prob.n, q)), [errs] * C, np.zeros((C, q, q)))
        bad = ~np.isfinite(out) | np.any(self.prob.mask & ~np.isfinite(F), axis=2)
        return np.where(bad, np.inf, out)

    def endpoint_score(self, F: np.ndarray, dF: np.ndarray):
        """Score and expected information of the endpoint records' log-likelihood in some parameters, summed over
        chains and subjects: (p,), (p, p), from predictions F (C, n, J) and their derivatives dF (C, n, J, p);
        zeros without endpoint records. A chain and subject whose terms are not finite (a failed solve) add
        nothing, as the continuous records' do in the Newton step."""
        p = dF.shape[-1]
        if self.prob.endpoint_records is None:
            return np.zeros(p), np.zeros((p, p))
        with np.errstate(all="ignore"):
            _, half_grad, info = self.prob.endpoint_terms(F, dF)       # 1/2 d(-2 log L) = -score; information
        ok = np.all(np.isfinite(half_grad), axis=-1) & np.all(np.isfinite(info), axis=(-2, -1))
        score = -np.where(ok[..., None], half_grad, 0.0).sum(axis=(0, 1))
        return score, np.where(ok[..., None, None], info, 0.0).sum(axis=(0, 1))

    @property
    def plain(self) -> bool:
        """Only quantified continuous observations (no censored or endpoint records): the objective is a sum of
        normal terms, computed per output for all chains at once."""
        return not self.prob.cens.any() and self.prob.endpoint_records is None

    def _quantified_objective(self, F: np.ndarray, errs: list) -> np.ndarray:
        """``prob._objective_at`` at eta = 0 for data without censored or endpoint records, per output instead of
        per chain and output (the same terms: (u - m)^2/R + log R - 2 log-Jacobian)."""
        prob = self.prob
        if self._selections is None:   # per output: its quantified records and their values (fixed for the fit)
            self._selections = []
            for o in range(len(errs)):
                sel = self.quant & (prob.which == o)
                y = prob.y[sel]
                with np.errstate(all="ignore"):
                    self._selections.append((sel, y, np.log(y)))
        term = np.zeros(F.shape)
        for (sel, y, ly), em in zip(self._selections, errs):
            f = F[:, sel]
            sd = em._scale(f)[0]
            R = sd * sd
            if em.log_scale:
                term[:, sel] = (ly - np.log(f)) ** 2 / R + np.log(R) + 2.0 * ly
            else:
                term[:, sel] = (y - f) ** 2 / R + np.log(R)
        return term.sum(axis=2)


class _Chains:
    """The Markov chains' state: random effects, predictions, data objective and prior term (private)."""

    def __init__(self, eta, F, obj, lp):
        self.eta, self.F, self.obj, self.lp = eta, F, obj, lp

    def step(self, proposal, with_prior: bool, lik, typical, errs, om_inv, rng) -> np.ndarray:
        """One Metropolis-Hastings step of every chain and subject (one batch call); which were accepted."""
        F_new = lik.predict(typical, proposal)
        obj_new = lik.objective(F_new, errs)
        lp_new = np.einsum("cnq,qr,cnr->cn", proposal, om_inv, proposal)
        with np.errstate(invalid="ignore"):   # a chain and its proposal both +inf (no density): NaN, rejected
            log_ratio = -0.5 * (obj_new - self.obj)
            if with_prior:   # (proposals drawn from the prior itself cancel it)
                log_ratio = log_ratio - 0.5 * (lp_new - self.lp)
            accept = np.isfinite(obj_new) & (np.log(rng.uniform(size=self.obj.shape)) < log_ratio)
        self.eta = np.where(accept[..., None], proposal, self.eta)
        self.F = np.where(accept[..., None], F_new, self.F)
        self.obj = np.where(accept, obj_new, self.obj)
        self.lp = np.where(accept, lp_new, self.lp)
        return accept


# ====================================================================================================== the algorithm
def run_saem(prob, layout, x0: np.ndarray, settings: SaemSettings, rng: np.random.Generator,
             maxeval: int | None = None) -> SaemRun:
    """SAEM from the internal vector ``x0`` (nlme layout) on the nlme problem ``prob`` (private entry point)."""
    t_start = _time.perf_counter()
    st = _State(prob, layout)
    n, q, q_iiv = prob.n, prob.q, prob.q_iiv
    C = settings.n_chains or max(1, math.ceil(50 / n))
    auto = settings.exploratory is None
    K1_max = settings.max_exploratory if auto else settings.exploratory
    if maxeval is not None:
        K1_max = min(K1_max, int(maxeval))
    K1 = None                       # exploratory iterations, known when the phase ends
    settled = False                 # whether the stopping rule ended it
    explored = []                   # the internal vector after each exploratory iteration (the stopping rule's)
    lik = _Likelihood(prob, layout, C, st.newton_parameters)
    x = st.clip(np.array(x0, dtype=float))
    eta = np.zeros((C, n, q))
    typical = st.typical(x)
    errs = st.errors(x)
    F = lik.predict(typical, eta)
    obj = lik.objective(F, errs)
    if not np.all(np.isfinite(obj)):
        i = int(np.flatnonzero(~np.all(np.isfinite(obj), axis=0))[0])
        raise FitError(f"saem: the likelihood of subject {prob.data.ids[i]!r} cannot be evaluated at the initial "
                       "values (typical parameters); check the initial values and the error model")
    s2 = 0.5 * np.ones(1)
    s3 = 0.5 * np.ones(q)
    m1, m2, m3 = settings.kernel_steps
    acc = {"prior": [0, 0], "random walk": [0, 0], "one component": [0, 0]}
    # occasions a subject has (IOV effects of absent occasions do not count in Pi): occ_start is +inf where absent,
    # -inf for occasion 1, which every subject has
    iov_present = None
    if prob.iov is not None:
        p = prob.iov.n_eta
        iov_present = np.repeat(prob.occ_start < np.inf, p, axis=1)             # (n, n_occ * p)
    trace = [layout.natural(x)]
    S1 = S2 = Spi = None
    S_err: dict = {}
    S_H = None
    k = 0
    while True:
        if K1 is None and k >= K1_max:
            K1 = k
        if K1 is not None:
            K2 = settings.smoothing if maxeval is None else min(settings.smoothing, max(0, int(maxeval) - K1))
            if k >= K1 + K2:
                break
        exploring = K1 is None
        gamma = 1.0 if exploring else 1.0 / (k - K1 + 1)
        omega_full = st.omega(x)
        try:
            L_om = np.linalg.cholesky(omega_full)
        except np.linalg.LinAlgError:
            raise FitError(f"saem: Omega is no longer positive definite at iteration {k + 1}") from None
        om_inv = np.linalg.inv(omega_full)
        sd_om = np.sqrt(np.diag(omega_full))

        ch = _Chains(eta, F, obj, np.einsum("cnq,qr,cnr->cn", eta, om_inv, eta))
        ctx = (lik, typical, errs, om_inv, rng)
        for _ in range(m1):
            z = rng.standard_normal((C, n, q))
            a = ch.step(z @ L_om.T, False, *ctx)
            acc["prior"][0] += int(a.sum())
            acc["prior"][1] += a.size
        for _ in range(m2):
            a = ch.step(ch.eta + s2[0] * sd_om * rng.standard_normal((C, n, q)), True, *ctx)
            rate = a.mean()
            acc["random walk"][0] += int(a.sum())
            acc["random walk"][1] += a.size
            s2 *= 1.1 if rate > _TARGET else 0.9
        for _ in range(m3):
            j = rng.integers(0, q, size=(C, n))
            step = np.zeros((C, n, q))
            np.put_along_axis(step, j[..., None], (s3[j] * sd_om[j] * rng.standard_normal((C, n)))[..., None],
                              axis=2)
            a = ch.step(ch.eta + step, True, *ctx)
            acc["one component"][0] += int(a.sum())
            acc["one component"][1] += a.size
            for c in range(q):
                sel = j == c
                if sel.any():
                    s3[c] *= 1.1 if a[sel].mean() > _TARGET else 0.9

        eta, F, obj = ch.eta, ch.F, ch.obj
        # -------------------------------------------------------------------------------- stochastic approximation
        mu_old = st.mu(x)
        phi = mu_old[None] + eta[..., :q_iiv]                                        # (C, n, q_iiv)
        s1_new = phi.mean(axis=0)
        s2_new = np.einsum("cnq,cnr->qr", phi, phi) / C
        S1 = s1_new if S1 is None else S1 + gamma * (s1_new - S1)
        S2 = s2_new if S2 is None else S2 + gamma * (s2_new - S2)
        x_new = x.copy()
        # residual error (and its imputed censored values) at the current chains
        u, m, _, s, _, _ = prob.residual([errs] * C, F)
        u = _impute(prob, errs, u, m, s, rng)
        x_new, S_err = _error_step(st, x_new, errs, u, m, F, S_err, gamma, exploring, settings.annealing)
        # mu (and covariate coefficients on IIV parameters), then Omega
        x_new = _mu_step(st, x_new, S1)
        mu_new = st.mu(x_new)
        omega_hat = (S2 - S1.T @ mu_new - mu_new.T @ S1 + mu_new.T @ mu_new) / n
        omega_hat = 0.5 * (omega_hat + omega_hat.T) * st.pattern
        old = omega_full[:q_iiv, :q_iiv]
        if exploring:
            floor = settings.annealing * np.diag(old)
            d = np.maximum(np.diag(omega_hat), floor)
            omega_hat[np.diag_indices(q_iiv)] = d
        omega_hat[np.diag_indices(q_iiv)] = np.maximum(np.diag(omega_hat), 1e-10)
        try:
            st.set_omega(x_new, omega_hat)
        except np.linalg.LinAlgError:
            st.set_omega(x_new, np.diag(np.diag(omega_hat)))
        if prob.iov is not None:
            kap = eta[..., q_iiv:]                                                       # (C, n, n_occ p)
            p_iov = prob.iov.n_eta
            sq = (kap ** 2 * iov_present[None]).reshape(C, n, -1, p_iov).sum(axis=(0, 1, 2))
            cnt = iov_present.reshape(n, -1, p_iov).sum(axis=(0, 1)) * C
            pi_new = sq / np.maximum(cnt, 1)
            Spi = pi_new if Spi is None else Spi + gamma * (pi_new - Spi)
            old_pi = np.exp(2 * x[st.off_iov:st.off_iov + p_iov])
            pi = np.maximum(Spi, settings.annealing * old_pi) if exploring else Spi
            x_new[st.off_iov:st.off_iov + p_iov] = 0.5 * np.log(np.maximum(pi, 1e-12))
        # typical values without IIV: a Newton step on the complete-data log-likelihood
        if st.newton:
            x_new, S_H = _newton_step(st, lik, x_new, eta, u, gamma, S_H)
        x_new = st.clip(x_new)
        # keep the simulated phi: the random effects move with the new means
        eta = eta.copy()
        eta[..., :q_iiv] += (mu_old - st.mu(x_new))[None]
        x = x_new
        typical = st.typical(x)
        errs = st.errors(x)
        if st.newton:   # the predictions change with typical values that have no random effect
            F = lik.predict(typical, eta)
        obj = lik.objective(F, errs)
        if not np.all(np.isfinite(obj)):   # a chain in a region the new parameters cannot solve: restart it
            bad = ~np.isfinite(obj)
            eta = np.where(bad[..., None], 0.0, eta)
            F = lik.predict(typical, eta)
            obj = lik.objective(F, errs)
        trace.append(layout.natural(x))
        if exploring:
            explored.append(x.copy())
            if auto and exploration_settled(np.array(explored), settings.window):
                K1 = k + 1
                settled = True
        k += 1
    rates = {key: (a / b if b else float("nan")) for key, (a, b) in acc.items()}
    return SaemRun(x=x, trace=np.array(trace), eta=eta, acceptance=rates, n_chains=C, exploratory=K1, settled=settled,
                   seconds=_time.perf_counter() - t_start, n_solves=lik.n_solves)


def _impute(prob, errs, u, m, s, rng):
    """Observations below the LLOQ replaced by draws from N(m, s^2) truncated above at the (transformed) limit."""
    if not prob.cens.any():
        return u
    from scipy.special import errstate, ndtri_exp

    from .error_models import _ndtr_log as log_ndtr
    from .estimation.finite_difference import _transform_limit

    limit = np.where(prob.cens, _transform_limit(prob, [errs], prob.limit), 0.0)
    with np.errstate(all="ignore"):
        # 0 at the quantified records, whose draws are thrown away: log_ndtr of their (0 - m) / s (46 for f = 0.01
        # on the log scale with sigma 0.1) could signal under a caller's scipy.special.seterr
        z = np.where(prob.cens[None], (limit[None] - m) / s, 0.0)
        log_p = log_ndtr(z) + np.log(rng.uniform(size=z.shape))
        # Phi^-1(exp(log_p)) from log_p itself: exact also where exp(log_p) underflows, a limit some 37 SDs or more
        # below m (a floor on log_p pinned those draws at one value, or on the limit)
        with errstate(all="ignore"):     # as log_ndtr: a caller's scipy.special.seterr decides nothing here
            draw = m + s * ndtri_exp(log_p)
    draw = np.where(np.isfinite(draw), np.minimum(draw, limit[None]), limit[None])
    return np.where(prob.cens[None], draw, u)


_SMALLEST_SD = 1e-150   # the smallest residual-error parameter SAEM sets: its log and square stay finite


def _error_step(st, x, errs, u, m, F, S_err, gamma, exploratory, annealing):
    """Residual-error parameters from the stochastic approximation of their statistics (private)."""
    prob = st.prob
    obs = prob.mask
    for o, em in enumerate(errs):
        free = [p for p in em.parameter_names if p not in em.fixed]
        if not free:
            continue
        sel = obs & (prob.which == o)
        r = (u - m)[:, sel]                                                   # (C, N_o)
        f = F[:, sel]
        name = type(em).__name__
        if name in ("Additive", "LogNormal", "Proportional"):
            rel = r / f if name == "Proportional" else r
            stat = float(np.mean(rel ** 2))
            key = (o, free[0])
            S_err[key] = stat if key not in S_err else S_err[key] + gamma * (stat - S_err[key])
            value = math.sqrt(max(S_err[key], _SMALLEST_SD ** 2))
            old = getattr(em, free[0])
            if exploratory:
                value = max(value, math.sqrt(annealing) * old)
            st.set_error(x, o, free[0], value)
        else:   # Combined: the optimum at the current residuals, then the stochastic approximation of the values
            from scipy.optimize import minimize

            a0, b0 = em.sd, em.cv

            def objective(v, a0=a0, b0=b0, em=em, r=r, f=f, free=free):
                a = math.exp(v[free.index("sd")]) if "sd" in free else a0
                b = math.exp(v[free.index("cv")]) if "cv" in free else b0
                var = (a + b * f) ** 2 if em.convention == "sd" else a * a + (b * f) ** 2
                with np.errstate(all="ignore"):
                    val = float(np.mean(r * r / var + np.log(var)))
                return val if math.isfinite(val) else 1e300

            start = np.log([getattr(em, p) for p in free])
            best = minimize(objective, start, method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 400}).x
            for j, p in enumerate(free):
                old = getattr(em, p)
                # floored as the additive branch's SD: residuals that are all 0 send the optimum to exp(-inf) = 0
                value = max(old + gamma * (math.exp(best[j]) - old), _SMALLEST_SD)
                if exploratory:
                    value = max(value, math.sqrt(annealing) * old)
                st.set_error(x, o, p, value)
    return x, S_err


def _mu_step(st, x, S1):
    """Typical values with IIV (and covariate coefficients on them) from the statistics S1 (private)."""
    if not st.mu_theta:
        return x
    layout = st.layout
    if not st.effects_iiv:
        for k, j in zip(st.mu_theta, st.mu_eta):
            value = _from_gauss(st.dist[j], np.mean(S1[:, j]))
            x[k] = math.log(value) if layout.theta_log[k] else float(value)
        return x
    from scipy.optimize import least_squares

    omega = st.omega(x)[:st.q_iiv, :st.q_iiv]
    Li = np.linalg.inv(np.linalg.cholesky(omega))
    free = list(st.mu_theta) + list(st.effects_iiv)

    def resid(v):
        xx = x.copy()
        xx[free] = v
        return ((S1 - st.mu(xx)) @ Li.T).ravel()

    lo, hi = st.lower[free], st.upper[free]
    # start inside finite bounds: 1e-9 in, or a quarter of the range where that is narrower than 4e-9 (scipy refuses
    # a start outside the bounds)
    margin = np.minimum(1e-9, 0.25 * (hi - lo))
    v0 = np.clip(x[free], np.where(np.isfinite(lo), lo + margin, lo), np.where(np.isfinite(hi), hi - margin, hi))
    with np.errstate(all="ignore"):
        res = least_squares(resid, v0, bounds=(lo, hi), x_scale="jac")
    x[free] = res.x
    return x


def _newton_step(st, lik, x, eta, u, gamma, S_H):
    """One Robbins-Monro Newton step for typical values without IIV (private).

    The score and the expected information of the complete-data log-likelihood in these parameters need the
    derivatives of the predictions (and of the residual variances, through them) by the internal parameters: from
    the forward sensitivity equations on the compiled path (one batch call), by central differences otherwise.
    """
    prob = st.prob
    p = len(st.newton)
    C = eta.shape[0]
    errs = st.errors(x)
    if lik.fast is not None:
        m0, s0, dm, dR, F, dF = _prediction_derivatives(st, lik, x, eta, errs)
    else:
        m0, s0, dm, dR, F, dF = _prediction_differences(st, lik, x, eta, errs)
    R = s0 ** 2
    r = u - m0
    use = prob.mask[None] & np.isfinite(r) & np.all(np.isfinite(dm), axis=-1) & np.all(np.isfinite(dR), axis=-1)
    with np.errstate(all="ignore"):
        w1 = np.where(use, r / R, 0.0)
        w2 = np.where(use, 0.5 * (r * r / R ** 2 - 1.0 / R), 0.0)
        dmu = np.where(use[..., None], dm, 0.0)
        dRu = np.where(use[..., None], dR, 0.0)
        g = np.einsum("cnj,cnja->a", w1, dmu)
        g += np.einsum("cnj,cnja->a", w2, dRu)
        H = np.einsum("cnja,cnjb,cnj->ab", dmu, dmu, np.where(use, 1.0 / R, 0.0))
        H += 0.5 * np.einsum("cnja,cnjb,cnj->ab", dRu, dRu, np.where(use, 1.0 / R ** 2, 0.0))
    # records of clinical endpoints: their exact score and expected information (typical values of a hazard, a
    # response probability... have no sufficient statistic either)
    g_ep, H_ep = lik.endpoint_score(F, dF)
    g += g_ep
    H += H_ep
    g /= C
    H /= C
    S_H = H if S_H is None else S_H + gamma * (H - S_H)
    try:
        step = np.linalg.solve(S_H + 1e-10 * np.eye(p) * max(1.0, np.abs(np.diag(S_H)).max()), g)
    except np.linalg.LinAlgError:
        step = np.zeros(p)
    step = np.where(np.isfinite(step), step, 0.0)
    big = np.max(np.abs(step)) if p else 0.0
    if big > _MAX_NEWTON:
        step *= _MAX_NEWTON / big
    x = x.copy()
    x[st.newton] += gamma * step
    return x, S_H


def _prediction_derivatives(st, lik, x, eta, errs):
    """Transformed predictions m and sds s (C, n, J) at x and their derivatives dm, d(s^2) (C, n, J, p) by the
    Newton parameters, from the sensitivities of the compiled library: dF/dx = dF/dtheta . dtheta/dx, the second
    factor exact for plain typical values (theta = exp(x) or x) and by central differences of the typical values
    (which need no solve) with covariate effects on them."""
    prob = st.prob
    typical = st.typical(x)
    F, dF_dtheta = lik.predict_sensitivities(typical, eta)                        # (C, n, J, k)
    cols = list(st.newton_parameters)
    dtheta = np.zeros((prob.n, len(cols), len(st.newton)))
    names = st.layout.model.parameter_names
    for a, j in enumerate(st.newton):
        if st.newton_plain:
            c = cols.index(names.index(st.layout.theta_names[j]))
            dtheta[:, c, a] = typical[0][:, cols[c]] if st.layout.theta_log[j] else 1.0
            continue
        h = _H_TYPICAL * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        dtheta[:, :, a] = (st.typical(up)[0][:, cols] - st.typical(down)[0][:, cols]) / (2 * h)
    dF = np.einsum("cnjk,nka->cnja", dF_dtheta, dtheta)
    _, m0, dm_df, s0, ds_df, _ = prob.residual([errs] * F.shape[0], F)
    with np.errstate(all="ignore"):
        return m0, s0, dm_df[..., None] * dF, (2.0 * s0 * ds_df)[..., None] * dF, F, dF


def _prediction_differences(st, lik, x, eta, errs):
    """As :func:`_prediction_derivatives`, by central differences of the predictions (one batch call)."""
    prob = st.prob
    idx = st.newton
    p = len(idx)
    C = eta.shape[0]
    rows = [x]
    for j in idx:
        for sgn in (1.0, -1.0):
            xx = x.copy()
            xx[j] += sgn * _H_FD
            rows.append(xx)
    typ = np.concatenate([st.typical(r) for r in rows], axis=0)                   # (1 + 2p, n, n_params)
    E = np.broadcast_to(eta[None], (len(rows),) + eta.shape)                       # (1 + 2p, C, n, q)
    P = prob.params(typ, E)                                                        # (1 + 2p, C, n, cols)
    lik.n_solves += P.shape[0] * P.shape[1] * P.shape[2]
    with np.errstate(all="ignore"):
        Fall = prob.predict(P.reshape(-1, prob.n, P.shape[-1])).reshape(len(rows), C, prob.n, prob.J)
    res = [prob.residual([errs] * C, Fall[r]) for r in range(len(rows))]
    _, m0, _, s0, _, _ = res[0]
    dm = np.stack([(res[1 + 2 * a][1] - res[2 + 2 * a][1]) / (2 * _H_FD) for a in range(p)], axis=-1)
    dR = np.stack([(res[1 + 2 * a][3] ** 2 - res[2 + 2 * a][3] ** 2) / (2 * _H_FD) for a in range(p)], axis=-1)
    dF = np.stack([(Fall[1 + 2 * a] - Fall[2 + 2 * a]) / (2 * _H_FD) for a in range(p)], axis=-1)
    return m0, s0, dm, dR, Fall[0], dF
