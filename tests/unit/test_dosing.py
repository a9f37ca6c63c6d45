"""Unit tests for pkpd.dosing (public API only; one behaviour per test)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pkpd.dosing import Bolus, Dose, Infusion, Regimen
from pkpd.errors import DosingError

MG = Dose(100, "mg")


# --- Dose -------------------------------------------------------------------------------------------------------


def test_dose_stores_amount_as_float_and_strips_unit():
    dose = Dose(100, " mg ")
    assert dose.amount == 100.0 and isinstance(dose.amount, float)
    assert dose.unit == "mg"


def test_zero_dose_is_allowed():
    assert Dose(0, "mg").amount == 0.0


def test_dose_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MG.amount = 5  # type: ignore[misc]


@pytest.mark.parametrize("unit", ["cell/kg", "mg / kg", "mg/ kg", "cells /kg"])
def test_per_kg_units_are_detected_ignoring_spaces(unit):
    assert Dose(1, unit).per_kg


@pytest.mark.parametrize("unit", ["mg", "cells", "mg/kg/h", "kg"])
def test_absolute_units_are_not_per_kg(unit):
    assert not Dose(1, unit).per_kg


@pytest.mark.parametrize(("unit", "base"), [("cell/kg", "cell"), ("mg / kg", "mg"), ("mg", "mg")])
def test_base_unit_drops_the_per_kg_part(unit, base):
    assert Dose(1, unit).base_unit == base


def test_per_kg_amount_is_scaled_by_weight():
    assert Dose(2e6, "cell/kg").amount_for(70) == pytest.approx(1.4e8, rel=1e-15)


def test_absolute_amount_ignores_weight():
    assert Dose(65e6, "cells").amount_for(70) == 65e6


def test_absolute_amount_needs_no_weight():
    assert Dose(65e6, "cells").amount_for() == 65e6


def test_per_kg_amount_without_weight_is_an_error():
    with pytest.raises(DosingError, match=r"weight_kg=None"):
        Dose(2e6, "cell/kg").amount_for()


@pytest.mark.parametrize("weight", [0, -70, math.nan, math.inf, "70"])
def test_invalid_weight_is_an_error_naming_weight(weight):
    with pytest.raises(DosingError, match=r"weight_kg must be a finite number > 0; got"):
        Dose(2e6, "cell/kg").amount_for(weight)


def test_invalid_weight_is_checked_for_absolute_doses_too():
    with pytest.raises(DosingError, match=r"weight_kg .*got -1"):
        Dose(1, "mg").amount_for(-1)


@pytest.mark.parametrize(("amount", "shown"), [(-1, "-1"), (math.nan, "nan"), (math.inf, "inf"), ("5", "'5' (str)"),
                                              (None, "None"), (True, "True")])
def test_invalid_amount_is_an_error_naming_amount_and_value(amount, shown):
    with pytest.raises(DosingError, match=r"Dose: amount must be a finite number >= 0; got ") as info:
        Dose(amount, "mg")
    assert shown in str(info.value)


@pytest.mark.parametrize("unit", ["", "   ", None, 5])
def test_empty_or_non_string_unit_is_an_error(unit):
    with pytest.raises(DosingError, match=r"Dose: unit must be a non-empty string; got"):
        Dose(1, unit)


def test_unit_of_only_per_kg_is_an_error():
    with pytest.raises(DosingError, match=r"unit must name what is dosed per kg; got '/ kg'"):
        Dose(1, " / kg")


# --- Bolus ------------------------------------------------------------------------------------------------------


def test_bolus_defaults_to_the_default_target():
    bolus = Bolus(24, MG)
    assert (bolus.time, bolus.dose, bolus.target) == (24.0, MG, None)


def test_bolus_keeps_its_target():
    assert Bolus(0, MG, target="lung").target == "lung"


@pytest.mark.parametrize(("time", "shown"), [(-1, "-1"), (math.nan, "nan"), (math.inf, "inf"), (None, "None")])
def test_invalid_bolus_time_is_an_error_naming_time(time, shown):
    with pytest.raises(DosingError, match=r"Bolus: time must be a finite number >= 0; got ") as info:
        Bolus(time, MG)
    assert shown in str(info.value)


def test_bolus_with_a_tuple_dose_is_an_error():
    with pytest.raises(DosingError, match=r"Bolus at t=0: dose must be a Dose; got \(100, 'mg'\) \(tuple\)"):
        Bolus(0, (100, "mg"))  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["", "  ", 3])
def test_invalid_target_is_an_error_naming_target(target):
    with pytest.raises(DosingError, match=r"Bolus at t=0: target must be None .*; got"):
        Bolus(0, MG, target=target)  # type: ignore[arg-type]


def test_target_with_surrounding_spaces_is_an_error():
    with pytest.raises(DosingError, match=r"target must not have surrounding spaces; got ' lung'"):
        Bolus(0, MG, target=" lung")


# --- Infusion ---------------------------------------------------------------------------------------------------


def test_infusion_by_duration_keeps_rate_unset():
    infusion = Infusion(0, MG, duration=2)
    assert (infusion.duration, infusion.rate) == (2.0, None)


def test_infusion_by_rate_computes_its_duration():
    infusion = Infusion(0, MG, rate=40)
    assert (infusion.duration, infusion.rate) == (2.5, 40.0)


def test_per_kg_infusion_rate_is_per_kg():
    assert Infusion(0, Dose(2e6, "cell/kg"), rate=1e6).duration == 2.0


@pytest.mark.parametrize("modelled", ["rate", "duration"])
def test_modelled_infusion_has_no_duration(modelled):
    infusion = Infusion(0, MG, modelled=modelled)
    assert (infusion.duration, infusion.rate, infusion.modelled) == (None, None, modelled)


def test_zero_amount_infusion_by_duration_is_allowed():
    assert Infusion(0, Dose(0, "mg"), duration=1).duration == 1.0


def test_replace_keeps_a_rate_infusion_valid():
    moved = dataclasses.replace(Infusion(0, MG, rate=50), time=12)
    assert (moved.time, moved.duration, moved.rate) == (12.0, 2.0, 50.0)


@pytest.mark.parametrize(("duration", "shown"), [(0, "0"), (-2, "-2"), (math.nan, "nan"), (math.inf, "inf")])
def test_invalid_duration_is_an_error_naming_duration(duration, shown):
    with pytest.raises(DosingError, match=rf"Infusion at t=24: duration must be a finite number > 0; got {shown}\."):
        Infusion(24, MG, duration=duration)


def test_invalid_duration_suggests_a_bolus():
    with pytest.raises(DosingError, match=r"or use Bolus for an instantaneous dose"):
        Infusion(24, MG, duration=0)


@pytest.mark.parametrize(("rate", "shown"), [(0, "0"), (-5, "-5"), (math.nan, "nan")])
def test_invalid_rate_is_an_error_naming_rate(rate, shown):
    with pytest.raises(DosingError, match=rf"Infusion at t=0: rate must be a finite number > 0; got {shown}\."):
        Infusion(0, MG, rate=rate)


def test_zero_amount_infusion_by_rate_is_an_error():
    with pytest.raises(DosingError, match=r"rate cannot set the duration of a zero dose .*got amount 0 mg with rate=5"):
        Infusion(0, Dose(0, "mg"), rate=5)


def test_disagreeing_duration_and_rate_is_an_error():
    with pytest.raises(DosingError, match=r"give only one of duration or rate; got duration=2 and rate=10"):
        Infusion(0, MG, duration=2, rate=10)


def test_infusion_without_timing_is_an_error():
    with pytest.raises(DosingError, match=r"needs exactly one of duration, rate or modelled; got none"):
        Infusion(0, MG)


@pytest.mark.parametrize(("option", "shown"), [({"duration": 2}, "duration=2"), ({"rate": 50}, "rate=50")])
def test_modelled_with_duration_or_rate_is_an_error(option, shown):
    with pytest.raises(DosingError, match=rf"modelled='rate' .*duration and rate must be None; got {shown}"):
        Infusion(0, MG, modelled="rate", **option)


def test_unknown_modelled_is_an_error_with_suggestion():
    with pytest.raises(DosingError, match=r"modelled must be None, 'rate' or 'duration'; got 'Rate'\. Did you mean"):
        Infusion(0, MG, modelled="Rate")


def test_infusion_with_a_non_dose_is_an_error():
    with pytest.raises(DosingError, match=r"Infusion at t=0: dose must be a Dose; got 100 \(int\)"):
        Infusion(0, 100, duration=1)  # type: ignore[arg-type]


def test_infusion_with_negative_time_is_an_error():
    with pytest.raises(DosingError, match=r"Infusion: time must be a finite number >= 0; got -3"):
        Infusion(-3, MG, duration=1)


# --- Regimen: construction ----------------------------------------------------------------------------------------


def test_regimen_sorts_administrations_by_time():
    regimen = Regimen([Bolus(48, MG), Bolus(0, MG), Bolus(24, MG)])
    assert regimen.times.tolist() == [0.0, 24.0, 48.0]


def test_regimen_sort_is_stable_for_equal_times():
    first, second = Bolus(5, MG, target="a"), Infusion(5, MG, duration=1, target="b")
    assert Regimen([first, second]).administrations == (first, second)


def test_regimen_accepts_any_iterable():
    regimen = Regimen(Bolus(t, MG) for t in (3, 1))
    assert isinstance(regimen.administrations, tuple) and regimen.times.tolist() == [1.0, 3.0]


def test_regimen_default_time_unit_is_hours():
    assert Regimen([]).time_unit == "h"


@pytest.mark.parametrize(("given", "canonical"), [("minutes", "min"), ("hour", "h"), ("hours", "h"), ("d", "day"),
                                                  ("days", "day"), ("weeks", "week"), ("week", "week")])
def test_time_unit_aliases_are_normalised(given, canonical):
    assert Regimen([], given).time_unit == canonical


def test_unknown_time_unit_is_an_error_with_suggestion():
    with pytest.raises(DosingError, match=r"Regimen: time unit must be one of .*; got 'hr'\. Did you mean .*'h'"):
        Regimen([], "hr")


def test_non_administration_in_regimen_is_an_error_naming_its_index():
    with pytest.raises(DosingError, match=r"administrations\[1\] must be a Bolus or an Infusion; got Dose"):
        Regimen([Bolus(0, MG), MG])  # type: ignore[list-item]


def test_single_administration_not_in_a_list_is_an_error():
    with pytest.raises(DosingError, match=r"administrations must be an iterable of Bolus or Infusion; got Bolus"):
        Regimen(Bolus(0, MG))  # type: ignore[arg-type]


def test_regimen_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Regimen.none().time_unit = "min"  # type: ignore[misc]


def test_regimen_equality_is_by_value():
    assert Regimen.single(MG, at=2) == Regimen([Bolus(2, MG)])


# --- Regimen.single -----------------------------------------------------------------------------------------------


def test_single_gives_one_bolus():
    assert Regimen.single(MG, at=3, target="depot", time_unit="day") == Regimen([Bolus(3, MG, "depot")], "day")


def test_single_with_duration_gives_an_infusion():
    assert Regimen.single(MG, duration=2).administrations == (Infusion(0, MG, duration=2),)


def test_single_with_rate_gives_an_infusion():
    assert Regimen.single(MG, rate=25).administrations[0].duration == 4.0


def test_single_with_tuple_dose_is_an_error():
    with pytest.raises(DosingError, match=r"Regimen.single: dose must be a Dose; got \(100, 'mg'\)"):
        Regimen.single((100, "mg"))  # type: ignore[arg-type]


def test_single_zero_duration_names_time_and_time_unit():
    message = ("Infusion at t=24 h: duration must be a finite number > 0; got 0. Give a positive duration in h, "
               "or use Bolus for an instantaneous dose.")
    with pytest.raises(DosingError) as info:
        Regimen.single(MG, at=24, duration=0)
    assert str(info.value) == message


def test_single_with_both_duration_and_rate_is_an_error():
    with pytest.raises(DosingError, match=r"give only one of duration or rate; got duration=1 and rate=1"):
        Regimen.single(MG, duration=1, rate=1)


def test_single_negative_time_names_at():
    with pytest.raises(DosingError, match=r"Regimen.single: at must be a finite number >= 0; got -1\. .* in day"):
        Regimen.single(MG, at=-1, time_unit="days")


# --- Regimen.every ------------------------------------------------------------------------------------------------


def test_every_gives_count_doses_at_regular_times():
    regimen = Regimen.every(72, "h", count=8, dose=Dose(2e6, "cell/kg"))
    assert regimen.times.tolist() == [72.0 * k for k in range(8)]


def test_every_starts_at_start():
    assert Regimen.every(12, count=3, dose=MG, start=6).times.tolist() == [6.0, 18.0, 30.0]


def test_every_uses_the_given_time_unit():
    assert Regimen.every(1, "days", count=2, dose=MG).time_unit == "day"


def test_every_with_duration_gives_infusions():
    regimen = Regimen.every(24, count=2, dose=MG, duration=1, target="iv")
    assert regimen.administrations == (Infusion(0, MG, duration=1, target="iv"), Infusion(24, MG, duration=1,
                                                                                             target="iv"))


def test_every_with_count_one_accepts_any_interval():
    assert Regimen.every(0, count=1, dose=MG).times.tolist() == [0.0]


@pytest.mark.parametrize(("count", "shown"), [(0, "0 (int)"), (-2, "-2 (int)"), (2.0, "2.0 (float)"),
                                             (True, "True (bool)"), ("3", "'3' (str)")])
def test_invalid_count_is_an_error_naming_count(count, shown):
    with pytest.raises(DosingError, match=r"Regimen.every: count must be an integer >= 1; got ") as info:
        Regimen.every(24, count=count, dose=MG)
    assert shown in str(info.value)


@pytest.mark.parametrize(("interval", "shown"), [(0, "0"), (-24, "-24")])
def test_non_positive_interval_with_several_doses_is_an_error(interval, shown):
    with pytest.raises(DosingError, match=rf"interval must be > 0 when count > 1; got {shown}\."):
        Regimen.every(interval, count=2, dose=MG)


def test_non_finite_interval_is_an_error():
    with pytest.raises(DosingError, match=r"interval must be a finite number; got nan"):
        Regimen.every(math.nan, count=1, dose=MG)


def test_every_negative_start_is_an_error_naming_start():
    with pytest.raises(DosingError, match=r"Regimen.every: start must be a finite number >= 0; got -1"):
        Regimen.every(24, count=2, dose=MG, start=-1)


def test_every_unknown_unit_is_an_error():
    with pytest.raises(DosingError, match=r"Regimen.every: time unit must be one of .*; got 'hrs'"):
        Regimen.every(24, "hrs", count=2, dose=MG)


def test_every_rate_error_names_rate_and_unit():
    with pytest.raises(DosingError, match=r"Infusion at t=0 h: rate must be a finite number > 0; got -1\. .*mg/h"):
        Regimen.every(24, count=2, dose=MG, rate=-1)


# --- Regimen.at and Regimen.none ----------------------------------------------------------------------------------


def test_at_gives_the_dose_at_each_time_sorted():
    assert Regimen.at([24, 0, 4], MG).times.tolist() == [0.0, 4.0, 24.0]


def test_at_accepts_a_numpy_array():
    assert Regimen.at(np.array([0.0, 12.0]), MG, time_unit="min").times.tolist() == [0.0, 12.0]


def test_at_with_rate_gives_infusions():
    assert all(isinstance(a, Infusion) and a.duration == 2.0 for a in Regimen.at([0, 8], MG, rate=50))


def test_at_with_no_times_is_an_error():
    with pytest.raises(DosingError, match=r"times must contain at least one time; got \[\]\. Use Regimen.none"):
        Regimen.at([], MG)


def test_at_with_a_scalar_time_is_an_error():
    with pytest.raises(DosingError, match=r"Regimen.at: times must be a list of numbers; got 3"):
        Regimen.at(3, MG)  # type: ignore[arg-type]


def test_at_with_a_negative_time_names_its_index():
    with pytest.raises(DosingError, match=r"Regimen.at: times\[1\] must be a finite number >= 0; got -4"):
        Regimen.at([0, -4], MG)


def test_none_has_no_doses():
    regimen = Regimen.none("day")
    assert (len(regimen), regimen.times.shape, regimen.time_unit) == (0, (0,), "day")


# --- Regimen: reading ---------------------------------------------------------------------------------------------


def test_iteration_yields_the_administrations_in_order():
    regimen = Regimen.at([5, 1], MG)
    assert [a.time for a in regimen] == [1.0, 5.0]


def test_times_is_a_float_array():
    times = Regimen.at([1, 2], MG).times
    assert isinstance(times, np.ndarray) and times.dtype == float


def test_total_amount_sums_per_unit():
    regimen = Regimen([Bolus(0, MG), Bolus(1, Dose(50, "mg")), Infusion(2, Dose(1e6, "cells"), duration=1)])
    assert regimen.total_amount() == {"mg": 150.0, "cells": 1e6}


def test_total_amount_keeps_per_kg_units_separate():
    regimen = Regimen([Bolus(0, Dose(1, "mg/kg")), Bolus(1, Dose(5, "mg"))])
    assert regimen.total_amount() == {"mg/kg": 1.0, "mg": 5.0}


def test_total_amount_of_no_doses_is_empty():
    assert Regimen.none().total_amount() == {}


# --- Regimen: addition and time units -----------------------------------------------------------------------------


def test_adding_regimens_merges_and_sorts():
    combined = Regimen.at([0, 48], MG) + Regimen.at([24], Dose(1, "g"))
    assert [(a.time, a.dose.unit) for a in combined] == [(0.0, "mg"), (24.0, "g"), (48.0, "mg")]


def test_adding_converts_the_right_regimen_to_the_left_time_unit():
    combined = Regimen.single(MG, at=1, time_unit="day") + Regimen.single(MG, at=30, duration=60, time_unit="min")
    assert combined.time_unit == "day"
    assert combined.times.tolist() == pytest.approx([30 / 1440, 1.0], rel=1e-15)
    assert combined.administrations[0].duration == pytest.approx(60 / 1440, rel=1e-15)


def test_adding_keeps_the_left_first_at_equal_times():
    left, right = Regimen.single(MG, target="a"), Regimen.single(MG, target="b")
    assert [a.target for a in left + right] == ["a", "b"]


def test_adding_a_non_regimen_is_a_type_error():
    with pytest.raises(TypeError):
        Regimen.none() + Bolus(0, MG)  # type: ignore[operator]


def test_in_time_unit_converts_times():
    assert Regimen.at([1, 2], MG, time_unit="day").in_time_unit("h").times.tolist() == [24.0, 48.0]


def test_in_time_unit_converts_durations():
    converted = Regimen.single(MG, duration=2, time_unit="h").in_time_unit("min")
    assert converted.administrations[0].duration == 120.0


def test_in_time_unit_converts_rates():
    converted = Regimen.single(MG, rate=60, time_unit="h").in_time_unit("min").administrations[0]
    assert (converted.rate, converted.duration) == (1.0, pytest.approx(100.0, rel=1e-15))


def test_in_time_unit_keeps_modelled_infusions():
    regimen = Regimen([Infusion(2, MG, modelled="duration", target="iv")], "week")
    assert regimen.in_time_unit("day").administrations == (Infusion(14, MG, modelled="duration", target="iv"),)


def test_in_time_unit_accepts_aliases():
    assert Regimen.single(MG, at=1).in_time_unit("minutes").time_unit == "min"


def test_in_time_unit_to_an_unknown_unit_is_an_error():
    with pytest.raises(DosingError, match=r"Regimen.in_time_unit: time unit must be one of .*; got 'sec'"):
        Regimen.none().in_time_unit("sec")


# --- Regimen: display ---------------------------------------------------------------------------------------------


def test_repr_of_a_regular_bolus_regimen():
    regimen = Regimen.every(72, "h", count=8, dose=Dose(2e6, "cell/kg"))
    assert repr(regimen) == "Regimen(8 doses of 2e+06 cell/kg every 72 h from t=0 h, bolus)"


def test_repr_of_a_regular_infusion_regimen_names_duration_and_target():
    regimen = Regimen.every(1, "day", count=3, dose=MG, start=1, duration=0.5, target="iv")
    assert repr(regimen) == "Regimen(3 doses of 100 mg every 1 day from t=1 day, infusion over 0.5 day into 'iv')"


def test_repr_of_a_rate_infusion_names_the_rate():
    assert repr(Regimen.single(MG, rate=50)) == "Regimen(1 dose of 100 mg at t=0 h, infusion at 50 mg/h (over 2 h))"


def test_repr_of_a_modelled_infusion():
    regimen = Regimen([Infusion(0, MG, modelled="rate")])
    assert repr(regimen) == "Regimen(1 dose of 100 mg at t=0 h, infusion, modelled rate)"


def test_repr_of_an_irregular_regimen_lists_doses():
    regimen = Regimen([Bolus(0, MG), Infusion(24, Dose(5, "mg"), duration=2)])
    assert repr(regimen) == "Regimen(2 doses, h: t=0: 100 mg bolus; t=24: 5 mg infusion over 2 h)"


def test_repr_of_a_long_irregular_regimen_is_shortened():
    text = repr(Regimen.at([0, 1, 3, 7, 15, 31, 63], MG))
    assert text.startswith("Regimen(7 doses, h: t=0: ") and "; ...; " in text and "t=7" not in text


def test_repr_of_no_doses():
    assert repr(Regimen.none("min")) == "Regimen(no doses, time unit min)"


def test_html_repr_has_one_row_per_administration_and_escapes_names():
    table = Regimen([Bolus(0, MG, target="<lung>"), Infusion(2, MG, duration=1)])._repr_html_()
    assert table.count("<tr>") == 3 and "&lt;lung&gt;" in table and "<lung>" not in table


def test_html_repr_has_the_expected_columns():
    table = Regimen.none("day")._repr_html_()
    for column in ("time [day]", "type", "amount", "unit", "duration [day]", "target"):
        assert f"<th>{column}</th>" in table
