"""Closed form against the ODE solver for a linear model (issue 15 item 3).

1. Simulation: ``pk_2cmt_oral``, N subjects with log-normal IIV (omega 0.3) on ka, CL, V1 and Q, 100 mg every 12 h
   for a week (14 doses), outputs every 30 min from 0 to 168 h (337 times). The closed form (the default for a
   linear model) against the ODE solver (``SolverSettings(method="ode")``, default tolerances rtol 1e-8 / atol
   1e-12) on the native engine, all cores: wall and CPU seconds (median of 3 after a warm-up call) and the largest
   difference between the two (relative, values above 1e-6 of each subject's peak).
2. Estimation: the theophylline FOCE-I fit (tests/data/theoph.csv, ``pk_1cmt_oral``, IIV on ka, CL, V, additive
   error, with the covariance step) on the finite-difference population engine (the one that solves the model
   through the batch solver; the compiled inner problem integrates the sensitivity equations itself and does not
   use the closed form), with and without the closed form: wall and CPU seconds and the objective.

Prints one JSON line per measurement.

Usage: python benchmarks/closed_form.py [N ...]   (default 1000 10000)
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import pkpd

SEED = 20261204
OMEGA = 0.3
IIV = ("ka", "CL", "V1", "Q")
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "theoph.csv"


def timed(fn, repeat=3):
    fn()
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, statistics.median(walls), statistics.median(cpus), walls


def simulation(sizes):
    model = pkpd.load_model("pk_2cmt_oral")
    t = np.arange(0.0, 168.5, 0.5)
    regimen = pkpd.Regimen.every(12, "h", count=14, dose=pkpd.Dose(100, "mg"))
    rng = np.random.default_rng(SEED)
    for n in sizes:
        eta = OMEGA * rng.standard_normal((n, len(IIV)))
        params = {k: model.parameter(k).value * np.exp(eta[:, j]) for j, k in enumerate(IIV)}
        results = {}
        for label, settings in (("closed-form", pkpd.SolverSettings()), ("ode", pkpd.SolverSettings(method="ode"))):
            sim, wall, cpu, walls = timed(lambda s=settings: pkpd.simulate(model, regimen, t, params=params,
                                                                             settings=s, states=False))
            results[label] = sim
            print(json.dumps({"benchmark": "simulate pk_2cmt_oral, 14 doses, 337 times", "solver": label, "N": n,
                              "seconds": round(wall, 4), "cpu_seconds": round(cpu, 4),
                              "all_seconds": [round(w, 4) for w in walls],
                              "subjects_per_s": round(n / wall, 1), "mean_steps": float(sim.n_steps.mean()),
                              "threads": len(os.sched_getaffinity(0)), "load": round(os.getloadavg()[0], 2)}),
                  flush=True)
        a, b = results["closed-form"]["conc"], results["ode"]["conc"]
        peak = np.max(np.abs(b), axis=1, keepdims=True)
        keep = np.abs(b) > 1e-6 * peak
        err = float(np.max(np.abs(a - b)[keep] / np.abs(b)[keep]))
        print(json.dumps({"benchmark": "closed form vs ODE (rtol 1e-8)", "N": n, "max_rel_difference": float(
            f"{err:.3g}")}), flush=True)


def estimation(repeat=3):
    import pkpd.estimation._compiled as compiled

    compiled.available = lambda: False  # the finite-difference population engine, whose solves are batch solves
    for label, settings in (("closed-form", pkpd.SolverSettings(rtol=1e-8, atol=1e-10)),
                            ("ode", pkpd.SolverSettings(method="ode", rtol=1e-8, atol=1e-10))):
        fit, wall, cpu, walls = timed(lambda s=settings: pkpd.fit_population(
            "pk_1cmt_oral", DATA, iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7),
            method="focei", settings=s), repeat)
        print(json.dumps({"benchmark": "theophylline FOCE-I + covariance, finite-difference engine",
                          "solver": label, "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                          "all_seconds": [round(w, 3) for w in walls], "objective": round(fit.objective, 4),
                          "n_parameter_sets": fit.n_evaluations, "load": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    simulation([int(a) for a in sys.argv[1:]] or [1000, 10000])
    estimation()
