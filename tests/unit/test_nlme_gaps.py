"""Rules of the population fit (pkpd/estimation) left unguarded by the independent mutation samples of seeds 23 to
39 (docs/testing.md), one test per rule, each against an answer worked out here (a closed form, a hand-computed
matrix, the documented message). Each was seen to fail with its mutant applied by hand (commit messages).
Section "seed 42" (the independent sample of seed 42, 40 of 7888, issue 20): the notebook summary shows each standard
error, the square root of the covariance's diagonal to 3 significant digits, with its RSE % (100 SE / estimate)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError
from pkpd.estimation.covariance import _covariance_step
from pkpd.estimation.population_fit import _coefficient_steps, _initial_problem, _setup
from pkpd.load import load_model, model_from_dict, tomllib

DATA = Path(__file__).resolve().parents[1] / "data"
WANG = DATA / "wang2007" / "wang2007.csv"
ENDPOINTS = DATA / "models" / "endpoints_exposure.toml"


class _Matrices:
    """A stand-in for a fit's run in the covariance step: it returns the given R and S."""

    def __init__(self, R: np.ndarray, S: np.ndarray):
        self.R, self.S = R, S

    def matrices(self, x: np.ndarray):
        return self.R, self.S


# every internal parameter is the log of its natural value, so the delta method's Jacobian is diag(exp(x))
LOG_LAYOUT = SimpleNamespace(natural=np.exp)


def _inverse_2x2(a: float, b: float, d: float) -> np.ndarray:
    """The inverse of the symmetric matrix [[a, b], [b, d]] by its closed form."""
    return np.array([[d, -b], [-b, a]]) / (a * d - b * b)


def test_covariance_step_falls_back_to_s_and_says_why_r_failed():
    """R = diag(4, -1) is not positive definite (the second parameter, b, lies along its negative eigenvalue), S is:
    the sandwich and 2 R^-1 are unavailable, the covariance is 4 S^-1 taken to the natural scale (J = diag(exp x)),
    and the message gives the fallback and its reason in full."""
    _assert_fallback_covariance(
        np.diag([4.0, -1.0]), np.array([[2.0, 0.5], [0.5, 1.0]]),
        "4 S^-1 (cross-product) (fallback: the R matrix is not positive definite - the estimates may not be at a "
        "minimum or a parameter is not identifiable (responsible: b); sandwich unavailable; R unavailable)",
        4 * _inverse_2x2(2.0, 0.5, 1.0))


def _assert_fallback_covariance(R, S, message, on_internal_scale):
    """The sandwich covariance step of a two-parameter log-scale layout at (a, b) = (2, 3) with these R and S: its
    whole message, and its covariance ``on_internal_scale`` taken to the natural scale (J = diag(2, 3))."""
    x = np.log([2.0, 3.0])
    cov, msg = _covariance_step(LOG_LAYOUT, x, _Matrices(R, S), "sandwich", ["a", "b"])
    assert msg == message
    J = np.diag([2.0, 3.0])
    np.testing.assert_allclose(cov, J @ on_internal_scale @ J, rtol=1e-8)


def test_covariance_step_gives_conditional_standard_errors_when_one_parameter_is_flat():
    """R has a zero row and column for c (the objective does not depend on it) and S = g g' has rank 1, so neither
    R nor S can be inverted: a and b get 2 R^-1 of their own block (conditional on c), c none (NaN), and the
    message names c."""
    R = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    g = np.array([1.0, 1.0, 0.0])
    x = np.log([2.0, 3.0, 5.0])
    cov, msg = _covariance_step(LOG_LAYOUT, x, _Matrices(R, np.outer(g, g)), "sandwich", ["a", "b", "c"])
    assert msg == (
        "2 R^-1 of the parameters the data inform: the R matrix is not positive definite and the S matrix is "
        "singular; no standard error for c (the objective is flat there: the data do not inform it; consider fixing "
        "it or removing it), and the other standard errors are conditional on its estimate"
    )
    J = np.diag([2.0, 3.0])
    np.testing.assert_allclose(cov[:2, :2], J @ (2 * _inverse_2x2(2.0, 0.5, 1.0)) @ J, rtol=1e-8)
    assert np.all(np.isnan(cov[2])) and np.all(np.isnan(cov[:, 2]))


def test_coefficient_steps_move_each_typical_value_by_ten_percent():
    """The optimiser's weight of a covariate coefficient: the change that moves the typical value of the subject
    farthest from the reference by 10 %. Weights 60 and 80 kg, reference 70: a linear slope b (factor 1 + b (WT - 70))
    needs 0.1 / 10; a power exponent (factor (WT/70)^b) needs 0.1 / log(7/6)."""
    rows = []
    for i, wt in ((1, 60.0), (2, 80.0)):
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, EVID=1, AMT=100.0, AMTU="mg", WT=wt))
        rows += [dict(ID=i, TIME=t, DV=1.0, EVID=0, AMT=0.0, AMTU="mg", WT=wt) for t in (1.0, 4.0)]
    effects = [
        pkpd.CovariateEffect("CL", "WT", "linear", 0.01, ref=70.0),
        pkpd.CovariateEffect("V", "WT", "power", 1.0, ref=70.0),
    ]
    *_, layout, _ = _setup("pk_1cmt_oral", pd.DataFrame(rows), {"CL": 0.1}, pkpd.Proportional(cv=0.1), "focei",
                           None, None, None, None, effects)
    np.testing.assert_allclose(_coefficient_steps(layout), [0.1 / 10.0, 0.1 / math.log(7.0 / 6.0)], rtol=1e-12)


def test_a_variance_the_data_do_not_support_stops_at_its_floor():
    """Four subjects with the same observations (Wang 2007's f = 10 exp(-ke t)): no spread between subjects, so the
    FO estimate of omega^2 goes to its floor, exp(2 x -12) = 3.8e-11 (the bound of the log Cholesky diagonal,
    docs/performance.md "its bound, 4e-11"), where Fisher scoring converges; with omega^2 ~ 0 the fit is nonlinear
    least squares: ke minimises the residual sum of squares (scipy here) and sd = sqrt(RSS / n)."""
    from scipy.optimize import minimize_scalar

    t = np.array([0.0, 1.0, 2.0, 4.0, 6.0])
    y = 10 * np.exp(-0.5 * t) + np.array([0.2, -0.15, 0.1, -0.05, 0.08])
    data = pd.DataFrame({"ID": np.repeat([1, 2, 3, 4], t.size), "TIME": np.tile(t, 4), "DV": np.tile(y, 4)})
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="fo",
                              covariance=None)
    if fit.engine != "compiled":
        pytest.skip("FO's Fisher scoring needs the compiled engine")
    assert fit.converged and fit.message.startswith("Fisher scoring: Newton decrement")
    assert fit.n_failures == 0
    assert fit.omega[0, 0] == pytest.approx(math.exp(-24.0), rel=1e-9)

    def rss(k: float) -> float:
        return float(np.sum((y - 10 * np.exp(-k * t)) ** 2))

    ke = minimize_scalar(rss, bounds=(0.1, 2.0), method="bounded", options={"xatol": 1e-12}).x
    assert fit.theta["ke"] == pytest.approx(ke, rel=1e-4)
    assert fit.error["f"].sd == pytest.approx(math.sqrt(rss(ke) / t.size), rel=1e-4)


def test_an_objective_that_cannot_be_evaluated_names_the_subjects_and_the_endpoint_record():
    """Ordinal grade records (endpoints_exposure.toml, categories 0-3) with intercepts a1 = -1 < a2 = 0.5: P(grade
    = 1) = expit(a1) - expit(a2) < 0 for both subjects, so the fit stops at its initial values and the message names
    both subjects, the first bad record (subject 1, 5 h, data row 1) and the rule it breaks."""
    model = pkpd.load_model(ENDPOINTS)
    data = pd.DataFrame([(1, 5.0, 1, "grade"), (2, 6.0, 1, "grade")], columns=["ID", "TIME", "DV", "DVID"])
    with pytest.raises(FitError) as info:
        pkpd.fit_population(model, data, iiv={"h0": 0.1}, method="laplace", estimate=["a1", "a2"],
                            init={"a1": -1.0, "a2": 0.5})
    assert str(info.value) == (
        "fit_population: the objective cannot be evaluated at the initial values for subjects 1, 2: ordinal output "
        "'grade' at subject 1, t = 5 h (row 1): the cumulative logits must decrease from one category to the next "
        "(intercepts in decreasing order)"
    )


def test_a_finite_difference_fit_without_failed_evaluations_reports_none(monkeypatch):
    """Wang 2007 by FOCE on the finite-difference engine (the compiled library refused): every objective evaluation
    of the optimisation can be computed, so the fit counts no failures and its message reports none."""
    import pkpd.estimation._compiled as compiled

    monkeypatch.setattr(compiled, "available", lambda: False)
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="foce",
                              covariance=None)
    assert fit.engine.startswith("finite differences")
    assert fit.converged and fit.n_evaluations > 0
    assert fit.n_failures == 0
    assert "could not be computed" not in fit.message


def test_a_fit_reports_the_seconds_it_took():
    """fit.seconds is the wall time of the fit itself: positive and no more than the time measured around the
    call."""
    import time

    start = time.perf_counter()
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                              covariance=None)
    elapsed = time.perf_counter() - start
    assert 0.0 < fit.seconds <= elapsed


def test_covariance_step_that_fails_says_why_in_full():
    """R = [[-1]] is not positive definite and no parameter can be dropped (more than half would go), and S = [[0]]
    is singular: no covariance, and the message gives the reason, the responsible parameter and the advice in
    full (seed 24's survivor covariance._covariance_step _94)."""
    cov, msg = _covariance_step(LOG_LAYOUT, np.log([2.0]), _Matrices(np.array([[-1.0]]), np.zeros((1, 1))),
                                "sandwich", ["a"])
    assert cov is None
    assert msg == (
        "covariance step failed: the R matrix (Hessian of the OFV) is not positive definite and the S matrix is "
        "singular, so no standard errors are shown (responsible: a); the model may be over-parameterised (fix a "
        "parameter or remove a random effect) or the fit has not converged"
    )


def test_a_fit_returns_the_covariance_whose_diagonal_gives_its_standard_errors():
    """Wang 2007 by FOCE with the default sandwich covariance: fit.covariance is the natural-scale covariance
    matrix of the estimates, square and symmetric over the parameters, and its diagonal's square roots are the
    standard errors of fit.parameters (seed 24's survivor population_fit._fit_population _587)."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="foce")
    se = fit.parameters["se"].to_numpy(dtype=float)
    assert fit.covariance is not None
    assert fit.covariance.shape == (se.size, se.size)
    np.testing.assert_allclose(fit.covariance, fit.covariance.T, rtol=1e-12)
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.covariance)), se, rtol=1e-12)


class _Linear:
    """A stand-in for a fit's run: the objective g . x (a constant gradient), recording where it is evaluated."""

    def __init__(self, g: np.ndarray):
        self.g, self.points = g, []

    def value_and_gradient(self, x: np.ndarray):
        self.points.append(np.array(x, dtype=float))
        return float(self.g @ x), self.g.copy()


def test_lbfgsb_first_step_moves_a_covariate_coefficient_by_its_ten_percent_step():
    """Issue 18: the objective is scaled so that the initial gradient, each covariate coefficient's weighted by the
    inverse of its 10 % step (0.1 / 10 for a linear WT effect, weights 60 and 80 kg, reference 70), is at most 1.
    With every variable bounded, L-BFGS-B's first trial point is x - scale * g (identity Hessian, step 1): a
    log-scale theta with gradient 0.5 moves by 0.5 * 0.01 / 50, the coefficient with gradient 50 by exactly its
    step 0.01, not by 50 (seed 24's survivor population_fit._lbfgsb _4)."""
    from pkpd.estimation.population_fit import _lbfgsb

    effect = SimpleNamespace(kind="linear", ref=70.0)
    layout = SimpleNamespace(effects=[effect], effect_columns=[np.array([60.0, 80.0])])
    run = _Linear(np.array([0.5, 50.0]))
    _lbfgsb(run, layout, np.zeros(2), [(-100.0, 100.0), (-100.0, 100.0)], 1, run.g)
    np.testing.assert_allclose(run.points[0], [0.0, 0.0])
    np.testing.assert_allclose(run.points[1], [-0.5 * 0.01 / 50.0, -0.01], rtol=1e-9, atol=1e-15)


# no dose: A starts at B0 / D and decays at rate K; D = 0 gives a start of inf, so the model cannot be solved
RATIO = load_model(DATA / "models" / "decay_from_a_ratio.toml")


def test_a_model_that_cannot_be_solved_at_the_initial_values_is_named_in_full():
    """A(0) = B0 / D with D fixed at 0: every prediction is unusable, and the reason names the first observation
    (subject 1, t = 1 h, data row 1: the first record) and ends with the advice in full (seed 24's survivor
    population_fit._initial_problem _60)."""
    rows = [dict(ID=i, TIME=t, DV=1.0, EVID=0, AMT=0.0) for i, ts in ((1, (1.0, 2.0)), (2, (1.0, 3.0))) for t in ts]
    *_, layout, prob = _setup(RATIO, pd.DataFrame(rows), {"K": 0.1}, {"amount": pkpd.Additive(sd=0.1)}, "foce",
                              None, None, None, {"D": 0.0})
    assert _initial_problem(prob, layout, layout.x0) == (
        "the model cannot be solved for subject 1, t = 1 h (row 1) (typical values); check the initial values and "
        "the solver settings"
    )


def test_conditional_tail_of_a_singular_hessian_is_nan_without_warnings():
    """A subject whose Hessian approximation A = diag(1, 0) is singular (log|A| = -inf) and whose derivative of A
    is infinite: the first-order correction adds -inf + inf, and the OFV is NaN (sign of |A| not positive), quietly,
    with no RuntimeWarning (pytest turns warnings into errors; seed 24's survivor
    _objective.PopulationObjective._conditional_tail _68)."""
    from pkpd.estimation._objective import PopulationObjective

    O_d2 = np.zeros((1, 2, 3))
    O_d2[0, 0, 0] = O_d2[0, 1, 1] = 1.0                  # the exact Hessian in eta: the identity
    dA = np.zeros((1, 2, 2, 3))
    dA[0, 0, 0, 0] = np.inf
    A = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ofv, grad = PopulationObjective._conditional_tail(
            SimpleNamespace(q=2), np.array([3.0]), np.array([[-1e-5, 0.0, 0.0]]), O_d2, A, dA,
            np.array([[0.1, 0.2]]), np.eye(2), False)
    assert grad is None
    assert ofv.shape == (1,) and np.isnan(ofv[0])


# A(t) = B0 + S t: predictions linear in the parameters, so with normal (additive) random effects the population
# model is linear and FOCE's Omega is the maximum-likelihood covariance of the subjects' parameters
_LINE_TOML = """
[model]
name = "line"
time_unit = "h"
[parameters.B0]
value = 100.0
unit = "mg"
[parameters.S]
value = 20.0
unit = "mg/h"
[states.A]
unit = "mg"
initial = "B0"
ddt = "S"
[outputs.amount]
expression = "A"
unit = "mg"
"""
LINE = model_from_dict(tomllib.loads(_LINE_TOML))


def test_an_off_diagonal_cholesky_element_of_omega_is_not_bounded():
    """16 subjects on lines B0_i + S_i t with B0 and S strongly correlated (SD 10 each), observed almost without
    error: the estimated Omega is the ML covariance of (B0_i, S_i), about [[100, 98], [98, 96]], whose Cholesky
    factor has off-diagonal 9.8, beyond the (-12, 5) bound of the log diagonal elements, which must not apply to it
    (seed 24's survivor population_fit._fit_population _116 gives an Omega of about 26)."""
    rng = np.random.default_rng(1)
    e = rng.standard_normal(16)
    e = (e - e.mean()) / e.std()
    b0, s = 100 + 10 * e, 20 + 10 * e + 0.5 * rng.standard_normal(16)
    t = np.array([0.0, 1.0, 2.0, 3.0])
    data = pd.DataFrame([dict(ID=i + 1, TIME=tt, DV=b0[i] + s[i] * tt + 0.01 * rng.standard_normal(), EVID=0,
                              AMT=0.0) for i in range(16) for tt in t])
    expected = np.cov(np.column_stack([b0, s]).T, bias=True)
    assert np.linalg.cholesky(expected)[1, 0] > 9.0
    iiv = pkpd.IIV({"B0": 50.0, "S": 50.0}, covariances={("B0", "S"): 10.0}, distribution="normal")
    fit = pkpd.fit_population(LINE, data, iiv=iiv, error=pkpd.Additive(sd=0.05), method="foce", covariance=None,
                              estimate=["B0", "S"])
    assert fit.converged
    np.testing.assert_allclose(fit.omega, expected, rtol=0.01)
    assert fit.theta["B0"] == pytest.approx(b0.mean(), rel=1e-3)
    assert fit.theta["S"] == pytest.approx(s.mean(), rel=1e-2)


# --- seed 25 -------------------------------------------------------------------------------------------------------
def test_iwres_is_the_individual_residual_over_its_standard_deviation():
    """Wang 2007 at its initial values with a proportional error of CV 0.1: IWRES = (DV - IPRED) / sd, the
    standard deviation of the error model at the individual prediction, sd = 0.1 IPRED (seed 25's survivor
    population_fit._diagnostics _159 multiplies by it)."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Proportional(cv=0.1), maxeval=0,
                              covariance=None)
    t = fit.table
    assert len(t) > 0 and np.all(t["IPRED"] > 0)
    np.testing.assert_allclose(t["IWRES"], (t["DV"] - t["IPRED"]) / (0.1 * t["IPRED"]), rtol=1e-12)


def test_parameter_table_gives_no_cv_for_a_logit_normal_random_effect():
    """cv_percent is documented for log-normal (100 sqrt(exp(omega^2) - 1)) and normal (100 omega / theta) random
    effects and NaN otherwise: a logit-normal ke (0.5, omega^2 = 0.04) has none (seed 25's survivor
    PopulationFit.parameter_table _74 gives it 100 * 0.2 / 0.5 = 40)."""
    iiv = pkpd.IIV({"ke": 0.04}, distribution={"ke": "logitnormal"})
    fit = pkpd.fit_population("wang2007", WANG, iiv=iiv, error=pkpd.Additive(sd=0.3), maxeval=0, covariance=None)
    table = fit.parameter_table().set_index("name")
    assert table.loc["omega2_ke", "estimate"] == pytest.approx(0.04)
    assert np.isnan(table.loc["omega2_ke", "cv_percent"])


def test_population_objective_integrates_with_the_given_solver_settings():
    """An ODE integration allowed one step cannot reach any observation of Wang 2007: population_objective must
    use those settings and report every subject unsolvable, not fall back to the default settings (seed 25's
    survivor population_fit.population_objective _10, which returns the OFV)."""
    from pkpd.nlme import population_objective

    with pytest.raises(FitError) as info:
        population_objective("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3),
                             settings=pkpd.SolverSettings(method="ode", max_steps=1))
    assert str(info.value) == (
        "the objective cannot be evaluated at these parameter values for subjects 1, 2, 3, 4, 5 and 5 more: the "
        "model cannot be solved for subject 1, t = 0 h (row 1) (typical values); check the initial values and the "
        "solver settings"
    )


def test_a_first_occasion_of_one_record_starts_the_next_at_its_first_record():
    """OCC 1 on the dose at 0 h only, OCC 2 from 24 h, OCC 3 from 48 h: occasions that follow each other, so
    the occasion starts are (-inf, 24, 48) h, each occasion starting at its first record (seed 25's survivor
    population_model._occasion_starts _52 takes OCC of the second record for the first occasion and refuses
    the data)."""
    from pkpd.estimation.population_model import _occasion_starts

    data = pd.DataFrame([
        dict(ID=1, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=1),
        dict(ID=1, TIME=24.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=2),
        dict(ID=1, TIME=30.0, DV=1.0, AMT=0.0, EVID=0, CMT=1, MDV=0, OCC=2),
        dict(ID=1, TIME=48.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=3),
        dict(ID=1, TIME=54.0, DV=1.0, AMT=0.0, EVID=0, CMT=1, MDV=0, OCC=3),
    ])
    starts = _occasion_starts(load_model("pk_1cmt_iv"), data, SimpleNamespace(ids=[1]))
    np.testing.assert_array_equal(starts, [[-np.inf, 24.0, 48.0]])


def _steady_state_tables(t0: float = 240.0, ii: float = 12.0, k: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two subjects of pk_1cmt_oral at steady state of 100 mg every 12 h: an SS=1 record at t0 (then one more
    dose), and the same with the 20 doses before t0 given explicitly (20 intervals are 30 half-lives of CL/V =
    2.8/32 1/h: the steady state to 1e-9). Subject 1 has four observations, subject 2 two, so that subject 2's
    rows are padded."""
    dose = dict(EVID=1, CMT=1, AMT=100.0, AMTU="mg", DV=np.nan, SS=0, II=0.0, ADDL=0)
    obs = {1: [(1.0, 2.1), (4.0, 2.6), (8.0, 1.9), (20.0, 1.1)], 2: [(2.0, 3.4), (11.0, 1.5)]}
    ss, unrolled = [], []
    for i, points in obs.items():
        ss.append(dict(ID=i, TIME=t0, **(dose | dict(SS=1, II=ii, ADDL=1))))
        unrolled += [dict(ID=i, TIME=t0 - j * ii, **dose) for j in range(k, 0, -1)]
        unrolled.append(dict(ID=i, TIME=t0, **(dose | dict(II=ii, ADDL=1))))
        records = [dict(ID=i, TIME=t0 + t, EVID=0, CMT=2, AMT=0.0, AMTU="mg", DV=y, SS=0, II=0.0, ADDL=0)
                   for t, y in points]
        ss += records
        unrolled += records
    return pd.DataFrame(ss), pd.DataFrame(unrolled)


@pytest.mark.parametrize("method, error", [("focei", pkpd.Proportional(cv=0.1)), ("foce", pkpd.LogNormal(sigma=0.1))])
def test_steady_state_records_of_subjects_with_fewer_observations_give_the_unrolled_objective(method, error):
    """SS records are simulated record by record, whose padding of absent observations is a prediction of 0; that
    padding must stay out of the likelihood (s = 0.1 x 0 for a proportional error, log 0 for a log-normal one made
    the Hessian NaN and the objective 'cannot be evaluated' for subject 2, seed 25's survivor
    finite_difference._Problem.predict _60). The objective equals that of the same doses given explicitly."""
    from pkpd.nlme import population_objective

    ss, unrolled = _steady_state_tables()
    kw = dict(iiv={"CL": 0.09, "V": 0.04}, error=error, method=method)
    expected = population_objective("pk_1cmt_oral", unrolled, **kw)
    assert population_objective("pk_1cmt_oral", ss, **kw) == pytest.approx(expected, abs=1e-5)


def test_a_subject_whose_gradient_is_not_finite_is_the_only_one_counted_as_failed():
    """Three subjects with finite OFVs, the second with a NaN gradient: that evaluation is rejected (the penalty, a
    zero gradient) and only subject index 1 is recorded as failed, the subjects the fit's message names (seed 25's
    survivor population_fit._GradientRun._eval _54 marks all three)."""
    from pkpd.estimation._objective import Evaluation
    from pkpd.estimation.population_fit import _PENALTY, _GradientRun

    gradient = np.array([[1.0, 2.0], [np.nan, 0.5], [0.25, -1.0]])
    ev = Evaluation(ofv=np.array([1.0, 2.0, 3.0]), gradient=gradient, eta=np.zeros((3, 1)),
                    status=np.zeros(3, dtype=np.int64), n_iter=np.ones(3, dtype=np.int64))
    engine = SimpleNamespace(method="focei", evaluate=lambda x, eta, gradient=True, **kw: ev)
    run = _GradientRun(engine, None, None)
    value, g = run.value_and_gradient(np.zeros(2))
    assert value == _PENALTY and np.array_equal(g, np.zeros(2))
    assert run.n_failures == 1 and run.failed_subjects == {1}


# a bolus whose concentration drives a binary response: P(resp = 1) = expit(b0 + b1 A / V)
BOLUS_RESPONSE = model_from_dict(tomllib.loads("""
[model]
name = "bolus_response"
time_unit = "h"
[parameters.k]
value = 0.1
unit = "1/h"
[parameters.V]
value = 10.0
unit = "L"
[parameters.b0]
value = -1.0
unit = "1"
[parameters.b1]
value = 0.2
unit = "L/mg"
[states.A]
unit = "mg"
initial = "0"
ddt = "-k * A"
[outputs.conc]
expression = "A / V"
unit = "mg/L"
[outputs.resp]
type = "binary"
probability = "1 / (1 + exp(-(b0 + b1 * A / V)))"
[doses.iv]
target = "A"
unit = "mg"
"""))


def test_steady_state_records_give_endpoint_records_their_predictions():
    """100 mg every 12 h to steady state (an SS=1 record at 240 h, or the 20 doses before it given explicitly: 24
    half-lives of k = 0.1 1/h), concentrations and binary responses observed after it: on the record-by-record
    path the response records must get the predicted probability, not the 0 of the padding (which made P(resp = 1)
    = 0 for subject 1's response and the objective 'cannot be evaluated', and silently gave subject 2's
    non-response a probability of 1; found from seed 25's survivor finite_difference._Problem.predict _60). The
    Laplace objective equals that of the explicit doses."""
    from pkpd.nlme import population_objective

    t0, ii = 240.0, 12.0
    dose = dict(EVID=1, AMT=100.0, AMTU="mg", DV=np.nan, SS=0, II=0.0, ADDL=0, DVID=".")
    observed = {1: [(1.0, 9.0, "conc"), (3.0, 1, "resp"), (6.0, 6.0, "conc")],
                2: [(2.0, 8.0, "conc"), (5.0, 0, "resp")]}
    ss, unrolled = [], []
    for i, points in observed.items():
        ss.append(dict(ID=i, TIME=t0, **(dose | dict(SS=1, II=ii))))
        unrolled += [dict(ID=i, TIME=t0 - j * ii, **dose) for j in range(20, -1, -1)]
        records = [dict(ID=i, TIME=t0 + t, EVID=0, AMT=0.0, AMTU="mg", DV=y, SS=0, II=0.0, ADDL=0, DVID=o)
                   for t, y, o in points]
        ss += records
        unrolled += records
    kw = dict(iiv={"k": 0.04}, error={"conc": pkpd.Proportional(cv=0.1)}, method="laplace")
    expected = population_objective(BOLUS_RESPONSE, pd.DataFrame(unrolled), **kw)
    assert population_objective(BOLUS_RESPONSE, pd.DataFrame(ss), **kw) == pytest.approx(expected, abs=1e-6)


def test_an_initial_value_outside_its_bounds_is_refused_in_full():
    """Wang 2007's ke is bounded to [0.001, 10] and estimates stay within their bounds: a start at 20 is refused
    before any work, the message giving the value, the bounds and both remedies (seed 25's survivor
    population_model._layout _50, '|' -> '&', which can never hold and lets the fit start outside)."""
    with pytest.raises(FitError) as info:
        pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), init={"ke": 20.0},
                            maxeval=0)
    assert str(info.value) == (
        "estimate: the initial value 20 of 'ke' is outside its bounds [0.001, 10], and estimates stay within the "
        "bounds; start inside them (init=) or widen them (model.with_bounds(ke=(low, high)))"
    )


# --- seed 26 -------------------------------------------------------------------------------------------------------
def test_the_reciprocal_of_a_jet_has_the_derivatives_of_1_over_x_and_is_quiet_at_zero():
    """1/x at x = 2 (x the coordinate itself): derivatives -1/x^2, 2/x^3, -6/x^4; at x = 0 the value and the
    first derivative are infinite, quietly (jets compute in IEEE arithmetic and their callers test finiteness; pytest
    turns a RuntimeWarning into an error; seed 26's survivor _jets.reciprocal _1, np.errstate(all=None))."""
    from pkpd.estimation import _jets as jets

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = jets.reciprocal(jets.variable(np.array([2.0, 0.0]), 1, 0, order=3))
    np.testing.assert_allclose(r.v[0], 0.5, rtol=1e-15)
    np.testing.assert_allclose([r.d1[0, 0], r.d2[0, 0, 0], r.d3[0, 0, 0, 0]], [-0.25, 0.25, -0.375], rtol=1e-15)
    assert r.v[1] == np.inf and r.d1[1, 0] == -np.inf


class _FailingCentre:
    """A stand-in finite-difference problem of three subjects: every OFV is 1 except subject index 2's at the centre
    row (row 0 of each batch), which cannot be computed (NaN)."""

    n, q = 3, 1

    def ofv(self, theta, omega, errs, eta0):
        out = np.ones((theta.shape[0], self.n))
        out[0, 2] = np.nan
        return out, np.zeros((theta.shape[0], self.n, self.q)), None


