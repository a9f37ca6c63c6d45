"""NCA rules that the first mutation sample of ``pkpd/noncompartmental.py`` (issue 20, seed 25, 40 of 1930 mutants)
showed unguarded: the log-down interpolation inside partial areas (and its linear fallback when a decline reaches 0),
the steady-state AUMCτ from an observed pre-dose sample, doses and intervals that must be > 0, the count of positive
concentrations, the unit of the accumulation index, Bailer's SD and SE with two animals per time, the row order of the
sparse table, and ``NCAResult.plot`` drawing on the axes given. The second sample (seed 26, section below) added
None entries dropped like NaN, Vss at steady state, the unit of tau, the BLQ rule below 1 conc unit, the ``ci_high``
column and the ``by`` columns of the sparse table. The third (seed 27) added the steady-state AUMCτ extrapolated past
Tlast, a concentration at the LLOQ counted as quantified, the units of CL and V (plain quotients, a response in °C),
the name in the sparse table's errors and the units of its counts. The fourth (seed 28) added excluded λz times
matched to rounding, partial intervals reversed or infinite refused, Vss NaN after an extravascular dose at steady
state, the time unit of a dataset checked by ``nca`` and the name in the message of an unknown AUC method. The fifth
(seed 29) added sampling times given as None dropped, C0 of an IV bolus whose first two samples do not decline, and
the subject named in a profile's error; checking it found a subject without observations left out of the table when
the data have a DVID column and the output named as a float in a profile's error (both fixed, with their tests).
The sixth (seed 30) added the times of a LambdaZ stored as floats, a steady-state interval not sampled at the dose
time, CL and V left as plain quotients when only V reduces with factor 1, one LambdaZ for every subject, the
``lambda_z_method`` column and the outputs of the sparse table in the order of the data.
Section "seed 35" (the eleventh independent sample, seed 35, 40 of 1949, issue 20): under both λz rules the points
between an early Cmax and the end of an infusion are left out (the PKNCA rule did not, fixed), a dose smaller than 1
dose unit is the profile's dose, and Bailer's SE is never infinite when the true SE is finite.
Section "seed 36" (the twelfth, 40 of 1953): an infinite LambdaZ time refused, a partial area after Tlast
extrapolated, a steady-state AUMCτ ending at Tlast without a tail, the row of a subject's dose-count error, and
Bailer's interval refused at level 1.
Section "seed 37" (the thirteenth, 40 of 1953): a single excluded λz time given as a bare number, a steady-state AUMCτ
of an interval ending before Tlast, and the unit of the dose column.
Section "seed 38" (the fourteenth, 40 of 1956): sampling times given as a 2-D column or row, and Cmax, Cmin and Tmin
from the samples of the dosing interval only (none there refused).
Section "seed 39" (the fifteenth, 40 of 1956): zero concentrations after Tlast left out of the areas, and BLQ samples
before the first quantified one counted as 0, not as their DV.
Section "seed 40" (the sixteenth, 40 of 1956): an IV infusion without a duration > 0 refused, given directly or
through a dataset whose dose record has neither RATE nor DUR, and an LLOQ column of Python objects read as numbers;
checking it found the missing cells of pandas' nullable dtypes (pd.NA) refused by read_nonmem (fixed, with its test).
Section "seed 41" (the seventeenth, 40 of 1956): the samples at both ends of a manual λz range kept at large times, a
dose record with AMT 0 not counted as a dose, and Bailer's sparse NCA dropping NaN samples and refusing negative times.
Section "seed 42" (the eighteenth, 40 of 1965): the exact log-down AUMC of an exponential decline, the R² of the λz
fit in the result and the table, and no adjusted R² (NaN, not an error) for a regression through two points.
Section "seed 43" (the nineteenth, 40 of 1965): the percentage of AUCinf extrapolated in percent, and no term in
Bailer's variance for a time of weight 0 with one animal.
Section "seed 44" (the twentieth, 40 of 1969): the λz fit of a flat terminal phase (R² 1, the most points), a
manual λz range of exactly 3 points, and a BLQ flag counted beside an LLOQ column; checking it found observations
with a missing DVID left out without a word (fixed, with its test).
Section "seed 45" (the twenty-first, 40 of 1973): the intercept of the best-fit λz regression, the steady-state AUMCτ
of an interval ending at the last sample summed over its samples only, and a dose of a dataset built by hand without
RATE read as the route says, not as an infusion.
Section "seed 46" (the twenty-second, 40 of 1973): a flat segment of the log-down AUMC as its trapezoid, a negative
concentration refused, and a partial area from Tlast as the λz tail alone; checking it found the log-down area and
moment of a decline to a subnormal level, and of a nearly flat one, wrong (fixed, with their tests).
Section "seed 47" (the twenty-third, 40 of 2030): a single ``by`` column of the sparse table given as a bare name.
Section "seed 48" (the twenty-fourth, 40 of 2028): a dose record with a DUR under 1 time unit and no RATE as an
infusion of that duration, and the dose of Bailer's sparse NCA recorded as a float; checking it found that dose not
checked (0, negative, infinite, a bool or a text recorded silently; fixed, with its test).
Section "seed 49" (the twenty-fifth, 40 of 2050): the lower end of a manual λz range matched to the sampling times
with the documented tolerance, an IV bolus whose back-extrapolated C0 is the largest double not refused, the
fluctuation of a profile whose Cavg is below 1 conc unit, and the times of Bailer's sparse NCA read as floats.
Section "seed 51" (the twenty-seventh, 40 of 2050): the file named in the sparse table's error for an observation
without a DVID.
Section "seed 52" (the twenty-eighth, 40 of 2050): the profiles and the table of a dataset in the order of its
subjects in the data, and the concentrations of Bailer's sparse NCA given as a 2-D column or row.

Every expected value is independent of the code: a closed form of a one-compartment profile, a hand computation of
the trapezoids, a numerical integral of the linear-up/log-down interpolant, Bailer's formula, or the documented rule.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from pkpd.errors import DataError
from pkpd.noncompartmental import LambdaZ, nca, nca_profile, nca_profiles, nca_sparse, nca_sparse_table

CL, V = 2.8, 32.0
K = CL / V


def _bolus(t):
    return 100 / V * np.exp(-K * np.asarray(t, dtype=float))


# ------------------------------------------------------------------------------------------- partial areas
def test_partial_area_interpolates_log_linearly_on_a_decline():
    """A bolus sampled at 1, 2, 4... h, area over [0, 1.5]: C(1.5) lies between samples and is interpolated on the
    log scale (log-down), so the area of a mono-exponential is exact: Dose/CL (1 - exp(-k 1.5)). A linear
    interpolation of C(1.5) is off by ~1e-4 (kills _value_at__mutmut_42, "LOG-DOWN")."""
    t = np.array([1.0, 2, 4, 8, 12, 24])
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", partial=[(0, 1.5)])
    assert res.partial_aucs[0][:2] == (0.0, 1.5)
    assert res.partial_aucs[0][2] == pytest.approx(100 / CL * (1 - math.exp(-K * 1.5)), rel=1e-12)


def test_partial_area_interpolates_linearly_on_a_decline_to_zero():
    """Log-down falls back to a linear interpolation when the next sample is 0 (the log of 0 is undefined):
    samples 0, 5, 0, 2 at 0, 1, 2, 3 h, area over [0, 1.5] = 0.5 (0 + 5) + the log trapezoid from 5 to C(1.5) = 2.5
    over 0.5 h, (5 - 2.5) 0.5 / ln 2 (kills _value_at__mutmut_44, ``c1 >= 0``: math domain error)."""
    res = nca_profile([0.0, 1, 2, 3], [0.0, 5, 0, 2], 10, partial=[(0, 1.5)])
    assert res.partial_aucs[0][2] == pytest.approx(2.5 + 1.25 / math.log(2.0), rel=1e-12)


# ------------------------------------------------------------------------------------------- steady state
def _log_down(t, c, x):
    """The linear-up/log-down interpolant of (t, c) at x (independent of the code)."""
    j = min(int(np.searchsorted(t, x, side="right")) - 1, t.size - 2)
    f = (x - t[j]) / (t[j + 1] - t[j])
    if 0 < c[j + 1] < c[j]:
        return c[j] * (c[j + 1] / c[j]) ** f
    return c[j] + (c[j + 1] - c[j]) * f


def test_steady_state_mrt_starts_from_the_observed_pre_dose_sample():
    """A steady-state interval sampled at the dose time, whose pre-dose level (3.92) is not the smallest
    concentration of the interval (3.5 at 0.5 h, absorption still lagging): AUMCτ starts from the observed C(0).
    MRT = (AUMCτ + τ (AUCinf - AUCτ))/AUCτ with AUCτ the integral of the log-down interpolant (numerical
    quadrature), AUMCτ linear trapezoids of t·C on rising segments and the integral of t·C on falling ones (the
    documented rule), and AUCinf - AUCτ = Clast/λz, λz = ln(1/0.7)/4 from the exact terminal decline (kills
    nca_profile__mutmut_145, ``tt[1] > 0``, which starts AUMCτ from the minimum instead)."""
    t = np.array([0.0, 0.5, 1, 2, 4, 8, 12])
    c = np.array([3.92, 3.5, 6.0, 9.0, 8.0, 5.6, 3.92])
    tau = 12.0
    res = nca_profile(t, c, 100, tau=tau, steady_state=True)
    lz = math.log(1 / 0.7) / 4
    assert res.lambda_z == pytest.approx(lz, rel=1e-12)
    opts = dict(epsabs=0, epsrel=1e-13, limit=200)
    auc = sum(quad(lambda x: _log_down(t, c, x), a, b, **opts)[0] for a, b in zip(t[:-1], t[1:]))
    aumc = sum(quad(lambda x: x * _log_down(t, c, x), a, b, **opts)[0] if cb < ca else (b - a) / 2 * (a * ca + b * cb)
               for a, b, ca, cb in zip(t[:-1], t[1:], c[:-1], c[1:]))
    assert res.auc_tau == pytest.approx(auc, rel=1e-10)
    assert res.cl == pytest.approx(100 / auc, rel=1e-10)
    assert res.mrt == pytest.approx((aumc + tau * 3.92 / lz) / auc, rel=1e-10)


# ------------------------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("kwargs, message", [
    (dict(dose=0), "dose must be a finite number > 0; got 0"),
    (dict(dose=100, tau=0), "tau must be a finite number > 0; got 0"),
])
def test_dose_and_tau_of_zero_are_refused(kwargs, message):
    """The dose and the dosing interval must be > 0, not merely >= 0 (a dose of 0 would give CL = 0 silently;
    kills _positive__mutmut_10, ``value < 0``)."""
    t = np.array([1.0, 2, 4, 8])
    with pytest.raises(DataError) as err:
        nca_profile(t, _bolus(t), route="iv-bolus", **kwargs)
    assert str(err.value) == message


def test_one_positive_concentration_among_zeros_is_refused():
    """NCA needs 2 positive concentrations; zeros do not count (kills nca_profile__mutmut_61, ``c >= 0``)."""
    with pytest.raises(DataError) as err:
        nca_profile([0.0, 1, 2], [0.0, 5, 0], 10)
    assert str(err.value) == "at least 2 positive concentrations are needed for NCA; got 1"


# ------------------------------------------------------------------------------------------- units
def test_units_of_the_dimensionless_columns():
    """Counts, R² and the accumulation index are dimensionless ("1"), the percentages "%" (kills
    _units__mutmut_40, "XX1XX" for the accumulation index)."""
    t = np.arange(0.0, 13.0)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 12, "AMT": [100.0] + [0] * 12,
                         "DV": np.r_[np.nan, _bolus(t[1:])]})
    units = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L", tau=12).attrs["units"]
    assert {k: units[k] for k in ("lambda_z_n", "r_squared", "adj_r_squared", "n_obs", "accumulation_index")} \
        == dict.fromkeys(("lambda_z_n", "r_squared", "adj_r_squared", "n_obs", "accumulation_index"), "1")
    assert {k: units[k] for k in ("fluctuation", "swing", "auc_pct_extrap")} \
        == dict.fromkeys(("fluctuation", "swing", "auc_pct_extrap"), "%")


# ------------------------------------------------------------------------------------------- sparse sampling
def test_bailer_se_with_two_animals_per_time():
    """Two animals are enough for a sample SD (ddof 1): at 0, 1, 3 h concentrations (0, 0), (8, 10), (2, 4) give
    SD 0, sqrt(2), sqrt(2), weights 0.5, 1.5, 1 and Bailer's SE sqrt(1.5² 2/2 + 1² 2/2) = sqrt(3.25); with three
    animals at 3 h, (2, 4, 6): SD 2 and SE sqrt(1.5² 2/2 + 1.5² 4/3) (kills nca_sparse__mutmut_67, ``k > 2``)."""
    res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])
    np.testing.assert_allclose(res.sd, [0.0, math.sqrt(2), math.sqrt(2)], rtol=1e-12)
    assert res.auc_last == pytest.approx(1.5 * 9 + 1.0 * 3, rel=1e-12)
    assert res.auc_last_se == pytest.approx(math.sqrt(3.25), rel=1e-12)
    res = nca_sparse([0, 0, 1, 1, 4, 4, 4], [0, 0, 8, 10, 2, 4, 6])   # weights 0.5, 2, 1.5
    np.testing.assert_allclose(res.sd, [0.0, math.sqrt(2), 2.0], rtol=1e-12)
    assert res.auc_last_se == pytest.approx(math.sqrt(2**2 * 2 / 2 + 1.5**2 * 4 / 3), rel=1e-12)


def test_sparse_table_rows_follow_the_data_order():
    """One row per dose group, in the order the groups first appear in the data (as nca() lists subjects), not
    sorted by animal ID: animals 10 and 11 (20 mg) come before animals 1 and 2 (10 mg) (kills
    nca_sparse_table__mutmut_30, ``sort=True``). AUCs by hand: (3 - 1)/2 (8 + 2) = 10 and (3 - 1)/2 (4 + 1) = 5."""
    rows = []
    for sid, dose, t, c in [(10, 20.0, 1, 8), (11, 20.0, 3, 2), (1, 10.0, 1, 4), (2, 10.0, 3, 1)]:
        rows += [{"ID": sid, "TIME": 0, "EVID": 1, "AMT": dose, "DV": None},
                 {"ID": sid, "TIME": t, "EVID": 0, "AMT": 0, "DV": c}]
    table = nca_sparse_table(pd.DataFrame(rows), dose_unit="mg")
    assert table["dose"].tolist() == [20.0, 10.0]
    assert table["auc_last"].tolist() == pytest.approx([10.0, 5.0], rel=1e-12)


# ------------------------------------------------------------------------------------------- plots
def test_result_plot_draws_on_the_axes_given():
    """``NCAResult.plot(ax=ax)`` draws on ``ax`` (log scale, the points and the λz line) and returns its figure
    (kills NCAResult.plot__mutmut_2, ``ax=None``, which draws on a new figure)."""
    import matplotlib.pyplot as plt

    t = np.array([1.0, 2, 4, 8, 12, 24])
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus")
    fig, ax = plt.subplots()
    try:
        assert res.plot(ax=ax) is fig
        assert ax.get_yscale() == "log"
        assert len(ax.get_lines()) == 3          # points not used, points used, regression line
    finally:
        plt.close("all")


# =========================================================================================== seed 26
# Rules that the second sample (seed 26, 40 of 1930 mutants) showed unguarded: missing concentrations given as None
# are dropped like NaN, Vss at steady state, the unit of the tau column, the BLQ rule for profiles below 1 conc
# unit, the ci_high column of the sparse table and its ``by`` columns.
def test_missing_concentrations_given_as_none_are_dropped():
    """NaN entries are dropped, and so are None entries of a list or of an object column (a DV column with gaps):
    0, 8, -, 4, 2 at 0-4 h is the profile 0, 8, 4, 2 at 0, 1, 3, 4 h; AUClast by hand = 0.5 * 8 (linear up)
    + (8 - 4) 2/ln 2 + (4 - 2) 1/ln 2 (log down) (kills nca_profile__mutmut_33, no ``dtype=float``: TypeError)."""
    expected = 4.0 + 10.0 / math.log(2.0)
    for conc in ([0.0, 8, None, 4, 2], pd.Series([0.0, 8, None, 4, 2], dtype=object)):
        res = nca_profile([0.0, 1, 2, 3, 4], conc, 10)
        assert res.n_obs == 4
        assert res.times == (0.0, 1.0, 3.0, 4.0)
        assert res.auc_last == pytest.approx(expected, rel=1e-12)


def test_steady_state_vss_of_an_iv_bolus_is_the_volume():
    """One-compartment IV bolus at steady state (τ 12 h, sampled at 0-12 h): AUCτ = Dose/CL, MRT = 1/k and
    Vss = CL·MRT = V exactly (AUMCτ + τ Clast/k = Dose/(V k²) for C(t) = Dose/V e^{-kt}/(1 - e^{-kτ})) (kills
    nca_profile__mutmut_377, ``vss = None`` at steady state)."""
    tau = 12.0
    t = np.arange(0.0, 13.0)
    c = _bolus(t) / (1 - math.exp(-K * tau))
    res = nca_profile(t, c, 100, route="iv-bolus", tau=tau, steady_state=True)
    assert res.cl == pytest.approx(CL, rel=1e-9)
    assert res.mrt == pytest.approx(1 / K, rel=1e-9)
    assert res.vss == pytest.approx(V, rel=1e-9)
    inf = nca_profile(t, c, 100, route="iv-infusion", duration=0.5, tau=tau, steady_state=True)
    assert isinstance(inf.vss, float) and inf.vss == pytest.approx(inf.cl * inf.mrt, rel=1e-12)


def test_units_of_the_dosing_interval_columns():
    """With ``tau`` every column of the table that has a unit is listed under its own name: tau and tmin in the
    time unit, cmin and cavg in the concentration unit, AUCτ in conc·time, and no unit names a column the table does
    not have (kills _units__mutmut_16, "XXtauXX")."""
    t = np.arange(0.0, 13.0)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 12, "AMT": [100.0] + [0] * 12,
                         "DV": np.r_[np.nan, _bolus(t[1:])]})
    table = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L", tau=12)
    units = table.attrs["units"]
    assert {k: units[k] for k in ("tau", "tmin", "cmin", "cavg", "auc_tau")} \
        == {"tau": "h", "tmin": "h", "cmin": "mg/L", "cavg": "mg/L", "auc_tau": "mg/L*h"}
    assert set(units) <= set(table.columns)


def test_blq_after_the_first_quantified_sample_is_dropped_below_one_conc_unit():
    """BLQ samples after the first quantified (> 0) concentration are dropped, whatever the scale: a profile of
    0.8, 0.6, 0.3, 0.15 mg/L at 1-8 h and a BLQ sample at 12 h is 4 observations, Cmin 0.15 at 8 h in the interval
    [0, 12], swing 100 (0.8 - 0.15)/0.15 (kills nca_profiles__mutmut_236, ``c > 1``, which kept the BLQ sample as
    a 0)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 4, 8, 12], "EVID": [1, 0, 0, 0, 0, 0],
                         "AMT": [10.0, 0, 0, 0, 0, 0], "DV": [np.nan, 0.8, 0.6, 0.3, 0.15, 0.05],
                         "BLQ": [0, 0, 0, 0, 0, 1]})
    row = nca(data, dose_unit="mg", tau=12).iloc[0]
    assert row["n_obs"] == 4
    assert (row["clast"], row["tlast"]) == (0.15, 8.0)
    assert (row["cmin"], row["tmin"]) == (0.15, 8.0)
    assert row["swing"] == pytest.approx(100 * (0.8 - 0.15) / 0.15, rel=1e-12)


