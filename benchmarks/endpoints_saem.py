"""SAEM against Laplace on a joint PK + clinical-endpoint study (issue 17, item 2): every endpoint kind at once.

Model ``tests/data/models/endpoints_exposure.toml``: a 100 mg IV bolus, log-normal IIV on k (0.09) and V (0.04),
conc at 1, 6 and 24 h (log-normal error 0.15); a time to event whose hazard rises with the amount (h0 + h1 A/A50,
follow-up 48 h), a binary response at 24 h logistic in the AUC (b0 + bA AUC/AUC50), a proportional-odds grade at 24
and 48 h (intercepts a1..a3, effect g AUC/AUC50; a2 and a3 fixed) and Poisson counts over 0-24 and 24-48 h (rate
r0). The endpoint parameters have no IIV: SAEM estimates them with its Newton step on their exact likelihood. Both
methods start from the same values (endpoint parameters far from the truth); SAEM's SEs and objective come from
linearisation (Laplace) and importance sampling at its estimates.

Prints, per parameter, the truth, SAEM's and Laplace's estimates, Laplace's SE and (SAEM - Laplace) / SE, and the
objectives and CPU times; with ``--replicates`` > 1 also the mean of each method's estimates over the replicates.

Usage::

    python benchmarks/endpoints_saem.py [--n 40] [--replicates 1] [--seed 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

MODEL = Path(__file__).resolve().parents[1] / "tests" / "data" / "models" / "endpoints_exposure.toml"
TRUE = {"k": 0.1, "V": 10.0, "h0": 0.01, "h1": 0.005, "b0": -1.0, "bA": 0.2, "a1": 1.0, "g": -0.2, "r0": 0.2}
OMEGA = {"k": 0.09, "V": 0.04}
SIGMA = 0.15
SAMPLES = (1.0, 6.0, 24.0)
INIT = {"k": 0.07, "V": 14.0, "h0": 0.03, "h1": 0.002, "b0": 0.0, "bA": 0.0, "a1": 0.0, "g": 0.0, "r0": 0.5}


def study(model, n: int, seed: int):
    import numpy as np
    import pandas as pd

    import pkpd

    rng = np.random.default_rng(seed)
    eta = rng.normal(0.0, np.sqrt(list(OMEGA.values())), size=(n, 2))
    params = {**TRUE, "k": TRUE["k"] * np.exp(eta[:, 0]), "V": TRUE["V"] * np.exp(eta[:, 1])}
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100.0, "mg")), [0.0, *SAMPLES, 48.0], params=params,
                        seed=seed, outcomes=["event", "resp", "grade", "flares"],
                        observe={"resp": [24.0], "grade": [24.0, 48.0], "flares": [24.0, 48.0]})
    conc = sim.outputs["conc"][:, 1:1 + len(SAMPLES)] * np.exp(SIGMA * rng.standard_normal((n, len(SAMPLES))))
    rows = pd.DataFrame([{"ID": i + 1, "TIME": t, "EVID": 0, "MDV": 0.0, "AMT": 0.0, "AMTU": ".", "CMT": ".",
                          "RATE": 0.0, "DV": float(conc[i, j]), "DVID": "conc", "X": 0.0}
                         for i in range(n) for j, t in enumerate(SAMPLES)])
    data = pd.concat([sim.to_dataframe(layout="nonmem"), rows], ignore_index=True)
    return data.sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--replicates", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    import numpy as np

    import pkpd
    from pkpd.saem import SaemSettings

    model = pkpd.load_model(MODEL)
    kw = dict(iiv={"k": 0.05, "V": 0.05}, error={"conc": pkpd.LogNormal(sigma=0.3)}, estimate=list(TRUE),
              init=dict(INIT))
    truth = {**TRUE, "omega2_k": OMEGA["k"], "omega2_V": OMEGA["V"], "sigma": SIGMA}
    est = {"saem": [], "laplace": []}
    for r in range(a.replicates):
        data = study(model, a.n, a.seed + r)
        t0 = time.process_time()
        saem = pkpd.fit_population(model, data, method="saem", seed=r, is_samples=1000,
                                   saem=SaemSettings(exploratory=150, smoothing=100), **kw)
        t1 = time.process_time()
        lap = pkpd.fit_population(model, data, method="laplace", **kw)
        t2 = time.process_time()
        s = saem.parameters.set_index("name")
        p = lap.parameters.set_index("name")
        est["saem"].append([s.loc[k, "estimate"] for k in truth])
        est["laplace"].append([p.loc[k, "estimate"] for k in truth])
        print(f"replicate {r} (seed {a.seed + r}): {a.n} subjects, {lap.n_obs} records; SAEM {t1 - t0:.1f} s CPU "
              f"(incl. its Laplace covariance and IS), Laplace {t2 - t1:.1f} s CPU (converged: {lap.converged})")
        print(f"  objective: SAEM (IS) {saem.objective:.3f} +/- {saem.objective_se:.3f}, Laplace {lap.objective:.3f}")
        print(f"  {'parameter':10s} {'truth':>9s} {'SAEM':>9s} {'Laplace':>9s} {'SE':>9s} {'SAEM-Lap':>9s} "
              f"{'(SAEM-truth)/SE':>15s}")
        for k, v in truth.items():
            se, e_s, e_l = p.loc[k, "se"], s.loc[k, "estimate"], p.loc[k, "estimate"]
            print(f"  {k:10s} {v:9.4g} {e_s:9.4g} {e_l:9.4g} {se:9.3g} {(e_s - e_l) / se:8.2f}σ "
                  f"{(e_s - v) / se:14.2f}σ")
    if a.replicates > 1:
        for method, values in est.items():
            mean = np.mean(values, axis=0)
            print(f"mean of {method} over {a.replicates} replicates: "
                  + ", ".join(f"{k} {m:.4g}" for k, m in zip(truth, mean)))


if __name__ == "__main__":
    main()
