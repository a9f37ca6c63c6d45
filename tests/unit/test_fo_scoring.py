"""FO fits by Fisher scoring (issue 15: FO at a fifth of the FOCE-I time).

* The expected information of the FO objective (:mod:`pkpd.estimation._fo_information`) equals the average outer
  product of the per-subject scores over data simulated from the FO model itself (E[g g'] = 2 x the expected Hessian
  of -2 log L), an independent Monte-Carlo check of the closed form, and the full FO Fisher information matrix of
  :mod:`pkpd.design` (finite differences, PopED's conventions) to 1e-4.
* Its change of coordinates to the internal parameters gives the same gradient as the objective's own chain rule
  (covariate effect, a covariance in Omega, both parameters of a combined error).
* FO fits by scoring reach the L-BFGS-B optimum: the same objective (1e-4) and estimates (relative 1e-3) on
  theophylline and on a model with a covariate effect, block Omega and a combined error.
* The scoring iteration itself: bounds, a variance driven to its bound, a quadratic solved in one step.
* Section "seed 29": the survivors of the sixth independent mutation sample of ``fo_scoring`` (the rules of
  ``fisher_scoring`` they break: double precision, the step to the lower bound, backtracking, the trust radius).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import nlme
from pkpd.design import Design, Group, evaluate_design
from pkpd.estimation import population_fit
from pkpd.estimation._fo_information import x_jacobian
from pkpd.estimation.covariance import _natural_jacobian
from pkpd.estimation.fisher_scoring import fisher_scoring
from pkpd.nonmem import read_nonmem

pytestmark = pytest.mark.skipif(not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
                                reason="the compiled objective needs a C compiler")

THEO = read_nonmem(Path(__file__).resolve().parents[1] / "data" / "theoph.csv", dose_unit="mg")
THEO_KW = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7))
# a second case: a weight effect on CL, a CL-V covariance in Omega, a combined error
BLOCK_KW = dict(iiv=pkpd.IIV({"CL": 0.1, "V": 0.05}, covariances={("CL", "V"): 0.02}), estimate=["ka", "CL", "V"],
                error=pkpd.Combined(sd=0.3, cv=0.1, convention="variance"),
                covariates=[pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70.0)])


def _engine(kw, method="fo"):
    _, _, _, layout, prob = nlme._setup("pk_1cmt_oral", THEO, kw["iiv"], kw["error"], method, kw.get("estimate"),
                                        None, None, None, kw.get("covariates", ()))
    engine = nlme._objective_engine(prob, layout)
    assert engine is not None
    return engine, layout


def _fo_moments(engine, x):
    """Mean and covariance of every subject's observations under the FO model at x (the model's definition:
    f(theta, 0) and G Omega G' + R), and the observation mask."""
    layout = engine.layout
    theta, omega, errs = layout.unpack(x[None, :])
    theta_i = np.broadcast_to(layout.subject_theta(x[None, :], theta)[0], (engine.prob.n, theta.shape[1])).copy()
    f, status = engine._predictions(theta_i, np.zeros((engine.prob.n, engine.q)))
    assert np.all(status == 0)
    m, R = engine._residual(f, errs[0])
    G = m.d1[..., :engine.q]
    C = np.einsum("nja,ab,nkb->njk", G, omega[0], G) + np.einsum("nj,jk->njk", R.v, np.eye(R.v.shape[1]))
    return m.v, C, engine.design.mask


