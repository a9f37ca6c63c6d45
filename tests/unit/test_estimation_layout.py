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


def _with_weights(rows):
    table = pd.DataFrame(rows, columns=["ID", "TIME", "EVID", "AMT", "DV", "WT"])
    model = pkpd.load_model("pk_1cmt_iv")
    return _observations(model, read_nonmem(table, model, dose_unit="mg"), ("conc",), None)


def test_each_subjects_covariate_is_its_first_value_and_later_changes_are_events():
    """WT of subject 1 is missing on its first record and 60 after: 60. Subject 2 has 80 up to its record at 2 h and
    90 from the record at 4 h: 80, and one change to 90 just after the record at 2 h (next observation carried
    backward, 2 + 2e-9 h). Subject 3 has no weight: the model's 70 kg."""
    nan = np.nan
    d = _with_weights([
        (1, 0.0, 1, 100, nan, nan), (1, 1.0, 0, 0, 2.0, 60.0), (1, 3.0, 0, 0, 1.0, 60.0),
        (2, 0.0, 1, 100, nan, 80.0), (2, 2.0, 0, 0, 2.0, 80.0), (2, 4.0, 0, 0, 1.5, 90.0),
        (3, 0.0, 1, 100, nan, nan), (3, 2.0, 0, 0, 2.0, nan),
    ])
    np.testing.assert_array_equal(d.covariates, [[60.0], [80.0], [70.0]])
    ev = d.covariate_events
    np.testing.assert_array_equal(ev.count, [0, 1, 0])
    assert ev.time[1, 0] == 2.0 + 2e-9
    assert ev.value[1, 0] == 90.0
    assert ev.index[1, 0] == len(pkpd.load_model("pk_1cmt_iv").parameters)    # the first covariate, after CL and V


def test_a_covariate_that_changes_across_a_reset_of_time_is_refused_naming_the_subject():
    """Subject 5's WT changes from 70 to 75 after its clock restarts at a reset-and-dose record (EVID 4):
    time-varying covariates have one clock only."""
    import pytest

    from pkpd.errors import DataError

    nan = np.nan
    with pytest.raises(DataError, match=r"covariate 'WT' changes within subject 5, whose TIME goes back \(a new "
                                        r"occasion\): time-varying covariates are fitted on one clock only"):
        _with_weights([
            (5, 0.0, 1, 100, nan, 70.0), (5, 2.0, 0, 0, 2.0, 70.0),
            (5, 0.0, 4, 100, nan, 75.0), (5, 2.0, 0, 0, 2.1, 75.0),
        ])
