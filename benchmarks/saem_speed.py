"""SAEM against FOCE-I on the 20-subject MSC study of benchmarks/nlme_msc.py (issue 16's speed criterion: SAEM no
slower than 2x FOCE-I). The study is rebuilt here with the same specification (virtual_population seed 11, IIV k_c
0.09, s_p 0.09, k_i 0.04 from simulate_population seed 5, CV 0.15 on PGE2 and IL-10 from default_rng(8), 8 times)
and both methods start from the same values; each fit is timed after a first call that compiles everything.

The main figure is the process CPU time with one engine thread (``--threads 1``, the default), which a machine
shared with other work cannot inflate; wall time and the load average are printed too. SAEM's time is split into
its parts by timing the private functions the fit calls: the SAEM iterations (``run_saem``), the importance-sampling
objective (``importance_sampling``), the covariance step (``_covariance_step``); the rest (set-up, conditional
modes, diagnostics table) is ``other``; ``of_which_compiled_solves`` is the time inside the compiled batch solves of
SAEM and the importance sampling (part of the first two). One JSON line per fit, then a summary line with the
ratio SAEM / FOCE-I.

Usage::

    python benchmarks/saem_speed.py [--n 20] [--threads 1] [--repeat 1] [--no-covariance] [--is-samples 5000]
                                    [--exploratory 300]     # a fixed exploratory phase instead of the stopping rule
                                    [--smoothing 100]       # fewer smoothing iterations than the default 200
                                    [--label after]         # a "code" field on every line (which code was timed)
"""

from __future__ import annotations

import argparse
import json
import os
import time

ETA_TRUE = {"k_c": 0.09, "s_p": 0.09, "k_i": 0.04}
TIMES = (1.0, 4.0, 12.0, 24.0, 48.0, 72.0, 120.0, 168.0)
INIT = {"k_c": 0.04, "s_p": 3e-3, "EC50": 450.0, "e_max": 15.0, "k_i": 0.25}
IIV_INIT = {"k_c": 0.2, "s_p": 0.2, "k_i": 0.1}

_SPENT: dict = {}


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


def _timed(module, name, label):
    """module.<name>, accumulating its CPU and wall seconds under ``label``."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            cpu, wall = _SPENT.get(label, (0.0, 0.0))
            _SPENT[label] = (cpu + time.process_time() - c0, wall + time.perf_counter() - t0)

    setattr(module, name, wrapper)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--is-samples", type=int, default=None)
    ap.add_argument("--exploratory", type=int, default=None)
    ap.add_argument("--smoothing", type=int, default=200)
    ap.add_argument("--label", default=None)
    ap.add_argument("--no-covariance", action="store_true")
    a = ap.parse_args()

    import pkpd
    from pkpd import _native, importance, saem
    from pkpd.estimation import population_fit
    from pkpd.nonmem import read_nonmem

    _native.set_threads(a.threads)
    _timed(saem, "run_saem", "saem_iterations")
    _timed(importance, "importance_sampling", "importance_sampling")
    _timed(population_fit, "_covariance_step", "covariance")
    from pkpd.estimation import _batch_predict
    for name in ("predict", "predict_sensitivities"):   # the compiled solves inside SAEM and IS (also in the parts)
        _timed(_batch_predict.CompiledPredictor, name, "of_which_compiled_solves")
    model = pkpd.load_model("msc_salvadori")
    data = read_nonmem(study(a.n), model, dose_unit="cell/kg")
    kw = dict(iiv=dict(IIV_INIT), error={"PGE2": pkpd.Proportional(cv=0.3), "IL10": pkpd.Proportional(cv=0.3)},
              estimate=list(INIT), init=dict(INIT), covariance=None if a.no_covariance else "sandwich")
    if a.is_samples is not None:
        kw["is_samples"] = a.is_samples
    pkpd.fit_population(model, data, maxeval=0, **{**kw, "covariance": None})
    pkpd.fit_population(model, data, method="saem", seed=1, saem=saem.SaemSettings(exploratory=2, smoothing=1),
                        **kw)   # compiles SAEM's libraries
    cpu = {"focei": [], "saem": []}
    for _ in range(a.repeat):
        for method in ("focei", "saem"):
            _SPENT.clear()
            load = os.getloadavg()[0]
            c0, t0 = time.process_time(), time.perf_counter()
            extra = ({"saem": saem.SaemSettings(exploratory=a.exploratory, smoothing=a.smoothing)}
                     if method == "saem" else {})
            f = pkpd.fit_population(model, data, method=method, seed=1, **kw, **extra)
            c, w = time.process_time() - c0, time.perf_counter() - t0
            cpu[method].append(c)
            parts = {k: round(v[0], 3) for k, v in _SPENT.items()}
            if parts:
                parts["other"] = round(c - sum(v[0] for k, v in _SPENT.items() if not k.startswith("of_which")), 3)
            print(json.dumps({**({"code": a.label} if a.label else {}), "method": method, "N": a.n,
                              "threads": a.threads, "cpu_seconds": round(c, 3),
                              "wall_seconds": round(w, 3), "load_before": round(load, 2),
                              "load_after": round(os.getloadavg()[0], 2), "cpu_parts": parts,
                              "iterations": (len(f.trace) - 1) if f.trace is not None else f.n_evaluations,
                              "message": f.message, "objective": f.objective,
                              "objective_se": f.objective_se, "objective_method": f.objective_method,
                              "estimates": dict(zip(f.parameters["name"], f.parameters["estimate"].round(5))),
                              "rse_percent": dict(zip(f.parameters["name"], f.parameters["rse_percent"].round(1)))}),
                  flush=True)
    focei, saem_cpu = min(cpu["focei"]), min(cpu["saem"])
    print(json.dumps({**({"code": a.label} if a.label else {}), "summary": True, "threads": a.threads,
                      "focei_cpu_seconds": round(focei, 3), "saem_cpu_seconds": round(saem_cpu, 3),
                      "ratio_cpu": round(saem_cpu / focei, 2), "criterion": "ratio <= 2"}), flush=True)


if __name__ == "__main__":
    main()