def _sparse_rows(groups):
    rows = []
    for i, (sex, t, c) in enumerate(groups):
        rows += [{"ID": i + 1, "TIME": 0, "EVID": 1, "AMT": 10.0, "DV": None, "SEX": sex},
                 {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c, "SEX": sex}]
    return pd.DataFrame(rows)


def test_sparse_table_columns_and_confidence_interval():
    """The table has the documented columns, ``ci_high`` among them: Bailer's AUC 16.5 ± z 0.975 sqrt(3.25) with
    z = 1.959963984540054 (two animals at each of 0, 1, 3 h, as in the docstring) (kills
    SparseNCAResult.as_dict__mutmut_19, "XXci_highXX")."""
    data = _sparse_rows([("F", 1, 8), ("F", 1, 10), ("F", 3, 2), ("F", 3, 4), ("F", 0, 0), ("F", 0, 0)])
    table = nca_sparse_table(data, dose_unit="mg", conc_unit="mg/L")
    assert list(table.columns) == ["output", "dose", "n_times", "n_animals", "cmax", "tmax", "auc_last",
                                   "auc_last_se", "ci_low", "ci_high"]
    half = 1.959963984540054 * math.sqrt(3.25)
    assert table["ci_low"].iloc[0] == pytest.approx(16.5 - half, rel=1e-12)
    assert table["ci_high"].iloc[0] == pytest.approx(16.5 + half, rel=1e-12)
    assert table.attrs["units"]["ci_high"] == "mg/L*h"


def test_sparse_table_by_a_column_of_the_data():
    """``by`` splits the animals by a column of the data (one row per sex, in data order; AUCs by hand:
    (3 - 1)/2 (9 + 3) = 12 and (3 - 1)/2 (4 + 1) = 5); a column the data lack is refused with a DataError naming
    it (kills nca_sparse_table__mutmut_22, ``col in table.columns``, which refused the existing column)."""
    data = _sparse_rows([("M", 1, 8), ("M", 1, 10), ("M", 3, 2), ("M", 3, 4),
                         ("F", 1, 4), ("F", 1, 4), ("F", 3, 1), ("F", 3, 1)])
    table = nca_sparse_table(data, dose_unit="mg", by=["SEX"])
    assert table["SEX"].tolist() == ["M", "F"]
    assert table["auc_last"].tolist() == pytest.approx([12.0, 5.0], rel=1e-12)
    with pytest.raises(DataError) as err:
        nca_sparse_table(data, dose_unit="mg", by=["GROUP"])
    assert str(err.value).startswith("nca_sparse: no column 'GROUP' in the data.")


def test_a_c0_back_extrapolation_beyond_the_largest_number_is_a_clear_error():
    """An IV bolus whose first two samples fall 7500-fold in 0.1 h, 24.5 h after the dose: the log-linear
    back-extrapolation of C0 (WinNonlin's rule) is 7.5 exp(ln(7500)/0.1 * 24.5) = exp(2188), beyond the largest
    float. That is a DataError naming the samples (it was a bare OverflowError, found by the seed-26 sample's
    random profiles); a steep but finite case still follows the rule: C0 = 50 (50/1e-3)^6 = 7.8125e29."""
    with pytest.raises(DataError) as err:
        nca_profile([24.5, 24.6, 25.1], [7.5, 0.001, 0.001], 10, route="iv-bolus")
    assert str(err.value) == (
        "iv-bolus: C0 back-extrapolated log-linearly from the first two positive samples (7.5 at t = 24.5, 0.001 at "
        "t = 24.6) is exp(2188), beyond the largest number; they decline too steeply, too long after the dose: give "
        "the concentration at the dose time, or check the route and the times")
    res = nca_profile([6, 7, 8, 12], [50, 1e-3, 8e-4, 5e-4], 10, route="iv-bolus")
    assert res.c0 == pytest.approx(50 * (50 / 1e-3) ** 6, rel=1e-12)


# =========================================================================================== seed 27
# Rules that the third independent sample (seed 27, 40 of 1932 mutants) showed unguarded: the steady-state AUMCτ
# extrapolated with λz when τ ends after Tlast, a concentration equal to the LLOQ counted as quantified, the unit
# of Vss when pint cannot reduce CL and V, CL and V of a response in °C, the name in the sparse table's errors and
# the units of its count columns.
def test_steady_state_mrt_extrapolates_past_tlast_within_tau():
    """A one-compartment IV bolus at steady state, C(t) = Dose/V e^{-kt}/(1 - e^{-kτ}), sampled at 0-8 h of a
    12 h interval: AUMCτ is extrapolated with λz from Tlast = 8 h to τ, and MRT = (AUMCτ + τ (AUCinf - AUCτ))/AUCτ
    = 1/k exactly (the closed form, as in the seed-26 test where τ = Tlast); CL = Dose/AUCτ = CL and Vss = V
    (kills nca_profile__mutmut_355, λz not passed to _aumc_tau: a TypeError, and _aumc_tau__mutmut_33, the λz
    check negated: MRT NaN)."""
    tau = 12.0
    t = np.arange(0.0, 9.0)
    c = _bolus(t) / (1 - math.exp(-K * tau))
    res = nca_profile(t, c, 100, route="iv-bolus", tau=tau, steady_state=True)
    assert res.tlast == 8.0
    assert res.cl == pytest.approx(CL, rel=1e-9)
    assert res.mrt == pytest.approx(1 / K, rel=1e-9)
    assert res.vss == pytest.approx(V, rel=1e-9)


def test_a_concentration_equal_to_the_lloq_is_quantified():
    """BLQ means below the LLOQ: with LLOQ 0.5, a profile 8, 4, 2, 1, 0.5 at 1-5 h and 0.3 at 6 h keeps the 0.5
    (Clast 0.5 at 5 h, 5 observations) and drops the 0.3; AUClast by hand = 8/2 (linear up from C = 0 at the dose)
    + (8 - 0.5)/ln 2 (log-down halvings) (kills nca_profiles__mutmut_230, ``c <= lloq``, which dropped the 0.5)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 3, 4, 5, 6], "EVID": [1, 0, 0, 0, 0, 0, 0],
                         "AMT": [10.0, 0, 0, 0, 0, 0, 0], "DV": [np.nan, 8, 4, 2, 1, 0.5, 0.3], "LLOQ": 0.5})
    row = nca(data, dose_unit="mg").iloc[0]
    assert row["n_obs"] == 5
    assert (row["clast"], row["tlast"]) == (0.5, 5.0)
    assert row["auc_last"] == pytest.approx(4.0 + 7.5 / math.log(2.0), rel=1e-12)


def _bolus_data():
    t = np.arange(0.0, 13.0)
    return pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 12, "AMT": [100.0] + [0] * 12,
                         "DV": np.r_[np.nan, _bolus(t[1:])]})


@pytest.mark.parametrize("conc_unit", ["copies/mL", "mg/100mL", "ng/mL"])
def test_units_of_cl_and_volumes_left_as_plain_quotients(conc_unit):
    """A concentration unit pint does not know (copies/mL) or that carries a number (mg/100mL), and one whose
    quotient reduces only with a factor (mg/(ng/mL) = 1e6 mL), leave CL, Vz and Vss as the plain quotients
    dose/(conc*time) and dose/(conc), Vss with the same unit as Vz (kills _units__mutmut_119, "VSS" where pint
    fails: no unit for vss)."""
    units = nca(_bolus_data(), route="iv-bolus", dose_unit="mg", conc_unit=conc_unit).attrs["units"]
    assert (units["cl"], units["vz"], units["vss"]) == (f"mg/({conc_unit}*h)", f"mg/({conc_unit})",
                                                        f"mg/({conc_unit})")


def test_units_of_cl_and_volumes_of_a_response_in_degrees_celsius():
    """A response in °C (say a body temperature) is a scale of differences: 1 mg/(1 °C · 1 h) reduces with factor 1,
    so CL and V are reported reduced (pint's form, as L / h for mg/L) per degree of difference, Δ°C. Read as a
    quantity expression, °C is an absolute temperature (274.15 K for 1 °C), the factor is not 1 and the plain
    quotient "mg/(degC*h)" came instead (kills _units__mutmut_80, ``reg.Quantity(text)`` for ``reg.Quantity(1.0,
    text)``)."""
    units = nca(_bolus_data(), route="iv-bolus", dose_unit="mg", conc_unit="degC").attrs["units"]
    assert (units["cl"], units["vz"], units["vss"]) == ("mg / Δ°C / h", "mg / Δ°C", "mg / Δ°C")
    assert units["auc_last"] == "degC*h"


def test_sparse_table_errors_name_nca_sparse():
    """The sparse table's dataset errors name ``nca_sparse``, whole messages: dose_unit='target' (NCA has no model)
    and a dose_unit that contradicts the dataset's (kills nca_sparse_table__mutmut_12, which named ``nca``)."""
    from pkpd.nonmem import read_nonmem

    data = _sparse_rows([("F", 1, 8), ("F", 1, 10), ("F", 3, 2), ("F", 3, 4)])
    with pytest.raises(DataError) as err:
        nca_sparse_table(data, dose_unit="target")
    assert str(err.value) == ("column AMT: nca_sparse: dose_unit='target' needs a model (NCA has none); give the unit "
                              "of AMT, e.g. dose_unit='mg' (--dose-unit mg)")
    with pytest.raises(DataError) as err:
        nca_sparse_table(read_nonmem(data, dose_unit="mg"), dose_unit="ug")
    assert str(err.value) == "nca_sparse: dose_unit='ug' contradicts the dataset's unit of AMT ('mg'); give one of them"


def test_sparse_table_units_of_every_column():
    """Every column of the sparse table with a unit: the counts n_times and n_animals "1", tmax in the time unit,
    cmax in the concentration unit, the AUC, its SE and CI in conc*time, the dose in the dose unit; the grouping
    columns have none (kills nca_sparse_table__mutmut_146, "XXn_timesXX")."""
    data = _sparse_rows([("F", 1, 8), ("F", 1, 10), ("F", 3, 2), ("F", 3, 4)])
    table = nca_sparse_table(data, time_unit="min", dose_unit="mg", conc_unit="ng/mL")
    assert table.attrs["units"] == {"n_times": "1", "n_animals": "1", "tmax": "min", "cmax": "ng/mL",
                                    "auc_last": "ng/mL*min", "auc_last_se": "ng/mL*min", "ci_low": "ng/mL*min",
                                    "ci_high": "ng/mL*min", "dose": "mg"}


# =========================================================================================== seed 28
# Rules that the fourth independent sample (seed 28, 40 of 1932 mutants) showed unguarded: an excluded λz time must
# be a sampling time (to rounding, not to 1e-5), a partial interval with its ends reversed or infinite, Vss of an
# extravascular dose at steady state, the time unit of a dataset checked by nca and nca_profiles, and the name in
# the message of an unknown AUC method.
def test_an_exclude_time_near_but_not_at_a_sampling_time_is_refused():
    """LambdaZ(exclude=[x]) removes the sample taken at x; x = 24.0001 h is 0.36 s from the 24 h sample, not a
    sampling time, and is refused with the whole message (numpy's default relative tolerance 1e-5 took it for the
    24 h sample: kills _excluded__mutmut_13); 24 h itself is excluded and λz is fitted on the other samples."""
    from pkpd.noncompartmental import LambdaZ

    t = np.array([1.0, 2, 4, 8, 12, 24])
    with pytest.raises(DataError) as err:
        nca_profile(t, _bolus(t), 100, route="iv-bolus", lambda_z=LambdaZ(exclude=[24.0001]))
    assert str(err.value) == ("LambdaZ: exclude time 24.0001 is not a sampling time of the profile "
                              "(1, 2, 4, 8, 12, 24)")
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", lambda_z=LambdaZ(exclude=[24.0]))
    assert 24.0 not in res.lambda_z_times
    assert res.lambda_z == pytest.approx(K, rel=1e-9)


@pytest.mark.parametrize("interval", [(4, 2), (0, math.inf)])
def test_a_partial_interval_reversed_or_infinite_is_refused(interval):
    """Each partial interval is (start, end) with 0 <= start < end, both finite: (4, 2) (finite, reversed) and
    (0, inf) (ordered, infinite) are each refused with the whole message (kills _partial_list__mutmut_5, ``and``
    for the second ``or``, which refused only intervals both non-finite and out of order)."""
    t = np.array([1.0, 2, 4, 8, 12, 24])
    with pytest.raises(DataError) as err:
        nca_profile(t, _bolus(t), 100, route="iv-bolus", partial=[interval])
    shown = tuple(float(x) for x in interval)
    assert str(err.value) == f"partial: each interval must be (start, end) with 0 <= start < end; got {shown!r}"


@pytest.mark.parametrize("second", [(0, 12), (0, 12.0000001)])
def test_two_partial_intervals_with_one_column_name_are_refused(second):
    """Each partial interval is one column auc_START_END: (0, 12) given twice, or (0, 12.0000001) beside it (both
    written auc_0_12), is refused with the whole message (nca gave the table two columns of one name, which pandas
    then collapses, e.g. in to_dict); distinct intervals (0, 4) and (4, 12) give their two columns."""
    t = np.array([1.0, 2, 4, 8, 12, 24])
    with pytest.raises(DataError) as err:
        nca(_bolus_data(), route="iv-bolus", dose_unit="mg", partial=[(0, 12), (2, 4), second])
    assert str(err.value) == (f"partial: the intervals (0.0, 12.0) and {tuple(float(x) for x in second)!r} both give "
                              "the column 'auc_0_12'; give each interval once")
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", partial=[(0, 4), (4, 12)])
    assert [(a, b) for a, b, _ in res.partial_aucs] == [(0.0, 4.0), (4.0, 12.0)]


def test_steady_state_vss_of_an_extravascular_dose_is_not_reported():
    """Vss = CL·MRT is an IV quantity (docs/nca.md: ``vss`` (IV)); after an extravascular dose the MRT includes the
    absorption, so Vss is NaN, at steady state as after a single dose, while CL = Dose/AUCτ is still reported (the
    profile of the seed-26 test: CL exactly) (kills nca_profile__mutmut_384, "XXextravascularXX" at steady
    state)."""
    tau = 12.0
    t = np.arange(0.0, 13.0)
    c = _bolus(t) / (1 - math.exp(-K * tau))
    res = nca_profile(t, c, 100, route="extravascular", tau=tau, steady_state=True)
    assert res.cl == pytest.approx(CL, rel=1e-9)
    assert math.isnan(res.vss)


def test_nca_refuses_an_unknown_time_unit_of_the_data():
    """The time unit of a dataset is one of min, h, day, week (or their aliases), for nca and nca_profiles as for
    read_nonmem: 'fortnight' is refused with the whole message (kills _read_dataset__mutmut_12, time_unit not
    passed to read_nonmem: the data were read in hours and 'fortnight' went through)."""
    from pkpd.noncompartmental import nca_profiles

    message = ("nca: time unit must be one of 'min', 'h', 'day', 'week'; got 'fortnight'. Known names: d, day, "
               "days, h, hour, hours, min, minutes, week, weeks.")
    for run in (nca, nca_profiles):
        with pytest.raises(DataError) as err:
            run(_bolus_data(), route="iv-bolus", dose_unit="mg", time_unit="fortnight")
        assert str(err.value) == message


def test_a_dataset_read_in_minutes_keeps_its_time_unit_in_the_nca_tables():
    """A NonmemDataset read with time_unit="min" has TIME in minutes: nca gives tmax in min and CL in L/min (the
    same numbers as in hours, 2.8 for this profile); the tables said h and L/h, the default time_unit of nca,
    a factor 60 off. A time_unit given with the dataset must be its own (whole message); an alias is written as
    the canonical unit (h, not 'hours', in every unit of the table)."""
    from pkpd.nonmem import read_nonmem

    ds = read_nonmem(_bolus_data(), time_unit="min", dose_unit="mg")
    table = nca(ds, route="iv-bolus", conc_unit="mg/L")
    assert table.attrs["units"]["tmax"] == "min" and table.attrs["units"]["cl"] == "L / min"
    assert table["cl"].iloc[0] == pytest.approx(CL, rel=1e-6)
    assert nca(ds, route="iv-bolus", conc_unit="mg/L", time_unit="minutes").attrs["units"]["cl"] == "L / min"
    sparse = nca_sparse_table(read_nonmem(_sparse_rows([("F", 1, 8), ("F", 3, 2)]), time_unit="day", dose_unit="mg"),
                              conc_unit="ng/mL")
    assert sparse.attrs["units"]["tmax"] == "day" and sparse.attrs["units"]["auc_last"] == "ng/mL*day"
    with pytest.raises(DataError) as err:
        nca(ds, route="iv-bolus", time_unit="h")
    assert str(err.value) == ("nca: time_unit='h' contradicts the dataset's unit of TIME ('min', as read_nonmem read "
                              "it); give one of them")
    hours = nca(_bolus_data(), route="iv-bolus", dose_unit="mg", conc_unit="mg/L", time_unit="hours")
    assert hours.attrs["units"]["half_life"] == "h" and hours.attrs["units"]["cl"] == "L / h"


def test_an_unknown_auc_method_is_refused_naming_nca():
    """An AUC method other than 'linear' or 'log-down' is refused by nca and nca_profiles with a message naming
    ``nca``, whole (kills nca_profiles__mutmut_12, which named ``None``)."""
    from pkpd.errors import PkpdError
    from pkpd.noncompartmental import nca_profiles

    for run in (nca, nca_profiles):
        with pytest.raises(PkpdError) as err:
            run(_bolus_data(), route="iv-bolus", dose_unit="mg", auc_method="spline")
        assert str(err.value) == "nca: method must be one of 'linear', 'log-down'; got 'spline'. Did you mean 'linear'?"


# =========================================================================================== seed 29
# Rules that the fifth independent sample (seed 29, 40 of 1932 mutants) showed unguarded: missing sampling times given
# as None are dropped with their concentrations, C0 of an IV bolus whose first two positive samples do not decline is
# the first of them, and the dataset errors of a profile name its subject and output.
def test_missing_sampling_times_given_as_none_are_dropped():
    """A sampling time given as None (a list, an object column) is missing like NaN and its sample is dropped, as
    a missing concentration is: 0, 1, -, 3, 4 h with 0, 8, 5, 4, 2 is the profile 0, 8, 4, 2 at 0, 1, 3, 4 h;
    AUClast by hand = 0.5 * 8 (linear up) + (8 - 4) 2/ln 2 + (4 - 2) 1/ln 2 (log down) (kills
    nca_profile__mutmut_25, no ``dtype=float`` for the times: a TypeError from ``np.isfinite``)."""
    expected = 4.0 + 10.0 / math.log(2.0)
    for times in ([0.0, 1, None, 3, 4], pd.Series([0.0, 1, None, 3, 4], dtype=object)):
        res = nca_profile(times, [0.0, 8, 5, 4, 2], 10)
        assert res.n_obs == 4
        assert res.times == (0.0, 1.0, 3.0, 4.0)
        assert res.conc == (0.0, 8.0, 4.0, 2.0)
        assert res.auc_last == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("first", [3.0, 5.0])
def test_iv_bolus_c0_is_the_first_sample_when_the_first_two_do_not_decline(first):
    """C0 of an IV bolus is back-extrapolated log-linearly from the first two positive samples when they decline,
    else it is the first of them (module docstring, WinNonlin's rule): 3 then 5 (rising) and 5 then 5 (flat) at 0.5
    and 1 h give C0 = 3 and 5; AUClast from the dose time by hand: C0 * 0.5 (flat to the first sample), the linear
    rise or flat to 1 h, then log down 5 -> 2 over 1 h and 2 -> 1 over 2 h (kills nca_profile__mutmut_174,
    ``float(None)``: a TypeError)."""
    res = nca_profile([0.5, 1.0, 2.0, 4.0], [first, 5.0, 2.0, 1.0], 10, route="iv-bolus")
    assert res.c0 == first
    expected = first * 0.5 + 0.5 * (first + 5.0) / 2 + 3.0 / math.log(2.5) + 2.0 / math.log(2.0)
    assert res.auc_last == pytest.approx(expected, rel=1e-12)


def test_a_profile_error_names_its_subject():
    """A profile that cannot be analysed is named in the DataError by its ID, whole message: subject 7, the second
    of two, has one positive concentration (kills nca_profiles__mutmut_261, which named ``ID None``)."""
    from pkpd.noncompartmental import nca_profiles

    good = _bolus_data()
    bad = pd.DataFrame({"ID": 7, "TIME": [0.0, 1, 2], "EVID": [1, 0, 0], "AMT": [100.0, 0, 0],
                        "DV": [np.nan, 2.0, 0.0]})
    data = pd.concat([good, bad], ignore_index=True)
    for run in (nca, nca_profiles):
        with pytest.raises(DataError) as err:
            run(data, route="iv-bolus", dose_unit="mg")
        assert str(err.value) == "ID 7: at least 2 positive concentrations are needed for NCA; got 1"


def test_a_subject_without_observations_is_refused_with_or_without_dvid():
    """A dosed subject with no observation record cannot be analysed: nca refuses it naming the subject, whether or
    not the data have a DVID column (with one, the subject was left out of the table without a word, found while
    checking nca__mutmut_65 of the seed-29 sample; without one it was refused). Whole messages."""
    from pkpd.noncompartmental import nca_profiles

    no_obs = pd.DataFrame({"ID": [2], "TIME": [0.0], "EVID": [1], "AMT": [100.0], "DV": [np.nan]})
    for data in (pd.concat([_bolus_data(), no_obs], ignore_index=True),
                 pd.concat([_bolus_data().assign(DVID=1), no_obs.assign(DVID=1)], ignore_index=True),
                 no_obs.assign(DVID=1)):
        for run in (nca, nca_profiles):
            with pytest.raises(DataError) as err:
                run(data, route="iv-bolus", dose_unit="mg")
            assert str(err.value) == "ID 2: at least 2 positive concentrations are needed for NCA; got 0"


def test_a_profile_error_names_its_output_as_the_table_does():
    """With a DVID column, the error of a profile names its output as the table's ``output`` column does (DVID 2,
    not the float 2.0 that read_nonmem parses), like its ID; whole message."""
    bad = pd.DataFrame({"ID": 7, "TIME": [0.0, 1, 2], "EVID": [1, 0, 0], "AMT": [100.0, 0, 0],
                        "DV": [np.nan, 2.0, 0.0]})
    data = pd.concat([_bolus_data(), bad], ignore_index=True).assign(DVID=2)
    assert nca(data[data["ID"] == 1], route="iv-bolus", dose_unit="mg")["output"].tolist() == [2]
    with pytest.raises(DataError) as err:
        nca(data, route="iv-bolus", dose_unit="mg")
    assert str(err.value) == "ID 7, output 2: at least 2 positive concentrations are needed for NCA; got 1"


# =========================================================================================== seed 30
# Rules that the sixth independent sample (seed 30, 40 of 1945 mutants) showed unguarded: the times of a LambdaZ
# stored as floats, an extravascular or infusion interval at steady state not sampled at the dose time, the units of
# CL and V left as plain quotients when only V reduces with factor 1, one LambdaZ for every subject of a dataset, the
# ``lambda_z_method`` column of the table, and the outputs of the sparse table in the order of the data.
@pytest.mark.parametrize("start, end", [(4, 24), (np.int64(4), np.int64(24))])
def test_lambda_z_range_times_are_stored_as_floats(start, end):
    """``LambdaZ(start=4, end=24)`` holds the times as floats, as its docstring shows (``LambdaZ(start=4.0,
    end=24.0, exclude=())``), for Python and numpy integers alike (kills LambdaZ.__post_init____mutmut_36,
    ``"XXendXX"``, which left ``end`` the integer given)."""
    from pkpd.noncompartmental import LambdaZ

    lz = LambdaZ(start=start, end=end)
    assert type(lz.start) is float and type(lz.end) is float
    assert repr(lz) == "LambdaZ(start=4.0, end=24.0, exclude=())"


@pytest.mark.parametrize("route, duration", [("extravascular", 0.0), ("iv-infusion", 0.5)])
def test_steady_state_interval_not_sampled_at_the_dose_starts_from_its_smallest_concentration(route, duration):
    """At steady state an extravascular dose or an infusion whose interval is not sampled at the dose time starts
    from the smallest concentration of the interval (the pre-dose level, module docstring, WinNonlin's rule), not
    from 0: samples 4, 6, 5, 3, 2 at 1, 2, 4, 8, 12 h (τ 12 h) start from 2 at 0 h. AUCτ by hand: linear up
    (2 + 4)/2 + (4 + 6)/2, log down (6 - 5) 2/ln(6/5) + (5 - 3) 4/ln(5/3) + (3 - 2) 4/ln(3/2); CL = Dose/AUCτ
    (kills nca_profile__mutmut_178, ``np.min(None)``: a TypeError)."""
    t = np.array([1.0, 2, 4, 8, 12])
    c = np.array([4.0, 6, 5, 3, 2])
    res = nca_profile(t, c, 100, route=route, duration=duration, tau=12.0, steady_state=True)
    auc = 3.0 + 5.0 + 2 / math.log(6 / 5) + 8 / math.log(5 / 3) + 4 / math.log(3 / 2)
    assert res.auc_last == pytest.approx(auc, rel=1e-12)
    assert res.auc_tau == pytest.approx(auc, rel=1e-12)
    assert res.cl == pytest.approx(100 / auc, rel=1e-12)


def test_units_of_cl_left_plain_when_only_the_volume_reduces_with_factor_one():
    """CL and V are reported reduced only when both quotients reduce with factor 1. A response that is a rate,
    mg/L/min, with times in h: V = mg/(mg/L/min) = 1 L·min (factor 1) but CL = mg/(mg/L/min·h) = 1/60 L (a
    factor), so all three stay plain quotients; the unit given for CL must be worth 1 mg/(1 mg/L/min · 1 h) =
    1/60 L (pint) (kills _units__mutmut_89, ``or``, which reported CL in "L", 60 times too large)."""
    from pkpd import units as un

    units = nca(_bolus_data(), route="iv-bolus", dose_unit="mg", conc_unit="mg/L/min").attrs["units"]
    assert (units["cl"], units["vz"], units["vss"]) == ("mg/(mg/L/min*h)", "mg/(mg/L/min)", "mg/(mg/L/min)")
    assert un.registry().Quantity(1.0, units["cl"]).to("L").magnitude == pytest.approx(1 / 60, rel=1e-12)


def test_one_lambda_z_choice_applies_to_every_subject():
    """A single LambdaZ (not a dict) is the choice of every subject: the range [2, 5] h of two bolus subjects uses
    the 4 samples at 2, 3, 4, 5 h ("manual range"), where the best fit takes the 11 after Cmax (an exact decline:
    every fit has R² = 1 and the most points win); λz = CL/V exactly either way (kills nca_profiles__mutmut_189,
    ``choices.get(ID)`` without the default, which ignored the LambdaZ)."""
    from pkpd.noncompartmental import LambdaZ, nca_profiles

    data = pd.concat([_bolus_data(), _bolus_data().assign(ID=2)], ignore_index=True)
    res = nca_profiles(data, route="iv-bolus", dose_unit="mg", lambda_z=LambdaZ(start=2, end=5))
    assert list(res) == [(1, "DV"), (2, "DV")]
    for r in res.values():
        assert r.lambda_z_times == (2.0, 3.0, 4.0, 5.0)
        assert r.lambda_z_method == "manual range"
        assert r.lambda_z == pytest.approx(K, rel=1e-9)
    table = nca(data, route="iv-bolus", dose_unit="mg", lambda_z=LambdaZ(start=2, end=5))
    assert table["lambda_z_n"].tolist() == [4, 4]


def test_table_lambda_z_method_column():
    """The table's last column ``lambda_z_method`` names how each subject's λz was chosen (NCAResult docs): a range
    for subject 1 ("manual range"), exclusions for subject 2 ("best fit, with exclusions"), the best fit for
    subject 3 ("best fit (pknca)") (kills nca__mutmut_59, "XXlambda_z_methodXX", which left the column empty)."""
    from pkpd.noncompartmental import LambdaZ

    data = pd.concat([_bolus_data().assign(ID=i) for i in (1, 2, 3)], ignore_index=True)
    table = nca(data, route="iv-bolus", dose_unit="mg", lambda_z={1: LambdaZ(start=2, end=5), 2: LambdaZ(exclude=[6])})
    assert table.columns[-1] == "lambda_z_method"
    assert table["lambda_z_method"].tolist() == ["manual range", "best fit, with exclusions", "best fit (pknca)"]


def test_sparse_table_outputs_follow_the_data_order():
    """The outputs (DVID) of the sparse table come in the order they first appear in the data, as the dose groups
    do (docstring: "in the order the groups first appear in the data"): every animal lists DVID 2 before DVID 1, so
    output 2 is the first row. AUCs by hand (linear trapezoid of the means, 1 and 3 h): output 2, means 6 and 3:
    (3 - 1)/2 (6 + 3) = 9; output 1, means 9 and 3: (3 - 1)/2 (9 + 3) = 12 (kills nca_sparse_table__mutmut_60,
    ``sort=True`` for the DVID groups)."""
    rows = []
    for sid, t, c2, c1 in [(1, 1, 6.0, 8.0), (2, 1, 6.0, 10.0), (3, 3, 2.0, 2.0), (4, 3, 4.0, 4.0)]:
        rows += [{"ID": sid, "TIME": 0, "EVID": 1, "AMT": 10.0, "DV": None, "DVID": 2},
                 {"ID": sid, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c2, "DVID": 2},
                 {"ID": sid, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c1, "DVID": 1}]
    table = nca_sparse_table(pd.DataFrame(rows), dose_unit="mg")
    assert table["output"].tolist() == [2, 1]
    assert table["auc_last"].tolist() == pytest.approx([9.0, 12.0], rel=1e-12)


# =========================================================================================== seed 31
# Rules that the seventh independent sample (seed 31, 40 of 1945 mutants) showed unguarded: a flat terminal phase has
# no λz, a manual λz range ends at the last sample used, nca_profiles defaults to an extravascular route and refuses
# ADDL without steady_state, NCAResult.plot passes its axis units and titles on, and the sparse result keeps Bailer's
# weights in read-only arrays.
@pytest.mark.parametrize(("times", "conc"), [
    ([0.0, 1, 2, 3, 7, 24], [0.0, 8, 20, 5, 5, 5]),
    ([0.25, 1, 3, 8, 16, 24, 72], [2.5, 50, 7.7, 7.7, 7.7, 7.7, 7.7]),
    ([0.25, 0.5, 1, 2, 3, 12, 72], [4.0, 50, 123.4, 123.4, 123.4, 123.4, 123.4]),
])
def test_a_flat_terminal_phase_has_no_lambda_z(times, conc):
    """Equal concentrations after Cmax do not decline: the slope of ln C on t is 0, so there is no λz, no half-life
    and no AUCinf (NaN), whatever rounding the mean of equal logarithms leaves (kills _regression__mutmut_17,
    ``lc + ym`` in the slope's numerator: equal to ``lc - ym`` in exact arithmetic, but on these times the rounding
    of sum(t - mean t) gave a slope of about -3e-17, a λz of 3e-17 and an AUCinf of 1e17)."""
    res = nca_profile(times, conc, 100)
    assert math.isnan(res.lambda_z)
    assert math.isnan(res.half_life)
    assert math.isnan(res.auc_inf)


def test_a_manual_lambda_z_range_ends_at_the_last_sample_used():
    """LambdaZ(start=4, end=20) on a bolus sampled at 1, 2, 4, 8, 12, 24 h uses the samples with 4 <= t <= 20: the
    terminal phase starts at 4 h and ends at 12 h, the last sample in the range, with 3 points and λz = CL/V of the
    closed form (kills _lambda_z__mutmut_42, ``x[-2]``: an end of 8 h)."""
    from pkpd.noncompartmental import LambdaZ

    t = np.array([1.0, 2, 4, 8, 12, 24])
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", lambda_z=LambdaZ(start=4, end=20))
    assert (res.lambda_z_start, res.lambda_z_end, res.lambda_z_n) == (4.0, 12.0, 3)
    assert res.lambda_z_times == (4.0, 8.0, 12.0)
    assert res.lambda_z == pytest.approx(K, rel=1e-12)


def _oral_data(**extra):
    t = np.array([0.0, 0.5, 1, 2, 4, 6, 8, 12, 24])
    dv = 10 * (np.exp(-0.1 * t) - np.exp(-1.5 * t))
    return pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 8, "AMT": [100.0] + [0] * 8,
                         "DV": np.r_[np.nan, dv[1:]], **extra})


