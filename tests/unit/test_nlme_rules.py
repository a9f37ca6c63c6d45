"""Rules of the population fit (pkpd/estimation) that the mutation audit (issue 20) left unguarded, one test per
rule, each against an answer computed independently of the path under test (the other path of the same code, a
plain simulation, central differences). Each was seen to fail with its mutant applied by hand (commit messages)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import nlme
from pkpd.estimation.population_fit import _objective_engine, _setup
from pkpd.load import load_model, model_from_dict, tomllib
from pkpd.population import IIV

DATA = Path(__file__).resolve().parents[1] / "data"
WANG = DATA / "wang2007" / "wang2007.csv"

# no dose: A starts at B0 / D and decays at rate K, so A(t) = B0 / D exp(-K t); D = 0 gives a start of inf while every
# parameter itself is finite
DECAY = load_model(DATA / "models" / "decay_from_a_ratio.toml")


def _decay_problem(data):
    """The finite-difference engine's problem of DECAY (IIV on K, additive error) for ``data``, tight tolerances."""
    *_, prob = _setup(DECAY, data, {"K": 0.1}, {"amount": pkpd.Additive(sd=0.1)}, "foce", None, None,
                      pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    return prob


def test_cwres_subject_by_subject_equal_the_batched_ones(monkeypatch):
    """When the batched Cholesky factor of the CWRES covariances fails, each subject is factored alone: the same
    conditional weighted residuals as the batch on the same fit (Wang 2007, FOCE-I at NONMEM's estimates)."""
    kw = dict(iiv={"ke": 0.04}, error=pkpd.Proportional(cv=0.316228), maxeval=0, covariance=None)
    batched = pkpd.fit_population("wang2007", WANG, **kw)
    cholesky = np.linalg.cholesky

    def no_batches(a, *args, **kwargs):
        if np.ndim(a) > 2:
            raise np.linalg.LinAlgError("batched factor refused by the test")
        return cholesky(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "cholesky", no_batches)
    single = pkpd.fit_population("wang2007", WANG, **kw)
    assert single.objective == batched.objective
    assert np.all(np.isfinite(batched.table["CWRES"]))
    np.testing.assert_allclose(single.table["CWRES"], batched.table["CWRES"], rtol=1e-12, atol=1e-14)


def test_finite_difference_predictions_flag_only_the_subjects_whose_initial_state_is_not_finite():
    """The finite-difference engine's batch of 4 subjects: subjects 2 and 4 have D = 0 (initial state inf), 1 and 3
    finite ones. The bad rows are NaN; the good ones are the closed form B0 / D exp(-K t) of their own parameters."""
    times = np.array([0.0, 2.0, 6.0])  # the state starts at the first record (NONMEM too)
    data = pd.DataFrame({"ID": np.repeat([1, 2, 3, 4], 3), "TIME": np.tile(times, 4), "DV": 1.0, "EVID": 0, "AMT": 0.0})
    prob = _decay_problem(data)
    assert type(prob).__name__ == "_Problem" and DECAY.parameter_names == ("B0", "D", "K")
    P = np.array([[[10.0, 2.0, 0.3], [10.0, 0.0, 0.3], [6.0, 4.0, 0.5], [8.0, 0.0, 0.2]]])
    F = prob.predict(P)
    assert F.shape == (1, 4, 3)
    assert np.all(np.isnan(F[0, [1, 3]]))
    for i in (0, 2):
        b0, d, k = P[0, i]
        np.testing.assert_allclose(F[0, i], b0 / d * np.exp(-k * times), rtol=1e-7)


# an IV bolus model whose concentration has an additive baseline BASE, typical value exactly 0
BASELINE_TOML = """
[model]
name = "iv_with_baseline"
time_unit = "h"
[parameters.CL]
value = 2.8
unit = "L/h"
[parameters.V]
value = 32.0
unit = "L"
[parameters.BASE]
value = 0.0
unit = "mg/L"
[states.central]
unit = "mg"
initial = "0"
ddt = "-CL / V * central"
[outputs.conc]
expression = "central / V + BASE"
unit = "mg/L"
[doses.iv]
target = "central"
unit = "mg"
"""
BASELINE = model_from_dict(tomllib.loads(BASELINE_TOML))


@pytest.mark.skipif(
    not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
    reason="the compiled inner problem needs a C compiler",
)
def test_compiled_objective_with_a_random_parameter_whose_typical_value_is_zero(monkeypatch):
    """BASE (normal IIV) has typical value 0, where the compiled sensitivities take the scale 1 (a parameter's
    magnitude elsewhere): the compiled FOCE-I objective equals the finite-difference engine's (central differences
    in eta, no scaling), to the 1e-5 of tests/unit/test_nlme_engines.py. Six simulated subjects, seed 1."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(1, 7):
        cl, base = 2.8 * np.exp(0.3 * rng.standard_normal()), 0.3 * rng.standard_normal()
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, AMT=100.0, EVID=1, AMTU="mg"))
        for t in (1.0, 2.0, 4.0, 8.0, 12.0):
            dv = 100 / 32 * np.exp(-cl / 32 * t) + base + 0.1 * rng.standard_normal()
            rows.append(dict(ID=i, TIME=t, DV=dv, AMT=0.0, EVID=0, AMTU="mg"))
    data = pd.DataFrame(rows)
    iiv = IIV({"CL": 0.09, "BASE": 0.1}, distribution={"CL": "lognormal", "BASE": "normal"})
    kw = dict(
        iiv=iiv, error=pkpd.Additive(sd=0.1), method="focei", settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12)
    )
    *_, layout, prob = _setup(BASELINE, data, iiv, kw["error"], "focei", None, None, kw["settings"], None)
    assert _objective_engine(prob, layout) is not None
    compiled = nlme.population_objective(BASELINE, data, **kw)
    import pkpd.estimation._compiled as c

    monkeypatch.setattr(c, "available", lambda: False)
    assert _objective_engine(prob, layout) is None
    finite_difference = nlme.population_objective(BASELINE, data, **kw)
    assert np.isfinite(compiled)
    assert compiled == pytest.approx(finite_difference, abs=1e-5)


def test_html_summary_of_a_fit_at_nonmems_estimates():
    """PopulationFit's notebook summary: the model, method, OFV (NONMEM 7.5.1's 39.458 for Wang 2007, FOCE-I at
    tke 0.5, omega^2 0.04, cv 0.316228), AIC = -2LL + 2k with -2LL = OFV + n log(2 pi) (n = 20 observations, k = 3),
    whether it converged and why, each estimate to 5 significant digits (no SE: maxeval=0 skips the covariance
    step), and the eta shrinkage 1 - SD(eta)/omega (in %, SD of the fit's EBEs, ddof 1) to 1 decimal."""
    import math
    import re

    fit = pkpd.fit_population(
        "wang2007",
        WANG,
        iiv={"ke": 0.04},
        error=pkpd.Proportional(cv=0.316228),
        maxeval=0,
        settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12),
    )
    aic = 39.458 + 20 * math.log(2 * math.pi) + 2 * 3
    shrinkage = 100 * (1 - np.std(fit.eta[:, 0], ddof=1) / math.sqrt(0.04))
    expected = (
        f"<p><b>wang2007 FOCEI: OFV 39.458, AIC {aic:.2f}; converged (objective evaluated at the initial values "
        "(maxeval=0))</b></p><table><tr><th>parameter</th><th>estimate</th><th>SE</th><th>RSE %</th></tr>"
        "<tr><td>ke</td><td>0.5</td><td></td><td></td></tr><tr><td>omega2_ke</td><td>0.04</td><td></td><td></td></tr>"
        "<tr><td>cv</td><td>0.31623</td><td></td><td></td></tr></table>"
        f"<p>η shrinkage: ke {shrinkage:.1f} %. Covariance: skipped (maxeval=0)</p>"
    )
    assert re.fullmatch(r"\d\d\.\d", f"{shrinkage:.1f}")
    assert fit._repr_html_() == expected