def test_finite_difference_run_counts_every_evaluation_that_fails():
    """Two evaluations at which subject index 2's OFV cannot be computed: the run counts 2 failures (the count the
    fit's message reports) and records subject 2 alone (seed 26's survivor _FiniteDifferenceRun.value_and_gradient
    _9 counts -2)."""
    from pkpd.estimation.population_fit import _FiniteDifferenceRun

    layout = SimpleNamespace(unpack=lambda X: (X, None, None), subject_theta=lambda X, theta: theta)
    run = _FiniteDifferenceRun(_FailingCentre(), layout)
    for _ in range(2):
        value, _g = run.value_and_gradient(np.zeros(1))
        assert np.isnan(value)
    assert run.n_failures == 2 and run.failed_subjects == {2}


def test_an_iov_variance_the_data_do_not_support_stops_at_the_floor_of_omegas():
    """Four subjects, each observed on two occasions (100 mg IV at 0 and 200 h, CL varying between subjects only)
    with the same relative residuals on both: no variability between occasions, so the inter-occasion variance
    goes to its floor, that of Omega's diagonal, exp(2 x -12) = 3.8e-11 (seed 26's survivor
    population_fit._fit_population _131 lets it go to exp(2 x -13) = 5.1e-12)."""
    fit = pkpd.fit_population("pk_1cmt_iv", _two_occasion_data(), iiv={"CL": 0.09}, iov={"CL": 0.01},
                              error=pkpd.Proportional(cv=0.05), method="foce", estimate=["CL"], covariance=None)
    assert fit.converged
    assert fit.iov.omega[0, 0] == pytest.approx(math.exp(-24.0), rel=1e-9)


def test_a_fit_whose_optimisation_met_an_objective_that_could_not_be_computed_says_so_in_full(monkeypatch):
    """Wang 2007 by FOCE on the finite-difference engine, subject 2's OFV made NaN at the centre of the first
    evaluation of the optimisation (the third batch: the start and its gradient come first): that evaluation fails,
    the fit counts 1 failure, and its message ends with the documented sentence in full, naming subject 2 (seed 26's
    survivors population_fit._fit_population _321, part of the sentence upper-cased, and
    _FiniteDifferenceRun.value_and_gradient _9, '-1 of')."""
    import pkpd.estimation._compiled as compiled
    from pkpd.estimation.finite_difference import _Problem

    monkeypatch.setattr(compiled, "available", lambda: False)
    ofv = _Problem.ofv
    calls = []

    def failing_once(self, *args, **kwargs):
        out, eta, info = ofv(self, *args, **kwargs)
        calls.append(out.shape[0])
        if len(calls) == 3:
            out = out.copy()
            out[0, 1] = np.nan
        return out, eta, info

    monkeypatch.setattr(_Problem, "ofv", failing_once)
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="foce",
                              covariance=None, maxeval=5)
    assert fit.n_failures == 1
    assert fit.n_evaluations == sum(calls)
    assert fit.message.endswith(
        f"; 1 of {fit.n_evaluations} objective evaluations during the optimisation could not be computed (subjects 2: "
        "the model could not be solved or the objective was not finite there) and were rejected by the line search")


# the line model with two covariates declared
LINE_COV = model_from_dict(tomllib.loads(_LINE_TOML.replace('name = "line"', 'name = "line_cov"') + """
[covariates.WT]
unit = "kg"
value = 70.0
[covariates.AGE]
unit = "year"
value = 40.0
"""))


def _line_cov_engine(rows):
    """(layout, compiled FOCE-I engine) of the line model on ``rows`` with B0 scaled linearly by WT (0.01 per kg
    from 70 kg) and by a power of AGE (0.3 from 40 y), normal IIV on B0 and S; skips without the compiled engine."""
    from pkpd.estimation.population_fit import _objective_engine

    effects = [pkpd.CovariateEffect("B0", "WT", "linear", 0.01, ref=70.0),
               pkpd.CovariateEffect("B0", "AGE", "power", 0.3, ref=40.0)]
    iiv = pkpd.IIV({"B0": 50.0, "S": 10.0}, distribution="normal")
    *_, layout, prob = _setup(LINE_COV, pd.DataFrame(rows), iiv, pkpd.Additive(sd=0.5), "focei", ["B0", "S"], None,
                              None, None, effects)
    engine = _objective_engine(prob, layout)
    if engine is None:
        pytest.skip("the analytic gradient needs the compiled engine")
    return layout, engine


def _gradient_and_central_differences(engine, x):
    """The compiled engine's analytic gradient of the summed OFV at ``x`` and its central differences (step 1e-4
    relative, the EBEs held at those of ``x``)."""
    with np.errstate(all="ignore"):
        ev = engine.evaluate(x, None)
        assert np.all(ev.status == 0)
        g = ev.gradient.sum(axis=0)
        fd = np.empty_like(g)
        for k in range(x.size):
            h = 1e-4 * max(1.0, abs(x[k]))
            e = np.zeros_like(x)
            e[k] = h
            fd[k] = (engine.evaluate(x + e, ev.eta, gradient=False).ofv.sum()
                     - engine.evaluate(x - e, ev.eta, gradient=False).ofv.sum()) / (2 * h)
    return g, fd


def test_gradient_by_a_natural_scale_typical_value_with_two_covariate_effects_equals_central_differences():
    """The line model's B0 (no bounds: estimated on its natural scale) carries two covariate effects, a linear one
    in WT (slope 0.01 per kg from 70 kg) and a power one in AGE (exponent 0.3 from 40 y): its typical value for a
    subject is B0 (1 + 0.01 (WT - 70)) (AGE / 40)^0.3, so the FOCE-I gradient by B0 carries the product of both
    factors, and the one by the linear slope (WT - 70) / (1 + b (WT - 70)) (d log of its factor). The analytic
    gradient must equal central differences of the objective (seed 26's survivors
    PopulationObjective._effect_factors _18, the last factor only, and _effect_dlog _41, '*' for '/')."""

    t = np.array([0.0, 1.0, 2.0, 3.0])
    rows = []
    for i, (wt, age, e) in enumerate(((55.0, 25.0, 0.3), (70.0, 40.0, -0.2), (85.0, 60.0, 0.1), (100.0, 33.0, -0.4)),
                                     start=1):
        b0 = 100 * (1 + 0.01 * (wt - 70)) * (age / 40) ** 0.3 + 10 * e
        rows += [dict(ID=i, TIME=tt, DV=b0 + (20 - 5 * e) * tt + 0.5 * math.sin(3 * i + tt), EVID=0, AMT=0.0,
                      WT=wt, AGE=age) for tt in t]
    layout, engine = _line_cov_engine(rows)
    assert not layout.theta_log[0]
    x = layout.x0 + 0.05 * np.cos(np.arange(layout.x0.size))
    g, fd = _gradient_and_central_differences(engine, x)
    assert np.max(np.abs(g - fd) / np.maximum(np.abs(fd), 1.0)) < 1e-5, dict(zip(layout.names(), zip(g, fd)))


class _ScoringProblem:
    """A stand-in FO run for Fisher scoring over x = (theta, log L00, L10, log L11): the objective
    (x0 - 1)^2 + 3 exp(2 x1) + (x2 + 0.4)^2 + (x3 - 0.2)^2 with its exact Hessian as the information, recording the
    points evaluated. Its minimum lies at the floor of the first variance, exp(2 x1) -> 0."""

    def __init__(self):
        self.points = []

    def value_gradient_information(self, x):
        self.points.append(np.array(x, dtype=float))
        v = math.exp(2 * x[1])
        f = (x[0] - 1) ** 2 + 3 * v + (x[2] + 0.4) ** 2 + (x[3] - 0.2) ** 2
        g = np.array([2 * (x[0] - 1), 6 * v, 2 * (x[2] + 0.4), 2 * (x[3] - 0.2)])
        return f, g, np.diag([2.0, 12 * v, 2.0, 2.0])

    def value_and_gradient(self, x):
        f, g, _ = self.value_gradient_information(x)
        return f, g


def test_fo_scoring_takes_a_variance_heading_for_zero_to_its_floor():
    """FO's Fisher scoring with Omega's Cholesky factor (diagonal entries on the log scale, bounded by (-12, 5), the
    off-diagonal one free): the Newton step in x1 = log L00 is -1/2 whatever the variance, so in x it would creep
    towards 0 and stop where the Newton decrement 3 exp(2 x1) falls below 1e-5 (x1 ~ -6.4, a variance of 3e-6); in
    the variance it is v (1 + 2 (-1/2)) = 0, and the documented rule (fisher_scoring: a variance heading for 0
    goes to its bound at once) puts x1 at its floor -12 in the first step, the quadratic parameters (the
    off-diagonal entry among them) at their minima 1, -0.4 and 0.2 (seed 26's survivor population_fit._fo_scoring
    _21 marks the off-diagonal entry as the log variance instead, and the fit ends at x1 = -6.4; before the fix of
    _bounded_step, the rounding of 1 + 2 (v_floor - 1)/2 left the first step a hair short of the bound, so the
    trust radius capped every step to a sixth: (1/6, -2, -1/15, 1/30))."""
    from pkpd.estimation.population_fit import _fo_scoring

    layout = SimpleNamespace(theta_names=("a",), chol_index=((0, 0), (1, 0), (1, 1)), effects=[], effect_columns=[])
    run = _ScoringProblem()
    bounds = [(None, None), (-12.0, 5.0), (None, None), (-12.0, 5.0)]
    x, converged, message = _fo_scoring(run, layout, np.zeros(4), bounds, None)
    np.testing.assert_allclose(run.points[1], [1.0, -12.0, -0.4, 0.2], rtol=1e-12, atol=1e-12)
    assert converged and message.startswith("Fisher scoring: ")
    np.testing.assert_allclose(x, [1.0, -12.0, -0.4, 0.2], rtol=1e-9, atol=1e-9)


# --- seed 27 -------------------------------------------------------------------------------------------------------
def _two_occasion_data() -> pd.DataFrame:
    """Four subjects, 100 mg IV at 0 and 200 h (occasions 1 and 2), four concentrations after each dose."""
    times = np.array([1.0, 4.0, 8.0, 12.0])
    noise = 1 + 0.05 * np.array([1.0, -1.0, 0.5, -0.5])
    rows = []
    for i, cl in enumerate((2.0, 2.8, 3.5, 4.2), start=1):
        for occ, start in ((1, 0.0), (2, 200.0)):
            rows.append(dict(ID=i, TIME=start, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=occ))
            conc = 100 / 32.0 * np.exp(-cl / 32.0 * times) * noise
            rows += [dict(ID=i, TIME=start + t, DV=y, AMT=0.0, EVID=0, CMT=1, MDV=0, OCC=occ)
                     for t, y in zip(times, conc)]
    return pd.DataFrame(rows)


def test_parameter_table_of_a_fit_with_iov_gives_the_cv_of_the_inter_occasion_variance():
    """A fit with log-normal IIV (omega^2 = 0.09) and IOV (pi^2 = 0.04) on CL, not optimised (maxeval=0): the table's
    cv_percent is 100 sqrt(exp(omega^2) - 1) for both variances (the documented rule), 30.69 % and 20.20 %; the
    inter-occasion variance has no eta shrinkage (seed 27's survivor PopulationFit.parameter_table _41,
    zip(None, ...), fails on any fit with IOV)."""
    fit = pkpd.fit_population("pk_1cmt_iv", _two_occasion_data(), iiv={"CL": 0.09}, iov={"CL": 0.04},
                              error=pkpd.Proportional(cv=0.05), method="foce", estimate=["CL"], covariance=None,
                              maxeval=0)
    table = fit.parameter_table().set_index("name")
    assert table.loc["iov2_CL", "estimate"] == pytest.approx(0.04, rel=1e-12)
    assert table.loc["iov2_CL", "cv_percent"] == pytest.approx(100 * math.sqrt(math.expm1(0.04)), rel=1e-12)
    assert table.loc["omega2_CL", "cv_percent"] == pytest.approx(100 * math.sqrt(math.expm1(0.09)), rel=1e-12)
    assert np.isnan(table.loc["iov2_CL", "shrinkage_percent"])
    assert np.isnan(table.loc["CL", "cv_percent"])


def test_finite_difference_objective_of_an_omega_that_is_not_positive_definite_is_the_penalty():
    """Wang 2007's finite-difference problem, two parameter sets of which one has the variance -0.04: Omega has no
    Cholesky factor, so the batch cannot be evaluated and every subject gets the penalty share 1e10 / n (each row
    sums to the penalty, the 'cannot be computed' mark of the fit's run), with zero EBEs; a positive variance gives a
    finite objective (seed 27's survivor finite_difference._Problem.ofv _13, np.full(None, ...), raises instead)."""
    from pkpd.estimation.population_fit import _FiniteDifferenceRun

    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), pkpd.Additive(sd=0.3), "focei", None,
                              None, None, None)
    X = np.stack([layout.x0, layout.x0])
    theta, omega, errs = layout.unpack(X)
    theta = layout.subject_theta(X, theta)
    assert np.all(np.isfinite(prob.ofv(theta, omega, errs)[0]))
    bad = omega.copy()
    bad[1] = -0.04
    ofv, eta, _ = prob.ofv(theta, bad, errs)
    assert ofv.shape == (2, 10) and eta.shape == (2, 10, 1)
    np.testing.assert_array_equal(ofv, np.full((2, 10), 1e10 / 10))
    np.testing.assert_array_equal(eta, 0.0)
    assert np.all(_FiniteDifferenceRun._bad(ofv.sum(axis=1), 1))


# --- seed 28 -------------------------------------------------------------------------------------------------------
def test_safe_inverse_is_the_exact_inverse_whatever_the_condition_and_the_pseudo_inverse_only_when_singular():
    """``_safe_inv``, the numpy assembly's inverse of A (FOCE-I, FOCE, Laplace) and of C (FO), inverts by LU like the
    compiled assembly: the inverse of an invertible matrix, worked out by hand, however badly conditioned (C of an
    observation of variance 1e-18 beside one of variance 1, condition 1e18: diag(1, 1e18), where the pseudo-inverse
    drops the second entry and with it that observation); the identity for a matrix with a non-finite entry; the
    pseudo-inverse only for a singular one ([[1, 1], [1, 1]]: every entry 1/4). Seed 28's survivor _safe_inv _21,
    np.linalg.inv(None), always takes the pseudo-inverse."""
    from pkpd.estimation._objective import _safe_inv

    A = np.array([[4.0, 2.0], [2.0, 3.0]])
    np.testing.assert_allclose(_safe_inv(A[None]), [[[3 / 8, -2 / 8], [-2 / 8, 4 / 8]]], rtol=1e-14, atol=0)
    C = np.array([[[1.0, 0.0], [0.0, 1e-18]], [[np.nan, 0.0], [0.0, 2.0]]])
    np.testing.assert_allclose(_safe_inv(C), [[[1.0, 0.0], [0.0, 1e18]], np.eye(2)], rtol=1e-14, atol=0)
    np.testing.assert_allclose(_safe_inv(np.array([[[1.0, 1.0], [1.0, 1.0]]])), np.full((1, 2, 2), 0.25),
                               rtol=1e-14, atol=0)


# --- seed 29 -------------------------------------------------------------------------------------------------------
def test_responsible_parameters_include_those_of_an_eigenvalue_within_the_tolerance_of_zero():
    """``_responsible`` names the parameters loading on the eigenvalues of the diagonally scaled matrix that are not
    positive, up to 1e-10 max(|largest eigenvalue|, 1). R = [[-1, c], [c, 0]] (the objective curved downward along
    a, flat along b, weakly coupled): its eigenvalues are -(1 + c^2) and c^2 to second order in c, with eigenvectors
    (1, -c) and (c, 1). With c^2 = 5e-11 the second is within the tolerance of 0 (the largest eigenvalue, 5e-11, has
    magnitude below 1: the tolerance is 1e-10 itself), so both a and b are responsible; with c^2 = 2e-10 it is
    positive and only a is. Seed 29's survivor _responsible _29 scaled the matrix by 3 (1.5 (M + M')): its
    eigenvalue 1.5e-10 was then positive and b was left out."""
    from pkpd.estimation.covariance import _responsible

    def matrix(c2: float) -> np.ndarray:
        c = math.sqrt(c2)
        return np.array([[-1.0, c], [c, 0.0]])

    # a and b load equally (1 / sqrt(1 + c^2)) on their eigenvectors: either order
    assert _responsible(matrix(5e-11), ["a", "b"]) in (" (responsible: a, b)", " (responsible: b, a)")
    assert _responsible(matrix(2e-10), ["a", "b"]) == " (responsible: a)"


def test_the_summary_of_a_fit_without_an_importance_sampling_objective_shows_the_ofv_alone():
    """The first line of a fit's repr: model, method, OFV to 3 decimals (with " +/- se (IS)" only when the
    objective is by importance sampling), -2LL = OFV + N log(2 pi), AIC = -2LL + 2 k, BIC = -2LL + k log N (each
    worked out here from the OFV: Wang 2007, N = 20 observations, k = 3 parameters ke, omega2_ke, sd), the counts and
    the convergence message. Seed 29's survivor PopulationFit.__repr__ _1 (mc = None) wrote "None" after the OFV."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                              covariance=None)
    m2ll = fit.objective + 20 * math.log(2 * math.pi)
    assert repr(fit).splitlines()[0] == (
        f"PopulationFit(wang2007, FOCEI): OFV {fit.objective:.3f} (-2LL {m2ll:.3f}, AIC {m2ll + 6:.2f}, "
        f"BIC {m2ll + 3 * math.log(20):.2f}); 10 subjects, 20 observations; converged: objective evaluated at the "
        "initial values (maxeval=0)"
    )


def test_fit_population_solves_with_the_given_solver_settings():
    """An ODE integration allowed one step cannot reach any observation of Wang 2007: fit_population must hand its
    settings to the objective and stop at the initial values naming the subjects (the whole message), not fall back
    to the default settings (seed 29's survivor fit_population _13, settings=None, which fits)."""
    with pytest.raises(FitError) as info:
        pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                            covariance=None, settings=pkpd.SolverSettings(method="ode", max_steps=1))
    assert str(info.value) == (
        "fit_population: the objective cannot be evaluated at the initial values for subjects 1, 2, 3, 4, 5 and 5 "
        "more: the model cannot be solved for subject 1, t = 0 h (row 1) (typical values); check the initial values "
        "and the solver settings"
    )


def _wang_focei_recording_warm_starts():
    """Wang 2007's FOCE-I problem on the finite-difference engine whose objective records the EBEs each evaluation
    starts from (None for a cold start): (layout, problem, the list it appends to)."""
    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None, None,
                              None)
    starts = []
    ofv = prob.ofv

    def spy(theta, omega, errs, eta0=None, **kw):
        starts.append(None if eta0 is None else np.array(eta0[0]))
        return ofv(theta, omega, errs, eta0, **kw)

    prob.ofv = spy
    return layout, prob, starts


def test_the_covariance_step_of_a_finite_difference_fit_starts_from_the_ebes_at_the_estimates():
    """The finite-difference run keeps the EBEs of its last centre as the start of the next inner problems; its
    final evaluation, at the estimates, must keep them too, since the covariance step that follows (``matrices``)
    starts there. Wang 2007 (FOCE-I): start at the initial values (ke 0.5), final at ke 0.8, then the matrices: they
    start from the EBEs final returned, not from those of the initial values (SAEM's estimates come to final that
    way, straight after start). Seed 29's survivor _FiniteDifferenceRun.final _5 evaluated without keep=True."""
    from pkpd.estimation.population_fit import _FiniteDifferenceRun

    layout, prob, starts = _wang_focei_recording_warm_starts()
    run = _FiniteDifferenceRun(prob, layout)
    x0 = layout.x0.copy()
    run.start(x0)
    eta_initial = run.eta.copy()
    x = x0.copy()
    x[layout.theta_names.index("ke")] = math.log(0.8)
    _, eta = run.final(x)
    assert not np.allclose(eta, eta_initial, rtol=0, atol=1e-3)   # the EBEs moved with ke
    starts.clear()
    run.matrices(x)
    assert len(starts) == 1
    np.testing.assert_array_equal(starts[0], eta)


# --- seed 30 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", [1.0, 1.5, 0.0])
def test_parameter_table_refuses_a_level_outside_0_1_in_full(level):
    """The coverage of a confidence interval is a probability strictly between 0 and 1: a level of 1 (an infinite
    interval), 1.5 or 0 is refused with the whole message (seed 30's survivor PopulationFit.parameter_table _6,
    0 < level < 2, gave infinite or NaN bounds for 1 and 1.5)."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                              covariance=None)
    with pytest.raises(FitError) as info:
        fit.parameter_table(level=level)
    assert str(info.value) == f"parameter_table: level must be a number in (0, 1), e.g. 0.95; got {level!r}"


def test_parameter_table_gives_the_eta_shrinkage_in_percent():
    """shrinkage_percent is the eta shrinkage 1 - SD(EBE) / omega (Savic and Karlsson 2009, SD with n - 1) in
    percent: Wang 2007 by FOCE-I at its initial values (omega^2 = 0.04, omega = 0.2), worked out here from the fit's
    EBEs (-22.5 %: at these values the EBEs spread more than omega); seed 30's survivor
    PopulationFit.parameter_table _95 multiplied by 101."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                              covariance=None)
    expected = 100 * (1 - np.std(np.asarray(fit.eta)[:, 0], ddof=1) / 0.2)
    assert abs(expected) > 1
    table = fit.parameter_table().set_index("name")
    assert table.loc["omega2_ke", "shrinkage_percent"] == pytest.approx(expected, rel=1e-12)


def test_endpoint_terms_of_a_time_to_event_record_are_exact_and_quiet_where_the_hazard_cannot_be_computed():
    """endpoints_exposure.toml without a dose (A = 0): the event hazard is h0 = 0.01 1/h, so the cumulative hazard
    at t is 0.01 t and -2 log L is 2 (H - log h) for an event, 2 H for a censoring: 2 (0.24 - log 0.01) for
    subject 1's event at 24 h, 0.96 for subject 2's censoring at 48 h. Where a subject's predictions are infinite
    (a failed solve), H(t) - H(0) is inf - inf: that subject's term is +inf (the mark of a failed evaluation),
    computed quietly: the method silences its own floating-point errors (numpy's default, warn, is made an error
    here), as its callers in the package also do (seed 30's survivor finite_difference._Problem.endpoint_terms _6,
    np.errstate(all=None), did not)."""
    model = pkpd.load_model(ENDPOINTS)
    data = pd.DataFrame([(1, 24.0, 1, "event"), (2, 48.0, 0, "event")], columns=["ID", "TIME", "DV", "DVID"])
    *_, layout, prob = _setup(model, data, pkpd.IIV({"h0": 0.1}), None, "laplace", None, None, None, None)
    X = layout.x0[None]
    theta, _, _ = layout.unpack(X)
    f, G = prob.predict_grad(layout.subject_theta(X, theta), np.zeros((1, 2, prob.q)))
    per, _, _ = prob.endpoint_terms(f)
    np.testing.assert_allclose(per, [[2 * (0.24 - math.log(0.01)), 0.96]], rtol=1e-10)
    f[0, 0] = np.inf
    with warnings.catch_warnings(), np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("error")
        per, _, _ = prob.endpoint_terms(f)
        per_g, _, _ = prob.endpoint_terms(f, G)
    assert per[0, 0] == np.inf and per_g[0, 0] == np.inf
    assert per[0, 1] == pytest.approx(0.96, rel=1e-10) and per_g[0, 1] == pytest.approx(0.96, rel=1e-10)


def test_foce_residual_variances_are_quiet_where_the_prediction_overflows():
    """The compiled FOCE objective's residual variances at eta = 0 (``_variances``): (0.1 f)^2 for a proportional
    error of CV 0.1, 0.04 at f = 2; a prediction of 1e200 gives (1e199)^2, beyond the largest float: +inf, the mark
    of an objective that cannot be computed, quietly: the method silences its own floating-point errors (numpy's
    default, warn, is made an error here), as its callers in the package also do (seed 30's survivor
    PopulationObjective._variances _13, np.errstate(all=None), did not)."""
    from pkpd.estimation.population_fit import _objective_engine

    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), pkpd.Proportional(cv=0.1), "foce", None,
                              None, None, None)
    engine = _objective_engine(prob, layout)
    assert engine is not None
    errs = layout.unpack(layout.x0[None])[2][0]
    outputs = np.full((10, 2, 1), 2.0)           # 10 subjects, 2 observation times each, one output
    outputs[0] = 1e200
    with warnings.catch_warnings(), np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("error")
        R = engine._variances(outputs, errs)
    np.testing.assert_array_equal(R[:2], np.inf)
    np.testing.assert_allclose(R[2:], 0.04, rtol=1e-12)


# --- seed 31 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("maxeval", [0, 1])
def test_the_empty_category_note_is_given_when_the_fit_optimised_and_only_then(maxeval):
    """Ordinal grades 0, 2 and 3, none of grade 1, with a1 and a2 written apart: an optimiser stops on or near the
    edge a1 = a2, so a population fit that optimised (here one iteration, maxeval=1) is not converged and its
    message carries the note; maxeval=0 optimises nothing (the objective at the initial values, NONMEM's MAXEVAL=0):
    its message is exactly that and it stays converged (seed 31's survivor _fit_population _263 tested
    maxeval != 1, giving the note at maxeval=0 and dropping it at maxeval=1)."""
    counts = {0: 20, 2: 15, 3: 5}
    dv = np.concatenate([np.full(n, float(g)) for g, n in counts.items()])
    data = pd.DataFrame({"ID": np.arange(1, 41), "TIME": 1.0, "DV": dv, "DVID": "grade"})
    model = load_model(ENDPOINTS).with_parameters(a1=1.0, a2=0.9)
    fit = pkpd.fit_population(model, data, iiv={"a3": 0.1}, estimate=["a1", "a2", "a3"], method="laplace",
                              maxeval=maxeval, covariance=None)
    note = ("; ordinal output 'grade': no record has category 1, so its maximum-likelihood probability is 0, on the "
            "edge where its intercepts a1 and a2 are equal, beyond which the likelihood is undefined;")
    if maxeval == 0:
        assert fit.converged
        assert fit.message == "objective evaluated at the initial values (maxeval=0)"
    else:
        assert not fit.converged
        assert note in fit.message


# --- seed 33 -------------------------------------------------------------------------------------------------------
def test_a_finite_difference_gradient_keeps_the_ebes_of_its_centre_as_the_next_start():
    """The finite-difference run evaluates the centre and the +-h steps of a gradient in one batch; the centre's
    EBEs are the start of the next inner problems (the optimiser's next point is near it). Wang 2007 (FOCE-I): start
    at the initial values (ke 0.5), a gradient at ke 0.8: the next evaluation (final, at ke 0.8) starts from the EBEs
    at ke 0.8, those of a cold evaluation there (to the inner tolerance), not from those of ke 0.5. Seed 33's
    survivor _FiniteDifferenceRun._fd _12 evaluated with keep=None and left the start at ke 0.5's EBEs."""
    from pkpd.estimation.population_fit import _FiniteDifferenceRun

    layout, prob, starts = _wang_focei_recording_warm_starts()
    run = _FiniteDifferenceRun(prob, layout)
    run.start(layout.x0.copy())
    eta_initial = run.eta.copy()
    x = layout.x0.copy()
    x[layout.theta_names.index("ke")] = math.log(0.8)
    run.value_and_gradient(x)
    starts.clear()
    run.final(x)
    theta, omega, errs = layout.unpack(x[None])
    _, eta_cold, _ = prob.ofv(layout.subject_theta(x[None], theta), omega, errs)   # cold: appends None after
    assert not np.allclose(eta_cold[0], eta_initial, rtol=0, atol=1e-3)   # the EBEs move with ke
    np.testing.assert_allclose(starts[0], eta_cold[0], rtol=0, atol=1e-6)


def test_finite_difference_fo_objective_of_a_log_normal_error_carries_the_jacobian_of_log_y():
    """FO with a log-normal residual error (sd sigma of log y): the objective is -2 log of the density of y, that of
    log y (FO: normal, mean log f at eta = 0, covariance C = omega g g' + sigma^2 I with g = d log f / d eta) plus
    2 sum log y, the change of variables from log y to y. Wang 2007: f = 10 exp(-ke t), ke = 0.5 exp(eta), so
    log f = log 10 - 0.5 t and g = -0.5 t at eta = 0 (omega^2 = 0.04, sigma = 0.2), worked out here subject by
    subject. Seed 33's survivor finite_difference._Problem.ofv _142, np.where(None, jac0, 0.0), left out the
    2 sum log y."""
    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), pkpd.LogNormal(sigma=0.2), "fo", None,
                              None, None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    ofv, _, _ = prob.ofv(layout.subject_theta(X, theta), omega, errs)
    expected = []
    for _, d in pd.read_csv(WANG).groupby("ID"):
        t, y = d["TIME"].to_numpy(float), d["DV"].to_numpy(float)
        r = np.log(y) - (math.log(10.0) - 0.5 * t)
        g = -0.5 * t
        C = 0.04 * np.outer(g, g) + 0.2 ** 2 * np.eye(t.size)
        expected.append(np.linalg.slogdet(C)[1] + r @ np.linalg.solve(C, r) + 2 * np.log(y).sum())
    np.testing.assert_allclose(ofv[0], expected, rtol=1e-7)


