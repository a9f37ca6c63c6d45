"""Simulation-re-estimation study of a sparse, nonlinear MSC design: SAEM against FOCE-I (issue 16).

Two designs (``--design``), both ``msc_salvadori``, IV MSCs (weight log-normal around 70 kg), IL-10 and PGE2
at 6, 24 and 72 h (3 samples each), true typical values the model file's, 15 % proportional error on both outputs:

* ``pk-iiv`` (the default; the first study): 12 patients, 2e6 cell/kg, log-normal IIV k_c 0.09, s_p 0.09,
  k_i 0.04; EC50 and e_max without IIV. Fitted from EC50 600, e_max 12, k_i 0.2, k_c 0.04, s_p 3e-3,
  IIV 0.2/0.2/0.1, CV 0.3.
* ``pd-iiv``: the random effects act on the PD parameters, where a linearisation is least accurate: log-normal IIV
  EC50 0.3 and e_max 0.3 (as well as k_c 0.09 and s_p 0.09; k_i without IIV), 24 patients in three dose groups of
  8 (1e6, 3e6 and 1e7 cell/kg: the highest dose brings the effect-site PGE2 above EC50, so that EC50 and e_max are
  told apart; at 2e6 cell/kg alone the stimulus stays in the Hill curve's lower part, where only their ratio is
  informed). Fitted from the same typical values, IIV k_c 0.2, s_p 0.2, EC50 0.5, e_max 0.5, CV 0.3.

Each replicate (seed = replicate number) is fitted with SAEM and with FOCE-I from the same starting values, with
the covariance step (SAEM: by linearisation). Prints one JSON line per fit, then per method and parameter (typical
values, and the IIV variances) the relative bias (median and mean of (estimate - truth)/truth, with the Monte-Carlo
SE of the mean), the relative RMSE and the coverage of the 95 % Wald CI [%] (a fit without an SE counts as not
covering), and the paired difference SAEM - FOCE-I relative to the truth (mean and its SE, over the replicates
both methods fitted) with how often SAEM was the closer to the truth.

Usage::

    python benchmarks/saem_sse.py --replicates 100 --workers 16 --out results.jsonl
    python benchmarks/saem_sse.py --design pd-iiv --replicates 100 --workers 2 --out results_pd.jsonl
    python benchmarks/saem_sse.py --replicates 4 --workers 2 --exploratory 100 --smoothing 60   # a quick look
    python benchmarks/saem_sse.py --summarise results.jsonl [--design pd-iiv]   # the replicates written so far

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
INIT = {"k_c": 0.04, "s_p": 3e-3, "EC50": 600.0, "e_max": 12.0, "k_i": 0.2}
TIMES = (6.0, 24.0, 72.0)
DESIGNS = {   # true IIV variances, the IIV the fits start from, dose groups [cell/kg] (equal sizes), patients
    "pk-iiv": {"eta": {"k_c": 0.09, "s_p": 0.09, "k_i": 0.04}, "iiv_init": {"k_c": 0.2, "s_p": 0.2, "k_i": 0.1},
               "doses": (2e6,), "n": 12},
    "pd-iiv": {"eta": {"k_c": 0.09, "s_p": 0.09, "EC50": 0.3, "e_max": 0.3},
               "iiv_init": {"k_c": 0.2, "s_p": 0.2, "EC50": 0.5, "e_max": 0.5},
               "doses": (1e6, 3e6, 1e7), "n": 24},
}


def study(replicate: int, n: int, design: str = "pk-iiv"):
    """The data set of one replicate: n patients split evenly over the design's dose groups (group g of replicate r
    from the seeds 1000 + r + 100000 g, 2000 + r + 100000 g, 3000 + r + 100000 g)."""
    import numpy as np
    import pandas as pd

    import pkpd

    model = pkpd.load_model("msc_salvadori")
    doses = DESIGNS[design]["doses"]
    sizes = [n // len(doses) + (g < n % len(doses)) for g in range(len(doses))]
    rows = []
    first = 0
    for g, (dose, size) in enumerate(zip(doses, sizes)):
        shift = 100000 * g
        pop = pkpd.virtual_population(size, {"WT": pkpd.LogNormalCovariate(70, 0.2)}, criteria={"WT": (40, None)},
                                      seed=1000 + replicate + shift)
        sim = pkpd.simulate_population(model, pkpd.Regimen.single(pkpd.Dose(dose, "cell/kg")), list(TIMES), pop,
                                       iiv=pkpd.IIV(dict(DESIGNS[design]["eta"])), seed=2000 + replicate + shift,
                                       outputs=["PGE2", "IL10"]).simulation
        rng = np.random.default_rng(3000 + replicate + shift)
        dv = {o: pkpd.Proportional(cv=0.15).sample(sim.outputs[o], rng) for o in ("PGE2", "IL10")}
        for i in range(size):
            wt = float(pop.table["WT"][i])
            rows.append(dict(ID=first + i + 1, TIME=0.0, DV=float("nan"), AMT=dose, EVID=1, MDV=1, DVID=".", WT=wt))
            for j, t in enumerate(TIMES):
                for o in ("PGE2", "IL10"):
                    rows.append(dict(ID=first + i + 1, TIME=t, DV=float(dv[o][i, j]), AMT=0.0, EVID=0, MDV=0,
                                     DVID=o, WT=wt))
        first += size
    from pkpd.nonmem import read_nonmem

    return read_nonmem(pd.DataFrame(rows), model, dose_unit="cell/kg")


def one(job):
    replicate, n, method, exploratory, smoothing, design = job
    import pkpd

    model = pkpd.load_model("msc_salvadori")
    data = study(replicate, n, design)
    kw = dict(iiv=dict(DESIGNS[design]["iiv_init"]), estimate=list(INIT), init=dict(INIT),
              error={"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)}, method=method)
    if method == "saem":
        kw |= dict(seed=replicate, is_samples=1000, saem=pkpd.SaemSettings(exploratory=exploratory,
                                                                           smoothing=smoothing))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        f = pkpd.fit_population(model, data, **kw)
    except Exception as err:   # a failed replicate is reported, not dropped silently
        return {"replicate": replicate, "method": method, "design": design, "error": f"{type(err).__name__}: {err}"}
    p = f.parameters.set_index("name")
    names = list(TRUE) + [f"omega2_{k}" for k in DESIGNS[design]["eta"]]
    return {"replicate": replicate, "method": method, "design": design,
            "seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - c0, 2),
            "message": f.message, "converged": bool(f.converged),
            "estimate": {k: float(p.loc[k, "estimate"]) for k in names if k in p.index},
            "se": {k: float(p.loc[k, "se"]) for k in names if k in p.index}}


def truth(design: str) -> dict:
    """True typical values and IIV variances of a design."""
    return TRUE | {f"omega2_{k}": v for k, v in DESIGNS[design]["eta"].items()}


def summarise(records, design: str = "pk-iiv"):
    import numpy as np

    out = {}
    true = truth(design)
    records = [r for r in records if r.get("design", "pk-iiv") == design]
    fitted = {}
    for method in sorted({r["method"] for r in records}):
        ok = [r for r in records if r["method"] == method and "estimate" in r]
        fitted[method] = {r["replicate"]: r for r in ok}
        table = {}
        for k, value in true.items():
            est = np.array([r["estimate"].get(k, np.nan) for r in ok])
            if not np.isfinite(est).any():
                continue
            se = np.array([r["se"].get(k, np.nan) for r in ok])
            rel = (est - value) / value
            cover = np.isfinite(se) & (np.abs(est - value) <= 1.959963984540054 * se)
            table[k] = {"median_rel_bias_percent": round(100 * float(np.median(rel)), 2),
                        "mean_rel_bias_percent": round(100 * float(np.mean(rel)), 2),
                        "mean_rel_bias_se_percent": round(100 * float(np.std(rel, ddof=1) / np.sqrt(len(rel))), 2)
                        if len(rel) > 1 else None,
                        "rel_rmse_percent": round(100 * float(np.sqrt(np.mean(rel ** 2))), 2),
                        "coverage_percent": round(100 * float(np.mean(cover)), 1),
                        "se_available_percent": round(100 * float(np.mean(np.isfinite(se))), 1)}
        cpu = [r["cpu_seconds"] for r in ok]
        out[method] = {"n_fits": len(ok), "n_failed": sum(r["method"] == method and "estimate" not in r
                                                            for r in records),
                       "median_cpu_seconds": round(float(np.median(cpu)), 2) if cpu else None,
                       "parameters": table}
    if {"saem", "focei"} <= set(fitted):   # paired: the same replicates fitted by both methods
        both = sorted(set(fitted["saem"]) & set(fitted["focei"]))
        paired = {}
        for k, value in true.items():
            if not all(k in fitted[m][r]["estimate"] for m in ("saem", "focei") for r in both):
                continue
            d = np.array([(fitted["saem"][r]["estimate"][k] - fitted["focei"][r]["estimate"][k]) / value
                          for r in both])
            a = np.abs([(fitted["saem"][r]["estimate"][k] - value) / value for r in both])
            b = np.abs([(fitted["focei"][r]["estimate"][k] - value) / value for r in both])
            if len(d) > 1:
                paired[k] = {"mean_percent": round(100 * float(d.mean()), 2),
                             "se_percent": round(100 * float(d.std(ddof=1) / np.sqrt(len(d))), 2),
                             "saem_closer_percent": round(100 * float(np.mean(a < b)), 1)}
        out["paired_saem_minus_focei"] = {"replicates": len(both), "parameters": paired}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--first", type=int, default=0, help="number of the first replicate")
    ap.add_argument("--n", type=int, default=None, help="patients (default: the design's, 12 or 24)")
    ap.add_argument("--design", choices=sorted(DESIGNS), default="pk-iiv")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["saem", "focei"])
    ap.add_argument("--exploratory", type=int, default=None, help="default: the stopping rule")
    ap.add_argument("--smoothing", type=int, default=200)
    ap.add_argument("--out", default=None, help="append one JSON line per fit to this file")
    ap.add_argument("--summarise", default=None, metavar="JSONL", help="only summarise the fits in this file")
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = DESIGNS[args.design]["n"]
    if args.summarise:
        with open(args.summarise) as fh:
            records = [r for r in map(json.loads, fh) if "method" in r]
        done = sorted({r["replicate"] for r in records if r.get("design", "pk-iiv") == args.design})
        print(json.dumps({"summary": summarise(records, args.design), "design": args.design,
                          "replicates": len(done), "n": args.n}))
        return math.nan
    jobs = [(r, args.n, m, args.exploratory, args.smoothing, args.design)
            for r in range(args.first, args.first + args.replicates) for m in args.methods]
    records = []
    out = open(args.out, "a") if args.out else None
    with ProcessPoolExecutor(args.workers) as pool:
        for rec in pool.map(one, jobs):
            records.append(rec)
            print(json.dumps(rec), flush=True)
            if out is not None:
                out.write(json.dumps(rec) + "\n")
                out.flush()
    summary = {"summary": summarise(records, args.design), "design": args.design, "replicates": args.replicates,
               "n": args.n}
    print(json.dumps(summary, indent=1))
    if out is not None:
        out.write(json.dumps(summary) + "\n")
        out.close()
    return math.nan


if __name__ == "__main__":
    main()
