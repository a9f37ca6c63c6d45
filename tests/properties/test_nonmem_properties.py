"""Property tests for pkpd.nonmem over random event tables (issue 3).

Invariants: ADDL expansion equals explicit dose records; for a linear model SS=2 equals superposition (the state
before, plus the steady state of the new regimen alone); splitting an infusion into two back-to-back infusions
changes nothing; and malformed tables (random columns, values and orders) never escape as anything but a pkpd
error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pkpd
from pkpd.errors import PkpdError
from pkpd.nonmem import read_nonmem, simulate_nonmem

OBS = np.arange(0.0, 150.0, 2.5)
RTOL, ATOL = 1e-6, 1e-6  # [ng/mL]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def oral():
    return pkpd.load_model("nmtest_1cmt_oral")


def record(time, **items) -> dict:
    base = dict(ID=1, TIME=time, EVID=0, AMT=0.0, CMT=2, SS=0, II=0.0, ADDL=0, RATE=0.0, DUR=0.0, LAGT=0.0,
                MODE=0, DUR2=1.0, RAT2=1.0, BIOAV=1.0)
    return base | items


def dataset(model, doses: list[dict], obs=OBS):
    """Dose records and observation records sorted by time (doses first at equal times)."""
    rows = sorted([(d["TIME"], 0, k, d) for k, d in enumerate(doses)] + [(t, 1, 0, record(t)) for t in obs],
                  key=lambda r: r[:3])
    return read_nonmem(pd.DataFrame([r[3] for r in rows]), model, dose_unit="target")


def simulate(model, doses, obs=OBS):
    out = simulate_nonmem(model, dataset(model, doses, obs))
    return out.loc[out["EVID"] == 0, "CP"].to_numpy()


positive = st.floats(min_value=0.1, max_value=50.0, allow_nan=False)
amounts = st.floats(min_value=1.0, max_value=500.0, allow_nan=False)
lags = st.just(0.0) | st.floats(min_value=0.0, max_value=30.0, allow_nan=False)
bioav = st.floats(min_value=0.1, max_value=2.0, allow_nan=False)


@st.composite
def doses(draw, time=None) -> dict:
    """One dose record: bolus, infusion by rate or by duration, into the depot (1) or central (2) compartment."""
    kind = draw(st.sampled_from(["bolus", "rate", "duration"]))
    items = dict(EVID=1, AMT=draw(amounts), CMT=draw(st.sampled_from([1, 2])), LAGT=draw(lags),
                 BIOAV=draw(bioav))
    if kind == "rate":
        items["RATE"] = draw(positive)
    elif kind == "duration":
        items["DUR"] = draw(positive)
    t = draw(st.floats(min_value=0.0, max_value=24.0, allow_nan=False)) if time is None else time
    return record(t, **items)


@SETTINGS
@given(dose=doses(), ii=st.floats(min_value=1.0, max_value=36.0), addl=st.integers(min_value=1, max_value=5))
def test_addl_expansion_equals_explicit_records(oral, dose, ii, addl):
    compact = [dose | dict(II=ii, ADDL=addl)]
    explicit = [dose | dict(TIME=dose["TIME"] + k * ii) for k in range(addl + 1)]
    np.testing.assert_allclose(simulate(oral, compact), simulate(oral, explicit), rtol=RTOL, atol=ATOL)


@SETTINGS
@given(before=doses(time=0.0), dose=doses(), ii=st.floats(min_value=2.0, max_value=36.0),
       addl=st.integers(min_value=0, max_value=3), start=st.floats(min_value=0.0, max_value=40.0))
def test_ss2_equals_superposition_for_a_linear_model(oral, before, dose, ii, addl, start):
    # the model is linear with zero initial state: adding a steady state at `start` on top of earlier doses gives
    # the earlier doses' profile plus the profile of the steady-state regimen alone (SS=1 from an empty system)
    steady = dose | dict(TIME=start, II=ii, ADDL=addl)
    both = simulate(oral, [before, steady | dict(SS=2)])
    alone_before = simulate(oral, [before])
    alone_steady = simulate(oral, [steady | dict(SS=1)])
    np.testing.assert_allclose(both, alone_before + alone_steady, rtol=1e-5, atol=1e-4)


@SETTINGS
@given(amt=amounts, speed=positive, f=bioav, t0=st.floats(min_value=0.0, max_value=24.0),
       split=st.floats(min_value=0.05, max_value=0.95), by=st.sampled_from(["RATE", "DUR"]),
       cmt=st.sampled_from([1, 2]))
def test_splitting_an_infusion_changes_nothing(oral, amt, speed, f, t0, split, by, cmt):
    whole = record(t0, EVID=1, AMT=amt, CMT=cmt, BIOAV=f, **{by: speed})
    first = whole | dict(AMT=amt * split)
    if by == "RATE":
        # with RATE given, F scales the duration: the first part lasts AMT1 * F / RATE
        f_used = f if cmt == 2 else 1.0
        second = whole | dict(AMT=amt - amt * split, TIME=t0 + amt * split * f_used / speed)
    else:
        # with the duration given, the rate is AMT * F / DUR: keep it by splitting the duration the same way
        first = first | dict(DUR=speed * split)
        second = whole | dict(AMT=amt - amt * split, DUR=speed - speed * split, TIME=t0 + speed * split)
    np.testing.assert_allclose(simulate(oral, [whole]), simulate(oral, [first, second]), rtol=1e-6, atol=1e-5)


# --- fuzz: malformed tables -----------------------------------------------------------------------------------

COLUMNS = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DUR", "II", "ADDL", "SS", "DV", "MDV", "DVID", "C", "LLOQ",
           "BLQ", "CENS", "LIMIT", "id", "Time", "amt", "LAGT", "BIOAV", "WT", "x y", "", "Unnamed: 3"]
VALUES = [0, 1, 2, 3, 4, -1, -2, 0.5, 12, 24, 100, 1e6, -1e6, ".", "", "abc", "C", "central", "depot", "1,2",
          math.nan, None, math.inf, True, "1e400", " 3 "]


@st.composite
def tables(draw) -> pd.DataFrame:
    columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=10))
    if draw(st.booleans()):  # most malformed files still have the two required columns
        columns = ["ID", "TIME", *(c for c in columns if c not in ("ID", "TIME"))]
    n_rows = draw(st.integers(min_value=0, max_value=8))
    cells = draw(st.lists(st.lists(st.sampled_from(VALUES), min_size=len(columns), max_size=len(columns)),
                          min_size=n_rows, max_size=n_rows))
    if columns[:2] == ["ID", "TIME"] and draw(st.booleans()):  # plausible IDs and times, so later rules are reached
        for k, row in enumerate(cells):
            row[0], row[1] = draw(st.sampled_from([1, 2])), float(k)
    return pd.DataFrame(cells, columns=columns, dtype=object)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=tables())
def test_malformed_tables_load_or_raise_a_pkpd_error(oral, frame):
    try:
        ds = read_nonmem(frame, dose_unit="target")
    except PkpdError:
        return
    for step in (lambda: ds.to_regimens(oral), lambda: ds.observations(oral), lambda: simulate_nonmem(oral, ds),
                 ds.summary):
        try:
            step()
        except PkpdError:
            pass


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ID,TIME,AMT,EVID.C\n 0123456789-e\"")), max_size=120))
def test_malformed_files_load_or_raise_a_pkpd_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "data.csv"
    path.write_text(text)
    try:
        read_nonmem(path, dose_unit="target")
    except PkpdError:
        pass