def test_nca_profiles_defaults_to_an_extravascular_route():
    """Without ``route``, nca_profiles treats a dose record without RATE or DUR as extravascular (its documented
    default, as nca's): the result's route is "extravascular", with no C0 and no Vss (NaN) (kills
    nca_profiles__mutmut_1, default ``"XXextravascularXX"``: every call without route refused)."""
    from pkpd.noncompartmental import nca_profiles

    res = nca_profiles(_oral_data(), dose_unit="mg")
    assert list(res) == [(1, "DV")]
    one = res[(1, "DV")]
    assert one.route == "extravascular"
    assert math.isnan(one.c0) and math.isnan(one.vss)


def test_additional_doses_without_steady_state_are_refused():
    """A dose record with ADDL > 0 makes a multiple-dose profile, which single-dose NCA refuses unless
    steady_state=True (nca's docstring): whole message, naming the row and column, through nca and nca_profiles
    (kills nca_profiles__mutmut_89, the column read as ``"XXADDLXX"``: the check never fired)."""
    from pkpd.noncompartmental import nca_profiles

    data = _oral_data(ADDL=[2] + [0] * 8, II=[12.0] + [0] * 8)
    for run in (nca, nca_profiles):
        with pytest.raises(DataError) as err:
            run(data, dose_unit="mg")
        assert str(err.value) == ("row 1, column ADDL: ID 1: additional doses (ADDL) make this a multiple-dose "
                                  "profile; give steady_state=True and tau to analyse the last interval")


def test_result_plot_passes_its_axis_units_and_titles_on():
    """``NCAResult.plot(ax=ax, **kwargs)`` hands the keywords to plot_lambda_z: the time unit labels the x axis and
    the λz in the title, the concentration unit the y axis, and the title given heads the panel (kills
    NCAResult.plot__mutmut_5, the keywords dropped: hours and no units)."""
    import matplotlib.pyplot as plt

    t = np.array([1.0, 2, 4, 8, 12, 24])
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus")
    fig, ax = plt.subplots()
    try:
        res.plot(ax=ax, time_unit="min", conc_unit="ng/mL", titles=["subject 1"])
        assert ax.get_xlabel() == "time after dose [min]"
        assert ax.get_ylabel() == "concentration [ng/mL]"
        title = ax.get_title()
        assert title.startswith("subject 1\nλz ")
        assert f"/min, t½ {math.log(2) / K:.3g} min," in title
    finally:
        plt.close("all")


def test_sparse_result_keeps_bailer_weights_in_read_only_arrays():
    """Two animals at each of 0, 1 and 3 h: the trapezoid weights are (1 - 0)/2, (3 - 0)/2 and (3 - 1)/2 = 0.5, 1.5
    and 1.0 by hand, and AUClast = sum w_j mean_j = 1.5 * 9 + 1.0 * 3 (kills nca_sparse__mutmut_147,
    ``weights=None``); the arrays of the frozen result are read-only, so a caller cannot change them under it
    (kills nca_sparse__mutmut_135, ``setflags(write=True)``)."""
    res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])
    np.testing.assert_array_equal(res.weights, [0.5, 1.5, 1.0])
    assert res.auc_last == float(np.sum(res.weights * np.array([0.0, 9.0, 3.0]))) == 16.5
    for name in ("times", "mean", "sd", "n", "weights"):
        arr = getattr(res, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1


def test_a_steady_state_interval_without_exposure_has_no_clearance():
    """A dosing interval (tau 1 h) whose samples are all 0 has AUCtau = 0: CL = Dose/AUCtau, Vz and the MRT are not
    determined and are NaN, as they are for the same profile without steady_state (CL = Dose/AUCinf, NaN without a
    terminal phase), instead of a ZeroDivisionError (found by the nca seed-31 helper); the interval's own values
    are still reported, AUCtau 0, Cavg 0 and Cmin 0 at 0 h."""
    res = nca_profile([0, 1, 2, 4], [0, 0, 5, 3], 100, tau=1, steady_state=True)
    assert (res.auc_tau, res.cavg, res.cmin, res.tmin) == (0.0, 0.0, 0.0, 0.0)
    assert all(math.isnan(v) for v in (res.cl, res.vz, res.mrt, res.fluctuation))
    assert math.isnan(nca_profile([0, 1, 2, 4], [0, 0, 5, 3], 100, tau=1).cl)


# =========================================================================================== seed 32
# Rules that the eighth independent sample (seed 32, 40 of 1949 mutants) showed unguarded: CL, V and the MRT of a
# steady-state interval whose AUCτ is positive but below 1 conc unit x time unit, and the partial areas of each
# subject in nca_profiles and in nca's table.
def test_steady_state_clearance_when_the_interval_area_is_below_one():
    """A one-compartment IV bolus at steady state (dose 1 mg every 12 h, CL 2.8 L/h, V 32 L) has AUCτ = Dose/CL =
    1/2.8 = 0.357 mg/L*h, below 1 but positive, so CL, V and the MRT are determined: CL = Dose/AUCτ = 2.8, Vz =
    Dose/(λz AUCτ) = V, MRT = 1/k and Vss = CL MRT = V (closed forms; the log-down trapezoids are exact on an
    exponential) (kills nca_profile__mutmut_352, ``auc_tau > 1``: all four NaN)."""
    tau = 12.0
    t = np.arange(0.0, 13.0)
    conc = 1 / V * np.exp(-K * t) / (1 - math.exp(-K * tau))
    res = nca_profile(t, conc, 1.0, route="iv-bolus", tau=tau, steady_state=True)
    assert res.auc_tau == pytest.approx(1 / CL, rel=1e-12)
    assert res.cl == pytest.approx(CL, rel=1e-12)
    assert res.vz == pytest.approx(V, rel=1e-12)
    assert res.mrt == pytest.approx(1 / K, rel=1e-12)
    assert res.vss == pytest.approx(V, rel=1e-12)


def test_partial_areas_of_each_subject_in_nca_profiles_and_the_table():
    """``partial=[(0, 4), (2, 12)]`` gives every subject its partial areas: for the IV bolus of 100 mg sampled
    hourly, the integrals of (100/V) exp(-k t), (100/CL)(exp(-k a) - exp(-k b)) (closed form; the log-down
    trapezoids are exact on an exponential), in NCAResult.partial_aucs of nca_profiles and in the columns auc_0_4
    and auc_2_12 of nca (kills nca_profiles__mutmut_276, ``partial=None`` passed to nca_profile: no partial areas
    and NaN columns)."""
    from pkpd.noncompartmental import nca_profiles

    def exact(a, b):
        return 100 / CL * (math.exp(-K * a) - math.exp(-K * b))

    one = nca_profiles(_bolus_data(), route="iv-bolus", dose_unit="mg", partial=[(0, 4), (2, 12)])[(1, "DV")]
    assert [(a, b) for a, b, _ in one.partial_aucs] == [(0.0, 4.0), (2.0, 12.0)]
    assert [v for _, _, v in one.partial_aucs] == pytest.approx([exact(0, 4), exact(2, 12)], rel=1e-12)
    table = nca(_bolus_data(), route="iv-bolus", dose_unit="mg", partial=[(0, 4), (2, 12)])
    assert table["auc_0_4"].tolist() == pytest.approx([exact(0, 4)], rel=1e-12)
    assert table["auc_2_12"].tolist() == pytest.approx([exact(2, 12)], rel=1e-12)


# =========================================================================================== seed 33
# Rules that the ninth independent sample (seed 33, 40 of 1949 mutants) showed unguarded: a partial area or AUCτ that
# ends inside the last sampling interval, a dose or τ that is not a real number, a negative first sampling time, the
# unit of the AUMC, an observation at the dose time in a dataset, and the output of a sparse table without DVID.
def test_areas_ending_inside_the_last_sampling_interval_interpolate():
    """A bolus sampled at 1, 2, 4, 8 and 24 h: the partial area (0, 12) and AUCτ (τ 12 h) end inside the last
    interval [8, 24], where log-down interpolates C(12) on the decline (exact on an exponential), so both equal the
    closed form (100/CL)(1 - exp(-12 k)); the linear method interpolates linearly, by hand the trapezoids of C at
    0 (C0 back-extrapolated: 100/V), 1, 2, 4, 8 and C(12) = C(8) + (C(24) - C(8)) 4/16 (kills _value_at__mutmut_21,
    ``j >= tt.size - 2``: C(12) taken as C(8))."""
    t = np.array([1.0, 2, 4, 8, 24])
    exact = 100 / CL * (1 - math.exp(-K * 12))
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", tau=12.0, partial=[(0, 12)])
    assert res.partial_aucs[0][2] == pytest.approx(exact, rel=1e-12)
    assert res.auc_tau == pytest.approx(exact, rel=1e-12)
    lin = nca_profile(t, _bolus(t), 100, route="iv-bolus", auc_method="linear", partial=[(0, 12)])
    xs = np.array([0.0, 1, 2, 4, 8, 12])
    c8, c24 = _bolus(8.0), _bolus(24.0)
    ys = np.r_[100 / V, _bolus(xs[1:5]), c8 + (c24 - c8) * 4 / 16]
    assert lin.partial_aucs[0][2] == pytest.approx(float(np.sum(np.diff(xs) * (ys[:-1] + ys[1:]) / 2)), rel=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), [("dose", {"dose": True}), ("dose", {"dose": "100"}),
                                              ("tau", {"tau": True}), ("tau", {"tau": "12"})])