WANG_SAEM = dict(iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="saem", covariance=None, is_samples=100)


def test_saem_message_says_the_rule_stopped_exploration_only_when_a_rule_was_used():
    """SaemSettings(exploratory=6, smoothing=4): exactly 6 + 4 iterations, and the message must not claim that the
    stopping rule ended the exploratory phase. Without exploratory (the rule, window 5, at most 50 iterations): a
    phase shorter than its maximum was ended by the rule, and the message says so."""
    from pkpd.saem import SaemSettings

    # the importance-sampling part ends with the smallest effective sample size (of 100 draws) and its subject
    is_text = (r"-2 log L by importance sampling \(100 draws per subject; effective sample size \d+ at the least, "
               r"subject \d+\)")
    fixed = pkpd.fit_population(
        "wang2007", WANG, seed=1, saem=SaemSettings(exploratory=6, smoothing=4, n_chains=1), **WANG_SAEM
    )
    assert fixed.trace.shape[0] == 6 + 4 + 1
    head = "SAEM: 10 iterations (6 exploratory, 4 smoothing), 1 chain(s) per subject; "
    assert re.fullmatch(re.escape(head) + is_text, fixed.message)
    ruled = pkpd.fit_population(
        "wang2007",
        WANG,
        seed=1,
        saem=SaemSettings(smoothing=2, n_chains=1, window=5, max_exploratory=50),
        **WANG_SAEM,
    )
    k1 = ruled.trace.shape[0] - 1 - 2
    assert 2 * 5 <= k1 < 50
    assert re.fullmatch(re.escape(f"SAEM: {k1 + 2} iterations ({k1} exploratory, stopped by the rule, 2 smoothing), "
                                  "1 chain(s) per subject; ") + is_text, ruled.message)


