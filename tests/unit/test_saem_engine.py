"""SAEM's fast path (issue 16, speed): the chains' predictions through the compiled estimation library, the Newton
step's derivatives from forward sensitivities, the data objective per output, the exploratory phase's stopping
rule and the importance-sampling likelihood's sample size. Each is checked against the slower path it replaces
(the finite-difference engine, central differences, ``_Problem._objective_at``) or against its documented rule."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError
from pkpd.estimation._compiled import available
from pkpd.estimation.population_fit import _setup
from pkpd.nonmem import read_nonmem
from pkpd.saem import (
    SaemSettings,
    _Likelihood,
    _prediction_derivatives,
    _prediction_differences,
    _State,
    exploration_settled,
)

DATA = Path(__file__).resolve().parents[1] / "data"
THEOPH = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
_TABLE = pd.read_csv(DATA / "theoph.csv", na_values=".")
# without the samples at the time of the dose (prediction 0: no likelihood under proportional or log-normal error)
THEOPH_POSITIVE = read_nonmem(_TABLE[~((_TABLE["EVID"] == 0) & (_TABLE["TIME"] == 0))], dose_unit="mg")
needs_compiler = pytest.mark.skipif(not available(), reason="no C compiler: SAEM uses the finite-difference engine")


def _problem(error, iiv=None, data=None, **kw):
    iiv = pkpd.IIV(iiv or {"ka": 0.6, "CL": 0.3})     # V without IIV: a Newton parameter
    data = THEOPH_POSITIVE if data is None else data
    _, _, _, layout, prob = _setup("pk_1cmt_oral", data, iiv, {"conc": error}, "focei",
                                   ["ka", "CL", "V"], None,
                                   pkpd.SolverSettings(), None, **kw)
    st = _State(prob, layout)
    return prob, layout, st, _Likelihood(prob, layout, 2, st.newton_parameters)


def _eta(prob, seed=0):
    return 0.4 * np.random.default_rng(seed).standard_normal((2, prob.n, prob.q))


@needs_compiler
def test_compiled_predictions_equal_the_finite_difference_engine():
    prob, layout, st, lik = _problem(pkpd.Additive(sd=0.7))
    assert lik.fast is not None
    eta = _eta(prob)
    fast = lik.predict(st.typical(layout.x0), eta)
    slow = prob.predict(prob.params(st.typical(layout.x0), eta[None])[0])
    assert fast.shape == slow.shape == (2, prob.n, prob.J)
    np.testing.assert_allclose(fast[:, prob.mask], slow[:, prob.mask], rtol=1e-6)


@needs_compiler
def test_newton_derivatives_from_sensitivities_equal_central_differences():
    for error in (pkpd.Additive(sd=0.7), pkpd.Proportional(cv=0.2)):
        prob, layout, st, lik = _problem(error)
        assert [layout.theta_names[k] for k in st.newton] == ["V"]
        x, eta = layout.x0.copy(), _eta(prob, 1)
        errs = st.errors(x)
        m_a, s_a, dm_a, dR_a, *_ = _prediction_derivatives(st, lik, x, eta, errs)
        m_b, s_b, dm_b, dR_b, *_ = _prediction_differences(st, lik, x, eta, errs)
        mask = prob.mask
        np.testing.assert_allclose(m_a[:, mask], m_b[:, mask], rtol=1e-6)
        np.testing.assert_allclose(s_a[:, mask], s_b[:, mask], rtol=1e-6)
        scale = np.abs(dm_b[:, mask]).max()
        np.testing.assert_allclose(dm_a[:, mask], dm_b[:, mask], rtol=1e-4, atol=1e-6 * scale)
        scale = max(np.abs(dR_b[:, mask]).max(), 1e-12)
        np.testing.assert_allclose(dR_a[:, mask], dR_b[:, mask], rtol=1e-4, atol=1e-6 * scale)
        assert np.abs(dm_a[:, mask]).max() > 0


def test_the_objective_per_output_equals_the_engines():
    for error in (pkpd.Additive(sd=0.7), pkpd.Proportional(cv=0.2), pkpd.LogNormal(sigma=0.3),
                  pkpd.Combined(sd=0.3, cv=0.1, convention="variance"), pkpd.Combined(sd=0.3, cv=0.1, convention="sd")):
        prob, layout, st, lik = _problem(error)
        assert lik.plain
        eta = _eta(prob, 2)
        F = lik.predict(st.typical(layout.x0), eta)
        errs = st.errors(layout.x0)
        reference = prob._objective_at(F, np.zeros_like(eta), [errs] * 2, np.zeros((2, prob.q, prob.q)))
        assert np.all(np.isfinite(reference))
        np.testing.assert_allclose(lik.objective(F, errs), reference, rtol=1e-12)


def test_problems_the_compiled_library_cannot_serve_keep_the_engine():
    table = _TABLE[~((_TABLE["EVID"] == 0) & (_TABLE["TIME"] == 0))]
    table = table.assign(AMTU="mg", OCC=np.where(table["TIME"] < 5.0, 1, 2))
    prob, layout, st, lik = _problem(pkpd.Additive(sd=0.7), iov=pkpd.IOV({"CL": 0.02}), data=table)
    assert lik.fast is None
    eta = _eta(prob, 3)
    F = lik.predict(st.typical(layout.x0), eta)
    np.testing.assert_array_equal(F, prob.predict(prob.params(st.typical(layout.x0), eta[None])[0]))


def test_the_exploratory_stopping_rule():
    rng = np.random.default_rng(4)
    noise = 0.1 * rng.standard_normal((100, 3))
    assert exploration_settled(noise + 1.0, 50)                               # stationary
    assert not exploration_settled(noise[:99] + 1.0, 50)                      # fewer than two windows
    drifting = noise.copy()
    drifting[:, 1] += np.linspace(0.0, 1.0, 100)                              # one parameter still moving
    assert not exploration_settled(drifting, 50)
    assert exploration_settled(np.linspace(0.0, 0.009, 100)[:, None], 50)    # a drift below 0.5 %: settled
    assert not exploration_settled(np.linspace(0.0, 0.02, 100)[:, None], 50)
    # the rule looks at the last two windows only: an early transient does not count
    assert exploration_settled(np.concatenate([np.linspace(5.0, 1.0, 80)[:, None], noise[:, :1] + 1.0]), 50)


def test_saem_stops_its_exploratory_phase_by_the_rule():
    settings = SaemSettings(smoothing=20, n_chains=2, window=20, max_exploratory=100)
    f = pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv={"ka": 0.6, "CL": 0.3, "V": 0.1},
                            error=pkpd.Additive(sd=0.7), method="saem", seed=3, saem=settings, covariance=None,
                            is_samples=100)
    explored = int(f.message.split("(")[1].split(" exploratory")[0])
    assert "stopped by the rule" in f.message
    assert 40 <= explored <= 100
    assert len(f.trace) == explored + 20 + 1
    # the rule held at the iteration it stopped, and not one iteration earlier
    internal = np.log(f.trace.drop(columns="iteration").to_numpy()[1:explored + 1])
    internal[:, 3:6] = 0.5 * internal[:, 3:6]          # omega2 -> log of the Cholesky diagonal (diagonal Omega)
    assert exploration_settled(internal, 20)
    if explored > 40:
        assert not exploration_settled(internal[:-1], 20)


def test_importance_sampling_draws_until_its_standard_error_is_small(monkeypatch):
    # the message names the smallest effective sample size of the subjects' weights and whose it is
    import pkpd.importance

    results = []

    def recording(*args, **kwargs):
        results.append(importance_sampling(*args, **kwargs))
        return results[-1]

    importance_sampling = pkpd.importance.importance_sampling
    monkeypatch.setattr(pkpd.importance, "importance_sampling", recording)
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7), method="laplace",
              objective="is", maxeval=0, covariance=None, init={"ka": 1.6, "CL": 2.75, "V": 31.8})
    auto = pkpd.fit_population("pk_1cmt_oral", THEOPH, seed=1, **kw)
    draws = int(auto.message.split("importance sampling (")[1].split(" draws")[0])
    assert draws % 100 == 0 and 1000 <= draws <= 10000
    assert auto.objective_se <= 0.1 or draws == 10000
    fixed = pkpd.fit_population("pk_1cmt_oral", THEOPH, seed=1, is_samples=300, **kw)
    ess = results[-1].ess
    assert ess.shape == (12,) and np.all((1 <= ess) & (ess <= 300)) and np.ptp(ess) > 1
    low = int(np.argmin(ess))
    assert (f"(300 draws per subject; effective sample size {ess[low]:.0f} at the least, subject "
            f"{list(dict.fromkeys(_TABLE['ID']))[low]})") in fixed.message
    assert fixed.objective_se > auto.objective_se
    with pytest.raises(FitError, match="is_samples"):
        pkpd.fit_population("pk_1cmt_oral", THEOPH, seed=1, is_samples=5, **kw)


def test_bad_stopping_rule_settings():
    with pytest.raises(FitError, match="window"):
        SaemSettings(window=0)
    with pytest.raises(FitError, match="two windows"):
        SaemSettings(window=50, max_exploratory=60)
    with pytest.raises(FitError, match="exploratory"):
        SaemSettings(exploratory=2.5)
    assert SaemSettings(exploratory=10, window=50, max_exploratory=60).exploratory == 10


def _msc_problem():
    """Four MSC patients, PGE2 and IL-10 at 4 times (two outputs; EC50 and e_max without IIV: Newton parameters)."""
    model = pkpd.load_model("msc_salvadori")
    times = [4.0, 24.0, 72.0, 168.0]
    pop = pkpd.virtual_population(4, {"WT": pkpd.LogNormalCovariate(70, 0.2)}, seed=1)
    wt = pop.table["WT"].to_numpy()
    sim = pkpd.simulate_population(model, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), times, pop,
                                   iiv=pkpd.IIV({"k_c": 0.09, "s_p": 0.09, "k_i": 0.04}), seed=2,
                                   outputs=["PGE2", "IL10"]).simulation
    rows = []
    for i in range(4):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=2e6, EVID=1, CMT="iv", MDV=1, DVID=".", WT=wt[i]))
        for j, t in enumerate(times):
            for o in ("PGE2", "IL10"):
                rows.append(dict(ID=i + 1, TIME=t, DV=float(sim.outputs[o][i, j]) * 1.1, AMT=0.0, EVID=0, CMT=".",
                                 MDV=0, DVID=o, WT=wt[i]))
    data = read_nonmem(pd.DataFrame(rows), model, dose_unit="cell/kg")
    error = {"PGE2": pkpd.Proportional(cv=0.2), "IL10": pkpd.Proportional(cv=0.2)}
    _, _, _, layout, prob = _setup(model, data, pkpd.IIV({"k_c": 0.2, "s_p": 0.2, "k_i": 0.1}), error, "focei",
                                   ["k_c", "s_p", "EC50", "e_max", "k_i"], None, pkpd.SolverSettings(), None)
    st = _State(prob, layout)
    return prob, layout, st, _Likelihood(prob, layout, 2, st.newton_parameters)


@needs_compiler
def test_two_outputs_and_two_newton_parameters_on_the_compiled_path():
    prob, layout, st, lik = _msc_problem()
    assert lik.fast is not None and set(prob.which[prob.mask].tolist()) == {0, 1}
    assert sorted(layout.theta_names[k] for k in st.newton) == ["EC50", "e_max"]
    x, eta = layout.x0.copy(), _eta(prob, 5)
    fast = lik.predict(st.typical(x), eta)
    slow = prob.predict(prob.params(st.typical(x), eta[None])[0])
    np.testing.assert_allclose(fast[:, prob.mask], slow[:, prob.mask], rtol=1e-6)
    errs = st.errors(x)
    _, _, dm_a, dR_a, *_ = _prediction_derivatives(st, lik, x, eta, errs)
    _, _, dm_b, dR_b, *_ = _prediction_differences(st, lik, x, eta, errs)
    for a, b in ((dm_a, dm_b), (dR_a, dR_b)):
        scale = np.abs(b[:, prob.mask]).max()
        np.testing.assert_allclose(a[:, prob.mask], b[:, prob.mask], rtol=1e-3, atol=1e-5 * scale)


def test_the_message_says_when_the_rule_did_not_stop_the_exploration():
    settings = SaemSettings(smoothing=5, n_chains=1, window=10, max_exploratory=20)
    f = pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv={"ka": 0.6, "CL": 0.3, "V": 0.1},
                            error=pkpd.Additive(sd=0.7), method="saem", seed=3, saem=settings, covariance=None,
                            is_samples=50, init={"ka": 0.3, "CL": 20.0, "V": 5.0})   # far away: still moving at 20
    assert "(20 exploratory, the most the stopping rule allows: a parameter still drifted, 5 smoothing)" in f.message
    assert len(f.trace) == 26
