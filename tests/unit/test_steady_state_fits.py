"""Steady-state dose records in estimation (issue 15, item 4): fit and fit_population accept NONMEM SS=1/SS=2
records, with the steady-state machinery of simulate_nonmem, and give the objective of the same data with the steady
state unrolled into explicit doses.

Data: six subjects of pk_1cmt_oral (CL, V log-normal), 100 mg every 12 h to steady state at T0 = 480 h, then one
more dose; odd subjects by an SS=1 record at T0 (reset to steady state), even ones by an SS=2 record at T0 on top of a
50 mg dose 6 h earlier (superposition). The unrolled copy gives the 40 doses before T0 explicitly (40 intervals are
60 half-lives: the steady state is reached to 1e-18), so both describe the same concentrations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.nlme import population_objective
from pkpd.nonmem import read_nonmem, simulate_nonmem

T0, II, K = 480.0, 12.0, 40


def _tables(seed: int = 3, n: int = 6) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    obs_t = T0 + np.array([1.0, 2, 4, 8, 11.5, 14, 20])
    ss, unrolled = [], []
    for i in range(1, n + 1):
        mode = 1 if i % 2 else 2
        base = dict(ID=i, CL=2.8 * np.exp(rng.normal(0, 0.3)), V=32 * np.exp(rng.normal(0, 0.2)), AMTU="mg")
        dose = dict(EVID=1, CMT=1, SS=0, II=0.0, ADDL=0, DV=np.nan)
        if mode == 2:
            extra = dict(base, TIME=T0 - 6, AMT=50.0, **dose)
            ss.append(extra)
            unrolled.append(extra)
        ss.append(dict(base, TIME=T0, AMT=100.0, **(dose | dict(SS=mode, II=II, ADDL=1))))
        unrolled += [dict(base, TIME=T0 - k * II, AMT=100.0, **dose) for k in range(K, 0, -1)]
        unrolled.append(dict(base, TIME=T0, AMT=100.0, **(dose | dict(II=II, ADDL=1))))
        for t in obs_t:
            record = dict(base, TIME=t, EVID=0, AMT=0.0, CMT=2, SS=0, II=0.0, ADDL=0, DV=np.nan)
            ss.append(record)
            unrolled.append(record)
    ss = pd.DataFrame(ss).sort_values(["ID", "TIME"], kind="stable")
    unrolled = pd.DataFrame(unrolled).sort_values(["ID", "TIME"], kind="stable")
    model = pkpd.load_model("pk_1cmt_oral")
    truth = simulate_nonmem(model, read_nonmem(ss, model, dose_unit="mg"))   # CL, V columns: per-subject values
    ss["DV"] = np.where(ss["EVID"] == 0, truth["conc"].to_numpy() * np.exp(0.1 * rng.standard_normal(len(ss))),
                        np.nan)
    observed = {(a, b): y for a, b, e, y in zip(ss.ID, ss.TIME, ss.EVID, ss.DV) if e == 0}
    unrolled["DV"] = [observed.get((a, b), np.nan) if e == 0 else np.nan
                      for a, b, e in zip(unrolled.ID, unrolled.TIME, unrolled.EVID)]
    return ss.drop(columns=["CL", "V"]), unrolled.drop(columns=["CL", "V"])


@pytest.fixture(scope="module")
def tables():
    return _tables()


KW = dict(iiv={"CL": 0.09, "V": 0.04}, error=pkpd.Proportional(cv=0.1))


@pytest.mark.parametrize("method", ["focei", "foce", "fo", "laplace"])
def test_objective_with_ss_records_equals_the_unrolled_doses(tables, method):
    ss, unrolled = tables
    a = population_objective("pk_1cmt_oral", ss, method=method, **KW)
    b = population_objective("pk_1cmt_oral", unrolled, method=method, **KW)
    assert a == pytest.approx(b, abs=1e-4)
    # the steady state matters: without the SS flags (a single dose) the objective is far away
    single = population_objective("pk_1cmt_oral", ss.assign(SS=0, II=0.0, ADDL=0), method=method, **KW)
    assert abs(single - b) > 10


def test_fit_population_with_ss_records_finds_the_unrolled_estimates(tables):
    ss, unrolled = tables
    a = pkpd.fit_population("pk_1cmt_oral", ss, method="fo", estimate=["CL", "V"], covariance=None, **KW)
    b = pkpd.fit_population("pk_1cmt_oral", unrolled, method="fo", estimate=["CL", "V"], covariance=None, **KW)
    assert a.objective == pytest.approx(b.objective, abs=1e-3)
    for name in ("CL", "V"):
        assert a.theta[name] == pytest.approx(b.theta[name], rel=1e-3)
    assert np.allclose(np.diag(a.omega), np.diag(b.omega), rtol=1e-2)


def test_fit_with_ss_records_equals_the_unrolled_fit(tables):
    ss, unrolled = tables
    model = pkpd.load_model("pk_1cmt_oral")
    kw = dict(estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.2)})
    a = pkpd.fit(model, ss, **kw)
    b = pkpd.fit(model, unrolled, **kw)
    assert a.objective == pytest.approx(b.objective, abs=1e-4)
    for name in ("CL", "V"):
        assert a.estimates[name] == pytest.approx(b.estimates[name], rel=1e-4)
    with pytest.raises(pkpd.errors.FitError, match="simulate_nonmem"):
        a.predict()
