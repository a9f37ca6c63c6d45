"""Population-estimation benchmark (issues 5 and 15): the theophylline FOCE-I fit with the covariance step, timed.

Data: tests/data/theoph.csv (12 subjects, 132 concentrations). Model: pk_1cmt_oral, log-normal IIV on ka, CL and V,
additive error, initial values ka 1.5, CL 2.8, V 32 (model file), omega^2 0.6, 0.3, 0.1, sd 0.7 (nlmixr2's example).
Prints one JSON line per method: wall seconds of the whole fit including the covariance step (median of
``--repeat`` fits after a warm-up fit that loads the compiled code) and the process's CPU seconds (all threads), the
objective (NONMEM OFV; nlmixr2 116.8036 for FOCE-I), the number of parameter sets evaluated and the load average.

``--pkpd-path DIR`` runs the pkpd found in DIR instead (e.g. an export of an older commit), for before/after
figures measured in one run.

Usage: python benchmarks/nlme.py [--method focei fo] [--repeat 3] [--pkpd-path DIR]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "theoph.csv"


def run(method: str):
    import pkpd
    from pkpd.nonmem import read_nonmem

    # the dose unit is stated (issue 19: never guessed); older checkouts accept dose_unit= too
    return pkpd.fit_population("pk_1cmt_oral", read_nonmem(DATA, dose_unit="mg"), iiv={"ka": 0.6, "CL": 0.3, "V": 0.1},
                               error=pkpd.Additive(sd=0.7), method=method)


def measure(method: str, repeat: int) -> dict:
    import pkpd

    t0 = time.perf_counter()
    fit = run(method)
    cold = time.perf_counter() - t0
    load = os.getloadavg()[0]
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fit = run(method)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"benchmark": f"theophylline {method.upper()} + covariance (pk_1cmt_oral, 3 IIV, additive error)",
            "pkpd_file": pkpd.__file__, "method": method, "seconds": round(statistics.median(times), 3),
            "all_seconds": [round(t, 3) for t in times], "cpu_seconds": round(statistics.median(cpu), 3),
            "cold_seconds": round(cold, 3),
            "objective": round(fit.objective, 4), "n_parameter_sets": fit.n_evaluations, "converged": fit.converged,
            "covariance": fit.covariance_message, "load_before": round(load, 2)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", nargs="+", default=["focei"], choices=["focei", "foce", "fo", "laplace"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pkpd-path", default=None)
    args = ap.parse_args()
    if args.pkpd_path:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.pkpd_path) + os.pathsep + os.environ.get("PYTHONPATH",
                                                                                                        ""))
        cmd = [sys.executable, os.path.abspath(__file__), "--repeat", str(args.repeat), "--method", *args.method]
        sys.exit(subprocess.run(cmd, env=env, cwd=args.pkpd_path).returncode)
    for m in args.method:
        print(json.dumps(measure(m, args.repeat)), flush=True)