def test_without_a_c_compiler_the_finite_difference_path_is_taken_and_the_reason_given(monkeypatch):
    """No C compiler found (or PKPD_ENGINE=numba): the compiled objective cannot serve, and the reason reads
    "no C compiler (or PKPD_ENGINE=numba)"; a posterior (pkpd.sample) reports its derivatives as "central
    differences: " and that reason. With a compiler and no PKPD_ENGINE, there is no reason (the compiled path)."""
    import pkpd._native
    import pkpd.estimation._compiled as compiled
    from pkpd.estimation.population_fit import _compiled_unsupported
    from pkpd.priors import NormalPrior

    reason = "no C compiler (or PKPD_ENGINE=numba)"
    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None, None, None)
    monkeypatch.delenv("PKPD_ENGINE", raising=False)
    with monkeypatch.context() as m:
        m.setattr(pkpd._native, "compiler", lambda: None)
        assert _compiled_unsupported(prob, layout) == reason
        assert _objective_engine(prob, layout) is None
    if pkpd._native.compiler() is not None:
        assert _compiled_unsupported(prob, layout) == ""
        with monkeypatch.context() as m:
            m.setenv("PKPD_ENGINE", "numba")
            assert _compiled_unsupported(prob, layout) == reason

    line = pkpd.Model(
        name="line",
        time_unit="h",
        parameters=(
            pkpd.Parameter("a", 0.0, "mg/L", (-100.0, 100.0), prior=NormalPrior(4.0, 0.5)),
            pkpd.Parameter("b", 0.0, "mg/L/h", (-100.0, 100.0), prior=NormalPrior(1.0, 0.2)),
        ),
        states=(pkpd.State("A", "mg/L", "0", "0 * b"),),
        outputs=(pkpd.Output("y", "A + a + b * t", "mg/L"),),
    )
    t = np.linspace(1.0, 10.0, 8)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": 4.0 + 0.5 * t})
    # only the estimation library is refused: the simulations behind the central differences keep the native engine
    monkeypatch.setattr(compiled, "available", lambda: False)
    post = pkpd.sample(
        line,
        data,
        estimate=["a", "b"],
        error={"y": pkpd.Additive(sd=0.4, fixed=True)},
        n_warmup=20,
        n_draws=10,
        n_chains=1,
        seed=1,
    )
    assert post.derivatives == "central differences: " + reason


