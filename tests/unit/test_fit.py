"""Unit tests for pkpd.fit and its companions (issue 4): public API only, one behaviour per test.

Estimates are compared with independent fits written here directly with scipy (least squares, or the -2
log-likelihood minimised by scipy.optimize.minimize), never with pkpd's own numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import optimize, stats  # noqa: E402

import pkpd  # noqa: E402
from pkpd.errors import DataError, FitError  # noqa: E402
from pkpd.nonmem import read_nonmem  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
THEOPH = pd.read_csv(DATA / "theoph.csv").assign(AMTU="mg")  # AMT in mg, stated by an AMTU column
ORAL = pkpd.load_model("pk_1cmt_oral")
IV = pkpd.load_model("pk_1cmt_iv")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _oral_conc(t, dose, ka, cl, v):
    """Closed-form one-compartment oral concentration (Bateman function) [mg/L]."""
    ke = cl / v
    return dose * ka / (v * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))


def _subject(sid: int) -> pd.DataFrame:
    return THEOPH[THEOPH.ID == sid]


def _iv_data(conc_factor=(1.02, 0.97, 1.01, 0.99, 1.03, 0.98), times=(1.0, 2, 4, 8, 12, 24), cl=2.8, v=32.0,
             sid=1, **extra):
    t = np.asarray(times, dtype=float)
    conc = 100 / v * np.exp(-cl / v * t) * np.asarray(conc_factor)
    rows = [dict(ID=sid, TIME=0.0, EVID=1, AMT=100.0, AMTU="mg", DV=np.nan, **extra)]
    rows += [dict(ID=sid, TIME=ti, EVID=0, AMT=0.0, DV=c, **extra) for ti, c in zip(t, conc)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def theoph_1():
    """Theophylline subject 1, additive error (a frozen result: module scope only saves time)."""
    return pkpd.fit(ORAL, _subject(1), estimate=["ka", "CL", "V"], error={"conc": pkpd.Additive(sd=1.0)})


# ---------------------------------------------------------------------------------------------------- estimates
def test_single_theophylline_subject_matches_an_independent_scipy_least_squares_fit(theoph_1):
    sub = _subject(1)
    obs = sub[sub.EVID == 0]
    t, y = obs.TIME.to_numpy(float), obs.DV.to_numpy(float)
    dose = float(sub.AMT.iloc[0])
    ref = optimize.least_squares(lambda p: _oral_conc(t, dose, *np.exp(p)) - y, np.log([1.0, 2.0, 30.0]),
                                 xtol=1e-15, ftol=1e-15, gtol=1e-15)
    ka, cl, v = np.exp(ref.x)
    # additive normal error: the maximum-likelihood structural estimates are the least-squares ones, and the
    # ML estimate of the SD is sqrt(RSS / n)
    sd = np.sqrt(np.sum(ref.fun**2) / y.size)
    for name, expected in (("ka", ka), ("CL", cl), ("V", v), ("conc.sd", sd)):
        assert theoph_1.estimates[name] == pytest.approx(expected, rel=5e-5), name
    # and the objective is the normal -2 log-likelihood, constants included
    assert theoph_1.objective == pytest.approx(-2 * np.sum(stats.norm.logpdf(y, y - ref.fun, sd)), rel=1e-7)


def test_pooled_proportional_fit_matches_an_independent_maximum_likelihood_fit():
    obs = THEOPH[(THEOPH.EVID == 0) & (THEOPH.TIME > 0)]
    data = THEOPH[(THEOPH.EVID == 1) | (THEOPH.TIME > 0)]
    dose = THEOPH[THEOPH.EVID == 1].set_index("ID")["AMT"]
    t, y, d = obs.TIME.to_numpy(float), obs.DV.to_numpy(float), dose.loc[obs.ID].to_numpy(float)

    def m2ll(p):
        ka, cl, v, cv = np.exp(p)
        f = _oral_conc(t, d, ka, cl, v)
        return -2 * np.sum(stats.norm.logpdf(y, f, cv * f))

    ref = optimize.minimize(m2ll, np.log([1.5, 2.8, 32, 0.2]), method="Nelder-Mead",
                            options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000, maxfev=40000))
    res = pkpd.fit(ORAL, data, estimate=["ka", "CL", "V"], error={"conc": pkpd.Proportional(cv=0.3)})
    assert res.objective == pytest.approx(ref.fun, rel=1e-7)
    for name, expected in zip(("ka", "CL", "V", "conc.cv"), np.exp(ref.x)):
        assert res.estimates[name] == pytest.approx(expected, rel=1e-4), name


def test_the_m3_objective_is_the_censored_normal_likelihood():
    # subject 1 with an LLOQ of 4 mg/L: the records below it are censored
    sub = _subject(1).copy()
    sub["LLOQ"] = np.where(sub.EVID == 0, 4.0, np.nan)
    res = pkpd.fit(ORAL, sub, estimate=["ka", "CL", "V"], error={"conc": pkpd.Additive(sd=1.0)}, blq="M3")
    obs = sub[sub.EVID == 0]
    t, y = obs.TIME.to_numpy(float), obs.DV.to_numpy(float)
    e = res.estimates
    f = _oral_conc(t, float(sub.AMT.iloc[0]), e["ka"], e["CL"], e["V"])
    cens = y < 4.0
    expected = -2 * (np.sum(stats.norm.logpdf(y[~cens], f[~cens], e["conc.sd"]))
                     + np.sum(stats.norm.logcdf(4.0, f[cens], e["conc.sd"])))
    assert res.n_censored == int(cens.sum()) > 0
    assert res.objective == pytest.approx(expected, rel=1e-7)  # ODE solution vs closed form (rtol 1e-8)


def test_the_m4_objective_conditions_on_positive_values():
    sub = _subject(1).copy()
    sub["LLOQ"] = np.where(sub.EVID == 0, 4.0, np.nan)
    sub = sub[(sub.EVID == 1) | (sub.TIME > 0)]
    res = pkpd.fit(ORAL, sub, estimate=["ka", "CL", "V"], error={"conc": pkpd.Proportional(cv=0.2)}, blq="M4")
    assert res.converged
    obs = sub[sub.EVID == 0]
    t, y = obs.TIME.to_numpy(float), obs.DV.to_numpy(float)
    e = res.estimates
    f = _oral_conc(t, float(sub.AMT.iloc[0]), e["ka"], e["CL"], e["V"])
    sd = e["conc.cv"] * f
    cens = y < 4.0
    positive = stats.norm.logsf(0.0, f, sd)
    ll = np.where(cens, np.log(stats.norm.cdf(4.0, f, sd) - stats.norm.cdf(0.0, f, sd)),
                  stats.norm.logpdf(y, f, sd)) - positive
    assert res.objective == pytest.approx(-2 * ll.sum(), rel=1e-7)


def test_the_lognormal_m3_objective_includes_the_jacobian():
    sub = _subject(1).copy()
    sub["LLOQ"] = np.where(sub.EVID == 0, 4.0, np.nan)
    sub = sub[(sub.EVID == 1) | (sub.TIME > 0)]
    res = pkpd.fit(ORAL, sub, estimate=["ka", "CL", "V"], error={"conc": pkpd.LogNormal(sigma=0.2)})
    obs = sub[sub.EVID == 0]
    t, y = obs.TIME.to_numpy(float), obs.DV.to_numpy(float)
    e = res.estimates
    f = _oral_conc(t, float(sub.AMT.iloc[0]), e["ka"], e["CL"], e["V"])
    cens = y < 4.0
    ll = np.where(cens, stats.lognorm.logcdf(4.0, s=e["conc.sigma"], scale=f),
                  stats.lognorm.logpdf(y, s=e["conc.sigma"], scale=f))
    assert res.objective == pytest.approx(-2 * ll.sum(), rel=1e-7)


def test_m1_drops_the_censored_records():
    sub = _subject(1).copy()
    sub["LLOQ"] = np.where(sub.EVID == 0, 4.0, np.nan)
    res = pkpd.fit(ORAL, sub, estimate=["ka", "CL", "V"], error={"conc": pkpd.Additive(sd=1.0)}, blq="M1")
    assert res.n_dropped == 3 and res.n_obs == 8 and res.n_censored == 0


def test_sensitivity_gradients_give_the_same_fit_as_finite_differences():
    # an IV dose, then an oral dose: F is identifiable, and estimating it exercises the jumps of the
    # sensitivity states at the doses
    times = np.array([0.5, 1, 2, 4, 8, 12, 24, 24.5, 25, 26, 28, 32, 36, 48])
    truth = dict(ka=1.2, CL=2.5, V=30.0, F=0.7)
    reg = pkpd.Regimen([pkpd.Bolus(0, pkpd.Dose(300, "mg"), "iv"), pkpd.Bolus(24, pkpd.Dose(300, "mg"), "oral")])
    sim = pkpd.simulate(ORAL, reg, times, params=truth)
    y = pkpd.Proportional(cv=0.1).sample(sim.outputs["conc"][0], np.random.default_rng(3))
    rows = [dict(ID=1, TIME=0, EVID=1, AMT=300, CMT="iv", DV="."), dict(ID=1, TIME=24, EVID=1, AMT=300,
                                                                         CMT="oral", DV=".")]
    rows += [dict(ID=1, TIME=t, EVID=0, AMT=0, CMT=".", DV=v) for t, v in zip(times, y)]
    data = pd.DataFrame(rows).sort_values(["TIME", "EVID"], ascending=[True, False], kind="stable").assign(AMTU="mg")
    kw = dict(estimate=["ka", "CL", "V", "F"], error={"conc": pkpd.Proportional(cv=0.2)})
    model = ORAL.with_parameters(F=0.9)
    fd = pkpd.fit(model, data, **kw)
    sens = pkpd.fit(model, data, gradient="sensitivity", **kw)
    assert sens.gradient == "sensitivity" and fd.gradient == "finite-difference"
    for name in fd.names:
        assert sens.estimates[name] == pytest.approx(fd.estimates[name], rel=1e-5), name
        assert sens.se[name] == pytest.approx(fd.se[name], rel=1e-3), name


@pytest.mark.parametrize("method", ["nelder", "lbfgsb", "powell"])
def test_other_lmfit_methods_reach_the_same_optimum(theoph_1, method):
    res = pkpd.fit(ORAL, _subject(1), estimate=["ka", "CL", "V"], error={"conc": pkpd.Additive(sd=1.0)},
                   method=method)
    assert res.objective == pytest.approx(theoph_1.objective, abs=1e-4)
    for name in ("ka", "CL", "V"):
        assert res.estimates[name] == pytest.approx(theoph_1.estimates[name], rel=2e-3), name


def test_multistart_is_reproducible_and_never_worse_than_one_start(theoph_1):
    kw = dict(estimate=["ka", "CL", "V"], error={"conc": pkpd.Additive(sd=1.0)}, n_starts=4, seed=11)
    a = pkpd.fit(ORAL, _subject(1), **kw)
    b = pkpd.fit(ORAL, _subject(1), **kw)
    assert len(a.starts) == 4
    assert [s[0] for s in a.starts] == [s[0] for s in b.starts]
    assert a.objective <= theoph_1.objective + 1e-6


# ---------------------------------------------------------------------------------------------------- uncertainty
def test_standard_errors_agree_with_the_least_squares_covariance(theoph_1):
    # for additive normal error the observed information of the structural parameters is close to J'J / sd^2
    sub = _subject(1)
    obs = sub[sub.EVID == 0]
    t, dose = obs.TIME.to_numpy(float), float(sub.AMT.iloc[0])
    e = theoph_1.estimates
    p = np.log([e["ka"], e["CL"], e["V"]])
    J = np.column_stack([(_oral_conc(t, dose, *np.exp(p + h)) - _oral_conc(t, dose, *np.exp(p - h))) / 2e-6
                         for h in np.eye(3) * 1e-6])
    cov = np.linalg.inv(J.T @ J) * e["conc.sd"] ** 2
    se_log = np.sqrt(np.diag(cov))
    for k, name in enumerate(("ka", "CL", "V")):
        assert theoph_1.se[name] / e[name] == pytest.approx(se_log[k], rel=0.15), name


def test_confidence_intervals_are_on_the_natural_scale_and_contain_the_estimate(theoph_1):
    for name in theoph_1.names:
        lo, est, hi = theoph_1.ci_low[name], theoph_1.estimates[name], theoph_1.ci_high[name]
        assert 0 < lo < est < hi
        # log-scale parameter: the interval is symmetric in log(value)
        assert np.log(hi / est) == pytest.approx(np.log(est / lo), rel=1e-9)
    corr = theoph_1.correlation
    np.testing.assert_allclose(np.diag(corr), 1.0)
    np.testing.assert_allclose(corr, corr.T)


def test_profile_likelihood_interval_is_close_to_the_wald_interval_for_a_well_determined_parameter(theoph_1):
    prof = pkpd.profile_likelihood(theoph_1, "V")
    assert prof.identifiable
    assert prof.ci_low < theoph_1.estimates["V"] < prof.ci_high
    assert prof.ci_low == pytest.approx(theoph_1.ci_low["V"], rel=0.05)
    assert prof.ci_high == pytest.approx(theoph_1.ci_high["V"], rel=0.05)
    assert np.min(prof.delta) >= -1e-6


def test_bootstrap_is_reproducible_with_a_seed(theoph_1):
    a = pkpd.bootstrap(theoph_1, 8, seed=5)
    b = pkpd.bootstrap(theoph_1, 8, seed=5)
    assert a.samples.shape == (8 - a.n_failed, 4)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert list(a.to_dataframe().columns) == ["name", "estimate", "median", "se", "ci_low", "ci_high"]


def test_likelihood_ratio_test_of_nested_error_models():
    data = THEOPH[(THEOPH.EVID == 1) | (THEOPH.TIME > 0)]
    est = ["ka", "CL", "V"]
    reduced = pkpd.fit(ORAL, data, estimate=est, error={"conc": pkpd.Proportional(cv=0.3)})
    full = pkpd.fit(ORAL, data, estimate=est, error={"conc": pkpd.Combined(sd=0.3, cv=0.2, convention="variance")})
    lrt = pkpd.likelihood_ratio_test(reduced, full)
    assert lrt.df == 1
    assert lrt.statistic == pytest.approx(reduced.objective - full.objective)
    assert lrt.p_value == pytest.approx(stats.chi2.sf(lrt.statistic, 1))
    with pytest.raises(FitError, match="more parameters"):
        pkpd.likelihood_ratio_test(full, reduced)


def test_aic_and_bic_follow_from_the_objective(theoph_1):
    k, n = theoph_1.n_parameters, theoph_1.n_obs
    assert theoph_1.aic == pytest.approx(theoph_1.objective + 2 * k)
    assert theoph_1.bic == pytest.approx(theoph_1.objective + k * np.log(n))


# ---------------------------------------------------------------------------------------------------- identifiability
def test_secretion_and_ec50_are_flagged_when_only_il10_is_observed():
    # one dose level, IL-10 only: the response depends on PGE2 secretion relative to EC50, so s_p and EC50
    # cannot be told apart (the classic MSC data problem)
    m = pkpd.load_model("msc_salvadori")
    times = np.array([2, 8, 24, 48, 72, 120, 168, 240.0])
    sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), times, covariates={"WT": 70})
    rng = np.random.default_rng(3)
    rows = [dict(ID=1, TIME=0, EVID=1, AMT=2e6, DV=np.nan, WT=70)]
    for _ in range(3):
        y = pkpd.Proportional(cv=0.1).sample(sim.outputs["IL10"][0], rng)
        rows += [dict(ID=1, TIME=t, EVID=0, AMT=0, DV=v, WT=70) for t, v in zip(times, y)]
    data = pd.DataFrame(rows).sort_values(["TIME", "EVID"], ascending=[True, False], kind="stable")
    res = pkpd.fit(m, read_nonmem(data, m, dose_unit="cell/kg"), estimate=["s_p", "EC50"],
                   error={"IL10": pkpd.Proportional(cv=0.1)})
    report = pkpd.identifiability(res)
    assert set(report.not_identifiable) == {"s_p", "EC50"}
    assert "IL10.cv" not in report.not_identifiable + report.poorly_identified
    assert abs(res.correlation[0, 1]) > 0.99
    assert report.condition_number > 1e3


def test_a_well_designed_fit_is_reported_identifiable(theoph_1):
    report = pkpd.identifiability(theoph_1)
    assert report.not_identifiable == () and report.poorly_identified == ()
    assert list(report.to_dataframe().columns) == ["name", "status", "rse_percent", "max_correlation", "partner",
                                                   "reasons"]


def test_a_parameter_the_data_do_not_touch_has_no_standard_error():
    # F of the oral route with IV data only: the likelihood does not depend on it at all
    data = _iv_data(sid=1)
    data["CMT"] = np.where(data.EVID == 1, "iv", ".")
    res = pkpd.fit(ORAL, data, estimate=["CL", "V", "F"], error={"conc": pkpd.Proportional(cv=0.1)})
    assert np.isnan(res.se["F"])
    assert "F" in res.message
    assert "F" in pkpd.identifiability(res).not_identifiable


# ---------------------------------------------------------------------------------------------------- robustness
def test_solver_failures_inside_the_objective_are_penalised_and_counted():
    # dA/dt = -k A + g A^2 blows up in finite time when g > k: random starts in that region fail to solve
    m = pkpd.Model(
        name="blowup", time_unit="h",
        parameters=(pkpd.Parameter("k", 0.5, "1/h", (0.01, 5.0)), pkpd.Parameter("g", 0.05, "1/mg/h", (0.001, 20.0))),
        states=(pkpd.State("A", "mg", initial="1", ddt="-k * A + g * A * A"),),
        outputs=(pkpd.Output("amount", "A", "mg"),))
    times = np.linspace(1, 10, 10)
    sim = pkpd.simulate(m, None, times)
    data = pd.DataFrame({"ID": 1, "TIME": times, "EVID": 0, "AMT": 0.0,
                         "DV": sim.outputs["amount"][0] * np.linspace(0.97, 1.03, 10)})
    res = pkpd.fit(m, data, estimate=["k", "g"], error={"amount": pkpd.Proportional(cv=0.05)}, n_starts=6, seed=2,
                   settings=pkpd.SolverSettings(max_steps=5000))
    assert res.n_solver_failures > 0
    assert res.converged
    assert res.estimates["k"] == pytest.approx(0.5, rel=0.1)
    assert "solver failed" in res.message


def test_per_subject_fits_report_failures_without_losing_the_others():
    data = THEOPH[(THEOPH.EVID == 1) | (THEOPH.TIME > 0)].copy()
    data["LLOQ"] = np.where(data.EVID == 0, 0.1, np.nan)
    data.loc[(data.ID == 3) & (data.EVID == 0), "LLOQ"] = 100.0  # every observation of subject 3 below its LLOQ
    fits = pkpd.fit(ORAL, data, estimate=["ka", "CL", "V"], error={"conc": pkpd.Proportional(cv=0.2)},
                    per_subject=True)
    assert set(fits.failures) == {3}
    assert "no quantified observations" in fits.failures[3]
    assert len(fits.results) == 11 and all(r.converged for r in fits.results.values())
    table = fits.to_dataframe()
    assert set(table.ID) == set(fits.results) and "converged" in table
    assert "1 failed" in repr(fits)


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(estimate=["CLL"]), FitError, "unknown parameter 'CLL'.*Did you mean 'CL'"),
    (dict(error={"Conc": pkpd.Additive(sd=1.0)}), FitError, "unknown output 'Conc'.*Did you mean 'conc'"),
    (dict(error={"conc": "proportional"}), FitError, "expected an error model"),
    (dict(blq="M2"), FitError, "blq: must be 'M1'"),
    (dict(method="newtons"), FitError, "unknown optimiser"),
    (dict(n_starts=0), FitError, "n_starts"),
    (dict(estimate=[]), FitError, "nothing to estimate"),
], ids=["parameter", "output", "error-string", "blq", "method", "n_starts", "nothing"])
def test_bad_arguments_are_named(kwargs, error, message):
    args = dict(estimate=["CL"], error={"conc": pkpd.Additive(sd=1.0, fixed=True)})
    args.update(kwargs)
    with pytest.raises(error, match=message):
        pkpd.fit(ORAL, _subject(1), **args)


def test_proportional_error_with_a_zero_prediction_is_refused():
    # theophylline has observations at t = 0, where the oral model predicts 0: the SD would be 0
    with pytest.raises(FitError, match=r"cannot be evaluated at subject 1, t = 0 h.*prediction is 0.*Combined"):
        pkpd.fit(ORAL, _subject(1), estimate=["ka"], error={"conc": pkpd.Proportional(cv=0.2)})


def test_an_error_model_for_an_output_without_data_is_refused():
    m = pkpd.load_model("msc_salvadori")
    data = pd.DataFrame({"ID": 1, "TIME": [0, 1, 2], "EVID": [1, 0, 0], "AMT": [1e8, 0, 0], "DV": [np.nan, 5.0, 6.0],
                         "DVID": [".", "IL10", "IL10"], "AMTU": "cell"})
    with pytest.raises(FitError, match="no observations of output 'PGE2'"):
        pkpd.fit(m, data, estimate=["k_c"], error={"IL10": pkpd.Additive(sd=1.0), "PGE2": pkpd.Additive(sd=1.0)})


def test_observations_of_an_output_without_an_error_model_are_refused():
    m = pkpd.load_model("msc_salvadori")
    data = pd.DataFrame({"ID": 1, "TIME": [0, 1, 2], "EVID": [1, 0, 0], "AMT": [1e8, 0, 0], "DV": [np.nan, 5.0, 6.0],
                         "DVID": [".", "IL10", "PGE2"], "AMTU": "cell"})
    with pytest.raises(FitError, match="1 of 'PGE2'.*add them to error"):
        pkpd.fit(m, data, estimate=["k_c"], error={"IL10": pkpd.Additive(sd=1.0)})


def test_all_observations_below_the_lloq_are_refused():
    data = _iv_data()
    data["LLOQ"] = np.where(data.EVID == 0, 1e3, np.nan)
    with pytest.raises(FitError, match="all 6 observations of 'conc' are below the limit"):
        pkpd.fit(IV, data, estimate=["CL"], error={"conc": pkpd.Additive(sd=1.0)})


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_non_finite_dv_is_refused_with_its_row(bad):
    data = _iv_data()
    data.loc[3, "DV"] = bad
    with pytest.raises(DataError, match="row 4.*DV"):
        pkpd.fit(IV, data, estimate=["CL"], error={"conc": pkpd.Additive(sd=1.0)})


def test_lognormal_error_needs_positive_observations():
    data = _iv_data()
    data.loc[2, "DV"] = 0.0
    with pytest.raises(DataError, match="log-normal.*> 0"):
        pkpd.fit(IV, data, estimate=["CL"], error={"conc": pkpd.LogNormal(sigma=0.2)})


def test_several_outputs_need_a_dvid_column():
    m = pkpd.load_model("msc_salvadori")
    data = pd.DataFrame({"ID": 1, "TIME": [0, 1], "EVID": [1, 0], "AMT": [1e8, 0], "DV": [np.nan, 5.0],
                         "AMTU": "cell"})
    with pytest.raises(FitError, match="no DVID column"):
        pkpd.fit(m, data, estimate=["k_c"], error={"IL10": pkpd.Additive(sd=1.0), "PGE2": pkpd.Additive(sd=1.0)})


def test_per_kg_doses_without_weights_are_refused():
    m = pkpd.load_model("msc_salvadori")
    data = pd.DataFrame({"ID": 1, "TIME": [0, 1], "EVID": [1, 0], "AMT": [2e6, 0], "DV": [np.nan, 5.0],
                         "DVID": [".", "IL10"]})
    with pytest.raises(DataError, match=r"^row 1, column AMT: AMT is per kg \('cell/kg'\), but the data have no WT "):
        pkpd.fit(m, read_nonmem(data, m, dose_unit="cell/kg"), estimate=["k_c"],
                 error={"IL10": pkpd.Additive(sd=1.0)})




def _piecewise_conc(t, dose, tvcl, beta, v, wt_before, wt_after, t_change):
    """Analytic one-compartment concentration when the weight changes at t_change (clearance switches there)."""
    k1 = tvcl * (wt_before / 70) ** beta / v
    k2 = tvcl * (wt_after / 70) ** beta / v
    c_change = dose / v * np.exp(-k1 * t_change)
    return np.where(t <= t_change, dose / v * np.exp(-k1 * t), c_change * np.exp(-k2 * (t - t_change)))


def test_time_varying_covariates_are_fitted_next_observation_carried_backward():
    """A weight that changes at the 12-h record (NOCB: the new value applies after that record) switches the
    clearance there: fit() at the true values reproduces the analytic piecewise solution, and recovers BETA."""
    model = pkpd.load_model(DATA / "models" / "iv_allometric.toml")
    times = np.array([1.0, 4, 8, 12, 16, 24, 36, 48])
    rows = []
    for i, (w0, w1) in enumerate([(60.0, 100.0), (90.0, 50.0), (70.0, 120.0)]):
        conc = _piecewise_conc(times, 100.0, 3.0, 0.75, 30.0, w0, w1, 12.0)
        rows.append(dict(ID=i + 1, TIME=0.0, EVID=1, AMT=100.0, AMTU="mg", DV=np.nan, WT=w0))
        # NOCB: the record at 12 h still carries the old weight; the one at 16 h the new weight
        rows += [dict(ID=i + 1, TIME=t, EVID=0, AMT=0.0, DV=c, WT=w0 if t <= 12 else w1) for t, c in zip(times, conc)]
    data = pd.DataFrame(rows)
    exact = pkpd.fit(model, data, estimate=["TVCL"], error={"conc": pkpd.Proportional(cv=0.1)},
                     settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    assert exact.estimates["TVCL"] == pytest.approx(3.0, rel=1e-6)
    table = exact.diagnostics()
    np.testing.assert_allclose(table["PRED"].to_numpy(), table["DV"].to_numpy(), rtol=1e-6)
    # the engine's NONMEM runner (an independent event path) agrees on the same records
    from pkpd.nonmem import simulate_nonmem

    sim = simulate_nonmem(model, read_nonmem(data, model), settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    obs = sim[sim["EVID"] == 0]
    np.testing.assert_allclose(obs["conc"].to_numpy(), data.loc[data.EVID == 0, "DV"].to_numpy(), rtol=1e-6)
    # with noise-free data, the exponent is recovered from the within-subject change of weight
    start = model.with_parameters(BETA=0.2, TVCL=2.0)
    fit = pkpd.fit(start, data, estimate=["TVCL", "BETA"], error={"conc": pkpd.Proportional(cv=0.1)})
    assert fit.estimates["BETA"] == pytest.approx(0.75, rel=1e-4)
    assert fit.estimates["TVCL"] == pytest.approx(3.0, rel=1e-4)


# ---------------------------------------------------------------------------------------------------- results
def test_parameter_table_exports(theoph_1, tmp_path):
    table = theoph_1.to_dataframe()
    assert list(table.columns) == ["name", "estimate", "unit", "se", "rse_percent", "ci_low", "ci_high"]
    assert table.name.tolist() == ["ka", "CL", "V", "conc.sd"]
    assert table.unit.tolist() == ["1/h", "L/h", "L", "mg/L"]
    theoph_1.to_csv(tmp_path / "p.csv")
    back = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(back.estimate, table.estimate, rtol=1e-9)


def test_repr_and_html_show_the_table_and_the_status(theoph_1):
    text = repr(theoph_1)
    assert text.startswith("FitResult of 'pk_1cmt_oral': converged")
    assert "RSE %" in text and "95 % CI" in text
    page = theoph_1._repr_html_()
    assert "<table>" in page and "converged" in page


def test_diagnostics_table(theoph_1):
    d = theoph_1.diagnostics()
    assert list(d.columns) == ["ID", "TIME", "output", "DV", "LLOQ", "BLQ", "PRED", "IPRED", "RES", "WRES"]
    assert len(d) == 11
    np.testing.assert_allclose(d.WRES, (d.DV - d.PRED) / theoph_1.estimates["conc.sd"])


def test_predict_gives_a_band_around_the_fit(theoph_1):
    p = theoph_1.predict(np.linspace(0, 24, 25), n_samples=100, seed=1)
    assert list(p.columns) == ["ID", "TIME", "output", "PRED", "lower", "upper"]
    inside = (p.lower <= p.PRED + 1e-12) & (p.PRED <= p.upper + 1e-12)
    assert inside[p.TIME > 0].all()


def test_diagnostic_plots_have_units_and_show_blq_distinctly():
    from pkpd.plots import plot_individual_fits, plot_observed_vs_predicted, plot_profile, plot_residuals

    sub = _subject(1).copy()
    sub["LLOQ"] = np.where(sub.EVID == 0, 4.0, np.nan)
    res = pkpd.fit(ORAL, sub, estimate=["ka", "CL", "V"], error={"conc": pkpd.Additive(sd=1.0)})
    fig = plot_observed_vs_predicted(res)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend, outside the panels
    assert labels == ["observed", "below LLOQ (at LLOQ)", "identity"]
    fig = plot_residuals(res)
    assert fig.axes[0].get_ylabel() == "conc, weighted residual"  # dimensionless: no "[1]"
    fig = plot_individual_fits(res, n_samples=30)
    assert fig.axes[0].get_ylabel() == "conc [mg/L]"
    assert any("band" in t.get_text() for t in fig.legends[0].get_texts())
    fig = plot_profile([pkpd.profile_likelihood(res, "CL")])
    assert fig.axes[0].get_xlabel() == "CL [L/h]"


# ---------------------------------------------------------------------------------------------------- command line
def test_cli_fit_writes_the_parameter_table_summary_and_plots(tmp_path, capsys):
    from pkpd.cli import main

    data = tmp_path / "theoph.csv"
    THEOPH[(THEOPH.EVID == 1) | (THEOPH.TIME > 0)].to_csv(data, index=False)
    out = tmp_path / "fit"
    code = main(["fit", "pk_1cmt_oral", str(data), "--estimate", "ka,CL,V", "--error", "conc=proportional",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out / "parameters.csv")
    assert list(table.columns) == ["name", "estimate", "unit", "se", "rse_percent", "ci_low", "ci_high"]
    summary = json.loads((out / "summary.json").read_text())
    assert {"objective", "AIC", "BIC", "n_obs", "converged"} <= set(summary)
    assert summary["n_obs"] == 120 and summary["converged"] is True
    for name in ("observed_vs_predicted.png", "residuals.png", "individual_fits.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("error, message", [
    ("conc=combined", "Name the convention: combined-variance"),
    ("conc=exponential", "'lognormal' here"),
    ("conc", "write OUTPUT=MODEL"),
    ("Conc=additive", "unknown output 'Conc'"),
])
def test_cli_fit_explains_a_bad_error_option(tmp_path, capsys, error, message):
    from pkpd.cli import main

    data = tmp_path / "theoph.csv"
    THEOPH.to_csv(data, index=False)
    code = main(["fit", "pk_1cmt_oral", str(data), "--estimate", "ka", "--error", error, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
