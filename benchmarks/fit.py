"""Fitting benchmark (issue 4): the pooled fit of notebooks/02_fit_biomarkers.ipynb, timed.

The dataset is the notebook's (same code, same seed): msc_salvadori, 3 dose groups x 6 subjects, cells (qPCR,
log-normal), PGE2 and IL-10 (ELISA) at 10 times over two weeks, with LLOQs (about 23 % of IL-10 values censored,
handled by M3); 9 structural and 4 error-model parameters estimated from the notebook's perturbed starting values.

Prints one JSON line per configuration: the wall seconds of the fit (median of 3, after a warm-up fit that loads
the compiled model, lmfit and scipy), the first (cold) fit in the process, the number of parameter sets solved and
the objective. Target: <= 5 s for the default configuration.

Usage: python benchmarks/fit.py [--sensitivity]

``--sensitivity`` adds the same fit with forward-sensitivity gradients (the first run compiles the augmented model,
about a minute, then cached on disk).
"""

import json
import statistics
import sys
import time

import numpy as np
import pandas as pd

import pkpd
from pkpd.nonmem import read_nonmem


def notebook_dataset(model):
    rng = np.random.default_rng(2024)
    doses = np.repeat([0.5e6, 2e6, 8e6], 6)
    weights = rng.uniform(55, 95, doses.size).round(1)
    times = np.array([1, 4, 8, 24, 48, 72, 120, 168, 240, 336.0])
    truth = pkpd.simulate(model, [pkpd.Regimen.single(pkpd.Dose(d, "cell/kg"), duration=1.0) for d in doses],
                          times, covariates={"WT": weights})
    assays = {"cells": (pkpd.LogNormal(sigma=0.5), 1e4),
              "PGE2": (pkpd.Proportional(cv=0.15), 5.0),
              "IL10": (pkpd.Combined(sd=0.5, cv=0.15, convention="variance"), 5.0)}
    rows = []
    for i, (dose, wt) in enumerate(zip(doses, weights)):
        rows.append(dict(ID=i + 1, TIME=0.0, EVID=1, AMT=dose, DUR=1.0, DV=".", DVID=".", LLOQ=".", BLQ=0, WT=wt))
        for output, (error, lloq) in assays.items():
            for t, y in zip(times, error.sample(truth.outputs[output][i], rng)):
                blq = y < lloq
                rows.append(dict(ID=i + 1, TIME=t, EVID=0, AMT=0, DUR=0, DV=lloq if blq else y, DVID=output,
                                 LLOQ=lloq, BLQ=int(blq), WT=wt))
    table = pd.DataFrame(rows).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable",
                                           ignore_index=True)
    return read_nonmem(table, model, dose_unit="cell/kg")


ESTIMATE = ["k_c", "f_lung", "s_p", "P_base", "EC50", "k_on", "k_off", "e_max", "I_base"]
ERROR = {"cells": pkpd.LogNormal(sigma=0.3), "PGE2": pkpd.Proportional(cv=0.1),
         "IL10": pkpd.Combined(sd=1.0, cv=0.1, convention="variance")}
START = dict(k_c=0.04, f_lung=0.7, s_p=1e-3, P_base=15.0, EC50=500.0, k_on=0.1, k_off=0.08, e_max=10.0, I_base=6.0)


def run(name, start, data, **kwargs):
    t0 = time.perf_counter()
    first = pkpd.fit(start, data, estimate=ESTIMATE, error=ERROR, **kwargs)
    cold = time.perf_counter() - t0
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = pkpd.fit(start, data, estimate=ESTIMATE, error=ERROR, **kwargs)
        runs.append(time.perf_counter() - t0)
    print(json.dumps({"tool": f"pkpd {pkpd.__version__}", "benchmark": "notebook pooled fit", "config": name,
                      "seconds": round(statistics.median(runs), 3), "first_fit_seconds": round(cold, 3),
                      "runs": [round(r, 3) for r in runs], "n_subjects": res.n_subjects, "n_obs": res.n_obs,
                      "n_parameters": res.n_parameters, "parameter_sets_solved": res.n_evaluations,
                      "objective": round(res.objective, 4), "converged": res.converged,
                      "same_optimum_as_first": bool(abs(res.objective - first.objective) < 1e-6)}), flush=True)


def main(args):
    model = pkpd.load_model("msc_salvadori")
    data = notebook_dataset(model)
    start = model.with_parameters(**START)
    run("default (least_squares, finite differences, solver auto)", start, data)
    run("solver tsit5", start, data, settings=pkpd.SolverSettings(method="tsit5"))
    if "--sensitivity" in args:
        t0 = time.perf_counter()
        pkpd.fit(start, data, estimate=ESTIMATE, error=ERROR, gradient="sensitivity",
                 settings=pkpd.SolverSettings(method="tsit5"), covariance=False, max_evaluations=1)
        print(json.dumps({"benchmark": "sensitivity model compile (or cache load)",
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        run("sensitivity gradients, solver tsit5", start, data, gradient="sensitivity",
            settings=pkpd.SolverSettings(method="tsit5"))


if __name__ == "__main__":
    main(sys.argv[1:])
