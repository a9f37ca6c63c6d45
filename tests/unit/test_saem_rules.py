"""SAEM's documented rules, checked on its small private pieces (fast: no full fit).

Section "seed 23": the survivors of the first mutation sample of ``saem`` (mutmut, seed 23): the settings' kernel
steps, the name of the subject whose likelihood fails at the start, the combined error model's update with a fixed
parameter and its stochastic-approximation step, the typical values' bounds in the mu step and the direction of the
Newton step of a typical value without IIV.

Section "seed 25": the survivors of the second, independent sample (mutmut, seed 25): the restart of a chain the
updated typical values cannot solve, the residual error of an output after one whose error is fixed, and the
importance-sampling draws that cannot be evaluated (checked against the closed-form likelihood of a linear Gaussian
model).

Section "seed 26": the survivors of the third, independent sample (mutmut, seed 26): the bounds of a typical value
estimated on its natural scale, the failed prediction of one chain and subject in the likelihood, the acceptance
rates of the kernels and the Newton step of a typical value without IIV (Fisher scoring, checked against finite
differences of the Gaussian complete-data likelihood).

Section "seed 27": the survivors of the fourth, independent sample (mutmut, seed 27): one iteration in all is a valid
SAEM, the logit of a logit-normal parameter, the smoothing phase's steps 1 / (k - K1 + 1), the adaptation of the
one-component random walk's step sizes, the imputation of censored records from their truncated normal, and the
Newton step when the information cannot be solved.

Section "seed 28": the survivors of the fifth, independent sample (mutmut, seed 28): an annealing factor of 1, the
lower bound of a categorical factor (and, a defect found beside it, of an indicator coefficient), the combined error
model's update with both parameters free, the count of sensitivity solves and the derivatives by a covariate
coefficient on a parameter without IIV (checked against central differences of the predictions).

Section "seed 29": the survivors of the sixth, independent sample (mutmut, seed 29): the Newton step's information
averaged by stochastic approximation across iterations, the least number of importance samples (10) and the batch
calls of at most 20000 subject draws that solve them.

Section "seed 30": the survivors of the seventh, independent sample (mutmut, seed 30): the Gaussian scale of a value
on its bound (infinite, without a warning), the exact derivatives by a plain typical value without IIV, the count of
solves of an SAEM run and of the central differences of the predictions, the combined error's update where its
objective cannot be evaluated, the Newton step with one record whose derivatives cannot be evaluated, and the end of
importance sampling at a Monte-Carlo SE of exactly its target. After it, a defect found judging that sample and
fixed: a combined error fitted to residuals that are all zero heads to the smallest SD instead of failing.

Section "seed 31": the survivor of the eighth, independent sample (mutmut, seed 31): the effective sample size of
each subject's importance weights, Kish's (sum w)^2 / sum w^2, checked against the weights of the linear Gaussian
model computed in the test.

Section "seed 32": the survivors of the ninth, independent sample (mutmut, seed 32): the lower bound of every
categorical factor (the second one's too) with the residual error's left free, the one-component kernel's acceptance
rate over every iteration and the Monte-Carlo SE of importance sampling by the delta method (checked against weights
1, 2, 3 by hand).

Section "seed 33": the survivors of the tenth, independent sample (mutmut, seed 33): kernel steps that are floats,
booleans or strings refused, a drift of exactly the floor 0.005 counting as settled, the full random walk's proposal
eta + s2 omega^(1/2) z with an independent normal per chain, subject and component, and each output's residual error
averaged by its own stochastic approximation. After it, a defect found judging that sample and fixed: NumPy integers
refused as n_chains and kernel_steps ("must be a positive integer ...; got np.int64(3)"), which the other settings
accept.

Section "seed 34": the survivor of the eleventh, independent sample (mutmut, seed 34): the inter-occasion variance
shrinking by at most the annealing factor per exploratory iteration (exactly annealing times its old value when the
kappas' mean square is below that floor).

Section "seed 35": the survivors of the twelfth, independent sample (mutmut, seed 35): a float32 trace judged in double
precision by the stopping rule, the closed-form mu step of a normal parameter on its natural scale and the log 2 pi
of importance sampling's -2 log L counted for quantified records only (not padding nor censored records).

Section "seed 36": the survivors of the thirteenth, independent sample (mutmut, seed 36): the score and expected
information of endpoint records (a time-to-event likelihood's, in closed form) summed over chains and subjects, a chain
and subject whose information is not finite left out of both, and the plain objective's records of two outputs, each
with its own error model, without the padding.

Section "seed 37": the survivors of the fourteenth, independent sample (mutmut, seed 37): a subject whose likelihood
cannot be evaluated although its predictions are finite (a proportional error at a prediction of 0) is +inf in the
data objective, and its chain accepts the first proposal that can be evaluated; the endpoint score and information
leave out a subject whose terms are not finite without a floating-point warning or error, whatever the caller's numpy
error state.

Section "seed 38": the survivor of the fifteenth, independent sample (mutmut, seed 38) that changes results: censored
records whose limit lies some 37 SDs or more below their prediction are drawn from the deep tail of their truncated
normal (a defect found judging that sample and fixed: a floor on the log probability pinned those draws at one value
or on the limit).

Section "seed 39": the survivors of the sixteenth, independent sample (mutmut, seed 39) that change results: the prior
kernel's acceptance rate, its accepted proposals over its proposals, and a combined error's free parameters shrinking
by at most sqrt(annealing) per exploratory iteration.

Section "seed 41": the survivors of the eighteenth, independent sample (mutmut, seed 41) that change results: the
inter-occasion variances as the mean square of each component's kappas over every occasion a subject has (a defect
found judging that sample and fixed: occasion 1's kappas were left out), down to one kappa; the subject named when
none of its importance samples can be evaluated; and the derivatives by a large linear covariate coefficient without
IIV, exact to rounding.

Section "seed 42": the survivors of the nineteenth, independent sample (mutmut, seed 42) that change results: an
additive error shrinking by exactly the annealing floor in the exploratory iterations of an SAEM run, the run's
seconds within the wall time of the call, and a combined error's sd at its optimum to a part in a million where the
objective is flat.

Section "seed 43": the survivors of the twentieth, independent sample (mutmut, seed 43) that change results: a
combined error's cv fitted with its sd fixed, and a Metropolis-Hastings step rejecting a draw equal to its acceptance
ratio (u < r, so a proposal is accepted with probability exactly r).

Section "seed 45": the survivor of the twenty-second, independent sample (mutmut, seed 45): importance sampling
evaluates draws whose solves or objective overflow quietly, whatever the caller's numpy error state (the closed form
of the linear Gaussian model without the draws that overflow, and the subject named whose variance overflows).

Section "seed 46": the survivor of the twenty-third, independent sample (mutmut, seed 46) that changes results: a
Metropolis-Hastings step from a chain that cannot be evaluated rejects a proposal that cannot be evaluated either, and
accepts one that can, without a floating-point warning or error (a defect found judging that sample and fixed: the log
ratio of the two zero densities, inf - inf, was computed outside the step's error-state guard).

Section "seed 47": the survivor of the twenty-fourth, independent sample (mutmut, seed 47): an estimate of Omega that
is not positive definite once the elements outside its pattern are set to 0 (a tridiagonal pattern, strongly
correlated chains) is replaced by its diagonal, the etas' variances, and the run goes on.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError
from pkpd.estimation.population_fit import _setup
from pkpd.nonmem import read_nonmem
from pkpd.saem import SaemSettings, _error_step, _Likelihood, _mu_step, _newton_step, _State, run_saem

DATA = Path(__file__).resolve().parents[1] / "data"
THEOPH = pd.read_csv(DATA / "theoph.csv", na_values=".")
COVARIATE_MODEL = DATA / "models" / "pk_1cmt_iv_covariates.toml"


def _theoph_problem(error, table=None, iiv=None):
    """Theophylline, one-compartment oral; ka and CL with IIV, V without (SAEM's Newton parameter)."""
    if table is None:     # without the samples at the time of the dose (prediction 0)
        table = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))]
    data = read_nonmem(table, dose_unit="mg")
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV(iiv or {"ka": 0.6, "CL": 0.3}), {"conc": error},
                                   "focei", ["ka", "CL", "V"], None, pkpd.SolverSettings(), None)
    return prob, layout, _State(prob, layout)


# ====================================================================================================== seed 23
def test_kernel_steps_allow_a_zero_for_one_kernel_and_are_stored_as_a_tuple():
    # "three integers >= 0, not all 0": a kernel may be switched off (SaemSettings.__post_init__ _62)
    assert SaemSettings(kernel_steps=(0, 2, 2)).kernel_steps == (0, 2, 2)
    assert SaemSettings(kernel_steps=(3, 0, 0)).kernel_steps == (3, 0, 0)
    # the validated tuple is what is kept, whatever sequence was given (_73)
    s = SaemSettings(kernel_steps=[1, 0, 4])
    assert type(s.kernel_steps) is tuple and s.kernel_steps == (1, 0, 4)
    with pytest.raises(FitError) as exc:
        SaemSettings(kernel_steps=(0, 0, 0))
    assert str(exc.value) == "SaemSettings: kernel_steps must be three integers >= 0, not all 0; got (0, 0, 0)"


def test_the_first_subject_whose_likelihood_fails_at_the_start_is_named():
    # only the third subject keeps its sample at the time of the dose: prediction 0, and a proportional error has
    # no likelihood there (run_saem _75 names the first subject whatever fails)
    third = THEOPH["ID"].unique()[2]
    at_dose = (THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0)
    prob, layout, _ = _theoph_problem(pkpd.Proportional(cv=0.2), table=THEOPH[~at_dose | (THEOPH["ID"] == third)])
    with pytest.raises(FitError) as exc:
        run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=1, n_chains=1),
                 np.random.default_rng(0))
    assert str(exc.value) == (f"saem: the likelihood of subject {int(third)!r} cannot be evaluated at the initial "
                              "values (typical parameters); check the initial values and the error model")


def _residuals(prob, value: float, f: float):
    """Residuals of size ``value`` (alternating signs) at every record, predictions ``f``: (C=2, n, J) arrays."""
    sign = np.where(np.arange(prob.n * prob.J).reshape(prob.n, prob.J) % 2 == 0, 1.0, -1.0)
    u = np.stack([value * sign, -value * sign])
    return u, np.zeros_like(u), np.full(u.shape, f)


@pytest.mark.parametrize("convention", ["variance", "sd"])
def test_combined_error_with_a_fixed_cv_moves_the_sd_half_way_with_gamma_one_half(convention):
    # constant prediction f and residuals of size 0.5: the optimal variance is mean(r^2) = 0.25, so with cv fixed at
    # b the additive part solves a^2 + (b f)^2 = 0.25 ("variance") or a + b f = 0.5 ("sd"); the stochastic
    # approximation moves the old sd by gamma times the way to it (_error_step _91: cv fixed; _164: the update)
    old_sd, b, f = 0.1, 0.1, 2.0
    em = pkpd.Combined(sd=old_sd, cv=b, convention=convention, fixed=("cv",))
    prob, layout, st = _theoph_problem(em)
    u, m, F = _residuals(prob, 0.5, f)
    optimum = math.sqrt(0.25 - (b * f) ** 2) if convention == "variance" else 0.5 - b * f
    for gamma in (1.0, 0.5):
        x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, gamma, False, 0.95)
        new = st.errors(x)[0]
        assert new.cv == b
        assert new.sd == pytest.approx(old_sd + gamma * (optimum - old_sd), rel=1e-4)


def _covariate_problem(bounds):
    """Six subjects of a one-compartment IV model with CL = CL_pop (WT/70)^beta e^eta (IIV on CL and V)."""
    rng = np.random.default_rng(4)
    rows = []
    for i in range(6):
        wt = 50.0 + 8.0 * i
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan, "WT": wt})
        for t in (1.0, 4.0, 12.0):
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": 3.0 * np.exp(-0.1 * t)
                         * (1 + 0.1 * rng.standard_normal()), "WT": wt})
    model = pkpd.load_model(COVARIATE_MODEL).with_bounds(CL=bounds)
    effect = pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70)
    _, _, _, layout, prob = _setup(model, pd.DataFrame(rows), pkpd.IIV({"CL": 0.09, "V": 0.04}),
                                   {"conc": pkpd.Proportional(cv=0.1)}, "focei", ["CL", "V"], None,
                                   pkpd.SolverSettings(), {"CL": 3.0, "V": 30.0}, (effect,))
    return prob, layout, _State(prob, layout)


def test_the_mu_step_recovers_typical_values_and_coefficients_from_their_statistics_within_bounds():
    # S1 (per-subject means of the Gaussian-scale parameters) equal to mu at a target point: the least-squares
    # mu step recovers the target, also from a start at the upper bound of a narrow range (CL in [2, 4]: a log
    # range under 1; _mu_step _57 started it outside the bounds)
    prob, layout, st = _covariate_problem((2.0, 4.0))
    free = list(st.mu_theta) + list(st.effects_iiv)
    k_cl = layout.theta_names.index("CL")
    assert k_cl in free and st.effects_iiv
    target = layout.x0.copy()
    target[k_cl] = math.log(2.5)
    target[st.effects_iiv[0]] = 1.1
    S1 = st.mu(target).copy()
    start = layout.x0.copy()
    start[k_cl] = math.log(4.0)                       # at the upper bound
    x = _mu_step(st, start, S1)
    np.testing.assert_allclose(x[free], target[free], atol=1e-6)


def _observations_of_a_larger_v():
    """Theophylline (additive sd 0.5), V without IIV (SAEM's Newton step moves it): the state, the likelihood of 2
    chains, V's index, the initial x, x with V 30 % larger, random EBEs (seed 1) and the predictions there, as the
    observations."""
    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    k_v = layout.theta_names.index("V")
    assert st.newton == [k_v]
    lik = _Likelihood(prob, layout, 2, st.newton_parameters)
    eta = 0.2 * np.random.default_rng(1).standard_normal((2, prob.n, prob.q))
    x = layout.x0.copy()
    truth = x.copy()
    truth[k_v] += math.log(1.3)
    u = np.where(prob.mask[None], lik.predict(st.typical(truth), eta), 0.0)
    return st, lik, k_v, x, truth, eta, u


def test_one_newton_step_moves_a_typical_value_without_iiv_towards_the_data():
    # V has no IIV: its typical value moves by a Newton step on the complete-data likelihood. Observations equal
    # to the predictions at V 30 % larger: the step goes up, most of the way (_newton_step _34: r = u + m0)
    st, lik, k_v, x, truth, eta, u = _observations_of_a_larger_v()
    x_new, S_H = _newton_step(st, lik, x, eta, u, 1.0, None)
    assert x_new[k_v] > x[k_v]
    assert abs(x_new[k_v] - truth[k_v]) < 0.25 * abs(x[k_v] - truth[k_v])
    others = [j for j in range(x.size) if j != k_v]
    np.testing.assert_array_equal(x_new[others], x[others])
    assert S_H.shape == (1, 1) and S_H[0, 0] > 0


# ====================================================================================================== seed 25
def test_a_chain_the_new_typical_values_cannot_solve_restarts_at_the_typical_values(monkeypatch):
    # after the parameter update, a chain whose likelihood is not finite restarts at eta = 0 (the typical values);
    # the other chains keep theirs. A spy makes the likelihood of chain 0, subject 0 infinite once after each Newton
    # step (run_saem _529: the restart puts None into eta, an object array: an IndexError)
    import pkpd.saem as saem

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    armed = []
    newton, objective = saem._newton_step, saem._Likelihood.objective

    def newton_spy(*args):
        armed.append(True)
        return newton(*args)

    def objective_spy(self, F, errs):
        out = objective(self, F, errs)
        if armed:
            armed.clear()
            out = np.array(out, dtype=float)
            out[0, 0] = np.inf
        return out

    monkeypatch.setattr(saem, "_newton_step", newton_spy)
    monkeypatch.setattr(saem._Likelihood, "objective", objective_spy)
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=1, n_chains=2),
                   np.random.default_rng(0))
    assert run.eta.dtype == float
    np.testing.assert_array_equal(run.eta[0, 0], 0.0)
    assert np.all(run.eta[1, 0, :prob.q_iiv] != 0.0) and np.all(run.eta[0, 1:, :prob.q_iiv] != 0.0)


