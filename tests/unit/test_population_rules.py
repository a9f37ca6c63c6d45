"""Rules of pkpd.population that the mutation audit left unguarded (issue 20), one test per rule.

Each answer is independent of the code under test: a closed form (one-compartment bolus and oral solutions, the
linear, indicator and categorical covariate models written out), a numpy/scipy reference computed here (trapezoids,
percentiles, expit/logit), or a statistical test with a fixed seed and enough subjects to fail on a realistic bug
(a wrong variance, a lost covariance, a dropped covariate effect, a sign flipped in a copula). Each group was checked
by breaking its rule in pkpd/population.py (one line) and seeing the test fail; the changes tried are listed in the
commit message. Kept small (a few CPU-seconds): it runs in CI and in the mutation audit of the module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import pkpd
from pkpd.errors import PkpdError, SimulationError
from pkpd.load import model_from_dict, tomllib
from pkpd.population import IIV, IOV, Categorical, CovariateEffect, LogNormalCovariate, Normal, Uniform, transform

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ROOT / "tests" / "data" / "models" / "endpoints_exposure.toml"


def _two_outputs():
    """pk_1cmt_iv with a second output (the amount), to see which outputs are summarised and drawn."""
    data = tomllib.loads((ROOT / "models" / "pk_1cmt_iv.toml").read_text())
    data["model"]["name"] = "pk_1cmt_iv_two_outputs"
    data["outputs"]["amount"] = {"unit": "mg", "expression": "central", "description": "amount in the body"}
    return model_from_dict(data)


TWO = _two_outputs()
BOLUS = pkpd.Regimen.single(pkpd.Dose(100, "mg"))


def _people(n, **columns):
    return pd.DataFrame({"ID": np.arange(1, n + 1), **columns})


# ============================================================================ random effects in simulate_population
def test_iiv_on_covariate_adjusted_typical_values_has_the_declared_block_covariance():
    """log(P_i / typical_i) ~ N(0, Omega) around each subject's own typical value (allometric CL), with the
    CL-V covariance kept: 2000 subjects, 4 standard errors (a variance off by 13 %, a lost covariance or eta
    applied around another subject's typical value all fail)."""
    n = 2000
    wt = np.linspace(40.0, 120.0, n)
    iiv = IIV({"CL": 0.09, "V": 0.04}, covariances={("CL", "V"): 0.03})
    res = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [0.0, 1.0], _people(n, WT=wt), iiv=iiv, seed=21,
                                   effects=[CovariateEffect("CL", "WT", "power", 0.75, ref=70)])
    eta = np.column_stack([np.log(res.subjects["CL"] / (2.8 * (wt / 70) ** 0.75)), np.log(res.subjects["V"] / 32)])
    assert np.all(np.abs(eta.mean(axis=0)) < 4 * np.sqrt(np.diag(iiv.omega) / n))
    cov = np.cov(eta.T)
    se = np.sqrt((iiv.omega ** 2 + np.outer(np.diag(iiv.omega), np.diag(iiv.omega))) / n)   # SE of a covariance
    assert np.all(np.abs(cov - iiv.omega) < 4 * se), cov
    assert stats.kstest(eta[:, 0] / 0.3, "norm").pvalue > 0.001
    # and the simulated concentrations use those parameters: C(1 h) = 100 / V exp(-CL / V)
    cl, v = res.subjects["CL"].to_numpy(), res.subjects["V"].to_numpy()
    np.testing.assert_allclose(res.simulation.outputs["conc"][:, 1], 100 / v * np.exp(-cl / v), rtol=1e-9)


def test_the_seed_reproduces_the_random_effects_and_another_seed_changes_them():
    pop = _people(50, WT=70.0)
    kw = dict(iiv=IIV({"CL": 0.09}), iov=IOV({"V": 0.04}), occasions=[0, 12])
    a = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 13.0], pop, seed=3, **kw)
    b = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 13.0], pop, seed=3, **kw)
    c = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 13.0], pop, seed=4, **kw)
    pd.testing.assert_frame_equal(a.subjects, b.subjects)
    assert not np.any(a.subjects["CL"].to_numpy() == c.subjects["CL"].to_numpy())
    assert not np.any(a.subjects["V_occ2"].to_numpy() == c.subjects["V_occ2"].to_numpy())


