"""Scale-out with Dask (issue 9): bootstrap speed-up on 2 local workers vs 1, and Dask's overhead for a large summary.

(a) A parametric bootstrap (``--replicates``, default 80) of a one-compartment oral fit of theophylline subject 1
    (individual fit, additive error; one engine thread per process): serially in this process, on a local pool of 2
    (``workers=2``), with the default (``workers=None``), and on a ``LocalCluster`` with 1 and with 2 single-threaded
    worker processes. Speed-up = 1-worker / 2-worker wall time on the cluster (ideal: 2).
(b) A 10**5-subject ``simulate_summary`` of msc_salvadori (log-normal IIV 0.3 on k_c, s_p, EC50 and k_i; 2e6
    cells/kg IV to 70-kg subjects; IL-10 hourly over 0-168 h; 5/50/95th percentiles and per-subject AUC) with the
    local engine (numba threads on every core) vs on a ``LocalCluster`` of as many single-threaded workers as
    cores: Dask overhead = cluster / local - 1 (target <= 20 %). Both results are checked to be identical.

Every timed call follows a warm-up call (compiled models loaded in every process). Prints one JSON line per
measurement, then a summary line. On a shared machine the figures move with the load (reported).

Usage: python benchmarks/scale_out.py [--replicates 80] [--subjects 100000] [--chunk-size 10000]
(Not named distributed.py: a script of that name would shadow the ``distributed`` package it imports.)
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pkpd

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261125


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def bootstrap_part(n: int) -> dict:
    from distributed import Client, LocalCluster

    th = pd.read_csv(ROOT / "tests" / "data" / "theoph.csv").assign(AMTU="mg")  # AMT in mg
    fit = pkpd.fit(pkpd.load_model("pk_1cmt_oral"), th[th.ID == 1], estimate=["ka", "CL", "V"],
                   error={"conc": pkpd.Additive(sd=1.0)})
    # One engine thread per process throughout: a replicate fit solves one subject at a time, where numba's thread
    # pool only adds synchronisation (and, on a loaded machine, waits), and the 1- vs 2-worker comparison must not
    # give the single worker two engine threads. Worker processes inherit the environment variable.
    import numba

    numba.set_num_threads(1)
    os.environ["NUMBA_NUM_THREADS"] = "1"
    out = {}
    pkpd.bootstrap(fit, 4, seed=1, workers=1, progress=False)
    out["serial_s"], ref = timed(lambda: pkpd.bootstrap(fit, n, seed=SEED, workers=1, progress=False))
    out["pool2_s"], pool = timed(lambda: pkpd.bootstrap(fit, n, seed=SEED, workers=2, progress=False))
    out["default_s"], auto = timed(lambda: pkpd.bootstrap(fit, n, seed=SEED, progress=False))
    assert np.array_equal(ref.samples, pool.samples) and np.array_equal(ref.samples, auto.samples)
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
                Client(cl) as client:
            pkpd.bootstrap(fit, 2 * workers, seed=1, client=client, progress=False)  # warm-up: models loaded
            out[f"dask{workers}_s"], res = timed(
                lambda: pkpd.bootstrap(fit, n, seed=SEED, client=client, progress=False))  # noqa: B023
            assert np.array_equal(ref.samples, res.samples)
    del os.environ["NUMBA_NUM_THREADS"]
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    out["speedup_dask_2_vs_1"] = out["dask1_s"] / out["dask2_s"]
    emit(part="bootstrap", replicates=n, **{k: round(v, 3) for k, v in out.items()})
    return out


def summary_part(n: int, chunk_size: int) -> dict:
    from distributed import Client, LocalCluster

    m = pkpd.load_model("msc_salvadori")
    rng = np.random.default_rng(SEED)
    params = {k: m.parameter(k).value * np.exp(0.3 * rng.standard_normal(n)) for k in ("k_c", "s_p", "EC50", "k_i")}
    regimen = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    times = np.arange(0, 169.0)
    kw = dict(params=params, covariates={"WT": 70.0}, outputs=["IL10"], metrics=[pkpd.AUC("IL10")],
              chunk_size=chunk_size, progress=False)
    warm = {k: v[:200] for k, v in params.items()}
    pkpd.simulate_summary(m, regimen, times, **(kw | {"params": warm}))
    out = {}
    out["local_s"], local = timed(lambda: pkpd.simulate_summary(m, regimen, times, **kw), repeat=2)
    cores = len(os.sched_getaffinity(0))
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        pkpd.simulate_summary(m, regimen, times, client=client, **(kw | {"params": warm, "chunk_size": 100}))
        out["dask_s"], remote = timed(lambda: pkpd.simulate_summary(m, regimen, times, client=client, **kw),
                                      repeat=2)
    identical = (np.array_equal(local.percentiles, remote.percentiles) and np.array_equal(local.mean, remote.mean)
                 and np.array_equal(local.metrics["AUC(IL10)"], remote.metrics["AUC(IL10)"]))
    out["overhead_percent"] = 100 * (out["dask_s"] / out["local_s"] - 1)
    emit(part="simulate_summary", subjects=n, chunk_size=chunk_size, workers=cores, identical=identical,
         **{k: round(v, 3) for k, v in out.items()})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=80)
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--chunk-size", type=int, default=10_000)
    args = ap.parse_args()
    boot = bootstrap_part(args.replicates)
    summ = summary_part(args.subjects, args.chunk_size)
    emit(part="summary", cores=len(os.sched_getaffinity(0)), load_average=[round(x, 2) for x in os.getloadavg()],
         bootstrap_speedup_2_vs_1=round(boot["speedup_dask_2_vs_1"], 2),
         dask_overhead_percent=round(summ["overhead_percent"], 1))


if __name__ == "__main__":
    main()