def test_expected_information_equals_the_average_outer_product_of_simulated_scores():
    engine, layout = _engine(THEO_KW)
    # the simulated data replace the design's observations, which the numpy assembly reads at every call (the
    # compiled one keeps the addresses of the design it was built with; it equals the numpy one, test_nlme_gradients)
    engine.assembly = "numpy"
    x = np.array([1.06, 1.02, 3.50, -0.09, -1.20, -1.98, -0.49])        # near the FO optimum
    mu, C, mask = _fo_moments(engine, x)
    info = engine.evaluate(x, None, information=True).information
    rng = np.random.default_rng(20261205)
    n_rep = 300
    outer = np.zeros_like(info)
    design = engine.design
    factors = [np.linalg.cholesky(C[i][np.ix_(mask[i], mask[i])]) for i in range(mu.shape[0])]
    for _ in range(n_rep):
        y = np.ones_like(mu)
        for i, L in enumerate(factors):
            y[i, mask[i]] = mu[i, mask[i]] + L @ rng.standard_normal(L.shape[0])
        engine.design = dataclasses.replace(design, u=y)
        g = engine.evaluate(x, None).gradient                           # per-subject scores of -2 log L
        outer += g.T @ g
    engine.design = design
    mc = 0.5 * outer / n_rep                                             # E[g g'] / 2 = expected Hessian of the OFV
    scale = np.sqrt(np.outer(np.diag(info), np.diag(info)))
    # the Monte-Carlo error of the scaled entries is up to ~0.13 with 12 x 300 scores (0.02 with 12 x 4000); leaving
    # out the trace term or halving the mean term gives errors of 0.8-1
    assert np.max(np.abs(mc - info) / scale) < 0.2, np.round((mc - info) / scale, 3)


