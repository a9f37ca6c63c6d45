"""Checks and figures of the NUTS sampler (issue 16): simulation-based calibration, a population posterior against a
long independent run, and effective samples per second on one MSC subject.

* ``sbc``: simulation-based calibration (Talts et al. 2018) of a small individual model (one-compartment IV,
  CL and V with log-normal priors, 15 % proportional error known, 6 samples): for each replicate, parameters drawn
  from the prior, data simulated, the posterior sampled (4 chains; draws thinned to about independent ones), and
  the rank of the true value among the draws recorded; under a correct sampler the ranks are uniform. A chi-square
  test on 10 equal bins at a fixed seed (p-value printed per parameter).
* ``reference``: posterior means of a population model (wang2007 data, IIV on ke) from a normal run against a long
  independent run (other seed, 8x the draws): the difference in units of its Monte-Carlo error.
* ``msc``: NUTS on one MSC subject (msc_salvadori; IL-10 and PGE2 at 8 times; k_c, s_p, EC50, e_max and the two
  CVs with the shipped priors): minimum bulk ESS per second of sampling (``--sampler``: pkpd's own NUTS, the
  default, or numpyro's); ``compare``: the posterior means of two such runs against their Monte-Carlo error.

Usage::

    python benchmarks/bayes.py sbc --replicates 200 [--warmup 300 --draws 400] [--start 100] [--seed 11]
    python benchmarks/bayes.py combine sbc_log_1 [sbc_log_2 ...]
    python benchmarks/bayes.py reference [--draws 500 --long-draws 4000 --long-warmup 1000]
    python benchmarks/bayes.py msc [--warmup 500 --draws 1000] [--sampler pkpd|numpyro] [--workers 2]
    python benchmarks/bayes.py compare msc_log_1 msc_log_2
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def sbc(replicates: int, seed: int = 11, n_warmup: int = 300, n_draws: int = 400, start: int = 0):
    import pandas as pd

    import pkpd
    from pkpd.priors import LogNormalPrior

    priors = {"CL": LogNormalPrior(3.0, 0.3), "V": LogNormalPrior(30.0, 0.3)}
    model = pkpd.load_model("pk_1cmt_iv").with_priors(**priors)
    t = np.array([0.5, 1, 2, 4, 8, 12])
    rng = np.random.default_rng(seed)
    ranks = {"CL": [], "V": []}
    n_keep = 99
    for r in range(replicates):
        truth = {k: float(p.sample(1, rng)[0]) for k, p in priors.items()}
        f = 100 / truth["V"] * np.exp(-truth["CL"] / truth["V"] * t)
        y = pkpd.Proportional(cv=0.15).sample(f, rng)
        if r < start:       # a shard of the study: the same replicates as a serial run (the draws replayed)
            continue
        data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * t.size, "AMT": [100] + [0] * t.size,
                             "AMTU": "mg", "DV": np.r_[np.nan, y]})
        post = pkpd.sample(model, data, estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.15, fixed=True)},
                           seed=r, n_warmup=n_warmup, n_draws=n_draws)
        for k in ranks:
            draws = post.array(k)
            step = max(1, draws.size // n_keep)
            kept = draws[::step][:n_keep]
            ranks[k].append(int(np.sum(kept < truth[k])))
        print(json.dumps({"replicate": r, "truth": truth, "ranks": {k: v[-1] for k, v in ranks.items()},
                          "divergences": post.divergences, "seconds": round(post.seconds, 2),
                          "cpu_seconds": round(post.cpu_seconds, 2), "load_average": os.getloadavg()[0]}),
              flush=True)
    print(json.dumps({"sbc": _sbc_test(ranks, n_keep), "replicates": replicates - start, "draws_per_rank": n_keep}))


def _sbc_test(ranks: dict, n_keep: int = 99) -> dict:
    """Chi-square test of uniform ranks (0..n_keep) per parameter: 10 equal bins, fewer (5, 4, 2) when there are
    too few replicates for an expected count of 5 per bin."""
    from scipy.stats import chisquare

    out = {}
    for k, v in ranks.items():
        bins = next(b for b in (10, 5, 4, 2) if len(v) >= 5 * b or b == 2)
        counts = np.histogram(v, bins=bins, range=(0, n_keep + 1))[0]
        out[k] = {"bins": bins, "counts": counts.tolist(), "chi2_p_value": float(chisquare(counts).pvalue)}
    return out


def combine(paths):
    """The SBC test over the replicate lines of one or more logs (shards or an interrupted run), each replicate
    counted once."""
    seen = {}
    for path in paths:
        for line in open(path):
            if line.startswith('{"replicate"'):
                rec = json.loads(line)
                seen[rec["replicate"]] = rec
    ranks = {k: [seen[r]["ranks"][k] for r in sorted(seen)] for k in ("CL", "V")}
    print(json.dumps({"sbc": _sbc_test(ranks), "replicates": len(seen), "replicate_ids": [min(seen), max(seen)],
                      "divergences": sum(rec["divergences"] for rec in seen.values()),
                      "cpu_seconds": round(sum(rec.get("cpu_seconds", 0.0) for rec in seen.values()), 1)}))


def reference(n_draws: int = 500, long_draws: int = 4000, long_warmup: int = 1000):
    import pkpd
    from pkpd.priors import InverseWishart, LogNormalPrior

    data = "tests/data/wang2007/wang2007.csv"
    model = pkpd.load_model("wang2007").with_priors(ke=LogNormalPrior(0.5, 0.5))
    kw = dict(estimate=["ke"], iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3),
              omega_prior=InverseWishart({"ke": 0.05}, df=3))
    short = pkpd.sample(model, data, seed=1, n_draws=n_draws, **kw)
    print(short, flush=True)
    print(json.dumps({"short_run": {"seconds": short.seconds, "cpu_seconds": short.cpu_seconds,
                                    "load_average": os.getloadavg()[0]}}), flush=True)
    long = pkpd.sample(model, data, seed=99, n_draws=long_draws, n_warmup=long_warmup, **kw)
    print(long, flush=True)
    print(json.dumps({"long_run": {"seconds": long.seconds, "cpu_seconds": long.cpu_seconds,
                                   "load_average": os.getloadavg()[0]}}), flush=True)
    rows = {}
    for _, r in short.summary.iterrows():
        lr = long.summary.set_index("name").loc[r["name"]]
        mc = np.hypot(r["sd"] / np.sqrt(r["ess_bulk"]), lr["sd"] / np.sqrt(lr["ess_bulk"]))
        rows[r["name"]] = {"mean": r["mean"], "reference_mean": lr["mean"], "difference_in_mc_se":
                           float((r["mean"] - lr["mean"]) / mc)}
    print(json.dumps({"reference": rows, "short_divergences": short.divergences,
                      "long_divergences": long.divergences, "short_draws": n_draws, "long_draws": long_draws,
                      "long_warmup": long_warmup, "chains": short.n_chains}, indent=1))


def msc(n_warmup: int = 500, n_draws: int = 1000, sampler: str = "pkpd", threads: int = 1, workers: int = 1,
        rtol: float | None = None):
    import pandas as pd

    import pkpd
    from pkpd.nonmem import read_nonmem

    model = pkpd.load_model("msc_salvadori")
    times = [1.0, 4.0, 12.0, 24.0, 48.0, 72.0, 120.0, 168.0]
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), times, covariates={"WT": 70.0})
    rng = np.random.default_rng(3)
    rows = [dict(ID=1, TIME=0.0, DV=np.nan, AMT=2e6, EVID=1, MDV=1, DVID=".", WT=70.0)]
    for o in ("PGE2", "IL10"):
        y = pkpd.Proportional(cv=0.15).sample(sim.outputs[o][0], rng)
        rows += [dict(ID=1, TIME=t, DV=float(v), AMT=0.0, EVID=0, MDV=0, DVID=o, WT=70.0) for t, v in zip(times, y)]
    frame = pd.DataFrame(rows).sort_values("TIME", kind="stable")
    data = read_nonmem(frame, model, dose_unit="cell/kg")
    kw = dict(estimate=["k_c", "s_p", "EC50", "e_max"],
              error={"PGE2": pkpd.Proportional(cv=0.15), "IL10": pkpd.Proportional(cv=0.15)}, sampler=sampler)
    if sampler == "pkpd":
        kw["threads"] = threads
        if workers > 1:
            kw["workers"] = workers
    if rtol is not None:        # sample's default: rtol 1e-8, atol 1e-10
        kw["settings"] = pkpd.SolverSettings(rtol=rtol, atol=1e-10)
    t0, c0 = time.perf_counter(), _cpu()
    pkpd.sample(model, data, seed=0, n_warmup=20, n_draws=20, **kw)     # traces and compiles once
    compile_wall, compile_cpu = time.perf_counter() - t0, _cpu() - c0
    t0, c0, own0 = time.perf_counter(), _cpu(), time.process_time()
    post = pkpd.sample(model, data, seed=1, n_warmup=n_warmup, n_draws=n_draws, **kw)
    wall, cpu, own = time.perf_counter() - t0, _cpu() - c0, time.process_time() - own0
    print(post)
    ess = float(post.summary["ess_bulk"].min())
    steps = post.leapfrog_steps + post.warmup_leapfrog_steps
    # the CPU of the kept draws alone, estimated by their share of the gradient evaluations (the chains' warm-up
    # and draws overlap in time; pkpd's sampler only: numpyro does not report its warm-up steps)
    draws_share = post.leapfrog_steps / steps if post.warmup_leapfrog_steps else float("nan")
    print(json.dumps({"msc_one_subject": {
        "sampler": post.sampler, "engine_threads": _threads(), "chain_threads": kw.get("threads", 1),
        "worker_processes": kw.get("workers", 1), "rtol": rtol or 1e-8,
        "min_bulk_ess": ess, "max_rhat": float(post.summary["rhat"].max()), "divergences": post.divergences,
        "n_warmup": n_warmup, "n_draws": n_draws, "chains": post.n_chains, "derivatives": post.derivatives,
        "leapfrog_steps_after_warmup": post.leapfrog_steps, "leapfrog_steps_warmup": post.warmup_leapfrog_steps,
        "leapfrog_steps_per_iteration_after_warmup": post.leapfrog_steps / (post.n_chains * n_draws),
        "sampling_wall_s": post.seconds, "sampling_cpu_s": post.cpu_seconds,
        "ess_per_wall_s_sampling": ess / post.seconds, "ess_per_cpu_s_sampling": ess / post.cpu_seconds,
        "ess_per_cpu_s_draws_only_estimated": ess / (post.cpu_seconds * draws_share),
        "call_wall_s": wall, "call_cpu_s": cpu,
        # with worker processes: this process's CPU (its own chain group) and the workers'; on idle cores the wall
        # time is about the larger of the groups' CPU (the groups run in parallel)
        "call_cpu_s_this_process": own, "call_cpu_s_workers": cpu - own,
        "ess_per_cpu_s_of_the_busiest_group": ess / max(own, cpu - own),
        "first_call_wall_s_incl_compilation": compile_wall, "first_call_cpu_s_incl_compilation": compile_cpu,
        # the whole first call (tracing, compiling and its 40 iterations) counted as the one-off cost
        "ess_per_cpu_s_total_incl_compilation": ess / (cpu + compile_cpu),
        "ess_per_wall_s_total_incl_compilation": ess / (wall + compile_wall),
        "load_average_1_5_15": os.getloadavg(),
        "summary": {r["name"]: {"mean": r["mean"], "sd": r["sd"], "ess_bulk": r["ess_bulk"], "rhat": r["rhat"]}
                    for _, r in post.summary.iterrows()}}}))


def _cpu() -> float:
    """CPU seconds of this process and its finished worker processes."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _threads() -> int:
    from pkpd._native import threads

    return threads()


