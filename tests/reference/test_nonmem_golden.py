"""NONMEM 7.5 golden output for the dosing scenarios of mrgsolve/nmtests (issue 3), reproduced record by record.

The data (tests/data/nonmem_dosing/, copied from shared/data/nonmem_dosing/) cover bolus and infusion doses with
ADDL, lag times, bioavailability, modelled durations, steady state of bolus and infusion doses (also II < DUR),
resets (EVID 3 and 4) and a steady-state constant infusion, on the one-compartment oral model
models/nmtest_1cmt_oral.toml. Every scenario is simulated in one batch, the way a user would run the file.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.nonmem import read_nonmem, simulate_nonmem

DATA = Path(__file__).resolve().parents[1] / "data" / "nonmem_dosing"
RTOL = 1e-4  # NONMEM prints about 5 significant digits
ATOL = 1e-3  # near zero [ng/mL]
SCENARIOS = pd.read_csv(DATA / "scenario_key.csv")


@pytest.fixture(scope="module")
def comparison():
    model = pkpd.load_model("nmtest_1cmt_oral")
    dataset = read_nonmem(DATA / "dosing_scenarios.csv", model, dose_unit="target")
    simulated = simulate_nonmem(model, dataset)
    reference = pd.read_csv(DATA / "nonmem_reference.csv")
    assert len(simulated) == len(reference)
    return simulated, reference


def test_output_has_one_row_per_record_in_file_order(comparison):
    simulated, reference = comparison
    np.testing.assert_array_equal(simulated["ID"].to_numpy(), reference["ID"].to_numpy())
    np.testing.assert_array_equal(simulated["TIME"].to_numpy(), reference["TIME"].to_numpy())
    assert list(simulated.columns) == ["ID", "TIME", "EVID", "CP"]


@pytest.mark.parametrize("scenario", SCENARIOS["ID"].tolist(), ids=[f"ID{i}" for i in SCENARIOS["ID"]])
def test_scenario_matches_nonmem(comparison, scenario):
    simulated, reference = comparison
    name = SCENARIOS.loc[SCENARIOS["ID"] == scenario, "descr"].item()
    rows = (reference["ID"] == scenario).to_numpy()
    assert rows.any(), f"scenario {scenario} ({name}) has no reference rows"
    got = simulated["CP"].to_numpy()[rows]
    want = reference["CP"].to_numpy()[rows]
    times = reference["TIME"].to_numpy()[rows]
    bad = np.abs(got - want) > np.maximum(RTOL * np.abs(want), ATOL)
    if bad.any():
        first = np.flatnonzero(bad)[:5]
        detail = "; ".join(f"TIME {times[i]:g}: pkpd {got[i]:.6g}, NONMEM {want[i]:.6g}" for i in first)
        pytest.fail(f"scenario {scenario} '{name}': {int(bad.sum())} of {bad.size} records differ from NONMEM "
                    f"beyond rtol {RTOL:g} / atol {ATOL:g} ng/mL ({detail})")
