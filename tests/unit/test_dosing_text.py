"""The text users read about a regimen: its repr, its HTML table and the messages that name a bad input.

Issue 20 (mutation audit of dosing.py): this text goes into notebooks and protocols, so it is pinned whole. Each
expected string is written from what a reader should see, not copied from the output. Messages are compared whole
(``str(err) == ...``), because a ``match=`` on a piece of a message still finds it when the text around it changes.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from pkpd.dosing import Bolus, Dose, Infusion, Regimen
from pkpd.errors import DosingError

MG = Dose(100, "mg")


class _Table(HTMLParser):
    """The caption, header cells and body rows of a regimen's HTML table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.caption = ""
        self.head: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and self._in == "tbody":
            self.rows.append([])
        elif tag in ("thead", "tbody", "caption"):
            self._in = tag
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            (self.head if tag == "th" else self.rows[-1]).append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._in == "caption":
            self.caption += data


def _table(regimen: Regimen) -> _Table:
    return _Table(regimen._repr_html_())


def _error(call) -> str:
    with pytest.raises(DosingError) as err:
        call()
    return str(err.value)


# --- the HTML table ------------------------------------------------------------------------------------------------


def test_html_table_of_two_boluses_is_exactly_this():
    table = Regimen.at([0, 24], Dose(2e6, "cell/kg"))._repr_html_()
    assert table == (
        "<table><caption>Regimen: 2 doses, time unit h</caption>"
        "<thead><tr><th>time [h]</th><th>type</th><th>amount</th><th>unit</th><th>duration [h]</th>"
        "<th>target</th></tr></thead>"
        "<tbody><tr><td>0</td><td>bolus</td><td>2e+06</td><td>cell/kg</td><td></td><td>default</td></tr>"
        "<tr><td>24</td><td>bolus</td><td>2e+06</td><td>cell/kg</td><td></td><td>default</td></tr></tbody></table>"
    )


def test_html_table_of_one_infusion_by_duration():
    table = _table(Regimen.single(MG, at=1, duration=0.5, target="iv", time_unit="day"))
    assert table.caption == "Regimen: 1 dose, time unit day"
    assert table.head == ["time [day]", "type", "amount", "unit", "duration [day]", "target"]
    assert table.rows == [["1", "infusion", "100", "mg", "0.5", "iv"]]


def test_html_table_of_a_rate_infusion_gives_the_rate_with_its_unit():
    table = _table(Regimen.every(12, "h", count=2, dose=Dose(5, "mg/kg"), rate=2.5))
    assert table.caption == "Regimen: 2 doses, time unit h"
    assert table.rows == [
        ["0", "infusion", "5", "mg/kg", "2 (rate 2.5 mg/kg/h)", "default"],
        ["12", "infusion", "5", "mg/kg", "2 (rate 2.5 mg/kg/h)", "default"],
    ]


def test_html_table_of_modelled_infusions_and_mixed_targets():
    regimen = Regimen(
        [
            Infusion(0, MG, modelled="rate", target="depot"),
            Bolus(2, Dose(5, "mg")),
            Infusion(4, MG, modelled="duration"),
        ],
        time_unit="min",
    )
    table = _table(regimen)
    assert table.caption == "Regimen: 3 doses, time unit min"
    assert table.head[0] == "time [min]" and table.head[4] == "duration [min]"
    assert table.rows == [
        ["0", "infusion", "100", "mg", "modelled rate", "depot"],
        ["2", "bolus", "5", "mg", "", "default"],
        ["4", "infusion", "100", "mg", "modelled duration", "default"],
    ]


def test_html_table_of_no_doses_has_a_caption_and_no_rows():
    table = _table(Regimen.none("week"))
    assert table.caption == "Regimen: 0 doses, time unit week"
    assert table.rows == []


# --- the repr: "every ..." only for alike, evenly spaced doses ----------------------------------------------------


def test_two_doses_are_every_their_interval():
    assert repr(Regimen.every(12, count=2, dose=MG)) == "Regimen(2 doses of 100 mg every 12 h from t=0 h, bolus)"


def test_rate_infusions_are_every_their_interval():
    regimen = Regimen.every(12, count=3, dose=MG, rate=50)
    assert repr(regimen) == "Regimen(3 doses of 100 mg every 12 h from t=0 h, infusion at 50 mg/h (over 2 h))"


def test_modelled_infusions_are_every_their_interval():
    regimen = Regimen([Infusion(t, MG, modelled="duration") for t in (0, 7, 14)], time_unit="day")
    assert repr(regimen) == "Regimen(3 doses of 100 mg every 7 day from t=0 day, infusion, modelled duration)"


