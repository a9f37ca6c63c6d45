"""Parallel efficiency of the population objective's compiled parts (issue 15): one evaluation of the MSC study's
FOCE-I objective and gradient (EBE search from 0 for every subject, then the second-order sensitivity solve), timed
with 1 and with 2 engine threads, interleaved, ``--repeat`` times each. The minimum over repeats is the time when the
machine lent both cores; the median shows the load. Prints one JSON line.

Usage: python benchmarks/nlme_threads.py [--n 100] [--repeat 15]
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
import numpy as np  # noqa: E402

import pkpd  # noqa: E402
from pkpd import _native  # noqa: E402
from pkpd.estimation import population_fit as pf  # noqa: E402
from pkpd.nonmem import read_nonmem  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    model = pkpd.load_model("msc_salvadori")
    data = read_nonmem(nlme_msc.study(args.n), model, dose_unit="cell/kg")
    error = {"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)}
    _, _, _, layout, prob = pf._setup(model, data, dict(nlme_msc.IIV_INIT), error, "focei", list(nlme_msc.INIT),
                                      None, None, dict(nlme_msc.INIT))
    engine = pf._objective_engine(prob, layout)
    engine.evaluate(layout.x0, None)                        # compile or load, settle the solver methods
    times = {1: [], 2: []}
    for _ in range(args.repeat):
        for threads in (1, 2):
            _native.set_threads(threads)
            engine._memos = []
            t0 = time.perf_counter()
            ev = engine.evaluate(layout.x0, None)
            times[threads].append(time.perf_counter() - t0)
    assert np.all(ev.status == 0)
    print(json.dumps({"benchmark": "MSC FOCE-I objective + gradient, one evaluation from eta = 0", "N": args.n,
                      "min_seconds": {t: round(min(v), 4) for t, v in times.items()},
                      "median_seconds": {t: round(statistics.median(v), 4) for t, v in times.items()},
                      "speedup_min": round(min(times[1]) / min(times[2]), 2),
                      "speedup_median": round(statistics.median(times[1]) / statistics.median(times[2]), 2),
                      "load": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
