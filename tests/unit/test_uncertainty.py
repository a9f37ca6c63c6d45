"""Parameter uncertainty in scenarios and population simulations, and fits saved as JSON (issue 18)."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError, PkpdError
from pkpd.fit_files import load_fit, save_fit
from pkpd.metrics import Endpoint
from pkpd.nonmem import read_nonmem
from pkpd.uncertainty import ParameterUncertainty, as_uncertainty

DATA = Path(__file__).resolve().parents[1] / "data"
IV = pkpd.load_model("pk_1cmt_iv")


def _iv_data():
    t = np.array([0.5, 1.0, 2, 4, 8, 12, 24])
    rng = np.random.default_rng(2)
    rows = []
    for sid in (1, 2):
        conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.exp(0.08 * rng.standard_normal(t.size))
        rows += [{"ID": sid, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan}]
        rows += [{"ID": sid, "TIME": x, "EVID": 0, "AMT": 0.0, "DV": c} for x, c in zip(t, conc)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def iv_fit():
    return pkpd.fit(IV, _iv_data(), estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.1)})


@pytest.fixture(scope="module")
def theoph_fit():
    theoph = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
    return pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"CL": 0.1, "ka": 0.3},
                               estimate=["ka", "CL", "V"], error=pkpd.Additive(sd=0.7), method="fo")


def _scenario(n=40, **kw):
    return pkpd.Scenario(IV, arms=pkpd.dose_ranging_arms("d", [50, 200], "mg"),  # 2 levels: no Emax fits
                         endpoints=[Endpoint("conc", "cmax", end=24), Endpoint("conc", "auc", end=24)],
                         targets=[pkpd.Target("conc_Cmax_to_24", ">=", 3.0)],
                         population=pkpd.LogNormalPopulation(n, omega={"CL": 0.3, "V": 0.2}),
                         times=np.linspace(0, 24, 25), seed=5, **kw)


# ------------------------------------------------------------------------------------------- zero uncertainty
def test_zero_covariance_reproduces_the_run_without_uncertainty_bit_for_bit(iv_fit):
    zero = dataclasses.replace(iv_fit, covariance=np.zeros_like(iv_fit.covariance))
    sc = _scenario()
    res = pkpd.run_scenario(sc, uncertainty=zero, n_trials=3)
    at_estimates = dataclasses.replace(sc, params={"CL": iv_fit.estimates["CL"], "V": iv_fit.estimates["V"]})
    today = pkpd.run_scenario(at_estimates)
    assert res.table.equals(today.table) and res.attainment.equals(today.attainment)
    for k, seed in enumerate(res.trials.seeds):
        trial = pkpd.run_scenario(at_estimates, seed=seed)
        mine = res.trials.attainment[res.trials.attainment["trial"] == k + 1]["probability"].to_numpy()
        assert np.array_equal(mine, trial.attainment["probability"].to_numpy())
        medians = res.trials.summary[res.trials.summary["trial"] == k + 1]["median"].to_numpy()
        assert np.array_equal(medians, trial.summary["median"].to_numpy())
    # every trial on the same virtual subjects: all equal to the nominal run
    same = pkpd.run_scenario(sc, uncertainty=zero, n_trials=3, same_population=True)
    pta = same.trials.pta
    assert (pta["pta_low"] == pta["pta_high"]).all()
    assert np.array_equal(pta["pta_median"].to_numpy(), today.attainment["probability"].to_numpy())


def test_zero_covariance_population_and_summary_runs_are_today_bit_for_bit(iv_fit):
    zero = dataclasses.replace(iv_fit, covariance=np.zeros_like(iv_fit.covariance))
    est = {k: iv_fit.estimates[k] for k in ("CL", "V")}
    reg = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    pop = pkpd.virtual_population(30, {"WT": pkpd.Normal(70, 10)}, seed=1)
    times = np.linspace(0, 24, 13)
    res = pkpd.simulate_population(IV, reg, times, pop, iiv=pkpd.IIV({"CL": 0.09}), uncertainty=zero, n_trials=2,
                                   seed=4)
    for k, seed in enumerate(res.trials.seeds):
        today = pkpd.simulate_population(IV.with_parameters(**est), reg, times, pop, iiv=pkpd.IIV({"CL": 0.09}),
                                         seed=seed)
        assert np.array_equal(res.trials.bands["conc"][k], today.bands["conc"])
    summ = pkpd.simulate_summary(IV, reg, times, covariates={"WT": np.full(20, 70.0)}, metrics=[pkpd.AUC("conc")],
                                 uncertainty=zero, n_trials=2, seed=1)
    today = pkpd.simulate_summary(IV.with_parameters(**est), reg, times, covariates={"WT": np.full(20, 70.0)},
                                  metrics=[pkpd.AUC("conc")], progress=False)
    assert np.array_equal(summ.percentiles, today.percentiles)
    assert np.array_equal(summ.trials.percentiles[1], today.percentiles)


# ------------------------------------------------------------------------------------------- against the truth
def test_per_trial_pta_matches_its_analytic_distribution():
    # Cmax of an IV bolus is D / V_i, V_i = V_k exp(0.3 z), log V_k ~ N(log 32, 0.2^2): a trial's PTA of
    # "Cmax >= D / 32" is p_k = Phi(-delta_k / 0.3) (plus binomial noise of n subjects)
    from scipy.stats import ks_2samp, norm

    omega, s, n = 0.3, 0.2, 200
    sc = pkpd.Scenario(IV, arms=[pkpd.Arm("100 mg", pkpd.Dose(100, "mg"))],
                       endpoints=[Endpoint("conc", "cmax", end=24)], targets=[pkpd.Target("conc_Cmax_to_24", ">=",
                                                                                        100 / 32)],
                       population=pkpd.LogNormalPopulation(n, omega={"V": omega}), times=[0, 24], seed=11)
    u = ParameterUncertainty.from_covariance({"V": 32.0}, [[s * s]])
    pta = pkpd.run_scenario(sc, uncertainty=u, n_trials=80).trials.attainment["probability"].to_numpy()
    rng = np.random.default_rng(0)
    p = norm.cdf(-s * rng.standard_normal(20000) / omega)
    reference = rng.binomial(n, p) / n
    assert abs(pta.mean() - 0.5) < 3 * pta.std(ddof=1) / math.sqrt(pta.size)    # E[p_k] = Phi(0) = 0.5
    assert pta.std(ddof=1) == pytest.approx(reference.std(), rel=0.25)
    assert ks_2samp(pta, reference).pvalue > 0.01
    # without the parameter uncertainty the PTA interval is Monte-Carlo error only: much narrower
    fixed = pkpd.run_scenario(sc, uncertainty=ParameterUncertainty.from_covariance({"V": 32.0}, [[0.0]]),
                              n_trials=20).trials.pta
    assert (fixed["pta_high"] - fixed["pta_low"]).iloc[0] < 0.5 * (np.percentile(pta, 95) - np.percentile(pta, 5))


def test_trial_success_dose_response_bands_and_lowest_dose(iv_fit):
    res = pkpd.run_scenario(_scenario(), uncertainty=iv_fit, n_trials=20)
    pta = res.trials.pta
    assert list(pta.columns[:5]) == ["arm", "group", "dose", "dose_unit", "target"]
    assert (pta["pta_low"] <= pta["pta_median"]).all() and (pta["pta_median"] <= pta["pta_high"]).all()
    by_trial = res.trials.attainment.groupby("arm", sort=False)["probability"]
    np.testing.assert_allclose(pta["p_success"], by_trial.apply(lambda p: np.mean(p >= 0.8)).to_numpy())
    dr = res.trials.dose_response
    auc = dr[dr["endpoint"] == "conc_AUC_to_24"]
    assert (auc["low"] < auc["median"]).all() and auc["median"].is_monotonic_increasing
    low = res.trials.lowest_dose(0.8)
    assert low["dose"].iloc[0] in (50.0, 200.0)
    assert "trials under parameter uncertainty" in repr(res)


def test_population_fit_uncertainty_in_a_scenario_with_virtual_patients(theoph_fit):
    table = pkpd.virtual_population(25, {"WT": pkpd.Normal(70, 10)}, seed=2)
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_oral"), arms=pkpd.dose_ranging_arms("d", [160, 320], "mg"),
                       endpoints=[Endpoint("conc", "auc", end=24)],
                       targets=[pkpd.Target("conc_AUC_to_24", ">=", 100)], population=pkpd.VirtualPatients(table),
                       times=np.linspace(0, 24, 25), seed=3)
    res = pkpd.run_scenario(sc, uncertainty=theoph_fit, n_trials=4)
    theta = {k: theoph_fit.theta[k] for k in ("ka", "CL", "V")}
    today = pkpd.run_scenario(dataclasses.replace(sc, params=theta,
                                                  population=pkpd.VirtualPatients(table, iiv=theoph_fit.iiv)))
    assert res.table.equals(today.table)
    drawn = res.trials.parameters
    assert {"ka", "CL", "V", "omega2_CL", "omega2_ka", "sd"} <= set(drawn.columns)
    assert drawn["omega2_CL"].nunique() == 4 and res.trials.unused == ("sd",)
    with pytest.raises(PkpdError, match="random effect on 'CL'.*gives 'CL' its own variability"):
        dataclasses.replace(sc, population=pkpd.VirtualPatients(table, iiv=pkpd.IIV({"CL": 0.1})),
                            uncertainty=theoph_fit)
    with pytest.raises(PkpdError, match="parameter 'CL' is set in the scenario's parameters and estimated"):
        dataclasses.replace(sc, params={"CL": 3.0}, uncertainty=theoph_fit)


def test_inverse_wishart_omega_has_the_estimate_as_mean():
    iiv = pkpd.IIV({"CL": 0.09, "V": 0.04}, covariances={("CL", "V"): 0.02})
    u = ParameterUncertainty.from_covariance({"CL": 2.8, "omega2_CL": 0.09, "omega2_V": 0.04},
                                             np.zeros((3, 3)), iiv=iiv, omega="inverse-wishart", n_subjects=40)
    draws = u.sample(3000, np.random.default_rng(5))
    mean = np.mean([d.iiv.omega for d in draws], axis=0)
    np.testing.assert_allclose(mean, iiv.omega, rtol=0.06)
    assert all(d.theta == {"CL": 2.8} for d in draws[:5])


def test_bootstrap_and_posterior_draws_as_sources(iv_fit):
    boot = pkpd.bootstrap(iv_fit, 8, seed=1, workers=1, progress=False)
    u = as_uncertainty(boot)
    draws = u.sample(20, np.random.default_rng(0), IV)
    rows = {tuple(np.round(r[:2], 12)) for r in boot.samples}
    assert all((round(d.theta["CL"], 12), round(d.theta["V"], 12)) in rows for d in draws)
    post = as_uncertainty(pd.DataFrame({"CL": [2.5, 2.9, 3.3], "V": [30.0, 32.0, 34.0]}))
    assert post.estimate.tolist() == [2.9, 32.0]


# ------------------------------------------------------------------------------------------- bad input
def test_uncertainty_from_a_fit_whose_covariance_step_failed_is_a_clear_error(iv_fit, theoph_fit):
    failed = dataclasses.replace(iv_fit, covariance=np.full_like(iv_fit.covariance, np.nan))
    with pytest.raises(FitError, match="no covariance matrix .* use a bootstrap"):
        pkpd.run_scenario(_scenario(), uncertainty=failed, n_trials=2)
    no_cov = dataclasses.replace(theoph_fit, covariance=None, covariance_message="covariance step failed: ...")
    with pytest.raises(FitError, match="no covariance matrix \\(covariance step failed"):
        as_uncertainty(no_cov)
    with pytest.raises(PkpdError, match="n_trials must be an integer >= 1"):
        pkpd.run_scenario(_scenario(), uncertainty=iv_fit, n_trials=0)


def test_the_omega_choice_of_an_individual_fits_uncertainty_is_checked_not_ignored(iv_fit):
    """An individual fit has no Omega: omega="inverse-wishart" is refused (it needs a variability model), and a
    misspelt method is refused as for a population fit, instead of both being silently dropped."""
    with pytest.raises(PkpdError) as err:
        ParameterUncertainty.from_fit(iv_fit, omega="inverse-wishart")
    assert str(err.value) == "uncertainty: omega='inverse-wishart' needs a variability model (a population fit)"
    with pytest.raises(PkpdError) as err:
        as_uncertainty(iv_fit, omega="wishart")
    assert str(err.value).startswith("uncertainty: omega must be one of ('covariance', 'inverse-wishart'); got "
                                     "'wishart'.")
    assert ParameterUncertainty.from_fit(iv_fit).omega == "covariance"


# ------------------------------------------------------------------------------------------- fit files
def test_fits_round_trip_through_json(tmp_path, iv_fit, theoph_fit):
    back = load_fit(save_fit(theoph_fit, tmp_path / "pop.json"))
    assert back.theta == theoph_fit.theta and back.objective == theoph_fit.objective
    np.testing.assert_array_equal(back.covariance, theoph_fit.covariance)
    np.testing.assert_array_equal(back.iiv.omega, theoph_fit.iiv.omega)
    assert back.parameters.equals(theoph_fit.parameters) and back.error == theoph_fit.error
    one = pkpd.FitResult.load(iv_fit.save(tmp_path / "one.json"))
    assert one.estimates == iv_fit.estimates and one.model == iv_fit.model and one.error == iv_fit.error
    np.testing.assert_array_equal(one.covariance, iv_fit.covariance)
    with pytest.raises(FitError, match="loaded from a file, which holds the estimates"):
        one.predict()
    with pytest.raises(FitError, match="holds a PopulationFit, not a FitResult"):
        pkpd.FitResult.load(tmp_path / "pop.json")


def test_a_fit_file_is_validated_field_by_field_and_never_run(tmp_path, theoph_fit):
    path = save_fit(theoph_fit, tmp_path / "fit.json")
    doc = json.loads(path.read_text())
    sentinel = tmp_path / "SENTINEL"
    payload = f"__import__('os').system('touch {sentinel}')"

    def broken(**changes):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**doc, **changes}))
        return bad

    with pytest.raises(FitError, match="field 'model_name': must be a parameter or output name"):
        load_fit(broken(model_name=payload))
    with pytest.raises(FitError, match="field 'error.conc.kind': must be one of Additive"):
        load_fit(broken(error={"conc": {"kind": "os.system", "sd": 1.0}}))
    with pytest.raises(FitError, match="field 'covariance': must have shape \\(6, 6\\)"):
        load_fit(broken(covariance=[[1.0]]))
    with pytest.raises(FitError, match="field 'theta.V': must be a number"):
        load_fit(broken(theta={**doc["theta"], "V": payload}))
    with pytest.raises(FitError, match="not a pkpd fit file"):
        load_fit(broken(format="pickle"))
    with pytest.raises(FitError, match="upgrade pkpd"):
        load_fit(broken(version=99))
    missing = dict(doc)
    del missing["iiv"]
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    with pytest.raises(FitError, match="field 'iiv': is missing"):
        load_fit(tmp_path / "missing.json")
    assert not sentinel.exists()


def test_scenario_file_takes_uncertainty_from_a_saved_fit(tmp_path, iv_fit):
    iv_fit.save(tmp_path / "fit.json")
    (tmp_path / "s.toml").write_text("""