def test_a_rate_infusion_and_a_duration_infusion_of_the_same_length_are_not_alike():
    regimen = Regimen([Infusion(0, MG, rate=50), Infusion(12, MG, duration=2)])
    assert repr(regimen) == (
        "Regimen(2 doses, h: t=0: 100 mg infusion at 50 mg/h (over 2 h); t=12: 100 mg infusion over 2 h)"
    )


def test_infusions_modelled_differently_are_not_alike():
    regimen = Regimen([Infusion(0, MG, modelled="rate"), Infusion(12, MG, modelled="duration")])
    assert repr(regimen) == (
        "Regimen(2 doses, h: t=0: 100 mg infusion, modelled rate; t=12: 100 mg infusion, modelled duration)"
    )


def test_doses_into_different_targets_are_not_alike():
    regimen = Regimen([Bolus(0, MG, target="iv"), Bolus(12, MG, target="oral")])
    assert repr(regimen) == "Regimen(2 doses, h: t=0: 100 mg bolus into 'iv'; t=12: 100 mg bolus into 'oral')"


def test_doses_given_together_are_not_every_0_h():
    assert repr(Regimen.at([0, 0], MG)) == "Regimen(2 doses, h: t=0: 100 mg bolus; t=0: 100 mg bolus)"


def test_uneven_intervals_are_listed():
    # 12 h then 18 h: not "every 12 h"
    assert repr(Regimen.at([0, 12, 30], MG)) == (
        "Regimen(3 doses, h: t=0: 100 mg bolus; t=12: 100 mg bolus; t=30: 100 mg bolus)"
    )


def test_an_interval_off_by_a_few_millionths_is_listed():
    # 24 h then 24.0001 h: a real difference (4e-6 relative), not the rounding of the times
    assert repr(Regimen.at([0, 24, 48.0001], MG)) == (
        "Regimen(3 doses, h: t=0: 100 mg bolus; t=24: 100 mg bolus; t=48.0001: 100 mg bolus)"
    )


def test_steps_that_differ_only_by_the_rounding_of_late_times_are_even():
    # at t=1e8 h the spacing of floats is 1.5e-8 h: the steps of 0.1 h come out as 0.09999999 and 0.10000001
    regimen = Regimen.every(0.1, count=3, dose=MG, start=1e8)
    assert repr(regimen) == "Regimen(3 doses of 100 mg every 0.1 h from t=1e+08 h, bolus)"


def test_steps_that_differ_only_by_rounding_of_a_decimal_interval_are_even():
    assert repr(Regimen.at([0, 0.1, 0.2, 0.3], MG)) == "Regimen(4 doses of 100 mg every 0.1 h from t=0 h, bolus)"


def test_six_irregular_doses_are_all_listed():
    assert repr(Regimen.at([0, 1, 3, 7, 15, 31], MG, time_unit="day")) == (
        "Regimen(6 doses, day: t=0: 100 mg bolus; t=1: 100 mg bolus; t=3: 100 mg bolus; t=7: 100 mg bolus; "
        "t=15: 100 mg bolus; t=31: 100 mg bolus)"
    )


def test_seven_irregular_doses_show_the_first_three_and_the_last_two():
    assert repr(Regimen.at([0, 1, 3, 7, 15, 31, 63], MG)) == (
        "Regimen(7 doses, h: t=0: 100 mg bolus; t=1: 100 mg bolus; t=3: 100 mg bolus; ...; "
        "t=31: 100 mg bolus; t=63: 100 mg bolus)"
    )


# --- messages that name the bad input ------------------------------------------------------------------------------


def test_a_negative_amount_is_named():
    assert _error(lambda: Dose(-2.5, "mg")) == (
        "Dose: amount must be a finite number >= 0; got -2.5. Give the amount as a finite number >= 0 in the dose unit."
    )


def test_a_huge_number_is_shown_as_python_writes_it():
    assert _error(lambda: Dose(-1e20, "mg")) == (
        "Dose: amount must be a finite number >= 0; got -1e+20. Give the amount as a finite number >= 0 in the dose "
        "unit."
    )


def test_a_whole_number_is_shown_without_a_trailing_zero_below_1e15():
    assert _error(lambda: Regimen.every(-999999999999999.0, count=2, dose=MG)) == (
        "Regimen.every: interval must be > 0 when count > 1; got -999999999999999. Give the time between doses in h, "
        "or use Regimen.at for doses given together."
    )
    assert _error(lambda: Regimen.every(-1e15, count=2, dose=MG)) == (
        "Regimen.every: interval must be > 0 when count > 1; got -1000000000000000.0. Give the time between doses in "
        "h, or use Regimen.at for doses given together."
    )