def test_finite_difference_ebes_with_censored_records_are_the_modes_of_the_individual_objective():
    """Laplace with M3: a subject's EBE minimises O_i(eta) = sum over quantified records of -2 log N(y; f, sd^2), plus
    -2 log Phi((LLOQ - f) / sd) over censored ones, plus eta^2 / omega^2 (minimised here by scipy on that formula).
    Wang 2007 (f = 10 exp(-0.5 exp(eta) t), omega^2 = 0.04, sd = 0.1) with an LLOQ of 6.3: subjects 1, 3 and 4 have
    their record at 1 h censored, and their mode is eta = 0.0122 (above 0: a larger ke puts f further below the
    LLOQ). The inner Newton iteration takes censored records out of the Gauss-Newton term of its Hessian, whose
    censored part is lam (lam + z) dz dz'; seed 33's survivor finite_difference._Problem.ofv _307 counted them in
    once (1 instead of 0 in np.where), the Hessian turned negative and the EBEs of those subjects stayed at 0."""
    from scipy import optimize, stats

    lloq, sd, om2 = 6.3, 0.1, 0.04
    data = pd.read_csv(WANG)
    data["LLOQ"] = lloq
    *_, layout, prob = _setup("wang2007", data, pkpd.IIV({"ke": om2}), pkpd.Additive(sd=sd), "laplace", None,
                              pkpd.M3(), None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    _, eta, _ = prob.ofv(layout.subject_theta(X, theta), omega, errs)
    assert prob.cens.sum() == 3
    for i, (_, d) in enumerate(data.groupby("ID")):
        t, y = d["TIME"].to_numpy(float), d["DV"].to_numpy(float)
        c = y < lloq

        def objective(e, t=t, y=y, c=c):
            f = 10.0 * np.exp(-0.5 * math.exp(e) * t)
            return (-2 * stats.norm.logpdf(y[~c], f[~c], sd).sum() - 2 * stats.norm.logcdf(lloq, f[c], sd).sum()
                    + e * e / om2)

        mode = optimize.minimize_scalar(objective, bracket=(-0.5, 0.5), tol=1e-12).x
        if c.any():
            assert mode == pytest.approx(0.0122, abs=1e-4)
        assert eta[0, i, 0] == pytest.approx(mode, abs=1e-6)


def _record_solves(prob):
    """Wrap ``prob.predict`` so that each batch solve appends its parameter rows' shape to the list returned."""
    solves = []
    predict = prob.predict

    def spy(P):
        solves.append(P.shape)
        return predict(P)

    prob.predict = spy
    return solves


def test_an_inner_problem_whose_subjects_cannot_be_evaluated_at_the_start_takes_no_newton_step():
    """A subject whose objective cannot be computed at the start of its inner problem is not iterated: it keeps
    its start (eta = 0) and gets the penalty share 1e10 / n. Wang 2007 with an ODE integration allowed one step
    solves no subject, so no subject is iterated and the batch is solved once (the start), not again for a Newton
    trial. Seed 33's survivor finite_difference._Problem.ofv _523 (done = zeros & ~isfinite(obj), never true)
    iterated those subjects: one more solve of the whole batch, every subject failing again."""
    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), pkpd.Additive(sd=0.3), "focei", None, None,
                              pkpd.SolverSettings(method="ode", max_steps=1), None)
    solves = _record_solves(prob)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    with np.errstate(all="ignore"):     # as its callers: the failed solves give NaN
        ofv, eta, _ = prob.ofv(layout.subject_theta(X, theta), omega, errs)
    np.testing.assert_array_equal(ofv, np.full((1, 10), 1e10 / 10))
    np.testing.assert_array_equal(eta, 0.0)
    assert len(solves) == 1


# --- seed 34 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fo", "focei"])
def test_an_upper_bound_of_a_log_scale_typical_value_holds_the_estimate(method):
    """A typical value with a lower bound >= 0 is estimated on the log scale, so its bounds go to the optimiser as
    their logs. Wang 2007 (ke estimated near 0.48 without a bound) with ke bounded to (0, 0.4), started at 0.3: the
    estimate stops on the bound, 0.4, by Fisher scoring (FO) and by L-BFGS-B (FOCE-I). Seed 34's survivor
    _fit_population _95 (np.where(None, ...): the natural bound 0.4 given as the bound of log ke, ke <= e^0.4 = 1.49)
    let ke go to its unbounded estimate."""
    model = pkpd.load_model("wang2007")
    kw = dict(iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method=method, init={"ke": 0.3}, covariance=None)
    free = pkpd.fit_population(model, WANG, **kw)
    assert free.theta["ke"] > 0.45
    fit = pkpd.fit_population(model.with_bounds(ke=(0.0, 0.4)), WANG, **kw)
    assert fit.converged
    assert fit.theta["ke"] == pytest.approx(0.4, rel=1e-9)


def test_a_power_effect_takes_positive_covariate_values_below_one_and_refuses_zero():
    """A power effect (factor (c / ref)^b) needs c > 0, nothing more: covariate values 0.5 and 2 around a reference
    of 1 are accepted (the coefficient's step is then 0.1 / log 2, each subject a factor 2 from the reference),
    a value of 0 is refused, naming its subject, the whole message compared. Seed 34's survivor
    population_model._effect_columns _71 (c <= 1 for c <= 0) refused the subject at 0.5."""
    def data(values):
        rows = []
        for i, wt in enumerate(values, start=1):
            rows.append(dict(ID=i, TIME=0.0, DV=np.nan, EVID=1, AMT=100.0, AMTU="mg", WT=wt))
            rows += [dict(ID=i, TIME=t, DV=1.0, EVID=0, AMT=0.0, AMTU="mg", WT=wt) for t in (1.0, 4.0)]
        return pd.DataFrame(rows)

    effects = [pkpd.CovariateEffect("V", "WT", "power", 1.0, ref=1.0)]
    *_, layout, _ = _setup("pk_1cmt_oral", data([0.5, 2.0]), {"CL": 0.1}, pkpd.Proportional(cv=0.1), "focei",
                           None, None, None, None, effects)
    np.testing.assert_allclose(_coefficient_steps(layout), [0.1 / math.log(2.0)], rtol=1e-12)
    with pytest.raises(FitError) as info:
        _setup("pk_1cmt_oral", data([0.5, 0.0]), {"CL": 0.1}, pkpd.Proportional(cv=0.1), "focei", None, None, None,
               None, effects)
    assert str(info.value) == ("covariates: covariate 'WT' is missing (or not positive, for a power effect) for "
                               "subject 2")


def _fo_fit_failure_with_one_solver_step(data) -> str:
    """The message of the FitError of an FO fit of Wang 2007 (``data``) whose ODE integration may take one step."""
    with pytest.raises(FitError) as info:
        pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="fo",
                            settings=pkpd.SolverSettings(method="ode", max_steps=1), covariance=None)
    return str(info.value)


def test_an_fo_objective_whose_model_cannot_be_solved_is_not_evaluated_even_when_finite():
    """FO evaluates every subject at eta = 0; a subject whose model cannot be solved there cannot be evaluated,
    whatever number the solver left behind. Wang 2007 with an ODE integration allowed one step solves no subject
    (the compiled engine's objective stays finite from the unfinished solve), so the fit stops at its initial values
    and names the subjects and the first failing record, the whole message compared. Seed 34's survivor
    PopulationObjective.evaluate _97 (np.where(None, 100 + st0, status)) dropped FO's solver status at eta = 0,
    and the fit went on with the finite objective of unsolved models."""
    assert _fo_fit_failure_with_one_solver_step(WANG) == (
        "fit_population: the objective cannot be evaluated at the initial values for subjects 1, 2, 3, 4, 5 and 5 "
        "more: the model cannot be solved for subject 1, t = 0 h (row 1) (typical values); check the initial values "
        "and the solver settings")


def test_guard_replaces_each_singular_or_non_finite_matrix_by_the_identity_on_its_own():
    """_guard keeps each matrix of a stack that is finite and non-singular and replaces the others by the identity,
    matrix by matrix (the exact inner Hessians of FOCE-I/Laplace, solved as one stack, where one singular matrix
    would make numpy's solve raise for all): a stack of [[2, 1], [1, 2]] (kept), a NaN matrix and [[1, 2], [2, 4]]
    (determinant 0) gives the first and two identities. Seed 34's survivor _objective._guard _23 (np.all without
    axis: one non-finite matrix sends the determinant test of every matrix to the identity) kept the singular one."""
    from pkpd.estimation._objective import _guard

    good = np.array([[2.0, 1.0], [1.0, 2.0]])
    A = np.stack([good, np.full((2, 2), np.nan), np.array([[1.0, 2.0], [2.0, 4.0]])])
    np.testing.assert_array_equal(_guard(A), np.stack([good, np.eye(2), np.eye(2)]))


# --- seed 35 -------------------------------------------------------------------------------------------------------
def test_covariance_step_names_every_flat_parameter_separated_by_commas():
    """R = diag(1, 1, 1, 0, 0): the objective is flat along d and e, and S = 0 is singular, so a, b, c get 2 R^-1 of
    their own block (the identity: 2 x I, times the delta method's diag(exp(x))^2 = 1 at x = 0) and d, e none; the
    message names both, separated by ', ' (the whole message compared). Seed 35's survivor _covariance_step _140
    (the separator 'XX, XX') joined them with its own text."""
    R = np.diag([1.0, 1.0, 1.0, 0.0, 0.0])
    cov, msg = _covariance_step(LOG_LAYOUT, np.zeros(5), _Matrices(R, np.zeros((5, 5))), "sandwich",
                                ["a", "b", "c", "d", "e"])
    assert msg == (
        "2 R^-1 of the parameters the data inform: the R matrix is not positive definite and the S matrix is "
        "singular; no standard error for d, e (the objective is flat there: the data do not inform it; consider "
        "fixing it or removing it), and the other standard errors are conditional on its estimate"
    )
    np.testing.assert_allclose(cov[:3, :3], 2 * np.eye(3), rtol=1e-8)
    assert np.all(np.isnan(cov[3:])) and np.all(np.isnan(cov[:, 3:]))


def test_a_failed_evaluation_of_exactly_five_subjects_names_them_all_with_no_more():
    """The message of subjects that cannot be evaluated names up to five and adds ' and N more' only beyond five:
    the first five subjects of Wang 2007 with an ODE integration allowed one step are all named, with nothing
    added (the whole message compared). Seed 35's survivor _failed_subjects_message _13 (len(ids) >= 5) added
    ' and 0 more'."""
    data = pd.read_csv(WANG)
    data = data[data["ID"].isin(sorted(data["ID"].unique())[:5])]
    assert _fo_fit_failure_with_one_solver_step(data) == (
        "fit_population: the objective cannot be evaluated at the initial values for subjects 1, 2, 3, 4, 5: the "
        "model cannot be solved for subject 1, t = 0 h (row 1) (typical values); check the initial values and the "
        "solver settings")


def test_fo_scoring_that_stops_short_is_continued_by_lbfgsb():
    """FO's Fisher scoring that has not converged within its iterations is continued by L-BFGS-B from where it
    stopped, and the message says so: Wang 2007 with maxeval=2 (Fisher scoring stops after two iterations, far from
    a Newton decrement below its tolerance) gives a message of the form '<scoring's message>; continued by
    L-BFGS-B: <L-BFGS-B's message>'. Seed 35's survivors _fo_scoring _60 and _61 (one argument of _lbfgsb left out)
    raised a TypeError there."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="fo",
                              maxeval=2, covariance=None)
    if fit.engine != "compiled":
        pytest.skip("FO's Fisher scoring needs the compiled engine")
    assert "; continued by L-BFGS-B: " in fit.message
    assert 0.001 <= fit.theta["ke"] <= 10


def test_a_zero_initial_value_of_a_log_scale_typical_value_is_refused_in_full():
    """A typical value whose lower bound is >= 0 is estimated on the log scale, so an initial value of 0 (inside
    bounds (0, 10)) is refused, naming it (the whole message compared). Seed 35's survivor population_model._layout
    _67 (the second offending parameter, [1], of a list of one) raised an IndexError instead."""
    model = pkpd.load_model("wang2007").with_bounds(ke=(0.0, 10.0))
    with pytest.raises(FitError) as info:
        pkpd.fit_population(model, WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), init={"ke": 0.0},
                            maxeval=0)
    assert str(info.value) == "estimate: the initial value of 'ke' must be > 0 (it is estimated on the log scale)"


# --- seed 36 -------------------------------------------------------------------------------------------------------
def test_covariance_step_names_the_parameters_of_a_non_finite_r_matrix():
    """An R matrix with a non-finite entry is not positive definite, and the reason names the parameters of the rows
    and columns holding one: R[a, c] = R[c, a] = NaN (a 3 x 3 otherwise the identity) names a and c, sorted, and
    S = I gives 4 S^-1 (the whole message compared). Seed 36's survivor covariance._responsible _5 (sorted(None))
    raised a TypeError there."""
    R = np.eye(3)
    R[0, 2] = R[2, 0] = np.nan
    cov, msg = _covariance_step(LOG_LAYOUT, np.zeros(3), _Matrices(R, np.eye(3)), "sandwich", ["c", "b", "a"])
    assert msg == (
        "4 S^-1 (cross-product) (fallback: the R matrix is not positive definite - the estimates may not be at a "
        "minimum or a parameter is not identifiable (not finite for: a, c); sandwich unavailable; R unavailable)"
    )
    np.testing.assert_allclose(cov, 4 * np.eye(3), rtol=1e-8)


def test_a_jet_divided_by_a_float32_number_is_divided_in_double_precision():
    """A jet divided by a number is multiplied by its reciprocal in double precision, whatever the number's dtype:
    x = (1, 2) with dx = 1, divided by float32 3 (exactly 3), gives (1/3, 2/3) and derivative 1/3 to the last bit
    of float64. Seed 36's survivor _jets.Jet.__truediv__ _12 (np.asarray(other) without dtype=float) took the
    reciprocal in float32, 3e-8 off."""
    from pkpd.estimation import _jets

    y = _jets.variable(np.array([1.0, 2.0]), 1, 0) / np.float32(3.0)
    np.testing.assert_allclose(y.v, [1.0 / 3.0, 2.0 / 3.0], rtol=1e-15)
    np.testing.assert_allclose(y.d1[:, 0], [1.0 / 3.0, 1.0 / 3.0], rtol=1e-15)


def test_a_constant_jet_holds_its_values_in_double_precision():
    """constant() makes its values float64, whatever they are given in: integers 2 and 4 take a negative power,
    1/2 and 1/4 (numpy refuses negative powers of integers), and float32 1 gives exp = e to the last bit of
    float64. Seed 36's survivor _jets.constant _4 (dtype=None) kept int64 (a ValueError) and float32 (e 6e-8 off)."""
    from pkpd.estimation import _jets

    np.testing.assert_allclose(_jets.power(_jets.constant(np.array([2, 4]), 1), -1).v, [0.5, 0.25], rtol=1e-15)
    e = _jets.exp(_jets.constant(np.array([1.0], dtype=np.float32), 1, order=3))
    np.testing.assert_allclose(e.v, [math.e], rtol=1e-15)


def test_a_population_fit_saves_to_the_path_given_and_loads_back(tmp_path):
    """PopulationFit.save writes the fit to the path given and returns it; PopulationFit.load reads back the same
    fit: Wang 2007 by FOCE-I at NONMEM's values (maxeval=0), OFV 39.458 (tests/data/wang2007/README.md) before and
    after. Seed 36's survivor PopulationFit.save _2 (save_fit(self, None)) wrote nowhere."""
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Proportional(cv=0.316228), maxeval=0,
                              settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    path = tmp_path / "fit.json"
    assert Path(fit.save(path)) == path
    back = pkpd.PopulationFit.load(path)
    assert round(back.objective, 3) == 39.458
    assert back.theta == {"ke": 0.5}
    assert back.converged and back.message == "objective evaluated at the initial values (maxeval=0)"


def test_html_summary_of_a_fit_that_did_not_converge_says_so():
    """A fit that stopped at its iteration limit is marked 'NOT CONVERGED' with its message in the notebook summary's
    first line: Wang 2007 by FOCE-I with maxeval=1 (AIC = OFV + 20 log(2 pi) + 2 x 3 parameters). Seed 36's survivor
    PopulationFit._repr_html_ _31 ('XXNOT CONVERGEDXX') changed the mark."""
    import html

    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=1,
                              covariance=None)
    assert not fit.converged
    aic = fit.objective + 20 * math.log(2 * math.pi) + 2 * 3
    head = html.escape(f"wang2007 FOCEI: OFV {fit.objective:.3f}, AIC {aic:.2f}; NOT CONVERGED ({fit.message})")
    assert fit._repr_html_().startswith(f"<p><b>{head}</b></p><table>")


def test_the_start_of_a_map_fit_carries_the_gradient_of_its_whole_objective():
    """A MAP fit's run starts with the gradient of the data's objective plus that of -2 log prior (L-BFGS-B scales
    the objective by it): with a data gradient (1, -2) and a prior sum ((x - m) / s)^2, m = (0.5, -1), s = (1, 2),
    at x = (1, 1), the prior's gradient is 2 (x - m) / s^2 = (1, 1) and the start's gradient (2, -1). Seed 36's
    survivor _PriorRun.start _4 (the prior's gradient subtracted) gave (0, -3)."""
    from pkpd.estimation.population_fit import _PriorRun

    class Run:
        gradient0 = None

        def start(self, x):
            self.gradient0 = np.array([1.0, -2.0])

    m, s = np.array([0.5, -1.0]), np.array([1.0, 2.0])
    run = _PriorRun(Run(), lambda X: np.sum(((X - m) / s) ** 2, axis=1))
    run.start(np.array([1.0, 1.0]))
    np.testing.assert_allclose(run.gradient0, [2.0, -1.0], rtol=1e-8)


def test_a_model_with_integer_parameter_values_starts_at_the_initial_values_given():
    """A model's parameter values may be integers (a model file's value = 1); the initial values given by init= are
    used as they are: Wang 2007 with ke = 1 in the model and init ke = 0.5, FOCE-I at maxeval=0, gives NONMEM's
    39.458 at ke 0.5 (tests/data/wang2007/README.md). Seed 36's survivor population_model._layout _12 (dtype=None:
    an int64 array of the model's values) cut 0.5 to 0 and refused it as outside ke's bounds."""
    from dataclasses import replace

    model = load_model("wang2007")
    model = replace(model, parameters=tuple(replace(p, value=1) for p in model.parameters))
    fit = pkpd.fit_population(model, WANG, iiv={"ke": 0.04}, error=pkpd.Proportional(cv=0.316228), init={"ke": 0.5},
                              maxeval=0, settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    assert fit.theta == {"ke": 0.5}
    assert round(fit.objective, 3) == 39.458


def _wang_focei_compiled():
    """Wang 2007's FOCE-I problem (IIV 0.04 on ke, additive sd 0.3) at its initial values: (layout, prob, the
    compiled objective); skips the test where there is no compiled objective."""
    from pkpd.estimation.population_fit import _objective_engine

    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None, None, None)
    objective = _objective_engine(prob, layout)
    if objective is None:
        pytest.skip("needs the compiled objective")
    return layout, prob, objective


def test_the_predicted_ebes_are_used_subject_by_subject_where_the_step_is_small():
    """The inner problem starts from the previous EBEs moved to first order, eta - H^-1 (mixed . d phi), for each
    subject whose predicted step is finite and below 1, and from the previous EBEs for the others, subject by
    subject. Wang 2007 (one random effect on ke, the only phi besides the sd): previous EBEs 0.1, H = 1, mixed
    derivative 1 along ke and 0 along sd; ke moves by 2 for subject 1 (a step of -2: kept at 0.1) and by 0.3 for
    the others (a step of -0.3: -0.2). Seed 36's survivor PopulationObjective._predicted_start _69 (the largest step
    of all subjects, axis=None) kept every subject at 0.1."""
    layout, prob, objective = _wang_focei_compiled()
    n = prob.n
    eta = np.full((n, 1), 0.1)
    theta = np.full((n, 1), 0.5)
    sigma, W = np.array([0.3]), np.array([[25.0]])
    mixed = np.tile([[[1.0, 0.0]]], (n, 1, 1))
    objective._memos = [(eta, theta, sigma, W, (np.ones((n, 1, 1)), mixed))]
    moved = theta + 0.3
    moved[0] = 2.5
    start = objective._predicted_start(eta.copy(), moved, sigma, W)
    expected = np.full((n, 1), -0.2)
    expected[0] = 0.1
    np.testing.assert_allclose(start, expected, rtol=1e-12)


def test_the_finite_difference_engine_starts_each_inner_problem_at_the_last_ebes():
    """On the finite-difference path (problems the compiled objective cannot serve), each objective evaluation
    starts the EBE search of every parameter set at the EBEs of the last centre point, as the compiled path does:
    after the start at the initial values, the next evaluation is handed those EBEs (nonzero for Wang 2007, one per
    subject) for the centre and for each of its central-difference neighbours. Left open by the seed-25 sample:
    _FiniteDifferenceRun._evaluate _31 (no warm start) changed only the number of evaluations."""
    from pkpd.estimation.population_fit import _FiniteDifferenceRun

    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "foce", None, None, None, None)
    run = _FiniteDifferenceRun(prob, layout)
    run.start(layout.x0)
    ebes = run.eta.copy()
    assert ebes.shape == (prob.n, 1) and np.all(np.abs(ebes) > 1e-3)
    handed = []
    real = prob.ofv

    def recording(theta, omega, errs, eta0=None, **kw):
        handed.append(eta0)
        return real(theta, omega, errs, eta0, **kw)

    prob.ofv = recording
    run.value_and_gradient(layout.x0 + 0.01)
    (eta0,) = handed
    assert eta0 is not None and eta0.shape == (2 * layout.x0.size + 1, prob.n, 1)
    np.testing.assert_array_equal(eta0, np.broadcast_to(ebes, eta0.shape))


# --- seed 37 -------------------------------------------------------------------------------------------------------
def test_an_indicator_coefficient_may_be_negative_down_to_minus_one():
    """An indicator effect multiplies the parameter by 1 + b [condition]; b is bounded below by -1 only (a positive
    factor), so a parameter smaller in the subjects meeting the condition is estimated with b < 0. pk_1cmt_iv, 8
    subjects without IIV or noise, V = 32 L, times 0.6 (b = -0.4) in the 4 with APGR < 5, CL 2.8 L/h: FO from
    b = 0 recovers b = -0.4 and V = 32. Seed 37's survivor population_fit._fit_population _146 bounded b by 1e-6
    (-1 + 1.000001) from below and ended at b = 1e-6, V = 25."""
    model = _apgr_model()
    times = np.array([0.5, 2, 6, 12, 24.0])
    rows = []
    for i in range(8):
        apgr = 3.0 if i % 2 else 8.0
        v = 32.0 * (0.6 if apgr < 5 else 1.0)
        common = dict(ID=i + 1, APGR=apgr, AMTU="mg")
        rows.append(dict(common, TIME=0.0, DV=".", AMT=100.0, EVID=1, CMT=1, MDV=1))
        rows += [dict(common, TIME=t, DV=100.0 / v * np.exp(-2.8 / v * t), AMT=0, EVID=0, CMT=1, MDV=0)
                 for t in times]
    fit = pkpd.fit_population(model, pd.DataFrame(rows), iiv={"CL": 0.1}, error=pkpd.Proportional(cv=0.1),
                              estimate=["V"], method="fo", covariance=None,
                              covariates=[pkpd.CovariateEffect(parameter="V", kind="indicator", condition="APGR < 5")])
    assert fit.converged, fit.message
    assert fit.covariate_effects[0].value == pytest.approx(-0.4, abs=1e-6)
    assert fit.theta["V"] == pytest.approx(32.0, rel=1e-6)


def _apgr_model():
    """pk_1cmt_iv with an APGR covariate declared (as in tests/unit/test_nlme_covariates.py)."""
    text = (Path(pkpd.__file__).parent.parent / "models" / "pk_1cmt_iv.toml").read_text()
    text = text.replace('name = "pk_1cmt_iv"', 'name = "pk_1cmt_iv_apgr"')
    text += '\n[covariates.APGR]\nunit = "1"\nvalue = 8\ndescription = "Apgar score"\n'
    return model_from_dict(tomllib.loads(text))


def _line_problem_with_closed_form_ebes():
    """LINE (A = B0 + S t) with a normal random effect on B0 (omega^2 = 25), additive error sd 1, FOCE-I: subject
    i's observations at 0-3 h are 100 + d_i + 20 t +- 0.5 (the +-0.5 summing to 0), so its individual objective
    is quadratic in eta and its EBE is sum(r) / sd^2 / (4 / sd^2 + 1 / omega^2) = 4 d_i / 4.04. Returns the problem,
    its (theta, omega, errs) at the initial values, and the EBEs and OFVs worked out by hand (OFV_i = sum of
    squared residuals + eta^2 / omega^2 + log omega^2 + log(4 + 1 / omega^2), R = 1)."""
    t = np.array([0.0, 1.0, 2.0, 3.0])
    d = np.array([1.5, -1.0, 0.8, 0.3, -1.7])      # each EBE within a single Newton step (|step| <= 2) of 0
    noise = np.array([-0.5, 0.5, -0.5, 0.5])
    data = pd.DataFrame([dict(ID=i + 1, TIME=tt, DV=100 + d[i] + 20 * tt + noise[k], EVID=0, AMT=0.0)
                         for i in range(5) for k, tt in enumerate(t)])
    iiv = pkpd.IIV({"B0": 25.0}, distribution="normal")
    *_, layout, prob = _setup(LINE, data, iiv, pkpd.Additive(sd=1.0), "focei", None, None, None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    ebe = 4 * d / (4 + 1 / 25.0)
    r = data["DV"].to_numpy().reshape(5, 4) - (100 + ebe[:, None] + 20 * t)
    ofv = (r ** 2).sum(axis=1) + ebe ** 2 / 25.0 + math.log(25.0) + math.log(4 + 1 / 25.0)
    return prob, (layout.subject_theta(X, theta), omega, errs), ebe, ofv


def test_a_warm_start_that_cannot_be_evaluated_is_restarted_at_zero_for_that_subject():
    """The finite-difference inner problem starts at the EBEs it is handed; a subject whose objective cannot be
    evaluated there (B0 + 1e300: its squared residual overflows) restarts at eta = 0, and reaches the EBE and OFV
    worked out by hand, as the others do from their warm starts. Seed 37's survivor finite_difference._Problem.ofv
    _466 (bad0 = isfinite(obj)) restarted the others instead and left that subject at its start with the penalty
    share 1e10 / 5."""
    prob, args, ebe, ofv = _line_problem_with_closed_form_ebes()
    eta0 = np.array(ebe)[None, :, None]
    eta0[0, 0, 0] = 1e300
    with np.errstate(all="ignore"):     # as its callers: the overflow at the start
        out, eta, _ = prob.ofv(*args, eta0)
    np.testing.assert_allclose(eta[0, :, 0], ebe, rtol=0, atol=1e-8)
    np.testing.assert_allclose(out[0], ofv, rtol=1e-8)


def test_a_subject_whose_newton_step_falls_below_the_tolerance_stops_without_another_trial():
    """The inner Newton iteration stops a subject as soon as an accepted step leaves a next Newton step below
    1e-7 (its EBE converged) or improved its objective by less than 1e-10. With an individual objective quadratic
    in eta, the first Newton step from 0 lands on the EBE (worked out by hand) and the next step is ~1e-11, so every
    subject stops there: the batch is solved twice (the start and that one trial). Seed 37's survivor
    finite_difference._Problem.ofv _581 (both conditions required, & for |) made a third solve, a trial of the
    ~1e-11 step, since the first step had improved the objective by far more than 1e-10 (the same kind as seed 24's
    _595, which changed only the number of evaluations)."""
    prob, args, ebe, ofv = _line_problem_with_closed_form_ebes()
    solves = _record_solves(prob)
    out, eta, _ = prob.ofv(*args)
    np.testing.assert_allclose(eta[0, :, 0], ebe, rtol=0, atol=1e-8)
    np.testing.assert_allclose(out[0], ofv, rtol=1e-8)
    assert len(solves) == 2


# --- seed 38 -------------------------------------------------------------------------------------------------------
def test_covariance_step_falls_back_to_r_and_says_why_s_failed():
    """R = [[2, 0.5], [0.5, 1]] is positive definite, S = g g' (one subject's gradient g = (1, 1)) has rank 1 < 2:
    the sandwich is unavailable, the covariance is 2 R^-1 taken to the natural scale (J = diag(exp x)), and the
    message gives the fallback and why S failed in full. Seed 38's survivor covariance._covariance_step _161 wrapped
    the reason in "XX...XX"."""
    g = np.array([1.0, 1.0])
    _assert_fallback_covariance(
        np.array([[2.0, 0.5], [0.5, 1.0]]), np.outer(g, g),
        "2 R^-1 (Hessian) (fallback: the S matrix (cross-product of the per-subject gradients) is singular - fewer "
        "subjects than parameters, or a parameter no subject's data inform; sandwich unavailable)",
        2 * _inverse_2x2(2.0, 0.5, 1.0))


def test_responsible_parameters_of_a_positive_definite_matrix_are_those_of_its_smallest_eigenvalue():
    """With no eigenvalue of the diagonally scaled matrix within the tolerance of zero, ``_responsible`` names the
    parameters loading on the eigenvector of the smallest one (its docstring). M = [[1, 0.99, 0], [0.99, 1, 0],
    [0, 0, 4]] scales (by sqrt(diag) = (1, 1, 2)) to [[1, 0.99, 0], [0.99, 1, 0], [0, 0, 1]], with eigenvalues 0.01
    (eigenvector (1, -1, 0) / sqrt 2), 1 (c alone) and 1.99: a and b are named (loading 1 / sqrt 2 each, either
    order), c is not. Seed 38's survivor covariance._responsible _50 (small[0] = False) took the maximum over no
    eigenvector and raised ValueError."""
    from pkpd.estimation.covariance import _responsible

    M = np.array([[1.0, 0.99, 0.0], [0.99, 1.0, 0.0], [0.0, 0.0, 4.0]])
    assert _responsible(M, ["a", "b", "c"]) in (" (responsible: a, b)", " (responsible: b, a)")


def test_coefficient_step_of_a_covariate_at_its_reference_in_every_subject_is_ten_percent():
    """A coefficient whose covariate equals its reference in every subject moves no typical value: its step falls
    back to 0.1 (not 0.1 / 0). WT = 70 kg in both subjects, reference 70: a linear slope (spread max |WT - 70| = 0)
    and a power exponent (spread max |log(WT / 70)| = 0) both get 0.1. Seed 38's survivor
    population_fit._coefficient_steps _27 (0.1 / spread whatever the spread) raised ZeroDivisionError."""
    rows = []
    for i in (1, 2):
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, EVID=1, AMT=100.0, AMTU="mg", WT=70.0))
        rows += [dict(ID=i, TIME=t, DV=1.0, EVID=0, AMT=0.0, AMTU="mg", WT=70.0) for t in (1.0, 4.0)]
    effects = [
        pkpd.CovariateEffect("CL", "WT", "linear", 0.01, ref=70.0),
        pkpd.CovariateEffect("V", "WT", "power", 1.0, ref=70.0),
    ]
    *_, layout, _ = _setup("pk_1cmt_oral", pd.DataFrame(rows), {"CL": 0.1}, pkpd.Proportional(cv=0.1), "focei",
                           None, None, None, None, effects)
    np.testing.assert_array_equal(_coefficient_steps(layout), [0.1, 0.1])


