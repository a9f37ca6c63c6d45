"""Classic PK models against their textbook solutions: the closed form of linear models (issue 15) and the ODE solver
at its default tolerances (issue 2)."""

import numpy as np
import pytest

import pkpd

TOL = 1e-6  # relative error required at default tolerances


@pytest.fixture(autouse=True, params=["closed-form", "ode"])
def solver(request, monkeypatch):
    """Every test twice: the closed form these linear models get by default, and the ODE solver at its default
    tolerances (a test that names a method keeps it)."""
    import dataclasses

    real = pkpd.simulate

    def simulate(*args, settings=None, **kwargs):
        settings = settings or pkpd.SolverSettings()
        if settings.method == "auto":
            settings = dataclasses.replace(settings, method=request.param)
        return real(*args, settings=settings, **kwargs)

    monkeypatch.setattr(pkpd, "simulate", simulate)
    return request.param


def rel_err(got, ref, floor=1e-9):
    ref = np.asarray(ref)
    mask = np.abs(ref) > floor
    return float(np.max(np.abs(np.asarray(got)[mask] - ref[mask]) / np.abs(ref[mask])))


@pytest.fixture(scope="module")
def iv():
    return pkpd.load_model("pk_1cmt_iv")


@pytest.fixture(scope="module")
def oral():
    return pkpd.load_model("pk_1cmt_oral")


def test_one_compartment_bolus(iv):
    CL, V = iv.parameter("CL").value, iv.parameter("V").value
    t = np.linspace(0, 48, 97)
    sim = pkpd.simulate(iv, pkpd.Regimen.single(pkpd.Dose(100, "mg")), t)
    ref = 100 / V * np.exp(-CL / V * t)
    assert rel_err(sim.outputs["conc"][0], ref) < TOL


def test_one_compartment_infusion_during_and_after(iv):
    CL, V = iv.parameter("CL").value, iv.parameter("V").value
    k, dur, amt = CL / V, 3.0, 120.0
    t = np.linspace(0, 30, 121)
    sim = pkpd.simulate(iv, pkpd.Regimen.single(pkpd.Dose(amt, "mg"), duration=dur), t)
    r = amt / dur
    during = r / CL * (1 - np.exp(-k * t))
    after = r / CL * (1 - np.exp(-k * dur)) * np.exp(-k * (t - dur))
    ref = np.where(t <= dur, during, after)
    assert rel_err(sim.outputs["conc"][0], ref) < TOL
    # the infusion stop is a restart point: the value exactly at the stop time is right too
    assert abs(sim.outputs["conc"][0][t == dur][0] / during[t == dur][0] - 1) < TOL


def test_infusion_given_by_rate_equals_by_duration(iv):
    t = np.linspace(0, 24, 49)
    a = pkpd.simulate(iv, pkpd.Regimen.single(pkpd.Dose(100, "mg"), duration=4.0), t)
    b = pkpd.simulate(iv, pkpd.Regimen.single(pkpd.Dose(100, "mg"), rate=25.0), t)
    np.testing.assert_allclose(a.outputs["conc"], b.outputs["conc"], rtol=1e-12)