def test_a_bad_body_weight_names_the_dose():
    assert _error(lambda: Dose(1, "mg/kg").amount_for(0)) == (
        "Dose 1 mg/kg: weight_kg must be a finite number > 0; got 0. Give the subject's body weight in kg."
    )


def test_a_negative_bolus_time_asks_for_the_regimen_time_unit():
    assert _error(lambda: Bolus(-1, MG)) == (
        "Bolus: time must be a finite number >= 0; got -1. Give the time from t=0 in the regimen's time unit."
    )


def test_an_infusion_without_timing_lists_the_options():
    assert _error(lambda: Infusion(0, MG)) == (
        "Infusion at t=0: an infusion needs exactly one of duration, rate or modelled; got none of them. "
        "Give duration=... (in the regimen's time unit) or rate=... [mg per time unit], "
        "or use Bolus for an instantaneous dose."
    )


def test_a_bad_rate_in_a_regimen_names_its_unit():
    assert _error(lambda: Regimen.single(MG, at=2, rate=-5, time_unit="day")) == (
        "Infusion at t=2 day: rate must be a finite number > 0; got -5. Give a positive rate [mg/day], "
        "or use Bolus for an instantaneous dose."
    )


@pytest.mark.parametrize(
    "modelled, hint",
    [
        (1, " Use modelled='rate' or modelled='duration' (NONMEM RATE=-1 / RATE=-2)."),
        ("rates", " Did you mean 'rate'?"),
    ],
)
def test_a_bad_modelled_option_is_named(modelled, hint):
    assert _error(lambda: Infusion(0, MG, modelled=modelled)) == (
        f"Infusion at t=0: modelled must be None, 'rate' or 'duration'; got {modelled!r}.{hint}"
    )


def test_an_infusion_names_itself_for_a_bad_target():
    assert _error(lambda: Infusion(3, MG, duration=1, target="")) == (
        "Infusion at t=3: target must be None (the model's default target) or a dose-target name; got ''. "
        "Give the name of a dose target declared in the model, e.g. 'iv'."
    )


@pytest.mark.parametrize("duration, kind", [(None, "Bolus"), (1.0, "Infusion")])
def test_a_regimen_dose_with_a_bad_target_is_named_with_its_time_and_unit(duration, kind):
    assert _error(lambda: Regimen.single(MG, at=2, duration=duration, target=" iv", time_unit="min")) == (
        f"{kind} at t=2 min: target must not have surrounding spaces; got ' iv'. Write 'iv'."
    )


def test_a_time_unit_that_is_not_a_string_is_named():
    assert _error(lambda: Regimen.single(MG, time_unit=5)) == (
        "Regimen.single: time unit must be one of 'min', 'h', 'day', 'week'; got 5. Use one of those."
    )


def test_a_misspelt_time_unit_gets_a_suggestion():
    assert _error(lambda: Regimen.at([0], MG, time_unit="dya")) == (
        "Regimen.at: time unit must be one of 'min', 'h', 'day', 'week'; got 'dya'. Did you mean 'day'?"
    )


def test_a_negative_start_asks_for_the_regimen_unit():
    assert _error(lambda: Regimen.every(12, "day", count=2, dose=MG, start=-1)) == (
        "Regimen.every: start must be a finite number >= 0; got -1. Give the time from t=0 in day."
    )


def test_a_dose_time_that_overflows_is_named_by_its_formula():
    assert _error(lambda: Regimen.every(1e308, count=2, dose=MG, start=1e308)) == (
        "Regimen.every: start + k * interval must be a finite number >= 0; got inf. Give the time from t=0 in h."
    )


def test_a_negative_time_in_a_list_is_named_by_its_index():
    assert _error(lambda: Regimen.at([0, -1], MG, time_unit="week")) == (
        "Regimen.at: times[1] must be a finite number >= 0; got -1. Give the time from t=0 in week."
    )


@pytest.mark.parametrize(
    "build, where",
    [
        (lambda d: Regimen.every(12, count=2, dose=d), "Regimen.every"),
        (lambda d: Regimen.at([0], d), "Regimen.at"),
        (lambda d: Regimen.single(d), "Regimen.single"),
    ],
)
def test_a_dose_that_is_not_a_dose_is_named(build, where):
    assert _error(lambda: build(100)) == (
        f"{where}: dose must be a Dose; got 100 (int). Give an amount with its unit, e.g. Dose(2e6, 'cell/kg') "
        "or Dose(100, 'mg')."
    )
