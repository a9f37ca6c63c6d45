"""Population-estimation benchmark (issue 15): a simulated MSC study fitted with FOCE-I, FO and Laplace.

Study (the issue's spec): model ``msc_salvadori``; subjects from
``virtual_population(N, {"WT": LogNormalCovariate(70, 0.2)}, criteria={"WT": (40, None)}, seed=11)``; one IV bolus of
2e6 cell/kg; PGE2 and IL-10 observed at 1, 4, 12, 24, 48, 72, 120 and 168 h; true log-normal IIV with variances
k_c 0.09, s_p 0.09, k_i 0.04 (``simulate_population(..., seed=5)``) and proportional error CV 0.15 on both outputs
(``numpy.random.default_rng(8)``, PGE2 drawn first). The fit starts from k_c 0.04, s_p 3e-3, EC50 450, e_max 15,
k_i 0.25, IIV variances 0.2/0.2/0.1 and CV 0.3 on both outputs, and estimates k_c, s_p, EC50, e_max and k_i (and
Omega and both CVs), with the covariance step (sandwich) unless ``--no-covariance``.

Every fit runs in a fresh subprocess with a wall-clock limit (``--timeout``): a fit that does not finish prints a
line with ``"finished": false``. ``--pkpd-path DIR`` runs the same job with the pkpd found in DIR (e.g. an export
of an older commit), so that old and new code are timed side by side in one run; ``--threads`` sets the engine's
threads (``PKPD_NUM_THREADS``). Prints one JSON line per fit: seconds (wall time of ``fit_population``, the compiled
model already in the cache), CPU seconds of the process (all threads: a figure that other work on the machine
changes little), OFV, evaluations, covariance message, load average of the machine before the fit.

Usage::

    python benchmarks/nlme_msc.py                                  # FOCE-I, N = 20
    python benchmarks/nlme_msc.py --n 20 100 1000 --method focei fo laplace --timeout 900
    python benchmarks/nlme_msc.py --n 20 --threads 1 2             # scaling over cores
    python benchmarks/nlme_msc.py --n 20 --pkpd-path /tmp/pkpd_before --timeout 600
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ETA_TRUE = {"k_c": 0.09, "s_p": 0.09, "k_i": 0.04}
TIMES = (1.0, 4.0, 12.0, 24.0, 48.0, 72.0, 120.0, 168.0)
INIT = {"k_c": 0.04, "s_p": 3e-3, "EC50": 450.0, "e_max": 15.0, "k_i": 0.25}
IIV_INIT = {"k_c": 0.2, "s_p": 0.2, "k_i": 0.1}
DOSE = 2e6  # cell/kg


def study(n: int):
    """The simulated study as a NONMEM table (pandas DataFrame; AMT in cell/kg, WT per subject)."""
    import numpy as np
    import pandas as pd

    import pkpd

    model = pkpd.load_model("msc_salvadori")
    pop = pkpd.virtual_population(n, {"WT": pkpd.LogNormalCovariate(70, 0.2)}, criteria={"WT": (40, None)}, seed=11)
    regimen = pkpd.Regimen.single(pkpd.Dose(DOSE, "cell/kg"))
    sim = pkpd.simulate_population(model, regimen, list(TIMES), pop, iiv=pkpd.IIV(dict(ETA_TRUE)), seed=5,
                                   outputs=["PGE2", "IL10"]).simulation
    rng = np.random.default_rng(8)
    err = pkpd.Proportional(cv=0.15)
    dv = {o: err.sample(sim.outputs[o], rng) for o in ("PGE2", "IL10")}
    wt = pop.table["WT"].to_numpy()
    rows = []
    for i in range(n):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=DOSE, EVID=1, CMT="iv", MDV=1, DVID=".", WT=wt[i]))
        for j, t in enumerate(TIMES):
            for o in ("PGE2", "IL10"):
                rows.append(dict(ID=i + 1, TIME=t, DV=float(dv[o][i, j]), AMT=0.0, EVID=0, CMT=".", MDV=0, DVID=o,
                                 WT=wt[i]))
    return pd.DataFrame(rows)


def fit(n: int, method: str, covariance: bool):
    """Time one fit (after reading the data and compiling the model); returns the JSON record."""
    import pkpd
    from pkpd.nonmem import read_nonmem

    model = pkpd.load_model("msc_salvadori")
    data = read_nonmem(study(n), model, dose_unit="cell/kg")
    error = {"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)}
    kw = dict(iiv=dict(IIV_INIT), error=error, method=method, estimate=list(INIT), init=dict(INIT))
    pkpd.fit_population(model, data, maxeval=0, **kw)      # compiles (or loads) everything the fit needs
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    f = pkpd.fit_population(model, data, covariance="sandwich" if covariance else None, **kw)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    p = f.parameters.set_index("name")
    return {"pkpd_file": pkpd.__file__, "N": n, "method": method, "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "objective": round(f.objective, 4), "n_evaluations": f.n_evaluations, "converged": bool(f.converged),
            "message": f.message,
            "covariance": f.covariance_message if covariance else None, "load_before": round(load, 2),
            "estimates": {k: float(v) for k, v in p["estimate"].items()}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[20])
    ap.add_argument("--method", nargs="+", default=["focei"], choices=["focei", "foce", "fo", "laplace"])
    ap.add_argument("--threads", type=int, nargs="+", default=[None])
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per fit (default 1800)")
    ap.add_argument("--pkpd-path", default=None, help="run the pkpd found in this folder instead")
    ap.add_argument("--no-covariance", action="store_true")
    ap.add_argument("--label", default="")
    ap.add_argument("--_child", nargs=3, metavar=("N", "METHOD", "COV"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        n, method, cov = args._child
        print(json.dumps(fit(int(n), method, cov == "1")), flush=True)
        return
    for n in args.n:
        for method in args.method:
            for threads in args.threads:
                env = dict(os.environ)
                if threads:
                    env["PKPD_NUM_THREADS"] = str(threads)
                    env["NUMBA_NUM_THREADS"] = str(threads)
                if args.pkpd_path:
                    env["PYTHONPATH"] = os.path.abspath(args.pkpd_path) + os.pathsep + env.get("PYTHONPATH", "")
                cmd = [sys.executable, os.path.abspath(__file__), "--_child", str(n), method,
                       "0" if args.no_covariance else "1"]
                record = {"benchmark": "msc_salvadori population fit (issue 15)", "label": args.label,
                          "pkpd_path": args.pkpd_path or "this checkout", "threads": threads or "default"}
                t0 = time.perf_counter()
                try:
                    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout,
                                          cwd=args.pkpd_path or None)
                except subprocess.TimeoutExpired:
                    record |= {"N": n, "method": method, "finished": False,
                               "seconds": f"did not finish in {args.timeout:g} s"}
                    print(json.dumps(record), flush=True)
                    continue
                if done.returncode != 0:
                    record |= {"N": n, "method": method, "finished": False, "error": done.stderr[-1500:]}
                else:
                    record |= {"finished": True, **json.loads(done.stdout.strip().splitlines()[-1])}
                record["process_seconds"] = round(time.perf_counter() - t0, 2)
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