def test_dose_and_tau_must_be_real_numbers(name, kwargs):
    """The dose and τ must be finite real numbers > 0: a bool (True is not an amount of 1) and a string are refused
    with the whole message naming the argument and the value (kills _positive__mutmut_6, ``isinstance(value, bool)
    and ...``: True taken as 1.0, and a string reaching math.isfinite, a TypeError)."""
    args = {"dose": 100.0, **kwargs}
    with pytest.raises(DataError) as err:
        nca_profile([1.0, 2, 4, 8], [5.0, 4, 2, 1], **args)
    assert str(err.value) == f"{name} must be a finite number > 0; got {kwargs[name]!r}"


def test_a_negative_first_sampling_time_is_refused():
    """Sampling times are times after the dose, >= 0 (nca_profile's Raises): a profile starting at -1 h, though
    increasing, is refused with the whole message (kills nca_profile__mutmut_54, ``t[1] < 0``: only the second time
    checked, so -1 h was taken)."""
    with pytest.raises(DataError) as err:
        nca_profile([-1.0, 1, 2, 4, 8], [0.0, 5, 4, 2, 1], 100)
    assert str(err.value) == "sampling times must be >= 0 (time after dose) and strictly increasing"


def test_unit_of_the_aumc_is_conc_times_time_squared():
    """AUMC = integral of t C(t) dt has the unit conc x time² (AUC conc x time): with mg/L and h, "mg/L*h^2" for
    aumc_last and aumc_inf, as "mg/L*h" for auc_last (kills _units__mutmut_66, the AUMC units set to None)."""
    units = nca(_bolus_data(), route="iv-bolus", dose_unit="mg", conc_unit="mg/L").attrs["units"]
    assert units["auc_last"] == "mg/L*h"
    assert (units["aumc_last"], units["aumc_inf"]) == ("mg/L*h^2", "mg/L*h^2")


def test_an_observation_at_the_dose_time_is_part_of_the_profile():
    """An observation recorded at the dose time (time 0 after the dose) belongs to the profile, an earlier one does
    not: an IV bolus with C 10, 6, 4, 2 at 0, 1, 2, 4 h (and a pre-dose sample at -1 h) has 4 observations, C0 the
    observed 10 (not 9, back-extrapolated from 6 and 4) and, by linear trapezoids, AUClast = (10 + 6)/2 + (6 + 4)/2
    + (4 + 2)/2 2 = 19 (kills nca_profiles__mutmut_203, ``t > 0``: the sample at the dose time dropped)."""
    from pkpd.noncompartmental import nca_profiles

    data = pd.DataFrame({"ID": 1, "TIME": [-1.0, 0, 0, 1, 2, 4], "EVID": [0, 1, 0, 0, 0, 0],
                         "AMT": [0, 100.0, 0, 0, 0, 0], "DV": [0.5, np.nan, 10, 6, 4, 2]})
    res = nca_profiles(data, route="iv-bolus", auc_method="linear", dose_unit="mg")[(1, "DV")]
    assert res.times == (0.0, 1.0, 2.0, 4.0)
    assert (res.n_obs, res.c0) == (4, 10.0)
    assert res.auc_last == pytest.approx(19.0, rel=1e-12)


def test_sparse_table_without_dvid_names_its_output_dv():
    """Without a DVID column the one output of the sparse table is named "DV", as in nca's table and the keys of
    nca_profiles (kills nca_sparse_table__mutmut_88, ``"dv"``)."""
    rows = []
    for i, (t, c) in enumerate([(1, 8.0), (1, 10.0), (3, 2.0), (3, 4.0)]):
        rows += [{"ID": i + 1, "TIME": 0, "EVID": 1, "AMT": 10.0, "DV": None},
                 {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c}]
    table = nca_sparse_table(pd.DataFrame(rows), dose_unit="mg")
    assert table["output"].tolist() == ["DV"]
    assert table["auc_last"].tolist() == pytest.approx([(3 - 1) / 2 * (9.0 + 3.0)], rel=1e-12)


# =========================================================================================== seed 34
# Rules that the tenth independent sample (seed 34, 40 of 1949 mutants) showed unguarded: under the WinNonlin rule an
# infusion's terminal phase starts after Cmax (not at the end of the infusion), Cmax and Tmax of a profile with a
# dosing interval come from the samples within [0, τ], and a dose group of the sparse table sampled at one time only.
def test_winnonlin_infusion_terminal_phase_excludes_cmax_at_the_end_of_infusion():
    """A one-compartment infusion (100 mg over 1 h, CL 2.8 L/h, V 32 L) peaks at the end of the infusion, t = 1 h,
    and then declines exactly exponentially. The WinNonlin rule differs from PKNCA's only for an IV bolus: for an
    infusion Cmax and the points before the end of the infusion are excluded (docs/nca.md), so with samples at 0.5,
    1, 2, 4, 8, 12 and 24 h the best fit uses the 5 points from 2 h, as the PKNCA rule does, and λz = k = CL/V
    (kills _lambda_z__mutmut_69, ``keep = t >= duration``: the point at Cmax joins the exact fit, 6 points from
    1 h)."""
    t = np.array([0.5, 1, 2, 4, 8, 12, 24])
    rate = 100.0
    conc = rate / CL * (1 - np.exp(-K * np.minimum(t, 1.0))) * np.exp(-K * np.maximum(t - 1.0, 0.0))
    for rule in ("winnonlin", "pknca"):
        res = nca_profile(t, conc, 100, route="iv-infusion", duration=1.0, lambda_z_rule=rule)
        assert res.tmax == 1.0
        assert (res.lambda_z_n, res.lambda_z_start, res.lambda_z_end) == (5, 2.0, 24.0)
        assert res.lambda_z_times == (2.0, 4.0, 8.0, 12.0, 24.0)
        assert res.lambda_z == pytest.approx(K, rel=1e-9)


def test_cmax_with_a_dosing_interval_ignores_samples_after_tau():
    """With a dosing interval τ, Cmax and Tmax are taken within [0, τ] (NCAResult: "within [0, tau] when a dosing
    interval is given"): a profile 0, 8, 10, 6, 3, 1.5 at 0, 1, 2, 4, 8, 12 h with a washout sample 0.5 at 24 h and
    τ = 12 h has Cmax 10 at 2 h, as without τ, and Cmin 0 at 0 h (kills nca_profile__mutmut_109, ``+np.inf`` for the
    samples outside [0, τ]: Cmax taken as the 24-h sample 0.5)."""
    t = [0.0, 1, 2, 4, 8, 12, 24]
    c = [0.0, 8, 10, 6, 3, 1.5, 0.5]
    res = nca_profile(t, c, 100, tau=12.0)
    assert (res.cmax, res.tmax) == (10.0, 2.0)
    assert (res.cmin, res.tmin) == (0.0, 0.0)


def test_sparse_table_group_sampled_at_one_time_is_refused():
    """Bailer's AUC needs samples at 2 or more distinct times; in the sparse table each dose group is one profile,
    so a group of a single animal (the one animal dosed 20 mg, beside four dosed 10 mg at 1 and 3 h) is refused with
    nca_sparse's whole message (kills nca_sparse_table__mutmut_129, the dose read from the group's second row: an
    IndexError for the one-row group)."""
    rows = []
    for i, (amt, t, c) in enumerate([(10.0, 1, 8.0), (10.0, 1, 10.0), (10.0, 3, 2.0), (10.0, 3, 4.0),
                                     (20.0, 1, 18.0)]):
        rows += [{"ID": i + 1, "TIME": 0, "EVID": 1, "AMT": amt, "DV": None},
                 {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c}]
    with pytest.raises(DataError) as err:
        nca_sparse_table(pd.DataFrame(rows), dose_unit="mg")
    assert str(err.value) == "nca_sparse: need samples at 2 or more distinct times; got 1"


# =========================================================================================== seed 35
# Rules that the eleventh independent sample (seed 35, 40 of 1949 mutants) showed unguarded: under the WinNonlin rule
# the points between an early Cmax and the end of the infusion are left out of λz, a dose smaller than 1 dose unit
# is a dose, and Bailer's SE is never reported as infinite when the true SE is finite. Judging the first found the
# PKNCA rule keeping those points (fixed, with its test).
def _infusion_peaking_early():
    """100 mg over 2 h sampled at 0.5-12 h: Cmax 8 at 1 h, inside the infusion, then samples exactly on one
    exponential C(t) = 5 exp(-k (t - 2)) at 1.5 h (still inside the infusion) and at 2, 3, 4, 6, 8, 12 h."""
    t = np.array([0.5, 1, 1.5, 2, 3, 4, 6, 8, 12])
    c = np.r_[3.0, 8.0, 5 * np.exp(-K * (t[2:] - 2))]
    return t, c


def test_winnonlin_infusion_terminal_phase_leaves_out_points_before_the_end_of_infusion():
    """The WinNonlin rule for an infusion: Cmax and the points before the end of the infusion are excluded (module
    docs, docs/nca.md). With Cmax at 1 h of a 2-h infusion the 1.5-h sample comes after Cmax but before the end of
    the infusion, so it is left out although it lies on the terminal exponential: the candidates are the 6 samples
    from 2 h, all exactly on C = 5 exp(-k (t - 2)), so every fit has R² = 1 and the one with the most points wins:
    6 points from 2 h and λz = k = CL/V (kills _lambda_z__mutmut_67, ``rule == "XXwinnonlinXX"``: the 1.5-h
    sample joins the exact fit, 7 points from 1.5 h)."""
    t, c = _infusion_peaking_early()
    res = nca_profile(t, c, 100, route="iv-infusion", duration=2.0, lambda_z_rule="winnonlin")
    assert (res.cmax, res.tmax) == (8.0, 1.0)
    assert (res.lambda_z_n, res.lambda_z_start, res.lambda_z_end) == (6, 2.0, 12.0)
    assert res.lambda_z_times == (2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
    assert res.lambda_z == pytest.approx(K, rel=1e-9)
    assert res.half_life == pytest.approx(math.log(2) / K, rel=1e-9)


def test_pknca_infusion_terminal_phase_leaves_out_points_up_to_the_end_of_infusion():
    """The PKNCA rule for an infusion: PKNCA's half.life keeps only the points with time > time.dose +
    duration.dose (R/half.life.R, ``data[data$time > max(end.dose), ]``) before it drops those up to Tmax. On the
    profile with Cmax at 1 h of a 2-h infusion that leaves the 5 points from 3 h, all on the terminal exponential:
    λz = k (before the fix the PKNCA rule took the 1.5-h sample inside the infusion, 7 points from 1.5 h; with the
    WinNonlin rule's ``t >= end`` it would take the 2-h sample at the end of the infusion, 6 points from 2 h)."""
    t, c = _infusion_peaking_early()
    res = nca_profile(t, c, 100, route="iv-infusion", duration=2.0, lambda_z_rule="pknca")
    assert (res.lambda_z_n, res.lambda_z_start, res.lambda_z_end) == (5, 3.0, 12.0)
    assert res.lambda_z_times == (3.0, 4.0, 6.0, 8.0, 12.0)
    assert res.lambda_z == pytest.approx(K, rel=1e-9)


def test_a_dose_smaller_than_one_dose_unit_is_the_dose_of_the_profile():
    """A dose record is EVID 1 or 4 with AMT > 0 (nca: "exactly one dose record ... with AMT > 0"), whatever the
    size: 0.5 mg as an IV bolus, C = 0.5/V exp(-k t) sampled hourly to 12 h, is the subject's one dose, so CL =
    Dose/AUCinf = CL and Vz = V of the one-compartment model (log-down trapezoids and C0 back-extrapolated are exact
    on one exponential) (kills nca_profiles__mutmut_66, ``AMT > 1``: no dose record found, a DataError)."""
    t = np.arange(0.0, 13.0)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": [1] + [0] * 12, "AMT": [0.5] + [0] * 12,
                         "DV": np.r_[np.nan, 0.5 / V * np.exp(-K * t[1:])]})
    res = nca(data, route="iv-bolus", dose_unit="mg").iloc[0]
    assert res["dose"] == 0.5
    assert res["cl"] == pytest.approx(CL, rel=1e-9)
    assert res["vz"] == pytest.approx(V, rel=1e-9)


def test_sparse_se_is_never_infinite_when_the_true_se_is_finite():
    """Bailer's SE = sqrt(sum w_j² s_j² / n_j): two animals at 0 and at 1e200 h (1 and 3, then 2 and 4) have
    w = 5e199 at both times and s² = 2, so SE = 5e199 sqrt(2) ≈ 7.1e199, a finite number, and the AUC is
    5e199 (2 + 3) = 2.5e200. The variance terms w² s² / n overflow the float range on the way; the SE is then
    reported as not computed (NaN) or, were it computed without the overflow, as its true value, but never as
    infinite, nor its confidence interval as (-inf, inf) (kills nca_sparse__mutmut_118, ``... or True``: the
    infinite variance term kept, SE = inf)."""
    with np.errstate(over="ignore"):
        res = nca_sparse([0, 0, 1e200, 1e200], [1.0, 3.0, 2.0, 4.0])
    assert res.auc_last == pytest.approx(2.5e200, rel=1e-12)
    true_se = 5e199 * math.sqrt(2.0)
    for value in (res.auc_last_se, res.ci_low, res.ci_high):
        assert not math.isinf(value)
    assert math.isnan(res.auc_last_se) or res.auc_last_se == pytest.approx(true_se, rel=1e-9)


# =========================================================================================== seed 36
# Rules that the twelfth independent sample (seed 36, 40 of 1953 mutants) showed unguarded: an infinite LambdaZ time
# refused, a partial area after Tlast extrapolated, a steady-state AUMCτ ending at Tlast not extrapolated (its tail
# is 0), the row of a subject's dose-count error, and Bailer's interval refused at level 1.
def test_lambda_z_refuses_an_infinite_or_non_numeric_time():
    """LambdaZ: "non-finite times" raise a DataError (its docstring), each named with its value: end = inf and
    start = -inf are refused (so is start = NaN), and a time given as a string is refused with the same message,
    not a TypeError (kills LambdaZ.__post_init____mutmut_14, ``not isinstance(v, numbers.Real) and not
    math.isfinite(v)``: an infinite real time accepted, LambdaZ(start=4.0, end=inf), and a string a TypeError from
    math.isfinite)."""
    for start, end, name, shown in ((4, math.inf, "end", "inf"), (-math.inf, 4, "start", "-inf"),
                                    (math.nan, 4, "start", "nan"), ("4", 8, "start", "'4'")):
        with pytest.raises(DataError) as err:
            LambdaZ(start=start, end=end)
        assert str(err.value) == f"LambdaZ: {name} must be a finite time; got {shown}"


def test_partial_area_after_tlast_is_extrapolated_with_lambda_z():
    """A bolus sampled at 1, 2, 4, 8, 12, 24 h (Tlast 24 h, exactly one exponential, so λz = k): the partial areas
    over [24, 48] and [30, 48] lie wholly after Tlast and are the integrals of the extrapolated exponential, Dose/CL
    (exp(-k a) - exp(-k b)) (kills _area__mutmut_1, ``inside = None``: nothing inside [0, Tlast] to add, so
    None + the tail, a TypeError)."""
    t = np.array([1.0, 2, 4, 8, 12, 24])
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", partial=[(24, 48), (30, 48)])
    for (a, b, area), (a0, b0) in zip(res.partial_aucs, ((24.0, 48.0), (30.0, 48.0))):
        assert (a, b) == (a0, b0)
        assert area == pytest.approx(100 / CL * (math.exp(-K * a0) - math.exp(-K * b0)), rel=1e-9)


def test_steady_state_aumc_tau_ending_at_tlast_has_no_tail():
    """At steady state with τ = Tlast = 8 h, AUMCτ is the trapezoidal AUMC over the samples; the λz tail over [Tlast,
    τ] is empty, 0, and is not computed. Linear trapezoids by hand, extravascular, pre-dose 0.5 S, then S exp(-0.01 t)
    at 1, 2, 4, 8 h (λz = 0.01 /h): MRT = (AUMCτ + τ (AUCinf - AUCτ)) / AUCτ = (AUMCτ + τ Clast / λz) / AUCτ, which
    is the same at any scale S of the concentrations, S = 1e305 included: there each moment of the empty tail, Clast
    (8/λz + 1/λz²) ≈ 1e309, overflows to inf and their difference is inf - inf = NaN (kills _aumc_tau__mutmut_32,
    ``tau >= t_last``: the tail computed at τ = Tlast, AUMCτ and so MRT NaN)."""
    t = np.array([0.0, 1, 2, 4, 8])
    c = np.r_[0.5, np.exp(-0.01 * t[1:])]
    auc_tau = sum(0.5 * (t[i + 1] - t[i]) * (c[i] + c[i + 1]) for i in range(4))
    aumc_tau = sum(0.5 * (t[i + 1] - t[i]) * (t[i] * c[i] + t[i + 1] * c[i + 1]) for i in range(4))
    mrt = (aumc_tau + 8 * c[-1] / 0.01) / auc_tau
    for scale in (1.0, 1e305):
        res = nca_profile(t, scale * c, 100, tau=8, steady_state=True, auc_method="linear")
        assert res.tlast == 8.0
        assert res.lambda_z == pytest.approx(0.01, rel=1e-9)
        assert res.mrt == pytest.approx(mrt, rel=1e-9)