def test_iov_without_iiv_varies_around_the_typical_value_and_switches_at_the_second_occasion():
    """Without IIV each occasion's log CL is N(log 2.8, pi), occasions independent; with two occasions the
    second value applies from its start on (closed-form piecewise decay)."""
    n = 2000
    res = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 12.0, 25.0, 36.0], _people(n, WT=70.0),
                                   iov=IOV({"CL": 0.04}), occasions=[0, 24], seed=8)
    logs = np.log(res.subjects[["CL_occ1", "CL_occ2"]].to_numpy() / 2.8)
    assert np.all(np.abs(logs.mean(axis=0)) < 4 * 0.2 / np.sqrt(n))
    assert np.all(np.abs(logs.var(axis=0, ddof=1) - 0.04) < 4 * 0.04 * np.sqrt(2 / n))
    assert abs(np.corrcoef(logs.T)[0, 1]) < 4 / np.sqrt(n)
    np.testing.assert_array_equal(res.subjects["CL"], res.subjects["CL_occ1"])
    k1, k2 = res.subjects["CL_occ1"].to_numpy() / 32, res.subjects["CL_occ2"].to_numpy() / 32
    a24 = 100 * np.exp(-k1 * 24)
    expected = np.column_stack([100 * np.exp(-k1 * 1), 100 * np.exp(-k1 * 12), a24 * np.exp(-k2 * 1),
                                a24 * np.exp(-k2 * 12)]) / 32
    np.testing.assert_allclose(res.simulation.outputs["conc"], expected, rtol=1e-8)


def test_a_single_occasion_is_plain_variability():
    res = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [2.0], _people(5, WT=70.0), iov=IOV({"CL": 0.04}),
                                   occasions=[0], seed=2)
    cl = res.subjects["CL_occ1"].to_numpy()
    np.testing.assert_array_equal(res.subjects["CL"], cl)
    np.testing.assert_allclose(res.simulation.outputs["conc"][:, 0], 100 / 32 * np.exp(-cl / 32 * 2), rtol=1e-9)


def test_occasion_start_times_must_be_one_increasing_list_of_finite_times():
    pop = _people(2, WT=70.0)
    for bad in ([[0, 72]], [0, np.nan], [0, 72, 72]):
        with pytest.raises(PkpdError, match="occasions must be finite, increasing"):
            pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0], pop, iov=IOV({"CL": 0.04}), occasions=bad)
    # starts less than one time unit apart are fine (e.g. occasions 30 min apart)
    res = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0], pop, iov=IOV({"CL": 0.04}), occasions=[0, 0.5])
    assert "CL_occ2" in res.subjects


# ============================================================================ subjects, covariates, outputs
def test_subject_ids_and_covariates_are_carried_to_the_results():
    pop = pd.DataFrame({"ID": ["S01", "S07", "S11"], "WT": [50.0, 70.0, 90.0], "HT": [160.0, 170.0, 180.0]})
    reg = pkpd.Regimen.single(pkpd.Dose(1, "mg/kg"))
    res = pkpd.simulate_population("pk_1cmt_iv", reg, [0.0, 1.0], pop)
    assert list(res.subjects["ID"]) == ["S01", "S07", "S11"]
    assert list(res.simulation.subject_ids) == ["S01", "S07", "S11"]
    np.testing.assert_array_equal(res.subjects["WT"], pop["WT"])
    np.testing.assert_array_equal(res.subjects["HT"], pop["HT"])
    # per-kg bolus: C(0) = 1 mg/kg x WT / V
    np.testing.assert_allclose(res.subjects["Cmax_conc"], pop["WT"] / 32, rtol=1e-12)
    # without an ID column the subjects are numbered 1..n
    res = pkpd.simulate_population("pk_1cmt_iv", reg, [0.0, 1.0], pop.drop(columns="ID"))
    assert list(res.subjects["ID"]) == [1, 2, 3] and list(res.simulation.subject_ids) == [1, 2, 3]
    assert list(res.subjects.columns[:3]) == ["ID", "WT", "HT"]


