"""One rule, one message: the interval level that nine public functions take (pkpd/_arguments.py)."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import pkpd
from pkpd._arguments import check_level
from pkpd.endpoint_vpc import categorical_vpc, km_vpc
from pkpd.errors import DataError, FitError, PkpdError
from pkpd.noncompartmental import nca_sparse, nca_sparse_table
from pkpd.scenarios import fit_dose_response
from pkpd.sensitivity import sobol_indices

WANG = Path(__file__).resolve().parents[1] / "data" / "wang2007" / "wang2007.csv"
DOSES = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
EMAX = 2.0 + 10.0 * DOSES / (30.0 + DOSES)    # exact Emax data: E0 2, Emax 10, ED50 30
SPARSE = ([0, 0, 1, 1, 3, 3], [0, 0, 8, 10, 2, 4])    # serial sacrifice, two animals per time
NOT_A_LEVEL = [1.0, 0.0, 1.5, -0.5, math.nan, math.inf, 1, True, False, "0.9", 0.9 + 0j, Decimal("0.9"),
               np.array([0.9]), None]


@pytest.fixture(scope="module")
def fits():
    """A population fit (for parameter_table) and an individual fit (for predict), each of Wang 2007."""
    population = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0,
                                     covariance=None)
    individual = pkpd.fit(pkpd.load_model("wang2007"), WANG, estimate=["ke"], error={"f": pkpd.Additive(sd=0.3)})
    return population, individual


def _callers(fits):
    """Each public function that takes a level, called with everything else valid: (name, error class, call)."""
    population, individual = fits
    return [
        ("fit_dose_response", PkpdError, lambda lv: fit_dose_response(DOSES, EMAX, level=lv)),
        ("nca_sparse", DataError, lambda lv: nca_sparse(*SPARSE, level=lv)),
        ("sobol_indices", PkpdError, lambda lv: sobol_indices(lambda x: x["a"], {"a": (0.0, 1.0)}, n=8, seed=1,
                                                              n_bootstrap=5, level=lv, progress=False)),
        ("simulation_estimation", PkpdError,
         lambda lv: pkpd.simulation_estimation("pk_1cmt_iv", None, error=pkpd.Additive(sd=0.1), n=2, level=lv)),
        ("km_vpc", FitError, lambda lv: km_vpc(None, None, output="event", n_replicates=10, level=lv)),
        ("categorical_vpc", FitError, lambda lv: categorical_vpc(None, None, output="grade", n_replicates=10,
                                                                  level=lv)),
        ("parameter_table", FitError, lambda lv: population.parameter_table(level=lv)),
        ("predict", FitError, lambda lv: individual.predict(times=[1.0], n_samples=20, seed=1, level=lv)),
    ]


@pytest.mark.parametrize("level", NOT_A_LEVEL, ids=repr)
def test_every_function_that_takes_a_level_refuses_the_same_values_with_the_same_message(fits, level):
    """A level is a real number strictly between 0 and 1: a level of 1 (an infinite interval), 0, NaN, a bool, a
    text, a complex number, a Decimal, an array or None is refused by each of the eight functions with its layer's
    error class and the message that names the function and the value (before, five of them compared the level
    bare: a text or None raised numpy's or Python's TypeError, an array numpy's ValueError)."""
    for where, error, call in _callers(fits):
        with pytest.raises(error) as err:
            call(level)
        assert str(err.value) == f"{where}: level must be a number in (0, 1), e.g. 0.95; got {level!r}", where


def test_a_fraction_level_gives_the_same_interval_as_its_float():
    """A Fraction is a real number: Fraction(9, 10) gives exactly the 90 % intervals of 0.9 (Bailer's sparse AUC,
    the dose-response fit's ED50 interval and a dataset's sparse table, each handed on as the float 0.9)."""
    sparse, fraction = nca_sparse(*SPARSE, level=0.9), nca_sparse(*SPARSE, level=Fraction(9, 10))
    assert (fraction.ci_low, fraction.ci_high) == (sparse.ci_low, sparse.ci_high) and fraction.level == 0.9
    assert sparse.ci_low < sparse.auc_last < sparse.ci_high
    fit, other = fit_dose_response(DOSES, EMAX, level=0.9), fit_dose_response(DOSES, EMAX, level=Fraction(9, 10))
    assert other.ed50_ci == fit.ed50_ci
    assert check_level(Fraction(9, 10), "x") == 0.9 and type(check_level(np.float32(0.5), "x")) is float


def test_a_nonmem_tables_sparse_nca_refuses_a_level_of_one_with_the_same_message():
    """nca_sparse_table hands its level to nca_sparse: a level of 1 is the same DataError."""
    import pandas as pd

    rows = []
    for i, (t, c) in enumerate([(1, 8), (1, 10), (3, 2), (3, 4)]):
        rows += [{"ID": i + 1, "TIME": 0, "EVID": 1, "AMT": 10, "AMTU": "mg", "DV": np.nan},
                 {"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0, "DV": c}]
    table = pd.DataFrame(rows)
    assert nca_sparse_table(table, dose_unit="mg", conc_unit="mg/L")["auc_last"].iloc[0] == pytest.approx(12.0)
    with pytest.raises(DataError, match=r"nca_sparse: level must be a number in \(0, 1\), e\.g\. 0\.95; got 1\.0"):
        nca_sparse_table(table, dose_unit="mg", conc_unit="mg/L", level=1.0)
