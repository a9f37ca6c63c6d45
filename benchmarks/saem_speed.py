"""SAEM against FOCE-I on the 20-subject MSC study of benchmarks/nlme_msc.py (issue 16's speed criterion: SAEM no
slower than 2x FOCE-I). The study is rebuilt here with the same specification (virtual_population seed 11, IIV k_c
0.09, s_p 0.09, k_i 0.04 from simulate_population seed 5, CV 0.15 on PGE2 and IL-10 from default_rng(8), 8 times)
and both methods start from the same values; each fit is timed after a first call that compiles everything.

Usage::

    python benchmarks/saem_speed.py [--n 20] [--no-covariance]
"""

from __future__ import annotations

import argparse
import json
import time

ETA_TRUE = {"k_c": 0.09, "s_p": 0.09, "k_i": 0.04}
TIMES = (1.0, 4.0, 12.0, 24.0, 48.0, 72.0, 120.0, 168.0)
INIT = {"k_c": 0.04, "s_p": 3e-3, "EC50": 450.0, "e_max": 15.0, "k_i": 0.25}
IIV_INIT = {"k_c": 0.2, "s_p": 0.2, "k_i": 0.1}


def study(n: int):
    import numpy as np
    import pandas as pd

    import pkpd

    model = pkpd.load_model("msc_salvadori")
    pop = pkpd.virtual_population(n, {"WT": pkpd.LogNormalCovariate(70, 0.2)}, criteria={"WT": (40, None)}, seed=11)
    sim = pkpd.simulate_population(model, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), list(TIMES), pop,
                                   iiv=pkpd.IIV(dict(ETA_TRUE)), seed=5, outputs=["PGE2", "IL10"]).simulation
    rng = np.random.default_rng(8)
    dv = {o: pkpd.Proportional(cv=0.15).sample(sim.outputs[o], rng) for o in ("PGE2", "IL10")}
    wt = pop.table["WT"].to_numpy()
    rows = []
    for i in range(n):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=2e6, EVID=1, CMT="iv", MDV=1, DVID=".", WT=wt[i]))
        for j, t in enumerate(TIMES):
            for o in ("PGE2", "IL10"):
                rows.append(dict(ID=i + 1, TIME=t, DV=float(dv[o][i, j]), AMT=0.0, EVID=0, CMT=".", MDV=0, DVID=o,
                                 WT=wt[i]))
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--no-covariance", action="store_true")
    a = ap.parse_args()
    import os

    import pkpd
    from pkpd.nonmem import read_nonmem

    model = pkpd.load_model("msc_salvadori")
    data = read_nonmem(study(a.n), model, dose_unit="cell/kg")
    kw = dict(iiv=dict(IIV_INIT), error={"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)},
              estimate=list(INIT), init=dict(INIT), covariance=None if a.no_covariance else "sandwich")
    pkpd.fit_population(model, data, maxeval=0, **{**kw, "covariance": None})
    for method in ("focei", "saem"):
        t0 = time.perf_counter()
        f = pkpd.fit_population(model, data, method=method, seed=1, **kw)
        print(json.dumps({"method": method, "N": a.n, "seconds": round(time.perf_counter() - t0, 2),
                          "objective": f.objective, "objective_method": f.objective_method,
                          "load_before": os.getloadavg()[0],
                          "estimates": dict(zip(f.parameters["name"], f.parameters["estimate"].round(5)))}),
              flush=True)


if __name__ == "__main__":
    main()