def test_initial_problem_without_an_unusable_prediction_gives_the_general_advice_in_full():
    """When every prediction and residual SD at the initial values is usable (LINE, B0 = 100, S = 20 at 1-3 h,
    additive error), nothing is named and the reason is the general advice, the whole message compared ("Omega",
    the IIV covariance matrix, capitalised as in the fit's other messages, e.g. saem's "Omega is no longer positive
    definite"). Seed 38's survivor
    population_fit._initial_problem _89 wrote "omega"."""
    rows = [dict(ID=i, TIME=t, DV=100.0 + 20.0 * t, EVID=0, AMT=0.0) for i in (1, 2) for t in (1.0, 2.0, 3.0)]
    *_, layout, prob = _setup(LINE, pd.DataFrame(rows), pkpd.IIV({"B0": 25.0}, distribution="normal"),
                              pkpd.Additive(sd=1.0), "focei", None, None, None, None)
    assert _initial_problem(prob, layout, layout.x0) == "check the initial values, Omega and the error model"


# --- seed 39 -------------------------------------------------------------------------------------------------------
def test_a_list_of_six_subjects_names_five_and_one_more():
    """The fit's note on rejected evaluations names the failed subjects in ID order, up to five, and adds ' and N
    more' beyond five: six subjects of Wang 2007 (indices 5, 3, 0, 1, 4, 2, IDs 1-6) give '1, 2, 3, 4, 5 and 1 more'
    and five give '1, 2, 3, 4, 5' (the whole text compared). Seed 39's survivor population_fit._id_list _13
    (len(ids) > 6) dropped the sixth subject without a word."""
    from pkpd.estimation.population_fit import _id_list

    *_, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None, None, None)
    assert _id_list(prob, {5, 3, 0, 1, 4, 2}) == "1, 2, 3, 4, 5 and 1 more"
    assert _id_list(prob, {4, 3, 0, 1, 2}) == "1, 2, 3, 4, 5"


def test_r_matrix_column_of_a_parameter_whose_neighbour_cannot_be_evaluated_is_not_finite():
    """The covariance step's R of the compiled engine: central differences of the analytic gradient, column by
    column; a column whose neighbour x +- h e_k cannot be evaluated is NaN (so are its row after symmetrising),
    the others are those of the objective. A stand-in engine with two subjects, OFV_i = x' A_i x / 2 (gradient
    A_i x, so the central difference is exact), that fails for x_2 > 0.5: at x = (0.2, 0.4995), h = 1e-3, x_2 + h
    fails, so R = [[A_11, NaN], [NaN, NaN]] with A = A_1 + A_2, and S = sum g_i g_i'. Seed 39's survivor
    _GradientRun.matrices _38 (np.full(np.nan), no shape) raised a TypeError there."""
    from pkpd.estimation.population_fit import _GradientRun

    A = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, -0.25], [-0.25, 3.0]]])

    class Engine:
        method = "focei"

        def evaluate(self, x, eta0, gradient=True):
            ok = x[1] <= 0.5
            ofv = 0.5 * np.einsum("a,nab,b->n", x, A, x) if ok else np.full(2, np.nan)
            return SimpleNamespace(ofv=ofv, gradient=A @ x if gradient else None, eta=np.zeros((2, 1)),
                                   status=np.zeros(2, dtype=int) if ok else np.ones(2, dtype=int), information=None)

    x = np.array([0.2, 0.4995])
    R, S = _GradientRun(Engine(), None, None).matrices(x, h=1e-3)
    np.testing.assert_allclose(R[0, 0], A[0, 0, 0] + A[1, 0, 0], rtol=1e-9)
    assert np.isnan(R[0, 1]) and np.isnan(R[1, 0]) and np.isnan(R[1, 1])
    g = A @ x
    np.testing.assert_allclose(S, np.outer(g[0], g[0]) + np.outer(g[1], g[1]), rtol=1e-12)


def test_compiled_ebes_with_censored_log_normal_records_are_the_modes_of_the_individual_objective():
    """Laplace with M3 and a log-normal error on the compiled engine: a subject's EBE minimises O_i(eta) = sum over
    quantified records of -2 log N(log y; log f, sigma^2), plus -2 log Phi((log LLOQ - log f) / sigma) over the
    censored ones (the limit on the scale of the error model, as the data), plus eta^2 / omega^2 (minimised here by
    scipy on that formula). Wang 2007 (log f = log 10 - 0.5 exp(eta) t, omega^2 = 0.04, sigma = 0.2), LLOQ 6.3:
    subjects 1, 3 and 4 have their record at 1 h censored, and their mode is 0.0626. Seed 39's survivor
    _objective.design_of _79 (np.where(None, log LLOQ, LLOQ)) handed the compiled code the limit 6.3 itself on
    the log scale: z of about 22, Phi(z) = 1, the censored records dropped out, and those EBEs stayed at 0."""
    from scipy import optimize, stats

    from pkpd.estimation.population_fit import _objective_engine

    lloq, sigma, om2 = 6.3, 0.2, 0.04
    data = pd.read_csv(WANG)
    data["LLOQ"] = lloq
    *_, layout, prob = _setup("wang2007", data, pkpd.IIV({"ke": om2}), pkpd.LogNormal(sigma=sigma), "laplace", None,
                              pkpd.M3(), pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    engine = _objective_engine(prob, layout)
    if engine is None:
        pytest.skip("needs the compiled objective")
    eta = engine.evaluate(layout.x0, None, gradient=False).eta
    assert prob.cens.sum() == 3
    for i, (_, d) in enumerate(data.groupby("ID")):
        t, y = d["TIME"].to_numpy(float), d["DV"].to_numpy(float)
        c = y < lloq

        def objective(e, t=t, y=y, c=c):
            log_f = math.log(10.0) - 0.5 * math.exp(e) * t
            return (-2 * stats.norm.logpdf(np.log(y[~c]), log_f[~c], sigma).sum()
                    - 2 * stats.norm.logcdf(math.log(lloq), log_f[c], sigma).sum() + e * e / om2)

        mode = optimize.minimize_scalar(objective, bracket=(-0.5, 0.5), tol=1e-12).x
        if c.any():
            assert mode == pytest.approx(0.0626, abs=1e-4)
        assert eta[i, 0] == pytest.approx(mode, abs=1e-7)


def test_the_predicted_ebes_follow_a_change_of_omega_to_first_order():
    """The inner problem starts from the previous EBEs moved to first order in the change of W = Omega^-1: the
    individual objective carries eta' W eta, so its eta-gradient moves by 2 dW eta and the start is eta - H^-1 2 dW
    eta. With a data part 100 (eta - 0.1)^2 and W = 25 the EBE is 100 x 0.1 / 125 = 0.08 and H = 2 (100 + 25) = 250;
    W = 20 (Omega 0.04 -> 0.05), the typical values and sigma unchanged, gives 0.08 + 2 x 5 x 0.08 / 250 = 0.0832,
    within 1.3e-4 of the new EBE 10 / 120 (Wang 2007's problem, one random effect on ke, every subject alike). Seed
    39's survivor PopulationObjective._predicted_start _51 (3 dW eta) gave 0.0848."""
    layout, prob, objective = _wang_focei_compiled()
    n = prob.n
    eta = np.full((n, 1), 0.08)
    theta = np.full((n, 1), 0.5)
    sigma = np.array([0.3])
    mixed = np.tile([[[1.0, 1.0]]], (n, 1, 1))      # read only against the change of phi, zero here
    objective._memos = [(eta, theta, sigma, np.array([[25.0]]), (np.full((n, 1, 1), 250.0), mixed))]
    start = objective._predicted_start(eta.copy(), theta.copy(), sigma, np.array([[20.0]]))
    np.testing.assert_allclose(start, 0.0832, rtol=1e-12)
    assert np.all(np.abs(start - 10.0 / 120.0) < 2e-4)


# --- seed 40 -------------------------------------------------------------------------------------------------------
# the line model with a categorical covariate declared
LINE_SEX = model_from_dict(tomllib.loads(_LINE_TOML.replace('name = "line"', 'name = "line_sex"') + """
[covariates.SEX]
unit = "1"
value = 0.0
"""))


def test_gradient_by_a_categorical_factor_equals_central_differences():
    """A categorical effect on the line model's B0 multiplies the typical value of the subjects in a category by its
    factor b (1.25 for SEX 1, 0.8 for SEX 2, SEX 0 the reference), i.e. by 1 + (b - 1) c with c = 1 in the category
    and 0 outside: d log of that factor by b is c / (1 + (b - 1) c), 1 / b in the category, so the FOCE-I gradient by
    each factor is that of log B0_i summed over its subjects divided by b. The analytic gradient must equal central
    differences of the objective (seed 40's survivor PopulationObjective._effect_dlog _26, c (1 + (b - 1) c): b
    instead of 1 / b, the same only at b = 1)."""
    from pkpd.estimation.population_fit import _objective_engine

    t = np.array([0.0, 1.0, 2.0, 3.0])
    rows = []
    factor = {0: 1.0, 1: 1.25, 2: 0.8}
    for i, (sex, e) in enumerate(((0, 0.3), (1, -0.2), (2, 0.1), (1, -0.4), (2, 0.5), (0, -0.1)), start=1):
        b0 = 100 * factor[sex] + 10 * e
        rows += [dict(ID=i, TIME=tt, DV=b0 + (20 - 5 * e) * tt + 0.5 * math.sin(3 * i + tt), EVID=0, AMT=0.0, SEX=sex)
                 for tt in t]
    effects = [pkpd.CovariateEffect("B0", "SEX", "categorical", {1: 1.25, 2: 0.8})]
    iiv = pkpd.IIV({"B0": 50.0, "S": 10.0}, distribution="normal")
    *_, layout, prob = _setup(LINE_SEX, pd.DataFrame(rows), iiv, pkpd.Additive(sd=0.5), "focei", ["B0", "S"], None,
                              None, None, effects)
    engine = _objective_engine(prob, layout)
    if engine is None:
        pytest.skip("the analytic gradient needs the compiled engine")
    x = layout.x0 + 0.05 * np.cos(np.arange(layout.x0.size))
    coef = layout.coefficients(x[None, :])[0]
    assert np.all(np.abs(coef - 1.0) > 0.15)      # both factors away from 1, where b and 1 / b differ
    g, fd = _gradient_and_central_differences(engine, x)
    assert np.max(np.abs(g - fd) / np.maximum(np.abs(fd), 1.0)) < 1e-5, dict(zip(layout.names(), zip(g, fd)))


# --- seed 41 -------------------------------------------------------------------------------------------------------
def test_the_fit_table_keeps_each_subjects_rows_in_data_order_with_endpoint_records():
    """Joint PK + time-to-event data (tests/data/models/endpoints_exposure.toml): the event records' prediction rows
    are appended after every concentration row, so the rows' subjects are no longer sorted and the (n, J) layout must
    be built by a stable sort, "rows subject by subject, in data order". The fit table then lists each subject's
    concentrations at 1, 6 and 24 h in the data's order, DV for DV (seed 41's survivor finite_difference._Problem.
    __init__ _84, argsort kind=None: numpy's default sort is not stable and put subject 2's 6 h row before its 1 h
    row, with a different CWRES, since the decorrelation depends on the order)."""
    model = pkpd.load_model(DATA / "models" / "endpoints_exposure.toml")
    rng = np.random.default_rng(3)
    true = {"k": 0.1, "V": 10.0, "h0": 0.01, "h1": 0.005}
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100.0, "mg")), [0.0, 48.0],
                        params={k: np.full(4, v) for k, v in true.items()}, seed=3, outcomes=["event"])
    conc = [{"ID": i, "TIME": t, "EVID": 0, "MDV": 0.0, "AMT": 0.0, "AMTU": ".", "CMT": ".", "RATE": 0.0, "X": 0.0}
            | {"DV": 10.0 * np.exp(-0.1 * t + 0.15 * rng.standard_normal()), "DVID": "conc"}
            for i in range(1, 5) for t in (1.0, 6.0, 24.0)]
    data = pd.concat([sim.to_dataframe(layout="nonmem"), pd.DataFrame(conc)], ignore_index=True)
    data = data.sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)
    fit = pkpd.fit_population(model, data, iiv={"k": 0.09, "V": 0.04}, error={"conc": pkpd.LogNormal(sigma=0.15)},
                              method="laplace", estimate=["k", "V", "h0", "h1"], init=true, maxeval=0,
                              covariance=None)
    expected = pd.DataFrame(conc)
    table = fit.table
    assert table["ID"].tolist() == expected["ID"].tolist()
    assert table["TIME"].tolist() == expected["TIME"].tolist()
    np.testing.assert_array_equal(table["DV"].to_numpy(), expected["DV"].to_numpy())


def test_a_power_effect_that_overflows_gives_a_failed_subject_without_a_warning():
    """The power effect (AGE / 40)^b at b = 2000 overflows for the subject aged 60 (1.5^2000 > 1e300) and underflows
    towards 0 for those aged 25 and 33 (the one aged 40 keeps 1): evaluating the FOCE-I objective with its gradient at
    such an optimizer trial point must report that subject as failed (status not 0, the others 0) with a non-finite
    total, and raise no floating-point warning (pytest makes warnings errors). Seed 41's survivor _objective._factor _1
    (np.errstate(all=None) instead of "ignore": the overflow of the factor in the gradient escaped as a
    RuntimeWarning)."""

    t = np.array([0.0, 1.0, 2.0, 3.0])
    rows = []
    for i, (wt, age) in enumerate(((55.0, 25.0), (70.0, 40.0), (85.0, 60.0), (100.0, 33.0)), start=1):
        rows += [dict(ID=i, TIME=tt, DV=100.0 + 20.0 * tt + 0.5 * math.sin(3 * i + tt), EVID=0, AMT=0.0, WT=wt,
                      AGE=age) for tt in t]
    layout, engine = _line_cov_engine(rows)
    x = layout.x0.copy()
    x[-1] = 2000.0                                   # the power coefficient (natural scale, last)
    assert layout.coefficients(x[None, :])[0].tolist() == [0.01, 2000.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = engine.evaluate(x, None)
    assert ev.status[2] != 0 and ev.status[[0, 1, 3]].tolist() == [0, 0, 0]
    assert not np.isfinite(ev.ofv.sum())


# --- seed 42 -------------------------------------------------------------------------------------------------------
def test_html_summary_shows_each_standard_error_and_rse_from_the_covariance():
    """The notebook summary's SE column gives each estimate's standard error, the square root of its diagonal
    element of fit.covariance, to 3 significant digits, and the RSE % column 100 SE / estimate to 1 decimal: Wang
    2007 by FOCE with the default sandwich covariance, whose three parameters all have one. Seed 42's survivor
    PopulationFit._repr_html_ _11 (the SE cell always empty) left the column blank."""
    import html

    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="foce")
    assert fit.covariance is not None
    se = np.sqrt(np.diag(fit.covariance))
    names = fit.parameters["name"].tolist()
    estimates = fit.parameters["estimate"].to_numpy(dtype=float)
    assert len(names) == 3 and np.all(np.isfinite(se)) and np.all(se > 0)
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{est:.5g}</td><td>{s:.3g}</td><td>{100 * s / est:.1f}</td>"
                   "</tr>" for name, est, s in zip(names, estimates, se))
    summary = fit._repr_html_()
    assert "<th>RSE %</th></tr>" + rows + "</table>" in summary


# --- seed 44 -------------------------------------------------------------------------------------------------------
def test_covariance_step_asked_for_s_gives_4_s_inverse_and_falls_back_to_r_saying_why():
    """``covariance="S"`` asks for 4 S^-1 (NONMEM's MATRIX=S), with 2 R^-1 as its fallback. With R = [[2, 0.5],
    [0.5, 1]] and S = [[3, 1], [1, 2]] both positive definite, the covariance of a two-parameter log-scale layout at
    (a, b) = (2, 3) is J 4 S^-1 J (J = diag(2, 3), S^-1 by its closed form; not the sandwich, not 2 R^-1) and the
    message is "4 S^-1 (cross-product)" alone; with S = g g' (g = (1, 1), rank 1) it is J 2 R^-1 J and the message
    says S failed and why, in full. Seed 44's survivor covariance._covariance_step _31 (the order for "S" begins
    with "XXSXX", a kind that never matches) gave 2 R^-1 with "(fallback: XXSXX unavailable)"."""
    x = np.log([2.0, 3.0])
    J = np.diag([2.0, 3.0])
    R = np.array([[2.0, 0.5], [0.5, 1.0]])
    cov, msg = _covariance_step(LOG_LAYOUT, x, _Matrices(R, np.array([[3.0, 1.0], [1.0, 2.0]])), "S", ["a", "b"])
    assert msg == "4 S^-1 (cross-product)"
    np.testing.assert_allclose(cov, J @ (4 * _inverse_2x2(3.0, 1.0, 2.0)) @ J, rtol=1e-8)
    g = np.array([1.0, 1.0])
    cov, msg = _covariance_step(LOG_LAYOUT, x, _Matrices(R, np.outer(g, g)), "S", ["a", "b"])
    assert msg == ("2 R^-1 (Hessian) (fallback: the S matrix (cross-product of the per-subject gradients) is singular "
                   "- fewer subjects than parameters, or a parameter no subject's data inform; S unavailable)")
    np.testing.assert_allclose(cov, J @ (2 * _inverse_2x2(2.0, 0.5, 1.0)) @ J, rtol=1e-8)


