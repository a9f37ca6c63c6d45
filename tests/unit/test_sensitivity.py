"""Sensitivity analysis (issue 6): Sobol indices against the Ishigami function's analytic values, a total index of 0
for a parameter an endpoint does not depend on, local sensitivities against closed forms, Morris screening."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pkpd
from pkpd.errors import PkpdError
from pkpd.metrics import Endpoint
from pkpd.sensitivity import (
    endpoint_function,
    local_sensitivity,
    morris_screening,
    parameter_ranges,
    sobol_indices,
)

# Ishigami & Homma (1990) with a = 7, b = 0.1 on [-pi, pi]^3: analytic first-order and total indices
A, B = 7.0, 0.1
_V = A**2 / 8 + B * math.pi**4 / 5 + B**2 * math.pi**8 / 18 + 0.5
_V1 = 0.5 * (1 + B * math.pi**4 / 5) ** 2
_V2 = A**2 / 8
_V13 = B**2 * math.pi**8 * (1 / 18 - 1 / 50)
ISHIGAMI_S1 = {"x1": _V1 / _V, "x2": _V2 / _V, "x3": 0.0}
ISHIGAMI_ST = {"x1": (_V1 + _V13) / _V, "x2": _V2 / _V, "x3": _V13 / _V}


def ishigami(v):
    return np.sin(v["x1"]) + A * np.sin(v["x2"]) ** 2 + B * v["x3"] ** 4 * np.sin(v["x1"])


@pytest.fixture(scope="module")
def ishigami_indices():
    return sobol_indices(ishigami, {k: (-math.pi, math.pi) for k in ("x1", "x2", "x3")}, n=8192, seed=11,
                         n_bootstrap=300, level=0.99)


def test_analytic_ishigami_values_are_the_published_ones():
    assert ISHIGAMI_S1["x1"] == pytest.approx(0.3139, abs=1e-4)
    assert ISHIGAMI_S1["x2"] == pytest.approx(0.4424, abs=1e-4)
    assert ISHIGAMI_ST["x1"] == pytest.approx(0.5576, abs=1e-4)
    assert ISHIGAMI_ST["x3"] == pytest.approx(0.2437, abs=1e-4)


@pytest.mark.parametrize("name", ["x1", "x2", "x3"])
def test_ishigami_sobol_indices_are_within_sampling_error(ishigami_indices, name):
    row = ishigami_indices.table.set_index("parameter").loc[name]
    assert row["S1_low"] <= ISHIGAMI_S1[name] <= row["S1_high"]
    assert row["ST_low"] <= ISHIGAMI_ST[name] <= row["ST_high"]
    # and the intervals are tight enough to mean something at N = 8192
    assert row["S1_high"] - row["S1_low"] < 0.1 and row["ST_high"] - row["ST_low"] < 0.1
    assert abs(row["S1"] - ISHIGAMI_S1[name]) < 0.02 and abs(row["ST"] - ISHIGAMI_ST[name]) < 0.02


def test_sobol_costs_n_times_k_plus_2_evaluations_and_rounds_n_to_a_power_of_two():
    calls = []

    def f(v):
        calls.append(len(v["a"]))
        return v["a"]

    res = sobol_indices(f, {"a": (0, 1), "b": (0, 1)}, n=100, seed=0, n_bootstrap=0)
    assert res.n == 128 and calls == [128 * 4] and res.n_evaluations == 512
    assert math.isnan(res.table["S1_low"].iloc[0])


def test_sobol_is_reproducible_with_a_seed():
    args = (ishigami, {k: (-math.pi, math.pi) for k in ("x1", "x2", "x3")})
    a = sobol_indices(*args, n=256, seed=3).table
    b = sobol_indices(*args, n=256, seed=3).table
    c = sobol_indices(*args, n=256, seed=4).table
    assert a.equals(b) and not a.equals(c)


@pytest.fixture(scope="module")
def salvadori_sobol():
    model = pkpd.load_model("msc_salvadori")
    regimen = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    endpoints = [Endpoint("cells", "auc", start=0, end=168, name="cells_AUC"),
                 Endpoint("IL10", "auc", start=0, end=168, name="IL10_AUC")]
    f = endpoint_function(model, regimen, endpoints, covariates={"WT": 70}, times=np.arange(0, 169.0, 2.0))
    ranges = parameter_ranges(model, ["k_c", "f_lung", "EC50", "k_i"])
    return sobol_indices(f, ranges, n=128, seed=5, log=["k_c", "EC50"])


def test_total_index_is_zero_for_a_parameter_the_endpoint_does_not_depend_on(salvadori_sobol):
    t = salvadori_sobol.table.set_index(["output", "parameter"])
    # viable lung cells depend on k_c and f_lung only: EC50 and k_i act downstream (PD). Not exactly 0: the solver's
    # step sequence (one error norm over all states) moves with the PD parameters, at the level of its tolerance.
    for name in ("EC50", "k_i"):
        assert abs(t.loc[("cells_AUC", name), "ST"]) < 1e-6
        assert abs(t.loc[("cells_AUC", name), "S1"]) < 1e-6
    assert t.loc[("cells_AUC", "k_c"), "ST"] > 0.3
    for name in ("k_c", "f_lung", "EC50"):
        assert t.loc[("IL10_AUC", name), "ST"] > 0.1
    # The IL-10 AUC hardly depends on k_i either: production is k_in_i = I_base k_i / (1 + e_max R_ss), so
    # the integral of dI/dt = k_in_i (1 + e_max R) - k_i I over a long window is I_base times the integral of
    # (1 + e_max R) / (1 + e_max R_ss): k_i cancels except for the IL-10 still in the body at 168 h.
    assert t.loc[("IL10_AUC", "k_i"), "ST"] < 1e-3


def test_morris_mu_star_is_the_slope_over_the_range_and_zero_for_a_dummy():
    res = morris_screening(lambda v: 3 * v["a"] - 2 * v["b"] + 0 * v["c"], {"a": (0, 2), "b": (0, 1), "c": (0, 1)},
                           trajectories=12, seed=1)
    t = res.table.set_index("parameter")
    assert t.loc["a", "mu_star"] == pytest.approx(6.0)  # slope 3 over a range of 2
    assert t.loc["b", "mu"] == pytest.approx(-2.0)
    assert t.loc["c", "mu_star"] == 0.0 and t.loc["a", "sigma"] == pytest.approx(0.0, abs=1e-12)
    assert res.n_evaluations == 12 * 4


# --- local sensitivities against closed forms: one-compartment IV bolus, C = D/V exp(-CL t / V) ------------------
def test_local_sensitivities_of_bolus_auc_and_cmax_match_the_closed_form():
    model = pkpd.load_model("pk_1cmt_iv")
    reg = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    res = local_sensitivity(model, reg, [Endpoint("conc", "auc", end=1000, method="log-down", name="AUC"),
                                         Endpoint("conc", "cmax", name="Cmax", end=1000)])
    s = res.table.set_index(["endpoint", "parameter"])["sensitivity"]
    assert s[("AUC", "CL")] == pytest.approx(-1.0, abs=1e-4)  # AUC = D / CL
    assert s[("AUC", "V")] == pytest.approx(0.0, abs=1e-4)
    assert s[("Cmax", "V")] == pytest.approx(-1.0, abs=1e-4)  # Cmax = D / V
    assert s[("Cmax", "CL")] == pytest.approx(0.0, abs=1e-6)


def test_local_sensitivity_over_time_matches_the_closed_form():
    model = pkpd.load_model("pk_1cmt_iv")
    t = np.linspace(0, 24, 25)
    res = local_sensitivity(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), Endpoint("conc", "cmax", end=24),
                            times=t)
    over = res.over_time["conc"]
    cl, v = 2.8, 32.0
    i_cl, i_v = res.parameters.index("CL"), res.parameters.index("V")
    np.testing.assert_allclose(over[i_cl], -cl * t / v, atol=2e-5)  # d ln C / d ln CL = -CL t / V
    np.testing.assert_allclose(over[i_v], -1 + cl * t / v, atol=2e-5)  # d ln C / d ln V = -1 + CL t / V


def test_unknown_parameter_is_an_error_with_a_suggestion():
    model = pkpd.load_model("msc_salvadori")
    with pytest.raises(PkpdError, match="Did you mean 'k_c'"):
        parameter_ranges(model, ["kc"])
    with pytest.raises(PkpdError, match="has no parameter 'EC5'"):
        local_sensitivity(model, None, Endpoint("IL10", "cmax", end=24), parameters=["EC5"])


def test_log_range_must_be_positive():
    with pytest.raises(PkpdError, match="log-uniform range must be positive"):
        sobol_indices(lambda v: v["e_max"], {"e_max": (-1.0, 100.0)}, log=["e_max"], n=8)