def test_dose_count_error_names_the_first_row_of_the_subject():
    """A subject with two dose records (no steady state) is refused naming the subject and the file row of its
    first record: subject 2 starts at row 4 (an observation), its doses at rows 5 and 6, so "row 4, column AMT: ID
    2: ..."; a subject of a single record and no dose is refused the same way, at its one row (kills
    nca_profiles__mutmut_78, ``iloc[1]``: row 5 for the first, an IndexError for the second)."""
    data = pd.DataFrame({"ID": [1, 1, 1, 2, 2, 2, 2], "TIME": [0, 1, 2, 0, 0.5, 1, 2], "EVID": [1, 0, 0, 0, 1, 1, 0],
                         "AMT": [10, 0, 0, 0, 10, 10, 0], "DV": [np.nan, 2, 1, 0, np.nan, np.nan, 1]})
    with pytest.raises(DataError) as err:
        nca(data, dose_unit="mg")
    assert (err.value.row, err.value.column) == (4, "AMT")
    assert str(err.value).startswith("row 4, column AMT: ID 2: NCA here is single-dose and needs exactly one dose "
                                     "record (EVID 1 or 4, AMT > 0); got 2.")
    lone = pd.DataFrame({"ID": [1, 1, 1, 2], "TIME": [0, 1, 2, 0], "EVID": [1, 0, 0, 0], "AMT": [10, 0, 0, 0],
                         "DV": [np.nan, 2, 1, 3]})
    with pytest.raises(DataError) as err:
        nca(lone, dose_unit="mg")
    assert err.value.row == 4
    assert "ID 2: NCA here is single-dose and needs exactly one dose record" in str(err.value)
    assert "got 0." in str(err.value)


def test_sparse_level_one_is_refused():
    """Bailer's interval needs 0 < level < 1 (nca_sparse: "level must be a number in (0, 1)"): level 1, a 100 % interval
    (-inf, inf), is refused with that message, as are 0 and 1.5 (kills nca_sparse__mutmut_35, ``level <= 1``:
    level 1 accepted)."""
    for level, shown in ((1, "1"), (1.0, "1.0"), (0, "0"), (1.5, "1.5")):
        with pytest.raises(DataError) as err:
            nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4], level=level)
        assert str(err.value) == f"nca_sparse: level must be a number in (0, 1), e.g. 0.95; got {shown}"


# =========================================================================================== seed 37
# Rules that the thirteenth independent sample (seed 37, 40 of 1953 mutants) showed unguarded: a single excluded λz
# time given as a bare number, a steady-state AUMCτ of an interval that ends before Tlast, and the unit of the dose
# column.
def test_lambda_z_exclude_accepts_a_single_time():
    """LambdaZ(exclude=6) is LambdaZ(exclude=[6]): a lone number (int, float or NumPy scalar) is one excluded time,
    not refused. A bolus sampled at 1, 2, 4, 6, 8, 12 h with the 6 h sample halved (an outlier): with it excluded
    the rest are one exponential, so λz = k = CL/V exactly and 6 is not among the λz times (kills
    LambdaZ.__post_init____mutmut_43, ``isinstance(...) or True``: the number iterated, a DataError "exclude must be a
    list of sampling times")."""
    for value, shown in ((6, 6.0), (6.5, 6.5), (np.float64(6), 6.0)):
        assert LambdaZ(exclude=value).exclude == (shown,)
    t = np.array([1.0, 2, 4, 6, 8, 12])
    c = _bolus(t) * np.where(t == 6, 0.5, 1.0)
    res = nca_profile(t, c, 100, route="iv-bolus", lambda_z=LambdaZ(exclude=6))
    assert res.lambda_z == pytest.approx(K, rel=1e-9)
    assert 6.0 not in res.lambda_z_times and res.lambda_z_method == "best fit, with exclusions"


def test_steady_state_aumc_tau_of_an_interval_ending_before_tlast():
    """Steady state, tau = 3 h, linear trapezoids, samples at 0, 1, 2, 4, 6 h (1, 4, 2, 1, 0.5: after Cmax one
    exponential, λz = ln 2 / 2): the interval ends between the samples at 2 and 4 h, where the linear interpolant is
    1.5. By hand AUCτ = 2.5 + 3 + 1.75 = 7.25 and AUMCτ, the trapezoids of t·C at 0, 1, 2, 3, = 2 + 4 + 4.25 = 10.25;
    AUClast = 10, AUCinf = 10 + 0.5 / λz, so MRT = (AUMCτ + τ (AUCinf - AUCτ)) / AUCτ (kills _aumc_tau__mutmut_7,
    ``(tt > 0) | (tt < hi)``: the samples after tau enter AUMCτ, the path 2 → 4 → 6 → 3 h gives 9.75)."""
    lz = math.log(2.0) / 2
    res = nca_profile([0, 1, 2, 4, 6], [1, 4, 2, 1, 0.5], 100, tau=3, steady_state=True, auc_method="linear")
    assert res.lambda_z == pytest.approx(lz, rel=1e-12)
    assert res.auc_tau == pytest.approx(7.25, rel=1e-12)
    assert res.cl == pytest.approx(100 / 7.25, rel=1e-12)
    auc_inf = 10 + 0.5 / lz
    assert res.auc_inf == pytest.approx(auc_inf, rel=1e-12)
    assert res.mrt == pytest.approx((10.25 + 3 * (auc_inf - 7.25)) / 7.25, rel=1e-12)


def test_units_of_the_dose_column():
    """The ``dose`` column is in the unit of AMT (``dose_unit``), with or without a concentration unit (kills
    _units__mutmut_71, ``out["dose"] = None``)."""
    assert nca(_bolus_data(), route="iv-bolus", dose_unit="mg", conc_unit="mg/L").attrs["units"]["dose"] == "mg"
    units = nca(_bolus_data(), route="iv-bolus", dose_unit="ug").attrs["units"]
    assert units["dose"] == "ug" and "cl" not in units


# =========================================================================================== 2026-12-07
def test_an_exclude_time_given_as_a_zero_dimensional_array_is_that_one_time():
    """LambdaZ(exclude=x) with a single time: 6 and np.float64(6) were taken as [6], but np.array(6.0) (a 0-d array,
    as np.asarray(6.0) gives) was refused as "not a list of sampling times", iterating over it being a TypeError. It
    is the same one time: λz fitted without the 6 h sample is the one of exclude=[6] and, the profile being exactly
    mono-exponential, the rate constant K."""
    t = np.array([1.0, 2, 4, 6, 8, 12, 24])
    given = LambdaZ(exclude=np.array(6.0))
    assert given == LambdaZ(exclude=[6.0]) and given.exclude == (6.0,)
    res = nca_profile(t, _bolus(t), 100, route="iv-bolus", lambda_z=given)
    assert 6.0 not in res.lambda_z_times
    assert res.lambda_z == pytest.approx(K, rel=1e-9)
    with pytest.raises(DataError, match="exclude must be a list of sampling times"):
        LambdaZ(exclude=np.array([[6.0, 8.0], [12.0, 24.0]]))


# =========================================================================================== seed 38
# Rules that the fourteenth independent sample (seed 38, 40 of 1956 mutants) showed unguarded: sampling times given
# as a column or a row of a 2-D array are the profile's times, and with tau only the samples of the interval [0, tau]
# give Cmax, Cmin and Tmin (and none there is an error).
def test_times_given_as_a_column_or_a_row_are_the_profile_times():
    """Times as an (n, 1) column or a (1, n) row (``df[["TIME"]].to_numpy()``) with 1-D concentrations are the n
    sampling times, not refused as "differ in length (4 vs 4)". Extravascular, linear trapezoids, samples at 0, 1, 2,
    4 h of 0, 4, 2, 1: by hand AUClast = 2 + 3 + 3 = 8, Cmax 4 at 1 h (kills nca_profile__mutmut_21,
    ``reshape(None)`` for ``reshape(-1)``: the 2-D times kept, their shape not the one of the concentrations)."""
    times = np.array([0.0, 1.0, 2.0, 4.0])
    for given in (times[:, None], times[None, :]):
        res = nca_profile(given, [0.0, 4.0, 2.0, 1.0], 10, auc_method="linear")
        assert res.times == (0.0, 1.0, 2.0, 4.0) and res.n_obs == 4
        assert (res.cmax, res.tmax, res.clast, res.tlast) == (4.0, 1.0, 1.0, 4.0)
        assert res.auc_last == pytest.approx(8.0, rel=1e-12)


def test_cmax_and_cmin_with_tau_come_from_the_samples_of_the_interval():
    """tau = 4 h, samples at 1, 2, 3, 4 h (4, 8, 6, 5) and after the interval at 6 and 8 h (9, 3: the next dose's
    profile). Only [0, 4] counts: Cmax 8 at 2 h, Cmin 4 at 1 h; linear trapezoids from 0 (no pre-dose sample, start 0)
    give AUCτ = 2 + 6 + 7 + 5.5 = 20.5, so Cavg = 5.125, fluctuation = 100 (8 - 4) / 5.125 and swing = 100 (8 - 4) / 4
    = 100 %. A tau before the first sample leaves none in the interval: refused, naming it (kills
    nca_profile__mutmut_88, ``(tau is None) or True``: every sample in the interval, Cmax 9 at 6 h, Cmin 3 at 8 h, and
    no error)."""
    res = nca_profile([1, 2, 3, 4, 6, 8], [4, 8, 6, 5, 9, 3], 100, tau=4, auc_method="linear")
    assert (res.cmax, res.tmax, res.cmin, res.tmin) == (8.0, 2.0, 4.0, 1.0)
    assert res.auc_tau == pytest.approx(20.5, rel=1e-12)
    assert res.cavg == pytest.approx(5.125, rel=1e-12)
    assert res.fluctuation == pytest.approx(100 * 4 / 5.125, rel=1e-12)
    assert res.swing == pytest.approx(100.0, rel=1e-12)
    with pytest.raises(DataError, match=r"^no sample within the dosing interval \[0, 0\.5\]$"):
        nca_profile([1, 2, 3, 4], [4, 8, 6, 5], 100, tau=0.5)


# =========================================================================================== seed 39
# Rules that the fifteenth independent sample (seed 39, 40 of 1956 mutants) showed unguarded: zero concentrations
# after Tlast are left out of the areas, and BLQ samples before the first quantified one count as 0, not as their DV.
def test_zero_concentrations_after_tlast_are_left_out_of_the_areas():
    """A profile ending in a 0 (a sample below the limit written as 0): 0, 4, 2, 1, 0 at 0, 1, 2, 4, 8 h. Tlast is
    4 h (Clast 1), all 5 samples are the profile, and the areas stop at Tlast: by hand, linear trapezoids, AUClast =
    2 + 3 + 3 = 8 and AUMClast (trapezoids of t·C = 0, 4, 4, 4) = 2 + 4 + 8 = 14; linear-up/log-down, AUClast = 2 +
    (4 - 2)/ln 2 + 2 (2 - 1)/ln 2 = 2 + 4/ln 2. Not sampled at the dose (times 1, 2, 4, 8 h), the extravascular
    profile starts from 0 at 0 h: the same areas (kills nca_profile__mutmut_144, ``c[: i_last + 2]``: one more
    concentration than times, a ValueError from the trapezoids)."""
    for t, c in (([0, 1, 2, 4, 8], [0, 4, 2, 1, 0]), ([1, 2, 4, 8], [4, 2, 1, 0])):
        res = nca_profile(t, c, 10, auc_method="linear")
        assert (res.tlast, res.clast, res.n_obs) == (4.0, 1.0, len(t))
        assert res.conc == tuple(float(v) for v in c)
        assert res.auc_last == pytest.approx(8.0, rel=1e-12)
        assert res.aumc_last == pytest.approx(14.0, rel=1e-12)
        res = nca_profile(t, c, 10)
        assert res.auc_last == pytest.approx(2 + 4 / math.log(2.0), rel=1e-12)


@pytest.mark.parametrize("dv, extra", [(0.1, {"BLQ": [0, 1, 0, 0, 0]}), (0.05, {"LLOQ": 0.1})],
                         ids=["BLQ flag, DV the LLOQ", "DV below the LLOQ column"])
def test_blq_before_the_first_quantified_sample_counts_as_zero(dv, extra):
    """A BLQ sample before the first quantified concentration is a 0, whatever its DV (the LLOQ 0.1 with BLQ=1, as
    the reader asks for, or 0.05 under an LLOQ column of 0.1): samples at 0.5, 1, 2, 4 h after the dose, BLQ, 8, 4, 2,
    are the profile 0, 8, 4, 2, and by hand, linear trapezoids from C = 0 at the dose, AUClast = 0 + 2 + 6 + 6 = 14
    (kills nca_profiles__mutmut_242, ``np.where(None, 0.0, c)``: the DV kept, AUClast 14.05 or 14.025)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 0.5, 1, 2, 4], "EVID": [1, 0, 0, 0, 0], "AMT": [10.0, 0, 0, 0, 0],
                         "DV": [np.nan, dv, 8, 4, 2], **extra})
    res = nca_profiles(data, auc_method="linear", dose_unit="mg")[(1, "DV")]
    assert res.times == (0.5, 1.0, 2.0, 4.0)
    assert res.conc == (0.0, 8.0, 4.0, 2.0)
    assert res.auc_last == pytest.approx(14.0, rel=1e-12)
    assert nca(data, auc_method="linear", dose_unit="mg").iloc[0]["auc_last"] == pytest.approx(14.0, rel=1e-12)


# =========================================================================================== seed 40
# Rules that the sixteenth independent sample (seed 40, 40 of 1956 mutants) showed unguarded: an IV infusion without
# a duration > 0 is refused, given directly or through a dataset whose dose record has neither RATE nor DUR, and the
# LLOQ column of a dataset built by hand is read as numbers whatever its dtype.
def test_an_iv_infusion_without_a_duration_is_refused():
    """route="iv-infusion" needs the infusion's duration (it enters the MRT, MRT = AUMC/AUC - duration/2, and the
    points before its end are kept out of λz): none (the default 0), a negative one or NaN is refused with the
    documented message, and so is route="iv-infusion" for a dataset whose dose record has neither RATE nor DUR (the
    subject named). A duration of 1 h is accepted (kills nca_profile__mutmut_67, ``route == "XXiv-infusionXX"``: no
    error, the profile analysed as an infusion of duration 0)."""
    t = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 12.0])
    c = _bolus(t)
    for given, shown in ((None, "0.0"), (0.0, "0.0"), (-1.0, "-1.0"), (math.nan, "nan")):
        kwargs = {} if given is None else {"duration": given}
        with pytest.raises(DataError, match=rf"^an iv-infusion needs its duration > 0; got {shown}$"):
            nca_profile(t, c, 100, route="iv-infusion", **kwargs)
    assert nca_profile(t, c, 100, route="iv-infusion", duration=1.0).n_obs == 6
    data = pd.DataFrame({"ID": 1, "TIME": np.r_[0.0, t], "EVID": [1] + [0] * 6, "AMT": [100.0] + [0] * 6,
                         "DV": np.r_[np.nan, c]})
    with pytest.raises(DataError, match=r"^ID 1: an iv-infusion needs its duration > 0; got 0\.0$"):
        nca_profiles(data, route="iv-infusion", dose_unit="mg")
    with pytest.raises(DataError, match=r"^ID 1: an iv-infusion needs its duration > 0; got 0\.0$"):
        nca(data, route="iv-infusion", dose_unit="mg")


def test_a_dataset_built_by_hand_with_an_object_lloq_column_is_censored_below_its_lloq():
    """LLOQ is read as numbers whatever the column's dtype: a NonmemDataset built by hand (the public dataclass, as
    ``dataclasses.replace`` gives) whose LLOQ column holds Python objects (none at the dose, 0.1, NaN, 0.1, 0.1)
    against DVs 4, 2, 1, 0.05 at 1, 2, 4, 8 h: the 0.05 after the last quantified sample is below its limit and
    dropped, the 2 without a limit kept. By hand, linear trapezoids from C = 0 at the dose, AUClast = 2 + 3 + 3 = 8
    to Tlast 4 h (with the 0.05 kept: 10.1 to 8 h) (kills nca_profiles__mutmut_223, ``to_numpy(dtype=None)``: an
    object array that np.isfinite refuses, a TypeError; read_nonmem itself always gives a float64 LLOQ)."""
    import dataclasses

    from pkpd.nonmem import read_nonmem

    table = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 4, 8], "EVID": [1, 0, 0, 0, 0], "AMT": [10.0, 0, 0, 0, 0],
                          "DV": [np.nan, 4, 2, 1, 0.05], "LLOQ": [np.nan, 0.1, np.nan, 0.1, 0.1]})
    dataset = read_nonmem(table, dose_unit="mg")
    by_hand = dataclasses.replace(dataset, table=dataset.data.assign(LLOQ=dataset.data["LLOQ"].astype(object)))
    assert by_hand.data["LLOQ"].dtype == object
    res = nca_profiles(by_hand, auc_method="linear")[(1, "DV")]
    assert res.times == (1.0, 2.0, 4.0) and (res.tlast, res.clast) == (4.0, 1.0)
    assert res.auc_last == pytest.approx(8.0, rel=1e-12)
    assert nca(by_hand, auc_method="linear").iloc[0]["auc_last"] == pytest.approx(8.0, rel=1e-12)


def test_a_table_with_pandas_nullable_columns_reads_their_missing_cells_as_missing():
    """A table of pandas' nullable dtypes (``df.convert_dtypes()``, ``read_csv(dtype_backend="numpy_nullable")``)
    holds pd.NA in its missing cells: they are missing cells like NaN or ".", not a value "<NA>" refused as "must be
    a finite number" (and so is a NaN of NumPy's float32 in an object column, not a value "nan"). The profile 0
    (extravascular, from the dose), 4, 2, 1 at 1, 2, 4 h with the 0.05 at 8 h below its LLOQ 0.1 dropped gives by
    hand, linear trapezoids, AUClast = 2 + 3 + 3 = 8 (found while checking nca_profiles__mutmut_223, seed 40:
    read_nonmem refused the table, "row 1, column DV: ... got '<NA>'")."""
    from pkpd.nonmem import read_nonmem

    table = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 4, 8], "EVID": [1, 0, 0, 0, 0], "AMT": [10.0, 0, 0, 0, 0],
                          "DV": [np.nan, 4, 2, 1, 0.05], "LLOQ": [np.nan, 0.1, np.nan, 0.1, 0.1]}).convert_dtypes()
    assert table["DV"].isna().iloc[0] and table["DV"].iloc[0] is pd.NA and table["LLOQ"].iloc[2] is pd.NA
    data = read_nonmem(table, dose_unit="mg").data
    np.testing.assert_array_equal(data["DV"], [np.nan, 4, 2, 1, 0.05])
    np.testing.assert_array_equal(data["LLOQ"], [np.nan, 0.1, np.nan, 0.1, 0.1])
    res = nca(table, auc_method="linear", dose_unit="mg").iloc[0]
    assert (res["n_obs"], res["tlast"]) == (3, 4.0)
    assert res["auc_last"] == pytest.approx(8.0, rel=1e-12)
    dv = pd.Series([np.float32("nan"), np.float32(3.25)], dtype=object)      # a NaN of NumPy's float32, not float
    np.testing.assert_array_equal(read_nonmem(pd.DataFrame({"ID": 1, "TIME": [0.0, 1.0], "AMT": [10.0, 0.0], "DV": dv}),
                                              dose_unit="mg").data["DV"], [np.nan, 3.25])
    ids = pd.array([1, None], dtype="Int64")
    with pytest.raises(DataError, match="ID is missing; every record needs an ID"):
        read_nonmem(pd.DataFrame({"ID": ids, "TIME": [0.0, 1.0], "AMT": [10.0, 0.0], "DV": [np.nan, 2.0]}),
                    dose_unit="mg")


# =========================================================================================== seed 41
# Rules that the seventeenth independent sample (seed 41, 40 of 1956 mutants) showed unguarded: a manual λz range
# keeps the samples at both of its ends at large times, a dose record with AMT 0 is not a dose, and Bailer's sparse
# NCA drops NaN samples and refuses negative sampling times.
def test_a_manual_lambda_z_range_keeps_its_end_samples_at_large_times():
    """LambdaZ(start=20000, end=40000) uses every positive sample with start <= t <= end (its docstring), here the
    samples at 20000, 30000 and 40000 (minutes, say: two to four weeks). Above 2**14 a time's spacing (3.6e-12) is
    more than twice the rounding tolerance 1e-12, so end + 1e-12 rounds to end itself. With C = 8, 4, 1 at three
    equally spaced times the least-squares slope of ln C is (ln 1 - ln 8) / (2 Δ), Δ = 10000: λz = ln 8 / 20000
    (kills _lambda_z__mutmut_13, ``t < choice.end + 1e-12``: the sample at 40000 left out, 2 points, refused; and the
    seed-29 mutant _lambda_z__mutmut_10, ``t > choice.start - 1e-12``, the sample at 20000 left out)."""
    t = np.array([0.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0])
    c = np.array([0.0, 10.0, 8.0, 4.0, 1.0, 0.5])
    res = nca_profile(t, c, 100, lambda_z=LambdaZ(start=20000, end=40000))
    assert (res.lambda_z_n, res.lambda_z_start, res.lambda_z_end) == (3, 20000.0, 40000.0)
    assert res.lambda_z == pytest.approx(math.log(8.0) / 20000, rel=1e-12)


def test_a_dose_record_with_amt_zero_is_not_a_dose():
    """Each subject needs exactly one dose record, "EVID 1 or 4, AMT > 0" (nca's docstring): a record with EVID 1
    and AMT 0 at 6 h (a dose held, say) is not a second dose. An IV bolus sampled 4, 2, 1 at 1, 2, 4 h and 0.25 at
    8 h: C0 = 4^2 / 2 = 8 (log-linear back-extrapolation) and by hand, linear trapezoids, AUClast = (8 + 4) / 2 +
    (4 + 2) / 2 + 2 (2 + 1) / 2 + 4 (1 + 0.25) / 2 = 6 + 3 + 3 + 2.5 = 14.5 to 8 h (kills
    nca_profiles__mutmut_65, ``AMT >= 0``: two dose records, refused)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 4, 6, 8], "EVID": [1, 0, 0, 0, 1, 0],
                         "AMT": [100.0, 0, 0, 0, 0, 0], "DV": [np.nan, 4, 2, 1, np.nan, 0.25]})
    res = nca_profiles(data, route="iv-bolus", auc_method="linear", dose_unit="mg")[(1, "DV")]
    assert (res.dose, res.n_obs, res.tlast, res.c0) == (100.0, 4, 8.0, pytest.approx(8.0, rel=1e-12))
    assert res.auc_last == pytest.approx(14.5, rel=1e-12)


