"""Analytic gradients of the population objective (issue 15): equal to central differences on every shipped model.

For each shipped model, a small synthetic study (4 subjects, one or two outputs, a dose into its first usable dose
target) is simulated from the model with log-normal between-subject variability and 10 % noise; at a point away
from the initial values, the gradient of FOCE-I, FOCE, FO and Laplace (sensitivity equations and the implicit
function theorem at the EBEs) must equal central differences of the objective itself (step 1e-4 on the internal
scale, both solved at tight tolerances), within 1e-5 relative (absolute 1e-5 for components below 1). Each model
takes another residual error model (combined in both conventions, log-normal, proportional, additive), and one
case has observations below the limit of quantification (M3, Laplace).

The per-subject assembly of the objective and its derivatives runs in compiled C on the engine's threads
(:mod:`pkpd.estimation._assembly_template`); it must equal the numpy assembly from jets (the reference,
``PopulationObjective.assembly = "numpy"``) to rounding, for every method, error model, censoring and random-effect
transformation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import nlme

pytestmark = pytest.mark.skipif(not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
                                reason="the compiled inner problem needs a C compiler")

TIGHT = pkpd.SolverSettings(rtol=1e-11, atol=1e-13)
TIMES = np.array([0.5, 2.0, 6.0, 12.0, 24.0, 48.0])

# model -> (observed outputs, dose target or None, dose amount, IIV parameters, estimated parameters)
CASES = {
    "msc_biodistribution": (("lung_cells", "liver_cells"), "iv", 1.4e8, ("k_b", "k_c_lung"),
                            ("k_b", "k_c_lung", "k_c_liver")),
    "msc_salvadori": (("PGE2", "IL10"), "iv", 1.4e8, ("k_c", "s_p"), ("k_c", "s_p", "EC50")),
    "msc_sepsis": (("PGE2", "IL10"), "iv", 1.4e8, ("k_c", "s_p"), ("k_c", "s_p", "k_p")),
    "nmtest_1cmt_oral": (("CP",), "depot", 100.0, ("CL", "V"), ("CL", "V", "KA")),
    "pk_1cmt_iv": (("conc",), "iv", 100.0, ("CL", "V"), ("CL", "V")),
    "pk_1cmt_oral": (("conc",), "oral", 320.0, ("ka", "CL"), ("ka", "CL", "V")),
    "pk_2cmt_iv": (("conc",), "iv", 100.0, ("CL", "V1"), ("CL", "V1", "Q")),
    "pk_2cmt_oral": (("conc",), "oral", 100.0, ("ka", "CL"), ("ka", "CL", "V1")),
    "tmdd": (("free_drug", "total_target"), "iv", 700.0, ("kel", "kon"), ("kel", "kon", "kint")),
    "wang2007": (("f",), None, 0.0, ("ke",), ("ke",)),
}


def _study(name: str, seed: int = 1) -> pd.DataFrame:
    model = pkpd.load_model(name)
    outputs, target, amount, iiv, _ = CASES[name]
    rng = np.random.default_rng(seed)
    n = 4
    params = {p: model.parameter(p).value * np.exp(rng.normal(0.0, 0.3, n)) for p in iiv}
    regimen = (pkpd.Regimen.single(pkpd.Dose(amount, model.dose_target(target).unit), target=target)
               if target else pkpd.Regimen.none())
    sim = pkpd.simulate(model, regimen, TIMES, params=params)
    rows = []
    for i in range(n):
        if target:
            rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=amount, AMTU=model.dose_target(target).unit, EVID=1,
                                 CMT=target, MDV=1, DVID="."))
        for j, t in enumerate(TIMES):
            for o in outputs:
                y = sim.outputs[o][i, j] * np.exp(0.1 * rng.standard_normal())
                rows.append(dict(ID=i + 1, TIME=t, DV=y, AMT=0.0, EVID=0, CMT=".", MDV=0, DVID=o))
    table = pd.DataFrame(rows)
    return table if len(outputs) > 1 else table.drop(columns="DVID")


# every error model, model by model (the first output's; a second output takes the next one)
ERRORS = (pkpd.Combined(sd=0.01, cv=0.15, convention="variance"), pkpd.LogNormal(sigma=0.15),
          pkpd.Proportional(cv=0.15), pkpd.Combined(sd=0.01, cv=0.15, convention="sd"), pkpd.Additive(sd=0.5))


def _objective(name: str, method: str, data=None, blq=None, iiv=None):
    outputs, _, _, eta_params, estimate = CASES[name]
    k = sorted(CASES).index(name)
    error = {o: ERRORS[(k + j) % len(ERRORS)] for j, o in enumerate(outputs)}
    iiv = {p: 0.09 for p in eta_params} if iiv is None else iiv
    _, _, _, layout, prob = nlme._setup(name, _study(name) if data is None else data, iiv, error,
                                        method, estimate, blq, TIGHT, None)
    engine = nlme._objective_engine(prob, layout)
    assert engine is not None, nlme._compiled_unsupported(prob, layout)
    return engine, layout


def _check(engine, layout):
    x = layout.x0 + 0.05 * np.cos(np.arange(layout.x0.size))       # away from the initial values
    with np.errstate(all="ignore"):
        ev = engine.evaluate(x, None)
        assert np.all(ev.status == 0)
        g = ev.gradient.sum(axis=0)
        h = 1e-4
        fd = np.empty_like(g)
        for k in range(x.size):
            e = np.zeros_like(x)
            e[k] = h
            up = engine.evaluate(x + e, ev.eta, gradient=False).ofv.sum()
            down = engine.evaluate(x - e, ev.eta, gradient=False).ofv.sum()
            fd[k] = (up - down) / (2 * h)
    err = np.abs(g - fd) / np.maximum(np.abs(fd), 1.0)
    assert err.max() < 1e-5, dict(zip(layout.names(), zip(g, fd)))


@pytest.mark.parametrize("method", ["focei", "foce", "fo", "laplace"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_analytic_gradient_equals_central_differences(name, method):
    _check(*_objective(name, method))


def test_laplace_gradient_with_censored_observations():
    """M3: observations below an LLOQ enter as -2 log Phi((LLOQ - f)/sd), with their derivatives up to third
    order (the Laplace log-determinant's gradient)."""
    data = _study("pk_1cmt_oral")
    obs = data["EVID"] == 0
    dv = pd.to_numeric(data["DV"], errors="coerce")
    lloq = float(np.quantile(dv[obs], 0.3))
    data["LLOQ"] = np.where(obs, lloq, np.nan)
    data["BLQ"] = np.where(obs & (dv < lloq), 1, 0)
    assert data["BLQ"].sum() >= 5
    _check(*_objective("pk_1cmt_oral", "laplace", data, pkpd.M3()))


def _both_assemblies(engines, x):
    """The evaluations at x by the compiled assembly and by the numpy reference (two engines: no shared memos)."""
    compiled, reference = engines
    assert compiled.assembly == "compiled"
    reference.assembly = "numpy"
    with np.errstate(all="ignore"):
        return compiled.evaluate(x, None), reference.evaluate(x, None)


def _assert_same(engines, a, b):
    assert np.all(a.status == 0) and np.all(b.status == 0)
    np.testing.assert_array_equal(a.eta, b.eta)
    np.testing.assert_allclose(a.ofv, b.ofv, rtol=1e-12, atol=0)
    scale = np.max(np.abs(b.gradient))
    np.testing.assert_allclose(a.gradient, b.gradient, rtol=1e-10, atol=1e-11 * scale)
    if engines[0].method != "fo":
        # the exact Hessian in eta and its mixed derivatives: the next evaluation's predicted EBEs
        for got, want in zip(engines[0]._memo_hessians, engines[1]._memo_hessians):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11 * np.max(np.abs(want)))