def test_an_output_whose_error_is_fixed_leaves_the_next_outputs_error_free_to_move():
    # two outputs: PGE2's proportional error fixed, IL-10's additive one free. Residuals of size 0.5 at every
    # record: the free sd moves to sqrt(mean r^2) = 0.5 (gamma 1), the fixed cv stays (_error_step _7: the loop
    # stops at the fixed output, IL-10's sd is never updated)
    model = pkpd.load_model("msc_salvadori")
    rows = []
    for i in range(2):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=2e6, EVID=1, CMT="iv", MDV=1, DVID=".", WT=70.0))
        for t in (4.0, 24.0, 72.0):
            for o in ("PGE2", "IL10"):
                rows.append(dict(ID=i + 1, TIME=t, DV=1.0, AMT=0.0, EVID=0, CMT=".", MDV=0, DVID=o, WT=70.0))
    data = read_nonmem(pd.DataFrame(rows), model, dose_unit="cell/kg")
    error = {"PGE2": pkpd.Proportional(cv=0.2, fixed=True), "IL10": pkpd.Additive(sd=0.1)}
    _, _, _, layout, prob = _setup(model, data, pkpd.IIV({"k_c": 0.2}), error, "focei", ["k_c"], None,
                                   pkpd.SolverSettings(), None)
    st = _State(prob, layout)
    assert set(prob.which[prob.mask].tolist()) == {0, 1}
    u, m, F = _residuals(prob, 0.5, 2.0)
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, False, 0.95)
    pge2, il10 = st.errors(x)
    assert pge2.cv == 0.2
    assert il10.sd == pytest.approx(0.5, rel=1e-4)


class _LinearGauss:
    """A test double of the nlme problem for :func:`pkpd.importance.importance_sampling`: y_ij = eta_i + eps_ij,
    eps ~ N(0, 1), eta ~ N(0, omega), J records a subject; predictions are NaN where eta > ``cut`` (per subject)."""

    J, q = 4, 1

    def __init__(self, y: np.ndarray, omega: float, cut: np.ndarray):
        self.y, self.omega, self.cut = y, omega, cut
        self.n = y.shape[0]
        self.mask = np.ones(y.shape, dtype=bool)
        self.cens = np.zeros(y.shape, dtype=bool)
        self.data = type("Data", (), {"ids": list(range(1, self.n + 1))})()

    def exact_hessian(self, theta, eta, errs, omega):
        return np.broadcast_to(self.J + 1.0 / self.omega, (1, self.n, 1, 1)).copy()   # 1/2 d2 O_i

    def params(self, theta, eta):
        return eta                                       # the prediction's only parameter is eta itself

    def predict(self, P):
        f = np.repeat(P, self.J, axis=-1)
        return np.where(P > self.cut[:, None], np.nan, f)

    def _objective_at(self, F, eta, errs, om_inv):
        return np.sum((self.y[None] - F) ** 2, axis=2)  # -2 log p(y | eta) less J log 2 pi (sigma = 1)


def test_importance_sampling_gives_draws_that_cannot_be_evaluated_no_weight():
    # the marginal likelihood of a linear Gaussian model is closed-form, and so is the posterior of eta (normal:
    # precision J + 1/omega); draws above `cut` cannot be evaluated and weigh nothing, so the estimate is the
    # integral below it: -2 log L_i - 2 log Phi((cut - mean) / sd) (importance_sampling _208: such a draw weighs
    # +inf, and every subject's estimate fails)
    from scipy import stats

    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1], [1.5, 2.0, 0.8, 1.2]])
    omega, J = 0.5, 4
    cov = np.eye(J) + omega
    exact = sum(-2 * stats.multivariate_normal(np.zeros(J), cov).logpdf(row) for row in y)
    precision = J + 1 / omega
    mean, sd = y.sum(axis=1) / precision, 1 / math.sqrt(precision)
    for shift, missing in ((np.inf, 0.0), (0.5, -2 * 3 * np.log(stats.norm.cdf(0.5)))):
        prob = _LinearGauss(y, omega, mean + shift * sd)
        res = importance_sampling(prob, np.zeros((1, 3, 1)), np.array([[omega]]), [], mean[:, None], 4000,
                                  np.random.default_rng(1))
        assert math.isfinite(res.minus2ll) and 0 < res.se < 0.1
        assert abs(res.minus2ll - (exact + missing)) < 4 * res.se
        assert res.objective == pytest.approx(res.minus2ll - 12 * math.log(2 * math.pi), abs=1e-9)


# ====================================================================================================== seed 26
def _allometric_problem():
    """Four subjects of iv_allometric (CL = TVCL (WT/70)^BETA): BETA's bounds [-3, 3] reach below 0, so it is
    estimated on its natural scale (no IIV: SAEM's Newton parameter), TVCL and V on the log scale."""
    model = pkpd.load_model(DATA / "models" / "iv_allometric.toml")
    rows = []
    for i, wt in enumerate((40.0, 60.0, 80.0, 100.0)):
        cl, v = 3.0 * (wt / 70.0) ** 0.75, 30.0
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan, "WT": wt})
        for t in (1.0, 4.0, 12.0):
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": 100.0 / v * math.exp(-cl / v * t),
                         "WT": wt})
    _, _, _, layout, prob = _setup(model, pd.DataFrame(rows), pkpd.IIV({"TVCL": 0.09, "V": 0.04}),
                                   {"conc": pkpd.Proportional(cv=0.1)}, "focei", ["TVCL", "BETA", "V"], None,
                                   pkpd.SolverSettings(), None)
    return prob, layout, _State(prob, layout)


def test_a_typical_value_on_its_natural_scale_keeps_its_declared_bounds_and_stays_finite():
    # the internal vector's bounds are the model's: log(bounds) for a parameter estimated on the log scale, the
    # bounds themselves for one estimated on its natural scale (BETA in [-3, 3]); clipping keeps a value inside
    # them and SAEM's estimate of BETA is a finite number in them (_State.__init__ _91: BETA's upper bound None,
    # i.e. NaN, and the clip turns BETA into NaN: the likelihood cannot be evaluated at the start)
    prob, layout, st = _allometric_problem()
    k_cl, k_beta, k_v = (layout.theta_names.index(n) for n in ("TVCL", "BETA", "V"))
    assert not layout.theta_log[k_beta] and layout.theta_log[k_cl] and layout.theta_log[k_v]
    assert (st.lower[k_beta], st.upper[k_beta]) == (-3.0, 3.0)
    assert st.lower[k_cl] == pytest.approx(math.log(0.01), rel=1e-15)
    assert st.upper[k_cl] == pytest.approx(math.log(100.0), rel=1e-15)
    assert st.upper[k_v] == pytest.approx(math.log(1000.0), rel=1e-15)
    x = layout.x0.copy()
    x[k_beta] = 5.0
    assert st.clip(x)[k_beta] == 3.0
    x[k_beta] = -0.5
    assert st.clip(x)[k_beta] == -0.5
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=2, smoothing=1, n_chains=1),
                   np.random.default_rng(0))
    assert math.isfinite(run.x[k_beta]) and -3.0 <= run.x[k_beta] <= 3.0
    assert np.all(np.isfinite(run.x))


def test_a_prediction_that_fails_makes_only_its_own_chain_and_subject_infinite():
    # additive error sd 0.5 (R = 0.25): -2 log p(y_i | phi) without constants is sum_j (y_ij - f_ij)^2 / R + log R
    # over the subject's records; a NaN prediction of chain 1, subject 0 makes that entry +inf and no other
    # (_Likelihood.objective _29: any failed prediction anywhere made every chain and subject infinite)
    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    lik = _Likelihood(prob, layout, 2)
    eta = 0.1 * np.random.default_rng(2).standard_normal((2, prob.n, prob.q))
    F = np.array(lik.predict(st.typical(layout.x0), eta), dtype=float)
    j = int(np.flatnonzero(prob.mask[0])[0])
    F[1, 0, j] = np.nan
    out = lik.objective(F, st.errors(layout.x0))
    by_hand = np.where(prob.mask[None], (prob.y[None] - F) ** 2 / 0.25 + math.log(0.25), 0.0).sum(axis=2)
    assert out[1, 0] == np.inf
    others = np.ones(out.shape, dtype=bool)
    others[1, 0] = False
    assert np.all(np.isfinite(out[others]))
    np.testing.assert_allclose(out[others], by_hand[others], rtol=1e-12)


def test_the_acceptance_rate_of_each_kernel_is_its_accepted_share_and_nan_when_it_is_off(monkeypatch):
    # SaemRun.acceptance: the mean acceptance rate of each kernel, accepted proposals over proposals (a spy on
    # the chains' step counts them); a kernel switched off (0 steps) proposed nothing: NaN (run_saem _97: the
    # random walk's count of proposals started at 1)

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    moves = _record_moves(monkeypatch)
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=1, n_chains=2,
                                                         kernel_steps=(0, 3, 0)), np.random.default_rng(0))
    seen = [a for _, a in moves]
    assert len(seen) == 2 * 3
    accepted = sum(int(a.sum()) for a in seen)
    proposed = sum(a.size for a in seen)
    assert 0 < accepted < proposed
    assert run.acceptance["random walk"] == accepted / proposed
    assert math.isnan(run.acceptance["prior"]) and math.isnan(run.acceptance["one component"])
    seen.clear()
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=1, n_chains=2,
                                                         kernel_steps=(2, 0, 1)), np.random.default_rng(0))
    assert math.isnan(run.acceptance["random walk"])


@pytest.mark.parametrize("error", [pkpd.Proportional(cv=0.2), pkpd.Combined(sd=0.3, cv=0.1, convention="variance")])
def test_one_newton_step_is_fisher_scoring_on_the_gaussian_complete_data_likelihood(error):
    # V has no IIV; its Newton step (gamma 1, no earlier information) is score / expected information of
    # l(x) = -1/2 sum (u - f(x))^2 / R(x) + log R(x) over the records of all chains (f: predictions, R: the
    # error model's variance at f). Score by central differences of l, information sum f'^2 / R + R'^2 / (2 R^2),
    # both from the predictions alone (_newton_step _32: R = s^3; _74: 1.5 instead of 1/2 in the variance's
    # part of the score)
    prob, st, lik, eta, x, u, k_v = _newton_problem(error)
    a, b = error.sd if isinstance(error, pkpd.Combined) else 0.0, error.cv

    def variance(f):
        return (a * a + (b * f) ** 2 if isinstance(error, pkpd.Combined) and error.convention == "variance"
                else (a + b * f) ** 2)

    expected = _fisher_scoring_step(st, lik, eta, x, u, k_v, variance, prob.mask[None])
    assert 0.01 < abs(expected) < 0.5                   # a real step, below the cap on one step
    x_new, _ = _newton_step(st, lik, x, eta, u, 1.0, None)
    assert x_new[k_v] - x[k_v] == pytest.approx(expected, rel=1e-5)


def _newton_problem(error):
    """Theophylline with V (no IIV) as SAEM's Newton parameter, 2 chains of random etas, the data simulated at V
    1.1 times its start: (prob, state, likelihood, eta, x at the start, data u, index of V)."""
    prob, layout, st = _theoph_problem(error)
    k_v = layout.theta_names.index("V")
    assert st.newton == [k_v]
    lik = _Likelihood(prob, layout, 2, st.newton_parameters)
    eta = 0.2 * np.random.default_rng(1).standard_normal((2, prob.n, prob.q))
    x = layout.x0.copy()
    near = x.copy()
    near[k_v] += math.log(1.1)
    u = np.where(prob.mask[None], lik.predict(st.typical(near), eta), 0.0)
    return prob, st, lik, eta, x, u, k_v


def _fisher_scoring_step(st, lik, eta, x, u, k, variance, keep) -> float:
    """score / expected information of l(x) = -1/2 sum (u - f(x))^2 / R(x) + log R(x) in x[k] over the records
    ``keep``, both by central differences of the predictions (R = variance(f))."""

    def f_and_R(v: float):
        xx = x.copy()
        xx[k] = v
        f = np.array(lik.predict(st.typical(xx), eta), dtype=float)
        return f, variance(f)

    def loglik(v: float) -> float:
        f, R = f_and_R(v)
        return float(-0.5 * np.sum(np.where(keep, (u - f) ** 2 / R + np.log(R), 0.0)))

    h = 1e-4
    score = (loglik(x[k] + h) - loglik(x[k] - h)) / (2 * h)
    (fu, Ru), (fd, Rd), R0 = f_and_R(x[k] + h), f_and_R(x[k] - h), f_and_R(x[k])[1]
    df, dR = (fu - fd) / (2 * h), (Ru - Rd) / (2 * h)
    info = float(np.sum(np.where(keep, df ** 2 / R0 + 0.5 * dR ** 2 / R0 ** 2, 0.0)))
    return score / info


# ====================================================================================================== seed 27
def test_exploratory_plus_smoothing_of_one_iteration_is_enough():
    # "exploratory + smoothing must be at least 1 iteration": one exploratory iteration and no smoothing (or the
    # reverse) is a valid SAEM, run as exactly one iteration; none at all is refused, the whole message compared
    # (SaemSettings.__post_init__ _44: at least 2 iterations)
    for exploratory, smoothing in ((1, 0), (0, 1)):
        s = SaemSettings(exploratory=exploratory, smoothing=smoothing, n_chains=1, kernel_steps=(1, 0, 0))
        assert (s.exploratory, s.smoothing) == (exploratory, smoothing)
    with pytest.raises(FitError) as exc:
        SaemSettings(exploratory=0, smoothing=0)
    assert str(exc.value) == "SaemSettings: exploratory + smoothing must be at least 1 iteration"
    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=0, n_chains=1,
                                                         kernel_steps=(1, 0, 0)), np.random.default_rng(0))
    assert run.trace.shape[0] == 2 and run.exploratory == 1


def test_the_gaussian_scale_of_a_logit_normal_parameter_is_its_logit():
    # logit-normal IIV: P = expit(logit(theta) + eta), so SAEM's Gaussian-scale value of a fraction p is
    # logit(p) = log(p / (1 - p)) (scipy's logit), and _from_gauss inverts it (_to_gauss _19: log(p / (2 - p)))
    from scipy.special import expit, logit

    from pkpd.saem import _from_gauss, _to_gauss

    p = np.array([0.05, 0.25, 0.5, 0.9])
    np.testing.assert_allclose(_to_gauss("logitnormal", p), logit(p), rtol=1e-14, atol=1e-15)
    assert _to_gauss("logitnormal", 0.5) == 0.0
    np.testing.assert_allclose(_from_gauss("logitnormal", _to_gauss("logitnormal", p)), p, rtol=1e-14)
    np.testing.assert_allclose(_from_gauss("logitnormal", logit(p)), expit(logit(p)), rtol=1e-14)


def test_the_smoothing_phase_steps_are_one_over_the_smoothing_iteration(monkeypatch):
    # gamma_k = 1 in the exploratory phase and 1 / (k - K1 + 1) in the smoothing phase (k counted from 0, K1 the
    # exploratory iterations): 1, 1 | 1, 1/2, 1/3, 1/4 for K1 = 2 and 4 smoothing iterations; a spy on the error step
    # and the Newton step records the gamma each is given (run_saem _155: 1 / (k - K1 + 2), 1/2 at the first
    # smoothing iteration)
    import pkpd.saem as saem

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    gammas = {"error": [], "newton": []}
    error_step, newton_step = saem._error_step, saem._newton_step

    def error_spy(st, x, errs, u, m, F, S_err, gamma, *rest):
        gammas["error"].append(gamma)
        return error_step(st, x, errs, u, m, F, S_err, gamma, *rest)

    def newton_spy(st, lik, x, eta, u, gamma, S_H):
        gammas["newton"].append(gamma)
        return newton_step(st, lik, x, eta, u, gamma, S_H)

    monkeypatch.setattr(saem, "_error_step", error_spy)
    monkeypatch.setattr(saem, "_newton_step", newton_spy)
    run_saem(prob, layout, layout.x0, SaemSettings(exploratory=2, smoothing=4, n_chains=1, kernel_steps=(1, 0, 0)),
             np.random.default_rng(0))
    expected = [1.0, 1.0, 1.0, 1 / 2, 1 / 3, 1 / 4]
    assert gammas["error"] == pytest.approx(expected, rel=1e-15)
    assert gammas["newton"] == pytest.approx(expected, rel=1e-15)