def test_bailers_sparse_nca_drops_nan_samples():
    """nca_sparse drops NaN samples (its docstring): two animals at 0, 1 and 3 h, one of those at 3 h without a
    result (NaN). By Bailer's weights 0.5, 1.5, 1.0 on the means 0, 9, 2: AUClast = 1.5 * 9 + 1.0 * 2 = 15.5, with
    the NaN animal left out of the count (n 2, 2, 1), and the SE NaN (one animal at 3 h, no SD there) (kills
    nca_sparse__mutmut_19, ``ok = None``: the NaN kept, the mean at 3 h and AUClast NaN)."""
    res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, math.nan])
    assert res.n.tolist() == [2, 2, 1]
    np.testing.assert_array_equal(res.mean, [0.0, 9.0, 2.0])
    assert res.auc_last == pytest.approx(15.5, rel=1e-12)
    assert math.isnan(res.auc_last_se)


def test_bailers_sparse_nca_refuses_negative_times():
    """Sampling times before the dose are refused with the documented message, a NaN concentration beside them or
    not (kills nca_sparse__mutmut_25, ``np.any(None)``: no check, an area from -1 h)."""
    for conc in ([1.0, 2.0, 8.0, 10.0, 2.0, 4.0], [1.0, math.nan, 8.0, 10.0, 2.0, 4.0]):
        with pytest.raises(DataError, match=r"^nca_sparse: sampling times must be finite and >= 0$"):
            nca_sparse([-1, -1, 1, 1, 3, 3], conc)
    assert nca_sparse([0, 0, 1, 1, 3, 3], [1.0, 2.0, 8.0, 10.0, 2.0, 4.0]).auc_last == pytest.approx(
        0.5 * 1.5 + 1.5 * 9 + 1.0 * 3, rel=1e-12)


def test_a_manual_lambda_z_range_takes_in_a_sample_whose_time_is_off_by_rounding():
    """The ends of a manual λz range match the sampling times to rounding, as its exclusions do (np.isclose, 1e-9
    relative and absolute): a dataset in minutes dosed at 0.1 min and sampled at 1000.1, 8384.2, 12384.2 and
    16384.2 min gives the profile times 1000, 8384.1, 12384.1 and 16384.100000000002 (TIME - dose time, rounded),
    and LambdaZ(start=8384.1, end=16384.1) takes in the last three. C = 8, 4, 2 every 4000 min is a mono-exponential:
    λz = ln 2 / 4000 per min exactly (found beside _lambda_z__mutmut_13, seed 41: the absolute tolerance 1e-12 is
    below half the spacing of floats above 2**14, so the sample at 16384.100000000002 was left out and the range
    refused with only 2 points)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.1, 1000.1, 8384.2, 12384.2, 16384.2], "EVID": [1, 0, 0, 0, 0],
                         "AMT": [100.0, 0, 0, 0, 0], "DV": [np.nan, 20.0, 8.0, 4.0, 2.0]})
    choice = LambdaZ(start=8384.1, end=16384.1)
    res = nca_profiles(data, time_unit="min", dose_unit="mg", lambda_z=choice)[(1, "DV")]
    assert res.lambda_z_n == 3 and res.lambda_z_start == 8384.1 and res.lambda_z_end == pytest.approx(16384.1)
    assert res.lambda_z == pytest.approx(math.log(2.0) / 4000, rel=1e-9)
    assert nca(data, time_unit="min", dose_unit="mg", lambda_z=choice).iloc[0]["lambda_z_n"] == 3


# =========================================================================================== seed 42
# Rules that the eighteenth independent sample (seed 42, 40 of 1965 mutants) showed unguarded: the AUMC of a
# linear-up/log-down analysis integrates t·C exactly on a decline, the R² of the λz fit is reported, and the
# regression of ln C on t gives no adjusted R² (NaN, no error) for two points.
def test_the_log_down_aumc_of_an_exponential_decline_is_exact():
    """An IV bolus C = 8 e^{-t/2} sampled at 0, 1, 2, 4 and 8 h: on every falling segment the log-down AUMC is the
    exact moment of the exponential, so AUMClast = ∫0^8 t C dt = (C0/k²) (1 - e^{-kT} (1 + kT)) = 32 (1 - 5 e^{-4}),
    AUMCinf = C0/k² = 32, MRT = 1/k = 2 h and Vss = CL MRT = Dose/C0 = 12.5 (closed forms); linear trapezoids on t·C,
    by hand 0.5 (0 + 8e^{-1/2}) + 0.5 (8e^{-1/2} + 16e^{-1}) + (16e^{-1} + 32e^{-2}) + 2 (32e^{-2} + 64e^{-4}),
    give 29.018 for 29.069 (kills nca_profile__mutmut_203, ``_aumc_segments(tt, cc, None)``: the linear AUMC under
    log-down, AUMCinf 31.948 and MRT 1.9968 h)."""
    k, t = 0.5, np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    c = 8.0 * np.exp(-k * t)
    res = nca_profile(t, c, 100, route="iv-bolus")
    assert res.c0 == 8.0 and res.lambda_z == pytest.approx(k, rel=1e-12)
    assert res.aumc_last == pytest.approx(8.0 / k**2 * (1 - math.exp(-k * 8) * (1 + k * 8)), rel=1e-12)
    assert res.aumc_inf == pytest.approx(32.0, rel=1e-12)
    assert res.mrt == pytest.approx(2.0, rel=1e-12)
    assert res.vss == pytest.approx(12.5, rel=1e-12)
    e = math.exp
    linear = (0.5 * 8 * e(-0.5) + 0.5 * (8 * e(-0.5) + 16 * e(-1)) + (16 * e(-1) + 32 * e(-2))
              + 2 * (32 * e(-2) + 64 * e(-4)))
    assert nca_profile(t, c, 100, route="iv-bolus", auc_method="linear").aumc_last == pytest.approx(linear, rel=1e-12)


def test_the_r_squared_of_the_lambda_z_fit_is_reported():
    """Cmax 2 at 1 h, then ln C = 0, -1, -3 at 2, 3 and 4 h: the terminal phase is those three points (PKNCA's rule
    leaves Cmax out) and, by the closed form of a straight-line fit, Sxx = 2, Sxy = -3, Syy = 14/3: λz = 1.5,
    R² = Sxy²/(Sxx Syy) = 27/28 and adjusted R² = 1 - (1 - R²) (n - 1)/(n - 2) = 13/14, in the NCAResult and in the
    table of ``nca`` (kills nca_profile__mutmut_430, ``r_squared=None``)."""
    t, c = [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, math.exp(-1.0), math.exp(-3.0)]
    res = nca_profile(t, c, 10)
    assert (res.lambda_z_n, res.lambda_z_start, res.lambda_z_end) == (3, 2.0, 4.0)
    assert res.lambda_z == pytest.approx(1.5, rel=1e-12)
    assert isinstance(res.r_squared, float) and res.r_squared == pytest.approx(27 / 28, rel=1e-12)
    assert res.adj_r_squared == pytest.approx(13 / 14, rel=1e-12)
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, *t], "EVID": [1, 0, 0, 0, 0], "AMT": [10.0, 0, 0, 0, 0],
                         "DV": [np.nan, *c]})
    row = nca(data, dose_unit="mg").iloc[0]
    assert row["r_squared"] == pytest.approx(27 / 28, rel=1e-12)
    assert row["adj_r_squared"] == pytest.approx(13 / 14, rel=1e-12)


def test_the_regression_of_two_points_has_no_adjusted_r_squared():
    """``_regression`` gives (slope, intercept, R², adjusted R²) of ln C on t, or None when the times do not vary (its
    docstring); with two points the line goes through both, slope (ln 2 - ln 8)/(3 - 1) = -ln 2, intercept ln 8 +
    ln 2 = ln 16, R² 1, and the adjusted R² has n - 2 = 0 degrees of freedom: NaN, not an error. Both callers pass at
    least 3 points (MIN_LAMBDA_Z_POINTS), so this is the private function's own contract (kills
    _regression__mutmut_55, ``n >= 2``: ZeroDivisionError)."""
    from pkpd.noncompartmental import _regression

    slope, icept, r2, adj = _regression(np.array([1.0, 3.0]), np.log([8.0, 2.0]))
    assert slope == pytest.approx(-math.log(2.0), rel=1e-12)
    assert icept == pytest.approx(math.log(16.0), rel=1e-12)
    assert r2 == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(adj)
    assert _regression(np.array([2.0, 2.0]), np.log([8.0, 2.0])) is None
    assert _regression(np.array([1.0]), np.log([8.0])) is None


# =========================================================================================== seed 43
# Rules that the nineteenth independent sample (seed 43, 40 of 1965 mutants) showed unguarded: the percentage of
# AUCinf extrapolated past Tlast is a percentage, and in Bailer's variance a time whose trapezoid weight is 0 adds
# nothing, even with one animal there.
def test_the_percentage_of_auc_extrapolated_is_the_tail_over_aucinf_in_percent():
    """An IV bolus C = 8 · 2^{-t} sampled at 0, 1, 2 and 3 h: the log-down AUC of an exponential is exact, so AUClast =
    ∫0^3 C dt = (8/ln 2) (1 - 1/8) = 7/ln 2, the tail Clast/λz = 1/ln 2 and AUCinf = 8/ln 2 (closed forms); the
    extrapolated percentage 100 · (1/ln 2)/(8/ln 2) = 12.5 %, in the NCAResult and in the table of ``nca`` (kills
    nca_profile__mutmut_222, ``101.0 *`` for ``100.0 *``: 12.625 %)."""
    t = np.array([0.0, 1.0, 2.0, 3.0])
    c = 8.0 * 2.0**-t
    res = nca_profile(t, c, 10, route="iv-bolus")
    assert res.lambda_z == pytest.approx(math.log(2.0), rel=1e-12)
    assert res.auc_last == pytest.approx(7 / math.log(2.0), rel=1e-12)
    assert res.auc_inf == pytest.approx(8 / math.log(2.0), rel=1e-12)
    assert res.auc_pct_extrap == pytest.approx(12.5, rel=1e-12)
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, *t], "EVID": [1, 0, 0, 0, 0], "AMT": [10.0, 0, 0, 0, 0],
                         "DV": [np.nan, *c]})
    row = nca(data, route="iv-bolus", dose_unit="mg").iloc[0]
    assert row["auc_pct_extrap"] == pytest.approx(12.5, rel=1e-12)


def test_bailers_variance_gives_a_zero_weight_time_with_one_animal_no_term():
    """Bailer's SE² = Σ w_j² s_j²/n_j: a time with one animal has no SD, so its term is unknown (NaN) unless its
    trapezoid weight is 0, when it is 0 whatever the SD. Distinct sampling times 0 and 5e-324 (the smallest double)
    give the weight of time 0 (5e-324)/2, which rounds to 0 in doubles: with one animal at 0 h, two (8, 10) at 5e-324
    and two (2, 4) at 2 h, the weights are 0, 1, 1, AUClast = 9 + 3 = 12 and SE² = 1 · 2/2 + 1 · 2/2 = 2 by Bailer's
    formula, SE = √2 (kills nca_sparse__mutmut_115, a term of 1.0 for 0.0 at a zero weight: SE √3)."""
    tiny = 5e-324
    assert tiny > 0.0 and tiny / 2 == 0.0
    res = nca_sparse([0.0, tiny, tiny, 2.0, 2.0], [5.0, 8.0, 10.0, 2.0, 4.0])
    assert res.weights.tolist() == [0.0, 1.0, 1.0] and res.n.tolist() == [1, 2, 2]
    assert res.auc_last == 12.0
    assert res.auc_last_se == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert res.ci_high - res.auc_last == pytest.approx(1.959963984540054 * math.sqrt(2.0), rel=1e-9)


# =========================================================================================== seed 44
# Rules that the twentieth independent sample (seed 44, 40 of 1969 mutants) showed unguarded: the λz fit of a flat
# terminal phase (R² 1, the most points among equally perfect fits), a manual λz range of exactly 3 points, and a
# sample flagged BLQ=1 whose DV is the LLOQ of an LLOQ column; checking it found observations with a missing DVID
# left out of the analysis without a word (fixed).
def test_a_flat_terminal_phase_is_a_perfect_fit_with_the_most_points():
    """Concentrations 1 at 2, 3, 4 and 6 h after Cmax 3 at 1 h: ln C = 0 on every λz candidate, so each regression has
    zero residuals and zero spread, slope 0 (no λz: NaN) and R² = adjusted R² = 1, a perfect fit (R² never exceeds 1).
    Every candidate fits equally well, so the documented rule takes the one with the most points: 4, from 2 to 6 h.
    Kills _regression__mutmut_41 (R² 2.0 for 1.0 when ln C does not vary: R² 2, adjusted 3 with 3 points, and the
    best fit shrank to the 3 last points)."""
    from pkpd.noncompartmental import _regression

    assert _regression(np.array([2.0, 3.0, 4.0, 6.0]), np.zeros(4)) == (0.0, 0.0, 1.0, 1.0)
    t = np.array([0.5, 1.0, 2.0, 3.0, 4.0, 6.0])
    c = np.array([0.5, 3.0, 1.0, 1.0, 1.0, 1.0])
    res = nca_profile(t, c, 10)
    assert math.isnan(res.lambda_z) and math.isnan(res.half_life)
    assert (res.r_squared, res.adj_r_squared) == (1.0, 1.0)
    assert (res.lambda_z_n, res.lambda_z_start, res.lambda_z_end) == (4, 2.0, 6.0)
    assert res.lambda_z_times == (2.0, 3.0, 4.0, 6.0)
    manual = nca_profile(t, c, 10, lambda_z=LambdaZ(start=2, end=6))
    assert (manual.lambda_z_n, manual.r_squared, manual.adj_r_squared) == (4, 1.0, 1.0)


def test_a_manual_lambda_z_range_of_exactly_three_points_is_enough():
    """A manual λz needs at least 3 points (MIN_LAMBDA_Z_POINTS, the docstring: "fewer than 3 points is an error"), so
    a range holding exactly 3 is fitted: C = 10 e^{-0.2 t} sampled at 1, 2, 4, 8 and 12 h with the range [4, 12] gives
    λz = 0.2 /h (the exponent), t½ = ln 2/0.2, 3 points from 4 to 12 h and R² 1, while 2 points are refused (whole
    message). Kills _lambda_z__mutmut_97 (``<=`` for ``<``: the 3-point range refused with "only 3 positive
    concentration(s)... needs at least 3 points")."""
    t = np.array([1.0, 2.0, 4.0, 8.0, 12.0])
    c = 10.0 * np.exp(-0.2 * t)
    res = nca_profile(t, c, 10, route="iv-bolus", lambda_z=LambdaZ(start=4, end=12))
    assert res.lambda_z == pytest.approx(0.2, rel=1e-12)
    assert res.half_life == pytest.approx(math.log(2.0) / 0.2, rel=1e-12)
    assert (res.lambda_z_n, res.lambda_z_times) == (3, (4.0, 8.0, 12.0))
    assert res.r_squared == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(DataError) as err:
        nca_profile(t, c, 10, route="iv-bolus", lambda_z=LambdaZ(start=8, end=12))
    assert str(err.value) == ("manual lambda_z from 8 to 12: only 2 positive concentration(s) in that range; a "
                              "terminal phase needs at least 3 points. Widen the range")


def test_a_blq_flag_counts_when_the_data_also_have_an_lloq_column():
    """BLQ=1 marks a sample below the LLOQ whatever its DV (read_nonmem asks for a DV there, e.g. the LLOQ); with an
    LLOQ column as well, a DV below its LLOQ is BLQ too, but the flag still counts. Samples 0.1 (BLQ=1), 4, 2, 1, 0.1
    (BLQ=1) at 0.5, 1, 2, 4 and 8 h after an extravascular dose, LLOQ 0.1 throughout: the first BLQ sample is a 0 and
    the last one is dropped (the module's rule), so the profile is 0, 4, 2, 1 at 0.5-4 h, Tlast 4 h, Clast 1, and by
    hand AUClast = 0 + (0 + 4)/2 · 0.5 + (4 - 2)/ln 2 + 2 (2 - 1)/ln 2 = 1 + 4/ln 2 (linear up, log down). Kills
    nca_profiles__mutmut_226 (``blq = ...`` for ``blq |= ...``: the flags forgotten, the DVs 0.1 kept as quantified,
    Tlast 8 h)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 0.5, 1, 2, 4, 8], "EVID": [1, 0, 0, 0, 0, 0],
                         "AMT": [10.0, 0, 0, 0, 0, 0], "DV": [np.nan, 0.1, 4, 2, 1, 0.1], "BLQ": [0, 1, 0, 0, 0, 1],
                         "LLOQ": 0.1})
    res = nca_profiles(data, dose_unit="mg")[(1, "DV")]
    assert res.times == (0.5, 1.0, 2.0, 4.0) and res.conc == (0.0, 4.0, 2.0, 1.0)
    assert (res.tlast, res.clast, res.n_obs) == (4.0, 1.0, 4)
    assert res.auc_last == pytest.approx(1 + 4 / math.log(2.0), rel=1e-12)
    row = nca(data, dose_unit="mg").iloc[0]
    assert (row["tlast"], row["clast"]) == (4.0, 1.0)
    assert row["auc_last"] == pytest.approx(1 + 4 / math.log(2.0), rel=1e-12)


@pytest.mark.parametrize("table", ["nca", "nca_sparse_table"])
def test_an_observation_without_a_dvid_is_refused_not_left_out(table):
    """With a DVID column each observation names its output; one whose DVID cell is missing names none, so it is
    refused with its row and column (whole message), by nca, nca_profiles and nca_sparse_table alike. Before, the
    DVID groups of pandas dropped it without a word: an ID whose observations all lacked a DVID gave an empty table
    (found while judging nca__mutmut_65 of the seed-44 sample, whose empty table then lost its columns), and one
    missing DVID among others silently shortened the profile."""
    from pkpd.noncompartmental import nca_profiles

    dose = {"ID": 1, "TIME": 0.0, "EVID": 1, "AMT": 10.0, "DV": np.nan, "DVID": np.nan}
    if table == "nca":
        obs = [{"ID": 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c, "DVID": d}
               for t, c, d in ((1.0, 4.0, 1), (2.0, 2.0, np.nan), (4.0, 1.0, 1))]
        runs = (nca, nca_profiles)
    else:
        obs = [{"ID": 1, "TIME": 1.0, "EVID": 0, "AMT": 0.0, "DV": 4.0, "DVID": np.nan}]
        runs = (nca_sparse_table,)
    for data in (pd.DataFrame([dose, *obs]), pd.DataFrame([dose, *obs]).assign(DVID=np.nan)):
        row = 3 if table == "nca" and data["DVID"].notna().any() else 2
        for run in runs:
            with pytest.raises(DataError) as err:
                run(data, dose_unit="mg")
            assert str(err.value) == (f"row {row}, column DVID: ID 1: an observation has no DVID, so it names no "
                                      "output; give each observation its output's number or name, or leave the DVID "
                                      "column out for a single output")


# =========================================================================================== seed 45
# Rules that the twenty-first independent sample (seed 45, 40 of 1973 mutants) showed unguarded: the intercept of the
# best-fit λz regression (and the line the plot draws with it), the steady-state AUMCτ of an interval that ends at
# the last sample summed over the samples only, and a dose record of a dataset built by hand without a RATE column
# read as a bolus (an extravascular dose), not as an infusion.
def test_the_best_fit_lambda_z_intercept_is_the_log_of_the_back_extrapolated_concentration():
    """C = 16 · 2^-t sampled at 1, 2, 3 and 4 h after an IV bolus (8, 4, 2, 1): ln C = ln 16 - t ln 2 exactly, so
    the best-fit regression (the three points after Cmax under the PKNCA rule, all four under WinNonlin's) has slope
    -ln 2 and intercept ln 16 (the documented "intercept of the regression of ln C on t"), and the regression line
    of the plot is 16 · 2^-x at its times. Kills _lambda_z__mutmut_126 (``fit[2]`` for ``fit[1]`` in the candidate
    fits: the best fit's intercept reported as its R², 1, and the plotted line e · 2^-x, off by a factor 16/e)."""
    import matplotlib.pyplot as plt

    t = np.array([1.0, 2.0, 3.0, 4.0])
    c = 16.0 * 2.0**-t
    for rule, n in (("pknca", 3), ("winnonlin", 4)):
        res = nca_profile(t, c, 10, route="iv-bolus", lambda_z_rule=rule)
        assert res.lambda_z_n == n
        assert res.lambda_z == pytest.approx(math.log(2.0), rel=1e-12)
        assert res.lambda_z_intercept == pytest.approx(math.log(16.0), rel=1e-12)
    fig, ax = plt.subplots()
    try:
        res.plot(ax=ax)
        line = next(x for x in ax.get_lines() if x.get_label() == "regression")
        np.testing.assert_allclose(line.get_ydata(), 16.0 * 2.0 ** -np.asarray(line.get_xdata()), rtol=1e-12)
    finally:
        plt.close(fig)


def test_steady_state_aumc_tau_ending_at_the_last_sample_is_the_sum_of_its_trapezoids():
    """A steady-state interval τ = 7 h sampled hourly from the dose, 1.7, 7.6, 6.1, 4.3, 3.0, 2.5, 2.1 and 1.0 at 0-7
    h, linear trapezoids: τ is the last sample (Tlast), so AUMCτ is AUMClast, by hand the seven trapezoids of t·C (0,
    7.6, 12.2, 12.9, 12.0, 12.5, 12.6, 7.0), 3.8 + 9.9 + 12.55 + 12.45 + 12.25 + 12.55 + 9.8 = 73.3, and AUCτ = 4.65 +
    6.85 + 5.2 + 3.65 + 2.75 + 2.3 + 1.55 = 26.95; both come out as the double nearest those decimals (checked with
    fractions), and the steady-state MRT is (AUMCτ + τ (AUCinf - AUCτ))/AUCτ with that AUMCτ, to the last bit.
    Kills _aumc_tau__mutmut_10 (``tt <= hi`` for ``tt < hi``: the sample at τ enters twice, a zero-width eighth
    segment of area 0, but NumPy sums 8 terms pairwise instead of one after the other, so AUMCτ is
    73.30000000000001 and the MRT moves by an ulp). It fails as well with _area__mutmut_12 of seed 34, the same
    ``<=`` in the samples of AUCτ, judged equivalent there at first: AUCτ 26.950000000000003."""
    from pkpd.noncompartmental import _aumc_tau

    t = np.arange(8.0)
    c = np.array([1.7, 7.6, 6.1, 4.3, 3.0, 2.5, 2.1, 1.0])
    res = nca_profile(t, c, 10, tau=7, steady_state=True, auc_method="linear")
    assert (res.tlast, res.auc_tau, res.aumc_last) == (7.0, 26.95, 73.3)
    assert _aumc_tau(t, c, 7.0, "linear", res.lambda_z, 7.0, 1.0) == 73.3
    assert math.isfinite(res.lambda_z) and res.cl == 10 / 26.95
    assert res.mrt == (73.3 + 7.0 * (res.auc_inf - res.auc_tau)) / res.auc_tau


def test_a_dose_record_of_a_dataset_built_by_hand_without_rate_is_not_an_infusion():
    """A NonmemDataset built by hand (the public dataclass, as ``dataclasses.replace`` gives) without a RATE column:
    its dose record has no rate, so the dose is given as the route says (extravascular), as with the table read_nonmem
    makes (RATE 0). 10 mg, then 8, 4, 2, 1 at 1, 2, 3, 4 h, linear trapezoids from C = 0 at the dose: λz = ln 2 (the
    three points after Cmax), AUClast = 4 + 6 + 3 + 1.5 = 14.5, AUMClast (t·C 0, 8, 8, 6, 4) = 4 + 8 + 7 + 5 = 24, and
    MRT = AUMCinf/AUCinf with AUCinf = 14.5 + 1/ln 2 and AUMCinf = 24 + 4/ln 2 + 1/ln² 2, no duration subtracted,
    Vss NaN. Kills nca_profiles__mutmut_105 (``d.get("RATE", 1)``: a rate of 1 mg/h, so an IV infusion of 10 h,
    λz NaN (no sample after its end) and the MRT NaN)."""
    import dataclasses

    from pkpd.nonmem import read_nonmem

    table = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 3, 4], "EVID": [1, 0, 0, 0, 0], "AMT": [10.0, 0, 0, 0, 0],
                          "DV": [np.nan, 8, 4, 2, 1]})
    dataset = read_nonmem(table, dose_unit="mg")
    by_hand = dataclasses.replace(dataset, table=dataset.data.drop(columns=["RATE"]))
    assert "RATE" not in by_hand.data
    ln2 = math.log(2.0)
    mrt = (24 + 4 / ln2 + 1 / ln2**2) / (14.5 + 1 / ln2)
    for data in (dataset, by_hand):
        res = nca_profiles(data, auc_method="linear")[(1, "DV")]
        assert res.route == "extravascular" and math.isnan(res.vss)
        assert (res.lambda_z_n, res.auc_last, res.aumc_last) == (3, 14.5, 24.0)
        assert res.lambda_z == pytest.approx(ln2, rel=1e-12)
        assert res.mrt == pytest.approx(mrt, rel=1e-12)
        row = nca(data, auc_method="linear").iloc[0]
        assert row["route"] == "extravascular" and row["mrt"] == pytest.approx(mrt, rel=1e-12)


