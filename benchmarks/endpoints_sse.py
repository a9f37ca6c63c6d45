"""Simulation-re-estimation of clinical endpoints (issue 17): bias and CI coverage of the exact likelihood.

Model ``benchmarks/models/endpoints_sse.toml``: a Weibull time to event whose hazard the drug concentration (a model
state) lowers, a binary response logistic in the AUC (an integrator state) and a proportional-odds graded score in
the AUC; the nine endpoint parameters are estimated jointly by :func:`pkpd.fit` (exact likelihood, no
linearisation).

Design of each simulated study (replicate ``i`` draws from ``numpy.random.SeedSequence(seed).spawn(n)[i]``):
``--subjects`` subjects (default 200) in four dose groups (0, 10, 30, 100 mg IV bolus), followed up to 168 h for the
event (censored there), response and grade assessed at 48 h; the study is drawn by :func:`pkpd.simulate` (inverse
cumulative hazard) and written with ``Simulation.to_dataframe(layout="nonmem")``, the dataset the fit reads.

Prints one JSON line per parameter (truth, mean estimate, relative bias [%] with its Monte-Carlo SE, empirical SE,
mean model SE, 95 % CI coverage with its Monte-Carlo SE) and a summary line (replicates, failures, seconds).

Usage: python benchmarks/endpoints_sse.py [--n 100] [--subjects 200] [--seed 17] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parent / "models" / "endpoints_sse.toml"
ESTIMATE = ("scale", "shape", "beta", "b0", "b1", "a1", "a2", "a3", "g")
DOSES = (0.0, 10.0, 30.0, 100.0)
FOLLOW_UP = 168.0
VISIT = 48.0


def study(model, n_subjects: int, seed):
    """One simulated study in the NONMEM layout (pandas DataFrame)."""
    import pkpd

    doses = np.repeat(DOSES, -(-n_subjects // len(DOSES)))[:n_subjects]
    regimens = [pkpd.Regimen.single(pkpd.Dose(d, "mg")) if d > 0 else pkpd.Regimen.none() for d in doses]
    sim = pkpd.simulate(model, regimens, [0.0, VISIT, FOLLOW_UP], seed=seed, follow_up=FOLLOW_UP,
                        observe={"response": [VISIT], "grade": [VISIT]}, states=False)
    return sim.to_dataframe(layout="nonmem")


def replicate(job, seed):
    """Simulate and refit one study: (True, (estimates, ci_low, ci_high, se)) or (False, reason)."""
    import pkpd
    from pkpd.errors import PkpdError

    n_subjects, estimate = job
    model = pkpd.load_model(MODEL)
    data = study(model, n_subjects, seed)
    try:
        res = pkpd.fit(model, data, estimate=list(estimate))
    except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not res.converged:
        return False, f"did not converge: {res.message}"
    get = lambda d: np.array([d[p] for p in estimate])   # noqa: E731
    return True, (get(res.estimates), get(res.ci_low), get(res.ci_high), get(res.se))


def summarise(outcomes, truth: dict) -> list[dict]:
    """Per parameter (``truth`` order): truth, mean, relative bias [%] and its Monte-Carlo SE, empirical and mean
    model SE, coverage of the 95 % CIs and its Monte-Carlo SE, over the replicates that converged."""
    ok = [x for good, x in outcomes if good]
    est, lo, hi, se = (np.array([o[k] for o in ok]) for k in range(4))
    rows = []
    for j, p in enumerate(truth):
        t = truth[p]
        rel = 100 * (est[:, j] / t - 1)
        covered = (lo[:, j] <= t) & (t <= hi[:, j])
        cov = float(np.mean(covered))
        n = est.shape[0]
        rows.append({"parameter": p, "truth": t, "mean": float(est[:, j].mean()),
                     "relative_bias_percent": float(rel.mean()),
                     "relative_bias_mcse_percent": float(rel.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                     "empirical_se": float(est[:, j].std(ddof=1)) if n > 1 else math.nan,
                     "mean_model_se": float(np.nanmean(se[:, j])),
                     "coverage_95": cov, "coverage_mcse": math.sqrt(cov * (1 - cov) / n), "n": n})
    return rows


def run(n: int, n_subjects: int, seed, workers=None, progress=False, estimate=ESTIMATE):
    """``n`` replicates: (outcomes in replicate order, truth of the estimated parameters)."""
    import pkpd
    from pkpd._parallel import map_tasks, spawn_seeds

    model = pkpd.load_model(MODEL)
    truth = {p: model.parameter(p).value for p in estimate}
    outcomes = map_tasks(replicate, spawn_seeds(seed, n), shared=(n_subjects, tuple(estimate)), workers=workers,
                         progress=progress, description="endpoints SSE", unit="replicate")
    return outcomes, truth


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    outcomes, truth = run(args.n, args.subjects, args.seed, args.workers, progress=True)
    seconds = time.perf_counter() - start
    for row in summarise(outcomes, truth):
        print(json.dumps(row))
    failed = [x for good, x in outcomes if not good]
    print(json.dumps({"benchmark": "endpoints_sse", "replicates": args.n, "subjects": args.subjects,
                      "seed": args.seed, "failed": len(failed), "failures": failed[:5], "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
