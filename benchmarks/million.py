"""Millions of subjects in bounded memory (issue 8, item 3): pkpd.simulate_summary on msc_salvadori.

10**6 subjects with log-normal IIV (omega 0.3) on k_c, s_p, EC50 and k_i, one IV bolus of 2e6 cells/kg to 70-kg
subjects, outputs hourly from 0 to 336 h, rtol 1e-6 / atol 1e-9; kept: the 5th, 50th and 95th percentiles, mean and
SD of every output at every hour, and every subject's AUC of IL-10. Targets: <= 60 s and <= 2 GB peak memory.

Prints one JSON line: wall seconds of the summary (after a small warm-up call that loads or compiles the model and
the summary kernels, reported as setup_seconds), subjects per second, peak resident memory of the process
(``resource.getrusage(...).ru_maxrss``), peak of Python/numpy allocations during the run (``tracemalloc``), the
seconds of one bare ``pkpd.simulate`` of a chunk (for the share of time spent summarising), and the machine's load.

Usage: python benchmarks/million.py [--n 1000000] [--chunk-size 20000]
"""

import argparse
import json
import os
import resource
import time
import tracemalloc

import numpy as np

import pkpd

SEED = 20261125
OMEGA = 0.3
IIV = ("k_c", "s_p", "EC50", "k_i")


def population(model, n):
    rng = np.random.default_rng(SEED)
    return {k: model.parameter(k).value * np.exp(OMEGA * rng.standard_normal(n)) for k in IIV}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of subjects (default 1,000,000)")
    ap.add_argument("--chunk-size", type=int, default=20_000, help="subjects per chunk (default 20,000)")
    args = ap.parse_args()

    model = pkpd.load_model("msc_salvadori")
    times = np.arange(0.0, 337.0)
    regimen = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    settings = pkpd.SolverSettings(rtol=1e-6, atol=1e-9)
    metrics = [pkpd.AUC("IL10")]
    common = dict(covariates={"WT": 70.0}, settings=settings, metrics=metrics)

    t0 = time.perf_counter()  # warm-up: model and kernels loaded (or compiled) once, on a two-chunk run
    pkpd.simulate_summary(model, regimen, times, params=population(model, 20), chunk_size=10, progress=False,
                          **common)
    setup = time.perf_counter() - t0

    params = population(model, args.n)
    chunk = {k: v[:min(args.chunk_size, args.n)] for k, v in params.items()}
    t0 = time.perf_counter()
    pkpd.simulate(model, regimen, times, params=chunk, states=False, covariates={"WT": 70.0}, settings=settings)
    bare_chunk = time.perf_counter() - t0

    tracemalloc.start()
    t0 = time.perf_counter()
    summary = pkpd.simulate_summary(model, regimen, times, params=params, chunk_size=args.chunk_size, **common)
    seconds = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux

    auc = summary.metrics["AUC(IL10)"]
    print(json.dumps({
        "tool": f"pkpd {pkpd.__version__}", "model": "msc_salvadori", "N": args.n, "chunk_size": args.chunk_size,
        "n_chunks": summary.n_chunks, "n_times": times.size, "n_outputs": len(summary.outputs),
        "seconds": round(seconds, 2), "setup_seconds": round(setup, 2),
        "subjects_per_s": round(args.n / seconds, 1),
        "bare_simulate_chunk_seconds": round(bare_chunk, 3),
        "summary_share": round(max(0.0, 1 - bare_chunk * summary.n_chunks / seconds), 3),
        "peak_rss_MB": round(rss_peak, 1), "tracemalloc_peak_MB": round(traced_peak / 2**20, 1),
        "percentile_error": summary.percentile_error, "n_failed": summary.n_failed,
        "auc_il10_median_pg_h_per_mL": round(float(np.median(auc)), 2),
        "targets": {"seconds": 60, "peak_MB": 2048},
        "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
    }), flush=True)


if __name__ == "__main__":
    main()
