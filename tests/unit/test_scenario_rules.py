"""Rules of scenario files that the mutation audit (issue 20) found unguarded, each against an answer written out
in the test."""

from __future__ import annotations

import numpy as np
import pytest

from pkpd.scenarios import scenario_from_dict

BASE = {"arms": {"a": {"dose": 100, "unit": "mg"}}, "endpoints": {"c": {"output": "conc", "metric": "cmax", "end": 24}}}


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"stop": 24, "step": 6}, [0.0, 6.0, 12.0, 18.0, 24.0]),
        ({"start": 0, "stop": 0.3, "step": 0.1}, [0.0, 0.1, 0.2, 0.3]),  # 0.3 / 0.1 = 2.9999999999999996 steps
        ({"start": 0, "stop": 10, "step": 4}, [0.0, 4.0, 8.0]),  # the last step would pass stop
        ({"stop": 3}, [0.0, 1.0, 2.0, 3.0]),  # step 1 by default
    ],
)
def test_the_time_grid_runs_from_start_to_stop_in_steps(times, expected):
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": times}, **BASE})
    np.testing.assert_allclose(sc.times, expected, rtol=1e-12, atol=1e-12)


def test_a_dose_response_fit_predicts_its_emax_curve():
    """Exact sigmoid-Emax data (E0 2, Emax 10, ED50 30, h 2): the fit recovers them and predict is the formula
    E0 + Emax D^h / (ED50^h + D^h), 0 dose included."""
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses**2 / (30.0**2 + doses**2)
    fit = fit_dose_response(np.repeat(doses, 2), np.repeat(curve, 2), sigmoid=True)
    for got, want in ((fit.e0, 2.0), (fit.emax, 10.0), (fit.ed50, 30.0), (fit.hill, 2.0)):
        assert got == pytest.approx(want, rel=1e-5)
    d = np.array([0.0, 15.0, 45.0, 1000.0])
    np.testing.assert_allclose(
        fit.predict(d), fit.e0 + fit.emax * d**fit.hill / (fit.ed50**fit.hill + d**fit.hill), rtol=1e-12
    )


def test_a_time_grid_of_exactly_the_largest_size_is_accepted_and_one_more_is_refused():
    from pkpd.errors import PkpdError
    from pkpd.scenarios import MAX_SCENARIO_TIMES

    ok = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": {"stop": MAX_SCENARIO_TIMES - 1}}, **BASE})
    assert ok.times.size == MAX_SCENARIO_TIMES
    with pytest.raises(PkpdError, match="output times"):
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": {"stop": MAX_SCENARIO_TIMES}}, **BASE})


def test_the_interval_of_an_expected_count_is_clipped_at_zero_not_above_it():
    """Flares at a constant hazard r0 = 0.2/h, counted to 2 h: 0.4 for each of 5 identical subjects, so the mean is
    0.4 with a zero-width interval (0.4, 0.4); a count's interval is clipped at 0 only (not at 1, as probabilities
    are), so it keeps 0.4."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(
        model,
        arms=[Arm("control", control=True)],
        times=np.linspace(0, 4, 5),
        population=LogNormalPopulation(5),
        endpoints=[Endpoint("flares", "expected_count", time=2)],
    )
    row = run_scenario(sc, seed=1).clinical.set_index("endpoint").loc["flares_count_2"]
    assert row["n"] == 5
    for key in ("value", "ci_low", "ci_high"):
        assert row[key] == pytest.approx(0.2 * 2, rel=1e-7), key