def _record_moves(monkeypatch) -> list:
    """Spy on SAEM's kernel steps: a list that gets (proposal - eta, accepted) of every step."""
    import pkpd.saem as saem

    seen = []
    step = saem._Chains.step

    def step_spy(self, proposal, *args):
        d = np.asarray(proposal - self.eta)
        a = step(self, proposal, *args)
        seen.append((d, np.array(a, dtype=bool)))
        return a

    monkeypatch.setattr(saem._Chains, "step", step_spy)
    return seen


class _UnitNormals:
    """A random generator whose standard normal draws are all 1 (the kernels' step sizes become visible in the
    proposals); uniforms and integers from a real generator."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def standard_normal(self, size):
        return np.ones(size)

    def integers(self, *args, **kwargs):
        return self._rng.integers(*args, **kwargs)

    def uniform(self, *args, **kwargs):
        return self._rng.uniform(*args, **kwargs)


def test_the_step_of_each_component_grows_after_an_acceptance_above_the_target_and_shrinks_below(monkeypatch):
    # the one-component random walk moves component c by s3[c] * omega_c^(1/2) * z, s3 starting at 0.5; after each
    # step s3[c] adapts towards the target acceptance rate 0.3 with the full random walk's rule: times 1.1 when the
    # proposals that moved c were accepted more often than 0.3, times 0.9 otherwise (a multiplicative walk that
    # settles where about half of the steps are above the target). With z = 1 every proposal shows its step
    # (run_saem _287: times 2.1 above the target)

    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    sd_om = np.sqrt(np.diag(st.omega(layout.x0)))
    np.testing.assert_allclose(sd_om, np.sqrt([0.6, 0.3]), rtol=1e-12)
    seen = _record_moves(monkeypatch)
    m3 = 6
    run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=0, n_chains=4, kernel_steps=(0, 0, m3)),
             _UnitNormals(0))
    assert len(seen) == m3
    size = np.full(prob.q, 0.5)                   # s3 before the first step
    above = below = 0
    for d, a in seen:
        moved = d != 0
        assert np.all(moved.sum(axis=2) == 1)     # one component per chain and subject
        j = moved.argmax(axis=2)
        for c in range(prob.q):
            sel = j == c
            if not sel.any():
                continue
            np.testing.assert_allclose(d[..., c][sel], size[c] * sd_om[c], rtol=1e-9)
            if a[sel].mean() > 0.3:
                size[c] *= 1.1
                above += 1
            else:
                size[c] *= 0.9
                below += 1
    assert above > 0 and below > 0


def test_censored_records_are_imputed_from_their_truncated_normal_and_the_others_kept():
    # M3: a record below the LLOQ enters the statistics as a draw from N(m, s^2) truncated above at the limit
    # (Samson, Lavielle & Mentre 2006); quantified records keep their residuals. m = 3, s = 1, LLOQ 2: the draws
    # lie below 2 with scipy's truncated normal mean 3 - phi(-1) / Phi(-1) and pass its Kolmogorov-Smirnov test
    # (_impute _1: the censored records kept their values, here 5)
    from scipy import stats

    from pkpd.saem import _impute

    df = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))].copy()
    obs = df["EVID"] == 0
    df["LLOQ"] = np.where(obs, 2.0, np.nan)
    df["BLQ"] = np.where(obs & (df["DV"] < 2.0), 1, 0)
    df.loc[df["BLQ"] == 1, "DV"] = 2.0
    data = read_nonmem(df, dose_unit="mg")
    error = pkpd.Additive(sd=0.7)
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}), {"conc": error},
                                   "laplace", ["ka", "CL", "V"], pkpd.M3(), pkpd.SolverSettings(), None)
    assert prob.cens.sum() >= 5 and (prob.mask & ~prob.cens).sum() > 50
    C = 100
    u = np.full((C, prob.n, prob.J), 5.0)
    m, s = np.full(u.shape, 3.0), np.ones(u.shape)
    out = _impute(prob, [error], u, m, s, np.random.default_rng(3))
    np.testing.assert_array_equal(out[:, ~prob.cens], 5.0)
    draws = out[:, prob.cens].ravel()
    assert np.all(draws <= 2.0)
    truncated = stats.truncnorm(-np.inf, -1.0, loc=3.0, scale=1.0)
    assert truncated.mean() == pytest.approx(3.0 - stats.norm.pdf(-1.0) / stats.norm.cdf(-1.0), rel=1e-12)
    assert abs(draws.mean() - truncated.mean()) < 4 * truncated.std() / math.sqrt(draws.size)
    assert stats.kstest(draws, truncated.cdf).pvalue > 0.01


def test_an_information_that_cannot_be_solved_gives_no_newton_step(monkeypatch):
    # S_H + ridge can be exactly singular (a NaN on S_H's diagonal drops the ridge to 1e-10 beside large entries):
    # np.linalg.solve raises LinAlgError, and the Newton step is then zero: the typical values without IIV stay
    # where they are, the information is still returned and SAEM goes on (_newton_step _201: np.zeros(None), a
    # TypeError)
    st, lik, k_v, x, truth, eta, u = _observations_of_a_larger_v()
    a = 1e20
    with np.errstate(all="ignore"), pytest.raises(np.linalg.LinAlgError):
        singular = np.array([[a, a, 0.0], [a, a, 0.0], [0.0, 0.0, np.nan]])
        np.linalg.solve(singular + 1e-10 * np.eye(3) * max(1.0, np.abs(np.diag(singular)).max()), np.ones(3))

    def singular_solve(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(np.linalg, "solve", singular_solve)
    x_new, S_H = _newton_step(st, lik, x, eta, u, 1.0, None)
    np.testing.assert_array_equal(x_new, x)
    assert x_new is not x
    assert S_H.shape == (1, 1) and S_H[0, 0] > 0


# ====================================================================================================== seed 28
def test_an_annealing_factor_of_one_turns_annealing_off_and_is_accepted():
    # "annealing: largest factor by which a variance may shrink per exploratory iteration (1 = no annealing)",
    # "must be in (0, 1]": 1 (int or float) is kept; 0 and anything above 1 are refused, the whole message compared
    # (SaemSettings.__post_init__ _79: annealing < 1, so 1 was refused)
    for one in (1, 1.0):
        assert SaemSettings(annealing=one).annealing == 1
    for bad in (0, 0.0, 1.0000001, 2):
        with pytest.raises(FitError) as exc:
            SaemSettings(annealing=bad)
        assert str(exc.value) == f"SaemSettings: annealing must be in (0, 1]; got {bad!r}"


def test_a_categorical_factor_is_kept_positive_as_the_gradient_fits_keep_it():
    # CovariateEffect "categorical": theta * value[c], a factor; a factor <= 0 would make the typical value <= 0.
    # SAEM's bounds on the internal vector hold the factor at 1e-6 or above, the bound the gradient fits give it
    # (population_fit: (1e-6, None) for a factor); a factor pushed to -0.5 is clipped there, and the typical CL of
    # the subjects in that category stays positive (_State.__init__ _98: no lower bound for any factor)
    df = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))].copy()
    df["WT"] = np.where(df["ID"] % 2 == 1, 80.0, 60.0)         # two weight classes (the model's one covariate)
    data = read_nonmem(df, dose_unit="mg")
    effect = pkpd.CovariateEffect("CL", "WT", "categorical", {80.0: 1.3})
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}),
                                   {"conc": pkpd.Additive(sd=0.5)}, "focei", ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, (effect,))
    st = _State(prob, layout)
    assert [c.kind for c in layout.effects] == ["factor"]
    k = st.off_eff
    assert st.lower[k] == 1e-6 and st.upper[k] == np.inf
    x = layout.x0.copy()
    x[k] = -0.5
    clipped = st.clip(x)
    assert clipped[k] == 1e-6
    cl = st.typical(clipped)[0][:, layout.model.parameter_names.index("CL")]
    assert np.all(cl > 0)


def test_an_indicator_coefficient_is_kept_above_minus_one_as_the_gradient_fits_keep_it():
    # CovariateEffect "indicator": theta * (1 + value * I), so a coefficient <= -1 makes the typical value of the
    # subjects where the condition holds <= 0. The gradient fits bound it at -1 + 1e-6 (population_fit); SAEM's
    # internal vector has the same bound: a coefficient of -1.5 on V (no IIV, moved by the Newton step) is clipped
    # there and V stays positive for every subject (found beside _State.__init___mutmut_98: SAEM left it unbounded,
    # V = -16 for the 5 subjects under 70 kg)
    df = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))]
    data = read_nonmem(df, dose_unit="mg")
    effect = pkpd.CovariateEffect(parameter="V", kind="indicator", condition="WT < 70", value=0.2)
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}),
                                   {"conc": pkpd.Additive(sd=0.5)}, "focei", ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, (effect,))
    st = _State(prob, layout)
    k = st.off_eff
    assert [c.kind for c in layout.effects] == ["indicator"] and k in st.newton
    assert st.lower[k] == -1.0 + 1e-6 and st.upper[k] == np.inf
    x = layout.x0.copy()
    x[k] = -1.5
    clipped = st.clip(x)
    assert clipped[k] == -1.0 + 1e-6
    v = st.typical(clipped)[0][:, layout.model.parameter_names.index("V")]
    assert np.all(v > 0)


def test_a_combined_error_with_both_parameters_free_moves_to_the_per_group_optimum():
    # convention "sd": sigma = a + b f. Half of the records at f = 1 with residuals +-0.6, half at f = 10 with
    # residuals +-1.5: mean(r^2 / sigma^2 + log sigma^2) is smallest where each group's sigma^2 is its mean r^2,
    # a + b = 0.6 and a + 10 b = 1.5, so a = 0.5 and b = 0.1; with gamma 1 (no earlier statistics) the step puts
    # both there, with gamma 1/2 half way from the old values (_error_step _93, _94, _96: the cv's position in the
    # free parameters looked up as None, by rindex, as "CV": errors)
    old_a, old_b = 0.3, 0.2
    em = pkpd.Combined(sd=old_a, cv=old_b, convention="sd")
    prob, layout, st = _theoph_problem(em)
    u, m, _ = _residuals(prob, 1.0, 1.0)
    high = (np.arange(prob.n)[:, None] + np.zeros(prob.J, dtype=int)) % 2 == 1   # every other subject
    F = np.where(high[None], 10.0, 1.0) * np.ones(u.shape)
    u = u * np.where(high[None], 1.5, 0.6)
    for o in (True, False):
        sel = prob.mask & (high == o)
        assert sel.sum() > 20
        np.testing.assert_allclose(u[:, sel] ** 2, 1.5 ** 2 if o else 0.6 ** 2)
    for gamma in (1.0, 0.5):
        x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, gamma, False, 0.95)
        new = st.errors(x)[0]
        assert new.sd == pytest.approx(old_a + gamma * (0.5 - old_a), rel=1e-4)
        assert new.cv == pytest.approx(old_b + gamma * (0.1 - old_b), rel=1e-4)


def test_the_sensitivity_solves_count_one_per_chain_and_subject():
    # the likelihood's n_solves (SaemRun.n_solves) counts the subjects solved: chains x subjects per call, for the
    # predictions and for their sensitivities alike, the rows the compiled library itself reports solving
    # (_Likelihood.predict_sensitivities _8: chains / subjects)
    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    C = 3
    lik = _Likelihood(prob, layout, C, st.newton_parameters)
    assert lik.fast is not None and prob.n == 12
    eta = np.zeros((C, prob.n, prob.q))
    lik.predict(st.typical(layout.x0), eta)
    assert lik.n_solves == C * prob.n == 36
    lik.predict_sensitivities(st.typical(layout.x0), eta)
    assert lik.n_solves == 2 * C * prob.n == lik.fast.n_solves


def test_the_derivatives_by_a_covariate_coefficient_without_iiv_match_central_differences_of_the_predictions():
    # V has no IIV and a power effect of WT on it: the Newton step moves log V and the exponent, whose typical
    # values are not plain exp(x), so dtheta/dx comes from central differences of the typical values (no solve).
    # The predictions' derivatives dF/dx (compiled sensitivities times dtheta/dx) agree with central differences of
    # the predictions themselves (_prediction_derivatives _44: the lower point's typical values at None)
    from pkpd.saem import _prediction_derivatives

    layout, prob, st, _ = _theoph_with_an_effect_on_v(pkpd.CovariateEffect("V", "WT", "power", 0.5, ref=70))
    assert not st.newton_plain and len(st.newton) == 2
    lik = _Likelihood(prob, layout, 2, st.newton_parameters)
    assert lik.fast is not None
    eta = 0.2 * np.random.default_rng(1).standard_normal((2, prob.n, prob.q))
    x = layout.x0.copy()
    m0, _, dm, dR, F, dF = _prediction_derivatives(st, lik, x, eta, st.errors(x))
    h = 1e-5
    for a, j in enumerate(st.newton):
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        fd = (lik.predict(st.typical(up), eta) - lik.predict(st.typical(down), eta)) / (2 * h)
        sel = np.broadcast_to(prob.mask[None], fd.shape)
        assert np.abs(fd[sel]).max() > 0.1
        np.testing.assert_allclose(dF[..., a][sel], fd[sel], rtol=1e-4, atol=1e-6 * np.abs(fd[sel]).max())
        np.testing.assert_allclose(dm[..., a][sel], fd[sel], rtol=1e-4, atol=1e-6 * np.abs(fd[sel]).max())
        np.testing.assert_array_equal(dR[..., a][sel], 0.0)          # additive error: R does not move
    np.testing.assert_allclose(m0[np.broadcast_to(prob.mask[None], F.shape)],
                               F[np.broadcast_to(prob.mask[None], F.shape)])


# ====================================================================================================== seed 29
def test_the_newton_steps_information_is_averaged_by_stochastic_approximation(monkeypatch):
    # the Newton step's information is a sufficient statistic like the others: S_H_k = S_H_{k-1} + gamma_k (H_k -
    # S_H_{k-1}), H_k the expected information at iteration k, None before the first (so S_H_0 = H_0). A spy on the
    # Newton step checks that each iteration is given the S_H the previous one returned, and that the S_H it returns
    # is that update, H_k from the same step given no earlier information (run_saem _490: None passed at every
    # iteration, so the smoothing phase solved with the last H alone)
    import pkpd.saem as saem

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    newton_step = saem._newton_step
    calls = []

    def newton_spy(st, lik, x, eta, u, gamma, S_H):
        _, H = newton_step(st, lik, x, eta, u, gamma, None)
        x_new, S_H_new = newton_step(st, lik, x, eta, u, gamma, S_H)
        calls.append((gamma, None if S_H is None else S_H.copy(), H, S_H_new.copy()))
        return x_new, S_H_new

    monkeypatch.setattr(saem, "_newton_step", newton_spy)
    run_saem(prob, layout, layout.x0, SaemSettings(exploratory=2, smoothing=3, n_chains=1, kernel_steps=(1, 0, 0)),
             np.random.default_rng(0))
    assert [c[0] for c in calls] == pytest.approx([1.0, 1.0, 1.0, 1 / 2, 1 / 3], rel=1e-15)
    assert calls[0][1] is None
    for k, (gamma, given, H, returned) in enumerate(calls):
        assert H.shape == (1, 1) and H[0, 0] > 0
        if k:
            np.testing.assert_array_equal(given, calls[k - 1][3])
            np.testing.assert_allclose(returned, given + gamma * (H - given), rtol=1e-14)
        else:
            np.testing.assert_array_equal(returned, H)
    # the smoothing phase's information is not the last H alone: the H differ from one iteration to the next
    assert abs(calls[4][3][0, 0] - calls[4][2][0, 0]) > 1e-6 * calls[4][2][0, 0]


class _CountingLinearGauss(_LinearGauss):
    """The linear Gaussian test double, counting the draws of each prediction call (rows of P: draws per subject)."""

    def __init__(self, y: np.ndarray, omega: float):
        super().__init__(y, omega, np.full(y.shape[0], np.inf))
        self.calls = []

    def predict(self, P):
        self.calls.append(P.shape[:2])
        return super().predict(P)


def test_importance_sampling_accepts_ten_draws_and_draws_exactly_that_many():
    # is_samples: "an integer >= 10 or None"; is_samples=M draws exactly M per subject. 10 is the least allowed: it is
    # accepted and 10 draws of each subject are made (one prediction call); 9 is refused, the whole message compared
    # (importance_sampling _9: n_samples < 11, 10 refused)
    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1]])
    prob = _CountingLinearGauss(y, 0.5)
    mode = (y.sum(axis=1) / (4 + 1 / 0.5))[:, None]
    res = importance_sampling(prob, np.zeros((1, 2, 1)), np.array([[0.5]]), [], mode, 10, np.random.default_rng(1))
    assert res.n_samples == 10 and prob.calls == [(10, 2)]
    assert math.isfinite(res.minus2ll) and res.per_subject.shape == (2,)
    for bad in (9, 0, 10.0, True):
        with pytest.raises(FitError) as exc:
            importance_sampling(prob, np.zeros((1, 2, 1)), np.array([[0.5]]), [], mode, bad, np.random.default_rng(1))
        assert str(exc.value) == ("is_samples: must be an integer >= 10 or None (until the Monte-Carlo SE is at most "
                                  f"0.1); got {bad!r}")


def test_importance_sampling_solves_batches_of_twenty_thousand_subject_draws():
    # the draws are solved in batch calls of at most _BATCH = 20000 subject solves: _BATCH // n draws of each of the n
    # subjects per call. One subject and 20000 draws: one call of 20000 draws; two subjects: two calls of 10000;
    # three subjects: 6666, 6666, 6666 and 2 (importance_sampling _94: max(n, 2) in the divisor, so one subject's
    # draws came in two calls of 10000)
    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1], [1.5, 2.0, 0.8, 1.2]])
    for n, expected in ((1, [20000]), (2, [10000, 10000]), (3, [6666, 6666, 6666, 2])):
        prob = _CountingLinearGauss(y[:n], 0.5)
        mode = (y[:n].sum(axis=1) / (4 + 1 / 0.5))[:, None]
        res = importance_sampling(prob, np.zeros((1, n, 1)), np.array([[0.5]]), [], mode, 20000,
                                  np.random.default_rng(1))
        assert res.n_samples == 20000
        assert prob.calls == [(k, n) for k in expected]
        assert all(k * n <= 20000 for k in expected)


# ====================================================================================================== seed 30
def test_the_gaussian_scale_of_a_value_on_its_bound_is_infinite_without_a_warning():
    # log(0) = -inf for a log-normal parameter, logit(0) = -inf and logit(1) = +inf for a logit-normal one, log of a
    # negative value NaN: IEEE results, quietly (numpy's divide / invalid warnings suppressed; _to_gauss _6:
    # errstate(all=None) left numpy's defaults on, a RuntimeWarning)
    import warnings

    from pkpd.saem import _to_gauss

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_to_gauss("lognormal", [0.0, 1.0, math.e]), [-np.inf, 0.0, 1.0])
        np.testing.assert_array_equal(_to_gauss("logitnormal", [0.0, 0.5, 1.0]), [-np.inf, 0.0, np.inf])
        assert np.isnan(_to_gauss("lognormal", [-1.0])).all()
        assert np.isnan(_to_gauss("logitnormal", [1.5])).all()


def test_the_derivatives_by_a_plain_typical_value_without_iiv_are_exact():
    # without covariate effects on it, a Newton parameter's typical value is exp(x) (or x itself), so dF/dx is
    # exactly exp(x) dF/dV: the compiled sensitivity by V times V, no central difference of the typical values
    # (_State.__init__ _50: "in effect_targets", so newton_plain was False with no effect at all and dtheta/dx came
    # from central differences, off by some 1e-11)
    from pkpd.saem import _prediction_derivatives

    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    k_v = layout.theta_names.index("V")
    assert st.newton == [k_v] and layout.theta_log[k_v] and not layout.effects
    assert st.newton_plain
    lik = _Likelihood(prob, layout, 2, st.newton_parameters)
    assert lik.fast is not None
    eta = 0.2 * np.random.default_rng(1).standard_normal((2, prob.n, prob.q))
    x = layout.x0.copy()
    _, _, dm, _, _, dF = _prediction_derivatives(st, lik, x, eta, st.errors(x))
    _, dF_dtheta = lik.predict_sensitivities(st.typical(x), eta)
    c = list(st.newton_parameters).index(layout.model.parameter_names.index("V"))
    expected = dF_dtheta[..., c] * math.exp(x[k_v])
    sel = np.broadcast_to(prob.mask[None], expected.shape)
    assert np.abs(expected[sel]).max() > 0.1
    np.testing.assert_allclose(dF[..., 0][sel], expected[sel], rtol=1e-13, atol=0)
    np.testing.assert_allclose(dm[..., 0][sel], expected[sel], rtol=1e-13, atol=0)    # additive: m = f


def test_saem_solves_each_chain_and_subject_once_per_kernel_step_and_twice_per_update():
    # n_solves counts chains x subjects per batch call: one call at the start, then per iteration one per kernel
    # step, one for the Newton step's sensitivities and one for the predictions at the updated typical values; a
    # chain is solved again only where its likelihood is not finite (run_saem _521: the restart's solve ran at every
    # iteration, restarting nothing)
    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    C, K = 2, 3
    for steps in ((1, 0, 0), (1, 2, 1)):
        run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=K - 1, n_chains=C,
                                                             kernel_steps=steps), np.random.default_rng(0))
        assert run.trace.shape[0] == K + 1
        assert run.n_solves == C * prob.n * (1 + K * (sum(steps) + 2))


def test_a_combined_error_whose_objective_cannot_be_evaluated_stays_where_it_was_without_a_warning():
    # the combined error's update minimises mean(r^2 / sigma^2 + log sigma^2); a value that is not finite counts as
    # worse than any finite one (1e300). Residuals of 1e200 (their squares overflow) make it +inf at every (a, b), a
    # failed prediction (NaN) makes it NaN at every (a, b): no value is better than another, the combined error keeps
    # its values and the optimiser is never handed an infinity (it warns "invalid value encountered in subtract")
    # (_error_step _126: "... or True", the inf returned instead of 1e300)
    import warnings

    em = pkpd.Combined(sd=0.1, cv=0.1, convention="variance", fixed=("cv",))
    prob, layout, st = _theoph_problem(em)
    u, m, F = _residuals(prob, 0.5, 2.0)
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, False, 0.95)
    # with finite residuals it moves to the optimum, a^2 + (b f)^2 = mean r^2 = 0.25 (the seed-23 test)
    assert st.errors(x)[0].sd == pytest.approx(math.sqrt(0.25 - 0.2 ** 2), rel=1e-4)
    huge = _residuals(prob, 1e200, 2.0)
    failed = F.copy()
    failed[1, 0, int(np.flatnonzero(prob.mask[0])[0])] = np.nan
    for uu, mm, FF in (huge, (u, m, failed)):
        with np.errstate(all="ignore"):
            assert not np.isfinite(np.mean((uu - mm)[:, prob.mask] ** 2 / (0.01 + (0.1 * FF[:, prob.mask]) ** 2)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), uu, mm, FF, {}, 1.0, False, 0.95)
        new = st.errors(x)[0]
        assert (new.sd, new.cv) == (pytest.approx(0.1, rel=1e-12), 0.1)


def test_a_newton_step_leaves_out_only_the_records_whose_derivatives_cannot_be_evaluated(monkeypatch):
    # the Newton step (Fisher scoring, as in the seed-26 test) sums over the records whose residual and derivatives
    # are finite; a record of chain 1, subject 0 whose derivatives are NaN is left out and the others still count:
    # the step is score / information over the remaining records, by central differences of the Gaussian
    # complete-data log-likelihood (_newton_step _50: np.all over every axis of dR, so one NaN left out every record
    # and the step was 0)
    import pkpd.saem as saem

    error = pkpd.Proportional(cv=0.2)
    prob, st, lik, eta, x, u, k_v = _newton_problem(error)
    j = int(np.flatnonzero(prob.mask[0])[0])
    derivatives = saem._prediction_derivatives

    def failing_record(*args):
        m0, s0, dm, dR, F, dF = derivatives(*args)
        dm, dR = dm.copy(), dR.copy()
        dm[1, 0, j], dR[1, 0, j] = np.nan, np.nan
        return m0, s0, dm, dR, F, dF

    monkeypatch.setattr(saem, "_prediction_derivatives", failing_record)
    keep = np.broadcast_to(prob.mask[None], (2,) + prob.mask.shape).copy()
    keep[1, 0, j] = False
    expected = _fisher_scoring_step(st, lik, eta, x, u, k_v, lambda f: (error.cv * f) ** 2, keep)
    assert 0.01 < abs(expected) < 0.5
    x_new, _ = _newton_step(st, lik, x, eta, u, 1.0, None)
    assert x_new[k_v] - x[k_v] == pytest.approx(expected, rel=1e-5)


def test_the_central_differences_of_the_predictions_count_their_solves():
    # without the compiled library, the Newton step's derivatives come from central differences of the predictions:
    # 1 + 2p rows of typical values (p Newton parameters), each solved for every chain and subject, so n_solves
    # grows by (1 + 2p) C n, the subject rows the engine's predict is handed (_prediction_differences _34: "-=",
    # the count went down)
    from pkpd.saem import _prediction_differences

    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    C = 2
    lik = _Likelihood(prob, layout, C, st.newton_parameters)
    lik.fast = None
    rows = []
    predict = prob.predict

    def predict_spy(P):
        rows.append(P.shape[0] * P.shape[1])
        return predict(P)

    prob.predict = predict_spy
    try:
        eta = np.zeros((C, prob.n, prob.q))
        x = layout.x0.copy()
        m0, _, dm, _, _, _ = _prediction_differences(st, lik, x, eta, st.errors(x))
    finally:
        del prob.predict
    p = len(st.newton)
    assert p == 1 and prob.n == 12
    assert lik.n_solves == (1 + 2 * p) * C * prob.n == sum(rows) == 72
    assert np.all(np.isfinite(dm[np.broadcast_to(prob.mask[None], m0.shape)]))


def test_importance_sampling_stops_when_the_se_is_exactly_the_target(monkeypatch):
    # is_samples=None: "until the Monte-Carlo SE of -2 log L is at most 0.1": an SE of exactly 0.1 after the first
    # 1000 draws stops there; one just above it asks for 1.1 M (s / 0.1)^2 rounded up to a multiple of 100, 1200 in
    # all (a spy gives the SE) (importance_sampling _238: "se < SE_TARGET", so an SE of exactly 0.1 drew more)
    import pkpd.importance as importance

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1]])
    mode = (y.sum(axis=1) / (4 + 1 / 0.5))[:, None]
    for first, expected in ((0.1, 1000), (0.1 * (1 + 1e-9), 1200)):
        given = [first, 0.05]
        monkeypatch.setattr(importance, "_standard_error", lambda logw, given=given: given.pop(0))
        prob = _CountingLinearGauss(y, 0.5)
        res = importance.importance_sampling(prob, np.zeros((1, 2, 1)), np.array([[0.5]]), [], mode, None,
                                             np.random.default_rng(1))
        assert res.n_samples == expected
        assert sum(k for k, _ in prob.calls) == expected


def test_a_combined_error_fitted_to_residuals_that_are_all_zero_heads_to_zero_without_failing():
    # residuals that are all exactly 0 (data equal to the predictions) make the combined error's objective
    # mean(log sigma^2), lowest as sigma -> 0: with gamma = 1 (the first smoothing iteration) both values go to the
    # floor, the additive branch's smallest SD (sqrt(1e-300)), and stay positive, where exp of Nelder-Mead's optimum
    # underflowed to 0 and log(0) raised "math domain error" (a defect found with the seed-30 sample, fixed)
    em = pkpd.Combined(sd=0.1, cv=0.1, convention="variance")
    prob, layout, st = _theoph_problem(em)
    u, m, F = _residuals(prob, 0.0, 2.0)
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, False, 0.95)
    new = st.errors(x)[0]
    assert 0 < new.sd <= 1e-149 and 0 < new.cv <= 1e-149
    assert np.all(np.isfinite(x))
    # the additive error's own floor is the same value
    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.1))
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, False, 0.95)
    assert st.errors(x)[0].sd == pytest.approx(1e-150, rel=1e-12)


# ====================================================================================================== seed 31
class _RecordingLinearGauss(_LinearGauss):
    """The linear Gaussian test double, keeping every draw of eta it is asked to solve ((k, n) per call)."""

    def __init__(self, y: np.ndarray, omega: float):
        super().__init__(y, omega, np.full(y.shape[0], np.inf))
        self.draws = []

    def predict(self, P):
        self.draws.append(np.array(P[..., 0]))
        return super().predict(P)


def test_importance_sampling_reports_kishs_effective_sample_size_of_each_subjects_weights():
    # ess: "effective sample size of each subject's weights", Kish's (sum w)^2 / sum w^2. The test computes the weights
    # of the draws the double was asked to solve from the densities written here: the joint density of the linear
    # Gaussian model, exp(-(sum_j (y_ij - eta)^2 + eta^2 / omega) / 2), over the proposal's, a t with 5 degrees of
    # freedom centred on the mode with scale 1 / sqrt(H), H = J + 1 / omega: (1 + H (eta - mode)^2 / 5)^-3 (constants
    # cancel in the ratio). Between 1 and M, lower with the proposal off the mode (importance_sampling _283: times
    # sum w^2 in place of over it)
    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1], [1.5, 2.0, 0.8, 1.2]])
    omega, M = 0.5, 2000
    H = 4 + 1 / omega
    centred = (y.sum(axis=1) / H)[:, None]
    kish = {}
    for shift in (0.0, 1.5):
        prob = _RecordingLinearGauss(y, omega)
        mode = centred + shift / math.sqrt(H)
        res = importance_sampling(prob, np.zeros((1, 3, 1)), np.array([[omega]]), [], mode, M,
                                  np.random.default_rng(1))
        eta = np.concatenate(prob.draws)                                  # (M, n)
        assert eta.shape == (M, 3)
        log_joint = -0.5 * (((y[None] - eta[..., None]) ** 2).sum(axis=2) + eta ** 2 / omega)
        log_prop = -3.0 * np.log1p(H * (eta - mode[:, 0]) ** 2 / 5.0)
        lw = log_joint - log_prop
        w = np.exp(lw - lw.max(axis=0))
        kish[shift] = w.sum(axis=0) ** 2 / (w ** 2).sum(axis=0)
        assert res.ess.shape == (3,)
        np.testing.assert_allclose(res.ess, kish[shift], rtol=1e-9)
        assert np.all((1 <= res.ess) & (res.ess <= M))
    assert np.all(kish[1.5] < kish[0.0])



# ====================================================================================================== seed 32
def test_every_categorical_factor_is_kept_positive_and_the_residual_error_keeps_its_value():
    # two categorical factors (WT class 80 kg: CL times 1.3, V times 0.8): each factor's lower bound is 1e-6 (a
    # factor <= 0 makes the typical value <= 0), the second one's as the first one's, and no other slot is bounded:
    # clipping the starting vector (run_saem's first step) keeps the additive SD at its 0.5 and puts a V factor pushed
    # to -0.5 at 1e-6, so V stays positive (_State.__init__ _101: "off_eff - e", the second factor unbounded and
    # the slot before the effects, the residual SD's log, bounded below at 1e-6: SD 0.5 became exp(1e-6))
    df = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))].copy()
    df["WT"] = np.where(df["ID"] % 2 == 1, 80.0, 60.0)
    data = read_nonmem(df, dose_unit="mg")
    effects = (pkpd.CovariateEffect("CL", "WT", "categorical", {80.0: 1.3}),
               pkpd.CovariateEffect("V", "WT", "categorical", {80.0: 0.8}))
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}),
                                   {"conc": pkpd.Additive(sd=0.5)}, "focei", ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, effects)
    st = _State(prob, layout)
    assert [(c.parameter, c.kind) for c in layout.effects] == [("CL", "factor"), ("V", "factor")]
    k_cl, k_v = st.off_eff, st.off_eff + 1
    assert st.lower[k_cl] == 1e-6 and st.lower[k_v] == 1e-6
    assert np.all(st.lower[st.nt:st.off_eff] == -np.inf) and np.all(st.upper[st.nt:] == np.inf)
    assert st.errors(st.clip(layout.x0.copy()))[0].sd == 0.5
    x = layout.x0.copy()
    x[k_v] = -0.5
    clipped = st.clip(x)
    assert clipped[k_v] == 1e-6 and clipped[k_cl] == 1.3
    assert st.errors(clipped)[0].sd == 0.5
    v = st.typical(clipped)[0][:, layout.model.parameter_names.index("V")]
    assert np.all(v > 0)


def test_the_one_component_kernels_acceptance_rate_counts_every_iteration(monkeypatch):
    # SaemRun.acceptance["one component"]: accepted proposals over proposals of the one-component random walk, summed
    # over all its steps of all iterations (a spy on the chains' step counts them: 2 iterations x 3 steps, the only
    # kernel on); the other two kernels proposed nothing: NaN (run_saem _269: "=" for "+=", the accepted count of the
    # last step only over every proposal)

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    moves = _record_moves(monkeypatch)
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=1, n_chains=2,
                                                         kernel_steps=(0, 0, 3)), np.random.default_rng(0))
    seen = [a for _, a in moves]
    assert len(seen) == 2 * 3
    accepted = sum(int(a.sum()) for a in seen)
    proposed = sum(a.size for a in seen)
    assert int(seen[-1].sum()) < accepted < proposed
    assert run.acceptance["one component"] == accepted / proposed
    assert math.isnan(run.acceptance["prior"]) and math.isnan(run.acceptance["random walk"])


def test_the_importance_samplings_monte_carlo_se_is_the_delta_methods_and_infinite_without_a_finite_weight():
    # _standard_error: SE of -2 sum_i log(mean_i w) by the delta method, 2 sqrt(sum_i var_i(w) / (M mean_i(w)^2)),
    # unchanged by a common factor of a subject's weights. Weights 1, 2, 3 (times e^7): var 1 (ddof 1), mean 2, M 3,
    # so 1 / 12 and SE 2 / sqrt(12) = 1 / sqrt(3); a subject with equal weights adds 0. A subject whose weights are
    # all 0 (log -inf) has no estimate: SE infinite (_standard_error _4: "if np.all(np.isfinite(top))", every finite
    # SE was infinite, and the all -inf subject gave NaN)
    from pkpd.importance import _standard_error

    logw = np.stack([np.log([1.0, 2.0, 3.0]) + 7.0, np.full(3, -3.0)], axis=1)      # (M, n) = (3, 2)
    assert _standard_error(logw) == pytest.approx(1 / math.sqrt(3), rel=1e-14)
    assert _standard_error(logw[:, :1]) == pytest.approx(2 / math.sqrt(12), rel=1e-14)
    logw[:, 1] = -np.inf
    assert _standard_error(logw) == math.inf


# ====================================================================================================== seed 33
def test_kernel_steps_that_are_floats_booleans_or_strings_are_refused():
    # "three integers >= 0, not all 0": 2.0 (a float), True (a bool, though a subclass of int) and "2" are refused,
    # the whole message compared (SaemSettings.__post_init__ _60: "and" for the first "or", so any value not below 0
    # passed: 2.0 and True were kept as kernel steps, "2" failed with a TypeError of "<")
    for bad in ((2.0, 2, 2), (2, True, 2), (2, 2, "2")):
        with pytest.raises(FitError) as exc:
            SaemSettings(kernel_steps=bad)
        assert str(exc.value) == f"SaemSettings: kernel_steps must be three integers >= 0, not all 0; got {bad!r}"


def test_a_drift_of_exactly_the_floor_counts_as_settled():
    # exploration_settled: the phase has settled when |B - A| <= max(s, 0.005) for every parameter, the bound
    # included (a drift of 0.5 % counts as settled whatever the noise). Two windows of 2: A = 0 and B = 0.005 exactly
    # (0.005 + 0.005 and its half are exact in binary), s = 0.0025 < 0.005: the drift is the floor itself, settled;
    # one ulp more is not; a second parameter that does not move changes neither (_24: "<", the bound not settled)
    from pkpd.saem import exploration_settled

    floor = 0.005
    trace = np.array([[0.0, 1.0], [0.0, 1.0], [floor, 1.0], [floor, 1.0]])
    assert np.abs(trace[2:, 0].mean() - trace[:2, 0].mean()) == floor and trace[:, 0].std() < floor
    assert exploration_settled(trace, 2) is True
    trace[2:, 0] = np.nextafter(floor, 1.0)
    assert exploration_settled(trace, 2) is False


class _RecordedNormals:
    """A real random generator that records each standard normal draw with the size asked for."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)
        self.normals = []

    def standard_normal(self, size=None):
        z = self._rng.standard_normal(size)
        self.normals.append((size, np.array(z)))
        return z

    def integers(self, *args, **kwargs):
        return self._rng.integers(*args, **kwargs)

    def uniform(self, *args, **kwargs):
        return self._rng.uniform(*args, **kwargs)


