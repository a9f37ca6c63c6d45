"""Population simulation benchmark of msc_salvadori (issue 2).

N subjects with log-normal IIV (omega 0.3) on k_c, s_p, EC50 and k_i, one IV bolus of 2e6 cells/kg to 70 kg
subjects, 0-336 h hourly, rtol 1e-6 / atol 1e-9. Prints one JSON line per N: wall seconds of the simulation (median
of 3 after a warm-up call that loads or compiles the model), subjects per second, and the maximum relative error of
the typical subject (all IIV factors 1) against a scipy Radau solve at rtol 1e-12.

Usage: python benchmarks/simulate_population.py [N ...]   (default 1000 10000)
"""

import json
import statistics
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

import pkpd

SEED = 20261125
OMEGA = 0.3
IIV = ("k_c", "s_p", "EC50", "k_i")


def population(model, n):
    rng = np.random.default_rng(SEED)
    eta = OMEGA * rng.standard_normal((n, len(IIV)))
    eta[0] = 0.0  # subject 0 is the typical subject
    return {k: model.parameter(k).value * np.exp(eta[:, j]) for j, k in enumerate(IIV)}


def reference(model, t):
    p = {q.name: q.value for q in model.parameters}
    hill = lambda x, x50, n: max(x, 0.0) ** n / (x50**n + max(x, 0.0) ** n)  # noqa: E731
    e0 = hill(p["P_base"], p["EC50"], p["h"])
    r_ss = p["k_on"] * e0 / (p["k_on"] * e0 + p["k_off"])
    k_in_i = p["I_base"] * p["k_i"] / (1 + p["e_max"] * r_ss)

    def rhs(_, y):
        C, P, R, I = y
        return [-p["k_c"] * C, p["P_base"] * p["k_p"] + p["s_p"] * C / p["V_p"] - p["k_p"] * P,
                p["k_on"] * hill(P, p["EC50"], p["h"]) * (1 - R) - p["k_off"] * R,
                k_in_i * (1 + p["e_max"] * R) - p["k_i"] * I]

    y0 = [p["f_lung"] * 2e6 * 70, p["P_base"], r_ss, p["I_base"]]
    sol = solve_ivp(rhs, (t[0], t[-1]), y0, method="Radau", t_eval=t, rtol=1e-12, atol=1e-12)
    return sol.y.T


def main(sizes):
    model = pkpd.load_model("msc_salvadori")
    t = np.arange(0.0, 337.0)
    regimen = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    settings = pkpd.SolverSettings(rtol=1e-6, atol=1e-9)
    ref = reference(model, t)
    t0 = time.perf_counter()
    pkpd.simulate(model, regimen, t, covariates={"WT": 70.0}, settings=settings)
    setup = time.perf_counter() - t0
    for n in sizes:
        params = population(model, n)
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            sim = pkpd.simulate(model, regimen, t, params=params, covariates={"WT": 70.0}, settings=settings)
            runs.append(time.perf_counter() - t0)
        got = np.stack([sim.states[s][0] for s in ("C", "P", "R", "I")], axis=1)
        err = float(np.max(np.abs(got - ref) / np.abs(ref)))
        sec = statistics.median(runs)
        print(json.dumps({"tool": f"pkpd {pkpd.__version__}", "model": "msc_salvadori", "N": n,
                          "seconds": round(sec, 4), "setup_seconds": round(setup, 3),
                          "subjects_per_s": round(n / sec, 1), "max_rel_err_typical": float(f"{err:.3g}"),
                          "runs": [round(r, 4) for r in runs], "mean_steps": float(sim.n_steps.mean())}),
              flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