# =========================================================================================== seed 46
# Rules that the twenty-second independent sample (seed 46, 40 of 1973 mutants) showed unguarded: a flat segment of a
# log-down AUMC is its trapezoid of t·C (not the exponential moment, whose rate is 0 there), a negative concentration
# is refused, and a partial area that starts at Tlast is the λz tail alone (no zero-width segment at Tlast computed).
def test_a_flat_segment_of_the_log_down_aumc_is_its_trapezoid():
    """0, 4, 4, 2, 1 at 0-4 h, log-down: the flat segment from 1 to 2 h (4 and 4) is not a decline, so its AUMC is the
    trapezoid of t·C, ∫ 4 t dt from 1 to 2 = 6 (exact for a constant), beside the rise 0.5 (0 + 4) = 2 and the exact
    exponential moments of the two halvings, (t0 C0 - t1 C1)/k + (C0 - C1)/k² with k = ln 2: (8 - 6)/ln 2 + 2/ln² 2
    and (6 - 4)/ln 2 + 1/ln² 2; AUClast = 2 + 4 + (4 - 1)/ln 2, and MRT = AUMCinf/AUCinf from those, λz = ln 2.
    Guards _aumc_segments (_aumc_segments__mutmut_25: ``c1 <= c0`` for ``c1 < c0`` in the falling segments: the
    flat segment taken as a decline of rate log(4/4) = 0, whose moment divides by 0: AUMClast and MRT NaN)."""
    from pkpd.noncompartmental import _aumc_segments

    ln2 = math.log(2.0)
    assert _aumc_segments(np.array([1.0, 2.0]), np.array([4.0, 4.0]), "log-down") == 6.0
    res = nca_profile([0.0, 1, 2, 3, 4], [0.0, 4, 4, 2, 1], 10)
    aumc_last = 2 + 6 + (2 / ln2 + 2 / ln2**2) + (2 / ln2 + 1 / ln2**2)
    auc_last = 6 + 3 / ln2
    assert res.aumc_last == pytest.approx(aumc_last, rel=1e-12)
    assert res.auc_last == pytest.approx(auc_last, rel=1e-12)
    assert res.lambda_z == pytest.approx(ln2, rel=1e-12)
    aumc_inf, auc_inf = aumc_last + 4 / ln2 + 1 / ln2**2, auc_last + 1 / ln2
    assert res.mrt == pytest.approx(aumc_inf / auc_inf, rel=1e-12)


def test_a_negative_concentration_is_refused():
    """A concentration below 0 (-0.5 at 2 h) is not a concentration: refused, whole message naming the smallest
    value, before any area; a 0 is accepted (0, 2, 1, 0.5 at 0-3 h: AUClast by linear trapezoids 1 + 1.5 + 0.75).
    Guards nca_profile's check (nca_profile__mutmut_57: ``if np.any(None):``, the check never fires: the negative
    value entered the areas)."""
    for conc, low in (([0.0, 2, -0.5, 1], "-0.5"), ([4.0, -1e-12, 2, 1], "-1e-12")):
        with pytest.raises(DataError) as err:
            nca_profile([0.0, 1, 2, 3], conc, 10)
        assert str(err.value) == f"concentrations must be >= 0; got {low}"
    assert nca_profile([0.0, 1, 2, 3], [0.0, 2, 1, 0.5], 10, auc_method="linear").auc_last == 3.25


def test_a_partial_area_starting_at_tlast_is_the_lambda_z_tail_alone():
    """An IV bolus observed at 0, 0.05 and 0.1 h, 1.6e308, 1 and 1e308 (near the largest double), WinNonlin's rule
    (Cmax in the terminal phase): λz from the three points is ln(1.6)/0.1 (the slope of three equally spaced points is
    that of the end points), and the partial area from Tlast = 0.1 h to 0.2 h is the λz tail alone, Clast/λz (1 -
    e^(-0.1 λz)) = 1e308 · 0.375/(10 ln 1.6), finite, under the suite's strict floating point. Guards _area
    (_area__mutmut_8: ``hi >= a`` for ``hi > a``: a zero-width segment at Tlast is integrated first, 0.5 · 0 · (Clast
    + Clast), area 0 for any ordinary Clast, but Clast + Clast overflows above half the largest double: a
    FloatingPointError here, NaN with an overflow warning under numpy's defaults)."""
    lz = 10 * math.log(1.6)
    res = nca_profile([0.0, 0.05, 0.1], [1.6e308, 1.0, 1e308], 10, route="iv-bolus", lambda_z_rule="winnonlin",
                      partial=[(0.1, 0.2)])
    assert res.tlast == 0.1 and res.lambda_z == pytest.approx(lz, rel=1e-12)
    (a, b, area), = res.partial_aucs
    assert (a, b) == (0.1, 0.2)
    assert area == pytest.approx(1e308 / lz * (1 - 1 / 1.6), rel=1e-12)


def test_a_log_down_decline_to_a_subnormal_concentration_keeps_its_area_and_moment():
    """C = 4 e^(-t) (an IV bolus, k = 1/h) sampled at 0, 1, 2 and 720 h: C(720) = 4 e^-720, about 8e-313, is a
    subnormal double, and C(2)/C(720) = e^718 is beyond the largest one. The log-down area and moment of each falling
    segment are exact for an exponential, so AUClast = 4 (1 - e^-720) and AUMClast = ∫ 4 t e^-t dt from 0 to 720 =
    4 (1 - 721 e^-720), both 4 to rounding; λz = 1 (ln C is linear in t), MRT = 1 h, CL = Vss = 10/4; the metric
    ``auc`` gives the same area. The ratio used to overflow (a FloatingPointError under the suite's strict floating
    point, an overflow warning under numpy's defaults) and the segment from 2 to 720 h counted 0: AUClast 3.4587,
    AUMClast 2.376 (a defect, fixed: the log of such a ratio is taken as the difference of the logs)."""
    from pkpd.metrics import auc

    t = np.array([0.0, 1.0, 2.0, 720.0])
    c = 4.0 * np.exp(-t)
    assert 0 < c[-1] < np.finfo(float).tiny
    res = nca_profile(t, c, 10, route="iv-bolus")
    assert res.auc_last == pytest.approx(4 * (1 - math.exp(-720)), rel=1e-12)
    assert res.aumc_last == pytest.approx(4 * (1 - 721 * math.exp(-720)), rel=1e-12)
    assert res.lambda_z == pytest.approx(1.0, rel=1e-12)
    assert res.mrt == pytest.approx(1.0, rel=1e-12)
    assert res.cl == pytest.approx(2.5, rel=1e-12) and res.vss == pytest.approx(2.5, rel=1e-12)
    assert auc(t, c, method="log-down") == pytest.approx(4.0, rel=1e-12)


def test_a_partial_area_ending_inside_a_decline_to_the_smallest_subnormal():
    """8, 4, 2 and 5e-324 (the smallest positive double) at 1-4 h, log-down: the area from 0 to 3.5 h ends halfway
    down the last decline, C(3 + s) = 2 e^(-L s) with L = ln 2 - ln 5e-324 (about 745), so by hand it is the rise 0.5
    · 1 · 8 = 4, the halvings (8 - 4)/ln 2 + (4 - 2)/ln 2, and ∫ 2 e^(-L s) ds from 0 to 0.5 = 2 (1 - e^(-L/2))/L; the
    metric ``auc`` from 1 to 3.5 h gives the same without the rise. 5e-324/2 rounds to 0, so the interpolation
    used to take the log of 0: nca_profile stopped with ValueError: math domain error, and ``auc`` interpolated 0 and
    integrated a linear trapezoid (0.5 over the last half hour, not 0.0027; a defect, fixed)."""
    from pkpd.metrics import auc

    ln2 = math.log(2.0)
    L = ln2 - math.log(5e-324)
    tail = 2 * (1 - math.exp(-L / 2)) / L
    t, c = [1.0, 2, 3, 4], [8.0, 4, 2, 5e-324]
    res = nca_profile(t, c, 10, partial=[(0, 3.5)])
    assert res.partial_aucs[0][2] == pytest.approx(4 + 6 / ln2 + tail, rel=1e-12)
    assert auc(t, c, start=1, end=3.5, method="log-down") == pytest.approx(6 / ln2 + tail, rel=1e-12)
    assert res.auc_last == pytest.approx(4 + 6 / ln2 + 2 / L, rel=1e-12)


def test_a_nearly_flat_log_down_decline_keeps_its_area_and_moment():
    """C = 50 e^(-1e-8 t) sampled hourly from 0 to 24 h after an IV bolus (a simulated plateau, falling by 1e-8 of
    itself an hour): each falling segment's log-down area dt (C0 - C1)/ln(C0/C1) and exact moment (t0 C0 - t1 C1)/k +
    (C0 - C1)/k², k = ln(C0/C1)/dt, computed here with the decimal module at 60 digits from the sampled doubles, sum
    to AUClast and AUMClast to 1e-13; and 1 then 1 - 2^-53 (the next double below) from 1 to 2 h give the area 1 and
    the moment ∫ t dt = 1.5 to rounding. In floating point ln(C0/C1) is about 1e-8 with an error of about 1e-16 from
    the rounded quotient, and the moment's two terms, each some 1e8 times the result, cancel: AUMClast was 0.18 % off
    (and of the wrong sign at 1e-10 an hour), the next-double segment gave an area of 0.5 and a moment of -2e15
    (a defect, fixed: log1p of the relative difference near 1, the moment by its series in k dt below 0.01)."""
    from decimal import Decimal, localcontext

    from pkpd.metrics import auc
    from pkpd.noncompartmental import _aumc_segments

    t = np.arange(25.0)
    c = 50.0 * np.exp(-1e-8 * t)
    with localcontext() as ctx:
        ctx.prec = 60
        area = moment = Decimal(0)
        for t0, t1, c0, c1 in zip(*(map(Decimal, map(float, v)) for v in (t[:-1], t[1:], c[:-1], c[1:]))):
            assert c0 > c1 > 0
            k = (c0 / c1).ln() / (t1 - t0)
            area += (c0 - c1) / k
            moment += (t0 * c0 - t1 * c1) / k + (c0 - c1) / k**2
    res = nca_profile(t, c, 10, route="iv-bolus")
    assert res.auc_last == pytest.approx(float(area), rel=1e-13)
    assert res.aumc_last == pytest.approx(float(moment), rel=1e-13)
    assert auc(t, c, method="log-down") == pytest.approx(float(area), rel=1e-13)
    tt, cc = np.array([1.0, 2.0]), np.array([1.0, np.nextafter(1.0, 0.0)])
    assert auc(tt, cc, method="log-down") == pytest.approx(1.0, rel=1e-15)
    assert _aumc_segments(tt, cc, "log-down") == pytest.approx(1.5, rel=1e-15)