def test_first_order_absorption_bateman(oral):
    ka, CL, V, F = (oral.parameter(n).value for n in ("ka", "CL", "V", "F"))
    k = CL / V
    t = np.linspace(0, 36, 145)
    sim = pkpd.simulate(oral, pkpd.Regimen.single(pkpd.Dose(320, "mg")), t)
    ref = F * 320 * ka / (V * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
    assert rel_err(sim.outputs["conc"][0], ref, floor=1e-6) < TOL


def test_repeated_doses_equal_superposition(oral):
    ka, CL, V, F = (oral.parameter(n).value for n in ("ka", "CL", "V", "F"))
    k = CL / V
    t = np.linspace(0, 96, 385)
    sim = pkpd.simulate(oral, pkpd.Regimen.every(12, "h", count=6, dose=pkpd.Dose(100, "mg")), t)

    def one(tau):
        tau = np.clip(tau, 0, None)
        return F * 100 * ka / (V * (ka - k)) * (np.exp(-k * tau) - np.exp(-ka * tau)) * (tau > 0)

    ref = sum(one(t - 12 * i) * (t >= 12 * i) for i in range(6))
    assert rel_err(sim.outputs["conc"][0], ref, floor=1e-6) < TOL


def test_two_compartment_bolus_matches_matrix_exponential():
    from scipy.linalg import expm

    m = pkpd.load_model("pk_2cmt_iv")
    CL, V1, Q, V2 = (m.parameter(n).value for n in ("CL", "V1", "Q", "V2"))
    A = np.array([[-(CL + Q) / V1, Q / V2], [Q / V1, -Q / V2]])
    t = np.linspace(0, 48, 49)
    sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(500, "mg")), t)
    ref = np.array([(expm(A * ti) @ [500.0, 0.0])[0] / V1 for ti in t])
    assert rel_err(sim.outputs["conc"][0], ref) < TOL


def test_rodas4_matches_analytic_too(oral):
    ka, CL, V, F = (oral.parameter(n).value for n in ("ka", "CL", "V", "F"))
    k = CL / V
    t = np.linspace(0, 36, 73)
    settings = pkpd.SolverSettings(method="rodas4")
    sim = pkpd.simulate(oral, pkpd.Regimen.single(pkpd.Dose(320, "mg")), t, settings=settings)
    ref = F * 320 * ka / (V * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
    assert rel_err(sim.outputs["conc"][0], ref, floor=1e-6) < 1e-6


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_pivots_on_a_strongly_coupled_model(backend):
    # dA/dt = -k A, dB/dt = K A - k B with K = 1e4: the Rosenbrock matrix I/(h gamma) - J has |K| below its diagonal
    # in column 0, above the diagonal entry once h gamma > 1/(K - ...): the LU factorisation must swap rows (partial
    # pivoting), which models with weak coupling (the oral model above) never need. B = K A0 t e^{-kt}.
    from pkpd.compile import default_engine
    from pkpd.model import DoseTarget, Model, Output, Parameter, State

    if backend == "native" and default_engine() != "native":
        pytest.skip("no C compiler: the native engine is not available")
    k, K = 0.1, 1e4
    model = Model(name="coupled", time_unit="h",
                  parameters=(Parameter("k", k, "1/h", (0.0, 10.0)), Parameter("K", K, "1/h", (0.0, 1e6))),
                  states=(State("A", "mg", initial="0", ddt="-k * A"),
                          State("B", "mg", initial="0", ddt="K * A - k * B")),
                  outputs=(Output("amount_B", "B", "mg"),), doses=(DoseTarget("iv", target="A", unit="mg"),))
    t = np.linspace(0.0, 48.0, 25)
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg")), t,
                        settings=pkpd.SolverSettings(method="rodas4"), backend=backend)
    assert rel_err(sim.outputs["amount_B"][0], K * t * np.exp(-k * t), floor=1e-6) < 1e-6


def test_dose_into_second_target(oral):
    CL, V = oral.parameter("CL").value, oral.parameter("V").value
    t = np.linspace(0, 24, 25)
    sim = pkpd.simulate(oral, pkpd.Regimen.single(pkpd.Dose(50, "mg"), target="iv"), t)
    assert rel_err(sim.outputs["conc"][0], 50 / V * np.exp(-CL / V * t)) < TOL


def test_dose_unit_conversion(iv):
    t = np.linspace(0, 12, 13)
    a = pkpd.simulate(iv, pkpd.Regimen.single(pkpd.Dose(100, "mg")), t)
    b = pkpd.simulate(iv, pkpd.Regimen.single(pkpd.Dose(0.1, "g")), t)
    np.testing.assert_allclose(a.outputs["conc"], b.outputs["conc"], rtol=1e-12)
