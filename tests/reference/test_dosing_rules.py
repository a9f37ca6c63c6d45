"""Dosing rules against closed forms and exact equivalences (issue 20: rules no other test guarded).

Each test names the rule it guards; each was checked to fail when the rule is broken by a one-line change (see the
commit message). Closed forms: one-compartment infusion C(t) = R/CL (1 - e^{-kt}) while it runs, then decay; a
turnover dA/dt = kin - kA after a bolus on top of its periodic steady state A = kin/k + D e^{-kt} / (1 - e^{-k II}).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.nonmem import read_nonmem, simulate_nonmem

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"


def infusion_1cmt(t, rate, duration, CL, V, start=0.0):
    """Concentration of a one-compartment model after a zero-order infusion [amount/volume]."""
    k = CL / V
    s = np.clip(np.asarray(t, dtype=float) - start, 0.0, None)
    during = rate / CL * (1 - np.exp(-k * np.minimum(s, duration)))
    return during * np.exp(-k * np.clip(s - duration, 0.0, None))


# ---- rule 1: SS=2 with a non-zero initial state ------------------------------------------------------------------
@pytest.mark.parametrize("ss", [1, 2])
def test_steady_state_dose_on_a_non_zero_baseline(ss):
    # SS=2 adds the steady state *less the initial state* to the current state: at time 0 the current state is
    # the initial state, so SS=2 must equal SS=1 (a reset to the steady state) and the closed form, every record.
    model = pkpd.load_model(MODELS / "turnover.toml")
    kin, k, D, II = 4.0, 0.2, 100.0, 12.0
    times = [0, 0, 1, 2, 6, 11.5, 12, 18, 24]
    n = len(times)
    data = pd.DataFrame({"ID": 1, "TIME": times, "EVID": [1] + [0] * (n - 1), "AMT": [D] + [0] * (n - 1),
                         "SS": [ss] + [0] * (n - 1), "II": [II] + [0] * (n - 1), "CMT": ["bolus"] + ["."] * (n - 1)})
    out = simulate_nonmem(model, read_nonmem(data, model, dose_unit="mg"))["amount"].to_numpy()
    peak = kin / k + D / (1 - np.exp(-k * II))          # just after the dose, at steady state
    expected = kin / k + (peak - kin / k) * np.exp(-k * np.asarray(times, dtype=float))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


# ---- rule 2: RATE=-1 with bioavailability != 1 -------------------------------------------------------------------
def test_modelled_rate_with_bioavailability_infuses_f_times_amt():
    # AMT 100 mg, F = 0.5, modelled rate 20 mg/h: 50 mg enter at 20 mg/h, so the infusion lasts 2.5 h (NONMEM: the
    # duration is F*AMT/R)
    model = pkpd.load_model("nmtest_1cmt_oral")
    times = np.array([0.0, 1.0, 2.0, 2.5, 3.0, 5.0, 10.0, 24.0])
    n = times.size
    data = pd.DataFrame({"ID": 1, "TIME": times, "EVID": [1] + [0] * (n - 1), "AMT": [100.0] + [0] * (n - 1),
                         "RATE": [-1] + [0] * (n - 1), "CMT": [2] + ["."] * (n - 1), "MODE": 1, "RAT2": 20.0,
                         "BIOAV": 0.5})
    got = simulate_nonmem(model, read_nonmem(data, model, dose_unit="mg"))["CP"].to_numpy()
    expected = infusion_1cmt(times, 20.0, 2.5, 1.1, 20.0) * 1000  # mg/L -> ng/mL
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_modelled_rate_infusion_in_a_regimen_follows_the_same_rule():
    model = pkpd.load_model("nmtest_1cmt_oral")
    times = np.array([0.0, 1.0, 2.0, 2.5, 3.0, 5.0, 10.0, 24.0])
    regimen = pkpd.Regimen([pkpd.Infusion(0, pkpd.Dose(100, "mg"), target="central", modelled="rate")])
    sim = pkpd.simulate(model, regimen, times, covariates={"MODE": 1, "RAT2": 20.0, "BIOAV": 0.5})
    expected = infusion_1cmt(times, 20.0, 2.5, 1.1, 20.0) * 1000
    np.testing.assert_allclose(sim.outputs["CP"][0], expected, rtol=1e-6, atol=1e-9)


# ---- rule 3: a per-kg infusion given by rate -----------------------------------------------------------------------
def test_per_kg_infusion_rate_is_scaled_by_weight():
    # 1 mg/kg at 0.5 mg/kg/h in a 70 kg subject is 70 mg at 35 mg/h: a 2 h infusion
    model = pkpd.load_model(MODELS / "iv_allometric.toml")
    times = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 6.0, 12.0])
    per_kg = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1, "mg/kg"), rate=0.5), times,
                           covariates={"WT": 70.0})
    absolute = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(70, "mg"), rate=35.0), times,
                             covariates={"WT": 70.0})
    np.testing.assert_allclose(per_kg.outputs["conc"], absolute.outputs["conc"], rtol=1e-12)
    expected = infusion_1cmt(times, 35.0, 2.0, 3.0, 30.0)
    np.testing.assert_allclose(per_kg.outputs["conc"][0], expected, rtol=1e-6, atol=1e-12)


# ---- rule 4: infusion timing in other time units ----------------------------------------------------------------
def test_infusion_duration_and_rate_in_other_time_units():
    # 100 mg over 2 h starting at 1 h, written in h, min and day, by duration and by rate: identical, and the closed
    # form (pk_1cmt_iv's model time unit is h)
    model = pkpd.load_model("pk_1cmt_iv")
    CL, V = model.parameter("CL").value, model.parameter("V").value
    times = np.array([0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0, 24.0])
    dose = pkpd.Dose(100, "mg")
    regimens = {
        "h": pkpd.Regimen.single(dose, at=1.0, duration=2.0, time_unit="h"),
        "min": pkpd.Regimen.single(dose, at=60.0, duration=120.0, time_unit="min"),
        "day": pkpd.Regimen.single(dose, at=1 / 24, duration=1 / 12, time_unit="day"),
        "rate mg/min": pkpd.Regimen.single(dose, at=60.0, rate=100 / 120, time_unit="min"),
        "rate mg/day": pkpd.Regimen.single(dose, at=1 / 24, rate=1200.0, time_unit="day"),
    }
    expected = infusion_1cmt(times, 50.0, 2.0, CL, V, start=1.0)
    for name, regimen in regimens.items():
        got = pkpd.simulate(model, regimen, times).outputs["conc"][0]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12, err_msg=name)


def test_a_regimen_converted_to_another_time_unit_keeps_its_infusions():
    # the same regimen re-expressed in minutes (Regimen.in_time_unit) gives the same concentrations
    model = pkpd.load_model("pk_1cmt_iv")
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 8.0])
    by_duration = pkpd.Regimen.single(pkpd.Dose(100, "mg"), at=1.0, duration=2.0)
    by_rate = pkpd.Regimen.single(pkpd.Dose(100, "mg"), at=1.0, rate=50.0)
    for regimen in (by_duration, by_rate):
        a = pkpd.simulate(model, regimen, times).outputs["conc"]
        b = pkpd.simulate(model, regimen.in_time_unit("min"), times).outputs["conc"]
        np.testing.assert_allclose(b, a, rtol=1e-10)


# ---- several nonlinear steady states in one batch of the ODE engine ----------------------------------------------
def test_nonlinear_steady_states_of_several_subjects_solved_together_equal_their_doses_written_out():
    # Michaelis-Menten elimination is not linear, so the steady states are found by the ODE engine's periodic maps,
    # all subjects in one batch, each with its own row of output times: subject s must not read another row's
    # (or memory before the first row's) "before the events at this time" flags. The reference is each subject's
    # regimen given 150 times by pkpd.simulate (one subject at a time), read in the last interval.
    from pkpd.model import DoseTarget, Model, Output, Parameter, State

    model = Model(name="mm_1cmt", time_unit="h",
                  parameters=(Parameter("VM", 10.0, "mg/h", (0.1, 100.0)), Parameter("KM", 5.0, "mg/L", (0.1, 100.0)),
                              Parameter("V", 10.0, "L", (1.0, 100.0))),
                  states=(State("A", "mg", initial="0", ddt="-VM * (A / V) / (KM + A / V)"),),
                  outputs=(Output("CP", "A / V", "mg/L"),), doses=(DoseTarget("iv", target="A", unit="mg"),))
    ii, offsets = 12.0, [0.0, 0.5, 3.0, 7.0, 11.0]
    vms = [10.0, 7.0, 14.0]
    rows = []
    for sid, vm in enumerate(vms, 1):
        rows.append(dict(ID=sid, TIME=24.0, EVID=1, AMT=50.0, CMT="iv", SS=1, II=ii, VM=vm))
        rows += [dict(ID=sid, TIME=24.0 + o, EVID=0, AMT=0.0, CMT=".", SS=0, II=0.0, VM=vm) for o in offsets]
    out = simulate_nonmem(model, read_nonmem(pd.DataFrame(rows), model, dose_unit="mg"))
    for sid, vm in enumerate(vms, 1):
        n_doses = 150
        regimen = pkpd.Regimen.every(ii, count=n_doses, dose=pkpd.Dose(50.0, "mg"))
        last = (n_doses - 1) * ii
        ref = pkpd.simulate(model, regimen, [last + o for o in offsets], params={"VM": vm})
        got = out.loc[(out["ID"] == sid) & (out["EVID"] == 0), "CP"].to_numpy()
        np.testing.assert_allclose(got, ref.outputs["CP"][0], rtol=1e-6, err_msg=f"subject {sid}")