def test_a_missing_model_covariate_names_the_subject_by_its_id():
    reg = pkpd.Regimen.single(pkpd.Dose(1, "mg/kg"))
    wt = pd.Series([70.0, 71.0, None, 72.0], dtype=object)       # an object column, as read from a CSV with blanks
    with pytest.raises(PkpdError, match="covariate 'WT' is missing for subject 103"):
        pkpd.simulate_population("pk_1cmt_iv", reg, [1.0], pd.DataFrame({"ID": [101, 102, 103, 104], "WT": wt}))
    with pytest.raises(PkpdError, match="covariate 'WT' is missing for subject 3$"):
        pkpd.simulate_population("pk_1cmt_iv", reg, [1.0], pd.DataFrame({"WT": [70.0, 71.0, np.nan, np.nan]}))


def test_a_model_object_and_its_name_give_the_same_population():
    pop = _people(4, WT=[50.0, 60.0, 70.0, 80.0])
    a = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 2.0], pop, iiv=IIV({"CL": 0.09}), seed=1)
    b = pkpd.simulate_population(pkpd.load_model("pk_1cmt_iv"), BOLUS, [1.0, 2.0], pop, iiv=IIV({"CL": 0.09}),
                                 seed=1)
    pd.testing.assert_frame_equal(a.subjects, b.subjects)


def test_solver_settings_reach_the_solver_and_only_outputs_are_kept():
    pop = _people(3, WT=70.0)
    with pytest.raises(SimulationError):
        pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 24.0], pop,
                                 settings=pkpd.SolverSettings(method="tsit5", max_steps=2))
    res = pkpd.simulate_population("pk_1cmt_iv", BOLUS, [1.0, 24.0], pop)
    assert not res.simulation.states and set(res.simulation.outputs) == {"conc"}


def test_cmax_tmax_and_auc_per_subject_against_the_oral_closed_form():
    """Oral one-compartment dose (Bateman function) on a 0.05 h grid: Tmax = ln(ka/k)/(ka - k), Cmax = C(Tmax),
    AUC = the linear trapezoids of the output (scipy) and, to the trapezoids' accuracy, the closed form."""
    times = np.linspace(0.0, 24.0, 481)
    wt = np.array([40.0, 70.0, 140.0])
    res = pkpd.simulate_population("pk_1cmt_oral", pkpd.Regimen.single(pkpd.Dose(100, "mg"), target="oral"), times,
                                   _people(3, WT=wt), effects=[CovariateEffect("CL", "WT", "power", 0.75, ref=70)])
    ka, v = 1.5, 32.0
    k = 2.8 * (wt / 70) ** 0.75 / v
    tmax = np.log(ka / k) / (ka - k)

    def conc(t):
        return 100 * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))

    s = res.subjects
    assert np.all(np.abs(s["Tmax_conc"].to_numpy() - tmax) <= 0.025 + 1e-12)
    np.testing.assert_allclose(s["Cmax_conc"], conc(tmax), rtol=1e-3)
    y = res.simulation.outputs["conc"]
    np.testing.assert_allclose(s["AUC_conc"], integrate.trapezoid(y, times, axis=1), rtol=1e-12)
    auc = 100 * ka / (v * (ka - k)) * ((1 - np.exp(-k * 24)) / k - (1 - np.exp(-ka * 24)) / ka)
    np.testing.assert_allclose(s["AUC_conc"], auc, rtol=2e-4)


def test_times_percentiles_and_bands_of_the_result():
    pop = _people(30, WT=70.0)
    times = np.array([0.5, 1.0, 4.0, 12.0])
    res = pkpd.simulate_population(TWO, BOLUS, times, pop, iiv=IIV({"CL": 0.09, "V": 0.04}), seed=5,
                                   percentiles=(10, 50, 90), outputs=["conc"])
    np.testing.assert_array_equal(res.times, times)
    assert res.percentiles == (10, 50, 90) and list(res.bands) == ["conc"]
    np.testing.assert_allclose(res.bands["conc"], np.percentile(res.simulation.outputs["conc"], [10, 50, 90], axis=0))
    assert repr(res) == "PopulationSimulation(30 subjects, 4 times, bands (10, 50, 90) of conc)"
    both = pkpd.simulate_population(TWO, BOLUS, times, pop)
    assert repr(both) == "PopulationSimulation(30 subjects, 4 times, bands (5, 50, 95) of conc, amount)"