def test_expected_information_equals_the_full_fo_fim_of_the_design_module():
    # pkpd.design's population FIM (FO linearisation, full FIM: PopED's and PFIM's conventions), from finite
    # differences of the model in its own code, for one subject; carried to the internal parameters
    times = [0.25, 0.5, 1, 2, 4, 6, 8, 12, 24]
    model = pkpd.load_model("pk_1cmt_oral").with_parameters(ka=1.8, CL=2.9, V=32.0)
    iiv = {"ka": 0.5, "CL": 0.1, "V": 0.03}
    error = pkpd.Combined(sd=0.3, cv=0.1, convention="variance")
    group = Group(pkpd.Regimen.single(pkpd.Dose(320, "mg"), target="oral"), times, 1)
    fim = evaluate_design(model, Design([group]), iiv=iiv, estimate=["ka", "CL", "V"], error=error,
                          approximation="fo", fim="full")
    rows = [dict(ID=1, TIME=0.0, DV=".", AMT=320.0, AMTU="mg", EVID=1, CMT="oral", MDV=1)]
    rows += [dict(ID=1, TIME=t, DV=5.0, AMT=0.0, AMTU="mg", EVID=0, CMT=".", MDV=0) for t in times]
    _, _, _, layout, prob = nlme._setup(model, pd.DataFrame(rows), iiv, error, "fo", ["ka", "CL", "V"], None,
                                        pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    engine = nlme._objective_engine(prob, layout)
    info = engine.evaluate(layout.x0, None, information=True).information
    J = _natural_jacobian(layout, layout.x0)                             # natural = (ka, CL, V, omega2_*, sd, cv)
    expected = J.T @ fim.fim @ J
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    assert np.max(np.abs(0.5 * info - expected) / scale) < 1e-4


def test_the_change_of_coordinates_is_the_objectives_chain_rule():
    engine, layout = _engine(BLOCK_KW)
    x = layout.x0 + 0.05 * np.arange(layout.n) / layout.n
    theta, omega, errs = layout.unpack(x[None, :])
    theta_i = np.broadcast_to(layout.subject_theta(x[None, :], theta)[0], (engine.prob.n, theta.shape[1])).copy()
    Lo = np.linalg.cholesky(omega[0])
    rng = np.random.default_rng(3)
    g = {"phi": rng.standard_normal((engine.prob.n, engine.d)),
         "omega": rng.standard_normal((engine.prob.n, engine.q, engine.q))}
    A, B = x_jacobian(engine, x, theta_i, Lo, errs[0])
    mine = np.einsum("nc,nck->nk", g["phi"], A) + np.einsum("nab,kab->nk", g["omega"], B)
    np.testing.assert_allclose(mine, engine._chain(x, theta_i, Lo, errs[0], g), rtol=1e-12, atol=1e-12)


def _lbfgsb_instead(monkeypatch):
    monkeypatch.setattr(population_fit, "_fo_scoring", lambda run, layout, x, bounds, maxeval:
                        population_fit._lbfgsb(run, layout, x, bounds, maxeval, run.gradient0))


@pytest.mark.parametrize("kw", [THEO_KW, BLOCK_KW], ids=["theophylline", "covariate-block-combined"])
def test_fo_by_scoring_reaches_the_lbfgsb_optimum(kw, monkeypatch):
    scoring = pkpd.fit_population("pk_1cmt_oral", THEO, method="fo", **kw)
    assert scoring.converged and scoring.message.startswith("Fisher scoring"), scoring.message
    with monkeypatch.context() as m:
        _lbfgsb_instead(m)
        lbfgsb = pkpd.fit_population("pk_1cmt_oral", THEO, method="fo", covariance=None, **kw)
    assert lbfgsb.converged
    assert scoring.objective == pytest.approx(lbfgsb.objective, abs=1e-4)
    a = scoring.parameters["estimate"].to_numpy()
    b = lbfgsb.parameters["estimate"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-3)
    assert scoring.n_evaluations < lbfgsb.n_evaluations
    # the covariance step takes the expected information as R (no further evaluation) and says so
    assert "expected information" in scoring.covariance_message
    assert np.all(np.isfinite(scoring.parameters["se"]))


def test_scoring_optimum_is_stationary_at_the_bounds():
    # f = (x0 - 3)^2 + (x1 + 2)^2 + x0 x1 / 2 on [-inf, 1] x [0, inf]: the optimum has x0 = 1 and x1 = 0 at their
    # bounds, with gradients pushing outward
    A = np.array([[2.0, 0.5], [0.5, 2.0]])
    b = np.array([-6.0, 4.0])

    def fun(x):
        return 0.5 * x @ A @ x + b @ x, A @ x + b, A

    res = fisher_scoring(fun, np.array([0.0, 1.0]), np.array([-np.inf, 0.0]), np.array([1.0, np.inf]))
    assert res.converged
    np.testing.assert_allclose(res.x, [1.0, 0.0])
    assert res.gradient[0] < 0 and res.gradient[1] > 0


def test_a_variance_that_the_data_do_not_support_goes_to_its_bound_in_a_few_steps():
    # -2 log L of n draws from N(0, s2 + v) in x = log(sd) with v = exp(2 x): the data's variance is below the
    # known s2, so the MLE of v is 0 (x at its lower bound); the information in x vanishes like v^2 there
    n, s2, ss = 50, 1.0, 40.0                                            # sum of squares 40 < n s2 = 50

    def fun(x):
        v = np.exp(2.0 * x[0])
        c = s2 + v
        f = n * np.log(c) + ss / c
        dfdv = n / c - ss / c ** 2
        info = n / c ** 2 * (2.0 * v) ** 2                                # expected Hessian of f in x
        return f, np.array([dfdv * 2.0 * v]), np.array([[info]])

    res = fisher_scoring(fun, np.array([0.0]), np.array([-12.0]), np.array([5.0]), log_variance=np.array([True]))
    assert res.converged and res.x[0] == -12.0
    assert res.n_iter <= 4, res.n_iter
    plain = fisher_scoring(fun, np.array([0.0]), np.array([-12.0]), np.array([5.0]), max_iter=8)
    assert plain.x[0] > -12.0                                             # steps in x creep towards the bound


def test_fo_standard_errors_from_the_observed_hessian_on_request(monkeypatch):
    """r_matrix="observed" gives NONMEM's $COV R for FO (the Hessian of the objective), which the finite-difference
    engine computes independently (central differences of the objective value itself); the default R is FO's
    expected information, whose standard errors differ."""
    kw = dict(THEO_KW, method="fo", covariance="R")
    observed = pkpd.fit_population("pk_1cmt_oral", THEO, r_matrix="observed", **kw)
    expected = pkpd.fit_population("pk_1cmt_oral", THEO, **kw)
    monkeypatch.setattr(population_fit, "_objective_engine", lambda prob, layout: None)
    independent = pkpd.fit_population("pk_1cmt_oral", THEO, **kw)
    assert observed.objective == pytest.approx(independent.objective, abs=1e-3)
    se_obs = observed.parameters["se"].to_numpy()
    se_ind = independent.parameters["se"].to_numpy()
    se_exp = expected.parameters["se"].to_numpy()
    np.testing.assert_allclose(se_obs, se_ind, rtol=0.03)
    assert np.max(np.abs(se_exp / se_obs - 1)) > 0.1
    assert "observed Hessian" in observed.covariance_message
    assert "expected information" in expected.covariance_message


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(method="fo", r_matrix="fisher"), "r_matrix: must be"),
    (dict(method="focei", r_matrix="expected"), "method='fo' only"),
])
def test_bad_r_matrix_is_named(kwargs, match):
    with pytest.raises(pkpd.FitError, match=match):
        pkpd.fit_population("pk_1cmt_oral", THEO, **THEO_KW, **kwargs)


