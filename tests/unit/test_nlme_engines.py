"""The two objective engines of fit_population (issue 15): the compiled inner problem with analytic gradients, and
the finite-difference path that serves machines without a C compiler (and IOV, or doses that depend on an estimated
parameter). Both compute the same objective function; this checks they agree, and that failures are never silent
(issue 15, item 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import nlme
from pkpd.errors import FitError
from pkpd.nonmem import read_nonmem

DATA = Path(__file__).resolve().parents[1] / "data"
WANG = DATA / "wang2007" / "wang2007.csv"
THEO_CSV = DATA / "theoph.csv"
THEO = read_nonmem(THEO_CSV, dose_unit="mg")
compiled = pytest.mark.skipif(not __import__("pkpd.estimation._compiled", fromlist=["available"]).available(),
                              reason="the compiled inner problem needs a C compiler")


def _without_compiler(monkeypatch):
    import pkpd.estimation._compiled as c

    monkeypatch.setattr(c, "available", lambda: False)


@compiled
@pytest.mark.parametrize("method", ["focei", "foce", "fo", "laplace"])
def test_finite_difference_fallback_gives_the_same_objective(monkeypatch, method):
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Combined(sd=0.5, cv=0.1, convention="variance"),
              method=method, settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    fast = nlme.population_objective("pk_1cmt_oral", THEO, **kw)
    _, _, _, layout, prob = nlme._setup("pk_1cmt_oral", THEO, kw["iiv"], kw["error"], method, None, None,
                                        kw["settings"], None)
    assert nlme._objective_engine(prob, layout) is not None
    _without_compiler(monkeypatch)
    assert nlme._objective_engine(prob, layout) is None
    slow = nlme.population_objective("pk_1cmt_oral", THEO, **kw)
    # the fallback takes df/deta by central differences (step 1e-4), stops its EBE iteration on a decrease below
    # 1e-10 (the log-determinant then moves by ~1e-6) and takes Laplace's Hessian by a 1e-3 stencil
    assert fast == pytest.approx(slow, abs=1e-5 if method != "laplace" else 1e-4)


@compiled
def test_both_engines_agree_with_censored_observations(monkeypatch):
    """Laplace with M3 and a proportional error (R depends on eta): the EBE iterations of both engines use
    dz/deta = -(dm/deta)/sd - z (dR/deta)/(2R) for z = (LLOQ - m)/sd (a wrong factor 1/sd on the second term made
    both iterate to a point that is not the mode)."""
    d = pd.read_csv(THEO_CSV).assign(AMTU="mg")
    obs = d["EVID"] == 0
    dv = pd.to_numeric(d["DV"], errors="coerce")
    d = d[~(obs & (d["TIME"] == 0))].reset_index(drop=True)            # predicted 0 at the dose time
    obs = d["EVID"] == 0
    dv = pd.to_numeric(d["DV"], errors="coerce")
    d["LLOQ"] = np.where(obs, 2.0, np.nan)
    d["BLQ"] = np.where(obs & (dv < 2.0), 1, 0)
    assert d["BLQ"].sum() >= 10
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Combined(sd=0.3, cv=0.1, convention="variance"),
              method="laplace", blq=pkpd.M3(), settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    fast = nlme.population_objective("pk_1cmt_oral", d, **kw)
    _without_compiler(monkeypatch)
    slow = nlme.population_objective("pk_1cmt_oral", d, **kw)
    assert fast == pytest.approx(slow, abs=1e-4)


@compiled
def test_finite_difference_fallback_fits_theophylline_to_the_same_estimates(monkeypatch):
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7), covariance=None)
    fast = pkpd.fit_population("pk_1cmt_oral", THEO, **kw)
    _without_compiler(monkeypatch)
    slow = pkpd.fit_population("pk_1cmt_oral", THEO, **kw)
    assert fast.objective == pytest.approx(slow.objective, abs=2e-3)
    for name in ("ka", "CL", "V"):
        assert fast.theta[name] == pytest.approx(slow.theta[name], rel=5e-3)


@pytest.mark.parametrize("engine", ["compiled", "finite-difference"])
def test_population_objective_names_the_subject_that_cannot_be_evaluated(monkeypatch, engine):
    if engine == "finite-difference":
        _without_compiler(monkeypatch)
    d = pd.read_csv(THEO_CSV).assign(AMTU="mg")
    # samples at the dose time are predicted 0, so a proportional error has variance 0 there: keep subject 3's only
    at_dose = (d["EVID"] == 0) & (d["TIME"] == 0)
    with pytest.raises(FitError, match=r"subject 3\b.*predicted 0, so its Proportional error"):
        nlme.population_objective("pk_1cmt_oral", d[~at_dose | (d["ID"] == 3)].reset_index(drop=True),
                                  iiv={"CL": 0.1}, error=pkpd.Proportional(cv=0.2))
    assert np.isfinite(nlme.population_objective("pk_1cmt_oral", d[~at_dose].reset_index(drop=True),
                                                 iiv={"CL": 0.1}, error=pkpd.Proportional(cv=0.2)))


def test_fo_shrinkage_is_not_available():
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="fo",
                              covariance=None)
    assert all(np.isnan(v) for v in fit.shrinkage.values())
    assert "shrinkage: not available (FO estimates no EBEs)" in repr(fit)
    assert "not available" in fit._repr_html_()
    focei = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), covariance=None)
    assert np.isfinite(focei.shrinkage["ke"]) and "%" in repr(focei).split("shrinkage:")[1]


def test_a_covariance_fallback_names_the_parameters_responsible():
    _, iiv, _, layout, _ = nlme._setup("pk_1cmt_oral", THEO, {"CL": 0.3}, pkpd.Additive(sd=0.7), "focei",
                                       ["ka", "CL", "V"], None, None, None)
    names = nlme._pretty_names(layout, iiv)           # ka, CL, V, omega2_CL, sd

    class Run:   # R is singular along V - ka (the data cannot tell them apart); S is fine
        def matrices(self, x):
            R = np.eye(5)
            R[np.ix_([0, 2], [0, 2])] = [[1.0, 1.0], [1.0, 1.0]]
            return R, 2.0 * np.eye(5)

    cov, msg = nlme._covariance_step(layout, layout.x0, Run(), "sandwich", names)
    assert cov is not None and "4 S^-1" in msg
    assert "responsible: " in msg and set(msg.split("responsible: ")[1].split(")")[0].split(", ")) == {"ka", "V"}


def test_no_sandwich_from_a_singular_s_matrix():
    """S (sum over subjects of gradient outer products) has rank <= the number of subjects: with fewer subjects than
    parameters the sandwich R^-1 S R^-1 is singular and its standard errors are too small; 2 R^-1 is used."""
    _, iiv, _, layout, _ = nlme._setup("pk_1cmt_oral", THEO, {"CL": 0.3}, pkpd.Additive(sd=0.7), "focei",
                                       ["ka", "CL", "V"], None, None, None)
    names = nlme._pretty_names(layout, iiv)
    g = np.random.default_rng(1).normal(size=(3, 5))   # 3 subjects, 5 parameters
    S = g.T @ g
    S = S + 1e-15 * np.abs(S).max() * np.eye(5)        # rounding-level noise: Cholesky alone would pass it
    np.linalg.cholesky(S)

    class Run:
        def matrices(self, x):
            return 2.0 * np.eye(5), S

    cov, msg = nlme._covariance_step(layout, layout.x0, Run(), "sandwich", names)
    assert msg.startswith("2 R^-1") and "S matrix (cross-product of the per-subject gradients) is singular" in msg
    J = nlme._natural_jacobian(layout, layout.x0)
    np.testing.assert_allclose(cov, J @ np.eye(5) @ J.T, rtol=1e-12)


@compiled
def test_failures_during_the_optimisation_are_counted_and_reported(monkeypatch):
    from pkpd.estimation._objective import Evaluation, PopulationObjective

    original = PopulationObjective.evaluate
    calls = {"n": 0}

    def flaky(self, x, eta0, *, gradient=True):
        calls["n"] += 1
        ev = original(self, x, eta0, gradient=gradient)
        if calls["n"] in (3, 4):   # two evaluations during the optimisation: subject index 1 "cannot be solved"
            status = ev.status.copy()
            status[1] = 101
            return Evaluation(ev.ofv, ev.gradient, ev.eta, status, ev.n_iter)
        return ev

    monkeypatch.setattr(PopulationObjective, "evaluate", flaky)
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), covariance=None)
    assert fit.converged
    assert fit.n_failures == 2
    assert "2 of" in fit.message and "subjects 2" in fit.message


def test_an_fo_objective_with_a_zero_error_sd_names_the_record_on_the_finite_difference_path(monkeypatch):
    """Theophylline has an observation at the dose time of each subject, predicted 0 for an oral dose, so a
    proportional error's SD is 0 there: FO's covariance C of those subjects is singular. The finite-difference path
    refuses the fit with the same message as the compiled one, naming the record (it raised numpy's bare
    LinAlgError 'Singular matrix' from a solve over all subjects)."""
    kw = dict(iiv={"ka": 0.4, "CL": 0.07, "V": 0.02}, error=pkpd.Proportional(cv=0.1), method="fo", maxeval=0)
    expected = ("output 'conc' at subject 1, t = 0 h (row 2) is predicted 0, so its Proportional error has standard "
                "deviation 0")
    _without_compiler(monkeypatch)
    with pytest.raises(FitError, match=r"cannot be evaluated at the initial values for subjects 1, 2, 3, 4, 5 and "
                                       r"7 more: " + expected.replace("(", r"\(").replace(")", r"\)")):
        pkpd.fit_population("pk_1cmt_oral", THEO, **kw)
