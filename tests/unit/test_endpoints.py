"""Clinical endpoints (issue 17): model files, likelihoods, simulated outcomes, estimation, bad input.

Every number is checked against something independent: scipy.stats distributions, closed-form survival functions
and maximum-likelihood estimates, and a Laplace objective computed here with scipy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import expit, logit

import pkpd
from pkpd import endpoints as ep
from pkpd.errors import DataError, FitError, ModelFileError, PkpdError, UnitError
from pkpd.load import dump_model, model_from_dict
from pkpd.nlme import population_objective

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml"
M = pkpd.load_model(MODEL_FILE)


def _tte_records(times, events, ids=None, output="event"):
    ids = np.arange(1, len(times) + 1) if ids is None else ids
    return pd.DataFrame({"ID": ids, "TIME": times, "DV": events, "DVID": output})


# ---------------------------------------------------------------------------------------------------- likelihoods
def test_time_to_event_likelihood_is_the_exponential_density_survival_and_interval_probability():
    lam, t0, t = 0.3, 1.5, np.array([2.0, 4.0, 7.5])
    dH = lam * (t - t0)
    event = ep.tte_log_likelihood(np.ones(3), dH, np.full(3, lam))
    censored = ep.tte_log_likelihood(np.zeros(3), dH, np.full(3, lam))
    interval = ep.tte_log_likelihood(np.ones(3), dH, np.full(3, lam), np.ones(3, dtype=bool))
    given = stats.expon.logsf(t0, scale=1 / lam)   # everything is conditional on being at risk at t0
    np.testing.assert_allclose(event, stats.expon.logpdf(t, scale=1 / lam) - given, rtol=1e-13)
    np.testing.assert_allclose(censored, stats.expon.logsf(t, scale=1 / lam) - given, rtol=1e-13)
    np.testing.assert_allclose(interval, np.log(stats.expon.cdf(t, scale=1 / lam) - stats.expon.cdf(t0, scale=1 / lam))
                               - given, rtol=1e-12)


def test_binary_ordinal_and_count_likelihoods_match_scipy_stats():
    p = np.array([0.1, 0.5, 0.97])
    for y in (0, 1):
        np.testing.assert_allclose(ep.binary_log_likelihood(np.full(3, y), p), stats.bernoulli.logpmf(y, p),
                                   rtol=1e-13)
    logits = np.array([[2.0, 0.5, -1.0], [40.0, 39.0, 38.0], [-30.0, -31.0, -33.0]])
    at_least = np.concatenate([np.ones((3, 1)), expit(logits), np.zeros((3, 1))], axis=1)    # P(Y >= c_k)
    below = np.concatenate([np.zeros((3, 1)), expit(-logits), np.ones((3, 1))], axis=1)      # P(Y < c_k)
    for k in range(4):
        # P(Y = c_k) as the difference that does not cancel: of P(Y < .) where the logits are large
        exact = np.where(logits.mean(axis=1) > 0, below[:, k + 1] - below[:, k], at_least[:, k] - at_least[:, k + 1])
        np.testing.assert_allclose(np.exp(ep.ordinal_log_likelihood(np.full(3, k), logits)), exact, rtol=1e-9)
    np.testing.assert_allclose(ep.ordinal_probabilities(logits).sum(axis=1), 1.0, rtol=1e-12)
    y, mu = np.array([0, 1, 4, 17]), np.array([0.3, 2.0, 4.5, 11.0])
    np.testing.assert_allclose(ep.count_log_likelihood(y, mu), stats.poisson.logpmf(y, mu), rtol=1e-12)
    a = np.array([0.05, 0.5, 2.0, 1.3])
    np.testing.assert_allclose(ep.count_log_likelihood(y, mu, a), stats.nbinom.logpmf(y, 1 / a, 1 / (1 + a * mu)),
                               rtol=1e-11)


def _numeric_gradient(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up).sum() - f(down).sum()) / (2 * h)
    return g


def test_likelihood_gradients_equal_central_differences():
    dH, h = np.array([0.2, 1.3, 0.7]), np.array([0.5, 0.1, 2.0])
    ev, iv = np.array([1, 0, 1]), np.array([False, False, True])
    _, g_dH, g_h = ep.tte_log_likelihood(ev, dH, h, iv, gradient=True)
    np.testing.assert_allclose(g_dH, _numeric_gradient(lambda v: ep.tte_log_likelihood(ev, v, h, iv), dH), rtol=1e-6)
    np.testing.assert_allclose(g_h, _numeric_gradient(lambda v: ep.tte_log_likelihood(ev, dH, v, iv), h), rtol=1e-6,
                               atol=1e-9)
    p, y = np.array([0.2, 0.7]), np.array([0, 1])
    np.testing.assert_allclose(ep.binary_log_likelihood(y, p, gradient=True)[1],
                               _numeric_gradient(lambda v: ep.binary_log_likelihood(y, v), p), rtol=1e-6)
    L, k = np.array([[1.0, -0.2, -1.5]] * 4), np.arange(4)
    np.testing.assert_allclose(ep.ordinal_log_likelihood(k, L, gradient=True)[1],
                               _numeric_gradient(lambda v: ep.ordinal_log_likelihood(k, v), L), rtol=1e-6, atol=1e-9)
    yc, mu, a = np.array([0, 3, 9]), np.array([1.5, 2.0, 6.0]), np.array([0.4, 1.1, 0.2])
    _, g_mu, g_a = ep.count_log_likelihood(yc, mu, a, gradient=True)
    np.testing.assert_allclose(g_mu, _numeric_gradient(lambda v: ep.count_log_likelihood(yc, v, a), mu), rtol=1e-6)
    np.testing.assert_allclose(g_a, _numeric_gradient(lambda v: ep.count_log_likelihood(yc, mu, v), a), rtol=1e-6)


# ---------------------------------------------------------------------------------------------------- model files
def test_endpoint_outputs_load_dump_and_become_an_engine_model():
    assert M.endpoint_names == ("event", "relapse", "weibull", "resp", "grade", "flares", "flares_nb", "episodes")
    import tomllib

    assert model_from_dict(tomllib.loads(dump_model(M))) == M
    engine = ep.engine_model(M)
    assert engine.state_names == ("A", "AUC", "event_cumhaz", "relapse_cumhaz", "weibull_cumhaz", "flares_expected",
                                  "flares_nb_expected")
    assert engine.output_names[:len(M.outputs)] == M.output_names
    spec = {s.name: s for s in ep.endpoint_specs(M)}
    assert spec["relapse"].repeated and not spec["event"].repeated
    assert spec["grade"].logits == ("grade_logit1", "grade_logit2", "grade_logit3")
    assert spec["flares"].rate and not spec["episodes"].rate and spec["flares_nb"].dispersion == "flares_nb_dispersion"


def _with_output(**fields):
    base = {"name": "death", "type": "time-to-event", "hazard": "h0"} | fields
    name = base.pop("name")
    return dataclasses.replace(M, outputs=(pkpd.Output(name, **base),))


@pytest.mark.parametrize(("fields", "error", "where", "text"), [
    ({"hazard": "h0 * V"}, UnitError, "[outputs.death] hazard", "rate [1/time_unit]"),
    ({"type": "time_to_event"}, ModelFileError, "[outputs.death] type", "Did you mean 'time-to-event'"),
    ({"probability": "0.5"}, ModelFileError, "[outputs.death] probability", "applies to binary outputs only"),
    ({"type": "binary", "hazard": None}, ModelFileError, "probability", "missing required key 'probability'"),
    ({"type": "ordinal", "hazard": None, "categories": (0, 2, 1), "intercepts": ("a1", "a2")}, ModelFileError,
     "categories", "strictly increasing"),
    ({"type": "ordinal", "hazard": None, "categories": (0, 1, 2), "intercepts": ("a1",)}, ModelFileError,
     "intercepts", "one expression per category after the first"),
    ({"type": "count", "hazard": None, "mean": "V"}, UnitError, "mean", "rate integrated"),
    ({"unit": "mg"}, UnitError, "[outputs.death] unit", "must be '1'"),
    ({"hazard": "h0 * Q"}, ModelFileError, "hazard", "unknown name 'Q'"),
])
def test_bad_endpoint_declarations_name_the_output_and_key(fields, error, where, text):
    with pytest.raises(error) as info:
        _with_output(**fields)
    assert where in str(info.value) and text in str(info.value)


def test_a_continuous_output_still_needs_its_unit_in_a_model_file(tmp_path):
    text = MODEL_FILE.read_text().replace('expression = "A / V"\nunit = "mg/L"', 'expression = "A / V"')
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ModelFileError, match=r"\[outputs.conc\] unit: missing required key 'unit'"):
        pkpd.load_model(path)


# ---------------------------------------------------------------------------------------------------- simulation
def test_survival_output_is_the_closed_form_survival_of_a_state_driven_hazard():
    t = np.linspace(0, 100, 51)
    sim = pkpd.simulate(M, pkpd.Regimen.single(pkpd.Dose(40, "mg")), t, outcomes=False)
    h0, h1, k, A50 = 0.01, 0.05, 0.1, 10.0
    H = h0 * t + h1 * 40 / A50 * (1 - np.exp(-k * t)) / k
    np.testing.assert_allclose(sim.outputs["event"][0], np.exp(-H), rtol=1e-7)
    np.testing.assert_allclose(sim.outputs["event_hazard"][0], h0 + h1 * 40 * np.exp(-k * t) / A50, rtol=1e-7)


def _event_times(sim, output):
    o = sim.outcomes
    rows = o[o["output"] == output]
    return rows["TIME"].to_numpy(), rows["DV"].to_numpy()


def test_event_times_of_a_constant_hazard_are_exponential_ks():
    sim = pkpd.simulate(M, None, [0.0, 3000.0], params={"h0": np.full(4000, 0.01)}, seed=11,
                        outcomes=["event"])
    t, dv = _event_times(sim, "event")
    assert dv.all()    # follow-up long enough that every subject has the event (S(3000) = 1e-13)
    # 4000 subjects: the test sees a 10 % error of the time scale (KS distance 0.035 against a critical 0.021)
    assert stats.kstest(t, stats.expon(scale=100.0).cdf).pvalue > 0.05


def test_event_times_of_a_state_driven_hazard_follow_the_analytic_survival_ks():
    C, D = 60.0, 40.0
    h0, h1, k, A50 = 0.01, 0.05, 0.1, 10.0

    def H(t):
        return h0 * t + h1 * D / A50 * (1 - np.exp(-k * t)) / k

    sim = pkpd.simulate(M, pkpd.Regimen.single(pkpd.Dose(D, "mg")), [0.0, C], params={"k": np.full(3000, k)},
                        seed=12, outcomes=["event"])
    t, dv = _event_times(sim, "event")
    assert np.all(t[dv == 0] == C)
    # the fraction censored at C is binomial around S(C); the event times given T <= C follow (1 - S(t)) / (1 - S(C))
    p_cens = np.exp(-H(C))
    assert abs(np.mean(dv == 0) - p_cens) < 4 * np.sqrt(p_cens * (1 - p_cens) / 3000)
    cdf = lambda x: -np.expm1(-H(x)) / -np.expm1(-H(C))
    assert stats.kstest(t[dv == 1], cdf).pvalue > 0.05


def test_weibull_event_times_ks_and_event_time_precision():
    sim = pkpd.simulate(M, None, [0.0, 1e4], params={"shape": np.full(3000, 1.5)}, seed=13,
                        outcomes=["weibull"])
    t, dv = _event_times(sim, "weibull")
    assert dv.all()
    assert stats.kstest(t, stats.weibull_min(1.5, scale=50.0).cdf).pvalue > 0.05
    # each time is where H(t) reaches its exponential draw: the survival there is exactly a uniform draw
    u = np.exp(-(t / 50.0) ** 1.5)
    assert stats.kstest(u, "uniform").pvalue > 0.05


def test_repeated_events_are_a_poisson_process_and_outcomes_are_reproducible():
    sim = pkpd.simulate(M, None, [0.0, 500.0], params={"h0": np.full(300, 0.02)}, seed=5,
                        outcomes=["relapse"])
    o = sim.outcomes[sim.outcomes["output"] == "relapse"]
    counts = o[o["DV"] == 1].groupby("ID").size().reindex(sim.subject_ids, fill_value=0).to_numpy()
    assert abs(counts.mean() - 10.0) < 4 * np.sqrt(10.0 / 300)                     # Poisson(0.02 * 500)
    assert (o.groupby("ID")["DV"].last() == 0).all()                                # each ends with a censoring
    # given their number, the events of a homogeneous Poisson process are uniform over the follow-up
    assert stats.kstest(o.loc[o["DV"] == 1, "TIME"] / 500.0, "uniform").pvalue > 0.05
    again = pkpd.simulate(M, None, [0.0, 500.0], params={"h0": np.full(300, 0.02)}, seed=5,
                        outcomes=["relapse"])
    pd.testing.assert_frame_equal(sim.outcomes, again.outcomes)
    other = pkpd.simulate(M, None, [0.0, 500.0], params={"h0": np.full(300, 0.02)}, seed=6,
                        outcomes=["relapse"])
    assert not sim.outcomes.equals(other.outcomes)


def test_responses_grades_and_counts_at_assessment_times_with_dropout():
    n = 2000
    sim = pkpd.simulate(M, None, [0.0, 100.0], params={"b0": np.full(n, logit(0.3))}, seed=3,
                        observe={"resp": [10.0], "grade": [10.0], "flares": [20.0, 50.0], "flares_nb": [50.0],
                                 "episodes": [5.0]},
                        dropout=np.where(np.arange(n) < 1000, 30.0, np.inf))
    o = sim.outcomes
    assert abs(o.loc[o.output == "resp", "DV"].mean() - 0.3) < 4 * np.sqrt(0.21 / n)
    grade = o.loc[o.output == "grade", "DV"].to_numpy()
    expected = ep.ordinal_probabilities([[1.0, -0.5, -2.0]])[0]
    observed = np.bincount(grade.astype(int), minlength=4)
    assert stats.chisquare(observed, expected * n).pvalue > 0.01
    flares = o[o.output == "flares"]
    assert (flares.groupby("ID").size().to_numpy() <= 2).all()
    assert len(flares[flares.TIME == 50.0]) == n - 1000                           # dropped out at 30 h
    first = flares.loc[flares.TIME == 20.0, "DV"]
    assert abs(first.mean() - 4.0) < 4 * np.sqrt(4.0 / n) and abs(first.var() - 4.0) < 0.5   # Poisson(0.2 x 20)
    nb = o.loc[o.output == "flares_nb", "DV"]
    assert abs(nb.var() / (10.0 + 0.5 * 100.0) - 1) < 0.15                         # NB2 variance mu + alpha mu^2
    assert abs(o.loc[o.output == "episodes", "DV"].mean() - 3.0) < 4 * np.sqrt(3.0 / n)
    assert (o.loc[o.output == "event", "TIME"] <= 30.0).sum() >= 1000               # censored at dropout


def test_nonmem_layout_holds_absolute_doses_and_the_records():
    reg = pkpd.Regimen.single(pkpd.Dose(2.0, "mg/kg")) + pkpd.Regimen.single(pkpd.Dose(1.0, "mg"), at=5,
                                                                               duration=2.0)
    m = dataclasses.replace(M, covariates=M.covariates + (pkpd.Covariate("WT", "kg", 70.0),))
    sim = pkpd.simulate(m, reg, [0.0, 48.0], covariates={"WT": [50.0, 80.0]}, seed=1,
                        observe={k: [24.0] for k in ("resp", "grade", "flares", "flares_nb", "episodes")})
    df = sim.to_dataframe(layout="nonmem")
    doses = df[df.EVID == 1]
    assert doses.AMT.tolist() == [100.0, 1.0, 160.0, 1.0] and doses.DUR.tolist() == [0.0, 2.0, 0.0, 2.0]
    assert set(df.loc[df.EVID == 0, "DVID"]) == set(m.endpoint_names)
    assert df.WT.tolist() == [50.0] * int((df.ID == 1).sum()) + [80.0] * int((df.ID == 2).sum())
    assert set(doses.AMTU) == {"mg"}   # the dose unit is stated: read_nonmem never guesses it
    with pytest.raises(PkpdError, match="layout"):
        sim.to_dataframe(layout="sideways")


# ---------------------------------------------------------------------------------------------------- estimation
def test_constant_hazard_mle_is_events_over_time_at_risk():
    rng = np.random.default_rng(0)
    t, c = rng.exponential(30.0, 60), rng.uniform(10, 60, 60)
    time, event = np.minimum(t, c), (t <= c).astype(float)
    res = pkpd.fit(M, _tte_records(time, event), estimate=["h0"])
    lam = event.sum() / time.sum()
    assert res.converged
    np.testing.assert_allclose(res.estimates["h0"], lam, rtol=1e-6)
    np.testing.assert_allclose(res.se["h0"], lam / np.sqrt(event.sum()), rtol=1e-6)
    np.testing.assert_allclose(res.objective, -2 * (event.sum() * np.log(lam) - lam * time.sum()), rtol=1e-9)


def test_logistic_regression_on_a_binary_covariate_gives_the_2x2_log_odds():
    rng = np.random.default_rng(1)
    x = np.arange(80) % 2
    y = (rng.random(80) < np.where(x == 1, 0.7, 0.3)).astype(float)
    data = pd.DataFrame({"ID": np.arange(1, 81), "TIME": 1.0, "DV": y, "DVID": "resp", "X": x})
    res = pkpd.fit(M, data, estimate=["b0", "b1"])
    p0, p1 = y[x == 0].mean(), y[x == 1].mean()
    np.testing.assert_allclose([res.estimates["b0"], res.estimates["b1"]], [logit(p0), logit(p1) - logit(p0)],
                               rtol=1e-6, atol=1e-9)
    se1 = np.sqrt(1 / (40 * p0 * (1 - p0)) + 1 / (40 * p1 * (1 - p1)))
    np.testing.assert_allclose(res.se["b1"], se1, rtol=1e-4)


def test_poisson_rate_mle_is_the_count_over_the_exposure_time():
    rng = np.random.default_rng(2)
    T = rng.uniform(1, 10, 50)
    y = rng.poisson(0.8 * T)
    res = pkpd.fit(M, pd.DataFrame({"ID": np.arange(1, 51), "TIME": T, "DV": y, "DVID": "flares"}),
                   estimate=["r0"])
    rate = y.sum() / T.sum()
    np.testing.assert_allclose(res.estimates["r0"], rate, rtol=1e-6)
    np.testing.assert_allclose(res.se["r0"], np.sqrt(y.sum()) / T.sum(), rtol=1e-6)


def test_negative_binomial_and_proportional_odds_fits_match_direct_maximum_likelihood():
    rng = np.random.default_rng(4)
    T = rng.uniform(2, 10, 80)
    y = rng.poisson(rng.gamma(2.0, 0.4 * T / 2.0))
    res = pkpd.fit(M, pd.DataFrame({"ID": np.arange(1, 81), "TIME": T, "DV": y, "DVID": "flares_nb"}),
                   estimate=["r0", "alpha"])
    f = lambda p: -2 * stats.nbinom.logpmf(y, 1 / np.exp(p[1]), 1 / (1 + np.exp(p[1] + p[0]) * T)).sum()
    direct = optimize.minimize(f, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    np.testing.assert_allclose([res.estimates["r0"], res.estimates["alpha"]], np.exp(direct.x), rtol=1e-5)
    np.testing.assert_allclose(res.objective, direct.fun, rtol=1e-10)
    # proportional odds without covariates: the intercepts are the logits of the cumulative proportions
    g = rng.choice(4, 120, p=[0.3, 0.3, 0.25, 0.15]).astype(float)
    res = pkpd.fit(M, pd.DataFrame({"ID": np.arange(1, 121), "TIME": 1.0, "DV": g, "DVID": "grade"}),
                   estimate=["a1", "a2", "a3"])
    expected = [logit(np.mean(g >= k)) for k in (1, 2, 3)]
    np.testing.assert_allclose([res.estimates[a] for a in ("a1", "a2", "a3")], expected, rtol=1e-6)


def test_joint_pk_and_time_to_event_fit_is_the_sum_of_its_parts():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(1, 21):
        rows.append({"ID": i, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan, "DVID": "."})
        for t in (1.0, 4.0, 12.0):
            conc = 10 * np.exp(-0.1 * t) * np.exp(0.1 * rng.standard_normal())
            rows.append({"ID": i, "TIME": t, "EVID": 0, "AMT": 0.0, "AMTU": ".", "DV": conc, "DVID": "conc"})
        te = rng.exponential(80.0)
        rows.append({"ID": i, "TIME": min(te, 48.0), "EVID": 0, "AMT": 0.0, "AMTU": ".", "DV": float(te < 48),
                     "DVID": "event"})
    data = pd.DataFrame(rows).sort_values(["ID", "TIME"], kind="stable")
    m = M.with_parameters(h1=0.0)     # the hazard does not depend on the drug: the two parts separate
    joint = pkpd.fit(m, data, estimate=["k", "V", "h0"], error={"conc": pkpd.LogNormal(sigma=0.2)})
    pk = pkpd.fit(m, data[data.DVID != "event"], estimate=["k", "V"], error={"conc": pkpd.LogNormal(sigma=0.2)})
    tte = pkpd.fit(m, data[data.DVID != "conc"], estimate=["h0"])
    assert joint.n_obs == 80 and joint.converged
    np.testing.assert_allclose(joint.objective, pk.objective + tte.objective, rtol=1e-7)
    np.testing.assert_allclose([joint.estimates["k"], joint.estimates["h0"]], [pk.estimates["k"], tte.estimates["h0"]],
                               rtol=1e-5)
    diag = joint.diagnostics()
    assert len(diag) == 80 and set(diag.output) == {"conc", "event"}



def _bad(data, match, column="DV"):
    with pytest.raises(DataError, match=match) as info:
        pkpd.fit(M, pd.DataFrame(data), estimate=["h0"])
    assert info.value.column == column
    return info.value.row


@pytest.mark.parametrize(("records", "bad_row", "match", "column"), [
    ([(1, 5.0, 1, "resp"), (2, 5.0, 2, "resp")], 2, "DV must be 0 or 1", "DV"),
    ([(1, 5.0, 0.5, "event")], 1, "DV must be 0 or 1 \\(1 for an event", "DV"),
    ([(1, 5.0, 1, "grade"), (1, 6.0, 4, "grade")], 2, "DV 4 is not one of its declared categories", "DV"),
    ([(1, 5.0, -1, "flares")], 1, "a count cannot be negative", "DV"),
    ([(1, 5.0, 1.5, "flares")], 1, "a count is a whole number", "DV"),
    ([(1, 5.0, 0, "event"), (2, 9.0, 1, "event"), (2, 9.0, 1, "event")], 3, "in time order", "TIME"),
    ([(1, 5.0, 0, "event"), (2, 9.0, 0, "event"), (2, 5.0, 1, "event")], 3, "TIME decreases within ID 2", "TIME"),
])
def test_bad_endpoint_data_name_the_row(records, bad_row, match, column):
    data = pd.DataFrame(records, columns=["ID", "TIME", "DV", "DVID"])
    assert _bad(data, match, column) == bad_row


def test_fit_population_names_the_row_of_a_bad_endpoint_record():
    data = pd.DataFrame([(1, 5.0, 1, "resp"), (2, 4.0, 1, "grade"), (2, 6.0, 7, "grade")],
                        columns=["ID", "TIME", "DV", "DVID"])
    with pytest.raises(DataError, match="DV 7 is not one of its declared categories") as info:
        pkpd.fit_population(M, data, iiv={"h0": 0.1}, method="laplace", estimate=["h0"])
    assert (info.value.row, info.value.column) == (3, "DV")


def test_bad_censoring_of_endpoint_records_and_error_models_on_endpoints():
    data = pd.DataFrame({"ID": [1, 2], "TIME": [5.0, 6.0], "DV": [1.0, 0.0], "DVID": "event", "CENS": [1, 1]})
    assert _bad(data, "CENS = 1 marks an event", "CENS") == 2
    data = pd.DataFrame({"ID": [1], "TIME": [5.0], "DV": [1.0], "DVID": "resp", "LLOQ": [0.5]})
    assert _bad(data, "applies to continuous outputs only", "LLOQ") == 1
    with pytest.raises(FitError, match="declares its own likelihood"):
        pkpd.fit(M, _tte_records([5.0], [1.0]), estimate=["h0"], error={"event": pkpd.Additive(sd=1.0)})


def test_interval_censored_events_use_the_interval_probability():
    data = pd.DataFrame({"ID": [1, 1, 2], "TIME": [10.0, 30.0, 20.0], "DV": [0, 1, 1], "DVID": "event",
                         "CENS": [0, 1, 0]})
    res = pkpd.fit(M, data, estimate=["h0"])
    f = lambda lam: -2 * (-lam * 10 + np.log(-np.expm1(-lam * 20)) + np.log(lam) - lam * 20)
    direct = optimize.minimize_scalar(f, bounds=(1e-4, 1), method="bounded", options={"xatol": 1e-12})
    np.testing.assert_allclose(res.estimates["h0"], direct.x, rtol=1e-6)


def test_parametric_bootstrap_redraws_binary_endpoints():
    rng = np.random.default_rng(8)
    data = pd.DataFrame({"ID": np.arange(1, 41), "TIME": 1.0, "DV": (rng.random(40) < 0.4).astype(float),
                         "DVID": "resp"})
    res = pkpd.fit(M, data, estimate=["b0"])
    boot = pkpd.bootstrap(res, 8, seed=1, workers=1, progress=False)
    assert boot.samples.shape == (8, 1) and np.std(boot.samples) > 0


# ---------------------------------------------------------------------------------------------------- population
def _relapse_study(n=8, seed=21):
    sim = pkpd.simulate(M, None, [0.0, 200.0], params={"h0": 0.02 * np.exp(0.5 * np.random.default_rng(seed)
                                                                           .standard_normal(n))}, seed=seed,
                        outcomes=["relapse"])
    return sim.to_dataframe(layout="nonmem", outputs=["relapse"])


def test_population_laplace_objective_of_repeated_events_equals_an_independent_laplace():
    data = _relapse_study()
    h0, w2 = 0.02, 0.3
    ofv = population_objective(M, data, iiv={"h0": w2}, method="laplace", init={"h0": h0})
    total = 0.0
    for _, sub in data.groupby("ID"):
        d, C = float(sub.DV.sum()), float(sub.TIME.max())

        def objective(e, d=d, C=C):   # O_i(eta): -2 log L of the events at hazard h0 e^eta, plus eta^2 / omega^2
            return -2 * (d * (np.log(h0) + e) - h0 * np.exp(e) * C) + e * e / w2

        e_hat = optimize.minimize_scalar(objective, bounds=(-5, 5), method="bounded", options={"xatol": 1e-12}).x
        total += objective(e_hat) + np.log(w2) + np.log(0.5 * (2 * h0 * np.exp(e_hat) * C + 2 / w2))
    np.testing.assert_allclose(ofv, total, rtol=1e-6)
    with pytest.raises(FitError, match="method='laplace'"):
        population_objective(M, data, iiv={"h0": w2}, method="focei")


def test_per_subject_fits_of_repeated_events_give_each_subject_its_rate():
    data = _relapse_study(n=3)
    fits = pkpd.fit(M, data, estimate=["h0"], per_subject=True)
    for sid, sub in data.groupby("ID"):
        np.testing.assert_allclose(fits.results[sid].estimates["h0"], sub.DV.sum() / sub.TIME.max(), rtol=1e-6,
                                   atol=1e-10)   # a subject without events: at the lower bound, 0


# ---------------------------------------------------------------------------------------------------- diagnostics
def test_kaplan_meier_matches_the_product_limit_by_hand():
    from pkpd.endpoint_vpc import kaplan_meier

    t, s = kaplan_meier([3, 1, 4, 1, 5, 9, 2, 6], [1, 1, 0, 0, 1, 1, 1, 0])
    # at risk 8 at t=1 (1 event), 6 at t=2, 5 at t=3, 3 at t=5, 1 at t=9
    np.testing.assert_allclose(s, np.cumprod([1 - 1 / 8, 1 - 1 / 6, 1 - 1 / 5, 1 - 1 / 3, 0.0]))
    assert t.tolist() == [1, 2, 3, 5, 9]


def _covariate_study(n=60, hx=1.0, seed=9):
    x = (np.arange(n) % 2).astype(float)
    sim = pkpd.simulate(M.with_parameters(hx=hx), None, [0.0, 150.0], covariates={"X": x}, seed=seed,
                        outcomes=["event", "grade"], observe={"grade": [24.0, 96.0]},
                        params={"h0": 0.01, "g": -1.0, "bA": 0.0})
    return sim.to_dataframe(layout="nonmem")


def test_km_vpc_covers_a_correct_model_and_not_a_wrong_covariate_effect():
    from pkpd.endpoint_vpc import km_vpc

    data = _covariate_study(seed=0)                      # the event hazard is doubled-plus (e^1) for X = 1
    right = km_vpc(M.with_parameters(hx=1.0), data, output="event", n_replicates=40, seed=1)
    wrong = km_vpc(M.with_parameters(hx=0.0), data, output="event", n_replicates=40, seed=1)   # no effect of X
    assert right.coverage >= 0.85 and wrong.coverage < 0.4
    assert right.simulated.shape == (3, 101) and right.n_subjects == 60
    fig = right.plot()
    assert fig.axes[0].get_ylabel() == "P(no event)"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_km_vpc_level_may_be_any_real_number_and_nothing_else():
    """km_vpc(level=...) takes any real number in (0, 1): Fraction(9, 10) gives the band of 0.9 (numpy's percentiles
    of a Fraction raised a TypeError); a text, a bool or a Decimal is a FitError naming level."""
    from decimal import Decimal
    from fractions import Fraction

    from pkpd.endpoint_vpc import km_vpc

    data = _covariate_study(n=20, seed=0)
    band = km_vpc(M, data, output="event", n_replicates=10, seed=1, level=0.9)
    other = km_vpc(M, data, output="event", n_replicates=10, seed=1, level=Fraction(9, 10))
    np.testing.assert_array_equal(other.simulated, band.simulated)
    assert other.level == 0.9
    for level in ("0.9", True, Decimal("0.9")):
        with pytest.raises(FitError, match="level must be a number in"):
            km_vpc(M, data, output="event", n_replicates=10, seed=1, level=level)


def test_categorical_vpc_over_exposure_bins_flags_a_wrong_exposure_effect():
    from pkpd.endpoint_vpc import categorical_vpc

    reg = [pkpd.Regimen.single(pkpd.Dose(d, "mg")) for d in np.repeat([0.0, 10.0, 40.0], 20)]
    sim = pkpd.simulate(M.with_parameters(g=-1.0), reg, [0.0, 96.0], seed=4, outcomes=["grade"],
                        observe={"grade": [24.0, 96.0]})
    data = sim.to_dataframe(layout="nonmem")
    right = categorical_vpc(M.with_parameters(g=-1.0), data, output="grade", by="AUC", n_bins=3, n_replicates=40,
                            seed=2)
    wrong = categorical_vpc(M, data, output="grade", by="AUC", n_bins=3, n_replicates=40, seed=2)
    assert right.coverage >= 0.85 and wrong.coverage < 0.6
    np.testing.assert_allclose(right.observed.sum(axis=0), 1.0)
    with pytest.raises(FitError, match="km_vpc checks time-to-event"):
        categorical_vpc(M, data, output="event", n_replicates=10)


def test_scenario_clinical_endpoints_equal_their_closed_forms_and_are_reported():
    from pkpd.metrics import Endpoint
    from pkpd.report import _page, _tables
    from pkpd.scenarios import Arm, Scenario, Target, run_scenario

    arms = [Arm("control", control=True), Arm("10 mg", pkpd.Dose(10, "mg"))]
    sc = Scenario(M, arms=arms, times=np.linspace(0, 300, 301),
                  endpoints=[Endpoint("resp", "probability_at", time=24), Endpoint("event", "survival_at", time=100),
                             Endpoint("event", "median_time_to_event"), Endpoint("flares", "expected_count", time=48),
                             Endpoint("grade", "probability_at", time=24, category=2)],
                  targets=[Target("resp_P_24", ">=", 0.25)])
    res = run_scenario(sc, seed=1)
    ctrl = res.clinical[res.clinical.arm == "control"].set_index("endpoint")["value"]
    np.testing.assert_allclose(ctrl["resp_P_24"], expit(-1.0), rtol=1e-9)
    np.testing.assert_allclose(ctrl["event_survival_100"], np.exp(-1.0), rtol=1e-7)
    np.testing.assert_allclose(ctrl["event_median_time"], np.log(2) / 0.01, rtol=1e-4)
    np.testing.assert_allclose(ctrl["flares_count_48"], 0.2 * 48, rtol=1e-7)
    np.testing.assert_allclose(ctrl["grade_P_ge2_24"], expit(-0.5), rtol=1e-9)
    dosed = res.clinical[res.clinical.arm == "10 mg"].set_index("endpoint")["value"]
    H = 0.01 * 100 + 0.05 * 10 / 10 * (1 - np.exp(-10.0)) / 0.1
    np.testing.assert_allclose(dosed["event_survival_100"], np.exp(-H), rtol=1e-6)
    assert res.attainment.set_index("arm").loc["control", "probability"] == 1.0
    with pytest.raises(PkpdError, match="applies to time-to-event outputs"):
        Scenario(M, arms=arms, endpoints=[Endpoint("resp", "survival_at", time=5)])
    with pytest.raises(PkpdError, match="give category=c"):
        Scenario(M, arms=arms, endpoints=[Endpoint("grade", "probability_at", time=5)])
    # the report's page (its figures are drawn by the report tests of scenarios; stand-ins here)
    tables, csv = _tables(res, 0.8)
    page = _page(res, tables, [(stem, stem, "data:,") for stem in ("time_course", "exposure")], 0.8)
    assert "clinical" in csv
    assert "Clinical endpoints by arm" in page and "P(resp = 1) at 24 h" in page
    clinical = page[page.index("Clinical endpoints by arm"):]
    assert "<td class='num'>26.9 %</td><td class='num'>–</td>" in clinical   # expit(-1) in %; one subject: no CI
    assert "Clinical endpoints by arm" in res._repr_html_()


def test_fit_population_laplace_runs_on_endpoint_records_alone():
    data = _relapse_study(n=12, seed=22)
    fit = pkpd.fit_population(M, data, iiv={"h0": 0.2}, method="laplace", estimate=["h0"], covariance=None)
    assert fit.converged and fit.n_obs == int((data.EVID == 0).sum())
    assert fit.minus2ll == fit.objective          # no continuous record: no log 2 pi constants
    np.testing.assert_allclose(fit.objective, population_objective(
        M, data, iiv=fit.iiv, method="laplace", init=fit.theta), rtol=1e-8)


def test_command_line_fit_needs_no_error_model_for_endpoint_outputs(tmp_path, capsys):
    from pkpd.cli import main

    sim = pkpd.simulate(M, None, [0.0, 300.0], params={"h0": np.full(30, 0.01)}, seed=2, outcomes=["event"])
    path = tmp_path / "tte.csv"
    sim.to_dataframe(layout="nonmem").to_csv(path, index=False)
    assert main(["fit", str(MODEL_FILE), str(path), "--estimate", "h0", "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "parameters.csv")
    t, dv = _event_times(sim, "event")
    np.testing.assert_allclose(table.loc[table.name == "h0", "estimate"].iloc[0], dv.sum() / t.sum(), rtol=1e-6)
    assert (tmp_path / "out" / "km_vpc_event.png").is_file()   # the diagnostic of a time to event
    capsys.readouterr()


def test_simulating_an_ordinal_output_with_crossed_intercepts_is_refused():
    """a2 above a1 gives P(grade 1) < 0: no grade can be drawn from such a model; the simulation says why instead
    of drawing from the 'probabilities' (found with the ordinal fit of the mutation audit, seed 25)."""
    with pytest.raises(pkpd.SimulationError) as exc:
        pkpd.simulate(M.with_parameters(a2=2.0), None, [0.0, 10.0], seed=1, outcomes=["grade"],
                      observe={"grade": [5.0]})
    assert str(exc.value) == ("output 'grade': the cumulative logits must decrease from one category to the next "
                              "(intercepts in decreasing order); check its intercepts and effect")