def test_the_full_random_walk_proposes_eta_plus_its_step_times_the_sd_times_an_independent_normal(monkeypatch):
    # the second kernel's proposal is eta* = eta + s2 omega^(1/2) z (element-wise: omega^(1/2) the SDs of Omega's
    # diagonal), z ~ N(0, I) drawn independently for every chain, subject and component, s2 starting at 0.5 and
    # multiplied by 1.1 after a step accepted more often than the target 0.3, by 0.9 otherwise. With the normal draws
    # recorded (2 steps, the only kernel on), every proposal's move is that of its own draw (run_saem _213: eta - s2
    # omega^(1/2) z; _214: s2 omega^(1/2) / z; _217: one scalar z for every chain, subject and component)

    prob, layout, st = _theoph_problem(pkpd.Additive(sd=0.5))
    sd_om = np.sqrt(np.diag(st.omega(layout.x0)))
    np.testing.assert_allclose(sd_om, np.sqrt([0.6, 0.3]), rtol=1e-12)
    seen = _record_moves(monkeypatch)
    rng = _RecordedNormals(0)
    C = 3
    run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=0, n_chains=C, kernel_steps=(0, 2, 0)),
             rng)
    assert len(seen) == 2 and len(rng.normals) == 2
    s2 = 0.5
    for (d, a), (size, z) in zip(seen, rng.normals):
        assert size == (C, prob.n, prob.q) and z.shape == (C, prob.n, prob.q)
        np.testing.assert_allclose(d, s2 * sd_om * z, rtol=1e-9, atol=1e-12)
        s2 *= 1.1 if a.mean() > 0.3 else 0.9