# --- seed 45 -------------------------------------------------------------------------------------------------------
def test_the_jet_of_exp_follows_the_chain_rule_and_overflows_quietly():
    """The jet of exp(u) for u = 2 x + x y (two coordinates, third order) at (x, y) = (0.3, -0.5): value e^u, first
    derivatives e^u (2 + y, x), second e^u u_a u_b + e^u u_ab (u_xy = 1) and third e^u u_a u_b u_c + e^u (u_ab u_c
    + u_ac u_b + u_bc u_a), by hand. At u = 800 (and with it its derivatives, 0 x inf among them) exp overflows to
    inf: the jet must say so (an infinite value) without a floating-point error or warning (the tests make both
    errors), as the objective's other jets do; the fit then rejects the point. Seed 45's survivor _jets.exp _1
    (np.errstate(all=None) instead of "ignore": the overflow escaped as a FloatingPointError)."""
    from pkpd.estimation import _jets as jets

    x0, y0 = 0.3, -0.5
    x = jets.variable(np.array([x0, 400.0]), 2, 0, order=3)
    y = jets.variable(np.array([y0, 0.0]), 2, 1, order=3)
    e = jets.exp(x * 2.0 + x * y)
    u = 2 * x0 + x0 * y0
    g = np.array([2 + y0, x0])
    H = np.array([[0.0, 1.0], [1.0, 0.0]])
    E = math.exp(u)
    assert e.v[0] == pytest.approx(E, rel=1e-15)
    np.testing.assert_allclose(e.d1[0], E * g, rtol=1e-15)
    np.testing.assert_allclose(e.d2[0], E * (np.outer(g, g) + H), rtol=1e-15)
    third = (np.einsum("a,b,c->abc", g, g, g) + np.einsum("ab,c->abc", H, g) + np.einsum("ac,b->abc", H, g)
             + np.einsum("bc,a->abc", H, g))
    np.testing.assert_allclose(e.d3[0], E * third, rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = jets.exp(x * 2.0)
    assert big.v[1] == np.inf and big.d1[1, 0] == np.inf


# the line model with a weight and a categorical covariate declared
LINE_WT_SEX = model_from_dict(tomllib.loads(_LINE_TOML.replace('name = "line"', 'name = "line_wt_sex"') + """
[covariates.WT]
unit = "kg"
value = 70.0
[covariates.SEX]
unit = "1"
value = 0.0
"""))


def test_a_categorical_effect_after_a_linear_one_keeps_both_coefficients():
    """Two effects on the line model's B0, a linear one in WT (0.01 per kg from 70 kg) and then a categorical one
    in SEX (factor 1.25 for SEX 1, 0.8 for SEX 2): the layout estimates the three coefficients, in that order, and
    a subject's typical B0 is 100 (1 + 0.01 (WT - 70)) x its factor: 85, 125, 92 and 162.5 for (WT, SEX) = (55, 0),
    (70, 1), (85, 2) and (100, 1), by hand. Seed 45's survivor population_model._coefficients _6 (out = for out +=
    on a categorical effect) dropped every coefficient listed before it, the linear WT effect here."""
    t = np.array([0.0, 1.0, 2.0])
    subjects = [(55.0, 0), (70.0, 1), (85.0, 2), (100.0, 1)]
    rows = [dict(ID=i, TIME=tt, DV=100.0 + 20.0 * tt + 0.5 * math.sin(i + tt), EVID=0, AMT=0.0, WT=wt, SEX=sex)
            for i, (wt, sex) in enumerate(subjects, start=1) for tt in t]
    effects = [pkpd.CovariateEffect("B0", "WT", "linear", 0.01, ref=70.0),
               pkpd.CovariateEffect("B0", "SEX", "categorical", {1: 1.25, 2: 0.8})]
    iiv = pkpd.IIV({"B0": 50.0, "S": 10.0}, distribution="normal")
    *_, layout, _ = _setup(LINE_WT_SEX, pd.DataFrame(rows), iiv, pkpd.Additive(sd=0.5), "focei", ["B0", "S"], None,
                           None, None, effects)
    x = layout.x0[None, :]
    assert layout.names()[-3:] == ["WT_on_B0", "SEX[1]_on_B0", "SEX[2]_on_B0"]
    assert layout.coefficients(x)[0].tolist() == [0.01, 1.25, 0.8]
    typical = layout.subject_theta(x, layout.unpack(x)[0])[0]
    np.testing.assert_allclose(typical[:, 0], [85.0, 125.0, 92.0, 162.5], rtol=1e-14)
    np.testing.assert_allclose(typical[:, 1], 20.0, rtol=0)


def test_the_individual_objective_compares_a_log_normal_censored_record_with_log_lloq():
    """The finite-difference engine's individual objective O_i(eta) with M3 and a log-normal error (sigma 0.2): over
    the quantified records (log y - log f)^2 / sigma^2 + log sigma^2 + 2 log y (the Jacobian of log y), over the
    censored ones -2 log Phi((log LLOQ - log f) / sigma), the limit on the scale of the error model, plus eta^2 /
    omega^2 (omega^2 = 0.04), worked out here with scipy for Wang 2007 (f = 10 exp(-0.5 e^eta t), records at 0 and
    1 h, LLOQ 6.3: subjects 1, 3 and 4 censored at 1 h) at eta = 0 and 0.3. Seed 45's survivor
    finite_difference._transform_limit _14 (np.log(None) for np.log(LLOQ)) raised a TypeError on any censored
    record of a log-scale error model."""
    from scipy import stats

    lloq, sigma = 6.3, 0.2
    data = pd.read_csv(WANG)
    data["LLOQ"] = lloq
    *_, layout, prob = _setup("wang2007", data, pkpd.IIV({"ke": 0.04}), pkpd.LogNormal(sigma=sigma), "laplace", None,
                              pkpd.M3(), None, None)
    errs = layout.unpack(layout.x0[None])[2]
    y = data["DV"].to_numpy(float).reshape(10, 2)
    assert prob.cens.sum() == 3
    for e in (0.0, 0.3):
        f = 10.0 * np.exp(-0.5 * math.exp(e) * np.array([0.0, 1.0]))
        O = prob._objective_at(np.tile(f, (1, 10, 1)), np.full((1, 10, 1), e), errs, np.array([[[25.0]]]))[0]
        expected = np.full(10, e * e / 0.04)
        for i in range(10):
            for j in range(2):
                if y[i, j] < lloq:
                    expected[i] -= 2 * stats.norm.logcdf((math.log(lloq) - math.log(f[j])) / sigma)
                else:
                    expected[i] += ((math.log(y[i, j]) - math.log(f[j])) ** 2 / sigma ** 2 + math.log(sigma ** 2)
                                    + 2 * math.log(y[i, j]))
        np.testing.assert_allclose(O, expected, rtol=1e-12)


def test_a_subject_whose_predictions_at_its_ebes_fail_is_reported_failed_with_the_solver_status():
    """FOCE-I on the compiled engine: when the inner problem converges for every subject but the solve with
    sensitivities at the EBEs fails for one (here the engine's predictor is made to report solver status 2, step
    size too small, for subject 2, its outputs otherwise those computed), that subject's evaluation status is 100 +
    2 = 102 (the others 0), so the fit rejects the point, whatever the objective computed from those outputs.
    Seed 45's survivor PopulationObjective.evaluate _389 ((status == 1) & (st1 != 0)) never passed the solver's
    status on: status 0, and a failed solve counted as a good one."""
    t = np.array([0.0, 1.0, 2.0, 3.0])
    rows = []
    for i, (wt, age) in enumerate(((55.0, 25.0), (70.0, 40.0), (85.0, 60.0), (100.0, 33.0)), start=1):
        rows += [dict(ID=i, TIME=tt, DV=100.0 + 20.0 * tt + 0.5 * math.sin(3 * i + tt), EVID=0, AMT=0.0, WT=wt,
                      AGE=age) for tt in t]
    layout, engine = _line_cov_engine(rows)
    x = layout.x0
    ev = engine.evaluate(x, None)
    assert ev.status.tolist() == [0, 0, 0, 0] and np.all(np.isfinite(ev.ofv))
    engine._memos = []
    outputs = engine.predictor.outputs

    def failing_second(P):
        out, scales, status = outputs(P)
        status = status.copy()
        status[1] = 2
        return out, scales, status

    engine.predictor.outputs = failing_second
    ev = engine.evaluate(x, None)
    assert ev.status.tolist() == [0, 102, 0, 0]


def test_a_predicted_ebe_step_of_one_or_more_is_not_trusted():
    """The inner problem starts from the previous EBEs moved to first order (eta - H^-1 (mixed . dphi)) only where
    that step is below 1 in every random effect; otherwise the previous EBEs themselves. With H = 250, mixed
    derivatives (250, 0) and ke lowered by 0.5, 1.0, 1.5 and 0.999 for four subjects, the steps are 0.5, 1.0, 1.5
    and 0.999: the starts are 0.08 + 0.5, 0.08 (kept), 0.08 (kept) and 0.08 + 0.999 (Wang 2007's problem, one random
    effect on ke). Seed 45's survivor PopulationObjective._predicted_start _75 (< 2.0) took the steps of 1.0 and
    1.5."""
    layout, prob, objective = _wang_focei_compiled()
    n = prob.n
    eta = np.full((n, 1), 0.08)
    theta = np.full((n, 1), 0.5)
    sigma = np.array([0.3])
    W = np.array([[25.0]])
    mixed = np.tile([[[250.0, 0.0]]], (n, 1, 1))
    objective._memos = [(eta, theta, sigma, W, (np.full((n, 1, 1), 250.0), mixed))]
    drop = np.zeros((n, 1))
    drop[:4, 0] = [0.5, 1.0, 1.5, 0.999]
    start = objective._predicted_start(eta.copy(), theta - drop, sigma, W)
    expected = np.full((n, 1), 0.08)
    expected[[0, 3], 0] += [0.5, 0.999]
    np.testing.assert_allclose(start, expected, rtol=1e-12)


# --- seed 46 -------------------------------------------------------------------------------------------------------
def test_responsible_parameters_use_a_tolerance_that_grows_with_the_largest_eigenvalue():
    """``_responsible`` counts an eigenvalue of the diagonally scaled matrix as not positive up to 1e-10 max(|largest
    eigenvalue|, 1). R = block-diag([[1, r], [r, 1]], -1) with r = 1 - 1.5e-10 (a and b almost collinear, the
    objective curved downward along c): its eigenvalues are -1 (c), 1 - r = 1.5e-10 ((a - b) / sqrt 2) and 1 + r
    ~ 2 ((a + b) / sqrt 2). The tolerance is 1e-10 x 2 = 2e-10, so the eigenvalue 1.5e-10 counts and a and b
    (loading 1 / sqrt 2 > 0.3 on it) are responsible with c. Seed 46's survivor covariance._responsible _37
    (1e-10 / max(...), a tolerance of 5e-11) named c alone."""
    from pkpd.estimation.covariance import _responsible

    r = 1.0 - 1.5e-10
    R = np.array([[1.0, r, 0.0], [r, 1.0, 0.0], [0.0, 0.0, -1.0]])
    # c loads 1 on its eigenvector, a and b 1 / sqrt 2 each on theirs: c first, then a and b in either order
    assert _responsible(R, ["a", "b", "c"]) in (" (responsible: c, a, b)", " (responsible: c, b, a)")


def test_the_compiled_objective_gives_the_diagnostics_predictions_and_their_eta_derivatives():
    """``PopulationObjective.predictions_at`` (the diagnostics table's predictions on the compiled engine): for Wang
    2007 (f = 10 exp(-ke e^eta t), ke = 0.5 at the initial values, records at t = 0 and 1 h) at EBEs eta spread from
    -0.2 to 0.25, f = 10 exp(-0.5 e^eta t), df/deta = -0.5 e^eta t f and the predictions at eta = 0 are
    10 exp(-0.5 t), by hand, for every subject solved (status 0). Seed 46's survivor
    PopulationObjective.predictions_at _18 (``status != 1`` for ``!= 0``, in either of its two checks: every subject
    solved counted as failed) returned None, and the diagnostics fell back to central differences of batch solves."""
    layout, prob, engine = _wang_focei_compiled()
    eta = np.linspace(-0.2, 0.25, prob.n)[:, None]
    got = engine.predictions_at(layout.x0, eta)
    assert got is not None
    f, G, f0 = got
    t = np.array([0.0, 1.0])
    ke = 0.5 * np.exp(eta)                         # (n, 1)
    expected = 10.0 * np.exp(-ke * t)              # (n, 2)
    np.testing.assert_allclose(f[0], expected, rtol=1e-6)
    np.testing.assert_allclose(G[0, :, :, 0], -ke * t * expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(f0[0], np.tile(10.0 * np.exp(-0.5 * t), (prob.n, 1)), rtol=1e-6)


# --- seed 47 -------------------------------------------------------------------------------------------------------
TWO_OUTPUTS = model_from_dict(tomllib.loads("""
[model]
name = "two_outputs"
time_unit = "h"
[parameters.k]
value = 0.1
unit = "1/h"
[parameters.V]
value = 10.0
unit = "L"
[states.A]
unit = "mg"
initial = "0"
ddt = "-k * A"
[outputs.conc]
expression = "A / V"
unit = "mg/L"
[outputs.marker]
expression = "2 * A / V"
unit = "mg/L"
[doses.iv]
target = "A"
unit = "mg"
"""))


@pytest.mark.parametrize("engine", ["compiled", "finite differences"])
def test_censored_records_of_a_log_scale_output_and_an_additive_one_each_use_their_own_scale(monkeypatch, engine):
    """M3 with two outputs: conc with a log-normal error (its LLOQ compared on the log scale) and marker with an
    additive one (its LLOQ on the natural scale). Three subjects given 100 mg at time 0 (f = 10 exp(-0.1 t) and
    2 f), each with records at 1, 4 and 12 h and both outputs censored at 24 h (LLOQ 1 and 2.5 mg/L). With omega^2
    of k at 1e-8, the Laplace objective equals the closed-form -2 log L without log 2 pi: (log y - log f)^2 /
    s^2 + log s^2 + 2 log y for each log-normal record, (y - f)^2 / sd^2 + log sd^2 for each additive one, and
    -2 log Phi((log L - log f) / s), -2 log Phi((L - f) / sd) for the censored ones, on either engine. Seed 47's
    survivor finite_difference._transform_limit _8 (``sel = None``: every limit taken to the log scale, the
    marker's too) changed the finite-difference engine's value."""
    from scipy.stats import norm

    from pkpd.nlme import population_objective

    s, sd = 0.2, 0.4
    rows, expected = [], 0.0
    for i, scale in enumerate((0.9, 1.05, 1.2), start=1):
        rows.append(dict(ID=i, TIME=0.0, EVID=1, AMT=100.0, AMTU="mg", DV=np.nan, DVID=".", LLOQ=np.nan, BLQ=0))
        for t in (1.0, 4.0, 12.0):
            f = 10.0 * math.exp(-0.1 * t)
            y = f * scale
            rows.append(dict(ID=i, TIME=t, EVID=0, AMT=0.0, AMTU="mg", DV=y, DVID="conc", LLOQ=1.0, BLQ=0))
            expected += (math.log(y) - math.log(f)) ** 2 / s**2 + math.log(s**2) + 2 * math.log(y)
            m = 2 * f + (scale - 1.0)
            rows.append(dict(ID=i, TIME=t, EVID=0, AMT=0.0, AMTU="mg", DV=m, DVID="marker", LLOQ=2.5, BLQ=0))
            expected += (m - 2 * f) ** 2 / sd**2 + math.log(sd**2)
        f = 10.0 * math.exp(-2.4)                        # 0.907 and 1.81 mg/L, below 1 and 2.5
        rows.append(dict(ID=i, TIME=24.0, EVID=0, AMT=0.0, AMTU="mg", DV=1.0, DVID="conc", LLOQ=1.0, BLQ=1))
        rows.append(dict(ID=i, TIME=24.0, EVID=0, AMT=0.0, AMTU="mg", DV=2.5, DVID="marker", LLOQ=2.5, BLQ=1))
        expected += -2 * norm.logcdf((math.log(1.0) - math.log(f)) / s) - 2 * norm.logcdf((2.5 - 2 * f) / sd)
    kw = dict(iiv={"k": 1e-8}, error={"conc": pkpd.LogNormal(sigma=s), "marker": pkpd.Additive(sd=sd)},
              method="laplace", blq=pkpd.M3(), settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    if engine == "finite differences":
        import pkpd.estimation._compiled as c

        monkeypatch.setattr(c, "available", lambda: False)
    got = population_objective(TWO_OUTPUTS, pd.DataFrame(rows), **kw)
    assert got == pytest.approx(expected, abs=1e-4)


# --- seed 48 -------------------------------------------------------------------------------------------------------
def _one_cmt_bolus_rows(subjects) -> list[dict]:
    """pk_1cmt_iv data: 100 mg IV at 0 h for each (ID, observation times, noise factor), DV = 100 / 32 exp(-2.8 / 32
    t) x the factor (the model's typical prediction, CL 2.8 L/h, V 32 L, times it)."""
    rows = []
    for i, times, scale in subjects:
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1))
        rows += [dict(ID=i, TIME=t, DV=100 / 32.0 * math.exp(-2.8 / 32.0 * t) * scale, AMT=0.0, EVID=0, CMT=1,
                      MDV=0) for t in times]
    return rows


def test_a_subject_with_a_single_observation_counts_in_the_objective():
    """Three subjects given 100 mg IV at 0 h, the second with one concentration only (at 4 h), the others with three.
    With omega^2 of CL at 1e-8 the FOCE-I objective is the closed-form -2 log L at the typical prediction f =
    100 / 32 exp(-2.8 / 32 t) without log 2 pi: the sum of (y - f)^2 / sd^2 + log sd^2 over the seven records (sd
    0.1). A subject with a single observation is valid data (only a subject with none has nothing to fit). Seed 48's
    survivor finite_difference._Problem.__init__ _58 (``counts == 1`` for ``counts == 0``) refused it with "data: a
    subject has no observations"."""
    from pkpd.nlme import population_objective

    subjects = [(1, (1.0, 4.0, 12.0), 1.05), (2, (4.0,), 0.9), (3, (2.0, 6.0, 24.0), 1.1)]
    sd = 0.1
    expected = 0.0
    for _, times, scale in subjects:
        for t in times:
            f = 100 / 32.0 * math.exp(-2.8 / 32.0 * t)
            expected += (f * scale - f) ** 2 / sd**2 + math.log(sd**2)
    got = population_objective("pk_1cmt_iv", pd.DataFrame(_one_cmt_bolus_rows(subjects)), iiv={"CL": 1e-8},
                               error=pkpd.Additive(sd=sd), method="focei",
                               settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    assert got == pytest.approx(expected, abs=1e-4)


def test_inter_occasion_variability_on_a_parameter_without_iiv():
    """IIV on CL only and IOV on V only (pk_1cmt_iv, two subjects, 100 mg IV at 0 and 200 h, occasions 1 and 2, three
    concentrations after each dose): the kappa of V is then added to no eta. The parameter rows at eta_CL = 0.2,
    kappa_V = (0.1, -0.3) are CL = 2.8 e^0.2 and V = 32 e^0.1 (occasion 1) with 32 e^-0.3 as the value of
    occasion 2, and with both variances at 1e-10 the FOCE objective is the closed-form -2 log L at the typical
    prediction (the sum of both doses' 100 / 32 exp(-2.8 / 32 (t - t_dose)), sd 0.1) without log 2 pi. Seed 48's
    survivor finite_difference._Problem.__init__ _136 (``(x in iiv.names) or True``: the position of V looked up
    in the IIV's names) raised a ValueError on any IOV parameter without IIV."""
    from pkpd.nlme import population_objective

    sd, k = 0.1, 2.8 / 32.0
    rows, expected = [], 0.0
    for i, scale in ((1, 1.05), (2, 0.92)):
        for occ, start in ((1, 0.0), (2, 200.0)):
            rows.append(dict(ID=i, TIME=start, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=occ))
            for t in (1.0, 4.0, 12.0):
                f = sum(100 / 32.0 * math.exp(-k * (start + t - td)) for td in (0.0, 200.0) if td <= start)
                rows.append(dict(ID=i, TIME=start + t, DV=f * scale, AMT=0.0, EVID=0, CMT=1, MDV=0, OCC=occ))
                expected += (f * scale - f) ** 2 / sd**2 + math.log(sd**2)
    data = pd.DataFrame(rows)
    *_, prob = _setup("pk_1cmt_iv", data, pkpd.IIV({"CL": 0.09}), pkpd.Additive(sd=sd), "foce", None, None, None,
                      None, iov=pkpd.IOV({"V": 0.04}))
    assert prob.q == 3 and prob.n_occ == 2
    eta = np.tile([0.2, 0.1, -0.3], (1, 1, 2, 1))                  # (K, m, n, q): eta_CL, kappa_V occasions 1, 2
    P = prob.params(np.array([[2.8, 32.0]]), eta)
    np.testing.assert_allclose(P[0, 0], np.tile([2.8 * math.exp(0.2), 32.0 * math.exp(0.1), 32.0 * math.exp(-0.3)],
                                                (2, 1)), rtol=1e-14)
    got = population_objective("pk_1cmt_iv", data, iiv={"CL": 1e-10}, iov={"V": 1e-10}, error=pkpd.Additive(sd=sd),
                               method="foce", settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    assert got == pytest.approx(expected, abs=1e-4)


# --- seed 49 -------------------------------------------------------------------------------------------------------
def test_the_square_root_of_a_jet_has_the_derivatives_of_sqrt_x():
    """sqrt(x) at x = 4 and 9 (x the coordinate itself, order 3): the values 2 and 3 and the derivatives
    1 / (2 sqrt x), -1 / (4 x^(3/2)) and 3 / (8 x^(5/2)), i.e. 1/4, -1/32, 3/256 at 4 and 1/6, -1/108, 1/648 at 9.
    Seed 49's survivor _jets.sqrt _12 (the value sqrt x left out of ``apply``: every derivative moved up one place,
    the value 1 / (2 sqrt x), no third derivative) had no test that called it."""
    from pkpd.estimation import _jets as jets

    r = jets.sqrt(jets.variable(np.array([4.0, 9.0]), 1, 0, order=3))
    np.testing.assert_allclose(r.v, [2.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(r.d1[:, 0], [1 / 4, 1 / 6], rtol=1e-15)
    np.testing.assert_allclose(r.d2[:, 0, 0], [-1 / 32, -1 / 108], rtol=1e-15)
    np.testing.assert_allclose(r.d3[:, 0, 0, 0], [3 / 256, 1 / 648], rtol=1e-15)


def test_the_compiled_engine_is_refused_for_doses_whose_factor_varies_with_the_exact_reason(monkeypatch):
    """pk_1cmt_oral's oral doses enter the depot times F: with F among the parameters that vary between subjects
    or are estimated, the compiled estimation library (whose dose events are fixed) cannot serve the problem, and
    the reason a fit gives as its engine ("finite differences: " + the reason) names the dose, the parameter and
    why, word for word; with CL alone varying nothing is refused (''). The compiler is taken as available, so that
    this reason is the first. Seed 49's survivor population_fit._compiled_unsupported_for _36 (the message's end
    changed to "XXvaries between subjects or is estimatedXX") changed the reason users read."""
    import pkpd.estimation._compiled as compiled
    from pkpd.estimation.population_fit import _compiled_unsupported_for

    monkeypatch.setattr(compiled, "available", lambda: True)
    rows = []
    for i in (1, 2):
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1))
        rows += [dict(ID=i, TIME=t, DV=2.0, AMT=0.0, EVID=0, CMT=2, MDV=0) for t in (1.0, 4.0)]
    *_, prob = _setup("pk_1cmt_oral", pd.DataFrame(rows), pkpd.IIV({"CL": 0.09}), pkpd.Additive(sd=0.1), "foce",
                      None, None, None, None)
    assert _compiled_unsupported_for(prob, {"CL", "F"}) == (
        "the doses of target 'oral' depend on F, whose value varies between subjects or is estimated")
    assert _compiled_unsupported_for(prob, {"CL"}) == ""


def test_a_subject_whose_parameters_are_not_finite_gets_nan_predictions_and_the_others_theirs():
    """The finite-difference engine's batch predictions (pk_1cmt_iv, 100 mg IV at 0 h, concentrations at 1 and
    4 h) for two copies of three subjects, CL infinite for subject 2 of copy 1 (as exp(eta) overflows): that
    subject's predictions are NaN (not solved; the caller's objective then fails for it alone) and every other row
    is the closed form 100 / 32 exp(-2.8 / 32 t) at CL 2.8 L/h, V 32 L. Seed 49's survivor
    finite_difference._Problem.predict _104 (``q = None`` in place of the rows' parameters with the model's values
    put in for the non-finite rows) raised a TypeError for the whole batch."""
    times = (1.0, 4.0)
    rows = []
    for i in (1, 2, 3):
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1))
        rows += [dict(ID=i, TIME=t, DV=3.0, AMT=0.0, EVID=0, CMT=1, MDV=0) for t in times]
    *_, prob = _setup("pk_1cmt_iv", pd.DataFrame(rows), pkpd.IIV({"CL": 0.09}), pkpd.Additive(sd=0.1), "foce",
                      None, None, pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    P = np.tile([2.8, 32.0], (2, 3, 1))                 # (copies, subjects, parameters CL, V)
    P[0, 1, 0] = np.inf
    with np.errstate(all="ignore"):
        f = prob.predict(P)
    expected = np.tile([100 / 32.0 * math.exp(-2.8 / 32.0 * t) for t in times], (2, 3, 1))
    expected[0, 1] = np.nan
    np.testing.assert_allclose(f, expected, rtol=1e-8)


def test_a_subject_whose_newton_step_is_below_the_tolerance_stops_whatever_the_other_subjects_steps():
    """The inner Newton iteration stops each subject on its own: when an accepted step leaves its next Newton step
    below 1e-7, or improved its objective by less than 1e-10. LINE (A = B0 + S t) with a normal random effect on S,
    omega^2 = 1e12, additive sd 1, FOCE-I. Subjects 1-3, observed at 0-3 h at 100 + (20 + e_i) t + noise, have
    quadratic objectives whose EBEs sum(t r) / (sum t^2 + 1e-12) (r = y - 100 - 20 t) the first Newton step reaches
    (the next step ~1e-11). Subject 4, observed at 0 h (100) and 1e-6 h (100 + 20e-6 + 2e-5), knows almost nothing
    about its slope: its Newton step is capped at 2 and improves its objective by ~4e-11, so it stops there
    (OFV (2e-5 - 2e-6)^2 + 4e-12 + log(1 + 1e12 (1e-6)^2) ~ log 2), its next capped step still 2. Every subject
    stops after the first trial: the batch is solved twice. Seed 49's survivor finite_difference._Problem.ofv _585
    (the largest Newton step of the whole batch, not each subject's own, compared with 1e-7) kept subjects 1-3
    going while subject 4's next step was 2: a third solve, a trial of their ~1e-11 steps (the kind of seed 24's
    open _595, results within the inner tolerance)."""
    t = np.array([0.0, 1.0, 2.0, 3.0])
    e = np.array([0.5, -0.3, 0.8])
    noise = np.array([0.1, 0.2, -0.4, 0.1])
    tb, rb, om = 1e-6, 2e-5, 1e12
    rows = [dict(ID=i + 1, TIME=tt, DV=100 + (20 + e[i]) * tt + noise[k], EVID=0, AMT=0.0)
            for i in range(3) for k, tt in enumerate(t)]
    rows += [dict(ID=4, TIME=0.0, DV=100.0, EVID=0, AMT=0.0), dict(ID=4, TIME=tb, DV=100 + 20 * tb + rb, EVID=0,
                                                                    AMT=0.0)]
    data = pd.DataFrame(rows)
    *_, layout, prob = _setup(LINE, data, pkpd.IIV({"S": om}, distribution="normal"), pkpd.Additive(sd=1.0),
                              "focei", None, None, pkpd.SolverSettings(rtol=1e-12, atol=1e-12), None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    r = data["DV"].to_numpy()[:12].reshape(3, 4) - 100 - 20 * t
    ebe = (r * t).sum(axis=1) / ((t * t).sum() + 1 / om)
    ofv = (((r - ebe[:, None] * t) ** 2).sum(axis=1) + ebe ** 2 / om + math.log(om)
           + math.log((t * t).sum() + 1 / om))
    solves = _record_solves(prob)
    out, eta, _ = prob.ofv(layout.subject_theta(X, theta), omega, errs)
    np.testing.assert_allclose(eta[0, :3, 0], ebe, rtol=0, atol=1e-8)
    np.testing.assert_allclose(out[0, :3], ofv, rtol=1e-9)
    assert eta[0, 3, 0] == pytest.approx(2.0, abs=1e-12)
    assert out[0, 3] == pytest.approx((rb - 2 * tb) ** 2 + 4 / om + math.log(1 + om * tb ** 2), abs=1e-4)
    assert len(solves) == 2


# --- seed 50 -------------------------------------------------------------------------------------------------------
# a model file whose parameter values are all whole numbers (TOML reads `value = 1` as an integer), with a rate
# constant K0 R^M whose exponent M is a parameter: K0 = 1/h, R = 2, M = -1 give ke = 0.5/h
_INTEGER_POWER_FILE = model_from_dict(tomllib.loads("""
[model]
name = "integer_power"
time_unit = "h"
[parameters.K0]
value = 1
unit = "1/h"
[parameters.R]
value = 2
unit = "1"
[parameters.M]
value = -1
unit = "1"
[derived]
ke = { expression = "K0 * R ** M", unit = "1/h" }
[states.A]
unit = "mg"
initial = "0"
ddt = "-ke * A"
[outputs.amount]
expression = "A"
unit = "mg"
[doses.iv]
target = "A"
unit = "mg"
"""))

# A model built in code keeps integer values as given (a model file's whole numbers are read as floats since dd50aea)
INTEGER_POWER = dataclasses.replace(_INTEGER_POWER_FILE, parameters=tuple(
    dataclasses.replace(p, value=int(p.value)) for p in _INTEGER_POWER_FILE.parameters))


def test_finite_difference_predictions_of_a_model_file_with_whole_number_values_are_the_closed_form():
    """The finite-difference engine's batch predictions for a model whose parameter values are all Python integers
    (K0 = 1, R = 2, M = -1; a model built in code keeps them): 100 mg IV at 0 h, amounts at 1 and 4 h, two copies
    of two subjects with R = 2 and 4, are the closed form 100 exp(-K0 R^M t) (ke 0.5/h and 0.25/h). The dose
    events are built once at the model's values, which must be taken as floats: numpy refuses an integer to a
    negative integer power. Seed 50's survivor finite_difference._Problem.__init__ _174 (``dtype=float`` dropped
    from the model's values) kept them integers, and every prediction raised "ValueError: Integers to negative
    integer powers are not allowed"."""
    assert all(type(p.value) is int for p in INTEGER_POWER.parameters)
    times = (1.0, 4.0)
    rows = []
    for i in (1, 2):
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1))
        rows += [dict(ID=i, TIME=t, DV=50.0, AMT=0.0, EVID=0, CMT=1, MDV=0) for t in times]
    *_, prob = _setup(INTEGER_POWER, pd.DataFrame(rows), pkpd.IIV({"K0": 0.09}), pkpd.Additive(sd=0.1), "foce",
                      None, None, pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    P = np.tile([1.0, 2.0, -1.0], (2, 2, 1))            # (copies, subjects, parameters K0, R, M)
    P[:, 1, 1] = 4.0
    f = prob.predict(P)
    expected = np.array([[100 * math.exp(-1.0 * r ** -1 * t) for t in times] for r in (2.0, 4.0)])
    np.testing.assert_allclose(f, np.tile(expected, (2, 1, 1)), rtol=1e-8)


# --- seed 51 -------------------------------------------------------------------------------------------------------
def test_an_objective_that_cannot_be_evaluated_for_one_subject_names_that_subject_in_the_singular():
    """Subject 1 has a binary response record (valid), subject 2 an ordinal grade record with intercepts a1 = -1 <
    a2 = 0.5 (P(grade = 1) = expit(a1) - expit(a2) < 0): the fit stops at its initial values and the message names
    subject 2 alone, 'for subject 2' (the plural 'subjects' only for two or more), then its record and the rule it
    breaks, word for word. Seed 51's survivor population_fit._failed_subjects_message _30 (the singular's empty
    suffix replaced by 'XXXX') wrote 'for subjectXXXX 2'."""
    model = pkpd.load_model(ENDPOINTS)
    data = pd.DataFrame([(1, 4.0, 1, "resp"), (2, 6.0, 1, "grade")], columns=["ID", "TIME", "DV", "DVID"])
    with pytest.raises(FitError) as info:
        pkpd.fit_population(model, data, iiv={"h0": 0.1}, method="laplace", estimate=["a1", "a2"],
                            init={"a1": -1.0, "a2": 0.5})
    assert str(info.value) == (
        "fit_population: the objective cannot be evaluated at the initial values for subject 2: ordinal output "
        "'grade' at subject 2, t = 6 h (row 2): the cumulative logits must decrease from one category to the next "
        "(intercepts in decreasing order)"
    )


def test_every_evaluation_of_the_compiled_covariance_step_starts_from_the_ebes_at_the_estimates():
    """The compiled run's R: central differences of the analytic gradient at x +- h e_k, each inner problem
    warm-started at the EBEs at the estimates x (the centre), which the run keeps afterwards. A stand-in engine
    with two subjects, OFV_i = x' A_i x / 2 (gradient A_i x, so the central difference is exact: R = A_1 + A_2),
    whose EBEs are (sum x) for each subject, records the start it is handed: after an evaluation at x = (0.2,
    -0.4) (EBEs -0.2), the 1 + 2 x 2 evaluations of ``matrices`` all start from -0.2, and the run's EBEs are
    still -0.2. Seed 51's survivor population_fit._GradientRun.matrices _19 (``centre = None``) started the four
    perturbed inner problems from None (eta = 0) and left the run without EBEs; the results differ only within
    the inner tolerance, so this is a mechanism test, as for the finite-difference engine's warm start."""
    from pkpd.estimation.population_fit import _GradientRun

    A = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, -0.25], [-0.25, 3.0]]])
    starts = []

    class Engine:
        method = "focei"

        def evaluate(self, x, eta0, gradient=True):
            starts.append(None if eta0 is None else np.array(eta0, dtype=float))
            return SimpleNamespace(ofv=0.5 * np.einsum("a,nab,b->n", x, A, x), gradient=A @ x if gradient else None,
                                   eta=np.full((2, 1), float(x.sum())), status=np.zeros(2, dtype=int),
                                   information=None)

    x = np.array([0.2, -0.4])
    run = _GradientRun(Engine(), None, None)
    run.value_and_gradient(x)
    centre = np.full((2, 1), -0.2)
    np.testing.assert_allclose(run.eta, centre, rtol=1e-15)
    starts.clear()
    R, S = run.matrices(x, h=1e-3)
    assert len(starts) == 5
    for start in starts:
        assert start is not None
        np.testing.assert_allclose(start, centre, rtol=1e-15)
    np.testing.assert_allclose(run.eta, centre, rtol=1e-15)
    np.testing.assert_allclose(R, A[0] + A[1], rtol=1e-9)
    g = A @ x
    np.testing.assert_allclose(S, np.outer(g[0], g[0]) + np.outer(g[1], g[1]), rtol=1e-12)


def test_the_compiled_predictions_of_the_diagnostics_are_refused_where_a_subject_is_not_solved():
    """``PopulationObjective.predictions_at`` returns None where a subject cannot be solved at its EBEs (so that the
    diagnostics table falls back to the batch solves): Wang 2007's compiled FOCE-I problem at its initial values,
    EBEs 0.1, the predictor made to report solver status 2 (step size too small) for subject 2 at its EBE (ke =
    0.5 e^0.1), not at eta = 0, its outputs otherwise those computed. On the same problem without the failure the
    predictions are 10 exp(-0.5 e^0.1 t) at t = 0 and 1 h, by hand. Seed 51's survivor
    PopulationObjective.predictions_at _16 (``np.any(None)`` for the status check at the EBEs) returned the failed
    subject's outputs as if solved (the solve at eta = 0, checked too, being fine)."""
    layout, prob, engine = _wang_focei_compiled()
    eta = np.full((prob.n, 1), 0.1)
    got = engine.predictions_at(layout.x0, eta)
    assert got is not None
    np.testing.assert_allclose(got[0][0], np.tile(10.0 * np.exp(-0.5 * math.exp(0.1) * np.array([0.0, 1.0])),
                                                  (prob.n, 1)), rtol=1e-6)
    outputs = engine.predictor.outputs
    ke = prob.model.parameter_names.index("ke")

    def failing_second_at_its_ebe(P):
        out, scales, status = outputs(P)
        if P[1, ke] != 0.5:
            status = status.copy()
            status[1] = 2
        return out, scales, status

    engine.predictor.outputs = failing_second_at_its_ebe
    assert engine.predictions_at(layout.x0, eta) is None