# ============================================================================ clinical endpoints in populations
def test_endpoint_outcomes_follow_the_seed_the_assessment_times_and_the_follow_up():
    m = pkpd.load_model(ENDPOINTS)
    pop = _people(60, X=0.0)
    reg = pkpd.Regimen.single(pkpd.Dose(40, "mg"))

    def run(seed):
        return pkpd.simulate_population(m, reg, [0.0, 100.0], pop, iiv=IIV({"k": 0.09}), seed=seed,
                                        outputs=["conc"], observe={"resp": [10.0]}, follow_up=30.0)

    a, b, c = run(5), run(5), run(6)
    pd.testing.assert_frame_equal(a.simulation.outcomes, b.simulation.outcomes)
    assert not a.simulation.outcomes.equals(c.simulation.outcomes)
    o = a.simulation.outcomes
    assert set(o.loc[o["output"] == "resp", "TIME"]) == {10.0}
    event = o[o["output"] == "event"]
    # baseline hazard 0.01/h plus a drug term: most subjects are censored at the end of follow-up, 30 h
    assert event["TIME"].max() == 30.0 and (event.loc[event["TIME"] == 30.0, "DV"] == 0).all()


# ============================================================================ parameter uncertainty
def test_uncertainty_runs_each_trial_as_a_population_simulation_with_its_drawn_parameters():
    """simulate_population(uncertainty=draws): the run at the estimate (the draws' mean 2.8) and each trial, a
    plain population simulation with that trial's CL and seed, every other argument passed through."""
    pop = _people(12, WT=np.linspace(50.0, 100.0, 12))
    times = np.array([1.0, 6.0, 18.0])
    draws = {"CL": np.array([2.0, 2.8, 3.6])}
    kw = dict(iiv=IIV({"V": 0.04}), effects=[CovariateEffect("CL", "WT", "power", 0.75, ref=70)], seed=11,
              outputs=["conc"], percentiles=(10, 50, 90), settings=pkpd.SolverSettings(method="tsit5", rtol=1e-5),
              iov=IOV({"CL": 0.04}), occasions=[0, 12])
    res = pkpd.simulate_population(TWO, BOLUS, times, pop, uncertainty=draws, n_trials=3, **kw)
    assert res.trials.n_trials == 3 and len(set(res.trials.seeds)) == 3        # own random effects per trial
    nominal = pkpd.simulate_population(TWO.with_parameters(CL=2.8), BOLUS, times, pop, **kw)
    assert list(res.bands) == ["conc"] and np.array_equal(res.bands["conc"], nominal.bands["conc"])
    for k, row in res.trials.parameters.iterrows():
        trial = pkpd.simulate_population(TWO.with_parameters(CL=row["CL"]), BOLUS, times, pop,
                                         **{**kw, "seed": res.trials.seeds[k]})
        assert np.array_equal(res.trials.bands["conc"][k], trial.bands["conc"])
    same = pkpd.simulate_population("pk_1cmt_iv", BOLUS, times, pop, uncertainty=draws, n_trials=2, seed=11,
                                    same_population=True)
    assert same.trials.seeds == (11, 11)
    assert "3 trials under parameter uncertainty" in repr(res)
    for extra in ({"observe": {"conc": [1.0]}}, {"follow_up": 10.0}):
        with pytest.raises(PkpdError, match="observe= and follow_up="):
            pkpd.simulate_population("pk_1cmt_iv", BOLUS, times, pop, uncertainty=draws, n_trials=2, **extra)


