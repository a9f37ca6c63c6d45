"""Population-estimation benchmark (issue 5): the theophylline FOCE-I fit, timed.

Data: tests/data/theoph.csv (12 subjects, 132 concentrations). Model: pk_1cmt_oral, log-normal IIV on ka, CL and V,
additive error, initial values ka 1.5, CL 2.8, V 32 (model file), omega^2 0.6, 0.3, 0.1, sd 0.7 (nlmixr2's example).
Prints one JSON line: wall seconds of the whole fit including the covariance step (median of 3, after a warm-up fit
that loads the compiled model), the objective (NONMEM OFV) and the number of parameter sets evaluated.

Usage: python benchmarks/nlme.py
"""

import json
import statistics
import time
from pathlib import Path

import pkpd
from pkpd.nonmem import read_nonmem

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "theoph.csv"


def run():
    return pkpd.fit_population("pk_1cmt_oral", read_nonmem(DATA, dose_unit="mg"), iiv={"ka": 0.6, "CL": 0.3, "V": 0.1},
                               error=pkpd.Additive(sd=0.7), method="focei")


if __name__ == "__main__":
    t0 = time.perf_counter()
    fit = run()
    cold = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fit = run()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"benchmark": "theophylline FOCE-I (pk_1cmt_oral, 3 IIV, additive error)",
                      "seconds": round(statistics.median(times), 3), "cold_seconds": round(cold, 3),
                      "objective": round(fit.objective, 4), "n_parameter_sets": fit.n_evaluations,
                      "converged": fit.converged}))