# one model per error model: log-normal and proportional (two outputs), combined (variance; sd), additive
@pytest.mark.parametrize("method", ["focei", "foce", "fo", "laplace"])
@pytest.mark.parametrize("name", ["msc_salvadori", "pk_1cmt_oral", "nmtest_1cmt_oral", "pk_1cmt_iv"])
def test_compiled_assembly_equals_the_numpy_assembly(name, method):
    pairs = [_objective(name, method) for _ in range(2)]
    engines, layout = [e for e, _ in pairs], pairs[0][1]
    x = layout.x0 + 0.05 * np.cos(np.arange(layout.x0.size))
    _assert_same(engines, *_both_assemblies(engines, x))


@pytest.mark.parametrize("name", ["msc_salvadori", "pk_1cmt_oral", "nmtest_1cmt_oral", "pk_1cmt_iv", "block"])
def test_compiled_fo_information_equals_the_numpy_information(name):
    """FO's expected information (Fisher scoring's Hessian, the FO covariance step's R) from the compiled assembly
    equals the numpy reference (:func:`pkpd.estimation._fo_information.fo_information`), which
    tests/unit/test_fo_scoring.py checks against simulated scores and the design module's FIM; "block": a
    correlated Omega (the off-diagonal entries' derivatives of C)."""
    iiv = None
    if name == "block":
        name, iiv = "pk_1cmt_oral", pkpd.IIV({"ka": 0.09, "CL": 0.09}, covariances={("ka", "CL"): 0.03})
    pairs = [_objective(name, "fo", iiv=iiv) for _ in range(2)]
    (compiled, reference), layout = [e for e, _ in pairs], pairs[0][1]
    reference.assembly = "numpy"
    x = layout.x0 + 0.05 * np.cos(np.arange(layout.x0.size))
    a, b = (e.evaluate(x, None, information=True) for e in (compiled, reference))
    _assert_same((compiled, reference), a, b)
    assert a.information.shape == (x.size, x.size)
    np.testing.assert_allclose(a.information, b.information, rtol=1e-9, atol=1e-12 * np.max(np.abs(b.information)))


