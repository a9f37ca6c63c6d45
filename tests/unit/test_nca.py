"""Complete NCA (issue 18): steady state, partial areas, manual terminal phases, WinNonlin's IV-bolus rule and
Bailer's sparse sampling, against analytic values, a hand computation and WinNonlin's published results."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pkpd.errors import DataError
from pkpd.noncompartmental import LambdaZ, nca, nca_profile, nca_profiles, nca_sparse, nca_sparse_table

DATA = Path(__file__).resolve().parents[1] / "data"
CL, V, KA = 2.8, 32.0, 1.5
K = CL / V


def _indometh() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "indometh" / "indometh.csv")
    rows = []
    for sid, part in raw.groupby("Subject", sort=True):
        rows.append({"ID": sid, "TIME": 0.0, "EVID": 1, "AMT": 25.0, "AMTU": "mg", "DV": np.nan})
        rows += [{"ID": sid, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c} for t, c in zip(part["time"], part["conc"])]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- WinNonlin (Indometh)
def test_winnonlin_rule_reproduces_winnonlin_on_indometh_iv_bolus():
    table = nca(_indometh(), route="iv-bolus", auc_method="linear", lambda_z_rule="winnonlin", dose_unit="mg",
                conc_unit="mg/L")
    ref = pd.read_csv(DATA / "indometh" / "winnonlin_iv_bolus_linear.csv")
    assert list(table["lambda_z_n"]) == list(ref["LAMZNPT"])
    for ours, theirs in (("lambda_z", "LAMZ"), ("lambda_z_start", "LAMZLL"), ("lambda_z_end", "LAMZUL"),
                         ("adj_r_squared", "R2ADJ"), ("c0", "C0"), ("auc_last", "AUCLST"), ("auc_inf", "AUCIFO"),
                         ("cl", "CLO"), ("vz", "VZO"), ("aumc_last", "AUMCLST"), ("mrt", "MRTIVIFO"),
                         ("vss", "VSSO")):
        np.testing.assert_allclose(table[ours], ref[theirs], rtol=2e-7, err_msg=ours)


def test_pknca_rule_never_uses_cmax_so_it_differs_from_winnonlin_for_subject_4():
    # subject 4's best WinNonlin fit starts at Cmax (0.25 h, all 11 points); PKNCA's rule cannot use that point
    pk = nca(_indometh(), route="iv-bolus", auc_method="linear").set_index("ID")
    assert pk.loc[4, "lambda_z_start"] > 0.25 and pk.loc[4, "lambda_z_n"] <= 10
    assert (pk.drop(index=4)["lambda_z_n"].to_numpy() == [3, 9, 10, 8, 9]).all()


# ------------------------------------------------------------------------------------------- analytic profiles
def _ss_bolus(t, dose=100.0, tau=12.0):
    return dose / V * np.exp(-K * t) / (1 - np.exp(-K * tau))


def test_steady_state_iv_bolus_parameters_match_the_analytic_values():
    tau, dose = 12.0, 100.0
    t = np.arange(0.0, tau + 1e-9, 0.25)
    res = nca_profile(t, _ss_bolus(t), dose, route="iv-bolus", tau=tau, steady_state=True)
    cmax, cmin = dose / V / (1 - math.exp(-K * tau)), _ss_bolus(tau)
    cavg = dose / (CL * tau)
    expected = {"auc_tau": dose / CL, "cmax": cmax, "cmin": cmin, "cavg": cavg,
                "fluctuation": 100 * (cmax - cmin) / cavg, "swing": 100 * (cmax - cmin) / cmin,
                "accumulation_index": 1 / (1 - math.exp(-K * tau)), "cl": CL, "vz": V, "lambda_z": K}
    for name, value in expected.items():
        assert getattr(res, name) == pytest.approx(value, rel=1e-3), name
    assert res.tmin == tau and res.steady_state


def test_steady_state_oral_auc_tau_and_cavg_from_a_dataset_with_addl_doses():
    tau, dose, n = 12.0, 100.0, 10
    t = np.arange(0.0, tau + 1e-9, 0.05)
    conc = dose * KA / (V * (KA - K)) * (np.exp(-K * t) / (1 - np.exp(-K * tau))
                                         - np.exp(-KA * t) / (1 - np.exp(-KA * tau)))
    last = (n - 1) * tau
    data = pd.DataFrame({"ID": 1, "TIME": np.r_[0.0, last + t], "EVID": [1] + [0] * t.size,
                         "AMT": [dose] + [0.0] * t.size, "ADDL": [n - 1] + [0] * t.size,
                         "II": [tau] + [0.0] * t.size, "DV": np.r_[np.nan, conc]})
    row = nca(data, tau=tau, steady_state=True, dose_unit="mg").iloc[0]
    assert row["auc_tau"] == pytest.approx(dose / CL, rel=1e-3)
    assert row["cavg"] == pytest.approx(dose / (CL * tau), rel=1e-3)
    assert row["cl"] == pytest.approx(CL, rel=1e-3)
    assert row["cmin"] == pytest.approx(conc.min(), rel=1e-12)


def _oral_auc(a, b, dose=100.0):
    coef = dose * KA / (V * (KA - K))
    return coef * ((math.exp(-K * a) - math.exp(-K * b)) / K - (math.exp(-KA * a) - math.exp(-KA * b)) / KA)


def test_partial_aucs_match_the_analytic_integrals_including_past_tlast():
    t = np.arange(0.1, 24.0 + 1e-9, 0.1)
    conc = 100 * KA / (V * (KA - K)) * (np.exp(-K * t) - np.exp(-KA * t))
    res = nca_profile(t, conc, 100.0, partial=[(0, 2), (2.05, 8.33), (20, 30)])
    for a, b, value in res.partial_aucs:
        assert value == pytest.approx(_oral_auc(a, b), rel=1e-3), (a, b)
    assert res.as_dict()["auc_20_30"] == res.partial_aucs[2][2]


def test_partial_area_beyond_tlast_without_lambda_z_is_nan():
    res = nca_profile([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 10.0, partial=[(0, 2), (2, 5)])
    assert res.partial_aucs[0][2] == pytest.approx(2.0) and math.isnan(res.partial_aucs[1][2])


# ------------------------------------------------------------------------------------------- manual λz
def test_manual_range_uses_exactly_its_points():
    t = np.array([0.5, 1, 2, 4, 6, 8, 12, 24])
    c = np.array([3.0, 4.0, 3.5, 2.6, 2.0, 1.5, 0.9, 0.2])
    res = nca_profile(t, c, 100.0, lambda_z=LambdaZ(start=4, end=12))
    slope = np.polyfit(t[3:7], np.log(c[3:7]), 1)[0]
    assert res.lambda_z == pytest.approx(-slope, rel=1e-12)
    assert res.lambda_z_times == (4.0, 6.0, 8.0, 12.0) and res.lambda_z_method == "manual range"
    ex = nca_profile(t, c, 100.0, lambda_z=LambdaZ(start=4, end=24, exclude=[8]))
    assert ex.lambda_z_times == (4.0, 6.0, 12.0, 24.0)


def test_a_manual_lambda_z_with_fewer_than_three_points_is_an_error():
    t = np.array([0.5, 1, 2, 4, 6, 8])
    c = np.array([3.0, 4.0, 3.5, 2.6, 2.0, 1.5])
    with pytest.raises(DataError, match="only 2 positive concentration.*at least 3 points"):
        nca_profile(t, c, 100.0, lambda_z=LambdaZ(start=5, end=8))
    with pytest.raises(DataError, match="only 2 point.*at least 3"):
        nca_profile(t, c, 100.0, lambda_z=LambdaZ(exclude=[4, 6]))
    with pytest.raises(DataError, match="exclude time 5 is not a sampling time"):
        nca_profile(t, c, 100.0, lambda_z=LambdaZ(exclude=[5]))
    with pytest.raises(DataError, match="give both start and end"):
        LambdaZ(start=2)


def test_per_subject_lambda_z_choices_and_unknown_subjects():
    data = _indometh()
    res = nca_profiles(data, route="iv-bolus", lambda_z={1: LambdaZ(start=2, end=8), "3": LambdaZ(exclude=[8])})
    assert res[(1, "DV")].lambda_z_start == 2.0 and res[(1, "DV")].lambda_z_n == 6
    assert 8.0 not in res[(3, "DV")].lambda_z_times
    assert res[(2, "DV")].lambda_z_method == "best fit (pknca)"
    with pytest.raises(DataError, match="lambda_z: no subject 7 in the data"):
        nca_profiles(data, route="iv-bolus", lambda_z={7: LambdaZ(start=1, end=8)})


def test_steady_state_needs_tau():
    with pytest.raises(DataError, match="steady_state=True needs the dosing interval tau"):
        nca_profile([1.0, 2, 3], [3.0, 2, 1], 10.0, steady_state=True)


# ------------------------------------------------------------------------------------------- Bailer
def test_bailer_auc_and_se_against_a_hand_computation():
    # 3 animals at each of 0.5, 1, 2, 4 h. Means 5, 10, 6, 2; variances 1, 4, 1, 1.
    # Trapezoid weights w = (0.5/2, (0.5+1)/2, (1+2)/2, 2/2) = (0.25, 0.75, 1.5, 1.0).
    # AUC = 0.25*5 + 0.75*10 + 1.5*6 + 1.0*2 = 19.75
    # Var = (0.25^2*1 + 0.75^2*4 + 1.5^2*1 + 1^2*1) / 3 = 5.5625 / 3, SE = 1.3616779
    t = [0.5] * 3 + [1] * 3 + [2] * 3 + [4] * 3
    c = [4, 5, 6, 8, 10, 12, 6, 7, 5, 2, 3, 1]
    res = nca_sparse(t, c, dose=10)
    assert res.auc_last == pytest.approx(19.75, rel=1e-14)
    assert res.auc_last_se == pytest.approx(math.sqrt(5.5625 / 3), rel=1e-14)
    assert (res.cmax, res.tmax) == (10.0, 1.0)
    assert res.ci_low == pytest.approx(19.75 - 1.959964 * res.auc_last_se, rel=1e-6)


def test_sparse_table_rejects_an_animal_sampled_twice():
    rows = []
    for i, (t, c) in enumerate([(1, 8), (1, 10), (3, 2), (3, 4)]):
        rows += [{"ID": i + 1, "TIME": 0, "EVID": 1, "AMT": 10, "AMTU": "mg", "DV": np.nan},
                 {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0, "DV": c}]
    table = nca_sparse_table(pd.DataFrame(rows), dose_unit="mg", conc_unit="mg/L")  # (1 + 1) / 2 * (9 + 3)
    assert table["auc_last"].iloc[0] == pytest.approx(12.0) and table.attrs["units"]["auc_last"] == "mg/L*h"
    rows.insert(2, {"ID": 1, "TIME": 3, "EVID": 0, "AMT": 0, "DV": 3.0})
    with pytest.raises(DataError, match="ID 1: sampled at 2 times; Bailer's method assumes one sample per animal"):
        nca_sparse_table(pd.DataFrame(rows))


# ------------------------------------------------------------------------------------------- table, plots, CLI
def test_table_units_cover_the_new_columns():
    t = np.arange(0.0, 25.0)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 24, "AMT": [100] + [0] * 24,
                         "DV": np.r_[np.nan, 100 / V * np.exp(-K * t[1:])]})
    table = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L", tau=24, partial=[(0, 4)])
    units = table.attrs["units"]
    assert (units["auc_tau"], units["cmin"], units["cavg"], units["fluctuation"], units["auc_0_4"]) == (
        "mg/L*h", "mg/L", "mg/L", "%", "mg/L*h")


def test_lambda_z_plot_marks_the_points_used():
    import matplotlib.pyplot as plt

    res = nca_profiles(_indometh(), route="iv-bolus", lambda_z_rule="winnonlin")
    fig = res[(1, "DV")].plot()
    try:
        used = fig.axes[0].lines[1]
        assert list(used.get_xdata()) == [5.0, 6.0, 8.0]
    finally:
        plt.close(fig)


def test_cli_nca_options(tmp_path):
    from pkpd.cli import main

    csv = tmp_path / "indometh.csv"
    _indometh().to_csv(csv, index=False)
    out = tmp_path / "nca.csv"
    png = tmp_path / "lz.png"
    assert main(["nca", str(csv), "--out", str(out), "--route", "iv-bolus", "--auc-method", "linear",
                 "--lambda-z-rule", "winnonlin", "--lambda-z", "2=1-8", "--exclude", "3=8", "--partial", "0-1",
                 "--tau", "8", "--dose-unit", "mg", "--conc-unit", "mg/L", "--plot-lambda-z", str(png)]) == 0
    table = pd.read_csv(out)
    assert table.loc[1, "lambda_z_start [h]"] == 1.0 and table.loc[3, "lambda_z_n [1]"] == 11
    assert "auc_0_1 [mg/L*h]" in table.columns and "cavg [mg/L]" in table.columns and png.stat().st_size > 0
    assert main(["nca", str(csv), "--out", str(out), "--lambda-z", "2=5"]) == 2
