"""Property tests for pkpd.dosing: invariants of regimens over randomly generated doses and times."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from pkpd.dosing import Bolus, Dose, Infusion, Regimen

TIME_UNITS = ("min", "h", "day", "week")
MINUTES = {"min": 1, "h": 60, "day": 1440, "week": 10080}  # independent of the module's own table

# Times are 0 or at least 1e-9: converting far smaller ones between units would reach subnormal floats, whose
# relative precision is poor, and no dosing schedule needs them.
times = st.just(0.0) | st.floats(min_value=1e-9, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
amounts = st.just(0.0) | st.floats(min_value=1e-6, max_value=1e12, allow_nan=False, allow_infinity=False)
units = st.sampled_from(["mg", "cells", "cell/kg", "mg / kg", "ug"])
targets = st.none() | st.sampled_from(["iv", "lung", "depot"])
doses = st.builds(Dose, amounts, units)


@st.composite
def infusions(draw) -> Infusion:
    dose = draw(doses)
    kind = draw(st.sampled_from(["duration", "rate", "modelled"] if dose.amount > 0 else ["duration", "modelled"]))
    if kind == "duration":
        return Infusion(draw(times), dose, duration=draw(positive), target=draw(targets))
    if kind == "rate":
        return Infusion(draw(times), dose, rate=dose.amount / draw(positive), target=draw(targets))
    return Infusion(draw(times), dose, target=draw(targets), modelled=draw(st.sampled_from(["rate", "duration"])))


administrations = st.builds(Bolus, times, doses, targets) | infusions()
regimens = st.builds(Regimen, st.lists(administrations, max_size=20), st.sampled_from(TIME_UNITS))


def _key(adm: Bolus | Infusion) -> tuple:
    """What a dose is, apart from its timing: kind, amount, unit, target and modelled option."""
    return type(adm).__name__, adm.dose, adm.target, getattr(adm, "modelled", None)


@given(regimens)
def test_total_amount_equals_the_sum_of_doses(regimen):
    totals = regimen.total_amount()
    assert set(totals) == {a.dose.unit for a in regimen}
    for unit, total in totals.items():
        assert math.isclose(total, math.fsum(a.dose.amount for a in regimen if a.dose.unit == unit), rel_tol=1e-12)


@given(regimens)
def test_administrations_are_sorted_by_time(regimen):
    starts = [a.time for a in regimen.administrations]
    assert starts == sorted(starts)
    assert regimen.times.tolist() == starts


@given(st.lists(administrations, max_size=20))
def test_construction_keeps_every_administration(items):
    assert Counter(Regimen(items).administrations) == Counter(items)


@given(interval=positive, count=st.integers(1, 50), start=times, dose=doses, unit=st.sampled_from(TIME_UNITS))
def test_every_gives_start_plus_k_intervals(interval, count, start, dose, unit):
    regimen = Regimen.every(interval, unit, count=count, dose=dose, start=start)
    assert len(regimen) == count
    for k, t in enumerate(regimen.times):
        assert math.isclose(t, start + k * interval, rel_tol=1e-15, abs_tol=0.0)
    assert all(a.dose == dose for a in regimen)


@given(regimens)
def test_hours_to_minutes_and_back_preserves_times(regimen):
    hours = regimen.in_time_unit("h")
    back = hours.in_time_unit("min").in_time_unit("h")
    assert len(back) == len(hours)
    for before, after in zip(hours, back, strict=True):
        assert math.isclose(after.time, before.time, rel_tol=1e-12)
        assert _key(after) == _key(before)
        if isinstance(before, Infusion) and before.duration is not None:
            assert math.isclose(after.duration, before.duration, rel_tol=1e-12)
            assert (after.rate is None) == (before.rate is None)


@given(regimens)
def test_in_time_unit_scales_times_by_the_unit_ratio(regimen):
    minutes = regimen.in_time_unit("min")
    factor = MINUTES[regimen.time_unit]
    for before, after in zip(regimen, minutes, strict=True):
        assert math.isclose(after.time, before.time * factor, rel_tol=1e-12)


@given(regimens, regimens)
def test_adding_regimens_preserves_every_dose(left, right):
    combined = left + right
    assert combined.time_unit == left.time_unit
    assert Counter(map(_key, combined)) == Counter(map(_key, left)) + Counter(map(_key, right))
    factor = MINUTES[right.time_unit] / MINUTES[left.time_unit]
    expected = sorted([a.time for a in left] + [a.time * factor for a in right])
    for got, want in zip(combined.times, expected, strict=True):
        assert math.isclose(got, want, rel_tol=1e-12)


@given(regimens, regimens)
def test_adding_regimens_adds_their_total_amounts(left, right):
    combined = (left + right).total_amount()
    for unit in set(left.total_amount()) | set(right.total_amount()):
        want = left.total_amount().get(unit, 0.0) + right.total_amount().get(unit, 0.0)
        assert math.isclose(combined[unit], want, rel_tol=1e-12)
