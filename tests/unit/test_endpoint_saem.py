"""SAEM and the importance-sampling likelihood on data with records of clinical endpoints (issue 17, item 2).

The checks: with a vanishing Omega the importance-sampling -2 log L is the closed-form likelihood of the data at the
typical values; with real IIV it agrees with the Laplace objective (and with itself across seeds within its
Monte-Carlo SE); SAEM recovers the parameters of a simulated joint PK + time-to-event study, including the hazard's
typical values without IIV (SAEM's Newton step), and agrees with the Laplace fit; on endpoint records alone with IIV
on the hazard (the Metropolis-Hastings kernels' likelihood) it agrees with Laplace.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError
from pkpd.saem import SaemSettings

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml"
M = pkpd.load_model(MODEL_FILE)
TRUE = {"k": 0.1, "V": 10.0, "h0": 0.01, "h1": 0.005}   # hazard h0 + h1 A / A50 (A50 = 10 mg), A = 100 e^(-k t) mg
SIGMA = 0.15                                            # log-normal residual error of conc
DOSE = 100.0
SAMPLES = (1.0, 6.0, 24.0)
FOLLOW_UP = 48.0


def joint_study(n: int, seed: int, omega=(0.09, 0.04)) -> pd.DataFrame:
    """A 100 mg IV bolus, conc at 1, 6, 24 h (log-normal error) and one event (hazard rising with the amount A),
    censored at 48 h; log-normal IIV on k and V."""
    rng = np.random.default_rng(seed)
    eta = rng.normal(0.0, np.sqrt(omega), size=(n, 2))
    params = {"k": TRUE["k"] * np.exp(eta[:, 0]), "V": TRUE["V"] * np.exp(eta[:, 1]), "h0": TRUE["h0"],
              "h1": TRUE["h1"]}
    sim = pkpd.simulate(M, pkpd.Regimen.single(pkpd.Dose(DOSE, "mg")), [0.0, *SAMPLES, FOLLOW_UP], params=params,
                        seed=seed, outcomes=["event"])
    conc = sim.outputs["conc"][:, 1:1 + len(SAMPLES)] * np.exp(SIGMA * rng.standard_normal((n, len(SAMPLES))))
    rows = pd.DataFrame([{"ID": i + 1, "TIME": t, "EVID": 0, "MDV": 0.0, "AMT": 0.0, "AMTU": ".", "CMT": ".",
                          "RATE": 0.0, "DV": float(conc[i, j]), "DVID": "conc", "X": 0.0}
                         for i in range(n) for j, t in enumerate(SAMPLES)])
    data = pd.concat([sim.to_dataframe(layout="nonmem"), rows], ignore_index=True)
    return data.sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)


def closed_form_minus2ll(data: pd.DataFrame, k: float, V: float, h0: float, h1: float) -> float:
    """-2 log L of the joint data at one parameter set: log-normal conc (with its constants) and the exact event
    likelihood of the hazard h0 + h1 (D/A50) e^(-k t)."""
    obs = data[data.EVID == 0]
    conc = obs[obs.DVID == "conc"]
    y, t = conc.DV.to_numpy(), conc.TIME.to_numpy()
    z = np.log(y) - np.log(DOSE / V * np.exp(-k * t))
    pk = np.sum(z ** 2 / SIGMA ** 2 + np.log(2 * np.pi * SIGMA ** 2) + 2 * np.log(y))
    ev = obs[obs.DVID == "event"]
    t, d = ev.TIME.to_numpy(), ev.DV.to_numpy()
    a50 = dict(zip(M.parameter_names, (p.value for p in M.parameters)))["A50"]
    hazard = h0 + h1 * DOSE / a50 * np.exp(-k * t)
    cumulative = h0 * t + h1 * DOSE / (a50 * k) * (1 - np.exp(-k * t))
    return float(pk - 2 * np.sum(d * np.log(hazard) - cumulative))


ERROR = {"conc": pkpd.LogNormal(sigma=SIGMA)}


# ------------------------------------------------------------------------------------------- importance sampling
def test_importance_sampling_with_a_vanishing_omega_is_the_closed_form_likelihood():
    data = joint_study(12, seed=5)
    fit = pkpd.fit_population(M, data, iiv={"k": 1e-9, "V": 1e-9}, error=ERROR, method="laplace", objective="is",
                              estimate=["k", "V", "h0", "h1"], init=TRUE, maxeval=0, is_samples=2000, seed=1,
                              covariance=None)
    expected = closed_form_minus2ll(data, **TRUE)
    # (the Student-t proposal around a Gaussian posterior leaves a Monte-Carlo error whatever the size of Omega)
    assert fit.objective_method == "is" and 0 < fit.objective_se < 0.1
    assert abs(fit.minus2ll - expected) < 3 * fit.objective_se



def test_importance_sampling_agrees_with_laplace_and_with_itself_on_joint_pk_and_event_data():
    data = joint_study(16, seed=6)
    kw = dict(iiv={"k": 0.09, "V": 0.04, "h0": 0.25}, error=ERROR, estimate=["k", "V", "h0", "h1"], init=TRUE,
              maxeval=0, covariance=None)
    laplace = pkpd.fit_population(M, data, method="laplace", **kw)
    runs = [pkpd.fit_population(M, data, method="laplace", objective="is", is_samples=1000, seed=s, **kw)
            for s in (1, 2)]
    for r in runs:
        assert 0 < r.objective_se < 0.5
        assert abs(r.objective - laplace.objective) < 2.0
    a, b = runs
    assert abs(a.objective - b.objective) < 3 * np.hypot(a.objective_se, b.objective_se)


def test_linearised_methods_still_refuse_endpoint_records():
    data = joint_study(4, seed=7)
    with pytest.raises(FitError, match="method='laplace' or 'saem'"):
        pkpd.fit_population(M, data, iiv={"k": 0.09}, error=ERROR, method="focei", objective="is", maxeval=0)


# ------------------------------------------------------------------------------------------------------- SAEM
@pytest.fixture(scope="module")
def joint_fits():
    data = joint_study(30, seed=1)
    kw = dict(iiv={"k": 0.05, "V": 0.05}, error={"conc": pkpd.LogNormal(sigma=0.3)},
              estimate=["k", "V", "h0", "h1"])
    # SAEM from far away: hazard typical values 4x off (they have no IIV: only the Newton step moves them)
    saem = pkpd.fit_population(M, data, method="saem", seed=2, saem=SaemSettings(exploratory=60, smoothing=40),
                               init={"k": 0.07, "V": 14.0, "h0": 0.04, "h1": 0.02}, is_samples=300,
                               covariance=None, **kw)
    laplace = pkpd.fit_population(M, data, method="laplace", init=TRUE, **kw)
    return saem, laplace


def test_saem_recovers_a_joint_pk_and_time_to_event_study_and_agrees_with_laplace(joint_fits):
    saem, laplace = joint_fits
    assert laplace.converged
    lap = laplace.parameters.set_index("name")
    est = saem.parameters.set_index("name")["estimate"]
    truth = {**TRUE, "omega2_k": 0.09, "omega2_V": 0.04, "sigma": SIGMA}
    for name, value in truth.items():
        se = lap.loc[name, "se"]
        assert abs(est[name] - value) < 3 * se, name
        assert abs(est[name] - lap.loc[name, "estimate"]) < se, name
    # the hazard parameters moved from 4x their value to the truth through the endpoint records' likelihood
    np.testing.assert_allclose(saem.trace[["h0", "h1"]].iloc[0], [0.04, 0.02], rtol=1e-12)
    # the objective is the importance-sampling -2 log L of the joint data, near Laplace's at nearly the same values
    assert saem.objective_method == "is" and abs(saem.objective - laplace.objective) < 2.0
    assert saem.n_obs == laplace.n_obs == 4 * 30


def test_saem_on_endpoint_records_alone_with_iiv_on_the_hazard_agrees_with_laplace():
    # repeated events at a constant hazard h0 e^eta: only the endpoint likelihood informs the chains
    rng = np.random.default_rng(22)
    n = 12
    sim = pkpd.simulate(M, None, [0.0, 200.0], params={"h0": 0.02 * np.exp(0.5 * rng.standard_normal(n))}, seed=22,
                        outcomes=["relapse"])
    data = sim.to_dataframe(layout="nonmem", outputs=["relapse"])
    kw = dict(iiv={"h0": 0.2}, estimate=["h0"])
    laplace = pkpd.fit_population(M, data, method="laplace", **kw)
    saem = pkpd.fit_population(M, data, method="saem", seed=3, init={"h0": 0.005}, covariance=None,
                               saem=SaemSettings(exploratory=60, smoothing=40), is_samples=500, **kw)
    lap = laplace.parameters.set_index("name")
    est = saem.parameters.set_index("name")["estimate"]
    for name in ("h0", "omega2_h0"):
        assert abs(est[name] - lap.loc[name, "estimate"]) < lap.loc[name, "se"], name
    assert saem.minus2ll == saem.objective                  # no continuous record: no log 2 pi constants
    assert abs(saem.objective - laplace.objective) < 1.0


def test_endpoint_likelihood_of_a_batch_of_parameter_sets_is_that_of_each_set():
    # SAEM's chains, Laplace's Hessian stencil and the importance samples evaluate many parameter sets at once: the
    # ordinal likelihood of a batch (K, rows) once came back flat and could not be stored
    from pkpd.estimation.data import _observations

    data = pd.DataFrame({"ID": [1, 1, 2, 3], "TIME": [24.0, 48.0, 24.0, 24.0], "DV": [0.0, 2.0, 3.0, 1.0],
                         "DVID": "grade"})
    rec = _observations(M, data, (), None).endpoint_records
    rng = np.random.default_rng(0)
    logits = np.sort(rng.normal(0.0, 2.0, size=(3, rec.size, 3)), axis=-1)[..., ::-1]   # decreasing: valid
    F = np.zeros((3, int(rec.components.max()) + 1))
    for j in range(3):
        F[:, rec.components[:, j]] = logits[..., j]
    batch = rec.minus2ll(F)
    assert batch.shape == (3, rec.size)
    direct = np.stack([-2 * pkpd.endpoints.ordinal_log_likelihood(rec.category, logits[k]) for k in range(3)])
    np.testing.assert_allclose(batch, direct, rtol=1e-12)
    np.testing.assert_allclose(rec.minus2ll(F, gradient=True)[0], direct, rtol=1e-12)
    np.testing.assert_array_equal(rec.category, [0, 2, 3, 1])
