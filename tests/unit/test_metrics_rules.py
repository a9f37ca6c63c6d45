"""The rules of pkpd.metrics, one by one, each against an answer worked out here (issue 20, mutation audit).

Answers are closed forms or done by hand in the test: trapezoids and crossings of piecewise-linear profiles, the
log-down area of an exponential, the median of a sampled survival curve by linear interpolation, the closed-form
survival, response and count of the test model ``endpoints_exposure`` without a dose (constant hazard 0.01/h,
P(resp) = expit(-1), logit P(grade >= c) = 1, -0.5, -2, a count rate of 0.2/h), and the documented conventions:
windows ``[start, end]`` accepted up to 1e-9 relative outside the times, values at a sample time are that sample,
``time_above`` counts time *strictly* above, the first time of a tie.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

import pkpd
from pkpd import metrics
from pkpd.errors import PkpdError
from pkpd.metrics import Endpoint, endpoint_table, median_time

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml"

# every metric function, with the extra argument it needs
FUNCTIONS = {
    "cmax": lambda t, y, **w: metrics.cmax(t, y, **w),
    "tmax": lambda t, y, **w: metrics.tmax(t, y, **w),
    "nadir": lambda t, y, **w: metrics.nadir(t, y, **w),
    "time_of_nadir": lambda t, y, **w: metrics.time_of_nadir(t, y, **w),
    "auc": lambda t, y, **w: metrics.auc(t, y, **w),
    "time_above": lambda t, y, **w: metrics.time_above(t, y, 1.0, **w),
}
AT_A_TIME = {
    "value_at": lambda t, y, at: metrics.value_at(t, y, at),
    "change_from_baseline": lambda t, y, at: metrics.change_from_baseline(t, y, at),
}


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", [*FUNCTIONS, *AT_A_TIME, "median_time"])
@pytest.mark.parametrize("times, error", [
    ([[0.0, 1.0], [2.0, 3.0]], "times must be a non-empty 1-D array"),
    ([], "times must be a non-empty 1-D array"),
    ([0.0, 1.0, 1.0], "times must be strictly increasing"),
    ([1.0, 0.0], "times must be strictly increasing"),
    (np.array([2, 1, 0], dtype=np.uint32), "times must be strictly increasing"),  # no unsigned wrap-around
])
def test_bad_times_are_refused_by_every_metric_naming_it(name, times, error):
    n = np.size(times)
    values = np.ones(n if np.ndim(times) == 1 else 2)
    call = {**FUNCTIONS, **AT_A_TIME}.get(name)
    with pytest.raises(PkpdError, match=rf"^{name}: {error}"):
        if name == "median_time":
            median_time(times, values)
        elif name in AT_A_TIME:
            call(times, values, 0.0)
        else:
            call(times, values)


@pytest.mark.parametrize("name", [*FUNCTIONS, *AT_A_TIME, "median_time"])
def test_values_of_the_wrong_length_are_refused(name):
    with pytest.raises(PkpdError, match=rf"^{name}: values must have shape \(n_subjects, n_times\)"):
        if name == "median_time":
            median_time([0.0, 1.0], [1.0, 0.8, 0.6])
        elif name in AT_A_TIME:
            AT_A_TIME[name]([0.0, 1.0], [[1.0, 0.8, 0.6]], 0.5)
        else:
            FUNCTIONS[name]([0.0, 1.0], [[1.0, 0.8, 0.6]])


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("window", [{"start": -1.0}, {"end": 11.0}, {"start": -1.0, "end": 5.0}])
def test_a_window_outside_the_times_is_refused_by_every_metric_naming_it(name, window):
    with pytest.raises(PkpdError, match=rf"^{name}: the window \[.*\] reaches outside the times \[0, 10\]"):
        FUNCTIONS[name]([0.0, 10.0], [0.0, 2.0], **window)


@pytest.mark.parametrize("at", [-1.0, 11.0])
def test_a_time_outside_the_times_is_refused_naming_the_metric(at):
    for name, call in AT_A_TIME.items():
        with pytest.raises(PkpdError, match=rf"^{name}: the window \[.*\] reaches outside the times \[0, 10\]"):
            call([0.0, 10.0], [0.0, 2.0], at)
    with pytest.raises(PkpdError, match=r"^change_from_baseline \(baseline_time\): the window .* reaches outside"):
        metrics.change_from_baseline([0.0, 10.0], [0.0, 2.0], 5.0, baseline_time=at)


@pytest.mark.parametrize("window", [{"start": math.nan}, {"end": math.inf}, {"start": -math.inf, "end": 1.0}])
def test_a_window_that_is_not_finite_is_refused(window):
    with pytest.raises(PkpdError, match="^auc: the window must be finite"):
        metrics.auc([0.0, 10.0], [0.0, 2.0], **window)


def test_a_threshold_that_is_not_finite_is_refused():
    with pytest.raises(PkpdError, match="^time_above: threshold must be finite"):
        metrics.time_above([0.0, 10.0], [0.0, 2.0], math.nan)


# ---------------------------------------------------------------------------------------------------- windows
@pytest.mark.parametrize("times, start, end, inside", [
    ([0.0, 1.0, 1000.0], None, 1000.0 + 5e-7, True),      # tolerance 1e-9 * max(1, |t0|, |t_last|) = 1e-6
    ([0.0, 1.0, 1000.0], None, 1000.0 + 2e-6, False),
    ([-1000.0, 0.0, 1.0], -1000.0 - 5e-7, None, True),    # the first time counts too
    ([-1000.0, 0.0, 1.0], -1000.0 - 2e-6, None, False),
    ([0.0, 0.5], None, 0.5 + 8e-10, True),                # at least 1e-9 absolute
    ([0.0, 0.5], None, 0.5 + 1.5e-9, False),
    ([0.0, 1.0], 0.0 - 1e-9, None, True),                 # exactly at the tolerance: inside
    ([0.0, 1.0], None, 1.0 + 1e-9, True),
])
def test_window_ends_just_outside_the_times_are_accepted_within_1e_9_relative(times, start, end, inside):
    t = np.array(times)
    y = np.linspace(1.0, 2.0, t.size)
    if not inside:
        with pytest.raises(PkpdError, match="reaches outside the times"):
            metrics.auc(t, y, start=start, end=end)
        return
    # accepted and clipped to the times: the area of the whole grid by trapezoids
    whole = float(np.sum(0.5 * np.diff(t) * (y[1:] + y[:-1])))
    assert metrics.auc(t, y, start=start, end=end) == pytest.approx(whole, rel=1e-12)
    if start is not None:   # read at the first sample exactly, even with a huge neighbour
        big = np.array([1.0] + [1e12] * (t.size - 1))
        assert metrics.value_at(t, big, start) == 1.0
        assert metrics.change_from_baseline(t, big, start) == 0.0
        assert metrics.change_from_baseline(t, big, t[-1], baseline_time=start) == 1e12 - 1.0


def test_metrics_over_a_window_use_only_the_window():
    t = np.array([0.0, 2.0, 4.0, 6.0, 8.0])
    y = np.array([[0.0, 8.0, 2.0, 6.0, 1.0], [5.0, 1.0, 3.0, 0.0, 4.0]])
    # window [3, 7]: the ends interpolated linearly (y(3) = 5, 2; y(7) = 3.5, 2)
    np.testing.assert_array_equal(metrics.cmax(t, y, start=3, end=7), [6.0, 3.0])
    np.testing.assert_array_equal(metrics.tmax(t, y, start=3, end=7), [6.0, 4.0])
    np.testing.assert_array_equal(metrics.nadir(t, y, start=3, end=7), [2.0, 0.0])
    np.testing.assert_array_equal(metrics.time_of_nadir(t, y, start=3, end=7), [4.0, 6.0])
    # one end only
    np.testing.assert_array_equal(metrics.cmax(t, y, start=3), [6.0, 4.0])
    np.testing.assert_array_equal(metrics.cmax(t, y, end=3), [8.0, 5.0])
    np.testing.assert_array_equal(metrics.tmax(t, y, start=3), [6.0, 8.0])
    np.testing.assert_array_equal(metrics.tmax(t, y, end=3), [2.0, 0.0])
    np.testing.assert_array_equal(metrics.nadir(t, y, start=1), [1.0, 0.0])
    np.testing.assert_array_equal(metrics.nadir(t, y, end=5), [0.0, 1.0])
    np.testing.assert_array_equal(metrics.time_of_nadir(t, y, start=1), [8.0, 6.0])
    np.testing.assert_array_equal(metrics.time_of_nadir(t, y, end=5), [0.0, 2.0])
    # trapezoids by hand over [3, 7]: subject 1: (5+2)/2 + (2+6)/2*2 + (6+3.5)/2 = 3.5 + 8 + 4.75
    np.testing.assert_allclose(metrics.auc(t, y, start=3, end=7), [16.25, 2.5 + 3.0 + 1.0])
    np.testing.assert_allclose(metrics.auc(t, y, start=3), [3.5 + 8 + 7.0, 2.5 + 3.0 + 4.0])
    np.testing.assert_allclose(metrics.auc(t, y, end=3), [8.0 + 6.5, 6.0 + 1.5])
    # time above 4 by hand: subject 1 crosses up at 1, down at 2 + 4/6*2, up at 5, down at 6 + 2/5*2;
    # subject 2 is above from 0 to 0.5 only (5 -> 1 over [0, 2])
    np.testing.assert_allclose(metrics.time_above(t, y, 4.0), [(2 + 8 / 6 - 1) + (6.8 - 5), 0.5])
    # over [3, 7]: 5 -> 2 above for 1/3, 2 -> 6 from 5 to 6, 6 -> 3.5 until 6.8
    np.testing.assert_allclose(metrics.time_above(t, y, 4.0, start=3, end=7), [1 / 3 + 1.0 + 0.8, 0.0])
    np.testing.assert_allclose(metrics.time_above(t, y, 4.0, start=3), [1 / 3 + 1.0 + 0.8, 0.0])
    np.testing.assert_allclose(metrics.time_above(t, y, 4.0, end=3), [1.0 + 1.0, 0.5])


def test_a_window_of_zero_width_gives_the_value_there_and_no_area():
    t = np.array([0.0, 2.0, 4.0])
    y = np.array([[0.0, 4.0, 2.0], [1.0, 1.0, 3.0]])
    np.testing.assert_array_equal(metrics.cmax(t, y, start=1, end=1), [2.0, 1.0])
    np.testing.assert_array_equal(metrics.tmax(t, y, start=1, end=1), [1.0, 1.0])
    np.testing.assert_array_equal(metrics.time_of_nadir(t, y, start=3, end=3), [3.0, 3.0])
    np.testing.assert_array_equal(metrics.auc(t, y, start=1, end=1), [0.0, 0.0])
    np.testing.assert_array_equal(metrics.time_above(t, y, 0.5, start=1, end=1), [0.0, 0.0])
    assert metrics.auc(t, y[0], start=2, end=2) == 0.0
    assert metrics.time_above(t, y[0], 0.5, start=2, end=2) == 0.0
    assert metrics.tmax(t, y[0], start=2, end=2) == 2.0


def test_one_subject_gives_a_float_and_several_give_an_array():
    t = [0.0, 1.0, 3.0]
    one, two = [2.0, 4.0, 1.0], [[2.0, 4.0, 1.0], [0.0, 1.0, 5.0]]
    expected = {"cmax": (4.0, [4.0, 5.0]), "tmax": (1.0, [1.0, 3.0]), "nadir": (1.0, [1.0, 0.0]),
                "time_of_nadir": (3.0, [3.0, 0.0]), "auc": (3.0 + 5.0, [8.0, 0.5 + 6.0]),
                "time_above": (3.0, [3.0, 2.0])}   # above 1: 2 -> 4 all of [0, 1], 4 -> 1 until t = 3
    for name, (single, many) in expected.items():
        got = FUNCTIONS[name](t, one)
        assert type(got) is float, name
        assert got == pytest.approx(single), name
        np.testing.assert_allclose(FUNCTIONS[name](t, two), many)
    assert type(metrics.value_at(t, one, 2.0)) is float
    assert type(metrics.change_from_baseline(t, one, 2.0)) is float
    assert type(median_time(t, [1.0, 0.6, 0.2])) is float
    assert metrics.value_at(t, two, 2.0).shape == (2,)


# ---------------------------------------------------------------------------------------------------- values
def test_the_value_at_a_sample_time_is_that_sample_exactly():
    t = np.array([0.0, 1.0, 2.0])
    y = np.array([1e20, 3.0, 5.0])   # 1e20 + (3 - 1e20) * 1 is not 3 in floating point
    assert metrics.value_at(t, y, 1.0) == 3.0
    assert metrics.value_at(t, np.array([1.0, 1e20, 3.0]), 2.0) == 3.0   # the last sample too
    assert metrics.value_at(t, np.array([1.0, 3.0, 1e20]), 2.0) == 1e20
    # a sample beside a non-finite one (a subject that overflowed later) still reads exactly
    assert metrics.value_at(t, np.array([1.0, 3.0, np.inf]), 1.0) == 3.0
    assert metrics.value_at(t, np.array([1.0, 3.0, np.inf]), 0.0) == 1.0


def test_values_between_samples_are_linear_and_unsigned_values_do_not_wrap():
    t = np.array([0, 4], dtype=np.uint8)
    y = np.array([10, 2], dtype=np.uint8)   # 2 - 10 wraps to 248 in uint8
    assert metrics.value_at(t, y, 1.0) == 8.0
    assert metrics.auc(t, y) == 24.0
    assert metrics.change_from_baseline(t, y, 2.0) == -4.0


def test_change_from_baseline_in_percent_of_a_baseline_of_one_and_nan_for_zero():
    t = [0.0, 10.0]
    np.testing.assert_allclose(metrics.change_from_baseline(t, [[1.0, 3.0], [4.0, 2.0]], 10.0, relative=True),
                               [200.0, -50.0])
    got = metrics.change_from_baseline(t, [[0.0, 3.0], [2.0, 3.0]], 10.0, relative=True)
    assert math.isnan(got[0]) and got[1] == 50.0


def test_log_down_is_used_on_falling_segments_with_both_values_positive_only():
    # rising: linear, also where the window cuts the segment (y(1) = 2, area 1.5)
    assert metrics.auc([0.0, 2.0], [1.0, 3.0], end=1.0, method="log-down") == 1.5
    # falling to 0: trapezoids (whole segment 4); cut at 1, the end value is linear (2), and [0, 1] falls from 4
    # to 2, both positive: log-down there, 2 / ln 2
    assert metrics.auc([0.0, 2.0], [4.0, 0.0], end=1.0, method="log-down") == pytest.approx(2 / math.log(2))
    assert metrics.auc([0.0, 2.0], [4.0, 0.0], method="log-down") == 4.0
    # falling and positive: exact for an exponential, y(t) = 8 exp(-ln2 t): area over [0, 1] = 4 / ln 2
    assert metrics.auc([0.0, 2.0], [8.0, 2.0], end=1.0, method="log-down") == pytest.approx(4 / math.log(2))
    # the method reaches the value at the window end, log-linear: y(1) = 4, area over [1, 2] = 2 / ln 2
    assert metrics.auc([0.0, 2.0], [8.0, 2.0], start=1.0, method="log-down") == pytest.approx(2 / math.log(2))


def test_time_above_counts_time_strictly_above_with_linear_crossings():
    # a segment exactly at the threshold is not above it (and a flat segment does not divide by zero)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.time_above([0.0, 1.0, 2.0], [2.0, 2.0, 2.0], 2.0) == 0.0
        assert metrics.time_above([0.0, 1.0, 2.0], [3.0, 3.0, 0.0], 1.0) == 1.0 + 2 / 3
        assert metrics.time_above([0.0, 1.0, 2.0], [0.0, 0.0, 3.0], 1.0) == pytest.approx(2 / 3)
    # a crossing less than 1 above the threshold, and the two-sample window
    assert metrics.time_above([0.0, 1.0], [0.0, 1.0], 0.5) == 0.5
    assert metrics.time_above([0.0, 2.0], [0.0, 4.0], 1.0) == 1.5
    # a sine, 0 to 2 pi sampled finely: above 0.5 between pi/6 and 5 pi/6 (2 pi / 3), to the chord error
    t = np.linspace(0.0, 2 * np.pi, 2001)
    assert metrics.time_above(t, np.sin(t), 0.5) == pytest.approx(2 * np.pi / 3, abs=1e-5)


def test_a_failed_subject_is_nan_and_leaves_the_others_alone():
    t = np.array([0.0, 1.0, 2.0])
    y = np.array([[1.0, 3.0, 0.0], [np.nan, np.nan, np.nan], [2.0, 0.5, 4.0]])
    for name, expected in {"tmax": 1.0, "time_of_nadir": 2.0, "time_above": 1 + 2 / 3}.items():
        got = FUNCTIONS[name](t, y)
        assert got[0] == pytest.approx(expected) and math.isnan(got[1]) and not math.isnan(got[2]), name
    np.testing.assert_array_equal(metrics.time_of_nadir(t, y)[[0, 2]], [2.0, 1.0])
    np.testing.assert_array_equal(metrics.tmax(t, y)[[0, 2]], [1.0, 2.0])


def test_the_first_time_of_a_tie():
    t = [0.0, 1.0, 2.0, 3.0]
    assert metrics.tmax(t, [1.0, 5.0, 2.0, 5.0]) == 1.0
    assert metrics.time_of_nadir(t, [3.0, 0.0, 2.0, 0.0]) == 1.0


# ---------------------------------------------------------------------------------------------------- median time
def test_median_time_is_the_linear_crossing_of_one_half():
    t = [0.0, 10.0, 30.0, 40.0]
    # crossing between 10 (0.8) and 30 (0.3): 10 + (0.8 - 0.5) / (0.8 - 0.3) * 20 = 22
    assert median_time(t, [1.0, 0.8, 0.3, 0.1]) == pytest.approx(22.0)
    # between 30 (0.6) and 40 (0.4): 35; and one that stays above 0.5: inf
    got = median_time(t, [[1.0, 0.9, 0.6, 0.4], [1.0, 0.9, 0.8, 0.7], [1.0, 0.8, 0.3, 0.1]])
    np.testing.assert_allclose(got, [35.0, np.inf, 22.0])
    # exactly 0.5 at a sample and staying there: that sample's time
    assert median_time(t, [1.0, 0.5, 0.5, 0.5]) == 10.0
    # already at or below 0.5 at the first time: the first time (for every subject)
    np.testing.assert_allclose(median_time([5.0, 10.0, 20.0], [[0.4, 0.3, 0.2], [1.0, 0.6, 0.4], [0.5, 0.2, 0.1]]),
                               [5.0, 15.0, 5.0])


def test_median_time_looks_only_up_to_end_inclusive():
    t = [0.0, 10.0, 20.0]
    s = [1.0, 0.6, 0.4]   # crosses at 15
    assert median_time(t, s) == 15.0
    assert median_time(t, s, end=20.0) == 15.0
    assert median_time(t, s, end=12.0) == math.inf
    assert median_time(t, [1.0, 0.6, 0.5], end=20.0) == 20.0


def test_median_time_of_a_sampled_exponential_survival():
    t = np.linspace(0.0, 100.0, 11)
    s = np.exp(-0.01 * t)          # exact median ln 2 / 0.01 = 69.3; sampled: the chord from 60 to 70
    s0, s1 = math.exp(-0.6), math.exp(-0.7)
    assert median_time(t, s) == pytest.approx(60 + (s0 - 0.5) / (s0 - s1) * 10, rel=1e-12)
    assert abs(median_time(t, s) - math.log(2) / 0.01) < 0.05


# ---------------------------------------------------------------------------------------------------- endpoints
def test_an_endpoint_refuses_bad_definitions():
    with pytest.raises(PkpdError, match="output must be the name of a model output"):
        Endpoint(5, "cmax")
    with pytest.raises(PkpdError, match="output must be the name of a model output"):
        Endpoint("", "cmax")
    for metric in ("value_at", "change_from_baseline", "change_from_untreated", "probability_at", "survival_at",
                   "expected_count"):
        with pytest.raises(PkpdError, match=rf"\({metric}\): give time=\.\.\. \[model time unit\]; {metric} needs it"):
            Endpoint("TNF", metric)
    with pytest.raises(PkpdError, match=r"give threshold=\.\.\. \[threshold_unit\]; time_above needs it"):
        Endpoint("TNF", "time_above")
    for bad in ("3", True, math.inf, math.nan):
        with pytest.raises(PkpdError, match="start must be a finite number"):
            Endpoint("TNF", "cmax", start=bad)
    with pytest.raises(PkpdError, match="end 1 is before start 2"):
        Endpoint("TNF", "cmax", start=2, end=1)
    with pytest.raises(PkpdError, match="name must be a non-empty string"):
        Endpoint("TNF", "cmax", name="  ")
    with pytest.raises(PkpdError, match=r"endpoint 'TNF' \(auc\): method must be one of"):
        Endpoint("TNF", "auc", method="log")


def test_endpoint_numbers_become_floats_and_a_window_may_have_one_end_or_zero_width():
    ep = Endpoint("TNF", "cmax", start=np.int64(3))
    assert type(ep.start) is float and ep.start == 3.0 and ep.name == "TNF_Cmax_from_3"
    assert Endpoint("TNF", "cmax", end=24).name == "TNF_Cmax_to_24"
    zero = Endpoint("TNF", "cmax", start=5, end=5)
    assert zero.compute([0.0, 10.0], [[0.0, 4.0]])[0] == 2.0


def test_endpoint_default_names():
    assert Endpoint("TNF", "time_above", threshold=5, start=0, end=48).name == "TNF_time_above_5_0_48"
    assert Endpoint("grade", "probability_at", time=24, category=2).name == "grade_P_ge2_24"
    assert Endpoint("flares", "expected_count", time=48, start=24).name == "flares_count_48_from_24"
    assert Endpoint("TNF", "change_from_baseline", time=48, baseline_time=2).name == "TNF_change_48"
    assert Endpoint("event", "median_time_to_event", end=100).name == "event_median_time_to_100"
    assert Endpoint("IL10", "value_at", time=1.5).name == "IL10_at_1.5"
    assert Endpoint("TNF", "change_from_untreated", time=48).name == "TNF_vs_untreated_48"
    assert Endpoint("event", "survival_at", time=100).name == "event_survival_100"
    assert Endpoint("resp", "probability_at", time=24).name == "resp_P_24"


@pytest.mark.parametrize("endpoint, unit", [
    (Endpoint("X", "auc"), "pg/mL*h"),
    (Endpoint("X", "cmax"), "pg/mL"),
    (Endpoint("X", "nadir"), "pg/mL"),
    (Endpoint("X", "value_at", time=1), "pg/mL"),
    (Endpoint("X", "tmax"), "h"),
    (Endpoint("X", "time_of_nadir"), "h"),
    (Endpoint("X", "time_above", threshold=1), "h"),
    (Endpoint("X", "median_time_to_event"), "h"),
    (Endpoint("X", "survival_at", time=1), "1"),
    (Endpoint("X", "probability_at", time=1), "1"),
    (Endpoint("X", "expected_count", time=1), "1"),
    (Endpoint("X", "change_from_baseline", time=1), "pg/mL"),
    (Endpoint("X", "change_from_baseline", time=1, relative=True), "%"),
    (Endpoint("X", "change_from_untreated", time=1, relative=True), "%"),
])
def test_endpoint_units(endpoint, unit):
    assert endpoint.unit("pg/mL", "h") == unit


def test_the_auc_of_a_dimensionless_output_is_in_the_time_unit():
    assert Endpoint("X", "auc").unit("1", "h") == "h"


def test_endpoint_descriptions_read_as_sentences():
    assert (Endpoint("TNF", "time_above", threshold=5, start=0, end=48).describe("pg/mL")
            == "time TNF is above 5 pg/mL from 0 to 48 h [h]")
    assert (Endpoint("TNF", "change_from_baseline", time=48, baseline_time=2, relative=True).describe("pg/mL")
            == "relative change of TNF at 48 h from 2 h [%]")
    assert Endpoint("IL10", "cmax", end=24).describe() == "maximum of IL10 from the start to 24 h"
    assert (Endpoint("IL10", "auc", start=12, method="log-down").describe("pg/mL", "min")
            == "AUC of IL10 from 12 to the end min (linear-up/log-down) [pg/mL*min]")
    assert (Endpoint("grade", "probability_at", time=24, category=2).describe("1")
            == "P(grade >= 2) at 24 h [1]")
    assert Endpoint("event", "median_time_to_event", end=100).describe() == "median time to event (within 100 h)"
    assert (Endpoint("flares", "expected_count", time=48, start=24).describe()
            == "expected count of flares from 24 to 48 h")


def test_endpoint_compute_passes_each_option_on():
    t = np.array([0.0, 2.0, 4.0, 6.0, 8.0])
    y = np.array([[1.0, 8.0, 2.0, 6.0, 4.0]])

    def one(ep, values=y, untreated=None):
        return ep.compute(t, values, untreated)[0]

    assert one(Endpoint("X", "cmax", start=3)) == 6.0
    assert one(Endpoint("X", "tmax", start=3, end=7)) == 6.0
    assert one(Endpoint("X", "nadir", start=3, end=7)) == 2.0
    assert one(Endpoint("X", "time_of_nadir", start=3, end=7)) == 4.0
    assert one(Endpoint("X", "auc", start=4, end=8)) == 8.0 + 10.0
    decay = np.array([[8.0, 4.0, 2.0, 1.0, 0.5]])  # 8 exp(-ln2 t / 2): log-down area over [0, 8] = 2 (8 - 0.5) / ln 2
    assert one(Endpoint("X", "auc", method="log-down"), decay) == pytest.approx(15 / math.log(2))
    # above 5 from 4: 2 -> 6 from 5.5, 6 -> 4 until 7
    assert one(Endpoint("X", "time_above", threshold=5, start=4)) == 0.5 + 1.0
    assert one(Endpoint("X", "value_at", time=3)) == 5.0
    assert one(Endpoint("X", "change_from_baseline", time=3, baseline_time=6, relative=True)) == pytest.approx(
        100 * (5 - 6) / 6)
    assert one(Endpoint("X", "change_from_baseline", time=3)) == 4.0
    surv = np.array([[1.0, 0.9, 0.7, 0.4, 0.2]])
    assert one(Endpoint("X", "survival_at", time=5), surv) == pytest.approx(0.55)
    assert one(Endpoint("X", "probability_at", time=5), surv) == pytest.approx(0.55)
    logit = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    assert one(Endpoint("X", "probability_at", time=3, category=2), logit) == pytest.approx(expit(1.5))
    assert one(Endpoint("X", "median_time_to_event"), surv) == pytest.approx(4 + 0.2 / 0.3 * 2)
    assert one(Endpoint("X", "median_time_to_event", end=5), surv) == math.inf
    counts = np.array([[0.0, 0.4, 0.8, 1.2, 1.6]])
    assert one(Endpoint("X", "expected_count", time=5), counts) == pytest.approx(1.0)
    assert one(Endpoint("X", "expected_count", time=5, start=1), counts) == pytest.approx(0.8)
    # by time 5 on a grid starting at 2 (a count from 0, not from the first time): the series at 5
    assert Endpoint("X", "expected_count", time=5).compute(t[1:], counts[:, 1:])[0] == pytest.approx(1.0)
    untreated = np.array([[2.0, 2.0, 4.0, 4.0, 4.0]])
    assert one(Endpoint("X", "change_from_untreated", time=3), y, untreated) == 5.0 - 3.0
    assert one(Endpoint("X", "change_from_untreated", time=3, relative=True), y, untreated) == pytest.approx(
        100 * 2 / 3)
    with pytest.raises(PkpdError, match="change_from_untreated needs the untreated trajectories"):
        one(Endpoint("X", "change_from_untreated", time=3))


# ---------------------------------------------------------------------------------------------------- with models
@pytest.fixture(scope="module")
def clinical():
    """The endpoints model without a dose (every endpoint has a closed form) and with 100 mg IV at 0."""
    m = pkpd.load_model(MODEL_FILE)
    t = np.linspace(0.0, 100.0, 11)
    untreated = pkpd.simulate(m, pkpd.Regimen([]), t)
    dosed = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), t)
    return m, untreated, dosed


def test_clinical_endpoints_are_checked_against_their_output_type(clinical):
    m, _, _ = clinical
    assert Endpoint("resp", "probability_at", time=24).for_model(m).source == "resp"
    assert Endpoint("event", "survival_at", time=24).for_model(m).series == "event"
    assert Endpoint("event", "median_time_to_event").for_model(m).source == "event"
    assert Endpoint("flares", "expected_count", time=48, start=24).for_model(m).source == "flares"
    assert Endpoint("episodes", "expected_count", time=48).for_model(m).source == "episodes"
    for c in (1, 2, 3):
        ep = Endpoint("grade", "probability_at", time=24, category=c).for_model(m)
        assert ep.series == f"grade_logit{c}" and ep.output == "grade"
    for c in (0, 4):
        with pytest.raises(PkpdError, match=r"give category=c, one of 1, 2, 3: the endpoint is P\(grade >= c\)"):
            Endpoint("grade", "probability_at", time=24, category=c).for_model(m)
    with pytest.raises(PkpdError, match="give category=c"):
        Endpoint("grade", "probability_at", time=24).for_model(m)
    with pytest.raises(PkpdError, match="output 'resp' is binary; survival_at applies to time-to-event outputs"):
        Endpoint("resp", "survival_at", time=24).for_model(m)
    with pytest.raises(PkpdError, match="category applies to ordinal outputs only"):
        Endpoint("resp", "probability_at", time=24, category=1).for_model(m)
    with pytest.raises(PkpdError, match="start applies to counts whose mean is a rate"):
        Endpoint("episodes", "expected_count", time=48, start=24).for_model(m)


def test_clinical_endpoints_of_a_simulation_equal_their_closed_forms(clinical):
    m, untreated, dosed = clinical
    assert Endpoint("event", "survival_at", time=50).evaluate(untreated)[0] == pytest.approx(math.exp(-0.5))
    assert Endpoint("resp", "probability_at", time=50).evaluate(untreated)[0] == pytest.approx(expit(-1.0))
    for c, logit in ((1, 1.0), (2, -0.5), (3, -2.0)):
        got = Endpoint("grade", "probability_at", time=50, category=c).evaluate(untreated)[0]
        assert got == pytest.approx(expit(logit), rel=1e-9)
    assert Endpoint("flares", "expected_count", time=50, start=20).evaluate(untreated)[0] == pytest.approx(6.0)
    s0, s1 = math.exp(-0.6), math.exp(-0.7)   # the chord of the sampled survival from 60 to 70 h
    assert Endpoint("event", "median_time_to_event").evaluate(untreated)[0] == pytest.approx(
        60 + (s0 - 0.5) / (s0 - s1) * 10, rel=1e-6)
    # checked against the model first, or not: the same
    ep = Endpoint("grade", "probability_at", time=50, category=2)
    assert ep.for_model(m).evaluate(untreated)[0] == pytest.approx(ep.evaluate(untreated)[0])
    # the dosed arm against the untreated one: conc = 100 mg / 10 L exp(-0.1 t), 0 untreated
    vs = Endpoint("conc", "change_from_untreated", time=10).evaluate(dosed, untreated=untreated)
    assert vs[0] == pytest.approx(10 * math.exp(-1.0), rel=1e-5)
    with pytest.raises(PkpdError, match="change_from_untreated needs the untreated trajectories"):
        Endpoint("conc", "change_from_untreated", time=10).evaluate(dosed)


def test_a_simulation_without_its_model_evaluates_exposure_but_not_clinical_endpoints(clinical):
    _, _, dosed = clinical
    bare = dataclasses.replace(dosed, model=None)
    assert Endpoint("conc", "cmax").evaluate(bare)[0] == pytest.approx(10.0)
    with pytest.raises(PkpdError, match=r"check it against the model first \(endpoint.for_model\(m\)\)"):
        Endpoint("event", "survival_at", time=10).evaluate(bare)


def test_for_model_converts_a_threshold_to_the_output_unit_once():
    m = pkpd.load_model("pk_1cmt_iv")
    ep = Endpoint("conc", "time_above", threshold=1000, threshold_unit="ng/mL").for_model(m)
    assert (ep.threshold, ep.threshold_unit) == (pytest.approx(1.0), "mg/L")
    assert ep.for_model(m).threshold == pytest.approx(1.0)
    plain = Endpoint("conc", "time_above", threshold=2.0)
    assert plain.for_model(m) == plain


def test_endpoint_table_rows(clinical):
    m = pkpd.load_model("msc_sepsis")
    eps = [Endpoint("IL10", "auc", start=0, end=168), Endpoint("TNF", "time_above", threshold=5)]
    rows = endpoint_table(eps, m)
    assert rows == [
        {"endpoint": "IL10_AUC_0_168", "output": "IL10", "metric": "auc",
         "definition": "AUC of IL10 from 0 to 168 h (linear trapezoids)", "unit": "pg/mL*h"},
        {"endpoint": "TNF_time_above_5", "output": "TNF", "metric": "time_above",
         "definition": "time TNF is above 5 pg/mL", "unit": "h"}]
    assert endpoint_table({ep.name: ep for ep in eps}, m) == rows
    in_minutes = endpoint_table(eps, dataclasses.replace(m, time_unit="min"))
    assert in_minutes[0]["definition"] == "AUC of IL10 from 0 to 168 min (linear trapezoids)"
    assert in_minutes[0]["unit"] == "pg/mL*min"


def test_endpoint_table_keeps_a_unit_written_with_spaces():
    class Declared:   # what endpoint_table reads of a model: declared units (as written) and the time unit
        time_unit = "h"

        def unit_of(self, name):
            return "cell / mL"

    row = endpoint_table([Endpoint("MSC", "cmax")], Declared())[0]
    assert (row["definition"], row["unit"]) == ("maximum of MSC", "cell / mL")


def test_nca_names_still_resolve_from_metrics():
    from pkpd import noncompartmental

    for name in ("nca", "nca_profile", "NCAResult", "ROUTES"):
        assert getattr(metrics, name) is getattr(noncompartmental, name)
    with pytest.raises(AttributeError, match="module 'pkpd.metrics' has no attribute 'nothing'"):
        metrics.nothing  # noqa: B018
