"""Censored (M3) individual fits are at the maximum of the censored likelihood (issue 20, rule 6).

The reference is independent of pkpd: the censored -2 log-likelihood of the closed-form one-compartment oral model
(Bateman function), written here with scipy.stats and minimised with scipy.optimize.minimize (Nelder-Mead, no
gradients). A wrong censored gradient in pkpd's Gauss-Newton fitter can stop it away from that optimum while it
still reports convergence; the objective at its estimates would still be right, so only the optimum shows it.
Data: theophylline subject 1 (tests/data/theoph.csv) with an LLOQ of 4 mg/L (2 of the 10 records after t = 0 censored).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import pkpd

THEOPH = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "theoph.csv")
LLOQ = 4.0


def bateman(t, dose, ka, cl, v):
    ke = cl / v
    return dose * ka / (v * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))


def censored_m2ll(y, cens, f, sd, log_scale=False):
    """-2 log L under M3: densities of the quantified records, P(Y < LLOQ) of the censored ones."""
    if log_scale:
        quant = stats.lognorm.logpdf(y[~cens], s=sd, scale=f[~cens])
        below = stats.lognorm.logcdf(LLOQ, s=sd, scale=f[cens])
    else:
        quant = stats.norm.logpdf(y[~cens], f[~cens], sd[~cens])
        below = stats.norm.logcdf(LLOQ, f[cens], sd[cens])
    return -2 * (quant.sum() + below.sum())


CASES = {
    "additive": (pkpd.Additive(sd=1.0), "sd", lambda f, e: np.full_like(f, e), False),
    "proportional": (pkpd.Proportional(cv=0.2), "cv", lambda f, e: e * f, False),
    "lognormal": (pkpd.LogNormal(sigma=0.2), "sigma", lambda f, e: e, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_m3_fit_is_at_the_censored_likelihood_optimum(case):
    error, err_name, sd_of, log_scale = CASES[case]
    sub = THEOPH[THEOPH.ID == 1]
    sub = sub[(sub.EVID == 1) | (sub.TIME > 0)].copy()   # the prediction at t = 0 is 0 (no proportional SD there)
    sub["LLOQ"] = np.where(sub.EVID == 0, LLOQ, np.nan)
    obs = sub[sub.EVID == 0]
    t, y = obs.TIME.to_numpy(float), obs.DV.to_numpy(float)
    dose = float(sub.AMT.iloc[0])
    cens = y < LLOQ
    assert cens.sum() == 2

    def m2ll(p):
        ka, cl, v, e = np.exp(p)
        f = bateman(t, dose, ka, cl, v)
        return censored_m2ll(y, cens, f, sd_of(f, e), log_scale)

    ref = optimize.minimize(m2ll, np.log([1.5, 2.8, 32.0, 0.5]), method="Nelder-Mead",
                            options=dict(xatol=1e-10, fatol=1e-12, maxiter=40000, maxfev=80000))
    assert ref.success
    model = pkpd.load_model("pk_1cmt_oral")
    res = pkpd.fit(model, pkpd.nonmem.read_nonmem(sub, model, dose_unit="mg"), estimate=["ka", "CL", "V"],
                   error={"conc": error}, blq="M3")
    assert res.converged and res.n_censored == 2
    assert res.objective == pytest.approx(ref.fun, abs=1e-6)
    for name, expected in zip(("ka", "CL", "V", f"conc.{err_name}"), np.exp(ref.x)):
        assert res.estimates[name] == pytest.approx(expected, rel=1e-4), name