def test_each_outputs_error_keeps_its_own_stochastic_approximation():
    # two outputs, PGE2 and IL-10, each with a free additive sd: each output's statistic mean(r^2) is averaged over
    # the iterations on its own, S <- S + gamma (mean r^2 - S). Residuals of size 0.5 (PGE2) and 2 (IL-10) at
    # gamma 1, then of size 1 at gamma 1/2: PGE2's sd is sqrt(0.25 + (1 - 0.25) / 2) = sqrt(0.625), IL-10's
    # sqrt(4 + (1 - 4) / 2) = sqrt(2.5) (_error_step _39: one key for every output, so PGE2's average started from
    # IL-10's 4: sqrt(2.5) for both)
    model = pkpd.load_model("msc_salvadori")
    rows = []
    for i in range(2):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=2e6, EVID=1, CMT="iv", MDV=1, DVID=".", WT=70.0))
        for t in (4.0, 24.0, 72.0):
            for o in ("PGE2", "IL10"):
                rows.append(dict(ID=i + 1, TIME=t, DV=1.0, AMT=0.0, EVID=0, CMT=".", MDV=0, DVID=o, WT=70.0))
    data = read_nonmem(pd.DataFrame(rows), model, dose_unit="cell/kg")
    error = {"PGE2": pkpd.Additive(sd=0.1), "IL10": pkpd.Additive(sd=0.1)}
    _, _, _, layout, prob = _setup(model, data, pkpd.IIV({"k_c": 0.2}), error, "focei", ["k_c"], None,
                                   pkpd.SolverSettings(), None)
    st = _State(prob, layout)
    assert set(prob.which[prob.mask].tolist()) == {0, 1}

    def residuals(size_pge2, size_il10):
        u, m, F = _residuals(prob, 1.0, 2.0)
        return u * np.where(prob.which == 0, size_pge2, size_il10)[None], m, F

    x, S = _error_step(st, layout.x0.copy(), st.errors(layout.x0), *residuals(0.5, 2.0), {}, 1.0, False, 0.95)
    pge2, il10 = st.errors(x)
    assert pge2.sd == pytest.approx(0.5, rel=1e-12) and il10.sd == pytest.approx(2.0, rel=1e-12)
    x, S = _error_step(st, x, st.errors(x), *residuals(1.0, 1.0), S, 0.5, False, 0.95)
    pge2, il10 = st.errors(x)
    assert pge2.sd == pytest.approx(math.sqrt(0.625), rel=1e-12)
    assert il10.sd == pytest.approx(math.sqrt(2.5), rel=1e-12)


def test_numpy_integers_are_integers_for_the_chains_and_kernel_steps_too():
    # a defect found judging seed 33: exploratory, smoothing, window and max_exploratory accept NumPy integers, but
    # n_chains and kernel_steps refused them with a message that contradicts itself ("n_chains must be a positive
    # integer or None; got np.int64(3)"). Now accepted, the kernel steps kept as Python ints, and a run uses them
    settings = SaemSettings(exploratory=1, smoothing=1, n_chains=np.int64(3), kernel_steps=np.array([1, 2, 0]))
    assert settings.n_chains == 3
    assert settings.kernel_steps == (1, 2, 0) and all(type(k) is int for k in settings.kernel_steps)
    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    run = run_saem(prob, layout, layout.x0, settings, np.random.default_rng(0))
    assert run.n_chains == 3 and run.eta.shape == (3, prob.n, prob.q)
    assert math.isnan(run.acceptance["one component"]) and 0 < run.acceptance["random walk"] < 1
    for bad in (np.float64(2.0), np.bool_(True), np.int64(0), np.int64(-1)):
        with pytest.raises(FitError) as exc:
            SaemSettings(n_chains=bad)
        assert str(exc.value) == f"SaemSettings: n_chains must be a positive integer or None; got {bad!r}"
    for bad in ((np.float64(2.0), 2, 2), (2, np.bool_(True), 2), (2, 2, np.int64(-1))):
        with pytest.raises(FitError) as exc:
            SaemSettings(kernel_steps=bad)
        assert str(exc.value) == f"SaemSettings: kernel_steps must be three integers >= 0, not all 0; got {bad!r}"


# ====================================================================================================== seed 34
def test_the_iov_variance_shrinks_by_at_most_the_annealing_factor_per_exploratory_iteration():
    # simulated annealing: in an exploratory iteration a variance may shrink by at most the factor `annealing`, the
    # inter-occasion variance pi (internal value log sqrt(pi)) too. IOV on CL of variance 4 (SD 2), one exploratory
    # iteration of two full random-walk steps from eta = kappa = 0 (steps of SD 0.5 * 2 = 1): the kappas' mean square,
    # checked, is under the floor, so pi is exactly annealing * 4 (3.8 at 0.95, 2 at 0.5) (run_saem _463: the old
    # variance as exp(3 x) = SD^3 = 8, so 7.6 and 4: an IOV variance that grew instead of shrinking)
    table = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))]
    table = table.assign(OCC=np.where(table["TIME"] < 5.0, 1, 2))
    data = read_nonmem(table, dose_unit="mg")
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}),
                                   {"conc": pkpd.Additive(sd=0.5)}, "focei", ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, iov=pkpd.IOV({"CL": 4.0}))
    st = _State(prob, layout)
    assert layout.iov_names and math.exp(2 * layout.x0[st.off_iov]) == pytest.approx(4.0, rel=1e-12)
    for annealing in (0.95, 0.5):
        settings = SaemSettings(exploratory=1, smoothing=0, n_chains=2, kernel_steps=(0, 2, 0), annealing=annealing)
        run = run_saem(prob, layout, layout.x0, settings, np.random.default_rng(1))
        kappa = run.eta[..., prob.q_iiv:]
        assert kappa.shape == (2, prob.n, 2) and np.any(kappa != 0) and np.mean(kappa ** 2) < 4.0 * annealing
        assert math.exp(2 * run.x[st.off_iov]) == pytest.approx(4.0 * annealing, rel=1e-12)


# ====================================================================================================== seed 35
def test_a_float32_trace_is_judged_in_double_precision():
    # exploration_settled converts the trace to float: a float32 trace (two constant windows of the default 50,
    # 100 then the float32 just above 100.005) is judged on the exact drift of its values, which double precision
    # holds exactly: B - A = 0.0050048828125 > the floor 0.005 with s = half that, so not settled (exploration_settled
    # _3: dtype=None kept float32, whose window means summed in single precision came out 0.0049973 apart: settled)
    from pkpd.saem import exploration_settled

    a = np.float32(100.0)
    b = np.nextafter(np.float32(100.005), np.float32(np.inf))
    assert float(b) - float(a) == 0.0050048828125                  # exact: both are multiples of 2^-17
    trace = np.concatenate([np.full(50, a), np.full(50, b)]).astype(np.float32)[:, None]
    assert trace.dtype == np.float32
    assert exploration_settled(trace, 50) is False
    assert exploration_settled(trace.astype(float), 50) is False
    # the same trace with the second window at the float32 just below 100.005 (a drift under the floor): settled
    trace[50:] = np.nextafter(b, np.float32(0.0))
    assert float(trace[50, 0]) - 100.0 < 0.005 and exploration_settled(trace, 50) is True


def test_the_mu_step_of_a_normal_parameter_without_covariate_effects_is_the_mean_on_its_natural_scale():
    # without covariate effects on parameters with IIV, the mu step is closed-form: a typical value is the mean of
    # the subjects' Gaussian-scale statistics S1, back-transformed: for log-normal TVCL exp(mean log) stored as its
    # log, for normal BETA (bounds [-3, 3]: estimated on its natural scale) the mean itself, 0.75, and -0.5 when
    # the statistics are negative (_mu_step _16: `or True` stored log(0.75) = -0.288 for BETA, and failed with
    # 'math domain error' for -0.5)
    model = pkpd.load_model(DATA / "models" / "iv_allometric.toml")
    rows = []
    for i, wt in enumerate((40.0, 60.0, 80.0, 100.0)):
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan, "WT": wt})
        for t in (1.0, 4.0, 12.0):
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": 3.0 * math.exp(-0.1 * t), "WT": wt})
    iiv = pkpd.IIV({"TVCL": 0.09, "BETA": 0.04}, distribution={"TVCL": "lognormal", "BETA": "normal"})
    _, _, _, layout, prob = _setup(model, pd.DataFrame(rows), iiv, {"conc": pkpd.Proportional(cv=0.1)}, "focei",
                                   ["TVCL", "BETA", "V"], None, pkpd.SolverSettings(), None)
    st = _State(prob, layout)
    k_cl, k_beta = layout.theta_names.index("TVCL"), layout.theta_names.index("BETA")
    assert not st.effects_iiv and sorted(st.mu_theta) == sorted([k_cl, k_beta])
    assert layout.theta_log[k_cl] and not layout.theta_log[k_beta]
    j_cl, j_beta = prob.iiv.names.index("TVCL"), prob.iiv.names.index("BETA")
    for beta in ([0.5, 0.7, 0.8, 1.0], [-1.0, -0.5, -0.25, -0.25]):
        S1 = np.zeros((prob.n, prob.q_iiv))
        S1[:, j_cl] = np.log([2.0, 3.0, 4.5, 1.0])                  # geometric mean (27)^(1/4)
        S1[:, j_beta] = beta
        x = _mu_step(st, layout.x0.copy(), S1)
        assert x[k_beta] == pytest.approx(sum(beta) / 4, rel=1e-12)
        assert math.exp(x[k_cl]) == pytest.approx(27.0 ** 0.25, rel=1e-12)


class _UnbalancedLinearGauss(_LinearGauss):
    """_LinearGauss with records that are padding (mask False) or censored below ``loq`` (M3: the probability
    Phi(loq - eta), no log 2 pi)."""

    def __init__(self, y, omega, mask, cens, loq):
        super().__init__(y, omega, np.full(y.shape[0], np.inf))
        self.mask, self.cens, self.loq = mask, cens, loq

    def _objective_at(self, F, eta, errs, om_inv):
        from scipy import stats

        quant = self.mask & ~self.cens
        sq = np.where(quant[None], (self.y[None] - F) ** 2, 0.0)
        cens = np.where(self.cens[None], -2 * stats.norm.logcdf(self.loq - F), 0.0)
        return np.sum(sq + cens, axis=2)