def test_expected_r_matrix_on_the_finite_difference_engine_is_refused(monkeypatch):
    """The finite-difference engine has no expected information: r_matrix="expected" of an FO fit that runs on it is
    refused (the error comes after the estimation step, at the covariance step)."""
    monkeypatch.setattr(population_fit, "_objective_engine", lambda prob, layout: None)
    with pytest.raises(pkpd.FitError, match="r_matrix='expected': this FO fit runs on the finite-difference engine"):
        pkpd.fit_population("pk_1cmt_oral", THEO, **dict(THEO_KW, method="fo", covariance="R", maxeval=3),
                            r_matrix="expected")


def test_the_diagnostics_of_an_fo_fit_are_the_predictions_at_its_estimates():
    """PRED and IPRED of an FO fit (no EBEs: both at eta = 0) are the one-compartment oral solution at the
    estimated typical values, D ka / (V (ka - k)) (e^(-k t) - e^(-ka t)), k = CL / V, for each subject's dose:
    the table reuses the fit's last solve only where that solve was at the estimates."""
    fit = pkpd.fit_population("pk_1cmt_oral", THEO, method="fo", **THEO_KW)
    ka, cl, v = fit.theta["ka"], fit.theta["CL"], fit.theta["V"]
    k = cl / v
    doses = THEO.table.query("EVID == 1").set_index("ID")["AMT"]
    table = fit.table
    t = table["TIME"].to_numpy()
    dose = doses.loc[table["ID"].to_numpy()].to_numpy()
    want = dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
    np.testing.assert_allclose(table["PRED"], want, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(table["IPRED"], want, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------------------------------ seed 29
# The survivors of the sixth independent sample of ``fo_scoring`` (``benchmarks/mutation.py fo_scoring --sample 40
# --seed 29``, ``benchmarks/results/mutation/fo_scoring-seed29.json``, run on main at c4c138c and judged on the
# lazier iteration of main since): each test seen to fail with its survivor applied by hand to main's code.
_A2 = np.array([[2.0, 1.0], [1.0, 2.0]])


def _recorded(f, points: list):
    """``f`` (returning (objective, gradient, information) or None) that records each point it is given."""
    def fun(x):
        points.append(np.array(x, copy=True))
        return f(x)
    return fun


@pytest.mark.parametrize("which", ["x0", "lower", "upper"])
def test_scoring_from_a_start_or_bounds_in_extended_precision_works_in_double_precision(which):
    """Fisher scoring computes in float64 (``np.linalg`` has no long double): a start or bounds given as
    ``np.longdouble`` are taken as doubles. 0.5 x'Ax - (2, 1)'x, A = [[2, 1], [1, 2]], from (0, 2) in the box
    [-5, 5]^2 reaches its optimum A^-1 (2, 1) = (1, 0) in one iteration, every point evaluated and the result in
    float64. Kills ``x_fisher_scoring__mutmut_23`` (x0 kept as given: long double points, and a TypeError from
    ``np.linalg``), ``_7`` (lower kept as given) and ``_14`` (upper kept as given: x clipped into long double
    bounds becomes long double too). Where the platform's long double is a double the rule holds trivially."""
    args = {"x0": np.array([0.0, 2.0]), "lower": np.full(2, -5.0), "upper": np.full(2, 5.0)}
    args[which] = args[which].astype(np.longdouble)
    points: list = []
    b = np.array([2.0, 1.0])
    fun = _recorded(lambda x: (0.5 * x @ _A2 @ x - b @ x, _A2 @ x - b, _A2), points)
    res = fisher_scoring(fun, args["x0"], args["lower"], args["upper"])
    assert [p.dtype for p in points] == [np.dtype(np.float64)] * len(points)
    assert res.x.dtype == np.float64
    assert res.converged is True and res.n_iter == 1
    np.testing.assert_allclose(res.x, [1.0, 0.0], rtol=0, atol=1e-14)


def test_a_step_goes_to_the_lower_bound_uncapped_only_when_it_reaches_it_from_either_side_of_zero():
    """A step reaches the lower bound when s <= lower - x, and then goes there at once, not capped by the trust
    radius; a step that stays inside the box is capped, wherever x is. 0.5 (x + 20)^2 on x >= -10 from x = -1
    (below 0, where lower + x < lower - x): the Newton step -19 leaves the box, so the step is -9 to the bound,
    evaluated at -10 at once, where g = 10 pushes outward: converged after one iteration. 0.5 (x - 1)^2 on x >= 0
    from 5 (above 0, where lower + x > lower - x): the Newton step -4 stays inside, capped at the radius 2: 5, 3
    (the radius doubles), then the full step to 1. Kills ``x_fisher_scoring__mutmut_105`` (``s <= lower + x``: the
    step to -10 capped, -1, -3, -7, -10; the step -4 taken as one to the bound, uncapped, 5, 1). The earlier tests
    of a step to the lower bound all start at x >= 0 (0, 1, 3), where every step that reaches the bound also
    satisfies the mutant's test, and none has a step capped inside a finite lower bound from x > 0."""
    points: list = []
    fun = _recorded(lambda x: (0.5 * (x[0] + 20.0) ** 2, x + 20.0, np.eye(1)), points)
    res = fisher_scoring(fun, np.array([-1.0]), np.array([-10.0]), np.array([np.inf]))
    assert [float(p[0]) for p in points] == [-1.0, -10.0]
    assert res.converged is True and res.n_iter == 1 and res.x.tolist() == [-10.0]
    points.clear()
    fun = _recorded(lambda x: (0.5 * (x[0] - 1.0) ** 2, x - 1.0, np.eye(1)), points)
    res = fisher_scoring(fun, np.array([5.0]), np.array([0.0]), np.array([np.inf]))
    assert [float(p[0]) for p in points] == [5.0, 3.0, 1.0]
    assert res.converged is True and res.n_iter == 2 and res.x.tolist() == [1.0]


def test_a_rejected_variance_step_is_shortened_as_it_was_taken_in_the_variance():
    """Without a bound in reach, backtracking shortens the rejected step itself by ``_BACKTRACK`` = 1/4. For a log
    standard deviation x = log(v)/2 a decrease is taken in the variance: at x = 0 (x >= -10) 0.5 (x + 0.3)^2 has
    the Newton step -0.3, i.e. v (1 - 0.6), s = log(0.4)/2 = -0.458 (inside the radius 2); the objective cannot be
    evaluated there (None below -0.4), so the next point is s/4 = log(0.4)/8 = -0.1145 (accepted, Armijo). Kills
    ``x_fisher_scoring__mutmut_141`` (the plain step in x built when nothing reaches a bound too: the next point
    -0.3/4 = -0.075)."""
    points: list = []
    fun = _recorded(lambda x: (0.5 * (x[0] + 0.3) ** 2, x + 0.3, np.eye(1)) if x[0] >= -0.4 else None, points)
    fisher_scoring(fun, np.zeros(1), np.array([-10.0]), np.array([np.inf]), log_variance=np.array([True]), max_iter=1)
    np.testing.assert_allclose([float(p[0]) for p in points], [0.0, 0.5 * np.log(0.4), 0.125 * np.log(0.4)],
                               rtol=1e-15, atol=0)


def test_the_trust_radius_does_not_grow_after_a_full_step():
    """The radius "doubles after a capped step that worked", not after a full step. 0.5 (x - 10)^2 from 0 with a
    wrong information 10 (the curvature is 1) and ``max_step=2``: the first step 1 is full (inside the radius);
    its secant pair (s, y) = (1, 1) gives the model the curvature 1, so the next Newton step is 9, capped at the
    radius, still 2: the points evaluated are 0, 1, 3. Kills ``x_fisher_scoring__mutmut_235`` (``t_first < 2``:
    the radius doubled after the full step too, 4: the third point 5)."""
    points: list = []
    fun = _recorded(lambda x: (0.5 * (x[0] - 10.0) ** 2, x - 10.0, np.array([[10.0]])), points)
    fisher_scoring(fun, np.zeros(1), np.array([-np.inf]), np.array([np.inf]), max_step=2.0, max_iter=2)
    np.testing.assert_allclose([float(p[0]) for p in points], [0.0, 1.0, 3.0], rtol=1e-15, atol=0)