[scenario]
model = "pk_1cmt_iv"
seed = 3
times = {start = 0, stop = 24, step = 1}
[population]
n = 20
omega = {CL = 0.3}
[arms.d]
doses = [50, 100, 200]
unit = "mg"
[endpoints.cmax]
output = "conc"
metric = "cmax"
end = 24
[[targets]]
endpoint = "cmax"
op = ">="
value = 3
[uncertainty]
from = "fit.json"
n_trials = 6
success = 0.7
""")
    sc = pkpd.load_scenario(tmp_path / "s.toml")
    assert sc.n_trials == 6 and sc.trial_success == 0.7 and isinstance(sc.uncertainty, ParameterUncertainty)
    res = pkpd.run_scenario(sc)
    assert res.trials.n_trials == 6 and len(res.trials.pta) == 3
    (tmp_path / "s2.toml").write_text((tmp_path / "s.toml").read_text().replace("fit.json", "nofit.json"))
    with pytest.raises(PkpdError, match="s2.toml \\[uncertainty\\]: fit file .*nofit.json' not found"):
        pkpd.load_scenario(tmp_path / "s2.toml")
    # a file is data: it cannot ask for more simulated subject-arms than the limit, trials included
    (tmp_path / "s3.toml").write_text((tmp_path / "s.toml").read_text().replace("n_trials = 6", "n_trials = 200000"))
    with pytest.raises(PkpdError, match="s3.toml \\[uncertainty\\]: 200,000 trials x 60 subject-arms, more than"):
        pkpd.load_scenario(tmp_path / "s3.toml")


def test_fit_covariance_is_carried_to_the_log_scale_by_the_delta_method(iv_fit):
    u = as_uncertainty(iv_fit)
    assert u.scales == ("log", "log", "log")
    draws = u.sample(4000, np.random.default_rng(3), IV)
    for name in ("CL", "V"):
        logs = np.log([d.theta[name] for d in draws])
        assert np.std(logs) == pytest.approx(iv_fit.se[name] / iv_fit.estimates[name], rel=0.05)
        assert np.median(logs) == pytest.approx(math.log(iv_fit.estimates[name]), abs=0.01)
    assert "conc.cv" not in draws[0].theta


def test_trial_dose_response_keeps_a_median_time_not_reached_in_a_trial():
    """An arm's median time to event is inf in a trial where half its subjects do not reach it within the window:
    the between-trial median and interval order it beyond every finite value (numpy's linear rule on
    10, 12, 14, inf, inf: median 14, 5th percentile 10 + 0.2 x 2, 95th inf). The trials were dropped, which gave
    the median of the 3 others, 12."""
    from pkpd.uncertainty import TrialSummary

    summary = pd.DataFrame({"trial": range(5), "arm": "d: 10 mg", "endpoint": "tmed", "unit": "h",
                            "median": [10.0, 12.0, np.inf, 14.0, np.inf], "mean": np.nan})
    arms = pd.DataFrame({"arm": ["d: 10 mg"], "group": ["d"], "dose": [10.0], "unit": ["mg"]})
    trials = TrialSummary(n_trials=5, seeds=tuple(range(5)), trial_success=0.8, same_population=False,
                          parameters=pd.DataFrame(), attainment=pd.DataFrame(), summary=summary, arms=arms)
    row = trials.dose_response.iloc[0]
    assert row["median"] == 14.0 and row["low"] == pytest.approx(10.4, rel=1e-12) and row["high"] == np.inf
