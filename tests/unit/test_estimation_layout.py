"""The data layout of population fits (pkpd.estimation.data): each subject's distinct observation times, the
records taken before a dose at the same time, and where every observation sits, written out by hand."""

import numpy as np
import pandas as pd

import pkpd
from pkpd.estimation.data import _observations
from pkpd.nonmem import read_nonmem


def _layout(rows):
    table = pd.DataFrame(rows, columns=["ID", "TIME", "EVID", "AMT", "DV"])
    model = pkpd.load_model("pk_1cmt_iv")
    return _observations(model, read_nonmem(table, model, dose_unit="mg"), ("conc",), None)


def test_subjects_times_and_pre_dose_records_are_laid_out_in_time_order():
    """Subject 2 comes first (its records come first). Its observation at t = 0 before the dose record is a
    separate time point from the one after it (taken first), two observations at t = 1 share one time point, and
    the time points are in time order whatever the order of the records; subject 1's row is padded with its last
    time."""
    nan = np.nan
    d = _layout([
        (2, 0.0, 0, 0, 0.5),      # before the dose at 0
        (2, 0.0, 1, 100, nan),
        (2, 0.0, 0, 0, 3.0),      # after it
        (2, 1.0, 0, 0, 2.5),
        (2, 1.0, 0, 0, 2.6),      # a replicate at t = 1
        (2, 3.0, 0, 0, 1.5),
        (1, 0.0, 1, 50, nan),
        (1, 2.0, 0, 0, 1.0),
        (1, 5.0, 0, 0, 0.4),
    ])
    assert d.ids == (2, 1)
    np.testing.assert_array_equal(d.subject, [0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(d.n_times, [4, 2])
    np.testing.assert_array_equal(d.times, [[0.0, 0.0, 1.0, 3.0], [2.0, 5.0, 5.0, 5.0]])
    np.testing.assert_array_equal(d.pre, [[1, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(d.time_index, [0, 1, 2, 2, 3, 0, 1])
    np.testing.assert_array_equal(d.dv, [0.5, 3.0, 2.5, 2.6, 1.5, 1.0, 0.4])
    assert [r.total_amount() for r in d.regimens] == [{"mg": 100.0}, {"mg": 50.0}]


def test_the_layout_does_not_depend_on_how_equal_times_are_listed():
    """Records listed by time within each subject but subjects' times interleaved with their duplicates: the
    distinct times of a subject are sorted and each observation points at its own."""
    d = _layout([
        (1, 0.0, 1, 10, np.nan),
        (1, 0.5, 0, 0, 1.0),
        (1, 0.5, 0, 0, 1.1),
        (1, 0.5, 0, 0, 1.2),
        (1, 8.0, 0, 0, 0.2),
    ])
    np.testing.assert_array_equal(d.times, [[0.5, 8.0]])
    np.testing.assert_array_equal(d.time_index, [0, 0, 0, 1])
    np.testing.assert_array_equal(d.pre, [[0, 0]])
