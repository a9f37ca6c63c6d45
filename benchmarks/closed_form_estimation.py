"""Population fits of linear models with the exact solution against the ODE solver, side by side (issue 15, item 3:
"closed-form solutions ... in simulation and estimation alike").

For a linear model the compiled estimation library solves the model and its sensitivities exactly
(``pkpd.estimation._linear_template``; ``SolverSettings(method="auto")``, the default); ``method="ode"`` keeps the
ODE solver (Tsit5, Rodas4 for stiff subjects, rtol 1e-8, atol 1e-10: the fits' default tolerances). Jobs:

* ``theophylline``: the fit of ``benchmarks/nlme.py`` (``pk_1cmt_oral``, 12 subjects, IIV on ka, CL, V, additive
  error), with FOCE-I, FO and Laplace, covariance step included;
* ``pk2cmt<N>``: ``pk_2cmt_oral``, N simulated subjects (no covariates), 100 mg every 12 h for
  3 days, 14 samples per subject over 0-96 h, true log-normal IIV variances 0.09 on ka, CL, V1 and Q
  (``simulate_population(..., seed=5)``), proportional error CV 0.1 (``numpy.random.default_rng(8)``); FOCE-I from
  typical values off by 30-50 %, IIV 0.2 and CV 0.2, covariance step included.

* ``long``: no fit, the compiled solves alone: ``pk_1cmt_oral``, 12 subjects, 100 mg every 24 h for 14 days, 6
  samples on the last day, typical values with ka 1.5, 5 and 20 /h (20 is the model's upper bound): the CPU time of
  one batch solve of the second-order system (FOCE-I's gradient) and of the first-order one (its EBE search), with
  the steps and right-hand-side evaluations per subject. A fast absorption over a long horizon is where the exact
  solution's cost (proportional to the largest rate times the time span) is largest.

The machine is shared, so the main figure is the CPU time of the process with one engine thread
(``pkpd._native.set_threads(1)``), which other work on the machine changes little; wall time is printed beside it.
Solvers alternate (ODE, exact, ODE, exact...) ``--repeat`` times and the medians are compared. Prints one JSON line
per fit and one summary line per job and method: ``cpu_speedup`` (median ODE CPU / median exact CPU), both
objectives and their difference, the numbers of evaluations and the largest relative difference of the estimates.

Usage: python benchmarks/closed_form_estimation.py [--jobs theophylline pk2cmt100 long] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pkpd
from pkpd import _native
from pkpd.nonmem import read_nonmem

THEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "theoph.csv"
PK2_TIMES = (0.5, 1, 2, 4, 8, 11.5, 24.5, 26, 36, 48.5, 60, 72.5, 84, 96)
PK2_IIV = {"ka": 0.09, "CL": 0.09, "V1": 0.09, "Q": 0.09}


def pk2cmt_study(n: int) -> pd.DataFrame:
    """The simulated two-compartment study as a NONMEM table (AMT in mg)."""
    model = pkpd.load_model("pk_2cmt_oral")
    pop = pd.DataFrame({"ID": np.arange(1, n + 1)})      # no covariates: one row per subject
    regimen = pkpd.Regimen.every(12, "h", count=6, dose=pkpd.Dose(100, "mg"))
    sim = pkpd.simulate_population(model, regimen, list(PK2_TIMES), pop, iiv=pkpd.IIV(dict(PK2_IIV)), seed=5,
                                   outputs=["conc"]).simulation
    dv = pkpd.Proportional(cv=0.1).sample(sim.outputs["conc"], np.random.default_rng(8))
    rows = []
    for i in range(n):
        rows += [dict(ID=i + 1, TIME=12.0 * k, DV=".", AMT=100.0, EVID=1, MDV=1) for k in range(6)]
        rows += [dict(ID=i + 1, TIME=t, DV=float(dv[i, j]), AMT=0.0, EVID=0, MDV=0) for j, t in enumerate(PK2_TIMES)]
    return pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")


def job(name: str):
    """(model name, data, keyword arguments of fit_population, methods) of a job."""
    if name == "theophylline":
        return ("pk_1cmt_oral", read_nonmem(THEO, dose_unit="mg"),
                dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7)), ("focei", "fo", "laplace"))
    n = int(name.removeprefix("pk2cmt"))
    model = pkpd.load_model("pk_2cmt_oral")
    init = {p: model.parameter(p).value * f for p, f in (("ka", 1.4), ("CL", 0.7), ("V1", 1.3), ("Q", 0.6),
                                                             ("V2", 1.5))}
    return ("pk_2cmt_oral", read_nonmem(pk2cmt_study(n), model, dose_unit="mg"),
            dict(iiv={p: 0.2 for p in PK2_IIV}, error=pkpd.Proportional(cv=0.2), estimate=list(init), init=init),
            ("focei",))


def long_horizon(repeat: int = 20) -> None:
    """The ``long`` job: batch solves of the compiled library, ODE solver against the exact solution."""
    from pkpd import nlme
    from pkpd.estimation._objective import derivative_scales

    rows = []
    for i in range(1, 13):
        rows += [dict(ID=i, TIME=24.0 * d, EVID=1, AMT=100.0, DV=np.nan) for d in range(14)]
        rows += [dict(ID=i, TIME=24.0 * 13 + t, EVID=0, AMT=0.0, DV=1.0) for t in (0.5, 1, 2, 4, 8, 23.5)]
    data = read_nonmem(pd.DataFrame(rows), pkpd.load_model("pk_1cmt_oral"), dose_unit="mg")
    for ka in (1.5, 5.0, 20.0):
        for solver, settings in (("ode", pkpd.SolverSettings(method="ode")), ("exact", pkpd.SolverSettings())):
            _, _, _, layout, prob = nlme._setup("pk_1cmt_oral", data, {"ka": 0.1, "CL": 0.1, "V": 0.1},
                                                pkpd.Additive(sd=0.7), "focei", None, None, settings, {"ka": ka})
            engine = nlme._objective_engine(prob, layout)
            P = np.tile(np.asarray(layout.base, dtype=float), (engine.design.n, 1))
            pr, d = engine.predictor, engine.predictor.design
            for system, lib, methods, params in (
                    ("second order", pr.lib, pr.methods, list(pr.parameters)),
                    ("first order", engine.inner_lib, engine.inner_methods, list(prob.eta_index))):
                base = np.hstack([P, d.covariates, derivative_scales(P[:, params])])
                lib.predict(base, d, settings, methods)
                c0 = time.process_time()
                for _ in range(repeat):
                    _, status = lib.predict(base, d, settings, methods)
                cpu = (time.process_time() - c0) / repeat
                counters = lib.last_counters
                print(json.dumps({"job": "long", "ka": ka, "solver": solver, "system": system,
                                  "states": lib.layout.n_states, "cpu_ms_per_batch": round(cpu * 1e3, 3),
                                  "steps_per_subject": float(counters[:, 0].mean()),
                                  "rhs_per_subject": float(counters[:, 1].mean()),
                                  "failed": int((status != 0).sum())}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", nargs="+", default=["theophylline", "pk2cmt100", "long"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    _native.set_threads(1)
    solvers = {"ode": pkpd.SolverSettings(method="ode"), "exact": pkpd.SolverSettings()}
    for name in args.jobs:
        if name == "long":
            long_horizon()
            continue
        model, data, kw, methods = job(name)
        for method in methods:
            for settings in solvers.values():                      # compile or load everything, warm the caches
                pkpd.fit_population(model, data, method=method, settings=settings, maxeval=0, **kw)
            runs = {s: [] for s in solvers}
            for _ in range(args.repeat):
                for solver, settings in solvers.items():
                    load = os.getloadavg()[0]
                    t0, c0 = time.perf_counter(), time.process_time()
                    fit = pkpd.fit_population(model, data, method=method, settings=settings, **kw)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    record = {"job": name, "method": method, "solver": solver, "cpu_seconds": round(cpu, 4),
                              "wall_seconds": round(wall, 4), "objective": fit.objective,
                              "n_evaluations": fit.n_evaluations, "converged": fit.converged,
                              "covariance": fit.covariance_message, "load_before": round(load, 2),
                              "estimates": {k: float(v) for k, v in
                                            fit.parameters.set_index("name")["estimate"].items()}}
                    runs[solver].append(record)
                    print(json.dumps(record), flush=True)
            med = {s: statistics.median(r["cpu_seconds"] for r in v) for s, v in runs.items()}
            ode, exact = runs["ode"][-1], runs["exact"][-1]
            rel = max(abs(exact["estimates"][k] - v) / max(abs(v), 1e-300) for k, v in ode["estimates"].items())
            print(json.dumps({"benchmark": f"exact solution vs ODE solver in estimation, {name} {method} (issue 15)",
                              "job": name, "method": method, "cpu_seconds_ode": med["ode"],
                              "cpu_seconds_exact": med["exact"], "cpu_speedup": round(med["ode"] / med["exact"], 2),
                              "objective_ode": round(ode["objective"], 6),
                              "objective_exact": round(exact["objective"], 6),
                              "objective_difference": exact["objective"] - ode["objective"],
                              "n_evaluations_ode": ode["n_evaluations"], "n_evaluations_exact": exact["n_evaluations"],
                              "largest_relative_estimate_difference": rel, "load_after": round(os.getloadavg()[0], 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