# ============================================================================ the population plot
@pytest.mark.parametrize(("percentiles", "bands", "labels"), [
    ((10, 25, 50, 75, 90), None, ("median of 30 subjects", "10-90 % range")),
    ((10, 30, 60, 90), None, ("60th percentile of 30 subjects", "10-90 % range")),
    ((5, 50, 90, 95), None, ("median of 30 subjects", "5-95 % range")),
    ((10, 50, 90), None, ("median of 30 subjects", "10-90 % range")),
    ((25, 75), None, ("median of 30 subjects", "5-95 % range")),
    ((5, 50, 95), (20, 50, 80), ("median of 30 subjects", "20-80 % range")),
])
def test_the_plot_draws_the_outer_percentiles_around_the_median_or_the_middle_one(percentiles, bands, labels):
    import matplotlib.pyplot as plt

    res = pkpd.simulate_population(TWO, BOLUS, np.linspace(0, 24, 7), _people(30, WT=70.0),
                                   iiv=IIV({"CL": 0.09}), seed=2, percentiles=percentiles, outputs=["conc"])
    fig = res.plot() if bands is None else res.plot(bands=bands)
    try:
        texts = [t.get_text() for t in fig.legends[0].get_texts()]
        assert texts[:2] == list(labels)
        panels = [ax for ax in fig.axes if ax.get_lines()]
        assert len(panels) == 1                                              # only the summarised output
        middle = float(labels[0].split("th")[0]) if "th" in labels[0] else 50.0
        line = panels[0].get_lines()[0]
        np.testing.assert_allclose(line.get_ydata(), np.percentile(res.simulation.outputs["conc"], middle, axis=0))
    finally:
        plt.close(fig)
    fig = res.plot(outputs=["conc", "amount"])                            # outputs named: drawn even unsummarised
    try:
        assert len([ax for ax in fig.axes if ax.get_lines()]) == 2
    finally:
        plt.close(fig)


# ============================================================================ virtual populations
def test_virtual_population_table_layout_seed_and_a_single_subject():
    pop = pkpd.virtual_population(40, {"SEX": Categorical({0: 0.5, 1: 0.5}), "AGE": Uniform(20, 80)},
                                  derived={"DEC": lambda c: np.floor(c["AGE"] / 10)},
                                  criteria={"AGE": (45, 85), "SEX": {1}}, seed=7)
    t = pop.table
    assert list(t.columns) == ["ID", "SEX", "AGE", "DEC"]
    assert list(t["ID"]) == list(range(1, 41)) and list(t.index) == list(range(40))
    # criteria are all applied, whatever their order (a range first, then a set)
    assert (t["SEX"] == 1).all() and t["AGE"].between(45, 85).all()
    np.testing.assert_array_equal(t["DEC"], np.floor(t["AGE"] / 10))
    assert pop.seed == 7
    assert repr(pop) == (f"VirtualPopulation(40 subjects; {pop.n_rejected} of {pop.n_drawn} draws rejected by the "
                         "inclusion criteria; columns SEX, AGE, DEC)")
    one = pkpd.virtual_population(1, {"AGE": Uniform(20, 80)}, seed=1)
    assert len(one) == 1 and one.n_drawn == 1 and one.n_rejected == 0


def test_the_first_subjects_do_not_depend_on_how_many_are_drawn():
    """Candidates are one stream, accepted in order: 100 subjects are the first 100 of 300 (batch sizes differ),
    and the count of candidates drawn is that of the stream up to the n-th acceptance."""
    cov = {"AGE": Normal(60, 15), "WT": LogNormalCovariate(70, 0.2)}
    small = pkpd.virtual_population(100, cov, criteria={"AGE": (50, None)}, seed=3)
    large = pkpd.virtual_population(300, cov, criteria={"AGE": (50, None)}, seed=3)
    pd.testing.assert_frame_equal(small.table, large.table.iloc[:100])
    assert small.n_drawn < large.n_drawn
    assert small.n_drawn == small.n_rejected + 100


def test_max_draws_caps_the_candidates_drawn():
    # the default: 1000 candidates per subject wanted
    with pytest.raises(PkpdError, match=r"only 0 of 1 subjects .* after 1000 draws"):
        pkpd.virtual_population(1, {"AGE": Uniform(20, 40)}, criteria={"AGE": (45, 85)}, seed=1)
    # about 10 % accepted: batches of 256, 256, then only the 88 left under the cap
    with pytest.raises(PkpdError, match="after 600 draws"):
        pkpd.virtual_population(100, {"X": Uniform(0, 100)}, criteria={"X": (0, 10)}, max_draws=600, seed=1)
    # exactly enough candidates, nobody rejected
    pop = pkpd.virtual_population(10, {"X": Uniform(0, 100)}, max_draws=10, seed=1)
    assert len(pop) == 10 and pop.n_drawn == 10 and pop.n_rejected == 0