def test_a_map_fo_fit_takes_the_observed_hessian_when_asked():
    """FO with a prior on CL (log-normal, median 2.8 L/h, sd 0.5 on the log scale; a MAP fit, whose covariance is
    2 R^-1 of the posterior): r_matrix="observed" asks for the observed Hessian of the objective, which the
    finite-difference engine computes independently (central differences of the objective value), so the standard
    errors of the two agree to 3 %, differ from those of FO's expected information (the default) by more than 10 %,
    and the message says which R was used. The fit used to set the choice on the prior's wrapper of the run, not on
    the run itself: every MAP FO fit used the expected information whatever r_matrix said, while its message said
    'the observed Hessian' (found while checking seed 51's survivor population_fit._fit_population _354)."""
    import pkpd.estimation._compiled as compiled
    from pkpd.estimation import population_fit
    from pkpd.nonmem import read_nonmem
    from pkpd.priors import LogNormalPrior

    if not compiled.available():
        pytest.skip("the expected information of FO needs the compiled engine")
    theo = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
    model = pkpd.load_model("pk_1cmt_oral").with_priors(CL=LogNormalPrior(2.8, 0.5))
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7), method="fo", priors=True)
    observed = pkpd.fit_population(model, theo, r_matrix="observed", **kw)
    expected = pkpd.fit_population(model, theo, **kw)
    orig = population_fit._objective_engine
    try:
        population_fit._objective_engine = lambda prob, layout: None
        independent = pkpd.fit_population(model, theo, **kw)
    finally:
        population_fit._objective_engine = orig
    assert observed.covariance_message == (
        "of the posterior (Laplace approximation, MAP): 2 R^-1 (Hessian); R: the observed Hessian (central "
        "differences of the analytic gradient)")
    assert expected.covariance_message == (
        "of the posterior (Laplace approximation, MAP): 2 R^-1 (Hessian); R: the expected information of the FO "
        "objective (closed form)")
    assert observed.objective == pytest.approx(independent.objective, abs=1e-3)
    se_obs, se_exp, se_ind = (f.parameters["se"].to_numpy() for f in (observed, expected, independent))
    np.testing.assert_allclose(se_obs, se_ind, rtol=0.03)
    assert np.max(np.abs(se_exp / se_obs - 1)) > 0.1


# --- seed 52 -------------------------------------------------------------------------------------------------------
def test_a_subject_whose_fo_objective_cannot_be_computed_costs_its_share_of_the_penalty():
    """The finite-difference engine's FO objective, subject by subject (Wang 2007, f = 10 exp(-ke t), ke = 0.5 e^eta,
    omega^2 = 0.04, additive sd 0.3, records at 0 and 1 h): a subject whose prediction cannot be computed (ke = NaN
    for subject 3 alone) costs _PENALTY / n = 1e10 / 10, its share of the 1e10 that a whole parameter set costs
    where it cannot be evaluated (as with an Omega that is not positive definite, 1e10 / 10 for each subject), and
    the other subjects keep their OFV: subject 1's is, by hand, log|C| + r' C^-1 r with C = diag(0.09, 0.09 + 0.04
    (5 e^-0.5)^2) (G = d f / d eta = -10 ke t e^-ke t) and r = (10.68 - 10, 3.6837 - 10 e^-0.5). Guards
    finite_difference._Problem.ofv (seed 52's survivor _160: ``_PENALTY * n``, 1e11 per failing subject, ten times
    what the whole parameter set may cost)."""
    from pkpd.estimation.population_fit import _PENALTY

    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "fo", None, None, None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    theta = np.broadcast_to(layout.subject_theta(X, theta), (1, prob.n, theta.shape[-1])).copy()
    theta[0, 2, prob.model.parameter_names.index("ke")] = np.nan
    with np.errstate(all="ignore"):
        out, _, _ = prob.ofv(theta, omega, errs)
        not_pd, _, _ = prob.ofv(theta, -omega, errs)
    assert prob.n == 10 and _PENALTY == 1e10
    assert out[0, 2] == 1e9
    np.testing.assert_array_equal(not_pd, np.full((1, 10), 1e9))
    c2 = 0.09 + 0.04 * (5.0 * math.exp(-0.5)) ** 2
    r2 = 3.6837 - 10.0 * math.exp(-0.5)
    by_hand = math.log(0.09) + math.log(c2) + 0.68 ** 2 / 0.09 + r2 ** 2 / c2
    assert out[0, 0] == pytest.approx(by_hand, rel=1e-6)
    assert np.all(np.abs(out[0, [0, 1, 3, 4, 5, 6, 7, 8, 9]]) < 100)


def test_the_ebe_search_gives_up_at_the_first_failed_trial_step_below_the_tolerance():
    """The finite-difference engine's inner Newton search halves a step that does not lower O_i, and gives up once a
    failed trial moved eta by less than _ETA_TOL = 1e-7. Wang 2007's subject 1 alone by FOCE-I (f = 10 exp(-ke t),
    ke = 0.5 e^eta, omega^2 = 0.04, additive sd 0.3, DV 10.68 and 3.6837 at 0 and 1 h), its predictions made NaN
    wherever eta is not 0: the Newton step from 0 is, by hand, s = (G r / R) / (G^2 / R + 1 / omega^2) with G =
    -5 e^-0.5 (df/deta at 1 h), r = 3.6837 - 10 e^-0.5 and R = 0.09, about 0.631; the trials s 2^-k all fail, and
    the last one is k = 23 (7.5e-8 < 1e-7 <= 1.5e-7): 1 + 24 evaluations, the EBE stays 0, and the OFV is FOCE-I's at
    eta = 0 by hand, sum (r^2 / R + log R) + log omega^2 + log H with H = G^2 / R + 1 / omega^2. Guards
    finite_difference._Problem.ofv (seed 52's survivor _570: ``alpha / step`` for ``alpha * step`` in the test of a
    small step, which tried k = 24 too, and up to 100 halvings where a component of the step is 0; a mechanism test:
    the EBEs differ at most by moves below the tolerance, the cost by the extra solves)."""
    data = pd.read_csv(WANG)
    *_, layout, prob = _setup("wang2007", data[data["ID"] == 1], {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None,
                              None, None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    predict_grad, tried = prob.predict_grad, []

    def solved_only_at_zero(theta, eta, grad=True):
        f, G = predict_grad(theta, eta, grad)
        tried.append(float(eta[0, 0, 0]))
        return np.where(np.any(eta != 0, axis=2)[..., None], np.nan, f), G

    prob.predict_grad = solved_only_at_zero
    with np.errstate(all="ignore"):
        out, eta, _ = prob.ofv(layout.subject_theta(X, theta), omega, errs)
    G, r, R = -5.0 * math.exp(-0.5), 3.6837 - 10.0 * math.exp(-0.5), 0.09
    H = G * G / R + 1 / 0.04
    s = (G * r / R) / H
    assert 0.63 < s < 0.632
    assert len(tried) == 25 and tried[0] == 0.0
    np.testing.assert_allclose(tried[1:], s * 0.5 ** np.arange(24), rtol=1e-6)
    assert tried[-1] < 1e-7 <= tried[-2]
    assert eta[0, 0, 0] == 0.0
    by_hand = 0.68 ** 2 / R + r * r / R + 2 * math.log(R) + math.log(0.04) + math.log(H)
    assert out[0, 0] == pytest.approx(by_hand, rel=1e-7)


# --- seed 53 -------------------------------------------------------------------------------------------------------
def test_the_jet_of_a_power_has_the_derivatives_of_x_to_the_p_and_is_quiet_at_zero():
    """x^-1/2 at x = 4 (x the coordinate itself, third order): value 1/2 and derivatives p x^(p-1) = -1/16,
    p (p - 1) x^(p-2) = 3/128, p (p - 1) (p - 2) x^(p-3) = -15/1024; at x = 0 the value and the first derivative
    are infinite (0^-1/2 is a division by zero), at x = -1 NaN (an invalid power), quietly: jets compute in IEEE
    arithmetic and their callers test finiteness (the tests make floating-point warnings and errors both errors), as
    the other jets of the module do. Guards _jets.power (seed 53's survivor _1: np.errstate(all=None) for "ignore",
    the division by zero escaped as a FloatingPointError, a RuntimeWarning outside the tests; the censored-record
    term of the compiled objective, its only caller, runs it inside an errstate of its own)."""
    from pkpd.estimation import _jets as jets

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = jets.power(jets.variable(np.array([4.0, 0.0, -1.0]), 1, 0, order=3), -0.5)
    assert r.v[0] == 0.5
    np.testing.assert_allclose([r.d1[0, 0], r.d2[0, 0, 0], r.d3[0, 0, 0, 0]], [-1 / 16, 3 / 128, -15 / 1024],
                               rtol=1e-15)
    assert r.v[1] == np.inf and r.d1[1, 0] == -np.inf
    assert np.isnan(r.v[2]) and np.isnan(r.d1[2, 0])


def test_an_fo_run_evaluates_the_objective_once_per_point_and_kind():
    """FO's objective at x depends on x alone, so the compiled run keeps its last evaluation and serves it again at the
    same point: Wang 2007 by FO at the initial values, start (with the gradient and the expected information), the
    optimiser's value and gradient, the final OFV (without the gradient) and the covariance step's R and S all at that
    point are one evaluation of the objective (one call of the engine; ``n_evaluations``, which a fit reports, 1),
    and they agree with it: the gradient is the one start kept, R the expected information, S = sum g_i g_i'. Asked
    first without the gradient, twice, a run evaluates once; asked then with it, once more. Guards
    population_fit._GradientRun._eval (seed 53's survivor _18: ``and`` for ``or`` in the test for reuse, which
    evaluated again at the same point whenever the kind asked for matched the kept one's: FO fits of Wang 2007
    reported 6 evaluations for 5 without a covariance step and 7 with the sandwich)."""
    from pkpd.estimation.population_fit import _GradientRun, _objective_engine

    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), pkpd.Additive(sd=0.3), "fo", None, None,
                              None, None)
    engine = _objective_engine(prob, layout)
    assert engine is not None and engine.method == "fo"
    calls = []
    evaluate = engine.evaluate

    def counted(x, eta, **kw):
        calls.append(kw.get("gradient", True))
        return evaluate(x, eta, **kw)

    engine.evaluate = counted
    x = layout.x0.copy()
    run = _GradientRun(engine, prob, layout)
    run.start(x)
    value, gradient = run.value_and_gradient(x)
    ofv, _ = run.final(x)
    R, S = run.matrices(x)
    assert calls == [True] and run.n_evaluations == 1
    ev = run._last[1]
    assert value == ofv.sum() == ev.ofv.sum()
    np.testing.assert_array_equal(gradient, run.gradient0)
    np.testing.assert_array_equal(R, ev.information)
    np.testing.assert_allclose(S, sum(np.outer(g, g) for g in ev.gradient), rtol=1e-12)
    calls.clear()
    run = _GradientRun(engine, prob, layout)
    first, _ = run.final(x)
    again, _ = run.final(x)
    assert calls == [False] and run.n_evaluations == 1
    np.testing.assert_array_equal(first, again)
    assert run.value_and_gradient(x)[0] == first.sum()
    assert calls == [False, True] and run.n_evaluations == 2


def test_the_reason_a_fit_cannot_start_is_given_quietly_with_logit_normal_iov_on_a_fraction_of_one():
    """pk_1cmt_oral with its bioavailability F fixed at its typical value 1 and logit-normal IOV on it (F_occ =
    expit(logit 1 + kappa), logit 1 = log(1 / 0) = +inf: F stays 1 on every occasion), two subjects with two occasions
    (100 mg orally at 0 and 200 h), subject 1 with a sample at t = 0 as well, where the prediction is 0 (the dose is
    still in the depot): the proportional error has SD 0 there, and the fit stops at the initial values with exactly
    the message that names that record, computed quietly (the division by zero of logit 1 included; the tests make
    floating-point warnings and errors both errors). Written for population_fit._initial_problem (seed 53's survivor
    _8: np.errstate(all=None) for "ignore"), which on main's code then made the message a FloatingPointError "divide
    by zero encountered in divide" (a RuntimeWarning outside the tests) from the IOV transform in the
    finite-difference parameters; that transform now silences its own errors (the defect fixed below), and with it
    the mutant changes nothing: every operation in its block does so."""
    times = [1.0, 4.0, 8.0, 12.0]
    rows = []
    for i, cl in ((1, 2.0), (2, 3.5)):
        for occ, start in ((1, 0.0), (2, 200.0)):
            rows.append(dict(ID=i, TIME=start, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=occ))
            if i == 1 and occ == 1:
                rows.append(dict(ID=i, TIME=0.0, DV=0.5, AMT=0.0, EVID=0, CMT=1, MDV=0, OCC=occ))
            rows += [dict(ID=i, TIME=start + t, DV=100 / 32.0 * math.exp(-cl / 32.0 * t), AMT=0.0, EVID=0, CMT=1,
                          MDV=0, OCC=occ) for t in times]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FitError) as info:
            pkpd.fit_population("pk_1cmt_oral", pd.DataFrame(rows), iiv={"CL": 0.09},
                                iov=pkpd.IOV({"F": 0.04}, distribution="logitnormal"),
                                error=pkpd.Proportional(cv=0.05), method="foce", estimate=["CL", "V"], maxeval=0,
                                covariance=None)
    assert str(info.value) == (
        "fit_population: the objective cannot be evaluated at the initial values for subject 1: output 'conc' at "
        "subject 1, t = 0 h (row 2) is predicted 0, so its Proportional error has standard deviation 0; use "
        "pkpd.Combined (an additive part keeps it positive), or remove that observation (e.g. a pre-dose sample at "
        "t = 0)")


def test_the_residual_model_of_a_failed_prediction_is_computed_quietly():
    """The finite-difference problem's residual model (Wang 2007: 10 subjects, DV at 0 and 1 h). Log-normal error
    (sigma 0.2): u = log y, m = log f, dm/df = 1 / f, s = 0.2 and the log-Jacobian term -log y; at f = e^2 m is 2 and
    dm/df e^-2, at f = 0 (a prediction that underflowed, or the padding 0 of a steady-state subject with fewer
    records) m = -inf and dm/df = +inf, at f = -1 m is NaN. Proportional error (cv 10): s = 10 f, +inf at f = 1e308
    (an overflow). All quietly (the tests make floating-point warnings and errors both errors): SAEM calls the
    method outside any errstate. Guards finite_difference._Problem.residual (seed 53's survivor _15:
    np.errstate(all=None) for "ignore": log 0 raised a FloatingPointError, a RuntimeWarning "divide by zero
    encountered in log" outside the tests, as from a SAEM fit of a log-normal error on steady-state records)."""
    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), pkpd.LogNormal(sigma=0.2), "foce", None,
                              None, None, None)
    assert (prob.n, prob.J) == (10, 2) and prob.mask.all()
    y = pd.read_csv(WANG).sort_values(["ID", "TIME"], kind="stable")["DV"].to_numpy().reshape(10, 2)
    f = np.full((1, 10, 2), math.exp(2.0))
    f[0, 0, 0], f[0, 0, 1] = 0.0, -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        u, m, dm, s, ds, jac = prob.residual([[pkpd.LogNormal(sigma=0.2)]], f)
        _, mp, dmp, sp, dsp, _ = prob.residual([[pkpd.Proportional(cv=10.0)]], np.full((1, 10, 2), 1e308))
    np.testing.assert_allclose(u[0], np.log(y), rtol=1e-15)
    np.testing.assert_allclose(jac[0], -np.log(y), rtol=1e-15)
    assert m[0, 0, 0] == -np.inf and dm[0, 0, 0] == np.inf and np.isnan(m[0, 0, 1]) and dm[0, 0, 1] == -1.0
    np.testing.assert_allclose(m[0, 1:], 2.0, rtol=1e-15)
    np.testing.assert_allclose(dm[0, 1:], math.exp(-2.0), rtol=1e-15)
    np.testing.assert_array_equal(s, 0.2)
    np.testing.assert_array_equal(ds, 0.0)
    np.testing.assert_array_equal(sp, np.inf)
    np.testing.assert_array_equal(dsp, 10.0)
    np.testing.assert_array_equal(mp, 1e308)
    np.testing.assert_array_equal(dmp, 1.0)


def _oral_two_occasion_data() -> pd.DataFrame:
    """Two subjects, 100 mg orally at 0 and 200 h (occasions 1 and 2), four concentrations after each dose."""
    times = [1.0, 4.0, 8.0, 12.0]
    rows = []
    for i, cl in ((1, 2.0), (2, 3.5)):
        for occ, start in ((1, 0.0), (2, 200.0)):
            rows.append(dict(ID=i, TIME=start, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=occ))
            rows += [dict(ID=i, TIME=start + t, DV=100 / 32.0 * math.exp(-cl / 32.0 * t), AMT=0.0, EVID=0, CMT=1,
                          MDV=0, OCC=occ) for t in times]
    return pd.DataFrame(rows)


def test_logit_normal_iov_on_a_fraction_of_one_keeps_it_one_quietly():
    """Logit-normal IOV on pk_1cmt_oral's bioavailability F at its typical value 1: F on occasion k is expit(logit 1
    + kappa_k) with logit 1 = log(1 / 0) = +inf, so F is 1 on every occasion whatever kappa; the finite-difference
    parameters give exactly that (CL = 2.8 e^eta by hand beside it), quietly (the tests make floating-point warnings
    and errors both errors), and so does a SAEM fit with it, which runs those parameters outside any errstate of its
    own. A defect found beside seed 53's survivor _initial_problem _8: the IOV transform in
    finite_difference._Problem.params ran without the errstate of the IIV one above it, and a SAEM fit warned
    "divide by zero encountered in divide" (a FloatingPointError under np.errstate(all="raise"))."""
    from pkpd.saem import SaemSettings

    data = _oral_two_occasion_data()
    iov = pkpd.IOV({"F": 0.04}, distribution="logitnormal")
    *_, prob = _setup("pk_1cmt_oral", data, pkpd.IIV({"CL": 0.09}), pkpd.Proportional(cv=0.05), "foce", ["CL", "V"],
                      None, None, None, iov=iov)
    assert prob.q == 3 and prob.n_occ == 2
    names = prob.model.parameter_names
    theta = np.array([[1.5, 2.8, 32.0, 1.0]])[:, [["ka", "CL", "V", "F"].index(n) for n in names]]
    eta = np.tile([0.2, 3.0, -3.0], (1, 1, 2, 1))                   # (K, m, n, q): eta_CL, kappa_F occasions 1, 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = prob.params(theta, eta)
    assert P.shape == (1, 1, 2, len(names) + 1)
    np.testing.assert_array_equal(P[0, 0, :, names.index("F")], 1.0)
    np.testing.assert_array_equal(P[0, 0, :, -1], 1.0)                  # F on occasion 2
    np.testing.assert_allclose(P[0, 0, :, names.index("CL")], 2.8 * math.exp(0.2), rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = pkpd.fit_population("pk_1cmt_oral", data, iiv={"CL": 0.09}, iov=iov, error=pkpd.Proportional(cv=0.05),
                                  method="saem", estimate=["CL", "V"], covariance=None, is_samples=20, seed=1,
                                  saem=SaemSettings(exploratory=2, smoothing=1))
    assert fit.theta["F"] == 1.0 and np.isfinite(fit.objective)


def test_a_population_fit_whose_start_predicts_0_under_a_log_normal_error_says_it_needs_positive_predictions():
    """log y ~ N(log f, sigma) needs f > 0: pk_1cmt_oral's concentration sampled at t = 0 with the dose (still all in
    the depot) is predicted 0 exactly, and the population fit refuses to start with the message that says so, as the
    individual fit does (test_fit_rules), not that the LogNormal error "has standard deviation 0.1" with the advice
    that an additive part keeps it positive (sigma is positive; log 0 is what fails). A defect found beside seed 53's
    survivor _initial_problem _8."""
    data = _oral_two_occasion_data().drop(columns="OCC")
    data = pd.concat([data.iloc[:1], pd.DataFrame([dict(ID=1, TIME=0.0, DV=0.5, AMT=0.0, EVID=0, CMT=1, MDV=0)]),
                      data.iloc[1:]], ignore_index=True)
    with pytest.raises(FitError) as info:
        pkpd.fit_population("pk_1cmt_oral", data, iiv={"CL": 0.09}, error=pkpd.LogNormal(sigma=0.1), method="foce",
                            estimate=["CL", "V"], maxeval=0, covariance=None)
    assert str(info.value) == (
        "fit_population: the objective cannot be evaluated at the initial values for subject 1: output 'conc' at "
        "subject 1, t = 0 h (row 2) is predicted 0, and its LogNormal error needs positive predictions (it compares "
        "log y with log f); use pkpd.Combined or pkpd.Additive, or censor or remove that observation (e.g. a pre-dose "
        "sample at t = 0)")


# --- seed 53, part 2 -----------------------------------------------------------------------------------------------
def test_the_ebes_of_time_to_event_records_solve_the_score_equation_of_their_hazard():
    """endpoints_exposure.toml without a dose: the event hazard is h = h0 e^eta (h0 = 0.01 1/h, omega^2 = 0.1), the
    cumulative hazard at t is h t, and -2 log L is 2 (H - log h) for an event, 2 H for a censoring. Half the
    gradient of -2 log L in eta at eta = 0 (``endpoint_terms``, the Newton iteration's part on O_i / 2) is, by hand,
    0.01 t - 1 = -0.76 for subject 1's event at 24 h and 0.01 t = 0.48 for subject 2's censoring at 48 h, and the
    EBEs are the roots of dO_i/deta / 2 = 0.01 t e^eta - d + eta / 0.1 (d = 1 for the event, 0 for the censoring),
    found here by brentq. Guards finite_difference._Problem.endpoint_terms (seed 53's survivor _114: ``0.5 / score``
    for ``0.5 * score``, a gradient of 1 / (2 score) that sent the EBEs elsewhere)."""
    from scipy import optimize

    model = pkpd.load_model(ENDPOINTS)
    data = pd.DataFrame([(1, 24.0, 1, "event"), (2, 48.0, 0, "event")], columns=["ID", "TIME", "DV", "DVID"])
    *_, layout, prob = _setup(model, data, pkpd.IIV({"h0": 0.1}), None, "laplace", None, None, None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    theta_i = layout.subject_theta(X, theta)
    f, G = prob.predict_grad(theta_i, np.zeros((1, 2, prob.q)))
    _, half_grad, _ = prob.endpoint_terms(f, G)
    np.testing.assert_allclose(half_grad[0, :, 0], [0.24 - 1.0, 0.48], rtol=1e-6)
    _, eta, _ = prob.ofv(theta_i, omega, errs)
    for i, (t, d) in enumerate(((24.0, 1.0), (48.0, 0.0))):
        root = optimize.brentq(lambda e, t=t, d=d: 0.01 * t * math.exp(e) - d + e / 0.1, -1.0, 1.0, xtol=1e-14)
        assert eta[0, i, 0] == pytest.approx(root, abs=1e-7)


def test_the_laplace_objective_of_a_subject_with_a_censored_record_is_that_of_its_exact_mode():
    """Laplace with M3, Wang 2007's subject 1 alone (f = 10 exp(-0.5 e^eta t), DV 10.68 at 0 h and 3.6837 at 1 h,
    additive sd 0.3, omega^2 = 1) with an LLOQ of 5: the record at 1 h is censored. O_i(eta) = ((10.68 - f(0)) /
    0.3)^2 + log 0.09 - 2 log Phi((5 - f(1)) / 0.3) + eta^2, minimised here by scipy (mode 0.5067); the OFV is, by
    hand, O_i(mode) + log omega^2 + log(O_i''(mode) / 2) (O_i'' by central differences of that formula). The inner
    Newton iteration's Hessian carries the censored record's curvature lam (lam + z) dz dz'; seed 53's survivor
    finite_difference._Problem.ofv _397 (``np.where(None, ...)``, the censored part dropped) took too long steps, ran
    out of its 100 iterations 2e-5 from the mode, and the OFV moved by 3.4e-4."""
    from scipy import optimize, stats

    lloq, sd, om2 = 5.0, 0.3, 1.0
    data = pd.read_csv(WANG)
    data = data[data["ID"] == 1].copy()
    data["LLOQ"] = lloq
    *_, layout, prob = _setup("wang2007", data, pkpd.IIV({"ke": om2}), pkpd.Additive(sd=sd), "laplace", None,
                              pkpd.M3(), None, None)
    X = layout.x0[None]
    theta, omega, errs = layout.unpack(X)
    ofv, eta, _ = prob.ofv(layout.subject_theta(X, theta), omega, errs)
    t, y = data["TIME"].to_numpy(float), data["DV"].to_numpy(float)
    c = y < lloq
    assert c.tolist() == [False, True]

    def objective(e):
        f = 10.0 * np.exp(-0.5 * math.exp(e) * t)
        quantified = (((y[~c] - f[~c]) / sd) ** 2 + math.log(sd * sd)).sum()
        return quantified - 2 * stats.norm.logcdf(lloq, f[c], sd).sum() + e * e / om2

    mode = optimize.minimize_scalar(objective, bracket=(-0.5, 1.5), tol=1e-12).x
    assert mode == pytest.approx(0.5067, abs=1e-4)
    assert eta[0, 0, 0] == pytest.approx(mode, abs=1e-6)
    h = 1e-4
    d2 = (objective(mode + h) - 2 * objective(mode) + objective(mode - h)) / (h * h)
    by_hand = objective(mode) + math.log(om2) + math.log(0.5 * d2)
    assert ofv[0, 0] == pytest.approx(by_hand, abs=1e-4)


def test_an_fo_subject_whose_objective_is_not_a_number_is_reported_as_failed_though_its_model_was_solved():
    """The compiled FO objective of Wang 2007 (f = 10 exp(-ke t), ke = 800 e^eta, omega^2 = 0.04, proportional error
    CV 0.1): subject 2's record at 1 h predicts 10 e^-800, below the smallest float, so f = 0, R = (0.1 f)^2 = 0 and
    df/deta = 0: its covariance C is singular and its OFV is not a number, though the model was solved. Its status
    must say so (100: the objective cannot be evaluated), the other subject's stay 0 with its OFV, by hand, log 1 +
    log(C22) + r2^2 / C22 for its records at 0 and 0.1 h (C = diag(1, 0.04 (80 f)^2 + (0.1 f)^2) with f = 10 e^-80,
    r = (0, 1e-34 - f)). Guards PopulationObjective.evaluate (seed 53's survivor _426: ``status != 0`` for
    ``status == 0`` in the test that marks a non-finite OFV, which reported such a subject as fine, status 0)."""
    from pkpd.estimation.population_fit import _objective_engine

    data = pd.DataFrame({"ID": [1, 1, 2, 2], "TIME": [0.0, 0.1, 0.0, 1.0], "DV": [10.0, 1e-34, 10.0, 1e-300]})
    *_, layout, prob = _setup("wang2007", data, pkpd.IIV({"ke": 0.04}), pkpd.Proportional(cv=0.1), "fo", None, None,
                              None, None)
    engine = _objective_engine(prob, layout)
    if engine is None:
        pytest.skip("needs the compiled engine")
    x = layout.x0.copy()
    x[layout.theta_names.index("ke")] = math.log(800.0)
    ev = engine.evaluate(x, None, gradient=False)
    assert ev.status.tolist() == [0, 100]
    assert math.isnan(ev.ofv[1])
    f = 10.0 * math.exp(-80.0)
    c22 = 0.04 * (80.0 * f) ** 2 + (0.1 * f) ** 2
    assert ev.ofv[0] == pytest.approx(math.log(c22) + (1e-34 - f) ** 2 / c22, rel=1e-9)


# --- seed 54 -------------------------------------------------------------------------------------------------------
def _m3_objective_problem(dv, lloq, error):
    """A Laplace problem with M3 for Wang 2007's model: one subject, a quantified record at 0 h and a censored one at
    1 h (DV below its LLOQ)."""
    data = pd.DataFrame({"ID": [1, 1], "TIME": [0.0, 1.0], "DV": dv, "LLOQ": lloq})
    *_, layout, prob = _setup("wang2007", data, pkpd.IIV({"ke": 0.5}), error, "laplace", None, pkpd.M3(), None,
                              None)
    assert prob.cens.tolist() == [[False, True]]
    return prob, layout.unpack(layout.x0[None])[2]


def _log_phi(x):
    return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))


def test_the_m3_objective_of_a_log_scale_output_is_computed_quietly_under_strict_special_functions():
    """O_i(eta) of ``_objective_at`` with a log-normal error (sigma 0.1) at predictions f = (0.01, 0.02) for DV
    0.012 (quantified) and a censored record with LLOQ 0.05, eta = 0.3 and Omega^-1 = 2: by hand, ((log 0.012 - log
    0.01) / 0.1)^2 + log 0.01 + 2 log 0.012 - 2 log Phi((log 0.05 - log 0.02) / 0.1) + 2 x 0.3^2. Under
    ``scipy.special.errstate(all="raise")`` (a caller's own setting) the value is the same: the censored term used
    to evaluate log_ndtr at the quantified record too, at (0 - log 0.01) / 0.1 = 46, where erfc underflows, and
    raised a SpecialFunctionError for a value it then threw away (the defect found beside seed 54's survivor
    finite_difference._Problem._objective_at _47)."""
    import scipy.special

    prob, errs = _m3_objective_problem([0.012, 0.03], [0.005, 0.05], pkpd.LogNormal(sigma=0.1))
    f, eta, om_inv = np.array([[[0.01, 0.02]]]), np.array([[[0.3]]]), np.array([[[2.0]]])
    by_hand = (((math.log(0.012) - math.log(0.01)) / 0.1) ** 2 + math.log(0.01) + 2 * math.log(0.012)
               - 2 * _log_phi((math.log(0.05) - math.log(0.02)) / 0.1) + 2 * 0.3 ** 2)
    assert prob._objective_at(f, eta, errs, om_inv)[0, 0] == pytest.approx(by_hand, rel=1e-12)
    with scipy.special.errstate(all="raise"):
        strict = prob._objective_at(f, eta, errs, om_inv)
    assert strict[0, 0] == pytest.approx(by_hand, rel=1e-12)