def test_a_population_fit_says_which_engine_computed_it_and_why_not_the_compiled_one(monkeypatch):
    """The same Wang 2007 FOCE fit on both engines: the same objective (the two engines agree to 1e-5), and the
    result says which one ran, with the reason when it is the slow finite-difference path (no C compiler here)."""
    import pkpd.estimation._compiled as compiled

    if not compiled.available():
        pytest.skip("needs the compiled estimation library for the comparison")
    kw = dict(iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="foce")
    fast = pkpd.fit_population("wang2007", WANG, **kw)
    assert fast.engine == "compiled"
    assert repr(fast).endswith("\n  engine: compiled")
    monkeypatch.setattr(compiled, "available", lambda: False)
    slow = pkpd.fit_population("wang2007", WANG, **kw)
    assert slow.engine == "finite differences: no C compiler (or PKPD_ENGINE=numba)"
    assert slow.objective == pytest.approx(fast.objective, abs=1e-4)


def _baseline_study(seed: int = 2) -> pd.DataFrame:
    """Six subjects of BASELINE, GRP 1 for subjects 1-3 (their baseline 1.5 times the others')."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, 7):
        grp = float(i <= 3)
        cl, base = 2.8 * np.exp(0.3 * rng.standard_normal()), 0.5 * (1 + 0.5 * grp) + 0.2 * rng.standard_normal()
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, AMT=100.0, EVID=1, AMTU="mg", GRP=grp))
        for t in (1.0, 2.0, 4.0, 8.0, 12.0):
            dv = 100 / 32 * np.exp(-cl / 32 * t) + base + 0.1 * rng.standard_normal()
            rows.append(dict(ID=i, TIME=t, DV=dv, AMT=0.0, EVID=0, AMTU="mg", GRP=grp))
    return pd.DataFrame(rows)


@pytest.mark.skipif(
    not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
    reason="the compiled inner problem needs a C compiler",
)
def test_compiled_gradient_by_a_natural_scale_typical_value_with_an_indicator_effect():
    """BASE (no bounds, so estimated on the natural scale) times the indicator factor 1 + b [GRP > 0.5], b = 0.4:
    the compiled FOCE-I gradient of the OFV by BASE's typical value carries the factor (1.4 for GRP 1, 1 for GRP 0)
    and equals central differences (h = 1e-5) of the compiled objective itself, as does the one by b."""
    model = model_from_dict(
        tomllib.loads(
            BASELINE_TOML.replace('name = "iv_with_baseline"', 'name = "iv_with_baseline_grp"')
            + '[covariates.GRP]\nunit = "1"\nvalue = 0\n'
        )
    )
    data = _baseline_study()
    iiv = IIV({"CL": 0.09, "BASE": 0.04}, distribution={"CL": "lognormal", "BASE": "normal"})
    effect = pkpd.CovariateEffect(parameter="BASE", kind="indicator", condition="GRP > 0.5", value=0.4)
    *_, layout, prob = _setup(
        model,
        data,
        iiv,
        pkpd.Additive(sd=0.1),
        "focei",
        None,
        None,
        pkpd.SolverSettings(rtol=1e-10, atol=1e-12),
        {"BASE": 0.5},
        effects=[effect],
    )
    engine = _objective_engine(prob, layout)
    assert engine is not None
    k = list(layout.theta_names).index("BASE")
    assert not layout.theta_log[k] and layout.x0[k] == 0.5
    x = layout.x0.copy()
    grad = engine.evaluate(x, None).gradient.sum(axis=0)
    e = x.size - 1  # the coefficient b, the last internal parameter
    assert x[e] == pytest.approx(0.4)
    for j in (k, e):
        h = np.zeros_like(x)
        h[j] = 1e-5
        up = engine.evaluate(x + h, None, gradient=False).ofv.sum()
        down = engine.evaluate(x - h, None, gradient=False).ofv.sum()
        assert grad[j] == pytest.approx((up - down) / 2e-5, rel=1e-4, abs=1e-4)


def test_endpoint_records_count_as_observations_in_n_obs_and_bic():
    """Joint PK + time-to-event data (tests/data/models/endpoints_exposure.toml): 4 subjects, conc at 1, 6, 24 h and
    one event record each (event or censoring at 48 h), so n_obs = 4 x 3 + 4 = 16, and BIC = -2LL + k log 16 with
    k = 4 typical values + 2 variances + 1 residual sigma = 7 (Laplace at fixed values, maxeval=0)."""
    import math

    model = pkpd.load_model(DATA / "models" / "endpoints_exposure.toml")
    rng = np.random.default_rng(3)
    true = {"k": 0.1, "V": 10.0, "h0": 0.01, "h1": 0.005}
    sim = pkpd.simulate(
        model,
        pkpd.Regimen.single(pkpd.Dose(100.0, "mg")),
        [0.0, 48.0],
        params={k: np.full(4, v) for k, v in true.items()},
        seed=3,
        outcomes=["event"],
    )
    conc = [
        {"ID": i, "TIME": t, "EVID": 0, "MDV": 0.0, "AMT": 0.0, "AMTU": ".", "CMT": ".", "RATE": 0.0, "X": 0.0}
        | {"DV": 10.0 * np.exp(-0.1 * t + 0.15 * rng.standard_normal()), "DVID": "conc"}
        for i in range(1, 5)
        for t in (1.0, 6.0, 24.0)
    ]
    data = pd.concat([sim.to_dataframe(layout="nonmem"), pd.DataFrame(conc)], ignore_index=True)
    data = data.sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)
    assert int((data.EVID == 0).sum()) == 16 and int((data.DVID == "event").sum()) == 4
    fit = pkpd.fit_population(
        model,
        data,
        iiv={"k": 0.09, "V": 0.04},
        error={"conc": pkpd.LogNormal(sigma=0.15)},
        method="laplace",
        estimate=["k", "V", "h0", "h1"],
        init=true,
        maxeval=0,
        covariance=None,
    )
    assert fit.n_obs == 16 and np.isfinite(fit.minus2ll)
    assert fit.bic == pytest.approx(fit.minus2ll + 7 * math.log(16), rel=1e-12)
    assert fit.aic == pytest.approx(fit.minus2ll + 2 * 7, rel=1e-12)


def test_a_covariate_coefficient_is_reported_dimensionless():
    """BASELINE with an indicator effect on BASE (BASE = theta (1 + b [GRP > 0.5])): b is a ratio, unit "1", and
    every row of the parameter table has its unit: the typical values their model units, the variance of the
    log-normal CL "1", that of the normal BASE (mg/L)^2, the additive sd mg/L."""
    model = model_from_dict(
        tomllib.loads(
            BASELINE_TOML.replace('name = "iv_with_baseline"', 'name = "iv_with_baseline_grp"')
            + '[covariates.GRP]\nunit = "1"\nvalue = 0\n'
        )
    )
    iiv = IIV({"CL": 0.09, "BASE": 0.04}, distribution={"CL": "lognormal", "BASE": "normal"})
    fit = pkpd.fit_population(
        model,
        _baseline_study(),
        iiv=iiv,
        error=pkpd.Additive(sd=0.1),
        estimate=["CL", "BASE"],
        init={"BASE": 0.5},
        covariates=[pkpd.CovariateEffect(parameter="BASE", kind="indicator", condition="GRP > 0.5", value=0.4)],
        maxeval=0,
        covariance=None,
    )
    assert fit.units == {
        "CL": "L/h",
        "BASE": "mg/L",
        "omega2_CL": "1",
        "omega2_BASE": "(mg/L)*(mg/L)",
        "sd": "mg/L",
        "[GRP > 0.5]_on_BASE": "1",
    }
    assert list(fit.parameter_table()["unit"]) == list(fit.units.values())


def test_record_by_record_predictions_of_a_failed_subject_are_nan_at_its_observations():
    """DECAY with a reset (EVID 3) at 3 h, so the finite-difference engine simulates record by record: subject 2
    (three observations, the fourth slot padding) with D = 0 (initial state inf) cannot be solved, and its observed
    predictions are NaN, never a silent 0; with finite parameters both subjects follow the closed form
    B0 / D exp(-K t), restarted at the reset."""
    rows = []
    for i, records in (
        (1, ((0.0, 0), (2.0, 0), (3.0, 3), (4.0, 0), (6.0, 0))),
        (2, ((0.0, 0), (2.0, 0), (3.0, 3), (4.0, 0))),
    ):
        rows += [dict(ID=i, TIME=t, DV=np.nan if ev else 1.0, EVID=ev, AMT=0.0) for t, ev in records]
    prob = _decay_problem(pd.DataFrame(rows))
    assert prob.data.records is not None
    np.testing.assert_array_equal(prob.mask, [[True] * 4, [True, True, True, False]])
    good = np.array([[[10.0, 2.0, 0.3], [6.0, 4.0, 0.5]]])
    F = prob.predict(good)
    for i, (b0, d, k) in enumerate(good[0]):
        expected = b0 / d * np.exp(-k * np.array([0.0, 2.0, 1.0, 3.0]))
        np.testing.assert_allclose(F[0, i, : 4 - i], expected[: 4 - i], rtol=1e-7)
    failed = prob.predict(np.array([[[10.0, 2.0, 0.3], [10.0, 0.0, 0.3]]]))
    assert np.all(np.isnan(failed[0, 1, :3]))
    # the subject solved in the same batch keeps its own predictions
    np.testing.assert_allclose(failed[0, 0], 10.0 / 2.0 * np.exp(-0.3 * np.array([0.0, 2.0, 1.0, 3.0])), rtol=1e-7)


def test_an_fo_fit_says_which_r_matrix_its_covariance_used():
    """Wang 2007 by FO on the compiled engine, sandwich covariance: r_matrix="observed" takes R from central
    differences of the analytic gradient, r_matrix="expected" from the FO objective's closed-form expected
    information, and the covariance message says which, in full. Both are estimates of the same information, so
    the SEs agree to 25 %."""
    import pkpd.estimation._compiled as compiled

    if not compiled.available():
        pytest.skip("the expected information of FO needs the compiled engine")
    kw = dict(iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="fo")
    observed = pkpd.fit_population("wang2007", WANG, r_matrix="observed", **kw)
    expected = pkpd.fit_population("wang2007", WANG, r_matrix="expected", **kw)
    assert observed.covariance_message == (
        "sandwich R^-1 S R^-1; R: the observed Hessian (central differences of the analytic gradient)"
    )
    assert expected.covariance_message == (
        "sandwich R^-1 S R^-1; R: the expected information of the FO objective (closed form)"
    )
    se_o, se_e = (f.parameters.set_index("name")["se"] for f in (observed, expected))
    assert np.all(np.isfinite(se_o)) and np.all(se_o > 0)
    np.testing.assert_allclose(se_o, se_e, rtol=0.25)


def test_saem_linearises_with_focei_on_uncensored_continuous_data():
    """A short SAEM fit of Wang 2007 (additive error, no BLQ, no endpoint records): its covariance comes from
    FOCE-I at the SAEM estimates (the message says so), i.e. the sandwich covariance of a FOCE-I problem set up
    at those estimates gives the same standard errors, and a Laplace one (the method for censored data or
    endpoint records) different ones."""
    from pkpd.estimation.population_fit import _covariance_step, _FiniteDifferenceRun, _GradientRun
    from pkpd.saem import SaemSettings

    error = pkpd.Additive(sd=0.3)
    fit = pkpd.fit_population(
        "wang2007",
        WANG,
        iiv={"ke": 0.04},
        error=error,
        method="saem",
        seed=1,
        saem=SaemSettings(exploratory=6, smoothing=4, n_chains=1),
        is_samples=100,
    )
    assert fit.covariance_message == "by linearisation (FOCEI at the SAEM estimates): sandwich R^-1 S R^-1"
    est = fit.parameters.set_index("name")["estimate"]
    se = {}
    for method in ("focei", "laplace"):
        *_, layout, prob = _setup(
            "wang2007",
            WANG,
            {"ke": est["omega2_ke"]},
            pkpd.Additive(sd=est["sd"]),
            method,
            None,
            None,
            None,
            {"ke": est["ke"]},
        )
        engine = _objective_engine(prob, layout)
        run = _GradientRun(engine, prob, layout) if engine is not None else _FiniteDifferenceRun(prob, layout)
        run.start(layout.x0)
        cov, _ = _covariance_step(layout, layout.x0, run, "sandwich", ["ke", "omega2_ke", "sd"])
        se[method] = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(fit.parameters["se"], se["focei"], rtol=1e-6)
    assert np.max(np.abs(se["laplace"] / se["focei"] - 1)) > 1e-3


@pytest.mark.skipif(
    not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
    reason="the compiled inner problem needs a C compiler",
)
def test_compiled_objective_flags_every_subject_when_omega_is_not_positive_definite():
    """Wang 2007 (10 subjects), FOCE-I: a log Cholesky diagonal of -800 makes Omega = exp(-800)^2 = 0 in floating
    point, which has no Cholesky factor: every subject's OFV is NaN with status -1 (no gradient, zero modes), so the
    optimiser sees a failure it can step back from, not an exception."""
    *_, layout, prob = _setup("wang2007", WANG, {"ke": 0.04}, pkpd.Additive(sd=0.3), "focei", None, None, None, None)
    engine = _objective_engine(prob, layout)
    x = layout.x0.copy()
    assert layout.chol_index == ((0, 0),) and x[1] == pytest.approx(np.log(0.2))
    x[1] = -800.0
    ev = engine.evaluate(x, None)
    assert prob.n == 10 and ev.gradient is None
    assert np.all(np.isnan(ev.ofv)) and ev.ofv.shape == (10,)
    np.testing.assert_array_equal(ev.status, np.full(10, -1))
    np.testing.assert_array_equal(ev.eta, np.zeros((10, 1)))


def test_finite_difference_predictions_of_per_kg_doses_scale_with_each_subjects_weight():
    """pk_1cmt_oral (bioavailability F, so the doses depend on the parameters and are rebuilt per batch) with a
    dose of 1 mg/kg at 0 h to subjects of 60 and 80 kg: the finite-difference engine's predictions are the Bateman
    function F D ka / (V (ka - k)) (exp(-k t) - exp(-ka t)), k = CL/V, with D = WT x 1 mg."""
    model = pkpd.load_model("pk_1cmt_oral")
    rows = []
    for i, wt in ((1, 60.0), (2, 80.0)):
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, EVID=1, AMT=1.0, AMTU="mg/kg", WT=wt))
        rows += [dict(ID=i, TIME=t, DV=1.0, EVID=0, AMT=0.0, AMTU="mg/kg", WT=wt) for t in (1.0, 4.0, 8.0)]
    *_, prob = _setup(
        model,
        pd.DataFrame(rows),
        {"CL": 0.1},
        pkpd.Proportional(cv=0.1),
        "foce",
        None,
        None,
        pkpd.SolverSettings(rtol=1e-10, atol=1e-12),
        None,
    )
    assert type(prob).__name__ == "_Problem" and prob.events_depend
    assert model.parameter_names == ("ka", "CL", "V", "F")
    ka, cl, v, f = 1.2, 4.0, 40.0, 0.7
    F = prob.predict(np.array([[[ka, cl, v, f], [ka, cl, v, f]]]))
    t = np.array([1.0, 4.0, 8.0])
    k = cl / v
    for i, wt in enumerate((60.0, 80.0)):
        expected = f * wt * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
        np.testing.assert_allclose(F[0, i], expected, rtol=1e-6)
