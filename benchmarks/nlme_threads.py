"""Scaling over cores of a population fit (issue 15: >= 1.7x on 2 cores), measured so that a loaded machine cannot
fake it: the MSC study's FOCE-I fit (``benchmarks/nlme_msc.py``, covariance step included) with 1 and with 2 engine
threads, alternating, ``--repeat`` times each. Per fit: wall seconds, CPU seconds of the process (all threads), and
the CPU seconds spent inside the compiled calls that run the subjects on parallel threads (EBE search, sensitivity
solves, and the per-subject assembly of the objective and its gradient where the code has it), timed at the C entry
points (the Python that prepares their arguments counts as serial). From these:

* ``parallel_fraction`` p: the share of the fit's CPU time inside the parallel calls (with 1 thread), and
  ``serial_ms_per_evaluation``: the CPU time outside them per objective evaluation;
* ``amdahl_2_cores`` = 1 / ((1 - p) + p / 2): the speed-up on 2 idle cores if the parallel calls scale perfectly;
* ``cpu_overhead_2_threads``: extra CPU time the second thread costs (contention, start-up), which lowers it;
* ``speedup_wall``: the measured wall-clock ratio, which means something only when the load average (printed) is
  below about 1, i.e. when a second core is free.

Prints one JSON line per fit and a summary line.

Usage: python benchmarks/nlme_threads.py [--n 100] [--method focei] [--repeat 2]
"""

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
from pkpd.estimation import _compiled  # noqa: E402
from pkpd.nonmem import read_nonmem  # noqa: E402

_SPENT: dict = {}
# the compiled entry points that run the subjects on the engine's threads (those this version of pkpd has), timed at
# the C call itself: the Python around them (argument checks, array copies) counts as serial work
ENTRY_POINTS = {"_predict": "predict", "_inner": "inner", "_assemble": "assemble"}


def _timed(name, function):
    """A C entry point, accumulating its wall and CPU seconds in _SPENT under ``name``."""

    def wrapper(*args):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return function(*args)
        finally:
            wall, cpu = _SPENT.get(name, (0.0, 0.0))
            _SPENT[name] = (wall + time.perf_counter() - t0, cpu + time.process_time() - c0)

    return wrapper


def _timing_entry_points():
    """Make every CompiledSystem built from now on time its entry points."""
    original = _compiled.CompiledSystem.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for attr, name in ENTRY_POINTS.items():
            if hasattr(self, attr):
                setattr(self, attr, _timed(name, getattr(self, attr)))

    _compiled.CompiledSystem.__init__ = init


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--method", default="focei", choices=["focei", "foce", "fo", "laplace"])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    _compiled.compiled_system.cache_clear()
    _timing_entry_points()
    model = pkpd.load_model("msc_salvadori")
    data = read_nonmem(nlme_msc.study(args.n), model, dose_unit="cell/kg")
    kw = dict(iiv=dict(nlme_msc.IIV_INIT), estimate=list(nlme_msc.INIT), init=dict(nlme_msc.INIT),
              error={"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)}, method=args.method)
    pkpd.fit_population(model, data, maxeval=0, **kw)          # compiles (or loads) everything the fit needs
    runs = {1: [], 2: []}
    for _ in range(args.repeat):
        for threads in (1, 2):
            _native.set_threads(threads)
            _SPENT.clear()
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            fit = pkpd.fit_population(model, data, **kw)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            parallel = sum(c for _, c in _SPENT.values())
            record = {"N": args.n, "method": args.method, "threads": threads, "wall_seconds": round(wall, 3),
                      "load_after_fit": round(os.getloadavg()[0], 2),
                      "cpu_seconds": round(cpu, 3), "cpu_seconds_parallel_calls": round(parallel, 3),
                      "objective": round(fit.objective, 4), "n_evaluations": fit.n_evaluations,
                      "load_before": round(load, 2)}
            runs[threads].append(record)
            print(json.dumps(record), flush=True)
    med = {t: {k: statistics.median(r[k] for r in v) for k in ("wall_seconds", "cpu_seconds",
                                                               "cpu_seconds_parallel_calls")}
           for t, v in runs.items()}
    p = med[1]["cpu_seconds_parallel_calls"] / med[1]["cpu_seconds"]
    serial = (med[1]["cpu_seconds"] - med[1]["cpu_seconds_parallel_calls"]) / runs[1][0]["n_evaluations"]
    print(json.dumps({"benchmark": f"MSC {args.method.upper()} fit, 1 vs 2 threads (issue 15)", "N": args.n,
                      "parallel_fraction": round(p, 3), "serial_ms_per_evaluation": round(1e3 * serial, 2),
                      "amdahl_2_cores": round(1.0 / ((1.0 - p) + p / 2.0), 2),
                      "cpu_overhead_2_threads": round(med[2]["cpu_seconds"] / med[1]["cpu_seconds"] - 1.0, 3),
                      "speedup_wall": round(med[1]["wall_seconds"] / med[2]["wall_seconds"], 2),
                      "load_after": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