def compare(paths):
    """Posterior means of two ``msc`` runs (e.g. the two samplers): the difference of each parameter's mean in
    units of the combined Monte-Carlo SE (SD / sqrt(bulk ESS) of each run)."""
    runs = []
    for path in paths[:2]:
        for line in open(path):
            if line.startswith('{"msc_one_subject"'):
                runs.append(json.loads(line)["msc_one_subject"])
    a, b = runs
    out = {}
    for name, ra in a["summary"].items():
        rb = b["summary"][name]
        se = float(np.hypot(ra["sd"] / np.sqrt(ra["ess_bulk"]), rb["sd"] / np.sqrt(rb["ess_bulk"])))
        out[name] = {"means": [ra["mean"], rb["mean"]], "difference_in_mc_se": (ra["mean"] - rb["mean"]) / se,
                     "sd_ratio": ra["sd"] / rb["sd"]}
    print(json.dumps({"compare": out, "samplers": [a["sampler"], b["sampler"]], "logs": paths[:2]}, indent=1))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["sbc", "reference", "msc", "combine", "compare"])
    ap.add_argument("logs", nargs="*", help="combine: SBC logs whose replicate lines are tested together; compare: "
                                            "two msc logs")
    ap.add_argument("--start", type=int, default=0, help="sbc: first replicate to run (a shard; earlier ones replayed)")
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11, help="sbc: seed of the simulated studies (other data)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up iterations per chain (sbc 300, msc 500)")
    ap.add_argument("--draws", type=int, default=None, help="kept draws per chain (sbc 400, reference 500, msc 1000)")
    ap.add_argument("--long-draws", type=int, default=4000, help="reference: draws of the long run")
    ap.add_argument("--sampler", default="pkpd", choices=["pkpd", "numpyro"], help="msc: the NUTS implementation")
    ap.add_argument("--chain-threads", type=int, default=1, help="msc: threads driving the chains (pkpd sampler)")
    ap.add_argument("--workers", type=int, default=1, help="msc: worker processes for the chains (pkpd sampler)")
    ap.add_argument("--rtol", type=float, default=None, help="msc: the ODE solver's rtol (default: sample's, 1e-8)")
    ap.add_argument("--long-warmup", type=int, default=1000, help="reference: warm-up of the long run")
    a = ap.parse_args()
    if a.what == "sbc":
        sbc(a.replicates, seed=a.seed, n_warmup=a.warmup or 300, n_draws=a.draws or 400, start=a.start)
    elif a.what == "combine":
        combine(a.logs)
    elif a.what == "compare":
        compare(a.logs)
    elif a.what == "reference":
        reference(n_draws=a.draws or 500, long_draws=a.long_draws, long_warmup=a.long_warmup)
    else:
        msc(n_warmup=a.warmup or 500, n_draws=a.draws or 1000, sampler=a.sampler, threads=a.chain_threads,
            workers=a.workers, rtol=a.rtol)
