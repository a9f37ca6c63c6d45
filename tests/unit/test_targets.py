"""Targets and the probability of target attainment (issue 20, rules 10, 11 and 14).

Ties: ``>=`` and ``>`` (``<=`` and ``<``) differ exactly on values equal to the threshold. Wilson interval: the
textbook value for 5 of 20 (Wilson 1927; as statsmodels' ``proportion_confint(method="wilson")``) is
0.111862-0.468701, and every interval is checked against the roots of Wilson's quadratic
(p_hat - p)^2 = z^2 p (1 - p) / n, solved here with numpy. The scenario gives exact endpoint values: the
concentration just after a 100 mg bolus is 100/V (4 mg/L for V = 25 L, 2.5 mg/L for V = 40 L).
"""

import numpy as np
import pytest
from scipy import stats

import pkpd
from pkpd.metrics import Endpoint
from pkpd.scenarios import Arm, GivenPopulation, Scenario, Target, run_scenario


@pytest.mark.parametrize(("op", "expected"), [(">=", [False, True, True, False]), (">", [False, False, True, False]),
                                              ("<=", [True, True, False, False]), ("<", [True, False, False, False])])
def test_target_ties_are_met_only_by_the_inclusive_operators(op, expected):
    values = [3.999, 4.0, 4.001, np.nan]                  # NaN never meets a target
    assert Target("C0", op, 4.0).met(values).tolist() == expected
    # inf (a median time to event not reached within its window) lies beyond every bound
    assert Target("C0", op, 4.0).met([np.inf, -np.inf]).tolist() == [op.startswith(">"), op.startswith("<")]


def wilson_by_quadratic(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    z = stats.norm.ppf(0.5 + level / 2)
    p = k / n
    roots = np.roots([1 + z**2 / n, -(2 * p + z**2 / n), p**2]).real
    return float(roots.min()), float(roots.max())


def test_the_quadratic_gives_the_textbook_wilson_interval():
    lo, hi = wilson_by_quadratic(5, 20)
    assert (round(lo, 6), round(hi, 6)) == (0.111862, 0.468701)


@pytest.fixture(scope="module")
def attainment():
    # 5 subjects with V = 25 L (C0 = 4 mg/L, on the threshold) and 15 with V = 40 L (C0 = 2.5 mg/L)
    volumes = np.r_[np.full(5, 25.0), np.full(15, 40.0)]
    scenario = Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("100 mg", pkpd.Dose(100, "mg"))],
                        [Endpoint("conc", "value_at", time=0, name="C0")],
                        [Target("C0", ">=", 4), Target("C0", ">", 4), Target("C0", "<", 4),
                         Target("C0", "<=", 2500, "ng/mL")],
                        population=GivenPopulation(params={"V": volumes}), times=np.array([0.0, 1.0]))
    return run_scenario(scenario).attainment.set_index("target")


@pytest.mark.parametrize(("target", "n_met"), [("C0 >= 4", 5), ("C0 > 4", 0), ("C0 < 4", 15),
                                               ("C0 <= 2500 ng/mL", 15)])
def test_probability_of_target_attainment_and_its_wilson_interval(attainment, target, n_met):
    row = attainment.loc[target]
    assert row["n"] == 20 and row["n_met"] == n_met
    assert row["probability"] == n_met / 20
    lo, hi = wilson_by_quadratic(n_met, 20)
    assert row["ci_low"] == pytest.approx(lo, abs=1e-12)
    assert row["ci_high"] == pytest.approx(hi, rel=1e-12)


def test_the_textbook_interval_appears_in_the_scenario_table(attainment):
    row = attainment.loc["C0 >= 4"]
    assert (round(row["ci_low"], 6), round(row["ci_high"], 6)) == (0.111862, 0.468701)


def test_no_and_every_subject_give_intervals_from_exactly_0_and_to_exactly_1():
    # with n = 25 the closed form leaves 1.4e-17 and 1 - 1.1e-16 by rounding: the table says 0 and 1
    scenario = Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("100 mg", pkpd.Dose(100, "mg"))],
                        [Endpoint("conc", "value_at", time=0, name="C0")],
                        [Target("C0", ">=", 4), Target("C0", ">", 4)],
                        population=GivenPopulation(params={"V": np.full(25, 25.0)}), times=np.array([0.0, 1.0]))
    table = run_scenario(scenario).attainment.set_index("target")
    every, none = table.loc["C0 >= 4"], table.loc["C0 > 4"]
    assert (every["n_met"], every["ci_high"]) == (25, 1.0) and every["ci_low"] == pytest.approx(
        wilson_by_quadratic(25, 25)[0], rel=1e-12)
    assert (none["n_met"], none["ci_low"]) == (0, 0.0) and none["ci_high"] == pytest.approx(
        wilson_by_quadratic(0, 25)[1], rel=1e-12)
