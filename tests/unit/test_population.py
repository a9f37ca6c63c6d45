"""Virtual populations, covariate models and population simulation (issue 5)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pkpd
from pkpd.errors import PkpdError

# hMSC100 osteoporosis trial (issue 5): women, 45-85 years, >= 40 kg, BMI 18-30 kg/m2
HMSC100 = {"SEX": {1}, "AGE": (45, 85), "WT": (40, None), "BMI": (18, 30)}
COVARIATES = {"SEX": pkpd.Categorical({0: 0.5, 1: 0.5}), "AGE": pkpd.Normal(62, 14),
              "WT": pkpd.LogNormalCovariate(68, 0.2), "HT": pkpd.Normal(163, 8)}
DERIVED = {"BMI": lambda c: c["WT"] / (c["HT"] / 100) ** 2}


def hmsc100(n=2000, seed=7):
    return pkpd.virtual_population(n, COVARIATES, correlation={("WT", "HT"): 0.5}, derived=DERIVED,
                                   criteria=HMSC100, seed=seed)


def test_every_subject_satisfies_the_inclusion_criteria_and_rejections_are_counted():
    pop = hmsc100()
    t = pop.table
    assert len(pop) == 2000
    assert (t["SEX"] == 1).all() and t["AGE"].between(45, 85).all() and (t["WT"] >= 40).all()
    assert t["BMI"].between(18, 30).all()
    assert pop.n_drawn == len(pop) + pop.n_rejected
    # half are men, so at least about half of the draws are rejected
    assert 0.45 < pop.n_rejected / pop.n_drawn < 0.9


def test_same_seed_same_population_other_seed_other_population():
    a, b, c = hmsc100(200, 1), hmsc100(200, 1), hmsc100(200, 2)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.allclose(a["WT"], c["WT"])


def test_marginals_and_correlation_match_their_targets():
    pop = pkpd.virtual_population(4000, {"WT": pkpd.Normal(70, 12), "HT": pkpd.Uniform(150, 190),
                                         "SEX": pkpd.Categorical({0: 0.3, 1: 0.7})},
                                  correlation={("WT", "HT"): 0.6}, seed=11)
    assert stats.kstest(pop["WT"], "norm", args=(70, 12)).pvalue > 0.01
    assert stats.kstest(pop["HT"], "uniform", args=(150, 40)).pvalue > 0.01
    assert stats.binomtest(int((pop["SEX"] == 1).sum()), 4000, 0.7).pvalue > 0.01
    rho = stats.spearmanr(pop["WT"], pop["HT"]).statistic
    assert 0.5 < rho < 0.65    # Spearman of a Gaussian copula with r = 0.6 is 6/pi asin(0.3) = 0.582


def test_impossible_criteria_are_a_clear_error():
    with pytest.raises(PkpdError, match="impossible"):
        pkpd.virtual_population(10, {"AGE": pkpd.Uniform(20, 40)}, criteria={"AGE": (45, 85)}, seed=1)


def test_bad_correlation_and_unknown_criterion_are_errors():
    with pytest.raises(PkpdError, match="not positive definite"):
        pkpd.virtual_population(10, {"A": pkpd.Normal(0, 1), "B": pkpd.Normal(0, 1), "C": pkpd.Normal(0, 1)},
                                correlation={("A", "B"): 0.9, ("B", "C"): 0.9, ("A", "C"): -0.9}, seed=1)
    with pytest.raises(PkpdError, match="criterion on 'AG'"):
        pkpd.virtual_population(10, {"AGE": pkpd.Uniform(20, 40)}, criteria={"AG": (45, 85)})


def test_per_kg_doses_use_each_subjects_weight_and_bands_are_percentiles():
    pop = pkpd.virtual_population(40, {"WT": pkpd.Uniform(50, 100)}, seed=5)
    reg = pkpd.Regimen.single(pkpd.Dose(4.0, "mg/kg"), target="iv")
    times = np.linspace(0, 24, 25)
    res = pkpd.simulate_population("pk_1cmt_oral", reg, times, pop, seed=1)
    # no variability: C(0) = 4 mg/kg * WT / V
    assert res.subjects["Cmax_conc"].to_numpy() == pytest.approx(4.0 * pop["WT"] / 32.0, rel=1e-6)
    assert res.bands["conc"][1] == pytest.approx(np.percentile(res.simulation.outputs["conc"], 50, axis=0))


def test_allometric_effect_and_iiv_on_unknown_parameter():
    pop = pd.DataFrame({"ID": [1, 2], "WT": [35.0, 140.0]})
    eff = pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70)
    res = pkpd.simulate_population("pk_1cmt_oral", pkpd.Regimen.none(), [0.0, 1.0], pop, effects=[eff])
    assert res.subjects["CL"].to_numpy() == pytest.approx(2.8 * (np.array([35, 140]) / 70) ** 0.75)
    with pytest.raises(PkpdError, match="no parameter 'Cl'"):
        pkpd.simulate_population("pk_1cmt_oral", None, [0.0, 1.0], pop, iiv=pkpd.IIV({"Cl": 0.1}))


def test_missing_covariate_is_an_error():
    pop = pd.DataFrame({"ID": [1, 2], "WT": [70.0, np.nan]})
    with pytest.raises(PkpdError, match="missing for subject 2"):
        pkpd.simulate_population("pk_1cmt_oral", None, [0.0, 1.0], pop,
                                 effects=[pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70)])


def test_iiv_marginals():
    iiv = pkpd.IIV({"CL": 0.09, "F": 0.5}, distribution={"F": "logitnormal"})
    eta = iiv.sample(20000, np.random.default_rng(3))
    ind = iiv.individual(np.array([2.0, 0.6]), eta)
    assert np.log(ind[:, 0]).std() == pytest.approx(0.3, rel=0.03)
    assert ((ind[:, 1] > 0) & (ind[:, 1] < 1)).all()


# --- inter-occasion variability in simulation ----------------------------------------------------------------------
def test_simulated_iov_draws_independent_occasions_and_switches_parameters():
    """Three occasions (doses at 0, 72, 144 h): log CL per occasion has variance omega + pi, occasions of a subject
    correlate by omega / (omega + pi), and each subject's curve is the analytic piecewise solution."""
    n = 3000
    pop = pd.DataFrame({"ID": np.arange(1, n + 1), "WT": 70.0})
    reg = pkpd.Regimen.every(72, "h", count=3, dose=pkpd.Dose(100, "mg"))
    times = np.array([1.0, 24, 73, 96, 145, 168])
    res = pkpd.simulate_population("pk_1cmt_iv", reg, times, pop, iiv=pkpd.IIV({"CL": 0.09}),
                                   iov=pkpd.IOV({"CL": 0.04}), occasions=[0, 72, 144], seed=4)
    logs = np.log(res.subjects[["CL_occ1", "CL_occ2", "CL_occ3"]].to_numpy() / 2.8)
    var = logs.var(axis=0, ddof=1)
    assert np.all(np.abs(var - 0.13) < 4 * 0.13 * np.sqrt(2 / n)), var
    r = np.corrcoef(logs.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(r - 0.09 / 0.13) < 0.05), r
    np.testing.assert_array_equal(res.subjects["CL"], res.subjects["CL_occ1"])
    # analytic: amount decays with the occasion's CL; each dose adds 100 mg at the occasion start
    s = res.subjects.iloc[0]
    v = 32.0
    expected = []
    ks = [s[f"CL_occ{k}"] / v for k in (1, 2, 3)]
    for t in times:
        occ = int(t // 72)
        a_start = 0.0
        for k in range(occ + 1):
            a_start = a_start * np.exp(-ks[k - 1] * 72) + 100 if k else 100.0
        expected.append(a_start / v * np.exp(-ks[occ] * (t - 72 * occ)))
    np.testing.assert_allclose(res.simulation.outputs["conc"][0], expected, rtol=1e-6)


def test_iov_simulation_bad_input():
    pop = pd.DataFrame({"ID": [1, 2], "WT": 70.0})
    reg = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    with pytest.raises(PkpdError, match="iov needs occasions"):
        pkpd.simulate_population("pk_1cmt_iv", reg, [1.0], pop, iov=pkpd.IOV({"CL": 0.04}))
    with pytest.raises(PkpdError, match="occasions must be finite, increasing"):
        pkpd.simulate_population("pk_1cmt_iv", reg, [1.0], pop, iov=pkpd.IOV({"CL": 0.04}), occasions=[72, 0])
    with pytest.raises(PkpdError, match="IOV: model 'pk_1cmt_iv' has no parameter 'Cl'"):
        pkpd.simulate_population("pk_1cmt_iv", reg, [1.0], pop, iov=pkpd.IOV({"Cl": 0.04}), occasions=[0])
    with pytest.raises(PkpdError, match="changes: 'Cl' is not a parameter or covariate"):
        pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), reg, [1.0], changes={"Cl": ([1.0], [2.0])})