def test_the_m3_objective_of_a_zero_prediction_is_computed_quietly_under_strict_special_functions():
    """O_i(eta) of ``_objective_at`` with an additive error (sd 0.03) at predictions f = (0, 0.04) for DV 0.02
    (quantified, predicted 0: a sample at the time of the dose) and a censored record with LLOQ 0.05, eta = 0.3 and
    Omega^-1 = 2: by hand, (0.02 / 0.03)^2 + log 0.0009 - 2 log Phi((0.05 - 0.04) / 0.03) + 2 x 0.3^2, also under
    ``scipy.special.errstate(all="raise")``. Guards the placeholder of the quantified records in the censored term
    (seed 54's survivor finite_difference._Problem._objective_at _47: ``1.0`` for ``0.0`` as the limit put in at
    quantified records, on main's code z = (1 - 0) / 0.03 = 33 there instead of 0, where log_ndtr signals overflow:
    a SpecialFunctionError under strict special functions; with the placeholder z = 0 the value no longer
    matters)."""
    import scipy.special

    prob, errs = _m3_objective_problem([0.02, 0.03], [0.01, 0.05], pkpd.Additive(sd=0.03))
    f, eta, om_inv = np.array([[[0.0, 0.04]]]), np.array([[[0.3]]]), np.array([[[2.0]]])
    by_hand = (0.02 / 0.03) ** 2 + math.log(0.0009) - 2 * _log_phi((0.05 - 0.04) / 0.03) + 2 * 0.3 ** 2
    with scipy.special.errstate(all="raise"):
        strict = prob._objective_at(f, eta, errs, om_inv)
    assert strict[0, 0] == pytest.approx(by_hand, rel=1e-12)


def test_saem_imputes_a_censored_log_scale_record_quietly_under_strict_special_functions():
    """SAEM's imputation of records below the LLOQ (``pkpd.saem._impute``) with a log-normal error (sigma 0.1),
    predictions f = (0.01, 0.02) for DV 0.012 (quantified) and a censored record with LLOQ 0.05: the quantified
    record keeps u = log 0.012, the censored one is m + s Phi^-1(Phi(z) U) with m = log 0.02, s = 0.1, z = (log 0.05
    - log 0.02) / 0.1 and U the generator's uniform for that record (scipy.stats' normal here), below log 0.05; also
    under ``scipy.special.errstate(all="raise")``, where the draw used to evaluate log_ndtr at the quantified record
    too, at (0 - log 0.01) / 0.1 = 46 (erfc underflows), and raised a SpecialFunctionError for a value it then threw
    away (the defect of seed 54's survivor finite_difference._Problem._objective_at _47, in SAEM)."""
    import scipy.special
    from scipy import stats

    from pkpd.saem import _impute

    prob, errs = _m3_objective_problem([0.012, 0.03], [0.005, 0.05], pkpd.LogNormal(sigma=0.1))
    u = np.log(np.array([[[0.012, 0.03]]]))
    m = np.log(np.array([[[0.01, 0.02]]]))
    s = np.full((1, 1, 2), 0.1)
    z = (math.log(0.05) - math.log(0.02)) / 0.1
    U = np.random.default_rng(54).uniform(size=(1, 1, 2))[0, 0, 1]
    by_hand = math.log(0.02) + 0.1 * stats.norm.ppf(stats.norm.cdf(z) * U)
    for strict in (False, True):
        with scipy.special.errstate(all="raise" if strict else "ignore"):
            out = _impute(prob, errs[0], u, m, s, np.random.default_rng(54))
        assert out[0, 0, 0] == math.log(0.012)
        assert out[0, 0, 1] == pytest.approx(by_hand, rel=1e-9)
        assert out[0, 0, 1] < math.log(0.05)


# --- seed 55 -------------------------------------------------------------------------------------------------------
def test_per_kg_doses_that_do_not_depend_on_the_parameters_scale_with_each_subjects_weight():
    """pk_1cmt_iv (no bioavailability or lag: the doses do not depend on the parameters, so they are built once, by
    ``_Problem.events_at``) with a bolus of 1 mg/kg at 0 h to subjects of 60 and 80 kg: the dose events (those the
    compiled objective's design takes too) put WT x 1 mg = 60 and 80 mg into the central compartment at 0 h, and
    the finite-difference engine's predictions are the one-compartment bolus solution WT x 1 mg / V exp(-CL/V t).
    Guards the data's explicit covariates passed to the dose events (finite_difference._Problem.events_at
    _23: without them a per-kg dose was refused, "pass covariates={'WT': weight_in_kg} to simulate()", although
    the data give each subject's WT)."""
    from pkpd.estimation._objective import design_of

    model = load_model("pk_1cmt_iv")
    rows = []
    for i, wt in ((1, 60.0), (2, 80.0)):
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, EVID=1, AMT=1.0, AMTU="mg/kg", WT=wt))
        rows += [dict(ID=i, TIME=t, DV=1.0, EVID=0, AMT=0.0, AMTU="mg/kg", WT=wt) for t in (1.0, 4.0, 8.0)]
    *_, prob = _setup(model, pd.DataFrame(rows), {"CL": 0.1}, pkpd.Proportional(cv=0.1), "foce", None, None,
                      pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    assert type(prob).__name__ == "_Problem" and not prob.events_depend
    assert model.parameter_names == ("CL", "V")
    events = design_of(prob, prob.base).events
    np.testing.assert_array_equal(events.count, [1, 1])
    np.testing.assert_array_equal(events.time[:, 0], [0.0, 0.0])
    np.testing.assert_allclose(events.value[:, 0], [60.0, 80.0], rtol=1e-14)
    cl, v = 4.0, 40.0
    F = prob.predict(np.array([[[cl, v], [cl, v]]]))
    t = np.array([1.0, 4.0, 8.0])
    for i, wt in enumerate((60.0, 80.0)):
        np.testing.assert_allclose(F[0, i], wt / v * np.exp(-cl / v * t), rtol=1e-7)


def _per_kg_doses_without_weights(ss: bool) -> pd.DataFrame:
    """Two subjects dosed 1 mg/kg at 0 h (a steady state of 12-hourly doses with ``ss``), no WT column."""
    rows = []
    for i in (1, 2):
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, EVID=1, AMT=1.0, AMTU="mg/kg", SS=int(ss), II=12.0 * ss))
        rows += [dict(ID=i, TIME=t, DV=1.0 + 0.1 * i, EVID=0, AMT=0.0, AMTU="mg/kg", SS=0, II=0.0)
                 for t in (1.0, 4.0, 8.0)]
    return pd.DataFrame(rows)


PER_KG_WITHOUT_WT = ("row 1, column AMT: AMT is per kg ('mg/kg'), but the data have no WT column; add each subject's "
                     "weight [kg] as a WT column")


@pytest.mark.parametrize("ss", [False, True], ids=["doses", "steady-state doses"])
def test_a_population_fit_of_per_kg_doses_without_a_wt_column_is_refused_naming_the_column(ss):
    """pk_1cmt_iv declares WT (default 70 kg); data with doses of 1 mg/kg and no WT column: the population fit is
    refused with the individual fit's message, which names the column to add. It used to answer the doses given as
    a Regimen with the simulator's advice ("pass covariates={'WT': weight_in_kg} to simulate()", which a fit takes
    no part of), and to fit steady-state doses (simulated record by record) silently with the model's default
    70 kg: 70 mg for every subject (the defect found beside seed 55's survivor finite_difference._Problem.events_at
    _23)."""
    from pkpd.errors import DataError

    with pytest.raises(DataError) as info:
        _setup(load_model("pk_1cmt_iv"), _per_kg_doses_without_weights(ss), {"CL": 0.1}, pkpd.Proportional(cv=0.1),
               "focei", None, None, None, None)
    assert str(info.value) == PER_KG_WITHOUT_WT


def test_an_individual_fit_of_per_kg_steady_state_doses_without_a_wt_column_is_refused_naming_the_column():
    """As the population fit: one subject's steady state of 1 mg/kg every 12 h, no WT column: refused with the
    message naming the WT column (it used to be fitted silently with the model's default 70 kg)."""
    from pkpd.errors import DataError

    data = _per_kg_doses_without_weights(True)
    with pytest.raises(DataError) as info:
        pkpd.fit(load_model("pk_1cmt_iv"), data[data.ID == 1], estimate=["CL"],
                 error={"conc": pkpd.Proportional(cv=0.1)})
    assert str(info.value) == PER_KG_WITHOUT_WT


@pytest.mark.parametrize("ss", [False, True], ids=["doses", "steady-state doses"])
def test_per_kg_doses_without_a_wt_column_are_refused_naming_the_first_doses_row_as_simulate_nonmem_does(ss):
    """A fit and simulate_nonmem give the same error for doses per kg without a WT column, naming the first dose's
    row of the file: here row 2, after a baseline observation in row 1 (the fit's message named no row before)."""
    from pkpd.errors import DataError
    from pkpd.nonmem import read_nonmem, simulate_nonmem

    data = _per_kg_doses_without_weights(ss)
    data = pd.concat([data.iloc[[1]].assign(TIME=0.0), data]).reset_index(drop=True)   # baseline of ID 1 first
    model = load_model("pk_1cmt_iv")
    expected = PER_KG_WITHOUT_WT.replace("row 1", "row 2")
    with pytest.raises(DataError) as info:
        pkpd.fit(model, data[data.ID == 1], estimate=["CL"], error={"conc": pkpd.Proportional(cv=0.1)})
    assert str(info.value) == expected and info.value.row == 2
    with pytest.raises(DataError) as info:
        simulate_nonmem(model, read_nonmem(data, model))
    assert str(info.value) == expected


# --- seed 56 -------------------------------------------------------------------------------------------------------
# Wang 2007's model (f = 10 exp(-ke e^eta t), ke = 0.5 at the initial values) for two subjects with two and three
# records (from 0 h, where the model starts at 10): the second subject's third column is the first's absent
# observation
WANG_TWO_SUBJECTS = pd.DataFrame({"ID": [1, 1, 2, 2, 2], "TIME": [0.0, 2.0, 0.0, 1.0, 4.0],
                                  "DV": [10.3, 3.9, 9.8, 6.2, 1.4]})
WANG_TWO_TIMES = (np.array([0.0, 2.0]), np.array([0.0, 1.0, 4.0]))


def _wang_two_subjects(error, method):
    """(layout, prob, the compiled objective or None) of Wang 2007's model for WANG_TWO_SUBJECTS (IIV 0.04 on ke),
    solved to rtol 1e-10."""
    from pkpd.estimation.population_fit import _objective_engine

    *_, layout, prob = _setup("wang2007", WANG_TWO_SUBJECTS, {"ke": 0.04}, error, method, None, None,
                              pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    assert prob.mask.tolist() == [[True, True, False], [True, True, True]]
    return layout, prob, _objective_engine(prob, layout)


def _wang_log_normal_cwres_by_hand(data, times, eta):
    """CWRES of Wang 2007's model (V = 10 L, dose 100 mg, ke = 0.5 e^eta /h, omega^2 = 0.04) with a log-normal
    error of sigma 0.1, subject by subject at the EBEs ``eta`` (ID 1, 2, ...): G_j = -ke_i t_j (the transformed
    prediction's derivative by eta), C_i = 0.04 G G' + 0.1^2 I, r = log DV - log f + G eta_i and
    CWRES = chol(C_i)^-1 r."""
    expected = []
    for i, t in enumerate(times):
        ke = 0.5 * math.exp(eta[i, 0])
        G = -ke * t
        y = data.DV[data.ID == i + 1].to_numpy()
        r = np.log(y) - (math.log(10.0) - ke * t) + G * eta[i, 0]
        C = 0.04 * np.outer(G, G) + 0.01 * np.eye(t.size)
        expected.append(np.linalg.solve(np.linalg.cholesky(C), r))
    return np.concatenate(expected)


def test_the_cwres_of_a_log_normal_error_take_the_derivatives_of_log_f():
    """CWRES (FOCE-type, Hooker 2007) with a log-normal error (sigma 0.1) are computed on the log scale: for Wang
    2007's model at the EBEs eta = (0.1, -0.2), log f = log 10 - ke_i t with ke_i = 0.5 e^eta_i, so the derivative
    of the transformed prediction by eta is G_j = -ke_i t_j (df/deta times dm/df = 1/f), C_i = 0.04 G G' + 0.1^2 I,
    r = log DV - log f + G eta_i and CWRES = chol(C_i)^-1 r, by hand; on both paths of ``_diagnostics`` (the
    compiled predictions and the central differences of batch solves). Guards population_fit._diagnostics _55
    (``G / dm`` for ``G * dm``: df/deta times f, a wrong G, where dm = 1/f differs from 1)."""
    from pkpd.estimation.population_fit import _diagnostics

    layout, prob, engine = _wang_two_subjects(pkpd.LogNormal(sigma=0.1), "focei")
    eta = np.array([[0.1], [-0.2]])
    expected = _wang_log_normal_cwres_by_hand(WANG_TWO_SUBJECTS, WANG_TWO_TIMES, eta)
    for eng in (None, engine):
        table = _diagnostics(prob, layout, layout.x0, eta, eng)
        np.testing.assert_allclose(table["CWRES"], expected, rtol=1e-6)
        np.testing.assert_allclose(table["IPRED"], 10.0 * np.exp(-0.5 * np.exp(np.repeat(eta[:, 0], [2, 3]))
                                                                  * np.concatenate(WANG_TWO_TIMES)), rtol=1e-8)


def test_the_fo_expected_information_of_subjects_with_unequal_records_is_its_closed_form():
    """The expected Hessian of the FO objective by x = (log ke, log omega, log sd) for Wang 2007's model with an
    additive error (sd 0.3), two subjects of two and three records, at the initial values: per subject, mu = 10
    exp(-ke t), G = dmu/deta = dmu/dlog ke = -ke t mu, dG/dlog ke = G (1 - ke t), C = omega G G' + sd^2 I, dC/dx =
    (omega (dG G' + G dG'), 2 omega G G', 2 sd^2 I), and the information sum_i 2 dmu_k' C^-1 dmu_l + tr(C^-1 dC_k
    C^-1 dC_l), by hand; from the compiled assembly and from the numpy one (the reference). Guards the zero
    derivatives of G at an absent observation in the numpy assembly (PopulationObjective._fo _87: ``1.0`` for
    ``0.0`` gives the covariance of the first subject's absent third record with its other records non-zero
    derivatives: 94.160 for 94.142 in the log ke entry, -0.0594 for -0.0697 in the log ke, log sd one)."""
    layout, prob, engine = _wang_two_subjects(pkpd.Additive(sd=0.3), "fo")
    if engine is None:
        pytest.skip("needs the compiled objective")
    ke, omega, sd2 = 0.5, 0.04, 0.09
    expected = np.zeros((3, 3))
    for t in WANG_TWO_TIMES:
        mu = 10.0 * np.exp(-ke * t)
        G = -ke * t * mu
        dG = G * (1.0 - ke * t)
        Ci = np.linalg.inv(omega * np.outer(G, G) + sd2 * np.eye(t.size))
        dmu = [G, np.zeros_like(G), np.zeros_like(G)]
        dC = [omega * (np.outer(dG, G) + np.outer(G, dG)), 2.0 * omega * np.outer(G, G), 2.0 * sd2 * np.eye(t.size)]
        expected += [[2.0 * dmu[k] @ Ci @ dmu[m] + np.trace(Ci @ dC[k] @ Ci @ dC[m]) for m in range(3)]
                     for k in range(3)]
    for assembly in ("compiled", "numpy"):
        engine.assembly = assembly
        info = engine.evaluate(layout.x0, None, information=True).information
        np.testing.assert_allclose(info, expected, rtol=1e-8, atol=1e-10, err_msg=assembly)


# --- seed 57 -------------------------------------------------------------------------------------------------------
def test_covariance_step_asked_for_r_falls_back_to_4_s_inverse_saying_why_r_failed():
    """``covariance="R"`` asks for 2 R^-1 (NONMEM's MATRIX=R), with 4 S^-1 as its fallback. With R = diag(4, -1)
    not positive definite (b along its negative eigenvalue) and S = [[2, 0.5], [0.5, 1]] positive definite, the
    covariance of a two-parameter log-scale layout at (a, b) = (2, 3) is J 4 S^-1 J (J = diag(2, 3), S^-1 by its
    closed form) and the message gives the fallback and why R failed, in full. Seed 57's survivor
    covariance._covariance_step _28 (the order for "R" ends with "s", a kind that never matches) gave no covariance
    and "covariance step failed: ..." (more than half of R's parameters flat)."""
    x = np.log([2.0, 3.0])
    J = np.diag([2.0, 3.0])
    S = np.array([[2.0, 0.5], [0.5, 1.0]])
    cov, msg = _covariance_step(LOG_LAYOUT, x, _Matrices(np.diag([4.0, -1.0]), S), "R", ["a", "b"])
    assert msg == ("4 S^-1 (cross-product) (fallback: the R matrix is not positive definite - the estimates may not "
                   "be at a minimum or a parameter is not identifiable (responsible: b); R unavailable)")
    np.testing.assert_allclose(cov, J @ (4 * _inverse_2x2(2.0, 0.5, 1.0)) @ J, rtol=1e-8)


def test_the_cwres_of_foce_weigh_the_residuals_by_the_variance_at_the_population_prediction():
    """CWRES of a FOCE fit (no interaction: Hooker 2007's FOCE CWRES) take the residual variance at the population
    prediction (eta = 0), not at the individual one: for Wang 2007's model with a proportional error (CV 0.1) at the
    EBEs eta = (0.1, -0.2), f_i = 10 exp(-ke_i t) with ke_i = 0.5 e^eta_i, G = df/deta = -ke_i t f_i, the population
    prediction f0 = 10 exp(-0.5 t), C_i = 0.04 G G' + diag((0.1 f0)^2), r = DV - f_i + G eta_i and CWRES =
    chol(C_i)^-1 r, by hand; on both paths of ``_diagnostics`` (the compiled predictions and the central
    differences of batch solves). Seed 57's survivor population_fit._diagnostics _71 (``prob.method == "FOCE"``,
    never true) took (0.1 f_i)^2, FOCEI's variance."""
    from pkpd.estimation.population_fit import _diagnostics

    layout, prob, engine = _wang_two_subjects(pkpd.Proportional(cv=0.1), "foce")
    eta = np.array([[0.1], [-0.2]])
    expected = []
    for i, t in enumerate(WANG_TWO_TIMES):
        ke = 0.5 * math.exp(eta[i, 0])
        f = 10.0 * np.exp(-ke * t)
        G = -ke * t * f
        y = WANG_TWO_SUBJECTS.DV[WANG_TWO_SUBJECTS.ID == i + 1].to_numpy()
        C = 0.04 * np.outer(G, G) + np.diag((0.1 * 10.0 * np.exp(-0.5 * t)) ** 2)
        expected.append(np.linalg.solve(np.linalg.cholesky(C), y - f + G * eta[i, 0]))
    expected = np.concatenate(expected)
    for eng in (None, engine):
        table = _diagnostics(prob, layout, layout.x0, eta, eng)
        np.testing.assert_allclose(table["CWRES"], expected, rtol=1e-6)


def test_the_table_of_a_fit_without_continuous_observations_is_empty_with_a_column_of_output_names():
    """A population fit of ordinal grades only (no continuous observation: no PRED, IPRED or CWRES to give) has an
    empty diagnostics table that still has its documented columns, OUTPUT the (string) names of the observed
    outputs, a column of strings as in any other fit's table, not of numbers. Seed 57's survivor
    population_fit._diagnostics _208 (``np.asarray(layout.outputs, )`` without ``dtype=object``: the array of no
    output names is float64) made it a float64 column."""
    dv = np.array([0.0, 2.0, 3.0, 0.0, 1.0, 2.0])
    data = pd.DataFrame({"ID": np.arange(1, 7), "TIME": 1.0, "DV": dv, "DVID": "grade"})
    fit = pkpd.fit_population(load_model(ENDPOINTS), data, iiv={"a3": 0.1}, estimate=["a1", "a2", "a3"],
                              method="laplace", maxeval=0, covariance=None)
    assert len(fit.table) == 0
    assert list(fit.table.columns) == ["ID", "TIME", "DV", "PRED", "IPRED", "RES", "IWRES", "CWRES", "CENS", "OUTPUT",
                                       "ETA_a3"]
    assert pd.api.types.is_string_dtype(fit.table["OUTPUT"])
    assert not pd.api.types.is_numeric_dtype(fit.table["OUTPUT"])


# --- seed 58 -------------------------------------------------------------------------------------------------------
def test_a_failed_evaluation_of_six_subjects_names_five_and_one_more():
    """The message of subjects that cannot be evaluated names the first five and adds ' and N more' for the others:
    the first six subjects of Wang 2007 with an ODE integration allowed one step (none can be solved) are named as
    'subjects 1, 2, 3, 4, 5 and 1 more' (6 - 5 = 1; the whole message compared). Seed 58's survivor
    population_fit._failed_subjects_message _14 (' and N more' only when len(ids) > 6) left the sixth subject out
    without a word."""
    data = pd.read_csv(WANG)
    data = data[data["ID"].isin(sorted(data["ID"].unique())[:6])]
    assert _fo_fit_failure_with_one_solver_step(data) == (
        "fit_population: the objective cannot be evaluated at the initial values for subjects 1, 2, 3, 4, 5 and 1 "
        "more: the model cannot be solved for subject 1, t = 0 h (row 1) (typical values); check the initial values "
        "and the solver settings")


def test_lbfgsb_continuing_fo_scoring_keeps_to_the_bounds():
    """FO's Fisher scoring that stalls is continued by L-BFGS-B within the same bounds: a stand-in run whose
    objective is (x - 3)^2 (gradient 2 (x - 3)) and whose scoring evaluations fail after the first (no step can
    decrease the objective: scoring stalls at x = 0), with the bound x <= 1, is minimised at the bound, x = 1
    exactly (the minimum of (x - 3)^2 on x <= 1), and the message says scoring stalled and L-BFGS-B went on. Seed
    58's survivor population_fit._fo_scoring _53 (``_lbfgsb(..., None, ...)``: no bounds) went to the
    unconstrained minimum x = 3, outside the bounds."""
    from pkpd.estimation.population_fit import _fo_scoring

    class Run:
        scored = 0

        def value_gradient_information(self, x):
            Run.scored += 1
            if Run.scored > 1:
                return None
            return float((x[0] - 3.0) ** 2), np.array([2.0 * (x[0] - 3.0)]), np.array([[2.0]])

        def value_and_gradient(self, x):
            return float((x[0] - 3.0) ** 2), np.array([2.0 * (x[0] - 3.0)])

    layout = SimpleNamespace(theta_names=["a"], chol_index=[], effects=[])
    x, converged, message = _fo_scoring(Run(), layout, np.array([0.0]), [(None, 1.0)], None)
    assert x.tolist() == [1.0]
    assert converged
    assert message.startswith("Fisher scoring stalled: no step along the scoring direction decreases the objective;"
                              " continued by L-BFGS-B: ")


def test_the_table_of_a_population_fit_gives_each_subject_id_as_the_data_names_it():
    """The diagnostics table's ID column holds the subjects' IDs as the fit names them (an integral ID an int, as
    in its messages, 'subject 1'; a fractional one a float), each as it is, in a column of objects: subjects 1 and
    2.5 of a two-subject Wang 2007 data set give IDs 1 (an int, written '1') and 2.5. Seed 58's survivor
    population_fit._diagnostics _167 (``np.array(d.ids, dtype=None)``: one float64 array of the IDs) made subject
    1 the float 1.0, written '1.0' in the table's CSV."""
    data = WANG_TWO_SUBJECTS.assign(ID=[1, 1, 2.5, 2.5, 2.5])
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="foce",
                              maxeval=0, covariance=None)
    ids = fit.table["ID"].tolist()
    assert ids == [1, 1, 2.5, 2.5, 2.5]
    assert [type(i) for i in ids] == [int, int, float, float, float]
    assert fit.table["ID"].dtype == object
    assert fit.table[["ID"]].to_csv(index=False).split() == ["ID", "1", "1", "2.5", "2.5", "2.5"]


def test_conditional_tail_corrects_log_det_only_for_ebes_within_1e_3_of_the_mode():
    """The first-order correction of log|A| by the last Newton step delta = -H^-1 dO/deta is added only where the
    EBEs are within 1e-3 of the mode (max |delta| < 1e-3), not for an inner problem left far from it. One random
    effect, O = 5, A = 2, dA/deta = 1 (tr A^-1 dA = 1/2), H = 2: with dO/deta = 0.001 (delta = -5e-4) the OFV is
    5 + log 2 + (1/2)(-5e-4); with dO/deta = 0.2 (delta = -0.1) it is 5 + log 2, uncorrected. Seed 58's survivor
    _objective.PopulationObjective._conditional_tail _45 (the threshold 1.001 for 1e-3) added -0.05 to the
    second."""
    from pkpd.estimation._objective import PopulationObjective

    ofv, grad = PopulationObjective._conditional_tail(
        SimpleNamespace(q=1), np.array([5.0, 5.0]), np.array([[0.001], [0.2]]), np.full((2, 1, 1), 2.0),
        np.full((2, 1, 1), 2.0), np.ones((2, 1, 1, 1)), np.array([[0.1], [0.1]]), np.eye(1), False)
    assert grad is None
    np.testing.assert_allclose(ofv, [5.0 + math.log(2.0) - 0.5 * 5e-4, 5.0 + math.log(2.0)], rtol=1e-14)


# --- seed 60 -------------------------------------------------------------------------------------------------------
def test_endpoint_terms_keep_the_finite_parts_of_a_record_whose_likelihood_is_zero():
    """endpoints_exposure.toml without a dose: the event hazard is h = h0 e^eta (h0 = 0.01 1/h), the cumulative
    hazard at t is h t, -2 log L is 2 (H - log h) for an event, 2 H for a censoring. With the hazard at subject 1's
    event at 24 h set to 0 (a record of probability density 0), its -2 log L is +inf (the mark of a failed
    evaluation) and its derivative by the hazard, -2 / h, is infinite: that slot is left out, so half the gradient
    in eta is the cumulative hazard's part alone, H = 0.24 (dH/deta = H), and the information H = 0.24; subject 2's
    censoring at 48 h keeps 2 H = 0.96, half gradient and information H = 0.48. Guards
    finite_difference._Problem.endpoint_terms (seed 60's survivor _78: ``np.where(np.isfinite(gc), gc, None)``
    for ``..., 0.0)``, an object array whose None met the einsum: TypeError)."""
    model = pkpd.load_model(ENDPOINTS)
    data = pd.DataFrame([(1, 24.0, 1, "event"), (2, 48.0, 0, "event")], columns=["ID", "TIME", "DV", "DVID"])
    *_, layout, prob = _setup(model, data, pkpd.IIV({"h0": 0.1}), None, "laplace", None, None, None, None)
    X = layout.x0[None]
    theta, _, _ = layout.unpack(X)
    f, G = prob.predict_grad(layout.subject_theta(X, theta), np.zeros((1, 2, prob.q)))
    hazard_row = prob.endpoint_records.components[0, 2]      # the slots: H at t, H at the start, the hazard at t
    assert f[0, prob.data.subject[hazard_row], prob.flat_j[hazard_row]] == pytest.approx(0.01, rel=1e-12)
    f[0, prob.data.subject[hazard_row], prob.flat_j[hazard_row]] = 0.0
    per, half_grad, info = prob.endpoint_terms(f, G)
    assert per[0, 0] == np.inf
    assert per[0, 1] == pytest.approx(0.96, rel=1e-10)
    np.testing.assert_allclose(half_grad[0, :, 0], [0.24, 0.48], rtol=1e-8)
    np.testing.assert_allclose(info[0, :, 0, 0], [0.24, 0.48], rtol=1e-8)
    assert half_grad.dtype == info.dtype == np.float64


