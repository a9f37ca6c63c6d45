"""The stiff TMDD model (fast binding against slow elimination) against scipy Radau at rtol 1e-12.

The reference right-hand side is written by hand from the Mager & Jusko (2001) equations documented in
models/tmdd.toml. Both the automatic method (which must detect stiffness and switch to Rodas4) and Rodas4 itself
must reach 1e-5 relative accuracy, with a bounded amount of work.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import pkpd


@pytest.fixture(scope="module")
def model():
    return pkpd.load_model("tmdd")


def reference(model, dose_nmol_per_L, t, infusion_hours=None):
    p = {q.name: q.value for q in model.parameters}

    def rhs(time, y, rate):
        L, R, RL = y
        bind = p["kon"] * L * R - p["koff"] * RL
        return [-p["kel"] * L - bind + rate, p["ksyn"] - p["kdeg"] * R - bind, bind - p["kint"] * RL]

    y0 = [0.0, p["ksyn"] / p["kdeg"], 0.0]
    if infusion_hours is None:
        y0[0] = dose_nmol_per_L
        sol = solve_ivp(rhs, (0, t[-1]), y0, method="Radau", t_eval=t, rtol=1e-12, atol=1e-14, args=(0.0,))
        return sol.y.T
    rate = dose_nmol_per_L / infusion_hours
    first = t <= infusion_hours
    a = solve_ivp(rhs, (0, infusion_hours), y0, method="Radau", t_eval=t[first], rtol=1e-12, atol=1e-14,
                  args=(rate,), dense_output=True)
    b = solve_ivp(rhs, (infusion_hours, t[-1]), a.sol(infusion_hours), method="Radau", t_eval=t[~first],
                  rtol=1e-12, atol=1e-14, args=(0.0,))
    return np.vstack([a.y.T, b.y.T])


def max_rel(sim, ref):
    got = np.stack([sim.states[s][0] for s in ("L", "R", "RL")], axis=1)
    mask = np.abs(ref) > 1e-6 * np.max(np.abs(ref), axis=0)
    return float(np.max(np.abs(got - ref)[mask] / np.abs(ref)[mask]))


def nmol_per_L(model, mg):
    p = {q.name: q.value for q in model.parameters}
    return mg * 1e-3 / p["MW"] * 1e9 / p["V"]


@pytest.mark.parametrize("method", ["auto", "rodas4"])
def test_tmdd_bolus_matches_radau(model, method):
    t = np.linspace(0, 24 * 28, 337)
    settings = pkpd.SolverSettings(method=method, rtol=1e-8, atol=1e-12)
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(700, "mg")), t, settings=settings)
    assert max_rel(sim, reference(model, nmol_per_L(model, 700), t)) < 1e-5
    # the stiff method keeps the work small; the explicit method alone needs tens of thousands of steps
    assert sim.n_steps[0] < 5000


def test_tmdd_infusion_matches_radau(model):
    t = np.linspace(0, 24 * 14, 169)
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(300, "mg"), duration=2.0), t)
    assert max_rel(sim, reference(model, nmol_per_L(model, 300), t, infusion_hours=2.0)) < 1e-5


def test_auto_switches_to_the_stiff_method_only_when_needed(model):
    t = np.linspace(0, 24 * 28, 57)
    explicit = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(700, "mg")), t,
                             settings=pkpd.SolverSettings(method="tsit5", max_steps=20_000, on_failure="mark"))
    auto = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(700, "mg")), t)
    assert explicit.status[0] != 0 or explicit.n_steps[0] > 10 * auto.n_steps[0]