def test_importance_sampling_counts_log_2_pi_for_quantified_records_only():
    # -2 log L includes log 2 pi per quantified record, none for a censored (M3) record or the padding of a subject
    # with fewer records. Linear Gaussian model y_ij = eta_i + eps_ij (omega 0.5, sigma 1): subject 1 has 4 records
    # (-2 log of a 4-variate normal, covariance I + omega), subject 2 three and one padding (3-variate), subject 3
    # three and one below LOQ 0 (the integral of its 3-variate density times Phi(0 - eta) over eta, by quadrature);
    # 10 quantified records in all, so the objective is -2 log L - 10 log 2 pi (importance_sampling _80: `|` for `&`
    # counted the padding and the censored record too: -2 log L came out 2 log 2 pi = 3.68 too large)
    from scipy import integrate, stats

    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, 0.0], [1.5, 2.0, 0.8, -0.3]])
    mask = np.array([[True] * 4, [True, True, True, False], [True] * 4])
    cens = np.array([[False] * 4, [False] * 4, [False, False, False, True]])
    omega = 0.5
    exact = [-2 * stats.multivariate_normal(np.zeros(4), np.eye(4) + omega).logpdf(y[0]),
             -2 * stats.multivariate_normal(np.zeros(3), np.eye(3) + omega).logpdf(y[1, :3])]
    joint, _ = integrate.quad(lambda e: (np.prod(stats.norm.pdf(y[2, :3] - e)) * stats.norm.cdf(0.0 - e)
                                         * stats.norm.pdf(e, scale=math.sqrt(omega))), -np.inf, np.inf,
                              epsabs=0.0, epsrel=1e-12)
    exact.append(-2 * math.log(joint))
    mode = np.array([y[0].sum() / 6, y[1, :3].sum() / 5, y[2, :3].sum() / 5])
    prob = _UnbalancedLinearGauss(y, omega, mask, cens, 0.0)
    res = importance_sampling(prob, np.zeros((1, 3, 1)), np.array([[omega]]), [], mode[:, None], 4000,
                              np.random.default_rng(1))
    assert 0 < res.se < 0.1
    assert abs(res.minus2ll - sum(exact)) < 4 * res.se
    np.testing.assert_allclose(res.per_subject, exact, atol=4 * res.se)
    assert res.objective == pytest.approx(res.minus2ll - 10 * math.log(2 * math.pi), abs=1e-9)


# ====================================================================================================== seed 36
def _time_to_event_likelihood(eta):
    """endpoints_exposure.toml without a dose: hazard h0 e^eta (h0 = 0.01 1/h, IIV on h0), subject 1's event at 24 h,
    subject 2 censored at 48 h; the _Likelihood, and the predictions and their derivatives by eta at ``eta``
    (C, 2, 1)."""
    model = pkpd.load_model(DATA / "models" / "endpoints_exposure.toml")
    data = pd.DataFrame([(1, 24.0, 1, "event"), (2, 48.0, 0, "event")], columns=["ID", "TIME", "DV", "DVID"])
    *_, layout, prob = _setup(model, data, pkpd.IIV({"h0": 0.1}), None, "laplace", None, None, None, None)
    X = layout.x0[None]
    theta, _, _ = layout.unpack(X)
    F, dF = prob.predict_grad(layout.subject_theta(X, theta), eta)
    return _Likelihood(prob, layout, eta.shape[0]), F, dF


def test_the_endpoint_score_and_information_are_those_of_the_time_to_event_likelihood():
    # -2 log L of an event at t is 2 (dH - log h), of a censoring 2 dH (dH = H(t) - H(0) = h t for a constant hazard
    # h = 0.01 e^eta): by eta (d dH = dH, d log h = 1) the score is 1 - dH for an event, -dH for a censoring, and the
    # expected information (that of a Poisson count of mean dH) dH^2 / dH = dH. Chain 1 at eta = 0 (dH 0.24 and
    # 0.48), chain 2 at eta = log 2 (0.48 and 0.96): score 0.76 - 0.48 + 0.52 - 0.96 = -0.16, information
    # 0.24 + 0.48 + 0.48 + 0.96 = 2.16, summed over chains and subjects (endpoint_score _46: np.where(None, ...)
    # returned an information of 0: a Newton step blind to the endpoint records' curvature)
    lik, F, dF = _time_to_event_likelihood(np.array([[[0.0], [0.0]], [[math.log(2.0)], [math.log(2.0)]]]))
    np.testing.assert_allclose(F[..., 0], [[0.24, 0.48], [0.48, 0.96]], rtol=1e-8)
    score, info = lik.endpoint_score(F, dF)
    assert score.shape == (1,) and info.shape == (1, 1)
    assert score[0] == pytest.approx(-0.16, rel=1e-7, abs=1e-9)
    assert info[0, 0] == pytest.approx(2.16, rel=1e-7)


def test_a_chain_and_subject_whose_endpoint_information_is_not_finite_add_nothing_to_the_score_and_information():
    # the same two subjects and chains; in chain 1, subject 1's derivative of H(t) is 1e200 (a sensitivity that blew
    # up): its half gradient 1e200 is finite, its information (1e200)^2 / 0.24 is not, so that chain and subject add
    # nothing, to the score nor to the information; the other three add theirs: score -0.48 + 0.52 - 0.96 = -0.92,
    # information 0.48 + 0.48 + 0.96 = 1.92 (endpoint_score _16: `|` for `&` kept it, an infinite information and a
    # score of -1e200; _27: np.all(np.isfinite(info)) over every axis dropped every chain and subject: 0 and 0)
    lik, F, dF = _time_to_event_likelihood(np.array([[[0.0], [0.0]], [[math.log(2.0)], [math.log(2.0)]]]))
    dF = dF.copy()
    dF[0, 0, 0] = 1e200
    _, half_grad, info_terms = lik.prob.endpoint_terms(F, dF)
    assert np.isfinite(half_grad[0, 0]).all() and not np.isfinite(info_terms[0, 0]).all()
    score, info = lik.endpoint_score(F, dF)
    assert score[0] == pytest.approx(-0.92, rel=1e-7)
    assert info[0, 0] == pytest.approx(1.92, rel=1e-7)


def test_the_plain_objective_counts_each_output_with_its_own_error_and_no_padding():
    # mixed_units.toml: A(0) = 10 mg, input 0.5 mg/h, loss 0.1 1/h, V 1 L, baseline 1 mg/L, so conc = 6 + 5 e^(-0.1 t)
    # mg/L and conc_ng the same in ng/mL (x 1000). Subject 1 has three conc records (additive SD 0.5) and two conc_ng
    # records (proportional CV 0.1), subject 2 two conc records and three columns of padding. The objective at eta = 0
    # is sum (y - f)^2 / R + log R over the quantified records only, R = 0.25 for conc, (0.1 f)^2 for conc_ng
    # (_quantified_objective _6: `|` for `&` gave every record the last output's proportional error and counted
    # subject 2's padding)
    model = pkpd.load_model(DATA / "models" / "mixed_units.toml")
    rows = [(1, 0.0, 10.0, "conc"), (1, 0.0, 12000.0, "conc_ng"), (1, 2.0, 10.5, "conc"), (1, 4.0, 9.0, "conc"),
            (1, 8.0, 8000.0, "conc_ng"), (2, 0.0, 11.5, "conc"), (2, 6.0, 8.5, "conc")]
    data = pd.DataFrame(rows, columns=["ID", "TIME", "DV", "DVID"])
    error = {"conc": pkpd.Additive(sd=0.5), "conc_ng": pkpd.Proportional(cv=0.1)}
    _, _, _, layout, prob = _setup(model, data, pkpd.IIV({"k": 0.1}), error, "focei", None, None,
                                   pkpd.SolverSettings(), None)
    st = _State(prob, layout)
    lik = _Likelihood(prob, layout, 1)
    assert lik.plain and prob.J == 5 and prob.mask.sum() == 7
    expected, F = [], np.ones((1, 2, 5))
    for i in (1, 2):
        total = 0.0
        for j, (_, t, y, output) in enumerate(r for r in rows if r[0] == i):
            f = (6.0 + 5.0 * math.exp(-0.1 * t)) * (1000.0 if output == "conc_ng" else 1.0)
            F[0, i - 1, j] = f
            R = 0.25 if output == "conc" else (0.1 * f) ** 2
            total += (y - f) ** 2 / R + math.log(R)
        expected.append(total)
    predicted = lik.predict(st.typical(layout.x0), np.zeros((1, 2, prob.q)))
    np.testing.assert_allclose(predicted[:, prob.mask], F[:, prob.mask], rtol=1e-6)
    np.testing.assert_allclose(lik.objective(F, st.errors(layout.x0)), [expected], rtol=1e-12)
    np.testing.assert_allclose(lik.objective(predicted, st.errors(layout.x0)), [expected], rtol=1e-4)


# ====================================================================================================== seed 37
def test_a_subject_whose_likelihood_cannot_be_evaluated_with_finite_predictions_is_infinite_and_its_chain_moves_on():
    # proportional error (CV 0.2): -2 log p(y_i | phi) without constants is sum_j (y_ij - f_ij)^2 / R + log R with
    # R = (0.2 f)^2. The third subject keeps its sample at the time of the oral dose, predicted 0 (finite): R = 0,
    # y^2 / 0 + log 0 has no value, so that subject's entry is +inf in every chain, as the objective promises for
    # what cannot be evaluated, and every other entry is the sum by hand. A chain in such a state (+inf) accepts
    # the first proposal that can be evaluated: with the 0 prediction moved to 1e-3 the proposal is finite and
    # log u < +inf, whatever u. (_Likelihood.objective _25: `&` for `|` made the entry +inf only where a
    # prediction also failed, so it stayed NaN, and -1/2 (obj_new - NaN) rejected every proposal of that chain)
    from pkpd.saem import _Chains

    third = THEOPH["ID"].unique()[2]
    at_dose = (THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0)
    prob, layout, st = _theoph_problem(pkpd.Proportional(cv=0.2), table=THEOPH[~at_dose | (THEOPH["ID"] == third)])
    lik = _Likelihood(prob, layout, 2)
    assert lik.plain
    eta = 0.1 * np.random.default_rng(3).standard_normal((2, prob.n, prob.q))
    F = np.array(lik.predict(st.typical(layout.x0), eta), dtype=float)
    j = int(np.flatnonzero(prob.mask[2])[0])
    assert np.all(F[:, 2, j] == 0.0) and np.all(np.isfinite(F[:, prob.mask]))
    errs = st.errors(layout.x0)
    out = lik.objective(F, errs)
    R = (0.2 * F) ** 2
    with np.errstate(all="ignore"):
        by_hand = np.where(prob.mask[None], (prob.y[None] - F) ** 2 / R + np.log(R), 0.0).sum(axis=2)
    assert np.all(out[:, 2] == np.inf)
    others = np.arange(prob.n) != 2
    np.testing.assert_allclose(out[:, others], by_hand[:, others], rtol=1e-12)
    # the chains' step from that state: F_new is F with the 0 moved to 1e-3, a spy's prediction of the proposal
    F_new = F.copy()
    F_new[:, 2, j] = 1e-3
    lik.predict = lambda typical, proposal: F_new
    omega = st.omega(layout.x0)
    ch = _Chains(eta, F, out, np.einsum("cnq,qr,cnr->cn", eta, np.linalg.inv(omega), eta))
    accept = ch.step(eta, False, lik, st.typical(layout.x0), errs, np.linalg.inv(omega), np.random.default_rng(4))
    assert np.all(accept[:, 2])
    assert np.all(np.isfinite(ch.obj[:, 2])) and np.all(ch.F[:, 2, j] == 1e-3)


def test_the_endpoint_score_raises_and_warns_nothing_when_one_subjects_terms_are_not_finite():
    # endpoints_exposure.toml's repeated event 'relapse' at the constant hazard h0 e^eta (h0 = 0.01 1/h, IIV on h0,
    # no dose): subject 1 has events at 24 h and 48 h (risk intervals [0, 24] and [24, 48], dH 0.24 e^eta each),
    # subject 2 is censored at 48 h (dH 0.48 e^eta). By eta an event's score is 1 - dH, a censoring's -dH, the
    # information dH. In chain 1 (eta = 0) the derivative of subject 1's H(24 h) is 1e308 (a sensitivity that blew
    # up): it ends the first interval and starts the second, so their scores are +inf and -inf and subject 1's sum
    # inf - inf, which is not finite: that chain and subject add nothing, and the others (chain 2 at eta = log 2)
    # add -0.48 + 2 (1 - 0.48) - 0.96 = -0.40 to the score and 0.48 + 0.96 + 0.96 = 2.40 to the information, with no
    # floating-point warning, nor a FloatingPointError where the caller has numpy raise them (endpoint_score _7:
    # np.errstate(all=None) left the caller's numpy error state in force: the sum of the two records' scores gave
    # "invalid value encountered in at", a RuntimeWarning, and under np.errstate(all="raise") a FloatingPointError)
    import warnings

    model = pkpd.load_model(DATA / "models" / "endpoints_exposure.toml")
    data = pd.DataFrame([(1, 24.0, 1, "relapse"), (1, 48.0, 1, "relapse"), (2, 48.0, 0, "relapse")],
                        columns=["ID", "TIME", "DV", "DVID"])
    *_, layout, prob = _setup(model, data, pkpd.IIV({"h0": 0.1}), None, "laplace", None, None, None, None)
    X = layout.x0[None]
    theta, _, _ = layout.unpack(X)
    eta = np.array([[[0.0], [0.0]], [[math.log(2.0)], [math.log(2.0)]]])
    F, dF = prob.predict_grad(layout.subject_theta(X, theta), eta)
    lik = _Likelihood(prob, layout, 2)
    score, info = lik.endpoint_score(F, dF)           # all four: 1.52 - 0.48 + 1.04 - 0.96, 0.96 + 0.48 + 0.96 + 0.96
    assert score[0] == pytest.approx(1.12, rel=1e-7) and info[0, 0] == pytest.approx(2.88, rel=1e-7)
    rec = prob.endpoint_records
    assert list(rec.subject) == [0, 0, 1] and rec.components[0, 0] == rec.components[1, 1]   # H(24 h), both records
    assert prob.data.subject[rec.components[0, 0]] == 0
    dF = dF.copy()
    dF[0, 0, int(prob.flat_j[rec.components[0, 0]]), 0] = 1e308
    for state in ("warn", "raise"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all=state):
                score, info = lik.endpoint_score(F, dF)
        assert score[0] == pytest.approx(-0.40, rel=1e-7)
        assert info[0, 0] == pytest.approx(2.40, rel=1e-7)


# ====================================================================================================== seed 38
def test_censored_records_far_below_their_prediction_are_drawn_from_the_deep_tail_of_their_truncated_normal():
    # M3: a record below the LLOQ is imputed by a draw from N(m, s^2) truncated above at the limit L, by inversion:
    # m + s Phi^-1(U Phi(z)), z = (L - m) / s. With L = 0, s = 1 and m = 37.2 or 38 (the limit 37.2 and 38 SDs
    # below the prediction) U Phi(z) is below e^-700 for some draws (z = -37.2) or for every one (z = -38). The
    # law is continuous: no draw on the limit and no two draws equal; P(X <= x | X <= L) = Phi(x) / Phi(z), the
    # mean m - s phi(z) / Phi(z) and the variance s^2 (1 - z lambda - lambda^2), lambda = phi(z) / Phi(z), all
    # computed in the test from the normal's log density and log CDF, and the draws pass the Kolmogorov-Smirnov
    # test against that CDF. (_impute _37: the floor of log(U Phi(z)) at -701 instead of -700, which moved the
    # draws it pinned from m + s Phi^-1(e^-700) to m + s Phi^-1(e^-701). Either floor was a defect: with -700
    # every draw at z = -38 was the limit itself and 121 of the 4000 at z = -37.2 were m + s Phi^-1(e^-700); the
    # fix, scipy's ndtri_exp, which inverts log(U Phi(z)) without exp, removed the floor and the mutated line)
    from types import SimpleNamespace

    from scipy import stats
    from scipy.special import log_ndtr

    from pkpd.saem import _impute

    prob = SimpleNamespace(cens=np.ones((1, 2), dtype=bool), limit=np.zeros((1, 2)), which=np.zeros((1, 2), int))
    C = 4000
    m = np.broadcast_to(np.array([37.2, 38.0]), (C, 1, 2))
    s = np.ones((C, 1, 2))
    u = np.full((C, 1, 2), 5.0)
    out = _impute(prob, [pkpd.Additive(sd=1.0)], u, m, s, np.random.default_rng(7))
    for j, mean in enumerate((37.2, 38.0)):
        draws = out[:, 0, j]
        z = -mean
        assert np.all(draws < 0.0) and np.unique(draws).size == C
        lam = math.exp(stats.norm.logpdf(z) - log_ndtr(z))
        sd = math.sqrt(1.0 - z * lam - lam ** 2)
        assert 0.02 < sd < 0.03 and abs(draws.mean() - (mean - lam)) < 4 * sd / math.sqrt(C)
        assert stats.kstest(draws, lambda x, z=z, mean=mean: np.exp(log_ndtr(x - mean) - log_ndtr(z))).pvalue > 0.01


