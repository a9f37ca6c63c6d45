"""FO against FOCE-I, side by side in one run (issue 15: "FO on any of these: <= 1/5 of the FOCE-I time").

Jobs: the theophylline fit of ``benchmarks/nlme.py`` (12 subjects, pk_1cmt_oral, IIV on ka, CL, V, additive error)
and the MSC study of ``benchmarks/nlme_msc.py`` (N = 20 and 100), each fitted with FOCE-I and with FO, covariance
step (sandwich) included, data read and compiled code loaded beforehand. The machine is shared, so the main figure
is the CPU time of the process with one engine thread (``pkpd._native.set_threads(1)``; BLAS is single-threaded
during fits anyway), which other work on the machine changes little; wall time is printed beside it with the load
average. The fits alternate FOCE-I, FO, FOCE-I, FO... (``--repeat`` times each) and the medians are compared.

Prints one JSON line per fit and one summary line per job: ``cpu_ratio`` = median FO CPU seconds / median FOCE-I
CPU seconds (target <= 0.2), the objectives and the numbers of evaluations.

Usage: python benchmarks/nlme_fo.py [--jobs theophylline msc20 msc100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nlme_msc  # noqa: E402

import pkpd  # noqa: E402
from pkpd import _native  # noqa: E402
from pkpd.nonmem import read_nonmem  # noqa: E402

THEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "theoph.csv"


def job(name: str):
    """(model, data, keyword arguments of fit_population) of a job."""
    if name == "theophylline":
        return ("pk_1cmt_oral", read_nonmem(THEO, dose_unit="mg"),
                dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7)))
    n = int(name.removeprefix("msc"))
    model = pkpd.load_model("msc_salvadori")
    data = read_nonmem(nlme_msc.study(n), model, dose_unit="cell/kg")
    return (model, data, dict(iiv=dict(nlme_msc.IIV_INIT), estimate=list(nlme_msc.INIT), init=dict(nlme_msc.INIT),
                              error={"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", nargs="+", default=["theophylline", "msc20", "msc100"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    _native.set_threads(1)
    for name in args.jobs:
        model, data, kw = job(name)
        for method in ("focei", "fo"):                     # compile or load everything, warm the caches
            pkpd.fit_population(model, data, method=method, **kw)
        runs = {"focei": [], "fo": []}
        for _ in range(args.repeat):
            for method in ("focei", "fo"):
                load = os.getloadavg()[0]
                t0, c0 = time.perf_counter(), time.process_time()
                fit = pkpd.fit_population(model, data, method=method, **kw)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                record = {"job": name, "method": method, "cpu_seconds": round(cpu, 4), "wall_seconds": round(wall, 4),
                          "objective": round(fit.objective, 4), "n_evaluations": fit.n_evaluations,
                          "converged": fit.converged, "message": fit.message, "covariance": fit.covariance_message,
                          "load_before": round(load, 2)}
                runs[method].append(record)
                print(json.dumps(record), flush=True)
        med = {m: {k: statistics.median(r[k] for r in v) for k in ("cpu_seconds", "wall_seconds")}
               for m, v in runs.items()}
        print(json.dumps({"benchmark": f"FO vs FOCE-I, {name} (issue 15), 1 engine thread", "job": name,
                          "cpu_seconds_focei": round(med["focei"]["cpu_seconds"], 4),
                          "cpu_seconds_fo": round(med["fo"]["cpu_seconds"], 4),
                          "cpu_ratio": round(med["fo"]["cpu_seconds"] / med["focei"]["cpu_seconds"], 3),
                          "wall_ratio": round(med["fo"]["wall_seconds"] / med["focei"]["wall_seconds"], 3),
                          "objective_focei": runs["focei"][-1]["objective"],
                          "objective_fo": runs["fo"][-1]["objective"],
                          "n_evaluations_focei": runs["focei"][-1]["n_evaluations"],
                          "n_evaluations_fo": runs["fo"][-1]["n_evaluations"], "pkpd_file": pkpd.__file__,
                          "load_after": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
