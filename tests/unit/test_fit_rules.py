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
    layout = SimpleNamespace(x0=x0, lower=np.array([0.0, -np.inf, -np.inf, math.log(1e-6)]),
                             upper=np.array([2.0, np.inf, math.log(50.0), math.log(1e6)]),
                             kinds=["structural", "structural", "structural", "error"],
                             log=[False, False, True, True])
    starts = np.array(_starts(layout, 2001, np.random.default_rng(1)))
    np.testing.assert_array_equal(starts[0], x0)
    draws = starts[1:]
    for i, (lo, hi) in enumerate([(0.0, 2.0), (0.0, 6.0), (x0[2] - 2.0, math.log(50.0)),
                                  (x0[3] - math.log(10.0), x0[3] + math.log(10.0))]):
        assert lo <= draws[:, i].min() < lo + 0.02 * (hi - lo), i
        assert hi - 0.02 * (hi - lo) < draws[:, i].max() <= hi, i