# =========================================================================================== seed 47
# Rules that the twenty-third independent sample (seed 47, 40 of 2030 mutants) showed unguarded: a single ``by``
# column of the sparse table may be given as a bare column name, as one string, not only in a list.
def test_a_sparse_table_by_a_single_column_name_given_as_a_string():
    """``by="SEX"`` is the column SEX, as ``by=["SEX"]``: one row per sex in data order, with the AUCs by hand of the
    linear trapezoids of the mean profiles, (3 - 1)/2 (9 + 3) = 12 for M (means 9 at 1 h, 3 at 3 h) and
    (3 - 1)/2 (4 + 1) = 5 for F, the SEX column in the table after output and dose. Guards nca_sparse_table
    (nca_sparse_table__mutmut_17: ``isinstance(by, str) and False``: the string taken as a list of its letters,
    S, E and X, refused with "nca_sparse: no column 'S' in the data. Did you mean 'SS'?")."""
    data = _sparse_rows([("M", 1, 8), ("M", 1, 10), ("M", 3, 2), ("M", 3, 4),
                         ("F", 1, 4), ("F", 1, 4), ("F", 3, 1), ("F", 3, 1)])
    table = nca_sparse_table(data, dose_unit="mg", by="SEX")
    assert list(table.columns[:3]) == ["output", "dose", "SEX"]
    assert table["SEX"].tolist() == ["M", "F"]
    assert table["auc_last"].tolist() == pytest.approx([12.0, 5.0], rel=1e-12)
    assert table["n_animals"].tolist() == [4, 4]
    pd.testing.assert_frame_equal(table, nca_sparse_table(data, dose_unit="mg", by=["SEX"]))


# =========================================================================================== seed 48
# Rules that the twenty-fourth independent sample (seed 48, 40 of 2028 mutants) showed unguarded: a dose record with a
# DUR shorter than 1 time unit and no RATE is an infusion of that duration, and Bailer's sparse NCA records the dose
# given as a float (NaN when none is given) and refuses a dose that is not > 0.
def test_a_dose_record_with_a_duration_under_one_time_unit_is_an_infusion_of_that_duration():
    """A dose record with DUR 0.5 h and no RATE (0) is a 30-minute infusion (its documented rule: RATE > 0 or DUR > 0
    makes an infusion): 10 mg, then 16, 8, 4, 2, 1 at 0.5, 1, 2, 3, 4 h, linear trapezoids. By hand, λz = ln 2 from
    the halvings after Cmax, AUClast 4 + 6 + 6 + 3 + 1.5 = 20.5, AUMClast on t·C (0, 8, 8, 8, 6, 4) 2 + 4 + 8 + 7 +
    5 = 26, AUCinf 20.5 + 1/ln 2, AUMCinf 26 + 4/ln 2 + 1/ln² 2, and the MRT of an infusion AUMCinf/AUCinf - 0.5/2,
    CL 10/AUCinf and Vss CL · MRT, from nca_profiles and nca. Guards nca_profiles (seed 48's survivor _165: ``dur if
    dur > 1 else amount / rate``, a duration up to 1 time unit taken as AMT/RATE: ZeroDivisionError without RATE)."""
    ln2 = math.log(2.0)
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 0.5, 1, 2, 3, 4], "EVID": [1, 0, 0, 0, 0, 0],
                         "AMT": [10.0, 0, 0, 0, 0, 0], "DUR": [0.5, 0, 0, 0, 0, 0],
                         "DV": [np.nan, 16.0, 8, 4, 2, 1]})
    auc_inf = 20.5 + 1 / ln2
    aumc_inf = 26 + 4 / ln2 + 1 / ln2**2
    mrt = aumc_inf / auc_inf - 0.25
    res = nca_profiles(data, auc_method="linear", dose_unit="mg")[(1, "DV")]
    assert res.route == "iv-infusion"
    assert res.lambda_z == pytest.approx(ln2, rel=1e-12)
    assert (res.auc_last, res.aumc_last) == pytest.approx((20.5, 26.0), rel=1e-12)
    assert (res.auc_inf, res.aumc_inf) == pytest.approx((auc_inf, aumc_inf), rel=1e-12)
    assert res.mrt == pytest.approx(mrt, rel=1e-12)
    assert (res.cl, res.vss) == pytest.approx((10 / auc_inf, 10 / auc_inf * mrt), rel=1e-12)
    row = nca(data, auc_method="linear", dose_unit="mg").iloc[0]
    assert row["mrt"] == pytest.approx(mrt, rel=1e-12)


def test_sparse_nca_records_the_dose_given_as_a_float():
    """Bailer's sparse NCA records the dose in its result (the docstring: ``dose : float``): 10 given is 10.0, a
    Fraction 5/2 is 2.5, each a float, and ``as_dict()["dose"]`` the same; without a dose it is NaN, the field's
    default. Guards nca_sparse (seed 48's survivor _152: ``dose=None`` for ``dose=float(dose)``, every result's dose
    None)."""
    from fractions import Fraction

    for given, expected in ((10, 10.0), (Fraction(5, 2), 2.5)):
        res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4], dose=given)
        assert type(res.dose) is float and res.dose == expected
        assert res.as_dict()["dose"] == expected and res.auc_last == 16.5
    res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])
    assert type(res.dose) is float and math.isnan(res.dose) and math.isnan(res.as_dict()["dose"])


def test_sparse_nca_refuses_a_dose_that_is_not_a_positive_number():
    """The dose Bailer's sparse NCA records is the amount given, > 0 as in nca_profile: 0, -5, infinity, True, the
    text "10" and None are refused with the whole message "nca_sparse: dose must be a finite number > 0; got <value>";
    NaN (the default: no dose) and 2.5 are recorded as given. Before, -5, 0, infinity, True and "10" were recorded
    silently (as -5.0, 0.0, inf, 1.0 and 10.0) and None stopped with Python's TypeError from float() (a defect, fixed;
    found judging seed 48's survivor nca_sparse _152)."""
    for dose in (0, -5, math.inf, True, "10", None):
        with pytest.raises(DataError) as err:
            nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4], dose=dose)
        assert str(err.value) == f"nca_sparse: dose must be a finite number > 0; got {dose!r}"
    assert math.isnan(nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4], dose=math.nan).dose)
    assert nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4], dose=np.float32(2.5)).dose == 2.5


# =========================================================================================== seed 49
# Rules that the twenty-fifth independent sample (seed 49, 40 of 2050 mutants) showed unguarded: the lower end of a
# manual λz range matches the sampling times to the documented tolerance (np.isclose, 1e-9 relative and absolute),
# no wider and no narrower; an IV bolus whose back-extrapolated C0 is exactly the largest double is not refused; the
# fluctuation of a profile whose Cavg is below 1 conc unit; and Bailer's sparse NCA reads its times as floats.
def test_the_lower_end_of_a_manual_lambda_z_range_matches_sampling_times_to_the_documented_tolerance():
    """The ends of a manual λz range match the sampling times as ``np.isclose(t, start, rtol=1e-9, atol=1e-9)`` does,
    |t - start| <= 1e-9 (1 + |start|). (a) A dataset in minutes dosed at 0.1 min and sampled at 7200.2, 9200.2 and
    11200.2 min gives the profile times 7200.099999999999 (TIME - dose time, one rounding below 7200.1), 9200.1 and
    11200.1, so LambdaZ(start=7200.1, end=11200.1) takes in all three: C = 8, 4, 2 every 2000 min, λz = ln 2 / 2000
    per min. (b) A sample at 1 - 2.5e-9 h is 2.5e-9 from start = 1, beyond the tolerance 2e-9, so LambdaZ(start=1,
    end=6) on C = 9, 8, 4, 1 at that time and 2, 4, 6 h uses only 2, 4 and 6 h: the least-squares slope of three
    equally spaced points is (ln 1 - ln 8) / 4, λz = ln 8 / 4. Guards _lambda_z (seed 49's survivors _8: ``1e-9 /
    (1.0 + abs(choice.start))``, the tolerance at the start divided by 7201 instead of multiplied, 1.4e-13, below a
    rounding of 7200.1, so the sample was left out and the range refused with 2 points; and _11: ``1e-9 * (2.0 +
    abs(choice.start))``, 3e-9 at start 1, the sample at 1 - 2.5e-9 h taken in, 4 points)."""
    data = pd.DataFrame({"ID": 1, "TIME": [0.1, 1000.1, 7200.2, 9200.2, 11200.2], "EVID": [1, 0, 0, 0, 0],
                         "AMT": [100.0, 0, 0, 0, 0], "DV": [np.nan, 20.0, 8.0, 4.0, 2.0]})
    choice = LambdaZ(start=7200.1, end=11200.1)
    res = nca_profiles(data, time_unit="min", dose_unit="mg", lambda_z=choice)[(1, "DV")]
    assert res.lambda_z_n == 3 and res.lambda_z_start == pytest.approx(7200.1, rel=1e-15)
    assert res.lambda_z == pytest.approx(math.log(2.0) / 2000, rel=1e-9)
    assert nca(data, time_unit="min", dose_unit="mg", lambda_z=choice).iloc[0]["lambda_z_n"] == 3
    res = nca_profile([0.5, 1 - 2.5e-9, 2, 4, 6], [10, 9, 8, 4, 1], 100, lambda_z=LambdaZ(start=1, end=6))
    assert (res.lambda_z_n, res.lambda_z_times) == (3, (2.0, 4.0, 6.0))
    assert res.lambda_z == pytest.approx(math.log(8.0) / 4, rel=1e-12)


def test_an_iv_bolus_whose_back_extrapolated_c0_is_the_largest_double_is_not_refused():
    """C0 of an IV bolus sampled from 1 h is back-extrapolated log-linearly from the first two samples, C1 (C1/C2)^(t1
    / (t2 - t1)) = C1² / C2 for samples at 1 and 2 h, and refused only when it is beyond the largest double (its
    message says so). C1 = 1.34078079299426e154 and C2 = 1 give ln C0 = 2 ln C1 = 709.782712893384 exactly, the log of
    the largest double, whose exp is 1.7976931348622732e308, a finite number: C0 is that, with C0 / C1 = C1 (the
    closed form), and AUClast is the log-down area from C0 to C1 over the first hour, (C0 - C1) / ln(C0 / C1) = (C0 -
    C1) / ln C1 (the later segments add about 1e-154 of it). Guards nca_profile (seed 49's survivor _169: ``log_c0 >=
    _LOG_MAX``: this profile refused with "is exp(710), beyond the largest number")."""
    c1 = 1.34078079299426e154
    assert 2 * math.log(c1) == math.log(np.finfo(float).max)       # the boundary itself, in floating point
    res = nca_profile([1.0, 2.0, 4.0, 8.0], [c1, 1.0, 0.5, 0.25], 100, route="iv-bolus")
    assert math.isfinite(res.c0) and res.c0 == pytest.approx(np.finfo(float).max, rel=1e-12)
    assert res.c0 / c1 == pytest.approx(c1, rel=1e-12)
    assert res.auc_last == pytest.approx((res.c0 - c1) / math.log(c1), rel=1e-12)


def test_the_fluctuation_of_a_profile_whose_cavg_is_below_one_conc_unit():
    """Fluctuation = 100 (Cmax - Cmin) / Cavg whenever Cavg > 0; only Cavg = 0 (no exposure) leaves it NaN. tau = 4 h,
    samples 0.4, 0.8, 0.6, 0.5 at 1, 2, 3, 4 h (and 0.9, 0.3 at 6, 8 h, after the interval): linear trapezoids from
    0 give AUCτ = 0.2 + 0.6 + 0.7 + 0.55 = 2.05, Cavg = 0.5125 (below 1 conc unit, µg/L say), so fluctuation =
    100 (0.8 - 0.4) / 0.5125 = 78.05 % and swing 100 (0.8 - 0.4) / 0.4 = 100 %. Guards nca_profile (seed 49's
    survivor _300: ``if cavg > 1``, the fluctuation NaN for every Cavg up to 1 conc unit)."""
    res = nca_profile([1, 2, 3, 4, 6, 8], [0.4, 0.8, 0.6, 0.5, 0.9, 0.3], 100, tau=4, auc_method="linear")
    assert (res.auc_tau, res.cavg) == pytest.approx((2.05, 0.5125), rel=1e-12)
    assert res.fluctuation == pytest.approx(100 * 0.4 / 0.5125, rel=1e-12)
    assert res.swing == pytest.approx(100.0, rel=1e-12)


def test_bailers_sparse_nca_reads_its_sampling_times_as_floats():
    """nca_sparse reads the times as floats, as nca_profile does: integer times 0, 1, 3 give the distinct times as
    the float64 array [0.0, 1.0, 3.0] (a time unit is not a count), and a time given as None is a missing time,
    refused with the documented message "nca_sparse: sampling times must be finite and >= 0". Guards nca_sparse
    (seed 49's survivor _5: ``np.asarray(times, dtype=None)``: integer times kept as int64 in the result, and None
    kept as a Python object, so NumPy's TypeError from isfinite instead of the message)."""
    res = nca_sparse([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])
    assert res.times.dtype == np.float64 and res.times.tolist() == [0.0, 1.0, 3.0]
    assert res.auc_last == 16.5 and type(res.tmax) is float and res.tmax == 1.0
    with pytest.raises(DataError, match=r"^nca_sparse: sampling times must be finite and >= 0$"):
        nca_sparse([0, None, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])


# ============================================================================================== modelled infusions
# A dose record whose RATE is -1 or -2 (rate or duration from a model, NONMEM's codes) has no duration in the data:
# NCA has no model, so it is refused, not read as the route's dose.
@pytest.mark.parametrize("rate", [-1, -2])
@pytest.mark.parametrize("route", ["extravascular", "iv-infusion"])
def test_a_dose_whose_rate_or_duration_comes_from_a_model_is_refused(rate, route):
    """RATE -1 (the model's R) or -2 (the model's D) on the dose record of ``nca`` / ``nca_profiles``: the infusion's
    duration, which the MRT and Vss need, is in no column, so the profile is refused with a DataError naming the
    subject, the row and the RATE column, whatever ``route`` says (it was read as an extravascular dose, MRT 1.61 h,
    or refused as "an iv-infusion needs its duration > 0; got 0.0"). Given as the message says, DUR 0.5 h with RATE
    0, the same record is a 30-minute infusion: MRT AUMCinf / AUCinf - 0.25 by hand (the seed-48 test's profile)."""
    ln2 = math.log(2.0)
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 0.5, 1, 2, 3, 4], "EVID": [1, 0, 0, 0, 0, 0],
                         "AMT": [10.0, 0, 0, 0, 0, 0], "RATE": [float(rate), 0, 0, 0, 0, 0],
                         "DV": [np.nan, 16.0, 8, 4, 2, 1]})
    what = "rate" if rate == -1 else "duration"
    for run in (nca_profiles, nca):
        with pytest.raises(DataError) as err:
            run(data, auc_method="linear", dose_unit="mg", route=route)
        assert str(err.value) == (f"row 1, column RATE: ID 1: the dose record has RATE {rate} (the infusion's {what} "
                                  "from the model); NCA has no model, so the infusion's duration is unknown: give it "
                                  "as DUR (with RATE 0), or the rate as RATE > 0")
    timed = data.assign(RATE=0.0, DUR=[0.5, 0, 0, 0, 0, 0])
    res = nca_profiles(timed, auc_method="linear", dose_unit="mg", route=route)[(1, "DV")]
    assert res.route == "iv-infusion"
    assert res.mrt == pytest.approx((26 + 4 / ln2 + 1 / ln2**2) / (20.5 + 1 / ln2) - 0.25, rel=1e-12)


# =========================================================================================== seed 51
# Rules that the twenty-seventh independent sample (seed 51, 40 of 2050 mutants) showed unguarded: the error of
# Bailer's sparse table for an observation without a DVID names the file the dataset was read from, as every other
# error of a dataset read from a file does.
def test_the_sparse_tables_error_for_an_observation_without_a_dvid_names_the_file(tmp_path):
    """A DataError about a dataset read from a file names the file first, then the row and the column
    (``"<file>, row <r>, column <c>: <message>"``, with ``.file`` the path as given). The file here has a DVID column
    and its one observation (data row 2) has the missing cell "."; ``nca_sparse_table`` refuses it, as ``nca`` and
    ``nca_profiles`` do, with the whole message naming the file, row 2 and column DVID. Guards nca_sparse_table
    (seed 51's survivor _54: ``_output_groups(mine, sid, None)`` for ``ds.source``, the file left out of the
    message and ``.file`` None; the seed-44 test read a DataFrame, which names no file)."""
    from pkpd.noncompartmental import nca_profiles

    path = tmp_path / "sparse.csv"
    path.write_text("ID,TIME,EVID,AMT,DV,DVID\n1,0,1,10,.,.\n1,1,0,0,4,.\n")
    for run in (nca_sparse_table, nca, nca_profiles):
        with pytest.raises(DataError) as err:
            run(str(path), dose_unit="mg")
        assert (err.value.file, err.value.row, err.value.column) == (str(path), 2, "DVID")
        assert str(err.value) == (f"{path}, row 2, column DVID: ID 1: an observation has no DVID, so it names no "
                                  "output; give each observation its output's number or name, or leave the DVID "
                                  "column out for a single output")


# =========================================================================================== seed 52
# Rules that the twenty-eighth independent sample (seed 52, 40 of 2050 mutants) showed unguarded: the profiles and the
# table of a dataset list its subjects in the order they first appear in the data (not sorted by ID), and Bailer's
# sparse NCA reads concentrations given as a column or a row of a 2-D array as its samples.
def test_profiles_and_table_list_subjects_in_the_order_of_the_data():
    """A dataset listing subject 2 before subject 1 gives ``nca_profiles`` keys (2, "DV"), (1, "DV") and ``nca`` rows
    with ID 2, 1, in the order of the data (as the sparse table's rows, and ``list(dict.fromkeys(ID))``), not sorted
    by ID. Each subject is an IV bolus of 100 mg sampled hourly at 1-12 h of C = A exp(-k t), k = 2.8/32 1/h; with
    log-down areas, the log-linear C0 and the exact λz, CL = Dose k / A is exact by hand: subject 2 (A = 100/32)
    2.8 L/h, subject 1 (A = 2 x 100/32) 1.4 L/h. Guards nca_profiles (seed 52's survivor _49:
    ``table.groupby("ID", )`` for ``sort=False``, the subjects sorted by ID: keys (1, "DV"), (2, "DV") and the
    table's rows swapped)."""
    data = pd.concat([_bolus_data().assign(ID=2), _bolus_data().assign(ID=1, DV=lambda d: 2 * d["DV"])],
                     ignore_index=True)
    res = nca_profiles(data, route="iv-bolus", dose_unit="mg")
    assert list(res) == [(2, "DV"), (1, "DV")]
    assert [res[key].cl for key in res] == pytest.approx([2.8, 1.4], rel=1e-12)
    table = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L")
    assert table["ID"].tolist() == [2, 1]
    assert table["cl"].tolist() == pytest.approx([2.8, 1.4], rel=1e-12)


def test_sparse_concentrations_given_as_a_column_or_a_row_are_the_samples():
    """Concentrations as an (n, 1) column or a (1, n) row (``df[["DV"]].to_numpy()``), with 1-D times or times of the
    same 2-D shape, are the n samples, as a 1-D array is, not refused as "differ in length (6 vs 6)". Two animals at
    each of 0, 1, 3 h (0, 0), (8, 10), (2, 4), the docstring's example: by hand Bailer's AUC 0.5 x 0 + 1.5 x 9 + 1 x 3
    = 16.5 and SE sqrt(1.5² 2/2 + 1² 2/2) = sqrt(3.25), Cmax 9 at 1 h. Guards nca_sparse (seed 52's survivor _11:
    ``reshape(None)`` for ``reshape(-1)`` on the concentrations: their 2-D shape kept, not the one of the times, so
    the profile was refused)."""
    times = np.array([0.0, 0, 1, 1, 3, 3])
    conc = np.array([0.0, 0, 8, 10, 2, 4])
    for given_t, given_c in ((times, conc[:, None]), (times, conc[None, :]), (times[:, None], conc[:, None])):
        res = nca_sparse(given_t, given_c)
        assert res.times.tolist() == [0.0, 1.0, 3.0] and res.n.tolist() == [2, 2, 2]
        assert (res.cmax, res.tmax) == (9.0, 1.0)
        assert res.auc_last == pytest.approx(16.5, rel=1e-12)
        assert res.auc_last_se == pytest.approx(math.sqrt(3.25), rel=1e-12)
