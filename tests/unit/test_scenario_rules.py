"""Rules of scenario files that the mutation audit (issue 20) found unguarded, each against an answer written out
in the test."""

from __future__ import annotations

import numpy as np
import pytest

from pkpd.scenarios import scenario_from_dict

BASE = {"arms": {"a": {"dose": 100, "unit": "mg"}},
        "endpoints": {"c": {"output": "conc", "metric": "cmax", "end": 24}}}


@pytest.mark.parametrize(("times", "expected"), [
    ({"stop": 24, "step": 6}, [0.0, 6.0, 12.0, 18.0, 24.0]),
    ({"start": 0, "stop": 0.3, "step": 0.1}, [0.0, 0.1, 0.2, 0.3]),      # 0.3 / 0.1 = 2.9999999999999996 steps
    ({"start": 0, "stop": 10, "step": 4}, [0.0, 4.0, 8.0]),               # the last step would pass stop
    ({"stop": 3}, [0.0, 1.0, 2.0, 3.0]),                                  # step 1 by default
])
def test_the_time_grid_runs_from_start_to_stop_in_steps(times, expected):
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": times}, **BASE})
    np.testing.assert_allclose(sc.times, expected, rtol=1e-12, atol=1e-12)
