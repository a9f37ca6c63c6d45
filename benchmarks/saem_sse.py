"""Simulation-re-estimation study of a sparse, nonlinear MSC design: SAEM against FOCE-I (issue 16).

Design: ``msc_salvadori``, N patients (default 12, weight log-normal around 70 kg), 2e6 cell/kg IV, IL-10 and PGE2
at 6, 24 and 72 h (3 samples each); true values the model file's, log-normal IIV k_c 0.09, s_p 0.09, k_i 0.04,
15 % proportional error on both outputs. Each replicate (seed = replicate number) is fitted with SAEM and with
FOCE-I from the same starting values (EC50 600, e_max 12, k_i 0.2, k_c 0.04, s_p 3e-3, IIV 0.2/0.2/0.1, CV 0.3),
with the covariance step (SAEM: by linearisation). Prints one JSON line per fit, then per method and parameter the
relative bias (median and mean of (estimate - truth)/truth), the relative RMSE and the coverage of the 95 % Wald
CI [%].

Usage::

    python benchmarks/saem_sse.py --replicates 100 --workers 16 --out results.jsonl
    python benchmarks/saem_sse.py --replicates 4 --workers 2 --exploratory 100 --smoothing 60   # a quick look
    python benchmarks/saem_sse.py --summarise results.jsonl       # the summary of the replicates written so far

SAEM runs with the library's defaults (the exploratory phase stops by itself, 200 smoothing iterations) unless
``--exploratory`` / ``--smoothing`` are given. With ``--out`` every fit is appended to the file as one JSON line as
soon as it finishes (so a study stopped early keeps its replicates), and the summary is its last line.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor

TRUE = {"k_c": 0.028881132523331052, "s_p": 2.0e-3, "EC50": 350.0, "e_max": 20.0, "k_i": 0.28}
ETA = {"k_c": 0.09, "s_p": 0.09, "k_i": 0.04}
INIT = {"k_c": 0.04, "s_p": 3e-3, "EC50": 600.0, "e_max": 12.0, "k_i": 0.2}
TIMES = (6.0, 24.0, 72.0)


def study(replicate: int, n: int):
    import numpy as np
    import pandas as pd

    import pkpd

    model = pkpd.load_model("msc_salvadori")
    pop = pkpd.virtual_population(n, {"WT": pkpd.LogNormalCovariate(70, 0.2)}, criteria={"WT": (40, None)},
                                  seed=1000 + replicate)
    sim = pkpd.simulate_population(model, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), list(TIMES), pop,
                                   iiv=pkpd.IIV(dict(ETA)), seed=2000 + replicate,
                                   outputs=["PGE2", "IL10"]).simulation
    rng = np.random.default_rng(3000 + replicate)
    dv = {o: pkpd.Proportional(cv=0.15).sample(sim.outputs[o], rng) for o in ("PGE2", "IL10")}
    rows = []
    for i in range(n):
        wt = float(pop.table["WT"][i])
        rows.append(dict(ID=i + 1, TIME=0.0, DV=float("nan"), AMT=2e6, EVID=1, MDV=1, DVID=".", WT=wt))
        for j, t in enumerate(TIMES):
            for o in ("PGE2", "IL10"):
                rows.append(dict(ID=i + 1, TIME=t, DV=float(dv[o][i, j]), AMT=0.0, EVID=0, MDV=0, DVID=o, WT=wt))
    from pkpd.nonmem import read_nonmem

    return read_nonmem(pd.DataFrame(rows), model, dose_unit="cell/kg")


def one(job):
    replicate, n, method, exploratory, smoothing = job
    import pkpd

    model = pkpd.load_model("msc_salvadori")
    data = study(replicate, n)
    kw = dict(iiv={"k_c": 0.2, "s_p": 0.2, "k_i": 0.1}, estimate=list(INIT), init=dict(INIT),
              error={"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)}, method=method)
    if method == "saem":
        kw |= dict(seed=replicate, is_samples=1000, saem=pkpd.SaemSettings(exploratory=exploratory,
                                                                           smoothing=smoothing))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        f = pkpd.fit_population(model, data, **kw)
    except Exception as err:   # a failed replicate is reported, not dropped silently
        return {"replicate": replicate, "method": method, "error": f"{type(err).__name__}: {err}"}
    p = f.parameters.set_index("name")
    return {"replicate": replicate, "method": method, "seconds": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(time.process_time() - c0, 2), "message": f.message,
            "converged": bool(f.converged),
            "estimate": {k: float(p.loc[k, "estimate"]) for k in TRUE},
            "se": {k: float(p.loc[k, "se"]) for k in TRUE}}


def summarise(records):
    import numpy as np

    out = {}
    for method in sorted({r["method"] for r in records}):
        ok = [r for r in records if r["method"] == method and "estimate" in r]
        table = {}
        for k, truth in TRUE.items():
            est = np.array([r["estimate"][k] for r in ok])
            se = np.array([r["se"][k] for r in ok])
            rel = (est - truth) / truth
            cover = np.isfinite(se) & (np.abs(est - truth) <= 1.959963984540054 * se)
            table[k] = {"median_rel_bias_percent": round(100 * float(np.median(rel)), 2),
                        "mean_rel_bias_percent": round(100 * float(np.mean(rel)), 2),
                        "rel_rmse_percent": round(100 * float(np.sqrt(np.mean(rel ** 2))), 2),
                        "coverage_percent": round(100 * float(np.mean(cover)), 1),
                        "se_available_percent": round(100 * float(np.mean(np.isfinite(se))), 1)}
        out[method] = {"n_fits": len(ok), "n_failed": sum(r["method"] == method and "estimate" not in r
                                                            for r in records), "parameters": table}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["saem", "focei"])
    ap.add_argument("--exploratory", type=int, default=None, help="default: the stopping rule")
    ap.add_argument("--smoothing", type=int, default=200)
    ap.add_argument("--out", default=None, help="append one JSON line per fit to this file")
    ap.add_argument("--summarise", default=None, metavar="JSONL", help="only summarise the fits in this file")
    args = ap.parse_args(argv)
    if args.summarise:
        with open(args.summarise) as fh:
            records = [r for r in map(json.loads, fh) if "method" in r]
        done = sorted({r["replicate"] for r in records})
        print(json.dumps({"summary": summarise(records), "replicates": len(done), "n": args.n}))
        return math.nan
    jobs = [(r, args.n, m, args.exploratory, args.smoothing) for r in range(args.replicates) for m in args.methods]
    records = []
    out = open(args.out, "a") if args.out else None
    with ProcessPoolExecutor(args.workers) as pool:
        for rec in pool.map(one, jobs):
            records.append(rec)
            print(json.dumps(rec), flush=True)
            if out is not None:
                out.write(json.dumps(rec) + "\n")
                out.flush()
    summary = {"summary": summarise(records), "replicates": args.replicates, "n": args.n}
    print(json.dumps(summary, indent=1))
    if out is not None:
        out.write(json.dumps(summary) + "\n")
        out.close()
    return math.nan


if __name__ == "__main__":
    main()
