"""The exact solution of linear models inside the compiled estimation library (issue 15, item 3: "closed-form
solutions ... in simulation and estimation alike").

For a linear model the library solves the model and its forward sensitivities (first to third order) exactly, by the
action of the matrix exponential of the augmented linear system (pkpd.estimation._linear_template). The reference
is the same library's ODE solver (Tsit5/Rodas4) at rtol 1e-12: the two share only the generated right-hand side and
the event table. Predictions and every derivative must agree to 1e-8 relative to each value (and to 1e-9 of the
largest value of the same quantity, where a value has decayed towards 0: there the ODE solver's absolute tolerance
limits the agreement), on every shipped linear model and on random linear models and regimens (bolus, infusion,
several dose targets, bioavailability and lag, a zero-order input, a non-zero initial state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_closed_form import random_linear_model  # the random compartmental models of the simulation tests

import pkpd
from pkpd import DoseTarget, Model, Output, Parameter, SolverSettings, State, nlme
from pkpd.linear_system import linearity
from pkpd.nonmem import read_nonmem

compiled = pytest.mark.skipif(not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
                              reason="the compiled estimation library needs a C compiler")
pytestmark = compiled

DATA = Path(__file__).resolve().parents[1] / "data"
ODE = SolverSettings(method="ode", rtol=1e-12, atol=1e-14)
SHIPPED_LINEAR = ["msc_biodistribution", "nmtest_1cmt_oral", "pk_1cmt_iv", "pk_1cmt_oral", "pk_2cmt_iv",
                  "pk_2cmt_oral", "wang2007"]


def random_data(rng, model: Model, n_subjects: int = 5) -> pd.DataFrame:
    """Each subject: 1-3 doses (bolus or infusion, into random targets) and 6-10 observations of the first output
    over 0-72 h; DV a positive value near the typical prediction scale (the objective is evaluated, not fitted)."""
    targets = [d.name for d in model.doses]
    rows = []
    for i in range(1, n_subjects + 1):
        for t in np.sort(rng.uniform(0, 48, int(rng.integers(1, 4)))):
            infusion = rng.random() < 0.4
            amt = float(rng.uniform(20, 200))
            rows.append(dict(ID=i, TIME=round(float(t), 3), EVID=1, AMT=amt, CMT=str(rng.choice(targets)),
                             RATE=amt / float(rng.uniform(0.5, 6)) if infusion else 0.0, DV=np.nan))
        for t in np.sort(rng.uniform(0.1, 72, int(rng.integers(6, 11)))):
            rows.append(dict(ID=i, TIME=round(float(t), 3), EVID=0, AMT=0.0, CMT=".", RATE=0.0,
                             DV=float(rng.uniform(0.5, 5))))
    return pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")


def case(name: str):
    """(model, data, iiv) of a shipped linear model or of ``random<seed>``."""
    if name.startswith("random"):
        rng = np.random.default_rng(int(name.removeprefix("random")))
        model = random_linear_model(rng, int(rng.integers(1, 5)))
        frame = random_data(rng, model)
    elif name == "wang2007":      # no dose targets: the initial amount is a parameter; its own published data
        model = pkpd.load_model(name)
        return model, read_nonmem(DATA / "wang2007" / "wang2007.csv"), {"ke": 0.1}
    else:
        model = pkpd.load_model(name)
        rng = np.random.default_rng(len(name))
        frame = random_data(rng, model)
    assert linearity(model).is_linear
    free = [p.name for p in model.parameters
            if p.value > 0 and p.name not in {"F", "lag", "x0_init"} and not _dose_parameter(model, p.name)]
    iiv = {p: 0.1 for p in free[:3]}
    return model, read_nonmem(frame, model, dose_unit=model.doses[0].unit), iiv


def _dose_parameter(model: Model, name: str) -> bool:
    from pkpd._sensitivity import dose_dependence

    return any(timing or factor for timing, factor in dose_dependence(model, (name,)).values())


def engine(model, data, iiv, settings, method="laplace"):
    model = pkpd.load_model(model) if isinstance(model, str) else model
    error = {model.outputs[0].name: pkpd.Additive(sd=0.5)}     # the first output is the observed one
    _, _, _, layout, prob = nlme._setup(model, data, iiv, error, method, list(iiv), None, settings, None)
    eng = nlme._objective_engine(prob, layout)
    assert eng is not None, nlme._compiled_unsupported(prob, layout)
    return eng, layout


def assert_close(got, ref, rel=1e-8, what=""):
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    err = np.abs(got - ref) / np.maximum(np.abs(ref), 0.1 * max(scale, 1e-300))
    assert np.all(np.isfinite(got)) and (err.size == 0 or float(np.max(err)) < rel), (what, float(np.max(err)))


def parameter_rows(eng, layout, rng):
    """Parameter rows (subjects, model parameters): the typical values with the IIV parameters spread by 30 %."""
    P = np.tile(np.asarray(layout.base, dtype=float), (eng.design.n, 1))
    for k in eng.prob.eta_index:
        P[:, k] *= np.exp(rng.normal(0.0, 0.3, eng.design.n))
    return P


@pytest.mark.parametrize("name", SHIPPED_LINEAR + [f"random{seed}" for seed in range(8)])
def test_exact_predictions_and_their_derivatives_equal_the_tight_ode_solve(name):
    model, data, iiv = case(name)
    exact, layout = engine(model, data, iiv, SolverSettings())
    ode, _ = engine(model, data, iiv, ODE)
    assert exact.predictor.lib.linear and exact.inner_lib.linear
    P = parameter_rows(exact, layout, np.random.default_rng(1))
    got, status = exact.predictor.predict(P)
    ref, status_ref = ode.predictor.predict(P)
    assert not status.any() and not status_ref.any()
    # every subject was solved exactly (method 3), the reference by the ODE solver
    assert (exact.predictor.methods == 3).all() and (ode.predictor.methods != 3).all()
    assert_close(got.v, ref.v, what="predictions")
    for order, (a, b) in enumerate([(got.d1, ref.d1), (got.d2, ref.d2), (got.d3, ref.d3)], start=1):
        for k in np.ndindex(a.shape[2:]):   # each derivative on its own scale
            assert_close(a[(..., *k)], b[(..., *k)], what=f"derivative of order {order} {k}")


@pytest.mark.parametrize("method", ["fo", "foce", "focei", "laplace"])
def test_objective_and_gradient_with_the_exact_solution_equal_the_ode_ones(method):
    """Theophylline (pk_1cmt_oral, 12 subjects): the OFV per subject and its analytic gradient, EBEs included."""
    data = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
    iiv = {"ka": 0.6, "CL": 0.3, "V": 0.1}
    exact, layout = engine("pk_1cmt_oral", data, iiv, SolverSettings(), method)
    ode, _ = engine("pk_1cmt_oral", data, iiv, ODE, method)
    x = np.asarray(layout.x0, dtype=float)
    a = exact.evaluate(x, None)
    b = ode.evaluate(x, None)
    assert not a.status.any() and not b.status.any()
    # the EBE iteration stops on a step below 1e-7, so the two modes (and what depends on them) agree to ~1e-7
    np.testing.assert_allclose(a.ofv, b.ofv, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a.eta, b.eta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.gradient, b.gradient, rtol=1e-5, atol=1e-6 * np.max(np.abs(b.gradient)))
    assert (exact.predictor.methods == 3).all()
    if method != "fo":
        assert (exact.inner_methods == 3).all() and (ode.inner_methods != 3).all()


def test_fits_take_the_exact_solution_by_default_and_the_ode_solver_on_request():
    """The theophylline FOCE-I fit: same estimates and OFV (116.8034, NONMEM's 116.803) either way; settings
    method "ode" keeps the ODE solver, "closed-form" asks for the exact solution explicitly."""
    data = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7), covariance=None)
    auto = pkpd.fit_population("pk_1cmt_oral", data, **kw)
    closed = pkpd.fit_population("pk_1cmt_oral", data, settings=SolverSettings(method="closed-form"), **kw)
    ode = pkpd.fit_population("pk_1cmt_oral", data, settings=SolverSettings(method="ode", rtol=1e-10), **kw)
    assert auto.objective == closed.objective
    assert abs(auto.objective - 116.8034) < 1e-3
    assert abs(auto.objective - ode.objective) < 1e-6
    for name, value in ode.theta.items():
        assert auto.theta[name] == pytest.approx(value, rel=1e-5), name


def test_a_model_that_is_not_linear_is_integrated_and_closed_form_is_refused_with_the_reason():
    from pkpd.estimation._compiled import compiled_system

    m = pkpd.load_model("tmdd")
    assert not compiled_system(m, (), ((),), (0,)).linear
    frame = random_data(np.random.default_rng(0), m, 3)
    frame["CMT"] = np.where(frame["EVID"] == 1, m.doses[0].name, ".")       # one target, one dose unit
    data = read_nonmem(frame, m, dose_unit=m.doses[0].unit)
    error = {m.outputs[0].name: pkpd.Additive(sd=0.5)}
    _, _, _, layout, prob = nlme._setup(m, data, {"kel": 0.1}, error, "focei", ["kel"], None,
                                        SolverSettings(method="closed-form"), None)
    assert "not linear" in nlme._compiled_unsupported(prob, layout)
    with pytest.raises(pkpd.errors.PkpdError, match="not linear"):
        pkpd.fit_population(m, data, iiv={"kel": 0.1}, error=error, estimate=["kel"],
                            settings=SolverSettings(method="closed-form"))


def test_a_very_stiff_subject_leaves_the_exact_solution_for_the_ode_solver():
    """One subject with an absorption rate of 2,000/h: the exact solution's cost grows with the rate times the time
    span (2,000 pieces would not do), so that subject is handed to the ODE solver (Rodas4) and still agrees with
    the tight reference; the others keep the exact solution."""
    data = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
    iiv = {"ka": 0.6, "CL": 0.3, "V": 0.1}
    exact, layout = engine("pk_1cmt_oral", data, iiv, SolverSettings())
    ode, _ = engine("pk_1cmt_oral", data, iiv, ODE)
    P = np.tile(np.asarray(layout.base, dtype=float), (exact.design.n, 1))
    ka = pkpd.load_model("pk_1cmt_oral").parameter_names.index("ka")
    P[3, ka] = 2000.0
    got, status = exact.predictor.predict(P)
    ref, _ = ode.predictor.predict(P)
    assert not status.any()
    assert exact.predictor.methods[3] != 3 and (np.delete(exact.predictor.methods, 3) == 3).all()
    assert_close(got.v, ref.v, rel=1e-7)


def test_a_covariate_that_changes_between_records_starts_new_coefficients():
    """CL scaled by a creatinine clearance that changes record by record (a data column): each change is an event
    of the compiled library (new coefficients from then on), and the exact solution still equals the ODE solve;
    the same data with the covariate held at its first value gives other predictions (the changes took effect)."""
    model = Model(name="renal", time_unit="h",
                  parameters=(Parameter("CL", 3.0, "L/h", (1e-3, 1e3)), Parameter("V", 30.0, "L", (1e-2, 1e4)),
                              Parameter("ka", 1.2, "1/h", (1e-3, 1e2)),
                              Parameter("CRCL_ref", 100.0, "mL/min", (1.0, 1e3))),
                  covariates=(pkpd.Covariate("CRCL", "mL/min", 100.0),),
                  states=(State("depot", "mg", "0", "-ka * depot"),
                          State("central", "mg", "0", "ka * depot - CL * CRCL / CRCL_ref / V * central"),),
                  outputs=(Output("conc", "central / V", "mg/L"),),
                  doses=(DoseTarget("oral", "depot", "mg"),))
    assert linearity(model).is_linear
    rows = []
    for i, crcl in enumerate(([100.0, 60.0, 30.0, 30.0, 80.0, 80.0], [50.0, 50.0, 120.0, 90.0, 90.0, 40.0]), 1):
        times = [0.0, 2.0, 6.0, 12.0, 24.0, 30.0]
        for k, (t, c) in enumerate(zip(times, crcl)):
            if k in (0, 3):
                rows.append(dict(ID=i, TIME=t, EVID=1, AMT=100.0, CMT="oral", DV=np.nan, CRCL=c))
            rows.append(dict(ID=i, TIME=t + 1.0, EVID=0, AMT=0.0, CMT=".", DV=1.0, CRCL=c))
    frame = pd.DataFrame(rows)
    data = read_nonmem(frame, model, dose_unit="mg")
    held = read_nonmem(frame.assign(CRCL=frame.groupby("ID")["CRCL"].transform("first")), model, dose_unit="mg")
    iiv = {"CL": 0.1, "V": 0.1}
    got = {}
    for name, d in (("varying", data), ("held", held)):
        exact, layout = engine(model, d, iiv, SolverSettings())
        ode, _ = engine(model, d, iiv, ODE)
        P = parameter_rows(exact, layout, np.random.default_rng(4))
        a, _ = exact.predictor.predict(P)
        b, _ = ode.predictor.predict(P)
        assert (exact.predictor.methods == 3).all()
        assert_close(a.v, b.v, what=f"{name}: predictions")
        for k in range(a.d1.shape[-1]):
            assert_close(a.d1[..., k], b.d1[..., k], what=f"{name}: first derivative {k}")
        got[name] = a.v
    assert not np.allclose(got["varying"], got["held"], rtol=1e-3)
