"""The importance-sampling -2 log L on theophylline against Laplace and across seeds (issue 16).

The Laplace fit of the theophylline data (one-compartment oral model, log-normal IIV on ka, CL and V, additive
error) gives the estimates; at those estimates (``maxeval=0``) the objective is evaluated by Laplace and by
importance sampling (``objective="is"``) with K seeds. Prints per seed the IS objective and its reported Monte-Carlo
SE, then: the mean IS - Laplace difference, the SD of the IS values across seeds against the mean reported SE, and
the share of seed pairs whose difference lies within 2 combined SEs.

Usage::

    python benchmarks/importance_sampling.py [--seeds 10] [--samples 2000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--samples", type=int, default=2000)
    a = ap.parse_args(argv)
    import numpy as np

    import pkpd
    from pkpd.nonmem import read_nonmem

    data = read_nonmem("tests/data/theoph.csv", dose_unit="mg")
    iiv = {"ka": 0.6, "CL": 0.3, "V": 0.1}
    fit = pkpd.fit_population("pk_1cmt_oral", data, iiv=iiv, error=pkpd.Additive(sd=0.7), method="laplace",
                              covariance=None)
    kw = dict(iiv=fit.iiv, error=fit.error, init=fit.theta, maxeval=0, method="laplace")
    laplace = pkpd.fit_population("pk_1cmt_oral", data, **kw).objective
    runs = []
    for seed in range(1, a.seeds + 1):
        t0 = time.perf_counter()
        f = pkpd.fit_population("pk_1cmt_oral", data, objective="is", seed=seed, is_samples=a.samples, **kw)
        runs.append((f.objective, f.objective_se))
        print(json.dumps({"seed": seed, "is_objective": round(f.objective, 4), "mc_se": round(f.objective_se, 4),
                          "seconds": round(time.perf_counter() - t0, 2)}), flush=True)
    values = np.array([r[0] for r in runs])
    ses = np.array([r[1] for r in runs])
    pairs = [abs(x[0] - y[0]) <= 2 * math.hypot(x[1], y[1]) for x, y in itertools.combinations(runs, 2)]
    print(json.dumps({"laplace_objective": round(laplace, 4), "is_mean": round(float(values.mean()), 4),
                      "is_minus_laplace": round(float(values.mean() - laplace), 4),
                      "max_abs_is_minus_laplace": round(float(np.max(np.abs(values - laplace))), 4),
                      "sd_across_seeds": round(float(values.std(ddof=1)), 4),
                      "mean_reported_se": round(float(ses.mean()), 4),
                      "pairs_within_2_se_percent": round(100 * float(np.mean(pairs)), 1),
                      "seeds": a.seeds, "samples": a.samples}, indent=1))


if __name__ == "__main__":
    main()