# ====================================================================================================== seed 39
def test_the_prior_kernels_acceptance_rate_is_its_accepted_share(monkeypatch):
    # SaemRun.acceptance["prior"]: the independent sampler's (proposals drawn from the prior) accepted proposals over
    # its proposals, counted by a spy on the chains' step over both iterations; the one-component kernel beside it
    # counts its own (run_saem _199: the prior kernel's accepted proposals added to its count of proposals, a rate
    # of 0 / (proposals + accepted))

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    moves = _record_moves(monkeypatch)
    run = run_saem(prob, layout, layout.x0, SaemSettings(exploratory=1, smoothing=1, n_chains=2,
                                                         kernel_steps=(2, 0, 1)), np.random.default_rng(0))
    seen = [a for _, a in moves]
    assert len(seen) == 2 * 3                                   # per iteration: prior, prior, one component
    prior = [a for i, a in enumerate(seen) if i % 3 != 2]
    one = [a for i, a in enumerate(seen) if i % 3 == 2]
    accepted = sum(int(a.sum()) for a in prior)
    proposed = sum(a.size for a in prior)
    assert proposed == 4 * 2 * prob.n and 0 < accepted < proposed
    assert run.acceptance["prior"] == accepted / proposed
    assert run.acceptance["one component"] == sum(int(a.sum()) for a in one) / sum(a.size for a in one)
    assert math.isnan(run.acceptance["random walk"])


def test_an_exploratory_combined_error_shrinks_by_at_most_the_annealing_factor():
    # during the exploratory phase each free parameter of a combined error is at least sqrt(annealing) times its
    # old value (the SD's floor, as the additive branch's and Omega's). Residuals all 0: the optimum of both goes to
    # the smallest SD, so both end at exactly sqrt(0.95) 0.1; with the cv fixed at 0.1, f = 2 and residuals of 0.5
    # the optimum a^2 + (0.1 * 2)^2 = 0.25 is a = sqrt(0.21) = 0.458: from an old sd of 1 (gamma 1) it is below the
    # floor sqrt(0.95) (annealing 0.95) and above sqrt(0.1) (annealing 0.1), where it stays
    # (_error_step _172: the floored value replaced by None, a TypeError from log(None))
    em = pkpd.Combined(sd=0.1, cv=0.1, convention="variance")
    prob, layout, st = _theoph_problem(em)
    u, m, F = _residuals(prob, 0.0, 2.0)
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, True, 0.95)
    new = st.errors(x)[0]
    assert new.sd == pytest.approx(math.sqrt(0.95) * 0.1, rel=1e-12)
    assert new.cv == pytest.approx(math.sqrt(0.95) * 0.1, rel=1e-12)
    prob, layout, st = _theoph_problem(pkpd.Combined(sd=1.0, cv=0.1, convention="variance", fixed=("cv",)))
    u, m, F = _residuals(prob, 0.5, 2.0)
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, True, 0.95)
    assert st.errors(x)[0].sd == pytest.approx(math.sqrt(0.95), rel=1e-12)
    assert st.errors(x)[0].cv == 0.1
    x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, True, 0.1)
    assert st.errors(x)[0].sd == pytest.approx(math.sqrt(0.21), rel=1e-5)


# ====================================================================================================== seed 40
def test_the_importance_samplings_reported_se_uses_the_unbiased_variance_of_each_subjects_weights():
    # ImportanceSampling.se (PopulationFit.objective_se): the delta method's 2 sqrt(sum_i s_i^2 / (M mean_i(w)^2)),
    # s_i^2 the sample variance of subject i's weights with M - 1 in its denominator. The test computes the weights
    # of the draws the double was asked to solve from the densities written here (the linear Gaussian model's joint
    # density over the t proposal's, as the Kish test of seed 31), and checks the identity that ties the SE to Kish's
    # ESS: s_i^2 / (M mean_i^2) = (M / ess_i - 1) / (M - 1). With M = 10 draws (the least allowed) M - 1 and M - 2
    # differ by 12 % (importance_sampling _278: `ddof=2`, an SE sqrt(9 / 8) = 1.061 times too large; at M = 2000 by
    # 1 part in 4000)
    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1], [1.5, 2.0, 0.8, 1.2]])
    omega = 0.5
    H = 4 + 1 / omega
    mode = (y.sum(axis=1) / H)[:, None] + 0.8 / math.sqrt(H)
    for M in (10, 2000):
        prob = _RecordingLinearGauss(y, omega)
        res = importance_sampling(prob, np.zeros((1, 3, 1)), np.array([[omega]]), [], mode, M,
                                  np.random.default_rng(3))
        eta = np.concatenate(prob.draws)                                  # (M, n)
        assert eta.shape == (M, 3) and res.n_samples == M
        log_joint = -0.5 * (((y[None] - eta[..., None]) ** 2).sum(axis=2) + eta ** 2 / omega)
        log_prop = -3.0 * np.log1p(H * (eta - mode[:, 0]) ** 2 / 5.0)
        lw = log_joint - log_prop
        w = np.exp(lw - lw.max(axis=0))
        mean = w.sum(axis=0) / M
        s2 = ((w - mean) ** 2).sum(axis=0) / (M - 1)
        expected = 2.0 * math.sqrt(float((s2 / (M * mean ** 2)).sum()))
        assert res.se == pytest.approx(expected, rel=1e-9)
        assert res.se == pytest.approx(2.0 * math.sqrt(float(((M / res.ess - 1) / (M - 1)).sum())), rel=1e-9)
        assert res.se > 0


def test_the_mu_step_starts_inside_a_range_of_cl_narrower_than_its_margin():
    # the mu step's least squares starts 1e-9 inside finite bounds; a range of CL under 2e-9 wide on the log scale
    # (here [3, 3 (1 + 1e-10)], which the model accepts and FOCE-I fits) left no room for that margin: the start
    # hi - 1e-9 lay below lo and scipy refused it ("Initial guess is outside of provided bounds"), so every SAEM fit
    # with IIV and a covariate effect on such a parameter failed at its first iteration (a defect found through
    # _mu_step _49, `np.where(None, hi - 1e-9, hi)`, which started at hi and ran). The margin is now at most a quarter
    # of the range. Omega is diagonal, so CL's column is its own weighted least squares: with CL pinned at 3 and
    # S1 = log 2.5 + 1.1 l_i (l_i = log(WT_i / 70)), beta = 1.1 + (log 2.5 - log 3) sum l_i / sum l_i^2, and V's
    # column gives V = 30, its value in S1
    prob, layout, st = _covariate_problem((3.0, 3.0 * (1 + 1e-10)))
    free = list(st.mu_theta) + list(st.effects_iiv)
    k_cl, k_v = layout.theta_names.index("CL"), layout.theta_names.index("V")
    k_beta = st.effects_iiv[0]
    target = layout.x0.copy()
    target[k_cl] = math.log(2.5)
    target[k_beta] = 1.1
    S1 = st.mu(target).copy()
    l_i = np.log((50.0 + 8.0 * np.arange(6)) / 70.0)
    beta = 1.1 + (math.log(2.5) - math.log(3.0)) * l_i.sum() / (l_i ** 2).sum()
    for at in (st.lower[k_cl], st.upper[k_cl]):
        start = layout.x0.copy()
        start[k_cl] = at
        x = _mu_step(st, start, S1)
        assert st.lower[k_cl] <= x[k_cl] <= st.upper[k_cl]
        assert x[k_beta] == pytest.approx(beta, abs=1e-6)
        assert math.exp(x[k_v]) == pytest.approx(30.0, rel=1e-6)
        assert sorted(free) == sorted([k_cl, k_v, k_beta])


# ====================================================================================================== seed 41
def _iov_problem(table, iov):
    """Theophylline with IOV (the OCC column of ``table``), ka and CL with IIV."""
    data = read_nonmem(table, dose_unit="mg")
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}),
                                   {"conc": pkpd.Additive(sd=0.5)}, "focei", ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, iov=pkpd.IOV(iov))
    return prob, layout, _State(prob, layout)


def test_the_iov_variances_are_the_mean_square_of_every_occasions_kappas():
    # the M step of the inter-occasion variances: pi_p = the mean of kappa_p^2 over chains, subjects and the
    # occasions each subject has, occasion 1 included (its kappa moves its parameter from the first record, under
    # the prior N(0, pi_p) like the others), an occasion a subject does not have left out (its kappa is a draw from
    # the prior). Theophylline in two occasions (OCC 2 from 5 h; subject 1 all in occasion 1), IOV on ka (0.2) and CL
    # (0.1); one exploratory iteration, then one smoothing iteration (gamma 1, no annealing floor): pi is the mean
    # square of the kappas left in the chains, each component its own (a defect found beside run_saem _435: the
    # occasions a subject has were np.isfinite(occ_start), which left out occasion 1, whose start is -inf; and
    # run_saem _435, `sum(axis=None)`: the count of both components together, each pi half its value)
    table = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))]
    occ = np.where((table["TIME"] < 5.0) | (table["ID"] == 1), 1, 2)           # subject 1: occasion 1 only
    prob, layout, st = _iov_problem(table.assign(OCC=occ), {"ka": 0.2, "CL": 0.1})
    assert prob.n_occ == 2 and prob.iov.n_eta == 2
    settings = SaemSettings(exploratory=1, smoothing=1, n_chains=2, kernel_steps=(0, 2, 0))
    run = run_saem(prob, layout, layout.x0, settings, np.random.default_rng(1))
    kappa = run.eta[..., prob.q_iiv:].reshape(2, prob.n, 2, 2)               # (chain, subject, occasion, p)
    assert np.all(run.eta[..., :prob.q_iiv] != 0) and np.mean(kappa != 0) > 0.5    # no chain restarted at 0
    present = np.ones((prob.n, 2), dtype=bool)
    present[0, 1] = False
    expected = (kappa ** 2)[:, present].mean(axis=(0, 1))
    assert not np.allclose(expected, (kappa[:, 1:, 1] ** 2).mean(axis=(0, 1)), rtol=1e-3)
    assert not np.allclose(expected, (kappa ** 2).mean(axis=(0, 1, 2)), rtol=1e-3)
    np.testing.assert_allclose(np.exp(2 * run.x[st.off_iov:st.off_iov + 2]), expected, rtol=1e-12)


def test_one_chain_of_one_subject_in_one_occasion_has_its_kappas_square_as_iov_variance():
    # the smallest count of the M step of pi: one chain, one subject, one occasion (OCC 1 throughout), so pi is that
    # kappa's square itself (1 of it), not half of it; one exploratory iteration, then one smoothing iteration (gamma
    # 1, no annealing floor) (run_saem _452: `sq / np.maximum(cnt, 2)`, pi = kappa^2 / 2)
    table = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0)) & (THEOPH["ID"] == 1)]
    prob, layout, st = _iov_problem(table.assign(OCC=1), {"CL": 0.1})
    assert prob.n == 1 and prob.n_occ == 1 and prob.iov.n_eta == 1
    settings = SaemSettings(exploratory=1, smoothing=1, n_chains=1, kernel_steps=(0, 2, 0))
    run = run_saem(prob, layout, layout.x0, settings, np.random.default_rng(1))
    assert run.eta.shape == (1, 1, prob.q_iiv + 1)
    kappa = run.eta[0, 0, prob.q_iiv]
    assert kappa != 0                                                             # the chain was not restarted
    assert math.exp(2 * run.x[st.off_iov]) == pytest.approx(kappa ** 2, rel=1e-12)


def test_importance_sampling_names_the_first_subject_none_of_whose_draws_can_be_evaluated():
    # the linear Gaussian double with every draw of subjects 2 and 3 above their cut (-inf): their predictions are
    # NaN, no draw weighs anything, and the error names the first of them, 2, in the documented message
    # (importance_sampling _257: `int(None)`, a TypeError instead of the FitError)
    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1], [1.5, 2.0, 0.8, 1.2]])
    prob = _LinearGauss(y, 0.5, np.array([np.inf, -np.inf, -np.inf]))
    message = ("objective='is': no importance sample of subject 2 could be evaluated (the model cannot be solved "
               "around its conditional mode)")
    with pytest.raises(FitError) as caught:
        importance_sampling(prob, np.zeros((1, 3, 1)), np.array([[0.5]]), [], np.zeros((3, 1)), 10,
                            np.random.default_rng(1))
    assert str(caught.value) == message


def test_the_derivatives_by_a_large_linear_coefficient_without_iiv_are_exact_to_rounding():
    # V has no IIV and a linear effect of WT on it, V_i = V (1 + b (WT_i - 70)), with WT within 0.002 kg of 70 and
    # b = 300 per kg (V_i from 0.54 V to 1.49 V): the Newton step's dtheta/dx comes from central differences of the
    # typical values, exact for a typical value linear in b up to the rounding of b +- h, which the step, 1e-5 times
    # max(1, |x|), keeps at a part in 1e11. Checked against the chain rule by hand: dF/db = dF/dV V (WT_i - 70) and
    # dF/d log V = dF/dV V_i, from the compiled sensitivities by V (_prediction_derivatives _27: the step 1e-5 / |x|,
    # 3.3e-8 at b = 300, where b +- h is rounded to 5.7e-14: dF/db off by up to a part in 1e5)
    from pkpd.saem import _prediction_derivatives

    layout, prob, st, table = _theoph_with_an_effect_on_v(pkpd.CovariateEffect("V", "WT", "linear", 300.0, ref=70.0),
                                                          weight_scale=1e-4)
    k_v = layout.theta_names.index("V")
    assert not st.newton_plain and st.newton[0] == k_v and len(st.newton) == 2
    x = layout.x0.copy()
    assert x[st.newton[1]] == 300.0
    lik = _Likelihood(prob, layout, 2, st.newton_parameters)
    eta = 0.2 * np.random.default_rng(1).standard_normal((2, prob.n, prob.q))
    _, _, dm, _, F, dF = _prediction_derivatives(st, lik, x, eta, st.errors(x))
    _, dF_dtheta = lik.predict_sensitivities(st.typical(x), eta)
    names = layout.model.parameter_names
    dF_dV = dF_dtheta[..., list(st.newton_parameters).index(names.index("V"))]
    v = math.exp(x[k_v])
    wt = table.groupby("ID", sort=False)["WT"].first().loc[list(prob.data.ids)].to_numpy()
    v_i = v * (1.0 + 300.0 * (wt - 70.0))
    np.testing.assert_allclose(st.typical(x)[0][:, names.index("V")], v_i, rtol=1e-14)
    sel = np.broadcast_to(prob.mask[None], F.shape)
    by_b = (dF_dV * (v * (wt - 70.0))[None, :, None])[sel]
    by_log_v = (dF_dV * v_i[None, :, None])[sel]
    assert np.abs(by_b).max() > 0.01
    np.testing.assert_allclose(dF[..., 1][sel], by_b, rtol=1e-9, atol=1e-9 * np.abs(by_b).max())
    np.testing.assert_allclose(dm[..., 1][sel], by_b, rtol=1e-9, atol=1e-9 * np.abs(by_b).max())
    np.testing.assert_allclose(dF[..., 0][sel], by_log_v, rtol=1e-8)


def _theoph_with_an_effect_on_v(effect, weight_scale: float = 1.0):
    """SAEM's layout, problem and state, and the data table, for theophylline (no pre-dose records) with IIV on ka and
    CL and ``effect`` on V, each weight moved to 70 + (WT - 70) x ``weight_scale`` kg."""
    table = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))]
    table = table.assign(WT=70.0 + (table["WT"] - 70.0) * weight_scale)
    data = read_nonmem(table, dose_unit="mg")
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"ka": 0.6, "CL": 0.3}),
                                   {"conc": pkpd.Additive(sd=0.5)}, "focei", ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, (effect,))
    return layout, prob, _State(prob, layout), table