def test_resampled_rows_are_drawn_with_replacement_whole_and_can_be_selected_on():
    table = pd.DataFrame({"WT": [50.0, 70.0, 90.0], "HT": [150.0, 170.0, 190.0]})
    n = 3000
    pop = pkpd.virtual_population(n, {"SEX": Categorical({0: 0.5, 1: 0.5})}, resample=table, seed=4)
    np.testing.assert_array_equal(pop["HT"], pop["WT"] + 100)               # rows are kept whole
    counts = np.array([(pop["WT"] == w).sum() for w in (50.0, 70.0, 90.0)])
    assert counts.sum() == n and stats.chisquare(counts).pvalue > 0.001       # each row with probability 1/3
    assert 0.45 < pop["SEX"].mean() < 0.55
    tall = pkpd.virtual_population(n, resample=table, criteria={"HT": (160, None)}, seed=4)
    assert set(tall["WT"]) == {70.0, 90.0}
    assert stats.binomtest(int((tall["WT"] == 70.0).sum()), n, 0.5).pvalue > 0.001
    assert stats.binomtest(tall.n_rejected, tall.n_drawn, 1 / 3).pvalue > 0.001


def test_log_normal_covariates_keep_their_marginal_and_the_sign_of_their_correlation():
    pop = pkpd.virtual_population(3000, {"WT": LogNormalCovariate(70, 0.2), "HT": Normal(170, 10)},
                                  correlation={("WT", "HT"): 0.6}, seed=9)
    assert stats.kstest(np.log(pop["WT"]), "norm", args=(np.log(70), 0.2)).pvalue > 0.001
    rho = stats.spearmanr(pop["WT"], pop["HT"]).statistic
    assert abs(rho - 6 / np.pi * np.arcsin(0.3)) < 0.05                          # Gaussian copula, r = 0.6


def test_categorical_probabilities_must_be_a_distribution_and_may_include_zero():
    for bad in ({0: 0.5, 1: 0.6}, {0: -0.5, 1: 1.5}):
        with pytest.raises(PkpdError, match="probabilities must be >= 0 and sum to 1"):
            pkpd.virtual_population(5, {"S": Categorical(bad)}, seed=1)
    pop = pkpd.virtual_population(200, {"S": Categorical({0: 0.0, 1: 1.0})}, seed=1)
    assert set(pop["S"]) == {1.0}


# ============================================================================ IIV objects and transformations
def test_iiv_variances_must_be_positive_finite_numbers():
    with pytest.raises(PkpdError, match="non-empty dict"):
        IIV([0.1])
    for bad in (0.0, np.nan, np.inf, "0.1", True, -0.1):
        with pytest.raises(PkpdError, match="must be a positive number"):
            IIV({"CL": bad})
    with pytest.raises(PkpdError, match="distribution given for 'Cl'"):
        IIV({"CL": 0.1, "V": 0.1}, distribution={"Cl": "normal"})


