"""msc_salvadori against an independent high-accuracy solve (scipy Radau, rtol 1e-12), and its invariants.

The reference right-hand side is written out by hand below from the equations documented in the model file, so the
test does not share code with the compiled engine.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import pkpd

TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return pkpd.load_model("msc_salvadori")


def _p(model):
    return {p.name: p.value for p in model.parameters}


def _hill(x, x50, n):
    x = max(x, 0.0)
    return x**n / (x50**n + x**n)


def _reference(model, doses, t_out, infusion=None):
    """doses: list of (time, cells into C after f_lung); infusion: (start, duration, cells) or None."""
    p = _p(model)
    k_in_p = p["P_base"] * p["k_p"]
    e0 = _hill(p["P_base"], p["EC50"], p["h"])
    r_ss = p["k_on"] * e0 / (p["k_on"] * e0 + p["k_off"])
    k_in_i = p["I_base"] * p["k_i"] / (1 + p["e_max"] * r_ss)

    def rhs(t, y, rate):
        C, P, R, I = y
        E = _hill(P, p["EC50"], p["h"])
        return [-p["k_c"] * C + rate, k_in_p + p["s_p"] * C / p["V_p"] - p["k_p"] * P,
                p["k_on"] * E * (1 - R) - p["k_off"] * R, k_in_i * (1 + p["e_max"] * R) - p["k_i"] * I]

    y = np.array([0.0, p["P_base"], r_ss, p["I_base"]])
    breaks = sorted({0.0, float(t_out[-1])} | {d[0] for d in doses}
                    | ({infusion[0], infusion[0] + infusion[1]} if infusion else set()))
    out = np.empty((len(t_out), 4))
    t_out = np.asarray(t_out)
    for a, b in zip(breaks[:-1], breaks[1:]):
        for tb, amount in doses:
            if tb == a:
                y[0] += amount
        rate = 0.0
        if infusion and infusion[0] <= a < infusion[0] + infusion[1]:
            rate = infusion[2] / infusion[1]
        sel = (t_out >= a) & (t_out < b) if b < t_out[-1] else (t_out >= a) & (t_out <= b)
        sol = solve_ivp(rhs, (a, b), y, method="Radau", rtol=1e-12, atol=1e-12, t_eval=t_out[sel], args=(rate,),
                        dense_output=False)
        assert sol.success
        out[sel] = sol.y.T
        sol_end = solve_ivp(rhs, (a, b), y, method="Radau", rtol=1e-12, atol=1e-12, args=(rate,))
        y = sol_end.y[:, -1].copy()
    return out


def _max_rel(sim, ref):
    got = np.stack([sim.states[s][0] for s in ("C", "P", "R", "I")], axis=1)
    mask = np.abs(ref) > 1e-3 * np.max(np.abs(ref), axis=0)  # cells decay to ~0: compare where meaningful
    return float(np.max(np.abs(got - ref)[mask] / np.abs(ref)[mask]))


def test_single_bolus_matches_radau(model):
    t = np.arange(0, 337.0)
    dose = 2e6 * 70
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(dose, "cell")), t)
    ref = _reference(model, [(0.0, 0.85 * dose)], t)
    assert _max_rel(sim, ref) < TOL


def test_one_hour_infusion_matches_radau(model):
    t = np.arange(0, 337.0, 0.5)
    dose = 1.3e8
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(dose, "cell"), duration=1.0), t)
    ref = _reference(model, [], t, infusion=(0.0, 1.0, 0.85 * dose))
    assert _max_rel(sim, ref) < TOL


def test_repeated_doses_match_radau(model):
    t = np.arange(0, 1009.0)
    reg = pkpd.Regimen.every(84, "h", count=8, dose=pkpd.Dose(2e6, "cell/kg"))
    sim = pkpd.simulate(model, reg, t, covariates={"WT": 70})
    ref = _reference(model, [(84.0 * i, 0.85 * 2e6 * 70) for i in range(8)], t)
    assert _max_rel(sim, ref) < TOL


def test_zero_dose_stays_at_baseline(model):
    t = np.arange(0, 2000.0, 10)
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(0, "cell")), t)
    p = _p(model)
    # At a steady state the step size grows until the explicit method's stability limit is reached; rounding-level
    # perturbations are then held at the tolerance level (rtol = 1e-8), never more.
    np.testing.assert_allclose(sim.outputs["PGE2"][0], p["P_base"], rtol=1e-7)
    np.testing.assert_allclose(sim.outputs["IL10"][0], p["I_base"], rtol=1e-7)
    np.testing.assert_allclose(sim.states["R"][0], sim.states["R"][0, 0], rtol=1e-7)
    assert np.all(sim.states["C"][0] == 0)


def test_initial_state_is_a_steady_state(model):
    p = _p(model)
    e0 = _hill(p["P_base"], p["EC50"], p["h"])
    r_ss = p["k_on"] * e0 / (p["k_on"] * e0 + p["k_off"])
    sim = pkpd.simulate(model, None, [0.0])
    assert sim.states["R"][0, 0] == pytest.approx(r_ss, rel=1e-14)
    # the hand-written right-hand side vanishes at the model's initial state
    k_in_i = p["I_base"] * p["k_i"] / (1 + p["e_max"] * r_ss)
    assert k_in_i * (1 + p["e_max"] * r_ss) - p["k_i"] * sim.states["I"][0, 0] == pytest.approx(0, abs=1e-12)


def test_doubling_the_dose_doubles_viable_cells(model):
    t = np.arange(0, 200.0, 2)
    a = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1e8, "cell")), t)
    b = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(2e8, "cell")), t)
    np.testing.assert_allclose(b.outputs["cells"], 2 * a.outputs["cells"], rtol=1e-7)


def test_batch_equals_single_subjects(model):
    rng = np.random.default_rng(1)
    n = 6
    k_c = 0.0289 * np.exp(0.3 * rng.standard_normal(n))
    wt = rng.uniform(50, 90, n)
    regs = [pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")) if i % 2 else
            pkpd.Regimen.every(72, "h", count=3, dose=pkpd.Dose(1e6, "cell/kg"), duration=1.0) for i in range(n)]
    t = np.arange(0, 300.0, 3)
    batch = pkpd.simulate(model, regs, t, params={"k_c": k_c}, covariates={"WT": wt})
    for i in range(n):
        one = pkpd.simulate(model, regs[i], t, params={"k_c": k_c[i]}, covariates={"WT": wt[i]})
        for name in batch.outputs:
            np.testing.assert_array_equal(batch.outputs[name][i], one.outputs[name][0])


def test_per_kg_dose_uses_each_weight(model):
    t = np.array([0.0, 1.0])
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), t,
                        covariates={"WT": np.array([50.0, 100.0])})
    np.testing.assert_allclose(sim.outputs["cells"][:, 0], [0.85 * 2e6 * 50, 0.85 * 2e6 * 100], rtol=1e-12)
