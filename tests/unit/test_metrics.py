"""Metrics and NCA against analytic truth (issue 6): one-compartment IV bolus and oral absorption, exponentials."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import metrics
from pkpd.errors import DataError, PkpdError, UnitError
from pkpd.metrics import Endpoint, nca, nca_profile

# pk_1cmt_iv / pk_1cmt_oral typical values
CL, V, KA = 2.8, 32.0, 1.5
K = CL / V


def rel(a, b):
    return abs(a - b) / abs(b)


# --- NCA of a one-compartment IV bolus (sampled densely) ----------------------------------------------------------
@pytest.fixture(scope="module")
def bolus_profile():
    m = pkpd.load_model("pk_1cmt_iv")
    t = np.arange(0.0, 48.01, 0.25)
    sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), t)
    return t, sim["conc"][0]


def test_nca_of_simulated_iv_bolus_matches_analytic_values_within_1_percent(bolus_profile):
    t, c = bolus_profile
    res = nca_profile(t, c, 100.0, route="iv-bolus")
    assert rel(res.auc_inf, 100.0 / CL) < 0.01
    assert rel(res.half_life, math.log(2) / K) < 0.01
    assert rel(res.cl, CL) < 0.01
    assert rel(res.vz, V) < 0.01
    assert rel(res.c0, 100 / V) < 1e-6
    assert rel(res.mrt, 1 / K) < 0.01
    assert rel(res.vss, V) < 0.01


def test_nca_back_extrapolates_c0_when_the_first_sample_is_after_the_dose():
    t = np.arange(0.5, 36.0, 0.5)
    res = nca_profile(t, 100 / V * np.exp(-K * t), 100.0, route="iv-bolus")
    assert rel(res.c0, 100 / V) < 1e-9
    assert rel(res.auc_inf, 100 / CL) < 1e-9  # log-down trapezoids are exact for an exponential
    assert rel(res.cl, CL) < 1e-9 and rel(res.vz, V) < 1e-9


def test_linear_trapezoids_overestimate_a_decline_that_log_down_gets_exactly():
    t = np.arange(1.0, 49.0, 4.0)
    c = 100 / V * np.exp(-K * t)
    lin = nca_profile(t, c, 100.0, route="iv-bolus", auc_method="linear")
    log = nca_profile(t, c, 100.0, route="iv-bolus")
    assert lin.auc_last > log.auc_last
    assert rel(log.auc_inf, 100 / CL) < 1e-9


def test_lambda_z_best_fit_finds_the_terminal_phase_of_a_biexponential():
    t = np.array([0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 36, 48])
    alpha, beta = 1.2, 0.05
    c = 8 * np.exp(-alpha * t) + 2 * np.exp(-beta * t)
    res = nca_profile(t, c, 100.0, route="iv-bolus")
    assert rel(res.lambda_z, beta) < 0.01
    assert res.lambda_z_start >= 6  # the distribution phase is left out
    assert res.adj_r_squared > 0.999


def test_lambda_z_excludes_cmax_and_needs_three_points():
    res = nca_profile([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 2.0, 1.0], 10.0)
    assert math.isnan(res.lambda_z) and res.lambda_z_n == 0  # only 2 points after Tmax
    assert math.isnan(res.auc_inf) and math.isfinite(res.auc_last)


def test_nca_of_oral_profile_gives_apparent_clearance_and_analytic_tmax():
    t = np.arange(0.0, 72.01, 0.05)
    m = pkpd.load_model("pk_1cmt_oral")
    c = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(320, "mg")), t)["conc"][0]
    res = nca_profile(t, c, 320.0)
    t_max = math.log(KA / K) / (KA - K)
    assert abs(res.tmax - t_max) <= 0.05
    assert rel(res.auc_inf, 320 / CL) < 0.01
    assert rel(res.cl, CL) < 0.01
    assert rel(res.half_life, math.log(2) / K) < 0.01


# --- Cmax/Tmax of an oral model (dense simulation) vs the analytic Tmax = ln(ka/k)/(ka-k) -------------------------
def test_oral_tmax_and_cmax_match_the_analytic_values():
    m = pkpd.load_model("pk_1cmt_oral")
    t = np.arange(0.0, 12.0, 0.001)
    sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(320, "mg")), t)
    t_max = math.log(KA / K) / (KA - K)
    c_max = 320 * KA / (V * (KA - K)) * (math.exp(-K * t_max) - math.exp(-KA * t_max))
    assert abs(metrics.tmax(sim.times, sim["conc"])[0] - t_max) <= 0.001
    assert rel(metrics.cmax(sim.times, sim["conc"])[0], c_max) < 1e-6


# --- metric functions ----------------------------------------------------------------------------------------------
def test_auc_over_an_interval_between_samples_is_exact_for_an_exponential_with_log_down():
    t = np.linspace(0, 24, 7)
    c = np.exp(-0.2 * t)
    exact = (math.exp(-0.2 * 3) - math.exp(-0.2 * 17)) / 0.2
    assert rel(metrics.auc(t, c, start=3, end=17, method="log-down"), exact) < 1e-12
    assert metrics.auc(t, c, start=3, end=17) > exact  # linear trapezoids overestimate a convex decline


def test_auc_of_a_line_is_exact_with_linear_trapezoids_on_any_window():
    t = np.array([0.0, 10.0])
    assert metrics.auc(t, 2 * t, start=2.5, end=7.5) == pytest.approx(50.0)


def test_time_above_threshold_interpolates_the_crossings():
    t = np.linspace(0, 10, 11)
    c = 10 * np.exp(-0.3 * t)
    # linear interpolation between samples; exact crossing of the exponential is ln(10/4)/0.3 = 3.054
    got = metrics.time_above(t, c, 4.0)
    assert abs(got - math.log(10 / 4) / 0.3) < 0.05
    assert metrics.time_above(t, c, 20.0) == 0.0
    assert metrics.time_above(t, c, 0.0) == 10.0


def test_value_at_nadir_and_time_of_nadir():
    t = np.linspace(0, 48, 49)
    y = 10 - 8 * np.exp(-((t - 20) ** 2) / 50)  # dip to 2 at t = 20
    assert metrics.nadir(t, y) == pytest.approx(2.0)
    assert metrics.time_of_nadir(t, y) == 20.0
    assert metrics.value_at(t, y, 20.5) == pytest.approx(0.5 * (y[20] + y[21]))
    assert metrics.nadir(t, y, start=30, end=48) == pytest.approx(y[30])


def test_change_from_baseline_absolute_and_relative():
    t = np.array([0.0, 24, 48])
    y = np.array([[10.0, 8, 5], [4, 4, 6]])
    np.testing.assert_allclose(metrics.change_from_baseline(t, y, 48, relative=True), [-50.0, 50.0])
    np.testing.assert_allclose(metrics.change_from_baseline(t, y, 48, baseline_time=24), [-3.0, 2.0])


def test_metrics_are_per_subject_and_nan_for_failed_subjects():
    t = np.array([0.0, 1, 2])
    y = np.array([[1.0, 3, 2], [np.nan, np.nan, np.nan]])
    out = metrics.cmax(t, y)
    assert out[0] == 3.0 and math.isnan(out[1])
    assert math.isnan(metrics.tmax(t, y)[1]) and math.isnan(metrics.auc(t, y)[1])


def test_a_window_outside_the_times_is_an_error_that_says_so():
    with pytest.raises(PkpdError, match=r"window \[0, 200\] reaches outside the times \[0, 168\]"):
        metrics.auc(np.arange(169.0), np.ones(169), start=0, end=200)


def test_unknown_auc_method_suggests_the_right_one():
    with pytest.raises(PkpdError, match="Did you mean 'log-down'"):
        metrics.auc([0, 1], [1, 2], method="log_down")


# --- endpoints -------------------------------------------------------------------------------------------------------
def test_endpoint_names_units_and_descriptions():
    ep = Endpoint("IL10", "auc", start=0, end=168)
    assert ep.name == "IL10_AUC_0_168"
    assert ep.unit("pg/mL", "h") == "pg/mL*h"
    assert Endpoint("TNF", "change_from_untreated", time=48, relative=True).unit("pg/mL", "h") == "%"
    assert Endpoint("TNF", "time_of_nadir", name="t_nadir").name == "t_nadir"


def test_endpoint_threshold_in_wrong_unit_is_a_unit_error():
    m = pkpd.load_model("msc_sepsis")
    with pytest.raises(UnitError, match=r"threshold 100 h cannot be compared with output 'TNF' in pg/mL"):
        Endpoint("TNF", "time_above", threshold=100, threshold_unit="h").for_model(m)


def test_endpoint_option_the_metric_does_not_use_is_an_error():
    with pytest.raises(PkpdError, match="option 'threshold' is not used by this metric"):
        Endpoint("TNF", "cmax", threshold=3)


def test_endpoint_evaluates_a_simulation_in_the_threshold_unit_given():
    m = pkpd.load_model("pk_1cmt_iv")
    t = np.linspace(0, 48, 193)
    sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), t)
    in_ng = Endpoint("conc", "time_above", threshold=1000, threshold_unit="ng/mL").evaluate(sim)
    in_mg = Endpoint("conc", "time_above", threshold=1.0).evaluate(sim)
    np.testing.assert_allclose(in_ng, in_mg)
    assert abs(in_mg[0] - math.log(100 / V / 1.0) / K) < 0.01


# --- NCA of a NONMEM-layout table -----------------------------------------------------------------------------------
def _nonmem_two_subjects():
    rows = []
    for sid, cl in ((1, 2.8), (2, 4.0)):
        rows.append({"ID": sid, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "DV": np.nan, "DVID": "."})
        for t in np.arange(0.5, 48.5, 0.5):
            rows.append({"ID": sid, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": 100 / V * math.exp(-cl / V * t),
                         "DVID": "conc"})
    return pd.DataFrame(rows)


def test_nca_table_has_one_row_per_subject_and_output_with_units():
    table = nca(_nonmem_two_subjects(), route="iv-bolus", dose_unit="mg", conc_unit="mg/L")
    assert list(table["ID"]) == [1, 2] and list(table["output"]) == ["conc", "conc"]
    np.testing.assert_allclose(table["cl"], [2.8, 4.0], rtol=1e-6)
    np.testing.assert_allclose(table["vz"], [V, V], rtol=1e-6)
    assert table.attrs["units"]["cl"] == "L / h" and table.attrs["units"]["auc_inf"] == "mg/L*h"


def test_nca_rejects_a_subject_with_two_doses_naming_it():
    data = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0, 12, 13], "EVID": [1, 1, 0], "AMT": [100, 100, 0],
                         "DV": [np.nan, np.nan, 1.0]})
    with pytest.raises(DataError, match="ID 1: NCA here is single-dose and needs exactly one dose record"):
        nca(data, dose_unit="mg")


def test_nca_sets_blq_before_the_first_quantified_value_to_zero_and_drops_later_ones():
    t = [0, 0.5, 1, 2, 4, 8, 12, 24]
    dv = [np.nan, 0.05, 3.0, 4.0, 2.0, 1.0, 0.5, 0.01]
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 7, "AMT": [10] + [0] * 7, "DV": dv,
                         "LLOQ": 0.1})
    row = nca(data, dose_unit="mg").iloc[0]
    assert row["n_obs"] == 6  # t = 0.5 kept as 0, t = 24 dropped
    assert row["tlast"] == 12.0


def test_nca_of_the_theophylline_data_picks_the_best_fit_terminal_phase():
    from pathlib import Path

    table = nca(Path(__file__).resolve().parents[1] / "data" / "theoph.csv", dose_unit="mg", conc_unit="mg/L")
    assert len(table) == 12 and list(table["ID"]) == list(range(1, 13))
    one = table.iloc[0]
    assert (one["cmax"], one["tmax"], one["tlast"]) == (10.5, 1.12, 24.37)
    # subject 1: the last 3 points (9.05-24.37 h) give the best adjusted R^2
    assert one["lambda_z_n"] == 3 and one["lambda_z_start"] == 9.05
    assert one["half_life"] == pytest.approx(14.30, abs=0.01)
    assert one["auc_inf"] == pytest.approx(214.9, abs=0.1)
    assert (table["adj_r_squared"] > 0.9).all() and (table["auc_pct_extrap"] < 35).all()