def test_a_binary_record_of_probability_zero_at_the_initial_values_is_named_as_such():
    """A response (endpoints_exposure.toml: P(resp = 1) = expit(b0) without a dose or covariate) started at b0 =
    40: expit(40) = 1 / (1 + e^-40) rounds to 1 exactly (e^-40 = 4e-18 is below half an ulp of 1), so subject 1's
    observed 0 has probability 0 and the fit stops at its initial values naming that subject and record, and why:
    the probability 1 lies in [0, 1], the observed 0 is what cannot happen. Guards
    finite_difference._Problem.endpoint_terms (seed 60's survivor _78: ``np.where(np.isfinite(gc), gc, None)``,
    whose None met the einsum where d(-2 log L)/dp = 2 / (1 - p) is infinite: a TypeError instead of the
    message) and the message itself (it said 'the probability must lie in [0, 1]; got 1')."""
    assert 1.0 / (1.0 + math.exp(-40.0)) == 1.0
    model = pkpd.load_model(ENDPOINTS)
    data = pd.DataFrame([(1, 24.0, 0, "resp"), (2, 48.0, 1, "resp")], columns=["ID", "TIME", "DV", "DVID"])
    with pytest.raises(FitError) as info:
        pkpd.fit_population(model, data, iiv={"h0": 0.1}, method="laplace", estimate=["b0"], init={"b0": 40.0},
                            covariance=None)
    assert str(info.value) == (
        "fit_population: the objective cannot be evaluated at the initial values for subject 1: binary output 'resp' "
        "at subject 1, t = 24 h (row 1): the predicted probability of a 1 is 1, so the observed 0 has probability 0")


# --- seed 61 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error, variance", [(pkpd.Additive(sd=0.3), 0.09), (pkpd.LogNormal(sigma=0.2), 0.04)])
def test_foce_residual_variances_of_additive_and_log_normal_errors_ignore_the_prediction(error, variance):
    """The compiled FOCE objective's residual variances at eta = 0 (``_variances``) for an error whose variance does
    not depend on the prediction: sd^2 = 0.3^2 = 0.09 for Additive(sd=0.3), sigma^2 = 0.2^2 = 0.04 for
    LogNormal(sigma=0.2), at every observation, whatever the prediction there: 2, 0, 1e200, +-inf or NaN (a
    prediction at eta = 0 that cannot be computed, e.g. 0 / 0 at the typical values, leaves the variance as the
    numpy reference ``_residual`` and the compiled assembly give it, sd^2). Guards PopulationObjective._variances
    (seed 61's survivor _20: ``np.where(None, a * a, ...)`` for ``(k == 0) | (k == 4)``, which sent these errors to
    Combined's (a + b f)^2 with b = 0: the same where f is finite, NaN where it is not (0 * inf), so the EBE search
    got NaN variances and such a subject's FOCE objective was NaN where the numpy assembly's is finite)."""
    from pkpd.estimation.population_fit import _objective_engine

    *_, layout, prob = _setup("wang2007", WANG, pkpd.IIV({"ke": 0.04}), error, "foce", None, None, None, None)
    engine = _objective_engine(prob, layout)
    assert engine is not None
    errs = layout.unpack(layout.x0[None])[2][0]
    outputs = np.full((10, 2, 1), 2.0)           # 10 subjects, 2 observation times each, one output
    outputs[1:6, 0, 0] = [0.0, 1e200, np.inf, -np.inf, np.nan]
    R = engine._variances(outputs, errs)
    assert R.shape == (20,)
    np.testing.assert_allclose(R, np.full(20, variance), rtol=1e-12)   # sd from the internal log scale: to an ulp



# --- seed 62 -------------------------------------------------------------------------------------------------------
# Wang 2007's model for two subjects with records at 0, 4, 8 and 12 h, decaying faster (about ke = 0.8) and slower
# (about 0.3) than the typical ke = 0.5: EBEs near +-0.5 and ke_i t up to 10
WANG_FAST_AND_SLOW = pd.DataFrame({"ID": [1] * 4 + [2] * 4, "TIME": [0.0, 4.0, 8.0, 12.0] * 2,
                                   "DV": [10.5, 0.39, 0.017, 0.00071, 9.6, 3.1, 0.88, 0.28]})


@pytest.mark.parametrize("method", ["fo", "foce", "focei"])
def test_the_cwres_of_a_compiled_fit_take_the_exact_eta_derivatives_of_the_sensitivity_equations(method):
    """The diagnostics table of an FO, FOCE or FOCE-I fit on the compiled engine takes df/deta from the compiled
    objective's sensitivity equations, not from central differences of batch solves (step 1e-4 in eta): for Wang
    2007's model (linear: solved exactly, its sensitivities too) with a log-normal error (sigma 0.1) for
    WANG_FAST_AND_SLOW, not optimised (maxeval=0), at the fit's EBEs eta_i (0 for FO), log f = log 10 - ke_i t with
    ke_i = 0.5 e^eta_i, so G_j = d log f_j / deta = -ke_i t_j, C_i = 0.04 G G' + 0.1^2 I (sigma^2 at the population
    prediction as at the individual one), r = log DV - log f + G eta_i and CWRES = chol(C_i)^-1 r, by hand, to
    1e-10 (the compiled table: 4e-13). Central differences carry the truncation error h^2/6 d^3f/deta^3, which
    grows with (ke_i t)^2: 1.5e-8 relative in these FOCE CWRES, 5e-5 in the FO ones. Guards
    population_fit._diagnostics (seed 62's survivor _13: ``engine.method == "laplace"`` for ``!=``, which sent FO,
    FOCE and FOCE-I fits to the central differences and Laplace ones to the compiled predictions)."""
    fit = pkpd.fit_population("wang2007", WANG_FAST_AND_SLOW, iiv={"ke": 0.04}, error=pkpd.LogNormal(sigma=0.1),
                              method=method, maxeval=0, covariance=None)
    if fit.engine != "compiled":
        pytest.skip("needs the compiled objective")
    eta = np.asarray(fit.eta, dtype=float)
    assert eta.shape == (2, 1)
    assert (method == "fo") == (not np.any(eta))
    t = np.array([0.0, 4.0, 8.0, 12.0])
    expected = _wang_log_normal_cwres_by_hand(WANG_FAST_AND_SLOW, [t, t], eta)
    np.testing.assert_allclose(fit.table["CWRES"], expected, rtol=1e-10, atol=0.0)


# --- seed 63 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model, iiv, error", [
    ("wang2007", {"ke": 0.04}, [pkpd.Proportional(cv=0.1)]),     # a list of error models, not a dict
    ("wang2007", {"ke": 0.04}, pkpd.Proportional),                 # the class, not an error model
    ("wang2007", {"ke": 0.04}, "proportional"),                    # a name
    (str(ENDPOINTS), {"h0": 0.1}, []),                             # nothing, but not a dict, for a model with endpoints
    (str(ENDPOINTS), {"h0": 0.1}, 0),
])
def test_fit_population_refuses_an_error_that_is_neither_an_error_model_nor_a_dict(model, iiv, error):
    """fit_population's error is an error model or a dict output -> error model (the docstring); anything else (a
    list of error models, the class Proportional itself, the name 'proportional'; an empty list or 0 for a model
    whose clinical endpoints could do without one) is refused before the data are read with the documented
    message, 'error: expected an error model or a dict output -> error model; got ' and the value's repr. Guards
    population_model._error_dict (seed 63's survivor _6: ``isinstance(error, Mapping) or (error or
    model.endpoint_names)`` for ``and``, which sent every such value to the dict's checks: AttributeError "'list'
    object has no attribute 'items'" instead of the message)."""
    with pytest.raises(FitError) as info:
        pkpd.fit_population(model, WANG, iiv=iiv, error=error, method="laplace", maxeval=0, covariance=None)
    assert str(info.value) == f"error: expected an error model or a dict output -> error model; got {error!r}"


@pytest.mark.parametrize("error", [None, {}])
@pytest.mark.parametrize("method", ["focei", "saem"])
def test_fit_population_without_an_error_model_for_a_model_without_endpoints_says_one_is_needed(error, method):
    """Wang 2007's model has one continuous output, f, and no clinical endpoint that brings its own likelihood, so a
    population fit needs an error model for it: error left out (None, the default) or an empty dict is refused
    before the data are read, with a message that says no error model was given, why one is needed, the model's
    outputs and an example, for every method (SAEM picks its covariance method from the same error). Guards
    population_model._error_dict (seed 63's survivor _6: ``isinstance(error, Mapping) or (error or
    model.endpoint_names)`` for ``and`` took the empty dict for a valid one: 'data: there is no DVID column, so
    observations cannot be matched to the 0 outputs in error ()'). Defect found and fixed: main said 'error:
    expected an error model or a dict output -> error model; got {}' (a dict was given) or '... got None' (for
    the default), neither naming what is missing."""
    with pytest.raises(FitError) as info:
        pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=error, method=method, maxeval=0,
                            covariance=None)
    assert str(info.value) == (
        f"error: no error model given (got {error!r}); model 'wang2007' has no clinical endpoint that brings its "
        "own likelihood, so each fitted output needs one (its outputs: f), e.g. error={'f': pkpd.Proportional(cv=0.2)}")


# --- seed 64 -------------------------------------------------------------------------------------------------------
def test_a_fit_with_clinical_endpoint_records_says_they_keep_it_on_the_finite_difference_path(monkeypatch):
    """Time-to-event records (endpoints_exposure.toml's 'event', subject 1's event at 24 h, subject 2 censored at
    48 h) bring their own exact likelihood, which the compiled objective does not compute: a Laplace fit (and a SAEM
    one) takes the finite-difference path, and the engine it reports is "finite differences: " and the documented
    reason, word for word. The compiler is taken as available, so that this reason is the first. Guards
    population_fit._compiled_unsupported_for (seed 64's survivor _24: the reason in capitals, "CLINICAL ENDPOINT
    RECORDS (THEIR EXACT LIKELIHOOD IS ADDED ON THE FINITE-DIFFERENCE PATH)", the text users read)."""
    import pkpd.estimation._compiled as compiled

    monkeypatch.setattr(compiled, "available", lambda: True)
    data = pd.DataFrame([(1, 24.0, 1, "event"), (2, 48.0, 0, "event")], columns=["ID", "TIME", "DV", "DVID"])
    reason = "clinical endpoint records (their exact likelihood is added on the finite-difference path)"
    for method in ("laplace", "saem"):
        fit = pkpd.fit_population(load_model(ENDPOINTS), data, iiv={"h0": 0.1}, method=method, maxeval=0,
                                  covariance=None, is_samples=10, seed=1)
        assert fit.engine == "finite differences: " + reason


def test_saem_message_says_the_exploration_ended_at_its_maximum_while_a_parameter_still_drifted():
    """SaemSettings(window=1, max_exploratory=2, smoothing=1), Wang 2007's model started at ke = 2.5 (5 times its
    value): the stopping rule (exploration_settled) compares the last two windows of one iteration each, |x2 - x1|
    <= max(sd of the two, 0.005) with sd = |x2 - x1| / 2, i.e. it stops only when no parameter moved more than 0.005
    on its internal scale (log ke); ke went from 1.87 to 1.72 between exploratory iterations 1 and 2 (trace), a
    change of 0.08 in log ke, so the phase ran to its maximum of 2 and the message says so: "(2 exploratory, the
    most the stopping rule allows: a parameter still drifted, 1 smoothing)". Guards
    population_fit._fit_population (seed 64's survivor _222: that text in capitals)."""
    from pkpd.saem import SaemSettings

    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="saem",
                              covariance=None, is_samples=10, seed=1, init={"ke": 2.5},
                              saem=SaemSettings(smoothing=1, n_chains=1, window=1, max_exploratory=2))
    ke = np.asarray(fit.trace["ke"], dtype=float)
    assert ke.shape == (2 + 1 + 1,)
    assert abs(math.log(ke[2] / ke[1])) > 0.005                     # the rule cannot have stopped the phase
    assert fit.message.startswith(
        "SAEM: 3 iterations (2 exploratory, the most the stopping rule allows: a parameter still drifted, "
        "1 smoothing), 1 chain(s) per subject; ")


def test_the_numpy_foce_assembly_is_quiet_where_a_slot_without_observation_has_variance_zero():
    """The numpy reference assembly of FOCE-I (PopulationObjective._conditional) for one subject with one random
    effect, y = eta + eps: prediction m = eta (dm/deta = 1), variance R = sigma^2 = 0.5, omega^2 = 0.25 (W = 4),
    y = 2, at the EBE eta = y / (1 + sigma^2 W) = 2/3, beside a second slot that holds no observation (padding) whose
    variance is 0 (as a proportional error's at a prediction 0). The model is linear and Gaussian, so the objective
    is the marginal -2 log L of y ~ N(0, omega^2 + sigma^2) without 2 pi, log 0.75 + 4 / 0.75 = 16/3 + log 0.75,
    less log|Omega| = log 0.25 (added by the caller): 16/3 + log 3; its gradient in eta is 0 (the mode) and in Omega
    d/d omega^2 (log v + y^2 / v) - 1 / omega^2 = 4/3 - 64/9 - 4 = -88/9. The empty slot changes nothing, quietly:
    1 / 0 there is masked, and the method silences its own floating-point errors (numpy's default, warn, is made an
    error here), as its callers in the package also do. Guards PopulationObjective._conditional (seed 64's
    survivor _31: ``np.errstate(all=None)``: "divide by zero encountered in divide" escaped)."""
    from functools import partial

    from pkpd.estimation import _jets as jets
    from pkpd.estimation._objective import PopulationObjective

    design = SimpleNamespace(mask=np.array([[True, False]]), cens=np.array([[False, False]]),
                             u=np.array([[2.0, 1.0]]), lim=np.zeros((1, 2)))
    stub = SimpleNamespace(q=1, method="focei", design=design)
    for name in ("_ell", "_with_prior", "_conditional_tail"):
        setattr(stub, name, partial(getattr(PopulationObjective, name), stub))
    eta = np.array([[2.0 / 3.0]])
    m = jets.Jet(np.array([[eta[0, 0], 0.0]]), np.array([[[1.0], [0.0]]]), np.zeros((1, 2, 1, 1)))
    R = jets.Jet(np.array([[0.5, 0.0]]), np.zeros((1, 2, 1)), np.zeros((1, 2, 1, 1)))
    with warnings.catch_warnings(), np.errstate(over="warn", invalid="warn", divide="warn"):
        warnings.simplefilter("error")
        ofv, g = PopulationObjective._conditional(stub, m, R, eta, np.array([[4.0]]), True)
    np.testing.assert_allclose(ofv, [16.0 / 3.0 + math.log(3.0)], rtol=1e-14)
    np.testing.assert_allclose(g["phi"], [[0.0]], atol=1e-14)
    np.testing.assert_allclose(g["omega"], [[[-88.0 / 9.0]]], rtol=1e-14)


@pytest.mark.parametrize("maxeval", [3, 7])
def test_saem_message_says_when_maxeval_ended_the_exploration_before_the_stopping_rule(maxeval):
    """SAEM with its stopping rule (SaemSettings' defaults: window 50, at most 300 exploratory iterations) and
    maxeval=3 or 7 (outer iterations in all): the rule cannot end the exploratory phase before two windows, 100
    iterations (exploration_settled is False for a shorter trace), so maxeval ends it, with no smoothing left, and
    the message says so: "(3 exploratory, ended by maxeval=3 before the stopping rule ended it, 0 smoothing)", not
    that the phase ran to the most the rule allows (300) while a parameter still drifted (the rule never compared
    two windows). Defect found and fixed beside seed 64's survivor population_fit._fit_population _222 (that text in
    capitals): main said "(3 exploratory, the most the stopping rule allows: a parameter still drifted, 0
    smoothing)" for any maxeval below max_exploratory."""
    from pkpd.saem import SaemSettings, exploration_settled

    assert not exploration_settled(np.zeros((99, 1)), 50)            # a constant trace settles at 100, not before
    assert exploration_settled(np.zeros((100, 1)), 50)
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="saem",
                              covariance=None, is_samples=10, seed=1, maxeval=maxeval,
                              saem=SaemSettings(n_chains=1))
    assert fit.trace.shape[0] == maxeval + 1
    assert fit.message.startswith(
        f"SAEM: {maxeval} iterations ({maxeval} exploratory, ended by maxeval={maxeval} before the stopping rule "
        "ended it, 0 smoothing), 1 chain(s) per subject; ")


@pytest.mark.parametrize(("maxeval", "settings", "done"), [
    (3, dict(n_chains=1), "3 exploratory, ended by maxeval=3 before the stopping rule ended it, 0 smoothing"),
    (5, dict(n_chains=1, exploratory=3, smoothing=4), "3 exploratory, 2 smoothing"),
    (2, dict(n_chains=1, exploratory=3, smoothing=4), "2 exploratory, 0 smoothing"),
])
def test_a_saem_fit_cut_short_by_maxeval_is_not_converged(maxeval, settings, done):
    """SAEM's estimates are those at the end of its smoothing phase: a run that maxeval stops before the iterations
    its settings plan (the stopping rule's exploration, or a fixed exploratory phase, then ``smoothing``
    iterations) is not converged, and its message says how far it got. The same settings without maxeval run to
    their end and are converged (they were reported converged either way)."""
    from pkpd.saem import SaemSettings

    kw = dict(iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="saem", covariance=None, is_samples=10, seed=1)
    fit = pkpd.fit_population("wang2007", WANG, maxeval=maxeval, saem=SaemSettings(**settings), **kw)
    assert fit.trace.shape[0] == maxeval + 1
    assert not fit.converged
    planned = settings.get("smoothing", 200)
    assert fit.message.startswith(f"SAEM: {maxeval} iterations ({done}), 1 chain(s) per subject; maxeval={maxeval} "
                                  f"stopped it before the end of its {planned} smoothing iterations: not converged; ")
    if "exploratory" in settings:
        whole = pkpd.fit_population("wang2007", WANG, saem=SaemSettings(**settings), **kw)
        assert whole.converged and whole.trace.shape[0] == 3 + 4 + 1
        assert whole.message.startswith("SAEM: 7 iterations (3 exploratory, 4 smoothing), 1 chain(s) per subject; -2")


# --- seed 65 -------------------------------------------------------------------------------------------------------
def _wang_fit_at_its_initial_values():
    """Wang 2007 (IIV 0.04 on ke, additive sd 0.3), not optimised: estimates ke 0.5 1/h, omega2_ke 0.04, sd 0.3."""
    return pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                               covariance=None)


@pytest.mark.parametrize("level, z", [(0.95, 1.959963984540054), (0.9, 1.6448536269514722)])
def test_parameter_table_gives_the_wald_interval_estimate_minus_and_plus_z_se(level, z):
    """The table's confidence interval is Wald's on the natural scale, estimate -+ z SE (the docstring), with z the
    standard normal's (1 + level) / 2 quantile: 1.959963984540054 for 0.95 and 1.6448536269514722 for 0.9 (as
    statistics.NormalDist computes them, checked here). With the SEs set to 0.1, 0.01 and 0.05 for ke = 0.5,
    omega2_ke = 0.04 and sd = 0.3, ci_low is below the estimate and ci_high above it by z SE. Guards
    PopulationFit.parameter_table (seed 65's survivor _129: ``est + z * se`` for ci_low, an interval of one point,
    the upper bound, that does not contain the estimate)."""
    import statistics

    assert statistics.NormalDist().inv_cdf(0.5 + level / 2) == pytest.approx(z, rel=1e-14)
    fit = _wang_fit_at_its_initial_values()
    se = np.array([0.1, 0.01, 0.05])
    fit = dataclasses.replace(fit, parameters=fit.parameters.assign(se=se))
    table = fit.parameter_table(level=level)
    assert table["name"].tolist() == ["ke", "omega2_ke", "sd"]
    est = np.array([0.5, 0.04, 0.3])
    np.testing.assert_allclose(table["estimate"], est, rtol=1e-12)
    np.testing.assert_allclose(table["ci_low"], est - z * se, rtol=1e-12)
    np.testing.assert_allclose(table["ci_high"], est + z * se, rtol=1e-12)


def test_a_saved_population_fit_keeps_its_units_and_one_saved_without_them_has_empty_ones(tmp_path):
    """A population fit saved and loaded back keeps the unit of each parameter, those the model file gives: ke in
    1/h (wang2007.toml), omega2_ke 1 (the variance of a log-normal effect has no unit), sd in mg/L (the unit of the
    output f), in its ``units`` and its parameter table. A file written before the units were saved (the same file
    without "units") still loads, with no units: the table's unit column holds the empty text, a column of
    strings as any other fit's. Guards PopulationFit.parameter_table (seed 65's survivor _114:
    ``self.units.get(n, None)`` for ``""``: None in the unit column of a fit without units). Defect found and
    fixed: save_fit did not write a population fit's units, so every loaded fit had none ({} and an empty unit
    column)."""
    import json

    fit = _wang_fit_at_its_initial_values()
    expected = {"ke": "1/h", "omega2_ke": "1", "sd": "mg/L"}
    assert fit.units == expected
    path = fit.save(tmp_path / "fit.json")
    back = pkpd.PopulationFit.load(path)
    assert back.units == expected
    assert back.parameter_table()["unit"].tolist() == ["1/h", "1", "mg/L"]
    doc = json.loads(Path(path).read_text())
    del doc["units"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    old = pkpd.PopulationFit.load(tmp_path / "old.json")
    assert old.units == {}
    assert old.parameter_table()["unit"].tolist() == ["", "", ""]


def test_the_finite_difference_run_takes_its_warm_start_only_from_a_kept_centre_that_was_evaluated():
    """The finite-difference run keeps the EBEs of a centre it is told to keep (keep=True: the start, gradients,
    the final evaluation) as the start of the next inner problems, but only where that centre could be evaluated:
    Wang 2007 (FOCE-I), after the start at the initial values (EBEs nonzero, one per subject), the covariance step's
    Hessian stencil at ke = 0.8 (keep=False; its first row is the centre, which can be evaluated) and an evaluation
    told to keep its centre at log ke = 1000 (ke overflows: every subject gets the penalty share 1e10 / 10 and zero
    EBEs) both leave the warm start at the start's EBEs, bit for bit. Guards _FiniteDifferenceRun._evaluate (seed
    65's survivor _36: ``keep or ...`` for ``keep and ...`` took the stencil's EBEs at ke = 0.8 and the zeros of
    the failed evaluation: a mechanism test, as for seeds 29 and 33's warm starts, the results differing only
    within the inner tolerance)."""
    from pkpd.estimation.population_fit import _FiniteDifferenceRun

    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None, None, None)
    run = _FiniteDifferenceRun(prob, layout)
    run.start(layout.x0.copy())
    ebes = run.eta.copy()
    assert ebes.shape == (10, 1) and np.all(np.abs(ebes) > 1e-3)
    x = layout.x0.copy()
    x[layout.theta_names.index("ke")] = math.log(0.8)
    run.matrices(x)
    np.testing.assert_array_equal(run.eta, ebes)
    x[layout.theta_names.index("ke")] = 1000.0
    out, eta, _ = run._evaluate(x[None], keep=True)
    np.testing.assert_array_equal(out, np.full((1, 10), 1e9))
    np.testing.assert_array_equal(eta, 0.0)
    np.testing.assert_array_equal(run.eta, ebes)


def test_the_covariance_step_of_a_map_fit_adds_the_hessian_of_minus_2_log_prior_to_r():
    """A MAP fit's objective is the data's plus -2 log prior, so the R matrix of its covariance step is the data's R
    plus the Hessian of -2 log prior, and S (the data's gradients) is the data's alone: a stand-in run with R =
    [[4, 0.5], [0.5, 1]] and S = [[2, 0.5], [0.5, 1]], and normal priors N(0, 0.5^2) on x_1 and N(1, 1) on x_2,
    -2 log prior = x_1^2 / 0.25 + (x_2 - 1)^2 (its Hessian diag(8, 2), exact for central differences of a
    quadratic up to rounding), give R = [[12, 0.5], [0.5, 3]] at any x. Guards _PriorRun.matrices (seed 65's
    survivor _17: ``Rm - Rp``, R = [[-4, 0.5], [0.5, -1]]: a prior that sharpens the objective made it look like a
    saddle)."""
    from pkpd.estimation.population_fit import _PriorRun

    R, S = np.array([[4.0, 0.5], [0.5, 1.0]]), np.array([[2.0, 0.5], [0.5, 1.0]])

    def minus_2_log_prior(X):
        return X[:, 0] ** 2 / 0.25 + (X[:, 1] - 1.0) ** 2

    run = _PriorRun(_Matrices(R, S), minus_2_log_prior)
    Rx, Sx = run.matrices(np.array([0.3, -0.7]))
    np.testing.assert_allclose(Rx, [[12.0, 0.5], [0.5, 3.0]], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(Sx, S)


def test_the_cwres_of_a_subject_with_fewer_records_are_computed_when_another_subjects_covariance_is_singular():
    """CWRES (Hooker 2007) come in one batch of Cholesky factors of C_i, or subject by subject on the C_i of the
    subject's own observations where one C_i is not positive definite. Wang 2007's model for WANG_TWO_SUBJECTS
    (J = 3 slots; subject 1 has two records, its third slot padding) with a proportional error (CV 0.1), FOCE-I, at
    the EBEs eta = (0.1, 7): subject 2's ke = 0.5 e^7 = 548 /h drives its predictions at 1 and 4 h to 1e-237 and 0,
    whose variances (0.1 f)^2 underflow to 0 (as G does), so its C_2 is singular and its CWRES NaN; subject 1's
    CWRES are chol(C_1)^-1 r by hand, with f = 10 exp(-ke_1 t), ke_1 = 0.5 e^0.1, G = -ke_1 t f, C_1 = 0.04 G G' +
    diag((0.1 f)^2) and r = DV - f + G eta_1. Guards population_fit._diagnostics (seed 65's survivor _148:
    ``C[i][np.ix_(k, )]``, the rows of the observed slots with every column, a 2 x 3 matrix that has no Cholesky
    factor: subject 1's CWRES NaN too)."""
    from pkpd.estimation.population_fit import _diagnostics

    layout, prob, _ = _wang_two_subjects(pkpd.Proportional(cv=0.1), "focei")
    eta = np.array([[0.1], [7.0]])
    t = WANG_TWO_TIMES[0]
    ke = 0.5 * math.exp(0.1)
    f = 10.0 * np.exp(-ke * t)
    G = -ke * t * f
    C = 0.04 * np.outer(G, G) + np.diag((0.1 * f) ** 2)
    y = WANG_TWO_SUBJECTS.DV[WANG_TWO_SUBJECTS.ID == 1].to_numpy()
    expected = np.linalg.solve(np.linalg.cholesky(C), y - f + G * 0.1)
    table = _diagnostics(prob, layout, layout.x0, eta, None)
    cwres = table["CWRES"].to_numpy()
    np.testing.assert_allclose(cwres[:2], expected, rtol=1e-6)
    assert np.all(np.isnan(cwres[2:]))


@pytest.mark.parametrize("rtol, log_ke", [(5e-10, -0.9), (2e-10, -0.65), (1e-10, -0.65)])
def test_the_compiled_ebes_are_stationary_to_ten_times_the_solver_rtol(rtol, log_ke):
    """The compiled inner problem searches the EBEs by Gauss-Newton until a step is below 10 rtol (at most 1e-7, at
    least 1e-10): as close to stationary as the solver's tolerance lets the objective resolve. Wang 2007's model
    (linear, solved exactly) for its ten subjects with an additive error (sd 0.3), omega^2 = 0.04, FOCE-I, ke =
    e^log_ke: at each returned EBE eta_i, the next step is -grad / H with, by hand, f = 10 exp(-ke_i t), ke_i = ke
    e^eta_i, g = df/deta = -ke_i t f, grad = -2 sum (y - f) g / sd^2 + 2 eta_i / omega^2 and the expected-information
    H = 2 (sum g^2 / sd^2 + 1 / omega^2); every subject's is below 10 rtol (the largest 0.62, 0.53 and 0.67 of it
    here). Guards PopulationObjective.__init__ (seed 65's survivor _110: ``11.0 * rtol``, whose search stopped up
    to 1.1 times that far from stationary: 1.0995, 1.068 and 1.061 times 10 rtol here)."""
    from pkpd.estimation.population_fit import _objective_engine

    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None,
                              pkpd.SolverSettings(rtol=rtol, atol=1e-12), None)
    engine = _objective_engine(prob, layout)
    if engine is None:
        pytest.skip("needs the compiled objective")
    x = layout.x0.copy()
    x[layout.theta_names.index("ke")] = log_ke
    eta = engine.evaluate(x, None, gradient=False).eta[:, 0]
    data = pd.read_csv(WANG)
    steps = []
    for i, (_, subject) in enumerate(data.groupby("ID", sort=True)):
        t, y = subject["TIME"].to_numpy(), subject["DV"].to_numpy()
        ke = math.exp(log_ke + eta[i])
        f = 10.0 * np.exp(-ke * t)
        g = -ke * t * f
        grad = -2.0 * np.sum((y - f) * g) / 0.09 + 2.0 * eta[i] / 0.04
        steps.append(-grad / (2.0 * (np.sum(g * g) / 0.09 + 1.0 / 0.04)))
    assert len(steps) == 10
    assert np.max(np.abs(steps)) < 10.0 * rtol