@pytest.mark.parametrize("method", ["focei", "foce", "fo", "laplace"])
def test_compiled_assembly_with_every_eta_transformation_and_censoring(method):
    """Log-normal, logit-normal and normal random effects; with Laplace, M3 (censored observations enter through
    log Phi, which only Laplace accepts)."""
    data = _study("msc_salvadori")
    blq = None
    if method == "laplace":
        il10 = (data["EVID"] == 0) & (data["DVID"] == "IL10")
        dv = pd.to_numeric(data["DV"], errors="coerce")
        lloq = float(np.quantile(dv[il10], 0.3))
        data["LLOQ"] = np.where(il10, lloq, np.nan)
        data["BLQ"] = np.where(il10 & (dv < lloq), 1, 0)
        blq = pkpd.M3()
    # k_i (a rate of 0.28 1/h) as a logit-normal parameter: only the transformation matters here
    iiv = pkpd.IIV({"k_c": 0.09, "k_i": 0.2, "EC50": 900.0}, distribution={"k_i": "logitnormal", "EC50": "normal"})
    error = {"PGE2": pkpd.Proportional(cv=0.15), "IL10": pkpd.Combined(sd=0.01, cv=0.15, convention="variance")}
    engines = []
    for _ in range(2):
        _, _, _, layout, prob = nlme._setup("msc_salvadori", data, iiv, error, method, ("k_c", "s_p", "EC50"), blq,
                                            TIGHT, None)
        engines.append(nlme._objective_engine(prob, layout))
    assert engines[0].design.cens.sum() >= (5 if method == "laplace" else 0)
    x = layout.x0 + 0.05 * np.cos(np.arange(layout.x0.size))
    _assert_same(engines, *_both_assemblies(engines, x))
