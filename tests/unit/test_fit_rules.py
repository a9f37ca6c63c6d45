"""Rules of the individual fitter that the mutation audit (issue 20) found unguarded, each against the rule written
out in the test."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from pkpd.estimation.individual import _starts


def test_multistart_points_are_drawn_inside_the_bounds_and_around_unbounded_values():
    """pkpd.fit(n_starts=...): the first start is the model's values; the others are uniform inside the bounds of a
    bounded parameter, within x0 +- max(1, |x0|) on a side without a bound (x0 +- 2 on the log scale), and within a
    factor 10 of an error parameter's start (x0 +- log 10 on its log scale) whatever its bounds."""
    x0 = np.array([0.5, 3.0, math.log(0.2), math.log(0.3)])
    layout = SimpleNamespace(
        x0=x0,
        lower=np.array([0.0, -np.inf, -np.inf, math.log(1e-6)]),
        upper=np.array([2.0, np.inf, math.log(50.0), math.log(1e6)]),
        kinds=["structural", "structural", "structural", "error"],
        log=[False, False, True, True],
    )
    starts = np.array(_starts(layout, 2001, np.random.default_rng(1)))
    np.testing.assert_array_equal(starts[0], x0)
    draws = starts[1:]
    for i, (lo, hi) in enumerate(
        [(0.0, 2.0), (0.0, 6.0), (x0[2] - 2.0, math.log(50.0)), (x0[3] - math.log(10.0), x0[3] + math.log(10.0))]
    ):
        assert lo <= draws[:, i].min() < lo + 0.02 * (hi - lo), i
        assert hi - 0.02 * (hi - lo) < draws[:, i].max() <= hi, i


def test_predictions_use_each_subjects_covariates_from_the_data():
    """A 2 mg/kg bolus to a 35 kg subject is 70 mg: FitResult.predict gives the closed form 70/V exp(-CL/V t) with
    the fitted CL and V (the data's WT, not the model's default 70 kg, which would double it)."""
    import pandas as pd

    import pkpd

    t = np.array([0.5, 1, 2, 4, 8, 12, 24])
    conc = 70 / 32 * np.exp(-2.8 / 32 * t) * np.exp(np.random.default_rng(3).normal(0, 0.05, t.size))
    data = pd.DataFrame(
        {
            "ID": 1,
            "TIME": np.r_[0, t],
            "EVID": [1] + [0] * 7,
            "AMT": [2] + [0] * 7,
            "AMTU": "mg/kg",
            "WT": 35.0,
            "DV": np.r_[np.nan, conc],
        }
    )
    fit = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.1)})
    cl, v = fit.estimates["CL"], fit.estimates["V"]
    assert abs(v / 32 - 1) < 0.1  # the fit itself saw 70 mg
    pred = fit.predict(times=[1.0, 6.0])
    np.testing.assert_allclose(pred["PRED"], 70 / v * np.exp(-cl / v * np.array([1.0, 6.0])), rtol=1e-6)