def test_iiv_omega_is_read_only_and_from_matrix_keeps_every_covariance():
    iiv = IIV.from_matrix(["CL", "V", "ka"], [[2.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(iiv.omega, [[2.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    assert iiv.distributions == ("lognormal",) * 3
    assert IIV.from_matrix(["CL"], [[0.1]], distribution="normal").distributions == ("normal",)
    with pytest.raises(ValueError, match="read-only"):
        iiv.omega[0, 0] = 5.0
    assert repr(iiv) == "IIV(CL: lognormal omega^2=2; V: lognormal omega^2=2; ka: lognormal omega^2=1)"
    assert repr(IOV({"CL": 0.04}, distribution="normal")) == "IOV(CL: normal omega^2=0.04)"


def test_transformations_against_their_formulas():
    t = np.array([0.2, 0.5, 0.9])
    e = np.array([-1.0, 0.3, 2.0])
    np.testing.assert_allclose(transform("lognormal", t, e), t * np.exp(e), rtol=1e-15)
    np.testing.assert_allclose(transform("normal", t, e), t + e, rtol=1e-15)
    np.testing.assert_allclose(transform("logitnormal", t, e), special.expit(special.logit(t) + e), rtol=1e-13)
    # an extreme eta overflows to inf (log-normal) or 0/1 (logit-normal), without a warning
    assert transform("lognormal", 1.0, 800.0) == np.inf
    assert transform("logitnormal", 0.5, -800.0) == 0.0
    # typical values per subject (n, q) with one eta (q,): broadcast
    iiv = IIV({"CL": 0.1, "F": 0.1}, distribution={"F": "logitnormal"})
    out = iiv.individual(np.array([[2.0, 0.5], [3.0, 0.2], [4.0, 0.9]]), np.array([0.1, -0.2]))
    np.testing.assert_allclose(out[:, 0], np.array([2.0, 3.0, 4.0]) * np.exp(0.1), rtol=1e-15)
    np.testing.assert_allclose(out[:, 1], special.expit(special.logit([0.5, 0.2, 0.9]) - 0.2), rtol=1e-13)


# ============================================================================ covariate effects
def test_linear_indicator_and_categorical_effects_against_their_formulas():
    typical = [2.0, 2.0, 2.0, 2.0]
    age = [20, 40, 60, 5]                                              # a plain list of ints
    lin = CovariateEffect("CL", "AGE", "linear", -0.01, ref=40)
    np.testing.assert_allclose(lin.apply(np.array(typical), {"AGE": age}), 2 * (1 - 0.01 * (np.array(age) - 40)))
    ind = CovariateEffect(parameter="CL", kind="indicator", condition="AGE <= 20", value=0.5)
    assert ind.covariate == "AGE" and ind.value == 0.5
    np.testing.assert_array_equal(ind.indicator(age), [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(ind.apply(np.array(typical), {"AGE": age}), [3.0, 2.0, 2.0, 3.0])
    cat = CovariateEffect("CL", "SEX", "categorical", {0: 1.0, 1: 0.7})
    np.testing.assert_allclose(cat.apply(np.array(typical), {"SEX": [0, 1, 2, 1]}), [2.0, 1.4, 2.0, 1.4])
    power = CovariateEffect("CL", "WT", "power", 0.75, ref=70)
    np.testing.assert_allclose(power.apply(np.array(typical[:2]), {"WT": [35, 140]}), 2 * np.array([0.5, 2]) ** 0.75)
    # an object column (pandas, from a file with text in it) holding numbers is read as numbers
    wt = pd.Series([35, 140], dtype=object).to_numpy()
    np.testing.assert_allclose(power.apply(np.array(typical[:2]), {"WT": wt}), 2 * np.array([0.5, 2]) ** 0.75)
    # the default coefficient of an indicator is 0 (no effect until estimated)
    zero = CovariateEffect(parameter="V", kind="indicator", condition="APGR < 5")
    assert zero.value == 0.0 and zero.covariate == "APGR"
    np.testing.assert_array_equal(zero.apply(np.array([1.0, 1.0]), {"APGR": np.array([3.0, 8.0])}), [1.0, 1.0])
    # naming the covariate is allowed when it is the one compared
    assert CovariateEffect("V", "APGR", "indicator", 0.2, condition="APGR < 5").covariate == "APGR"


@pytest.mark.parametrize("condition", [None, "", "APGR < WT", "APGR < 5, 1, 0) * ifelse(APGR > 2"])
def test_an_indicator_condition_is_one_comparison_of_one_covariate(condition):
    with pytest.raises(PkpdError, match="CovariateEffect on 'V'"):
        CovariateEffect(parameter="V", kind="indicator", condition=condition, value=0.3)


def test_a_covariate_effect_names_the_subject_whose_covariate_is_missing():
    eff = CovariateEffect("CL", "WT", "power", 0.75, ref=70)
    with pytest.raises(PkpdError, match="CovariateEffect on 'CL': covariate 'WT' is missing for subject 2"):
        eff.apply(np.array([2.0, 2.0, 2.0]), {"WT": np.array([70.0, np.nan, np.inf])})


def test_an_indicator_on_another_covariate_than_the_one_named_is_an_error():
    with pytest.raises(PkpdError, match="must compare one covariate"):
        CovariateEffect("V", "WT", "indicator", 0.3, condition="APGR < 5")
