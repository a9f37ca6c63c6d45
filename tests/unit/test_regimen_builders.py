"""Regimen builders pass every option to each administration (issue 20 mutation audit of dosing.py)."""

import numpy as np
import pytest

from pkpd.dosing import MAX_DOSES, Bolus, Dose, Infusion, Regimen
from pkpd.errors import DosingError

DOSE = Dose(100, "mg")


def test_at_gives_infusions_with_the_duration_target_and_unit_given():
    reg = Regimen.at([24, 0, 12], DOSE, duration=2.0, target="iv", time_unit="day")
    assert reg.time_unit == "day"
    assert [a.time for a in reg] == [0.0, 12.0, 24.0]
    assert all(isinstance(a, Infusion) and a.duration == 2.0 and a.target == "iv" and a.dose == DOSE for a in reg)


def test_at_gives_rate_infusions():
    reg = Regimen.at(np.array([0.0, 6.0]), DOSE, rate=25.0)
    assert all(isinstance(a, Infusion) and a.rate == 25.0 and a.duration == 4.0 for a in reg)


def test_at_without_timing_gives_boluses():
    reg = Regimen.at([0, 6], DOSE, target="oral")
    assert all(isinstance(a, Bolus) and a.target == "oral" for a in reg)


def test_every_gives_count_doses_interval_apart_from_start():
    reg = Regimen.every(12, "h", count=4, dose=DOSE, start=6, duration=1.0, target="iv")
    assert [a.time for a in reg] == [6.0, 18.0, 30.0, 42.0]
    assert all(isinstance(a, Infusion) and a.duration == 1.0 and a.target == "iv" for a in reg)
    by_rate = Regimen.every(1, "day", count=2, dose=DOSE, rate=50.0)
    assert by_rate.time_unit == "day" and [a.rate for a in by_rate] == [50.0, 50.0]


@pytest.mark.parametrize("interval", [True, float("nan"), float("inf"), "12"])
def test_every_refuses_an_interval_that_is_not_a_finite_number(interval):
    with pytest.raises(DosingError, match="interval must be a finite number"):
        Regimen.every(interval, "h", count=2, dose=DOSE)


def test_single_passes_its_options():
    inf = Regimen.single(DOSE, at=3.0, duration=0.5, target="iv", time_unit="min").administrations[0]
    assert (type(inf), inf.time, inf.duration, inf.target) == (Infusion, 3.0, 0.5, "iv")
    assert Regimen.single(DOSE, at=3.0, time_unit="min").time_unit == "min"


def test_per_kg_amounts_and_totals():
    assert Dose(2.0, "mg/kg").amount_for(70.0) == 140.0
    reg = Regimen.every(24, "h", count=3, dose=Dose(2.0, "mg/kg")) + Regimen.single(DOSE, at=1.0)
    assert reg.total_amount() == {"mg/kg": 6.0, "mg": 100.0}


def test_times_durations_and_rates_are_stored_as_floats():
    assert type(Bolus(24, DOSE).time) is float
    inf = Infusion(np.int64(2), DOSE, rate=50)
    assert type(inf.time) is float and type(inf.rate) is float and type(inf.duration) is float


def test_an_infusion_checks_its_target():
    with pytest.raises(DosingError, match="target must not have surrounding spaces"):
        Infusion(0, DOSE, duration=1.0, target=" iv")


@pytest.mark.parametrize(("amount", "rate"), [(1e300, 1e-300), (1e-300, 1e300)])
def test_a_rate_whose_duration_overflows_or_underflows_is_refused(amount, rate):
    # amount / rate is inf or 0 in floating point: no infusion can last that long or that short
    with pytest.raises(DosingError, match="duration = amount / rate must be a finite number > 0"):
        Infusion(0, Dose(amount, "mg"), rate=rate)


@pytest.mark.parametrize("items", [5, 2.5, None])
def test_a_regimen_of_something_that_is_not_a_list_is_a_dosing_error(items):
    with pytest.raises(DosingError):
        Regimen(items)


# --- the limit on the number of doses (MAX_DOSES, as NONMEM's ADDL): exactly at it is allowed, one more is refused
# before anything past it is read (an endless generator must not hang or fill memory)


class _ReadPastTheLimit(Exception):
    pass


def _then_fail(items):
    yield from items
    raise _ReadPastTheLimit


def test_a_regimen_may_hold_exactly_max_doses():
    reg = Regimen.every(1, count=MAX_DOSES, dose=DOSE)
    assert len(reg) == MAX_DOSES and reg.times[-1] == MAX_DOSES - 1
    assert len(Regimen(reg.administrations)) == MAX_DOSES
    assert len(Regimen.at(reg.times, DOSE)) == MAX_DOSES


def test_one_administration_more_is_refused_without_reading_further():
    with pytest.raises(DosingError) as err:
        Regimen(_then_fail([Bolus(0, DOSE)] * (MAX_DOSES + 1)))
    assert str(err.value) == (
        "Regimen: more than 100,000 administrations; a regimen holds at most 100,000 doses "
        "(as NONMEM's ADDL). Shorten the regimen or simulate in pieces."
    )


@pytest.mark.parametrize("times", [lambda: _then_fail([0.0] * (MAX_DOSES + 1)), lambda: np.zeros(MAX_DOSES + 1)])
def test_one_time_more_is_refused_without_reading_further(times):
    with pytest.raises(DosingError) as err:
        Regimen.at(times(), DOSE)
    assert str(err.value) == (
        "Regimen.at: more than 100,000 times; a regimen holds at most 100,000 doses "
        "(as NONMEM's ADDL). Shorten the regimen or simulate in pieces."
    )


def test_one_dose_more_by_count_is_refused():
    with pytest.raises(DosingError) as err:
        Regimen.every(1, count=MAX_DOSES + 1, dose=DOSE)
    assert str(err.value) == (
        "Regimen.every: count must be at most 100,000 (the most doses a regimen holds, as "
        "NONMEM's ADDL); got 100,001. Shorten the regimen or simulate in pieces."
    )