# ====================================================================================================== seed 42
def test_an_exploratory_additive_error_in_a_saem_run_shrinks_by_exactly_the_annealing_floor():
    # run_saem hands its phase to the residual-error step: in an exploratory iteration an SD may shrink by at most
    # sqrt(annealing) (as Omega's variances by annealing). From an additive SD of 100, far above any residual of
    # theophylline (concentrations under 12 mg/L, so sqrt(mean r^2) is some 2 to 5), two exploratory iterations with
    # annealing 0.5 give exactly sqrt(0.5) 100 = 70.71 and then 0.5 100 = 50 in the trace (run_saem _351: the phase
    # passed as None, no floor: the SD drops to the residuals' root mean square in the first iteration)
    prob, layout, st = _theoph_problem(pkpd.Additive(sd=100.0))
    settings = SaemSettings(exploratory=2, smoothing=0, n_chains=2, annealing=0.5)
    run = run_saem(prob, layout, layout.x0, settings, np.random.default_rng(0))
    assert run.trace.shape[0] == 3 and run.trace[0, -1] == pytest.approx(100.0, rel=1e-14)    # the SD's column
    assert run.trace[1, -1] == pytest.approx(math.sqrt(0.5) * 100.0, rel=1e-12)
    assert run.trace[2, -1] == pytest.approx(50.0, rel=1e-12)
    assert st.errors(run.x)[0].sd == pytest.approx(50.0, rel=1e-12)


def test_a_saem_runs_seconds_are_the_wall_time_of_the_run():
    # SaemRun.seconds is the time the run took: positive and no more than the wall time measured around the call
    # (run_saem _575: seconds None; _587: perf_counter() + t_start, twice the clock's reading, far above the call's
    # wall time)
    import time

    prob, layout, _ = _theoph_problem(pkpd.Additive(sd=0.5))
    settings = SaemSettings(exploratory=1, smoothing=1, n_chains=1, kernel_steps=(1, 0, 0))
    t0 = time.perf_counter()
    run = run_saem(prob, layout, layout.x0, settings, np.random.default_rng(0))
    wall = time.perf_counter() - t0
    assert isinstance(run.seconds, float)
    assert 0.0 < run.seconds <= wall


@pytest.mark.parametrize("convention, b, a", [("variance", 0.48, 0.28), ("sd", 0.45, 0.1)])
def test_a_combined_errors_sd_is_its_optimum_to_a_part_in_a_million(convention, b, a):
    # the combined error's update is Nelder-Mead's optimum of mean(r^2 / var + log var) in log sd, to xatol 1e-6 and
    # fatol 1e-10. With the cv fixed at b, a constant prediction f = 2 and residuals +-1 the optimal variance is
    # mean(r^2) = 1: a^2 + (2 b)^2 = 1 ("variance": b = 0.48, a = sqrt(1 - 0.9216) = 0.28) or a + 2 b = 1 ("sd": b =
    # 0.45, a = 0.1). The additive part is small beside the proportional one there, so the objective is flat in log
    # a (curvature 2 (a^2 / var)^2, 0.012, or 2 a^2 / var, 0.02): fatol alone lets the simplex stop up to some 1e-4
    # away in log a. With gamma 1 the new sd is exp of the optimum, within 3e-6 relative from either start (4e-8 to
    # 1.4e-7 off) (_error_step _150: xatol 1.000001, the sd off by 1.3e-5 to 3.4e-5 relative)
    for old in (0.3, 1.0):
        em = pkpd.Combined(sd=old, cv=b, convention=convention, fixed=("cv",))
        prob, layout, st = _theoph_problem(em)
        u, m, F = _residuals(prob, 1.0, 2.0)
        x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, 1.0, False, 0.95)
        new = st.errors(x)[0]
        assert new.cv == b
        assert new.sd == pytest.approx(a, rel=3e-6)


# ====================================================================================================== seed 43
@pytest.mark.parametrize("convention, a, b", [("variance", 0.6, 0.4), ("sd", 0.2, 0.4)])
def test_a_combined_errors_cv_with_its_sd_fixed_is_its_optimum(convention, a, b):
    # a Combined error with its sd fixed has the cv alone to fit: with a constant prediction f = 2 and residuals +-1
    # the optimal variance is mean(r^2) = 1, so a^2 + (2 b)^2 = 1 ("variance": a = 0.6, b = sqrt(0.64) / 2 = 0.4) or
    # a + 2 b = 1 ("sd": a = 0.2, b = 0.4); with gamma 1 the new cv is that optimum, with gamma 1/2 half-way from the
    # old one, and the fixed sd is kept (_error_step _81: `("sd" in free) or True` read the fixed sd from the free
    # parameters, a ValueError from free.index("sd"))
    old = 0.1
    em = pkpd.Combined(sd=a, cv=old, convention=convention, fixed=("sd",))
    prob, layout, st = _theoph_problem(em)
    u, m, F = _residuals(prob, 1.0, 2.0)
    for gamma in (1.0, 0.5):
        x, _ = _error_step(st, layout.x0.copy(), st.errors(layout.x0), u, m, F, {}, gamma, False, 0.95)
        new = st.errors(x)[0]
        assert new.sd == a
        assert new.cv == pytest.approx(old + gamma * (b - old), rel=1e-5)


def test_a_metropolis_hastings_step_rejects_a_draw_equal_to_the_acceptance_ratio():
    # Metropolis-Hastings accepts a proposal with probability min(1, r), r = p(new) / p(old) = exp(-(obj_new - obj)
    # / 2): with u uniform on [0, 1) (numpy's doubles k 2^-53) that is u < r, P(u < r) = r exactly, while u <= r
    # would accept with r + 2^-53. Spies give the chains' step predictions and objectives and a generator whose
    # draws are u = 0.5, 0.25, 0.75 in three subjects whose proposals have r = u exactly (obj_new = -2 log u above
    # obj = 0, log r = log u to the bit): all rejected; r a part in 1e9 above u: all accepted; below: rejected
    # (_Chains.step _40: `<=` for `<` accepted the three draws equal to r)
    from types import SimpleNamespace

    from pkpd.saem import _Chains

    u = np.array([[0.5, 0.25, 0.75]])
    rng = SimpleNamespace(uniform=lambda size: u.reshape(size).copy())
    assert math.log(0.5) < 0 and np.all(-0.5 * (-2.0 * np.log(u)) == np.log(u))
    for shift, expected in ((0.0, False), (-1e-9, True), (1e-9, False)):
        obj_new = -2.0 * np.log(u) + shift
        lik = SimpleNamespace(predict=lambda typical, proposal: np.ones((1, 3, 2)),
                              objective=lambda F, errs, obj_new=obj_new: obj_new.copy())
        eta, proposal = np.zeros((1, 3, 1)), np.full((1, 3, 1), 0.5)
        ch = _Chains(eta, np.zeros((1, 3, 2)), np.zeros((1, 3)), np.zeros((1, 3)))
        accept = ch.step(proposal, False, lik, None, None, np.eye(1), rng)
        assert accept.tolist() == [[expected] * 3]
        assert np.all(ch.eta == (0.5 if expected else 0.0)) and np.all(ch.F == (1.0 if expected else 0.0))
        assert np.all(ch.obj == (obj_new if expected else 0.0))


# ====================================================================================================== seed 45
class _Overflowing(_LinearGauss):
    """The linear Gaussian double whose predictions blow up to 1e200 (a solve that ran away instead of failing)
    where eta > ``cut``: the objective's squared residuals overflow to +inf, a floating-point overflow."""

    def predict(self, P):
        return np.where(P > self.cut[:, None], 1e200, np.repeat(P, self.J, axis=-1))


@pytest.mark.parametrize("state", ["warn", "raise"])
def test_importance_sampling_evaluates_draws_that_overflow_quietly_whatever_the_callers_error_state(state):
    # importance sampling silences the floating-point errors of its draws' solves and objective itself (as it does
    # around its Hessian), so it gives the same answer whatever numpy error state its caller has. (1) The linear
    # Gaussian double of the seed-25 test with the draws above mean + 0.5 sd overflowing in the objective: they weigh
    # nothing, and the estimate is the closed form of that test, -2 log L - 2 log Phi(0.5) per subject (3 subjects),
    # with no warning under "warn" nor a FloatingPointError under "raise". (2) pkpd's own objective: theophylline with
    # a proportional error and subject 3's dose times 1e160, so that its predictions (some 1e160) give an sd whose
    # square, the variance, overflows: no draw of subject 3 can be evaluated, and the documented FitError names it.
    # (importance_sampling _139: np.errstate(all=None) around the draws' predictions and objective left the caller's
    # error state in force: "overflow encountered in square" as a RuntimeWarning under "warn", made an error here,
    # and a FloatingPointError under "raise", instead of the estimate and of the FitError)
    import warnings

    from scipy import stats

    from pkpd.importance import importance_sampling

    y = np.array([[0.3, 1.1, 0.4, 0.9], [-0.5, 0.2, -1.0, -0.1], [1.5, 2.0, 0.8, 1.2]])
    omega, J = 0.5, 4
    exact = sum(-2 * stats.multivariate_normal(np.zeros(J), np.eye(J) + omega).logpdf(row) for row in y)
    precision = J + 1 / omega
    mean, sd = y.sum(axis=1) / precision, 1 / math.sqrt(precision)
    missing = -2 * 3 * np.log(stats.norm.cdf(0.5))
    prob = _Overflowing(y, omega, mean + 0.5 * sd)
    with np.errstate(all="ignore"):
        assert not np.isfinite(prob._objective_at(prob.predict(np.full((1, 3, 1), 10.0)), None, None, None)).any()
    table = THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))].copy()
    table.loc[(table["ID"] == 3) & (table["EVID"] == 1), "AMT"] *= 1e160
    theoph, layout, _ = _theoph_problem(pkpd.Proportional(cv=0.2), table=table)
    theta, omegas, errs = layout.unpack(layout.x0[None])
    message = ("objective='is': no importance sample of subject 3 could be evaluated (the model cannot be solved "
               "around its conditional mode)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all=state):
            res = importance_sampling(prob, np.zeros((1, 3, 1)), np.array([[omega]]), [], mean[:, None], 4000,
                                      np.random.default_rng(1))
            with pytest.raises(FitError) as caught:
                importance_sampling(theoph, layout.subject_theta(layout.x0[None], theta), omegas[0], errs[0],
                                    np.zeros((theoph.n, theoph.q)), 10, np.random.default_rng(1))
    assert math.isfinite(res.minus2ll) and 0 < res.se < 0.1
    assert abs(res.minus2ll - (exact + missing)) < 4 * res.se
    assert str(caught.value) == message



# ====================================================================================================== seed 46
@pytest.mark.parametrize("with_prior", [False, True])
@pytest.mark.parametrize("state", ["warn", "raise"])
def test_a_metropolis_hastings_step_from_a_chain_that_cannot_be_evaluated_warns_nothing(state, with_prior):
    # a chain whose data objective is +inf (density 0: its restart at eta = 0 after a parameter update could not be
    # evaluated either) meets a proposal that cannot be evaluated (+inf too): the ratio of two zero densities has no
    # value (inf - inf), and Metropolis-Hastings never accepts a proposal of density 0, so that chain stays, without a
    # floating-point warning, nor a FloatingPointError where the caller has numpy raise them; from the same state a
    # proposal that can be evaluated (objective 5) has an infinite ratio and is accepted whatever u, and a chain that
    # can be evaluated (objective 0) rejects a proposal of density 0. Spies give the predictions, the objectives and
    # u = 0.5 in the three subjects of one chain. (Defect found judging _Chains.step _32, fixed: the log ratio
    # -(obj_new - obj) / 2 was computed outside the step's np.errstate(invalid="ignore"), "invalid value
    # encountered in subtract" as a RuntimeWarning under "warn", made an error here, and a FloatingPointError under
    # "raise"; _32 itself, `np.errstate(invalid=None)`, left the caller's error state in force there)
    import warnings
    from types import SimpleNamespace

    from pkpd.saem import _Chains

    rng = SimpleNamespace(uniform=lambda size: np.full(size, 0.5))
    obj, obj_new = np.array([[np.inf, np.inf, 0.0]]), np.array([[np.inf, 5.0, np.inf]])
    lik = SimpleNamespace(predict=lambda typical, proposal: np.ones((1, 3, 2)), objective=lambda F, errs: obj_new)
    eta, proposal = np.zeros((1, 3, 1)), np.full((1, 3, 1), 0.5)
    ch = _Chains(eta, np.zeros((1, 3, 2)), obj.copy(), np.zeros((1, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all=state):
            accept = ch.step(proposal, with_prior, lik, None, None, np.eye(1), rng)
    assert accept.tolist() == [[False, True, False]]
    assert ch.eta[0, :, 0].tolist() == [0.0, 0.5, 0.0] and ch.F[0, :, 0].tolist() == [0.0, 1.0, 0.0]
    assert ch.obj.tolist() == [[np.inf, 5.0, 0.0]] and ch.lp[0].tolist() == [0.0, 0.25, 0.0]


# ====================================================================================================== seed 47
def test_an_omega_estimate_that_is_not_positive_definite_in_its_pattern_falls_back_to_its_diagonal():
    # Omega's M-step is the chains' covariance with the elements outside the initial pattern set to 0; where that
    # masked matrix is not positive definite SAEM keeps its diagonal (the covariances 0) and goes on. IIV on ka, CL and
    # V with covariances ka-CL and CL-V only (a tridiagonal pattern, which IIV accepts); one smoothing iteration
    # (gamma 1, no annealing floor) of one prior kernel step whose proposals are set by a generator: 2 chains x 12
    # subjects of etas t + 0.2 e (t, e standard normal, seed 3, scaled by 0.7), all accepted (u = 1e-300 and an
    # additive SD of 10, so every likelihood ratio is far above u). Without covariate effects mu is the mean of the
    # phis, so the estimate is the etas' covariance with divisor 24 (np.cov, bias=True): correlations near 0.96, and
    # with the ka-V element set to 0 its smallest eigenvalue is negative (1 - 0.96 sqrt 2 < 0 in correlation form).
    # The new Omega in the trace: the etas' variances (np.var over the 24 chain-subject pairs) and covariances 0
    # (run_saem _407: `st.set_omega(x_new, None)` in the fallback, a LinAlgError "0-dimensional array given" out of
    # the run instead of the diagonal)
    from types import SimpleNamespace

    iiv = pkpd.IIV({"ka": 0.3, "CL": 0.3, "V": 0.3}, covariances={("ka", "CL"): 0.1, ("CL", "V"): 0.1})
    data = read_nonmem(THEOPH[~((THEOPH["EVID"] == 0) & (THEOPH["TIME"] == 0))], dose_unit="mg")
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, iiv, {"conc": pkpd.Additive(sd=10.0)}, "focei",
                                   ["ka", "CL", "V"], None, pkpd.SolverSettings(), None)
    st = _State(prob, layout)
    assert st.newton == [] and layout.chol_index == ((0, 0), (1, 0), (1, 1), (2, 1), (2, 2))
    C, n = 2, prob.n
    g = np.random.default_rng(3)
    eta = 0.7 * (g.standard_normal((C * n, 1)) + 0.2 * g.standard_normal((C * n, 3)))
    L = np.linalg.cholesky(iiv.omega)
    z = np.linalg.solve(L, eta.T).T.reshape(C, n, 3)             # proposals z L^T: these etas (to rounding)
    rng = SimpleNamespace(standard_normal=lambda size: z.copy(), uniform=lambda size: np.full(size, 1e-300))
    cov = np.cov(eta, rowvar=False, bias=True)
    assert np.linalg.eigvalsh(cov * (iiv.omega != 0)).min() < 0 < np.linalg.eigvalsh(cov).min()
    settings = SaemSettings(exploratory=0, smoothing=1, n_chains=C, kernel_steps=(1, 0, 0))
    run = run_saem(prob, layout, layout.x0, settings, rng)
    assert run.acceptance["prior"] == 1.0 and run.trace.shape[0] == 2
    omega = run.trace[1, 3:8]                                      # omega(0,0), (1,0), (1,1), (2,1), (2,2)
    np.testing.assert_allclose(omega[[0, 2, 4]], np.var(eta, axis=0), rtol=1e-10)
    assert omega[1] == 0.0 and omega[3] == 0.0
    np.testing.assert_allclose(st.omega(run.x), np.diag(np.var(eta, axis=0)), rtol=1e-10, atol=0)
